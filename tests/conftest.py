"""Fixtures that start the real peers of the integration tests, and always stop them.

Every peer listens on 127.0.0.1 on a port the OS picks; readiness is a line the peer prints or a
socket that is already listening, never a sleep. What they yield (see ``tests/servers``):

* ``tls_ca``: :class:`servers.certs.TLSMaterial` (``.cafile``, ``.ssl_context``,
  ``.other_cafile`` for "unknown CA", ``.wrong_host_certfile``/``keyfile``...).
* ``ws_server``, ``ws_server_deflate``, ``wss_server``, ``wss_server_deflate``:
  :class:`servers.ws_server.WSServer` (``websockets``; recorded ``requests``/``messages`` are
  cleared before each test).
* ``hypercorn_h1``, ``hypercorn_h2c``, ``hypercorn_tls``: :class:`servers.peer.Peer` for
  hypercorn serving ``servers/asgi_app.py`` (h1 and h2c are the same plain-TCP process).
* ``node_h2c``, ``node_h2_tls``, ``node_h2c_no_connect``: :class:`servers.peer.Peer` for the
  Node.js ``http2`` peer (mark tests ``@pytest.mark.node``).
* ``raw_server``: a factory ``raw_server(handler, tls=None|"good"|"other"|"wrong_host")`` of
  :class:`servers.raw.RawServer`; all stopped after the test.
* ``refused_port``: a port on 127.0.0.1 where nothing listens.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# `servers` is imported as a top-level package from this folder. pytest's default "prepend"
# import mode already puts it on sys.path while tests/ has no __init__.py; this keeps the
# imports working if that ever changes.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from servers.certs import TLSMaterial, make_tls_material
from servers.hypercorn_peer import start_hypercorn
from servers.node_peer import NodeUnavailable, start_node
from servers.peer import HOST, Peer, Subprocess
from servers.raw import Handler, RawServer
from servers.ws_server import WSServer

# -- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"))


# -- websockets ---------------------------------------------------------------------------------


def _ws_session_server(**kwargs: object) -> Iterator[WSServer]:
    server = WSServer(**kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _ws_plain() -> Iterator[WSServer]:
    yield from _ws_session_server(compression=None)


@pytest.fixture(scope="session")
def _ws_plain_deflate() -> Iterator[WSServer]:
    yield from _ws_session_server(compression="deflate")


@pytest.fixture(scope="session")
def _wss(tls_ca: TLSMaterial) -> Iterator[WSServer]:
    yield from _ws_session_server(
        compression=None, ssl_context=tls_ca.server_context(), cafile=tls_ca.cafile
    )


@pytest.fixture(scope="session")
def _wss_deflate(tls_ca: TLSMaterial) -> Iterator[WSServer]:
    yield from _ws_session_server(
        compression="deflate", ssl_context=tls_ca.server_context(), cafile=tls_ca.cafile
    )


@pytest.fixture
def ws_server(_ws_plain: WSServer) -> WSServer:
    """websockets over plain TCP, permessage-deflate off."""
    _ws_plain.clear()
    return _ws_plain


@pytest.fixture
def ws_server_deflate(_ws_plain_deflate: WSServer) -> WSServer:
    """websockets over plain TCP, permessage-deflate on (websockets' defaults)."""
    _ws_plain_deflate.clear()
    return _ws_plain_deflate


@pytest.fixture
def wss_server(_wss: WSServer) -> WSServer:
    """websockets over TLS (trustme cert for localhost/127.0.0.1), permessage-deflate off."""
    _wss.clear()
    return _wss


@pytest.fixture
def wss_server_deflate(_wss_deflate: WSServer) -> WSServer:
    """websockets over TLS, permessage-deflate on."""
    _wss_deflate.clear()
    return _wss_deflate


# -- subprocess peers ---------------------------------------------------------------------------


def _log(proc: Subprocess) -> str:
    return str(proc.log_path)


def _run(proc: Subprocess) -> Iterator[Subprocess]:
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def _hypercorn_plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Subprocess]:
    yield from _run(start_hypercorn(tmp_path_factory.mktemp("hypercorn") / "plain.log"))


@pytest.fixture(scope="session")
def _hypercorn_tls(
    tmp_path_factory: pytest.TempPathFactory, tls_ca: TLSMaterial
) -> Iterator[Subprocess]:
    log = tmp_path_factory.mktemp("hypercorn") / "tls.log"
    yield from _run(start_hypercorn(log, certfile=tls_ca.certfile, keyfile=tls_ca.keyfile))


@pytest.fixture
def hypercorn_h1(_hypercorn_plain: Subprocess) -> Peer:
    """hypercorn over plain TCP, to be spoken to in HTTP/1.1."""
    return Peer(
        HOST, _hypercorn_plain.port, "http", http_version="1.1", log_path=_log(_hypercorn_plain)
    )


@pytest.fixture
def hypercorn_h2c(_hypercorn_plain: Subprocess) -> Peer:
    """The same hypercorn, to be spoken to in HTTP/2 with prior knowledge (h2c)."""
    return Peer(
        HOST, _hypercorn_plain.port, "http", http_version="2", log_path=_log(_hypercorn_plain)
    )


@pytest.fixture
def hypercorn_tls(_hypercorn_tls: Subprocess, tls_ca: TLSMaterial) -> Peer:
    """hypercorn over TLS, ALPN h2 and http/1.1."""
    return Peer(
        HOST,
        _hypercorn_tls.port,
        "https",
        cafile=tls_ca.cafile,
        server_hostname="localhost",
        http_version="any",
        log_path=_log(_hypercorn_tls),
    )


def _node(tmp_path_factory: pytest.TempPathFactory, name: str, args: list[str]):
    try:
        proc = start_node(args, tmp_path_factory.mktemp("node") / f"{name}.log")
    except NodeUnavailable as exc:
        pytest.skip(str(exc))
    yield from _run(proc)


@pytest.fixture(scope="session")
def _node_h2c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Subprocess]:
    yield from _node(tmp_path_factory, "h2c", [])


@pytest.fixture(scope="session")
def _node_h2_tls(
    tmp_path_factory: pytest.TempPathFactory, tls_ca: TLSMaterial
) -> Iterator[Subprocess]:
    yield from _node(tmp_path_factory, "tls", ["--tls", tls_ca.certfile, tls_ca.keyfile])


@pytest.fixture(scope="session")
def _node_h2c_no_connect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Subprocess]:
    yield from _node(tmp_path_factory, "no-connect", ["--no-connect-protocol"])


@pytest.fixture
def node_h2c(_node_h2c: Subprocess) -> Peer:
    """Node.js http2, h2c with prior knowledge, SETTINGS_ENABLE_CONNECT_PROTOCOL=1."""
    return Peer(HOST, _node_h2c.port, "http", http_version="2", log_path=_log(_node_h2c))


@pytest.fixture
def node_h2_tls(_node_h2_tls: Subprocess, tls_ca: TLSMaterial) -> Peer:
    """Node.js http2 over TLS (ALPN h2 only), SETTINGS_ENABLE_CONNECT_PROTOCOL=1."""
    return Peer(
        HOST,
        _node_h2_tls.port,
        "https",
        cafile=tls_ca.cafile,
        server_hostname="localhost",
        http_version="2",
        log_path=_log(_node_h2_tls),
    )


@pytest.fixture
def node_h2c_no_connect(_node_h2c_no_connect: Subprocess) -> Peer:
    """Node.js http2, h2c, without extended CONNECT (the setting is never sent)."""
    return Peer(
        HOST,
        _node_h2c_no_connect.port,
        "http",
        http_version="2",
        log_path=_log(_node_h2c_no_connect),
    )


# -- raw and closed ports -----------------------------------------------------------------------


@pytest.fixture
def raw_server(tls_ca: TLSMaterial) -> Iterator[Callable[..., RawServer]]:
    """Factory: ``raw_server(handler, tls=None, rcvbuf=None)``; ``tls`` is "good", "other" or
    "wrong_host"; ``rcvbuf``, the accepted sockets' SO_RCVBUF."""
    servers: list[RawServer] = []

    def start(handler: Handler, tls: str | None = None, rcvbuf: int | None = None) -> RawServer:
        context = None if tls is None else tls_ca.server_context(which=tls)
        cafile = None if tls is None else tls_ca.cafile
        server = RawServer(handler, ssl_context=context, cafile=cafile, rcvbuf=rcvbuf)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port where nothing listens: bound (so nobody else takes it) but not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()
