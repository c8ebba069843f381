"""The integration scenarios, written once and run in both flavours (``sync`` and ``aio``).

Against the same real peers as the sync suite: websockets (ws, wss), hypercorn (HTTP/1.1,
h2c), Node's http2 (extended CONNECT), and scripted raw servers for the unhappy paths.
"""

from __future__ import annotations

import asyncio
import gc
import queue
import socket
import ssl
import struct
import threading
import time
import warnings
import weakref
from collections.abc import Iterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from aio_client import FLAVOURS, Client, Flavour, connect, run, use_loop
from conftest_h2 import h2_fault  # noqa: F401 - fixture
from servers.raw import (
    AnswersTheWholeMessage,
    close_notify_behind,
    drain,
    frame,
    handshake_response,
    never_answer,
    parse_frames,
    read_request,
    upgrade_then,
)
from test_fast_io import upgraded

import mint
from mint.http import Data, Done, Error, Status
from mint.websocket import Binary, Close, Text

MODES = ["active", "passive"]


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> Iterator[Flavour]:
    chosen = Flavour(request.param)
    with use_loop(chosen):
        yield chosen


def test_each_flavour_runs_on_its_loop(flavour: Flavour) -> None:
    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    expected = "uvloop" if flavour.name == "aio-uvloop" else "asyncio"
    assert run(loop_module()).split(".")[0] == expected


# -- WebSocket over HTTP/1.1 ------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
def test_websocket_echo(
    flavour: Flavour, ws_server: Any, wss_server: Any, mode: str, tls: bool
) -> None:
    server = wss_server if tls else ws_server

    async def scenario() -> None:
        client = await connect(flavour, server, mode=mode)
        try:
            await client.upgrade("/echo", scheme="wss" if tls else "ws")
            await client.send(Text("hello world"))
            assert await client.frames() == [Text("hello world")]
            big = bytes(range(256)) * 4096  # 1 MiB: several reads, several TLS records
            await client.send(Binary(big))
            assert await client.frames() == [Binary(big)]
            await client.send(Close(1000, "done"))
            frames = await client.frames()
            assert frames == [Close(1000, "done")]
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("mode", MODES)
def test_greeting_in_the_same_read_as_the_101(flavour: Flavour, ws_server: Any, mode: str) -> None:
    async def scenario() -> None:
        client = await connect(flavour, ws_server, mode=mode)
        try:
            await client.upgrade("/greet")
            assert await client.frames() == [Text("hello")]
        finally:
            await client.close()

    run(scenario())


def test_seed_example_on_the_default_mailbox(ws_server: Any) -> None:
    """The seed's example, with ``await``: the loop's default mailbox, no mailbox= anywhere."""

    async def scenario() -> None:
        conn = await mint.aio.http.connect("http", ws_server.host, ws_server.port)
        conn, ref = await mint.aio.websocket.upgrade("ws", conn, "/echo", [])
        responses: list[Any] = []
        while not any(isinstance(r, Done) for r in responses):
            conn, more = await mint.aio.websocket.stream(conn, await mint.aio.receive(5))
            responses += more
        status = next(r.status for r in responses if isinstance(r, Status))
        headers = next(r.headers for r in responses if isinstance(r, mint.http.Headers))
        conn, websocket = mint.aio.websocket.new(conn, ref, status, headers)
        websocket, data = mint.aio.websocket.encode(websocket, Text("hello world"))
        conn = await mint.aio.websocket.stream_request_body(conn, ref, data)
        conn, responses = await mint.aio.websocket.stream(conn, await mint.aio.receive(5))
        match responses:
            case [Data(data=data)]:
                pass
            case _:
                raise AssertionError(responses)
        websocket, frames = mint.aio.websocket.decode(websocket, data)
        assert frames == [Text("hello world")]
        assert mint.aio.mailbox() is not mint.mailbox()
        await mint.aio.http.close(conn)

    run(scenario())


# -- WebSocket over HTTP/2 ----------------------------------------------------------------------
async def _h2_websockets(flavour: Flavour, peer: Any, mode: str, count: int) -> None:
    """``count`` WebSockets and a GET multiplexed on one HTTP/2 connection."""
    client = await connect(flavour, peer, mode=mode, protocols=("http2",))
    try:
        assert flavour.http.protocol(client.conn) == "http2"
        sockets: list[Any] = []
        for _ in range(count):
            sub = Client(flavour, client.conn, mode, client.mailbox)
            await sub.upgrade("/echo")
            client.conn = sub.conn
            sockets.append(sub)
        for i, sub in enumerate(sockets):
            sub.conn = client.conn
            await sub.send(Text(f"message {i}"))
            client.conn = sub.conn
        client.conn, get = await flavour.http.request(client.conn, "GET", "/", [])
        got: dict[Any, list[Any]] = {sub.ref: [] for sub in sockets}
        websockets = {sub.ref: sub for sub in sockets}
        body, done = b"", False
        while not done or any(not frames for frames in got.values()):
            for response in await client.responses():
                match response:
                    case Data(ref=ref, data=data) if ref in websockets:
                        sub = websockets[ref]
                        sub.websocket, frames = flavour.websocket.decode(sub.websocket, data)
                        got[ref] += frames
                    case Data(ref=ref, data=data) if ref == get:
                        body += data
                    case Done(ref=ref) if ref == get:
                        done = True
        assert body == b"hello"
        assert [got[sub.ref] for sub in sockets] == [[Text(f"message {i}")] for i in range(count)]
    finally:
        await client.close()


@pytest.mark.parametrize("mode", MODES)
def test_answers_in_before_a_reset_a_write_found_are_delivered(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
    mode: str,
) -> None:
    # The server answers "/" in full, then resets; the caller writes before it reads.
    # The answer (in the socket, or queued in the mailbox by the loop's reader) came
    # as Error(ref, "closed") in the write's .responses; it now comes whole, first.
    peer = h2_fault()

    async def scenario() -> None:
        client = await connect(flavour, peer, mode=mode, protocols=("http2",))
        try:
            http = flavour.http
            client.conn, whole = await http.request(client.conn, "GET", "/", [])
            client.conn, abort = await http.request(client.conn, "GET", "/abort", [])
            await asyncio.sleep(0.3)  # the answer and the reset are in, nothing read
            failure = None
            for path in ("/a", "/b", "/c"):
                try:
                    client.conn, _ref = await http.request(client.conn, "GET", path, [])
                except mint.TransportError as exc:
                    failure = exc
                    break
                await asyncio.sleep(0.1)
            assert failure is not None, "no write failed"
            client.conn = failure.conn
            ends = [r for r in failure.responses if isinstance(r, Error | Done)]
            assert ends == [Done(whole), Error(abort, failure)], failure.responses
            assert b"".join(r.data for r in failure.responses if isinstance(r, Data)) == b"hello"
            assert not http.is_open(client.conn)
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("mode", MODES)
def test_a_reset_http2_connection_ends_every_open_request(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
    mode: str,
) -> None:
    # A TCP RST, not a FIN: each open request still ends, with an Error of its own.
    peer = h2_fault()

    async def scenario() -> None:
        client = await connect(flavour, peer, mode=mode, protocols=("http2",))
        try:
            client.conn, held = await flavour.http.request(client.conn, "GET", "/hold", [])
            client.conn, abort = await flavour.http.request(client.conn, "GET", "/abort", [])
            seen: list[Any] = []
            with pytest.raises(mint.TransportError) as info:
                while True:
                    seen += await client.responses()
            seen += info.value.responses
            client.conn = info.value.conn
            failure = mint.TransportError(info.value.reason)
            ends = [r for r in seen if isinstance(r, Error | Done)]
            assert ends == [Error(held, failure), Error(abort, failure)], seen
            assert flavour.http.open_request_count(client.conn) == 0
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("mode", MODES)
def test_http2_websockets_hypercorn(flavour: Flavour, hypercorn_h2c: Any, mode: str) -> None:
    run(_h2_websockets(flavour, hypercorn_h2c, mode, 3))


@pytest.mark.node
@pytest.mark.parametrize("mode", MODES)
def test_http2_websockets_node(flavour: Flavour, node_h2c: Any, mode: str) -> None:
    run(_h2_websockets(flavour, node_h2c, mode, 3))


@pytest.mark.node
def test_http2_websocket_node_tls(flavour: Flavour, node_h2_tls: Any) -> None:
    run(_h2_websockets(flavour, node_h2_tls, "active", 2))


@pytest.mark.node
def test_http2_ping(flavour: Flavour, node_h2c: Any) -> None:
    async def scenario() -> None:
        client = await connect(flavour, node_h2c, mode="passive", protocols=("http2",))
        try:
            client.conn, ref = await flavour.http.ping(client.conn)
            responses: list[Any] = []
            while mint.http.Pong(ref) not in responses:
                responses += await client.responses()
        finally:
            await client.close()

    run(scenario())


# -- HTTP ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_pipelined_requests(flavour: Flavour, hypercorn_h1: Any, mode: str) -> None:
    async def scenario() -> None:
        client = await connect(flavour, hypercorn_h1, mode=mode)
        try:
            refs = []
            for i in range(5):
                client.conn, ref = await flavour.http.request(
                    client.conn, "POST", "/echo-body", [], b"%d" % i
                )
                refs.append(ref)
            bodies = {ref: b"" for ref in refs}
            done: list[Any] = []
            while len(done) < len(refs):
                for response in await client.responses():
                    match response:
                        case Data(ref=ref, data=data):
                            bodies[ref] += data
                        case Done(ref=ref):
                            done.append(ref)
            assert done == refs  # in order
            assert [bodies[ref] for ref in refs] == [b"%d" % i for i in range(5)]
            # Each went out once: a request after them gets its own answer, and no
            # stray one (a request written twice was answered twice).
            client.conn, ref = await flavour.http.request(
                client.conn, "POST", "/echo-body", [], b"after"
            )
            got: list[Any] = []
            while not any(isinstance(r, Done) for r in got):
                got += await client.responses()
            assert [r.data for r in got if isinstance(r, Data)] == [b"after"]
            assert all(r.ref == ref for r in got)
            assert flavour.http.open_request_count(client.conn) == 0
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("mode", MODES)
def test_http2_streamed_request_body(flavour: Flavour, hypercorn_h2c: Any, mode: str) -> None:
    async def scenario() -> None:
        client = await connect(flavour, hypercorn_h2c, mode=mode, protocols=("http2",))
        try:
            http = flavour.http
            client.conn, ref = await http.request(
                client.conn, "POST", "/echo-body", [], mint.http.STREAM
            )
            chunk = b"x" * 100_000
            for _ in range(3):
                client.conn = await http.stream_request_body(client.conn, ref, chunk)
            client.conn = await http.stream_request_body(client.conn, ref, mint.http.EOF)
            body, done = b"", False
            while not done:
                for response in await client.responses():
                    match response:
                        case Data(data=data):
                            body += data
                        case Done():
                            done = True
            assert body == chunk * 3
        finally:
            await client.close()

    run(scenario())


# -- unhappy paths ------------------------------------------------------------------------------
def test_refused_port(flavour: Flavour, refused_port: int) -> None:
    async def scenario() -> None:
        with pytest.raises(mint.TransportError) as info:
            await flavour.http.connect("http", "127.0.0.1", refused_port)
        assert info.value.reason == "econnrefused"

    run(scenario())


@pytest.mark.parametrize("which", ["other", "wrong_host"])
def test_bad_certificate_is_a_tls_alert(
    flavour: Flavour, raw_server: Any, tls_ca: Any, which: str
) -> None:
    server = raw_server(never_answer, tls=which)

    async def scenario() -> None:
        with pytest.raises(mint.TransportError) as info:
            await flavour.http.connect(
                "https", "localhost", server.port, transport_opts={"cafile": tls_ca.cafile}
            )
        assert info.value.reason[0] == "tls_alert"

    run(scenario())


def test_connect_timeout(flavour: Flavour) -> None:
    """A TCP handshake nobody completes: a listener whose backlog is full."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(8):  # fill the accept queue: further SYNs are dropped
            filler = socket.socket()
            filler.setblocking(False)
            fillers.append(filler)
            try:
                filler.connect(listener.getsockname())
            except BlockingIOError:
                pass

        async def scenario() -> None:
            with pytest.raises(mint.TransportError) as info:
                conn = await flavour.http.connect(
                    "http", "127.0.0.1", listener.getsockname()[1], transport_opts={"timeout": 0.3}
                )
                await flavour.http.close(conn)  # the backlog had room after all
                pytest.skip("the kernel accepted past the backlog")
            assert info.value.reason == "timeout"

        run(scenario())
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_tls_handshake_timeout(flavour: Flavour, raw_server: Any) -> None:
    """A server that accepts TCP but never speaks TLS: the handshake times out."""
    server = raw_server(never_answer)

    async def scenario() -> None:
        with pytest.raises(mint.TransportError) as info:
            await flavour.http.connect(
                "https", "127.0.0.1", server.port, transport_opts={"timeout": 0.3}
            )
        assert info.value.reason == "timeout"

    run(scenario())


@pytest.mark.parametrize("mode", MODES)
def test_peer_vanishes_mid_frame(flavour: Flavour, raw_server: Any, mode: str) -> None:
    whole = frame(0x1, b"complete")
    truncated = frame(0x2, b"x" * 1000)[:300]
    server = raw_server(upgrade_then(whole + truncated, then_close=True))

    async def scenario() -> None:
        client = await connect(flavour, server, mode=mode)
        try:
            await client.upgrade("/")
            frames, error = await client.frames_until_error()
            assert error.reason == "closed"
            assert frames == [Text("complete")]
            assert not flavour.http.is_open(client.conn)
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("mode", MODES)
def test_close_notify_behind_the_last_bytes(flavour: Flavour, raw_server: Any, mode: str) -> None:
    """close_notify in the burst of the last bytes, TCP left open: the bytes, then
    ``"closed"``, in each flavour (the asyncio mailbox's loop reader included)."""
    release, opened = threading.Event(), threading.Event()
    script = close_notify_behind(frame(0x2, b"last"), release)
    server = raw_server(upgraded(script, opened), tls="good")

    async def scenario() -> None:
        client = await connect(flavour, server, mode=mode)
        try:
            await client.upgrade("/", scheme="wss")
            opened.set()
            frames, error = await client.frames_until_error(timeout=5.0)
            assert error.reason == "closed"
            assert frames == [Binary(b"last")]
            assert not flavour.http.is_open(error.conn)
        finally:
            release.set()
            await client.close()

    run(scenario())


@pytest.mark.parametrize("mode", MODES)
def test_a_reset_in_the_wake_up_of_the_last_bytes(
    flavour: Flavour, raw_server: Any, mode: str
) -> None:
    """The last bytes and a reset (RST) both there before the loop looks: the bytes,
    then ``"closed"``. uvloop runs a reader once at a socket error and then stops
    polling the socket for good; without a new reader the end would never come."""
    go, opened = threading.Event(), threading.Event()

    def script(conn: socket.socket) -> None:
        go.wait(10)
        conn.sendall(frame(0x2, b"last"))
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    server = raw_server(upgraded(script, opened))

    async def scenario() -> None:
        client = await connect(flavour, server, mode=mode)
        try:
            await client.upgrade("/")
            opened.set()
            # A wait first (it times out), so the loop has the socket's reader already.
            with pytest.raises((mint.TransportError, TimeoutError)):
                await client.responses(timeout=0.05)
            go.set()
            time.sleep(0.3)  # the loop does not look meanwhile: one wake-up sees both
            frames, error = await client.frames_until_error(timeout=5.0)
            assert error.reason == "closed"
            assert frames == [Binary(b"last")]
        finally:
            await client.close()

    run(scenario())


def test_passive_recv_times_out(flavour: Flavour, raw_server: Any) -> None:
    server = raw_server(never_answer)

    async def scenario() -> None:
        client = await connect(flavour, server, mode="passive")
        try:
            client.conn, client.ref = await flavour.websocket.upgrade("ws", client.conn, "/", [])
            with pytest.raises(mint.TransportError) as info:
                await flavour.websocket.recv(client.conn, 0, 0.2)
            assert info.value.reason == "timeout"
            assert info.value.conn is client.conn
            assert flavour.http.is_open(client.conn)
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
def test_a_wait_without_timeout_outlives_earlier_timeouts(
    flavour: Flavour, raw_server: Any, tls: bool
) -> None:
    # The connect (TLS handshake) and the reads before wait with timeouts that came
    # back early; a read with None after them must wait past those deadlines (a
    # timer of theirs left armed once made it fail with "timeout").
    def handler(conn: socket.socket) -> None:
        request = read_request(conn)
        if request:
            conn.sendall(handshake_response(request) + frame(0x2, b"first"))
            time.sleep(1.0)
            conn.sendall(frame(0x2, b"second"))
            drain(conn)

    server = raw_server(handler, tls="good" if tls else None)

    async def scenario() -> None:
        client = await connect(flavour, server, mode="passive", transport_opts={"timeout": 0.4})
        try:
            ws = flavour.websocket
            client.conn, client.ref = await ws.upgrade("wss" if tls else "ws", client.conn, "/", [])
            status, headers, early = await client.handshake(0.4)
            client.conn, client.websocket = ws.new(client.conn, client.ref, status, headers)
            client.websocket, client.early = ws.decode(client.websocket, early)
            assert await client.frames(1, 0.4) == [Binary(b"first")]
            started = time.monotonic()
            client.conn, responses = await ws.recv(client.conn, 0, None)
            assert time.monotonic() - started > 0.4
            data = b"".join(r.data for r in responses if isinstance(r, Data))
            assert ws.decode(client.websocket, data)[1] == [Binary(b"second")]
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("first", ["wss connect", "timed passive recv"])
def test_a_loops_dropped_connections_end_with_it(
    flavour: Flavour, ws_server: Any, wss_server: Any, first: str
) -> None:
    # Active connections on a loop's default mailbox, dropped without close: once the
    # loop is closed and gone, so are the mailbox and the sockets (as a thread's are
    # when it ends). A timer of a wait with a timeout (the TLS handshake's, a passive
    # read's) left armed on the connection held the loop, and so all of them, for ever.
    if not flavour.name.startswith("aio"):
        pytest.skip("the default mailbox of a loop is mint.aio's")
    tls = first == "wss connect"
    server = wss_server if tls else ws_server

    sockets: list[weakref.ref[socket.socket]] = []
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def open_and_drop() -> None:
        mode = "active" if tls else "passive"
        options = {"cafile": server.cafile} if tls else {}
        host = server.server_hostname or server.host
        conn = await flavour.http.connect(
            server.scheme, host, server.port, mode=mode, transport_opts=options
        )
        conn, _ref = await flavour.websocket.upgrade("wss" if tls else "ws", conn, "/echo", [])
        got: list[Any] = []
        while not any(isinstance(r, Done) for r in got):
            if mode == "passive":
                conn, responses = await flavour.websocket.recv(conn, 0, 5.0)
            else:
                conn, responses = await flavour.websocket.stream(conn, await mint.aio.receive(5))
            got += responses
        if mode == "passive":
            conn = flavour.http.set_mode(conn, "active")  # onto the loop's default mailbox
        sockets.append(weakref.ref(flavour.http.get_socket(conn)))

    async def scenario() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        for _ in range(10):
            await open_and_drop()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(2):
            run(scenario())
        gc.collect()
    assert [ref() for ref in loops] == [None, None]
    # Closed by the collector, as a dropped socket is, with its warning (whose record
    # still holds the closed socket).
    assert len(sockets) == 20
    assert all(ref() is None or ref().fileno() == -1 for ref in sockets)  # type: ignore[union-attr]
    assert sum(issubclass(w.category, ResourceWarning) for w in caught) >= 20


def answer_then_watch(answer: bytes, saw_end: threading.Event) -> Any:
    """A raw-server handler: read a request, send ``answer``, then set ``saw_end`` when
    the client's side of the connection ends."""

    def handler(conn: socket.socket) -> None:
        if read_request(conn):
            conn.sendall(answer)
            drain(conn)
            saw_end.set()

    return handler


GOOD = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ngood"
EVIL = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nEVIL!"


@pytest.mark.parametrize("mode", MODES)
def test_an_answer_nobody_asked_for_fails_and_closes(
    flavour: Flavour, raw_server: Any, mode: str
) -> None:
    # RFC 9112 6.3: a second answer behind the first is not kept for the next request
    # (it was handed out as its answer); Mint's {:unexpected_data, data}, and the
    # connection is closed.
    saw_end = threading.Event()
    server = raw_server(answer_then_watch(GOOD + EVIL, saw_end))

    async def scenario() -> None:
        client = await connect(flavour, server, mode=mode)
        try:
            client.conn, ref = await flavour.http.request(client.conn, "GET", "/1", [])
            got: list[Any] = []
            with pytest.raises(mint.HTTPError) as info:
                while True:
                    got += await client.responses(5.0)
            got += info.value.responses
            assert info.value.reason == ("unexpected_data", EVIL)
            assert [r.data for r in got if isinstance(r, Data)] == [b"good"]
            assert got[-1] == Done(ref)
            assert not flavour.http.is_open(info.value.conn)
            assert await asyncio.to_thread(saw_end.wait, 5.0)  # closed without close()
            with pytest.raises(mint.HTTPError):
                await flavour.http.request(info.value.conn, "GET", "/2", [])
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("mode", MODES)
def test_a_connection_close_answer_closes_the_socket(
    flavour: Flavour, raw_server: Any, mode: str
) -> None:
    # RFC 9112 9.6: the client closes after a response with "Connection: close"; a
    # caller that drops the connection then leaks nothing.
    saw_end = threading.Event()
    answer = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"
    server = raw_server(answer_then_watch(answer, saw_end))

    async def scenario() -> None:
        client = await connect(flavour, server, mode=mode)
        try:
            client.conn, ref = await flavour.http.request(client.conn, "GET", "/", [])
            got: list[Any] = []
            while Done(ref) not in got:
                got += await client.responses(5.0)
            assert not flavour.http.is_open(client.conn)
            assert await asyncio.to_thread(saw_end.wait, 5.0)
            assert flavour.http.open_request_count(client.conn) == 0
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("mode", MODES)
def test_an_http2_connection_error_sends_goaway_and_closes(
    flavour: Flavour, raw_server: Any, mode: str
) -> None:
    # RFC 9113 5.4.1: on a connection error the client sends GOAWAY and closes; both
    # now happen at the read that met the error (the GOAWAY waited for the caller's
    # next write, the socket for its close).
    frame_types: list[int] = []
    saw_end = threading.Event()

    def handler(conn: socket.socket) -> None:
        got = b""
        while len(got) < 24:  # the client's preface
            got += conn.recv(65536)
        conn.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # SETTINGS
        time.sleep(0.2)
        # RST_STREAM on stream 0: a connection error (PROTOCOL_ERROR)
        conn.sendall(b"\x00\x00\x04\x03\x00\x00\x00\x00\x00\x00\x00\x00\x01")
        got += drain(conn)
        at = 24
        while at + 9 <= len(got):
            frame_types.append(got[at + 3])
            at += 9 + int.from_bytes(got[at : at + 3], "big")
        saw_end.set()

    server = raw_server(handler)

    async def scenario() -> None:
        client = await connect(flavour, server, mode=mode, protocols=("http2",))
        try:
            with pytest.raises(mint.HTTPError) as info:
                while True:
                    await client.responses(5.0)
            assert info.value.reason[0] == "protocol_error"
            assert not flavour.http.is_open(info.value.conn)
            assert await asyncio.to_thread(saw_end.wait, 5.0)  # without close()
            assert frame_types[-1] == 7  # GOAWAY, the last thing sent
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("how", ["close", "connection: close answer"])
def test_a_tls_close_sends_close_notify(flavour: Flavour, raw_server: Any, how: str) -> None:
    # RFC 8446 6.1: close_notify before closing, so the peer can tell the end from a
    # cut (a server reading with suppress_ragged_eofs=False sees the difference).
    ends: list[str] = []
    answer = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"

    def handler(conn: socket.socket) -> None:
        assert isinstance(conn, ssl.SSLSocket)
        conn.suppress_ragged_eofs = False
        if not read_request(conn):
            return
        if how != "close":
            conn.sendall(answer)
        try:
            while conn.recv(4096):
                pass
            ends.append("close_notify")
        except ssl.SSLEOFError:
            ends.append("cut")

    server = raw_server(handler, tls="good")

    async def scenario() -> None:
        client = await connect(flavour, server, mode="passive")
        client.conn, ref = await flavour.http.request(client.conn, "GET", "/", [])
        if how == "close":
            await client.close()
        else:
            got: list[Any] = []
            while Done(ref) not in got:
                got += await client.responses(5.0)  # the library closes after it
        for _ in range(100):
            if ends:
                break
            await asyncio.sleep(0.05)
        assert ends == ["close_notify"]
        await client.close()

    run(scenario())


def test_connects_sharing_a_context_each_offer_their_protocols(
    flavour: Flavour, hypercorn_tls: Any
) -> None:
    # ALPN lives on the context in Python's ssl: connects sharing the caller's context
    # (tasks between their awaits, threads) each get the protocols they asked for.
    context = ssl.create_default_context(cafile=hypercorn_tls.cafile)

    async def one(protocols: tuple[str, ...]) -> str:
        conn = await flavour.http.connect(
            "https",
            hypercorn_tls.server_hostname,
            hypercorn_tls.port,
            protocols=protocols,
            mode="passive",
            transport_opts={"ssl_context": context},
        )
        try:
            return str(flavour.http.protocol(conn))
        finally:
            await flavour.http.close(conn)

    async def scenario() -> None:
        for _ in range(5):
            got = await asyncio.gather(one(("http1",)), one(("http2",)), one(("http1",)))
            assert list(got) == ["http1", "http2", "http1"]

    run(scenario())


@pytest.mark.parametrize(
    ("timeout", "expect"),
    [(0, "timeout"), (float("inf"), "open"), (1e300, "open"), (10**400, "open")],
    ids=["0", "inf", "1e300", "10**400"],
)
def test_connect_and_read_timeouts_at_the_ends(
    flavour: Flavour, ws_server: Any, timeout: float, expect: str
) -> None:
    # 0 cannot connect (as asyncio's own timeout says, not an EINPROGRESS os_error);
    # inf and other timeouts no clock can add mean no timeout, for connect and reads.
    async def scenario() -> None:
        options = {"timeout": timeout}
        if expect == "timeout":
            with pytest.raises(mint.TransportError) as info:
                await flavour.http.connect(
                    "http", ws_server.host, ws_server.port, transport_opts=options
                )
            assert info.value.reason == "timeout"
            return
        client = await connect(flavour, ws_server, mode="passive", transport_opts=options)
        try:
            await client.upgrade()
            await client.send(Text("forever"))
            client.conn, responses = await flavour.websocket.recv(client.conn, 0, timeout)
            data = b"".join(r.data for r in responses if isinstance(r, Data))
            assert flavour.websocket.decode(client.websocket, data)[1] == [Text("forever")]
            client.conn = flavour.http.set_mode(client.conn, "active")
            box = mint.Mailbox()
            client.conn = flavour.http.controlling_process(client.conn, box)
            await client.send(Text("again"))
            assert isinstance(await flavour.receive(box, timeout), mint.SocketData)
            box.close()
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize(
    "timeout", [-1, -1e300, -(10**400), float("-inf")], ids=["-1", "-1e300", "-10**400", "-inf"]
)
def test_negative_read_timeouts_are_at_once(
    flavour: Flavour, ws_server: Any, timeout: float
) -> None:
    # Negative is "at once", however large: -10**400 raised a raw OverflowError from
    # recv and receive (a clock cannot add it), where -1 timed out.
    async def scenario() -> None:
        client = await connect(flavour, ws_server, mode="passive")
        box = mint.Mailbox()
        try:
            await client.upgrade()
            with pytest.raises(mint.TransportError) as info:
                await flavour.websocket.recv(client.conn, 0, timeout)
            assert info.value.reason == "timeout"
            client.conn = info.value.conn
            with pytest.raises(TimeoutError):
                await flavour.receive(box, timeout)
            box.send("queued")  # what is there is still handed out
            assert await flavour.receive(box, timeout) == "queued"
        finally:
            box.close()
            await client.close()

    run(scenario())


def test_unusable_names_and_ca_files_are_typed(flavour: Flavour, tmp_path: Any) -> None:
    not_a_cert = tmp_path / "not-a-cert.pem"
    not_a_cert.write_text("this is no certificate\n")

    async def scenario() -> None:
        with pytest.raises(mint.TransportError) as info:
            await flavour.http.connect("http", "a" * 64 + ".com", 80)  # IDNA refuses it
        assert info.value.reason == "nxdomain"
        with pytest.raises(mint.HTTPError) as bad:
            await flavour.http.connect(
                "https", "localhost", 443, transport_opts={"cafile": str(not_a_cert)}
            )
        assert bad.value.reason[:3] == ("invalid_transport_opts", "cafile", str(not_a_cert))

    run(scenario())


def _upgrade_and_hold(release: threading.Event) -> Any:
    """A 101, then nothing read until ``release``: a client's big send fills the socket."""

    def handler(conn: socket.socket) -> None:
        request = read_request(conn)
        if request:
            conn.sendall(handshake_response(request))
            release.wait(10.0)

    return handler


@pytest.mark.parametrize("mode", ["passive", "active"])
def test_send_timeout_bounds_a_write_to_a_peer_that_stops_reading(
    flavour: Flavour, raw_server: Any, mode: str
) -> None:
    # transport_opts' send_timeout (:gen_tcp's option): a write to a peer that stops
    # reading blocked for ever, and nothing could bound it in a blocking program. The
    # write ends with TransportError "timeout"; what it had not written goes out
    # first when the peer reads again, so the byte stream stays whole.
    release = threading.Event()
    received: list[Any] = []

    def handler(conn: socket.socket) -> None:
        request = read_request(conn)
        if not request:
            return
        conn.sendall(handshake_response(request))
        release.wait(20.0)
        data = bytearray()
        while len(data) < wire:  # (read at once: the client's send waits 0.5 s at most)
            more = conn.recv(1 << 22)
            if not more:
                return
            data += more
        received.extend(parse_frames(bytes(data))[0])

    server = raw_server(handler)
    big = bytes(range(256)) * (1 << 18)  # 64 MiB: more than the socket buffers hold
    wire = (14 + len(big)) + (6 + len(b"after"))  # both frames, masked, as they go out

    async def scenario() -> None:
        client = await connect(flavour, server, mode=mode, transport_opts={"send_timeout": 0.5})
        try:
            await client.upgrade()
            started = time.monotonic()
            with pytest.raises(mint.TransportError) as info:
                await client.send(Binary(big))
            waited = time.monotonic() - started
            assert info.value.reason == "timeout"
            assert 0.4 < waited < 5.0
            client.conn = info.value.conn
            assert flavour.http.is_open(client.conn)
            release.set()
            await client.send(Text("after"))  # the rest of the big one goes first
            for _ in range(200):
                if len(received) == 2:
                    break
                await asyncio.sleep(0.05)
            assert [(f.opcode, len(f.payload)) for f in received] == [(2, len(big)), (1, 5)]
            assert received[0].payload == big and received[1].payload == b"after"
        finally:
            release.set()
            await client.close()

    run(scenario())


BIG = bytes(range(256)) * (1 << 15)  # 8 MiB: more than the socket buffers hold


async def timed_out_send(client: Client) -> None:
    """Send ``BIG`` to a server that reads nothing yet: it hits its send_timeout."""
    with pytest.raises(mint.TransportError) as info:
        await client.send(Binary(BIG))
    assert info.value.reason == "timeout"
    client.conn = info.value.conn


@pytest.mark.parametrize("tls", [None, "good"], ids=["plain", "tls"])
@pytest.mark.parametrize("mode", ["passive", "active"])
def test_the_rest_of_a_timed_out_send_goes_out_while_the_caller_waits_for_the_answer(
    flavour: Flavour, raw_server: Any, mode: str, tls: str | None
) -> None:
    # A request/response caller whose message hit its send_timeout waits for the
    # answer, and sends nothing more. The blocking flavour wrote the rest only with
    # the next send: its reads (recv, the mailbox's receive) never did, the server
    # never had the whole message, and the answer never came. (The asyncio flavours
    # write it from the loop.)
    peer = AnswersTheWholeMessage(BIG)
    server = raw_server(peer, tls=tls)

    async def scenario() -> None:
        client = await connect(flavour, server, mode=mode, transport_opts={"send_timeout": 0.3})
        try:
            await client.upgrade(scheme="wss" if tls else "ws")
            await timed_out_send(client)
            threading.Timer(0.2, peer.release.set).start()  # (the server reads on, later)
            assert await client.frames(1, timeout=10.0) == [Text("ok")]
        finally:
            peer.stop()
            await client.close()

    run(scenario())


def test_a_mailbox_read_from_two_threads_writes_what_a_timed_out_send_left_once(
    raw_server: Any,
) -> None:
    # Both threads' waits wrote the same owed bytes (the server got them twice, a
    # corrupt message), and one cut the bytearray the other was sending from (a raw
    # BufferError out of receive). One wait writes at a time now.
    peer = AnswersTheWholeMessage(BIG)
    server = raw_server(peer)
    sync = Flavour("sync")
    got: queue.Queue[object] = queue.Queue()
    stop = threading.Event()

    def reader(box: mint.Mailbox) -> None:
        while not stop.is_set():
            try:
                got.put(box.receive(0.02))
            except TimeoutError:
                pass
            except BaseException as exc:  # (kept for the test to see)
                got.put(exc)
                return

    async def scenario() -> None:
        client = await connect(sync, server, mode="active", transport_opts={"send_timeout": 0.3})
        assert client.mailbox is not None
        threads = [threading.Thread(target=reader, args=(client.mailbox,)) for _ in range(2)]
        try:
            await client.upgrade()
            await timed_out_send(client)
            for thread in threads:
                thread.start()
            peer.release.set()
            frames: list[Any] = []
            while not frames:
                message = got.get(timeout=10.0)
                assert not isinstance(message, BaseException), message
                result = mint.websocket.stream(client.conn, message)
                assert result is not mint.UNKNOWN
                client.conn, responses = result
                for response in responses:
                    if isinstance(response, Data):
                        client.websocket, more = mint.websocket.decode(
                            client.websocket, response.data
                        )
                        frames += more
            assert frames == [Text("ok")]
        finally:
            stop.set()
            for thread in threads:
                if thread.is_alive():
                    thread.join(5.0)
            peer.stop()
            await client.close()
        deadline = time.monotonic() + 5.0
        while not peer.after and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert peer.after == [b""]  # (nothing written twice)

    run(scenario())


def test_a_blocking_connections_mailbox_read_by_a_loop_writes_what_its_timed_out_send_left(
    raw_server: Any,
) -> None:
    # A blocking connection may be active on a mailbox a loop reads (areceive): the
    # loop now writes the rest as the socket drains, as the mailbox's receive does.
    peer = AnswersTheWholeMessage(BIG)
    server = raw_server(peer)
    sync = Flavour("sync")

    async def areceive(box: mint.Mailbox, timeout: float | None) -> object:
        return await box.areceive(timeout)

    sync.receive = areceive  # type: ignore[method-assign]

    async def scenario() -> None:
        client = await connect(sync, server, mode="active", transport_opts={"send_timeout": 0.3})
        try:
            await client.upgrade()
            await timed_out_send(client)
            threading.Timer(0.2, peer.release.set).start()
            assert await client.frames(1, timeout=10.0) == [Text("ok")]
        finally:
            peer.stop()
            await client.close()

    run(scenario())


@pytest.mark.parametrize("value", [-1, "1", float("nan")])
def test_send_timeout_is_checked(flavour: Flavour, ws_server: Any, value: Any) -> None:
    async def scenario() -> None:
        with pytest.raises(mint.HTTPError) as info:
            await flavour.http.connect(
                "http", ws_server.host, ws_server.port, transport_opts={"send_timeout": value}
            )
        assert info.value.reason[:2] == ("invalid_transport_opts", "send_timeout")

    run(scenario())


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
def test_a_passive_connection_dropped_without_close_lets_its_socket_go(
    flavour: Flavour, ws_server: Any, wss_server: Any, tls: bool
) -> None:
    # The loop reader a passive wait leaves registered (and its timer) held the
    # socket open for as long as the peer said nothing: a program that forgot a
    # close() ran out of descriptors on asyncio, not on the blocking flavour.
    server = wss_server if tls else ws_server

    async def scenario() -> None:
        selector = getattr(asyncio.get_running_loop(), "_selector", None)
        watched = None if selector is None else len(selector.get_map())
        sockets: list[Any] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # (any dropped socket's)
            await drop_three(sockets)
            for _ in range(3):
                await asyncio.sleep(0)
            gc.collect()
        assert [ref() for ref in sockets] == [None, None, None]
        if selector is not None:  # asyncio's loop: no reader left for a closed descriptor
            assert len(selector.get_map()) == watched

    async def drop_three(sockets: list[Any]) -> None:
        for _ in range(3):
            client = await connect(flavour, server, mode="passive", transport_opts={"timeout": 300})
            await client.upgrade()
            await client.send(Text("hello"))
            assert await client.frames(1) == [Text("hello")]
            with pytest.raises(mint.TransportError):  # a wait with a timeout: its timer
                await flavour.websocket.recv(client.conn, 0, 0.05)
            sockets.append(weakref.ref(flavour.http.get_socket(client.conn)))
            del client

    run(scenario())


@pytest.mark.parametrize("what", ["websocket", "request", "send"])
def test_a_close_ends_another_tasks_passive_wait(
    flavour: Flavour, raw_server: Any, what: str
) -> None:
    # Sharing a connection between tasks is the caller's to order; still, a task
    # waiting in recv when another closes the connection ends (TransportError
    # "closed"), rather than wait for ever with no reader and no timer left. A send
    # waiting for the socket to drain too: its loop writer was taken off only when
    # the woken send ran, after the socket had closed, and uvloop aborted the process
    # on the watcher of a closed descriptor ("Fatal Python error: Aborted").
    if not flavour.name.startswith("aio"):
        pytest.skip("one thread cannot close while it waits")
    release = threading.Event()
    if what == "websocket":
        server = raw_server(upgrade_then(then_close=False))
    elif what == "send":
        server = raw_server(_upgrade_and_hold(release))
    else:
        server = raw_server(never_answer)

    async def scenario() -> None:
        client = await connect(flavour, server, mode="passive")
        if what == "request":
            client.conn, _ref = await flavour.http.request(client.conn, "GET", "/", [])
        else:
            await client.upgrade()
        if what == "send":
            waiting = asyncio.ensure_future(client.send(Binary(bytes(64 << 20))))
        else:
            waiting = asyncio.ensure_future(flavour.websocket.recv(client.conn, 0, None))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await flavour.http.close(client.conn)
        with pytest.raises(mint.TransportError) as info:
            await asyncio.wait_for(waiting, 2.0)
        assert info.value.reason == "closed"
        await asyncio.sleep(0.05)  # loop iterations with the descriptor closed
        release.set()

    try:
        run(scenario())
    finally:
        release.set()


def _h2_open_server(conn: socket.socket) -> h2.connection.H2Connection:
    """The server side of an HTTP/2 connection with extended CONNECT and windows open
    as far as they go, its preface sent."""
    server = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
    )
    server.local_settings = h2.settings.Settings(
        client=False,
        initial_values={
            h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1,
        },
    )
    server.initiate_connection()
    server.increment_flow_control_window(2**31 - 1 - 65_535)
    conn.sendall(server.data_to_send())
    return server


def _h2_upgrade_and_hold(release: threading.Event, seen: list[Any] | None = None) -> Any:
    """HTTP/2 with extended CONNECT and open windows: a 200 to the WebSocket CONNECT,
    then nothing read until ``release``, so a client's big send fills the socket.
    After it, other requests are answered (200 "ok") once they end, and what the
    client sent is recorded in ``seen``: ``("request", stream, path)``, ``("reset",
    stream, code)``, ``("ping", data)``."""
    record = seen if seen is not None else []

    def handler(conn: socket.socket) -> None:
        server = _h2_open_server(conn)
        held = False
        ended: list[int] = []
        while True:
            data = conn.recv(65_536)
            if not data:
                return
            for event in server.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    path = dict(event.headers)[":path"]
                    record.append(("request", event.stream_id, path))
                    if not held:
                        held = True
                        server.send_headers(event.stream_id, [(":status", "200")])
                        conn.sendall(server.data_to_send())
                        release.wait(20.0)
                elif isinstance(event, h2.events.DataReceived):
                    server.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamReset):
                    record.append(("reset", event.stream_id, event.error_code))
                elif isinstance(event, h2.events.PingReceived):
                    record.append(("ping", event.ping_data))
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id != 1:
                    ended.append(event.stream_id)
            # (answered after the batch: a reset in it may have closed the stream)
            for stream_id in ended:
                if ("reset", stream_id, 8) not in record:
                    server.send_headers(stream_id, [(":status", "200")])
                    server.send_data(stream_id, b"ok", end_stream=True)
            ended.clear()
            conn.sendall(server.data_to_send())

    return handler


@pytest.mark.parametrize("what", ["request", "ping"])
def test_an_http2_request_that_timed_out_is_reset(
    flavour: Flavour, raw_server: Any, what: str
) -> None:
    # A request (or PING) whose write hits send_timeout raises, and the caller gets no
    # ref. Its frames were in what the socket had not taken, and went out first at
    # the next write (HPACK has the headers: they cannot be taken back): the server
    # ran the request and its answer was dropped without a word. The stream is now
    # reset (CANCEL) right behind its HEADERS, and the PING's ACK makes no Pong for
    # a ref the caller never got; the connection stays whole.
    release = threading.Event()
    seen: list[Any] = []
    server = raw_server(_h2_upgrade_and_hold(release, seen))

    async def scenario() -> None:
        client = await connect(
            flavour,
            server,
            mode="passive",
            protocols=("http2",),
            transport_opts={"send_timeout": 0.3},
        )
        try:
            http = flavour.http
            await client.upgrade()
            with pytest.raises(mint.TransportError):
                await client.send(Binary(bytes(64 << 20)))  # the socket is full
            with pytest.raises(mint.TransportError) as info:
                if what == "request":
                    await http.request(client.conn, "POST", "/post", [], b"x" * 1000)
                else:
                    await http.ping(client.conn, b"timedout")
            assert info.value.reason == "timeout"
            client.conn = info.value.conn
            assert http.is_open(client.conn)
            release.set()
            client.conn, ref = await http.request(client.conn, "GET", "/after", [])
            got: list[Any] = []
            while Done(ref) not in got:
                got += await client.responses(10.0)
            assert {response.ref for response in got} <= {client.ref, ref}, got
            client.conn, pong = await http.ping(client.conn, b"timedout")
            while not any(r.ref == pong for r in got):
                got += await client.responses(10.0)
            assert {response.ref for response in got} <= {client.ref, ref, pong}, got
            assert http.open_request_count(client.conn) == 1  # the WebSocket
            if what == "request":
                assert ("request", 3, "/post") in seen and ("reset", 3, 8) in seen, seen
            else:
                assert seen.count(("ping", b"timedout")) == 2, seen
            assert ("request", 5 if what == "request" else 3, "/after") in seen
        finally:
            release.set()
            await client.close()

    try:
        run(scenario())
    finally:
        release.set()


@pytest.mark.parametrize("pipelined", [False, True], ids=["alone", "pipelined"])
def test_an_http1_request_that_timed_out_ends_the_connection(
    flavour: Flavour, raw_server: Any, pipelined: bool
) -> None:
    # A request whose write hits send_timeout is cut mid-message and gives no ref;
    # its rest went out at the next write, and its answer was taken for the next
    # request's (GET /after got "answer to /post"). The connection now ends.
    release = threading.Event()

    def handler(conn: socket.socket) -> None:
        release.wait(20.0)
        with conn.makefile("rb") as reader:
            while True:
                line = reader.readline()
                if not line:
                    return
                length = 0
                while (header := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                reader.read(length)
                path = line.split()[1].decode()
                answer = f"answer to {path}".encode()
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(answer), answer)
                )

    server = raw_server(handler)

    async def scenario() -> None:
        client = await connect(
            flavour, server, mode="passive", transport_opts={"send_timeout": 0.3}
        )
        http = flavour.http
        try:
            if pipelined:
                client.conn, _first = await http.request(client.conn, "GET", "/first", [])
            with pytest.raises(mint.TransportError) as info:
                await http.request(client.conn, "POST", "/post", [], bytes(64 << 20))
            assert info.value.reason == "timeout"
            client.conn = info.value.conn
            assert not http.is_open(client.conn)
            assert client.conn._transport.sock.fileno() == -1
            with pytest.raises(mint.HTTPError) as refused:
                await http.request(client.conn, "GET", "/after", [])
            assert refused.value.reason == "closed"
        finally:
            release.set()
            await client.close()

    try:
        run(scenario())
    finally:
        release.set()


@pytest.mark.parametrize("owed", ["waiting send", "cancelled send", "send_timeout"])
def test_an_http2_close_never_waits_for_the_socket(
    flavour: Flavour, raw_server: Any, owed: str
) -> None:
    # close() sends HTTP/2's GOAWAY. It awaited the write behind a peer that stopped
    # reading (another task's send waiting its turn, or bytes a cancelled or timed-out
    # send still owed) and hung for ever; a close() cancelled there left the socket
    # open and the other send waiting. It now never waits: the GOAWAY goes if the
    # socket takes it at once, and the socket closes in any case.
    if flavour.name == "sync" and owed != "send_timeout":
        pytest.skip("one thread cannot close while it waits, nor cancel a send")
    release = threading.Event()
    server = raw_server(_h2_upgrade_and_hold(release))
    opts = {"send_timeout": 0.3} if owed == "send_timeout" else {}

    async def scenario() -> None:
        client = await connect(
            flavour, server, mode="passive", protocols=("http2",), transport_opts=opts
        )
        await client.upgrade()
        assert flavour.http.protocol(client.conn) == "http2"
        sending = asyncio.ensure_future(client.send(Binary(bytes(64 << 20))))
        if owed == "send_timeout":
            with pytest.raises(mint.TransportError) as timed_out:
                await asyncio.wait_for(sending, 10.0)
            assert timed_out.value.reason == "timeout"
        else:
            await asyncio.sleep(0.2)
            assert not sending.done()
            if owed == "cancelled send":
                sending.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await sending
        sock = client.conn._transport.sock
        await asyncio.wait_for(flavour.http.close(client.conn), 5.0)
        assert not flavour.http.is_open(client.conn)
        assert sock.fileno() == -1
        if owed == "waiting send":
            with pytest.raises(mint.TransportError) as info:
                await asyncio.wait_for(sending, 5.0)
            assert info.value.reason == "closed"

    try:
        run(scenario())
    finally:
        release.set()


@pytest.mark.parametrize("mode", MODES)
def test_an_http2_close_says_goaway(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
    mode: str,
) -> None:
    # RFC 9113 6.8: the GOAWAY(NO_ERROR) of close(), now written without waiting, still
    # reaches a peer that reads.
    peer = h2_fault()

    async def scenario() -> None:
        client = await connect(flavour, peer, mode=mode, protocols=("http2",))
        client.conn, ref = await flavour.http.request(client.conn, "GET", "/", [])
        got: list[Any] = []
        while Done(ref) not in got:
            got += await client.responses(5.0)
        await client.close()
        for _ in range(100):
            if peer.events("goaway") or peer.events("eof"):
                break
            await asyncio.sleep(0.05)
        assert [(what, code) for _, _, what, code in peer.events("goaway")] == [("goaway", 0)]

    run(scenario())


def test_a_request_the_socket_could_not_take_was_never_made(
    flavour: Flavour, raw_server: Any
) -> None:
    # The server answers the first request with "Connection: close" and closes; the
    # second request's bytes draw its reset, and the third's write fails. That one
    # raised and gave no ref: it is not counted, and no Error comes for it later.
    def handler(conn: socket.socket) -> None:
        if read_request(conn):
            conn.sendall(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok")
            conn.shutdown(socket.SHUT_WR)
            time.sleep(0.2)

    server = raw_server(handler)

    async def scenario() -> None:
        client = await connect(flavour, server, mode="passive")
        try:
            refs = []
            client.conn, ref = await flavour.http.request(client.conn, "GET", "/a", [])
            refs.append(ref)
            await asyncio.sleep(0.5)  # the server has answered and closed
            failed = None
            for path in ("/b", "/c", "/d"):
                try:
                    client.conn, ref = await flavour.http.request(client.conn, "GET", path, [])
                    refs.append(ref)
                    await asyncio.sleep(0.2)  # its reset comes back
                except mint.TransportError as exc:
                    failed = exc
                    break
            assert failed is not None, "no write failed"
            client.conn = failed.conn
            assert flavour.http.open_request_count(client.conn) == len(refs)
            got: list[Any] = []
            with pytest.raises(mint.TransportError) as info:
                while True:
                    got += await client.responses(5.0)
            got += info.value.responses
            assert {r.ref for r in got} <= set(refs)
            assert Done(refs[0]) in got
        finally:
            await client.close()

    run(scenario())


def test_active_receive_times_out(flavour: Flavour, raw_server: Any) -> None:
    server = raw_server(never_answer)

    async def scenario() -> None:
        client = await connect(flavour, server, mode="active")
        try:
            client.conn, client.ref = await flavour.websocket.upgrade("ws", client.conn, "/", [])
            assert client.mailbox is not None
            with pytest.raises(TimeoutError):
                await flavour.receive(client.mailbox, 0.2)
        finally:
            await client.close()

    run(scenario())


def test_a_closed_mailbox_is_refused_and_loses_nothing(flavour: Flavour, ws_server: Any) -> None:
    """A mailbox closed by the caller: ``connect(mailbox=)`` raised a raw ValueError
    after connecting (the socket stayed open, unreachable), ``controlling_process``
    the same after taking the connection off its mailbox (nothing delivered any more),
    and ``set_mode`` the same. Each is now ``HTTPError(("invalid_mailbox", box))``
    before anything is done: no socket opened, the connection where it was."""

    def client_sockets() -> int:
        gc.collect()
        return sum(
            1
            for obj in gc.get_objects()
            # (type(), not isinstance: a dead weakref proxy raises ReferenceError there)
            if issubclass(type(obj), socket.socket)
            and obj.fileno() >= 0
            and obj.type == socket.SOCK_STREAM
            and _peer_port(obj) == ws_server.port
        )

    async def scenario() -> None:
        closed = mint.Mailbox()
        closed.close()
        before = client_sockets()
        with pytest.raises(mint.HTTPError) as info:
            await flavour.http.connect(
                "http", ws_server.host, ws_server.port, mode="active", mailbox=closed
            )
        assert info.value.reason == ("invalid_mailbox", closed)
        assert client_sockets() == before
        client = await connect(flavour, ws_server, mode="active")
        try:
            await client.upgrade("/echo")
            with pytest.raises(mint.HTTPError) as info:
                flavour.http.controlling_process(client.conn, closed)
            assert info.value.reason == ("invalid_mailbox", closed)
            await client.send(Text("still here"))
            assert await client.frames() == [Text("still here")]  # from its own mailbox
            assert client.mailbox is not None
            client.conn = flavour.http.set_mode(client.conn, "passive")
            client.mailbox.close()
            with pytest.raises(mint.HTTPError) as info:
                flavour.http.set_mode(client.conn, "active")
            assert info.value.reason == ("invalid_mailbox", client.mailbox)
            assert flavour.http.is_open(client.conn)
        finally:
            await client.close()

    run(scenario())


def test_a_refused_switch_to_active_keeps_the_input_held(flavour: Flavour, ws_server: Any) -> None:
    """A connection switched to passive holds what its mailbox had queued for it. Its
    switch back to active, refused because that mailbox was closed meanwhile, had
    already posted the held input into the closed mailbox: the passive connection
    never saw it (a WebSocket's messages lost). Refused before anything moves now."""

    async def scenario() -> None:
        a = await connect(flavour, ws_server, mode="active")
        b = await connect(flavour, ws_server, mode="active")
        box = a.mailbox
        assert box is not None and b.mailbox is not None
        try:
            await a.upgrade("/echo")
            await b.upgrade("/echo")
            b.mailbox.close()
            b.conn = flavour.http.controlling_process(b.conn, box)
            b.mailbox = None
            await a.send(Text("for a"))
            await b.send(Text("for b " * 1000))
            await asyncio.sleep(0.3)  # both echoes in: one read takes both sockets' input
            message = await flavour.receive(box, 5)
            a_socket = flavour.http.get_socket(a.conn)
            first, other = (a, b) if getattr(message, "socket", None) is a_socket else (b, a)
            result = await flavour.websocket.stream(first.conn, message)
            assert result is not mint.UNKNOWN
            first.conn, _responses = result
            other.conn = flavour.http.set_mode(other.conn, "passive")  # the rest is held
            other.mode = "passive"
            box.close()
            with pytest.raises(mint.HTTPError) as info:
                flavour.http.set_mode(other.conn, "active")
            assert info.value.reason == ("invalid_mailbox", box)
            expected = Text("for a") if other is a else Text("for b " * 1000)
            assert await other.frames(timeout=5) == [expected]
        finally:
            await a.close()
            await b.close()

    run(scenario())


def test_a_passive_connection_goes_active_to_the_mailbox_it_was_connected_with(
    flavour: Flavour, ws_server: Any
) -> None:
    """``connect(..., mode="passive", mailbox=box)``, then ``set_mode(conn, "active")``:
    the input arrives in ``box``, as after ``controlling_process(conn, box)`` on a
    passive connection. The mailbox was dropped at connect, and the switch delivered
    to the thread's (or loop's) default mailbox, where nobody was waiting."""
    box = mint.Mailbox()

    async def scenario() -> None:
        conn = await flavour.http.connect(
            "http", ws_server.host, ws_server.port, mode="passive", mailbox=box
        )
        client = Client(flavour, conn, "passive")
        try:
            await client.upgrade("/echo")
            await client.send(Text("over the socket"))
            client.conn = flavour.http.set_mode(client.conn, "active")
            client.mode, client.mailbox = "active", box
            assert box.owns(client.conn._transport)
            assert await client.frames(timeout=5) == [Text("over the socket")]
        finally:
            await client.close()

    run(scenario())


def _peer_port(sock: socket.socket) -> int | None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        return int(sock.getpeername()[1])
    except OSError:
        return None


def _h2_ping_flood(conn: socket.socket) -> None:
    """HTTP/2 server that sends its SETTINGS, then PING frames without end, and reads
    nothing: every PING asks for an ACK that the client cannot get out. (Started with
    a small receive buffer: ``raw_server(..., rcvbuf=4096)``.)"""
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    server.initiate_connection()
    conn.sendall(server.data_to_send())
    ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"floodfld"  # PING, stream 0
    burst = ping * 4096
    conn.settimeout(30)
    try:
        while True:
            conn.sendall(burst)
    except OSError:
        return  # the client ended the connection


@pytest.mark.parametrize("mode", ["passive", "active"])
def test_an_http2_peer_that_floods_pings_and_reads_nothing_is_cut_off(
    flavour: Flavour, raw_server: Any, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # With send_timeout, a write the socket takes nothing of keeps its rest for the
    # next, and every read added its PING ACKs behind it: memory grew about a
    # megabyte a read, without end. Past a bound the connection ends, as nghttp2 ends
    # a flood (ENHANCE_YOUR_CALM). (Bound lowered here: the default is 16 MiB.)
    for module in ("mint.http._io", "mint.aio._http"):
        monkeypatch.setattr(f"{module}.MAX_BACKLOG_GROWTH", 256 * 1024)
    server = raw_server(_h2_ping_flood, rcvbuf=4096)

    async def scenario() -> None:
        client = await connect(
            flavour,
            server,
            mode=mode,
            protocols=("http2",),
            transport_opts={"send_timeout": 0.2},
        )
        http = flavour.http
        deadline = time.monotonic() + 30
        try:
            while True:
                assert time.monotonic() < deadline, "the flood was never cut off"
                try:
                    await client.responses(5.0)
                except mint.TransportError as exc:
                    assert exc.reason == "timeout", exc
                    client.conn = exc.conn
                except mint.HTTPError as exc:
                    assert mint.errors.reason_tag(exc.reason) == "enhance_your_calm", exc
                    client.conn = exc.conn
                    break
            assert not http.is_open(client.conn)
            held = len(client.conn._transport._unsent)
            assert held == 0  # closed: what it owed is let go
        finally:
            await client.close()

    run(scenario())


def _h2_answer_then_stall(conn: socket.socket) -> None:
    """HTTP/2 with extended CONNECT and open windows: a 200 to the first request, then
    nothing read ever again, and a PING every 50 ms (a peer that stalls but lives).
    (Started with ``rcvbuf=4096``.)"""
    server = _h2_open_server(conn)
    answered = False
    while not answered:
        data = conn.recv(65_536)
        if not data:
            return
        for event in server.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                server.send_headers(event.stream_id, [(":status", "200")])
                answered = True
        conn.sendall(server.data_to_send())
    conn.settimeout(30)
    try:
        while True:
            time.sleep(0.05)
            conn.sendall(b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"stalling")
    except OSError:
        return


def test_an_http2_peer_that_stalls_is_not_taken_for_a_flood(
    flavour: Flavour, raw_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The flood guard counted the caller's own timed-out writes as growth since the
    # first read behind the backlog: a peer that merely stalled, with two large
    # messages timed out, was cut off with enhance_your_calm. Only answers count.
    for module in ("mint.http._io", "mint.aio._http"):
        monkeypatch.setattr(f"{module}.MAX_BACKLOG_GROWTH", 64 * 1024)
    server = raw_server(_h2_answer_then_stall, rcvbuf=4096)

    async def scenario() -> None:
        client = await connect(
            flavour,
            server,
            mode="passive",
            protocols=("http2",),
            transport_opts={"send_timeout": 0.2},
        )
        try:
            await client.upgrade()
            for _ in range(3):
                with pytest.raises(mint.TransportError) as info:
                    await client.send(Binary(bytes(4 << 20)))  # the socket takes none
                assert info.value.reason == "timeout"
                client.conn = info.value.conn
                for _ in range(2):  # the PINGs, answered behind the backlog
                    try:
                        await client.responses(0.3)
                    except mint.TransportError as exc:
                        assert exc.reason == "timeout", exc
                        client.conn = exc.conn
            assert flavour.http.is_open(client.conn)
            assert client.conn._transport.owed_answers < 64 * 1024
        finally:
            await client.close()

    run(scenario())


def _record_until_closed(seen: bytearray, http2: bool) -> Any:
    """A server that says its HTTP/2 preface (``http2``) and keeps every byte the
    client writes, until the client closes."""

    def serve(conn: socket.socket) -> None:
        if http2:
            _h2_open_server(conn)
        conn.settimeout(10)
        try:
            while data := conn.recv(65_536):
                seen.extend(data)
        except OSError:
            return

    return serve


@pytest.mark.parametrize("protocol", ["http1", "http2"])
def test_a_ref_of_none_is_no_request_to_stream(
    flavour: Flavour, raw_server: Any, protocol: str
) -> None:
    # An upgraded HTTP/1.1 WebSocket's ref is its session's direct_ref, whose bytes
    # go out as they are; every other session's direct_ref is None, so a ref of None
    # (a variable still None after a failed upgrade) matched it: its bytes went out
    # raw, into the middle of a chunked body (a request smuggled in) or among HTTP/2's
    # frames (a SETTINGS frame the peer acted on).
    seen = bytearray()
    server = raw_server(_record_until_closed(seen, protocol == "http2"))

    async def scenario() -> None:
        client = await connect(flavour, server, mode="passive", protocols=(protocol,))
        http = flavour.http
        client.conn, ref = await http.request(client.conn, "POST", "/", [], mint.http.STREAM)
        client.conn = await http.stream_request_body(client.conn, ref, b"body-one")
        for chunk in (b"GET /smuggled HTTP/1.1\r\n\r\n", mint.http.EOF):
            with pytest.raises(mint.HTTPError) as info:
                await http.stream_request_body(client.conn, None, chunk)
            assert info.value.reason == "unknown_request_to_stream"
            assert info.value.conn is not None
            client.conn = info.value.conn
        assert http.is_open(client.conn)
        client.conn = await http.stream_request_body(client.conn, ref, b"body-two")
        client.conn = await http.stream_request_body(client.conn, ref, mint.http.EOF)
        await client.close()

    run(scenario())
    deadline = time.monotonic() + 10
    while b"body-two" not in seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert b"body-one" in seen and b"body-two" in seen
    assert b"smuggled" not in seen
