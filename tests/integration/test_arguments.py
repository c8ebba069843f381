"""What the documented functions do with arguments they cannot use: a typed error, always.

API.md: "Every exception derives from ``mint.MintError`` and has ``.reason``". These are the
calls an outside audit found failing with a bare Python exception (or, on HTTP/2, sending a
malformed request that made the server end the whole connection), against real peers: the
``websockets`` server over HTTP/1.1, hypercorn over HTTP/1.1 and h2c.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from aio_client import Flavour, run, use_loop
from aio_client import connect as connect_flavour
from conftest_h2 import connect_h2, open_ws, send, wait_frames
from wsclient import open_websocket

import mint
import mint.aio
from mint.http import Data, Done, Headers, Status
from mint.websocket import PerMessageDeflate, Text

BAD_REQUESTS: list[tuple[Any, Any, Any]] = [
    ("GE T", "/", []),
    ("", "/", []),
    (5, "/", []),
    ("GET", "/a b", []),
    ("GET", "", []),
    ("GET", "/caf\u00e9", []),
    ("GET", "/", [("x", "a\r\nInjected: 1")]),
    ("GET", "/", [("x", "a\nb")]),
    ("GET", "/", [("x", "a\x00b")]),
    ("GET", "/", [("x y", "1")]),
    ("GET", "/", [("", "1")]),
    ("GET", "/", [("a",)]),
    ("GET", "/", [("a", "b", "c")]),
    ("GET", "/", [(b"x", "1")]),
    ("GET", "/", [("x", 1)]),
    ("GET", "/", {"x": "1"}),
    ("GET", "/", ["ab"]),
    ("GET", "/", "x: 1"),
    ("GET", "/", 5),
]


@pytest.mark.parametrize("protocol", ["http1", "http2"])
@pytest.mark.parametrize(("method", "path", "headers"), BAD_REQUESTS)
def test_a_request_that_cannot_be_sent_is_refused_alike_on_both_protocols(
    hypercorn_h1: Any, hypercorn_h2c: Any, protocol: str, method: Any, path: Any, headers: Any
) -> None:
    peer = hypercorn_h2c if protocol == "http2" else hypercorn_h1
    conn = (
        connect_h2(peer, "passive")
        if protocol == "http2"
        else mint.http.connect("http", peer.host, peer.port, mode="passive")
    )
    try:
        # On HTTP/2 a WebSocket is open on the connection: it must outlive the refusal.
        if protocol == "http2":
            conn, ws = open_ws(conn, "passive")
        with pytest.raises(mint.HTTPError) as info:
            mint.http.request(conn, method, path, headers)
        assert info.value.reason[0] == "invalid_request"
        assert info.value.conn is conn
        if protocol == "http2":
            conn = send(conn, ws, Text("still here"))
            conn = wait_frames(conn, "passive", [ws], 1)
            assert ws.frames == [Text("still here")]
        # The refused request left nothing behind: the next one is answered.
        conn, ref = mint.http.request(conn, "GET", "/", [("x-ok", "1")])
        seen: list[Any] = []
        while Done(ref) not in seen:
            conn, responses = mint.http.recv(conn, 0, 10.0)
            seen += [r for r in responses if getattr(r, "ref", None) == ref]
        assert seen[0] == Status(ref, 200)
    finally:
        mint.http.close(conn)


@pytest.mark.parametrize("headers", [{"x": "1"}, ["ab"], [("x", "a\r\nb")], None])
def test_upgrade_checks_its_headers(ws_server: Any, headers: Any) -> None:
    conn = mint.http.connect("http", "127.0.0.1", ws_server.port, mode="passive")
    try:
        with pytest.raises(mint.HTTPError) as info:
            mint.websocket.upgrade("ws", conn, "/", headers)
        assert info.value.reason[0] == "invalid_request"
        assert info.value.conn is conn
        assert mint.http.open_request_count(conn) == 0
    finally:
        mint.http.close(conn)


@pytest.mark.parametrize(
    "extensions", [PerMessageDeflate, PerMessageDeflate(), "permessage-deflate", 5]
)
def test_upgrade_wants_a_list_of_extensions(ws_server: Any, extensions: Any) -> None:
    conn = mint.http.connect("http", "127.0.0.1", ws_server.port, mode="passive")
    try:
        with pytest.raises(mint.WebSocketError) as info:
            mint.websocket.upgrade("ws", conn, "/", [], extensions=extensions)
        assert info.value.reason == ("invalid_extension", extensions)
        assert info.value.conn is conn
    finally:
        mint.http.close(conn)


def bad_transport_opts(tmp_path: Path) -> list[tuple[Any, Any]]:
    unreadable = tmp_path / "missing.pem"
    readable = tmp_path / "ca.pem"
    readable.write_text("(read by ssl, once connecting)")
    unchecking = ssl.create_default_context()
    unchecking.check_hostname = False
    unchecking.verify_mode = ssl.CERT_NONE
    return [
        ([("timeout", 1)], None),
        ({"timeout": "x"}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"ssl_context": "nope"}, "ssl_context"),
        ({"cafile": str(unreadable)}, "cafile"),
        ({"cafile": 5}, "cafile"),
        ({"verify": "no"}, "verify"),
        ({"verify": None}, "verify"),  # (connect's "if not verify" turned checks off)
        ({"timout": 5}, "timout"),  # misspelt: the bound meant would be missing
        ({"cacertfile": "/etc/ssl/certs/ca-certificates.crt"}, "cacertfile"),  # Mint's name
        # Beside a context, which is used as it is: dropped, verify=True checked nothing.
        ({"ssl_context": unchecking, "verify": True}, "verify"),
        ({"ssl_context": ssl.create_default_context(), "verify": False}, "verify"),
        ({"ssl_context": ssl.create_default_context(), "cafile": str(readable)}, "cafile"),
    ]


@pytest.mark.parametrize("case", range(14))
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_connect_checks_its_transport_opts_before_connecting(
    tmp_path: Path, case: int, scheme: str
) -> None:
    opts, key = bad_transport_opts(tmp_path)[case]
    # Nothing listens on the port: only a check made before connecting can answer.
    with pytest.raises(mint.HTTPError) as info:
        mint.http.connect(scheme, "127.0.0.1", 9, transport_opts=opts)
    assert info.value.reason[:2] == ("invalid_transport_opts", key)


def test_a_usable_cafile_and_context_still_connect(wss_server: Any, tls_ca: Any) -> None:
    context = ssl.create_default_context(cafile=os.fspath(tls_ca.cafile))
    for opts in (
        {"cafile": tls_ca.cafile},
        {"cafile": Path(tls_ca.cafile)},
        {"ssl_context": context},
        {"ssl_context": context, "verify": True},  # (what the context does)
    ):
        conn = mint.http.connect(
            "https", "127.0.0.1", wss_server.port, transport_opts=opts, hostname="localhost"
        )
        assert mint.http.is_open(conn)
        mint.http.close(conn)


def test_a_mailbox_must_be_a_mailbox(ws_server: Any) -> None:
    with pytest.raises(mint.HTTPError) as info:
        mint.http.connect("http", "127.0.0.1", ws_server.port, mailbox="x")  # type: ignore[arg-type]
    assert info.value.reason == ("invalid_mailbox", "x")
    conn = mint.http.connect("http", "127.0.0.1", ws_server.port)
    try:
        with pytest.raises(mint.HTTPError) as info:
            mint.http.controlling_process(conn, "x")  # type: ignore[arg-type]
        assert info.value.reason == ("invalid_mailbox", "x")
        assert info.value.conn is conn
        # API.md names the argument: controlling_process(conn, mailbox).
        box = mint.Mailbox()
        assert mint.http.controlling_process(conn, mailbox=box) is conn
    finally:
        mint.http.close(conn)


def test_is_open_knows_three_types(ws_server: Any) -> None:
    conn = mint.http.connect("http", "127.0.0.1", ws_server.port, mode="passive")
    try:
        assert [mint.http.is_open(conn, t) for t in ("read", "write", "read_write")] == [True] * 3
        assert mint.http.is_open(conn, type="read")
        with pytest.raises(mint.HTTPError) as info:
            mint.http.is_open(conn, "bogus")
        assert info.value.reason == ("invalid_type", "bogus")
    finally:
        mint.http.close(conn)


@pytest.mark.parametrize(
    ("byte_count", "timeout", "reason"),
    [
        ("1", 1.0, ("invalid_byte_count", "1")),
        (-1, 1.0, ("invalid_byte_count", -1)),
        (1.5, 1.0, ("invalid_byte_count", 1.5)),
        (True, 1.0, ("invalid_byte_count", True)),
        (0, "1", ("invalid_timeout", "1")),
        (0, True, ("invalid_timeout", True)),
        (0, [1], ("invalid_timeout", [1])),
    ],
)
@pytest.mark.parametrize("recv", [mint.http.recv, mint.websocket.recv])
def test_recv_checks_its_arguments(
    ws_server: Any, recv: Any, byte_count: Any, timeout: Any, reason: Any
) -> None:
    conn = mint.http.connect("http", "127.0.0.1", ws_server.port, mode="passive")
    try:
        with pytest.raises(mint.HTTPError) as info:
            recv(conn, byte_count, timeout)
        assert info.value.reason == reason
        assert info.value.conn is conn
        nan = float("nan")
        with pytest.raises(mint.HTTPError) as info:
            recv(conn, 0, nan)
        assert info.value.reason[0] == "invalid_timeout"
        assert mint.http.is_open(conn)
    finally:
        mint.http.close(conn)


@pytest.mark.parametrize("timeout", [True, Fraction(1), Decimal(1)], ids=repr)
def test_a_timeout_equal_to_the_last_one_is_still_checked(ws_server: Any, timeout: Any) -> None:
    # The C read of an upgraded connection took a timeout that equals (==) the one the
    # socket already had as that one: True after 1, say, where the Python path refuses it.
    client = open_websocket(ws_server, "/echo", mode="passive")
    try:
        client.send(Text("hi"))
        client.conn, got = mint.websocket.recv(client.conn, 0, 1)
        assert got
        with pytest.raises(mint.HTTPError) as info:
            mint.websocket.recv(client.conn, 0, timeout)
        assert info.value.reason == ("invalid_timeout", timeout)
        assert mint.http.is_open(client.conn)
    finally:
        client.close()


@pytest.mark.parametrize("protocols", ["http2", (), ("http3",), ("http1", "spdy")])
def test_connect_checks_its_protocols(protocols: Any) -> None:
    # A bare string is refused as given, not read as its letters.
    with pytest.raises(mint.HTTPError) as info:
        mint.http.connect("http", "127.0.0.1", 9, protocols=protocols)
    assert info.value.reason == ("invalid_protocols", protocols)


@pytest.mark.parametrize(
    ("protocols", "host", "port", "hostname", "reason"),
    [
        (None, "127.0.0.1", 9, None, ("invalid_protocols", None)),
        (("http1",), None, 9, None, ("invalid_host", None)),
        (("http1",), "", 9, None, ("invalid_host", "")),
        (("http1",), "127.0.0.1", None, None, ("invalid_port", None)),
        (("http1",), "127.0.0.1", "80", None, ("invalid_port", "80")),
        (("http1",), "127.0.0.1", True, None, ("invalid_port", True)),
        (("http1",), "127.0.0.1", 0, None, ("invalid_port", 0)),
        (("http1",), "127.0.0.1", -1, None, ("invalid_port", -1)),
        (("http1",), "127.0.0.1", 65536, None, ("invalid_port", 65536)),
        (("http1",), "127.0.0.1", 9, 5, ("invalid_hostname", 5)),
    ],
)
@pytest.mark.parametrize("flavour", ["sync", "aio"])
def test_connect_checks_its_address(
    flavour: str, protocols: Any, host: Any, port: Any, hostname: Any, reason: Any
) -> None:
    # Raw TypeErrors and OverflowErrors (aio) before; the blocking flavour took a port
    # of 65536 or more modulo 65536 and talked to another server.
    with pytest.raises(mint.HTTPError) as info:
        if flavour == "sync":
            mint.http.connect("http", host, port, protocols=protocols, hostname=hostname)
        else:
            asyncio.run(
                mint.aio.http.connect("http", host, port, protocols=protocols, hostname=hostname)
            )
    assert info.value.reason == reason


def test_a_port_beyond_65535_never_reaches_another_server(ws_server: Any) -> None:
    with pytest.raises(mint.HTTPError) as info:
        mint.http.connect("http", ws_server.host, ws_server.port + 65536)
    assert info.value.reason == ("invalid_port", ws_server.port + 65536)


ACCESSORS: list[tuple[str, tuple[Any, ...]]] = [
    ("is_open", ()),
    ("protocol", ()),
    ("open_request_count", ()),
    ("get_socket", ()),
    ("set_mode", ("active",)),
    ("controlling_process", (mint.Mailbox(),)),
    ("pending_bytes", ()),
]


@pytest.mark.parametrize(("name", "args"), ACCESSORS, ids=[name for name, _ in ACCESSORS])
@pytest.mark.parametrize("module", [mint.http, mint.aio.http], ids=["sync", "aio"])
@pytest.mark.parametrize("conn", [None, "conn", 0])
def test_the_accessors_want_a_connection(module: Any, name: str, args: Any, conn: Any) -> None:
    # A raw AttributeError before (a connect that failed leaves None behind, say).
    with pytest.raises(mint.HTTPError) as info:
        getattr(module, name)(conn, *args)
    assert info.value.reason[0] == "invalid_conn"


@pytest.mark.parametrize(
    "stream",
    [mint.http.stream, mint.websocket.stream, mint.aio.http.stream, mint.aio.websocket.stream],
    ids=["http", "websocket", "aio-http", "aio-websocket"],
)
@pytest.mark.parametrize("conn", [None, "conn", "a (conn, ref) pair"])
def test_stream_wants_a_connection_whatever_the_message(
    ws_server: Any, stream: Any, conn: Any
) -> None:
    # Every message was UNKNOWN to a stale None or a (conn, ref) pair: the caller's
    # receive loop went on for ever instead of meeting a typed error.
    real = mint.http.connect("http", ws_server.host, ws_server.port, mode="passive")
    other = socket.socket()
    try:
        if conn == "a (conn, ref) pair":
            conn = (real, mint.http.Ref())
        sock = mint.http.get_socket(real)
        messages = [
            mint.SocketData(sock, b"x"),
            mint.SocketClosed(sock),
            mint.SocketData(other, b"x"),
            "not a message",
        ]
        for message in messages:
            with pytest.raises(mint.HTTPError) as info:
                result = stream(conn, message)
                if asyncio.iscoroutine(result):
                    asyncio.run(result)
            assert info.value.reason[0] == "invalid_conn"
    finally:
        other.close()
        mint.http.close(real)


@pytest.mark.parametrize(
    ("status", "headers", "reason"),
    [
        (101, None, "invalid_headers"),
        (101, {"upgrade": "websocket"}, "invalid_headers"),
        (101, "upgrade: websocket", "invalid_headers"),
        (101, [("upgrade",)], "invalid_headers"),
        (101, [("upgrade", 5)], "invalid_headers"),
        ("101", [], "invalid_status"),
        (None, [], "invalid_status"),
    ],
)
def test_new_checks_the_answer_it_is_given(
    ws_server: Any, status: Any, headers: Any, reason: str
) -> None:
    conn = mint.http.connect("http", ws_server.host, ws_server.port, mode="passive")
    try:
        conn, ref = mint.websocket.upgrade("ws", conn, "/", [])
        with pytest.raises(mint.WebSocketError) as info:
            mint.websocket.new(conn, ref, status, headers, mode="passive")
        assert info.value.reason[0] == reason
        assert info.value.conn is conn
        with pytest.raises(mint.WebSocketError) as unknown:
            mint.websocket.new(conn, [], 101, [], mode="passive")  # an unhashable ref
        assert unknown.value.reason == ("not_upgraded", [])
    finally:
        mint.http.close(conn)


def test_new_reads_bytes_headers_as_latin1(ws_server: Any) -> None:
    # Another client's (bytes, bytes) pairs were checked as str and failed as a bad
    # nonce, though the answer was right.
    conn = mint.http.connect("http", ws_server.host, ws_server.port, mode="passive")
    try:
        conn, ref = mint.websocket.upgrade("ws", conn, "/echo", [])
        got: list[Any] = []
        while not any(isinstance(r, Done) for r in got):
            conn, responses = mint.http.recv(conn, 0, 5.0)
            got += responses
        status = next(r.status for r in got if isinstance(r, Status))
        headers = next(r.headers for r in got if isinstance(r, Headers))
        raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        conn, websocket = mint.websocket.new(conn, ref, status, raw, mode="passive")
        websocket, data = mint.websocket.encode(websocket, Text("hi"))
        conn = mint.websocket.stream_request_body(conn, ref, data)
        frames: list[Any] = []
        while not frames:
            conn, responses = mint.http.recv(conn, 0, 5.0)
            for response in responses:
                if isinstance(response, Data):
                    websocket, decoded = mint.websocket.decode(websocket, response.data)
                    frames += decoded
        assert frames == [Text("hi")]
    finally:
        mint.http.close(conn)


def test_a_tls_alert_named_only_in_its_message_keeps_its_name(node_h2_tls: Any) -> None:
    # Node's HTTP/2-only TLS server answers an ALPN offer without h2 with the
    # no_application_protocol alert; ssl gives it no .reason, and it was "tls_error".
    with pytest.raises(mint.TransportError) as info:
        mint.http.connect(
            "https",
            node_h2_tls.server_hostname,
            node_h2_tls.port,
            protocols=("http1",),
            transport_opts={"cafile": node_h2_tls.cafile},
        )
    assert info.value.reason[:2] == ("tls_alert", "no_application_protocol")


@pytest.mark.parametrize("flavour", ["sync", "aio"])
def test_an_ipv6_literal_in_brackets_connects(flavour: str) -> None:
    # "[::1]" as a URL writes it went to the resolver as it was: nxdomain.
    try:
        listener = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    port = listener.getsockname()[1]
    heard: list[bytes] = []

    def serve() -> None:
        peer, _ = listener.accept()
        with peer:
            heard.append(peer.recv(65536))
            peer.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    http = Flavour(flavour).http

    async def get() -> list[Any]:
        conn = await http.connect("http", "[::1]", port, mode="passive")
        assert f"http://[::1]:{port}" in repr(conn)
        conn, ref = await http.request(conn, "GET", "/", [])
        got: list[Any] = []
        while mint.http.Done(ref) not in got:
            conn, responses = await http.recv(conn, 0, 5)
            got += responses
        await http.close(conn)
        return got

    try:
        got = asyncio.run(get())
    finally:
        thread.join(5)
        listener.close()
    assert mint.http.Data(got[0].ref, b"ok") in got
    assert f"\r\nhost: [::1]:{port}\r\n".encode() in heard[0]


@pytest.mark.parametrize("name", ["sync", "aio"])
def test_frames_may_go_as_iodata(ws_server: Any, name: str) -> None:
    # The seed types stream_request_body's data as iodata: a list of encoded frames.
    flavour = Flavour(name)

    async def scenario() -> None:
        client = await connect_flavour(flavour, ws_server, mode="passive")
        try:
            await client.upgrade("/echo")
            ws = flavour.websocket
            client.websocket, one = ws.encode(client.websocket, Text("one"))
            client.websocket, two = ws.encode(client.websocket, Text("two"))
            client.conn = await ws.stream_request_body(client.conn, client.ref, [one, [two]])
            frames: list[Any] = []
            while len(frames) < 2:
                for response in await client.responses(5):
                    if isinstance(response, Data):
                        client.websocket, got = ws.decode(client.websocket, response.data)
                        frames += got
            assert frames == [Text("one"), Text("two")]
        finally:
            await client.close()

    with use_loop(flavour):
        run(scenario())
