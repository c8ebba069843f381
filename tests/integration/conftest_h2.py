"""Fixtures of the HTTP/2 integration tests: the ``h2`` fault-injection server.

Import the fixture into a test module (``from conftest_h2 import h2_fault``); every server
a test starts is stopped after it, and a handler exception fails the test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from servers.h2_fault import FaultOptions, FaultServer

import mint
from mint.http import Data, Done, Error, Headers, Status


@pytest.fixture
def h2_fault() -> Iterator[Callable[..., FaultServer]]:
    """Factory: ``h2_fault(**FaultOptions fields) -> FaultServer`` (h2c on 127.0.0.1)."""
    servers: list[FaultServer] = []

    def start(**options: object) -> FaultServer:
        server = FaultServer(FaultOptions(**options))  # type: ignore[arg-type]
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()
        for server in servers:
            if server.errors:
                raise server.errors[0]


# -- client helpers: the public API, used as a user would ----------------------------------------
DEFAULT_WAIT = 15.0


def connect_h2(peer: Any, mode: str, **kwargs: Any) -> Any:
    """``mint.http.connect`` to a peer: h2c with prior knowledge, or TLS with ALPN."""
    if peer.scheme == "https":
        opts = {"cafile": peer.cafile}
        return mint.http.connect(
            "https",
            peer.host,
            peer.port,
            mode=mode,
            transport_opts=opts,
            hostname=peer.server_hostname,
            **kwargs,
        )
    kwargs.setdefault("protocols", ("http2",))
    return mint.http.connect("http", peer.host, peer.port, mode=mode, **kwargs)


def read(conn: Any, mode: str, timeout: float = DEFAULT_WAIT) -> tuple[Any, list[Any]]:
    """One read's worth of responses, passive (``recv``) or active (the thread's mailbox)."""
    if mode == "passive":
        return mint.http.recv(conn, 0, timeout)  # type: ignore[no-any-return]
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no message for this connection")
        message = mint.receive(timeout=remaining)
        result = mint.http.stream(conn, message)
        if result is not mint.UNKNOWN:
            return result  # type: ignore[no-any-return]


def read_until(
    conn: Any,
    mode: str,
    done: Callable[[list[Any]], bool],
    timeout: float = DEFAULT_WAIT,
    sockets: Sequence[WS] = (),
) -> tuple[Any, list[Any]]:
    """Read until ``done(all responses so far)``; returns every response read.

    The responses of the WebSockets in ``sockets`` are handed to them as they come, so
    nothing is lost while waiting for something else.
    """
    deadline = time.monotonic() + timeout
    seen: list[Any] = []
    while not done(seen):
        conn, responses = read(conn, mode, max(0.01, deadline - time.monotonic()))
        for ws in sockets:
            ws.take(responses)
        seen += responses
    return conn, seen


def of(ref: Any, responses: list[Any]) -> list[Any]:
    return [r for r in responses if getattr(r, "ref", None) == ref]


def body(ref: Any, responses: list[Any]) -> bytes:
    return b"".join(r.data for r in responses if isinstance(r, Data) and r.ref == ref)


def get(
    conn: Any, mode: str, path: str = "/", sockets: Sequence[WS] = ()
) -> tuple[Any, int, bytes]:
    """A GET and its whole answer (WebSocket input meanwhile goes to ``sockets``)."""
    conn, ref = mint.http.request(conn, "GET", path, [])
    conn, seen = read_until(
        conn, mode, lambda rs: Done(ref) in rs or _failed(ref, rs), sockets=sockets
    )
    statuses = [r.status for r in of(ref, seen) if isinstance(r, Status)]
    return conn, statuses[-1], body(ref, seen)


def _failed(ref: Any, responses: list[Any]) -> bool:
    return any(isinstance(r, Error) and r.ref == ref for r in responses)


class WS:
    """One WebSocket over the connection, with the frames decoded so far."""

    def __init__(self, ref: Any, websocket: Any) -> None:
        self.ref = ref
        self.websocket = websocket
        self.frames: list[Any] = []
        self.done = False
        self.error: Any = None

    def take(self, responses: list[Any]) -> None:
        for r in responses:
            if getattr(r, "ref", None) != self.ref:
                continue
            if isinstance(r, Data):
                self.websocket, frames = mint.websocket.decode(self.websocket, r.data)
                self.frames += frames
            elif isinstance(r, Done):
                self.done = True
            elif isinstance(r, Error):
                self.error = r.error


def open_ws(conn: Any, mode: str, path: str = "/echo", headers: Any = ()) -> tuple[Any, WS]:
    conn, ref = mint.websocket.upgrade("ws", conn, path, list(headers))
    conn, seen = read_until(conn, mode, lambda rs: any(isinstance(r, Headers) for r in of(ref, rs)))
    mine = of(ref, seen)
    status = next(r.status for r in mine if isinstance(r, Status))
    resp_headers = next(r.headers for r in mine if isinstance(r, Headers))
    conn, websocket = mint.websocket.new(conn, ref, status, resp_headers, mode=mode)
    ws = WS(ref, websocket)
    ws.take(seen[seen.index(next(r for r in mine if isinstance(r, Headers))) + 1 :])
    return conn, ws


def send(conn: Any, ws: WS, frame: Any) -> Any:
    ws.websocket, data = mint.websocket.encode(ws.websocket, frame)
    return mint.websocket.stream_request_body(conn, ws.ref, data)


def wait_frames(
    conn: Any, mode: str, sockets: list[WS], count: int, timeout: float = DEFAULT_WAIT
) -> Any:
    """Read until every WS in ``sockets`` has at least ``count`` frames (or ended)."""

    def ready(_seen: list[Any]) -> bool:
        return all(len(w.frames) >= count or w.error is not None for w in sockets)

    deadline = time.monotonic() + timeout
    while not ready([]):
        conn, responses = read(conn, mode, max(0.01, deadline - time.monotonic()))
        for w in sockets:
            w.take(responses)
    return conn
