"""mint.aio: a write cancelled while it waits is still owed to the peer, in its place.

Two tasks on one connection (two WebSockets on one HTTP/2 connection, or a writer
and a sender of small messages on one WebSocket), one of them sending a large message
to a peer that reads slowly: the other's call waits its turn to write, and a timeout
cancels it there. The session that made its bytes has moved on by then (HPACK's
table, a deflate context, the stream it opened), so they cannot be taken back: they
must go out, in the order the sends began, and a request or upgrade whose call was
cancelled must not leave behind a stream the caller has no ref for.

The slow reader is a real peer (``websockets``, hypercorn, the h2 fault server) behind
:class:`servers.gate.GatedProxy`, which stops reading the client's bytes while held;
the client's send buffer is made small so that its writes wait at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from aio_client import Client, Flavour, connect, run, use_loop
from conftest_h2 import h2_fault  # noqa: F401 - fixture
from hyperframe.frame import GoAwayFrame
from servers.certs import TLSMaterial
from servers.gate import GatedProxy
from servers.one_shot import OneConnection
from servers.tls_front import TLSFront

import mint
import mint.aio
from mint.http import STREAM, Data, Done, Error, Headers, Pong, Status
from mint.websocket import Binary, Close, PerMessageDeflate, Text

WAIT = 30.0


@pytest.fixture(params=["aio", "aio-uvloop"])
def flavour(request: pytest.FixtureRequest) -> Iterator[Flavour]:
    chosen = Flavour(request.param)
    with use_loop(chosen):
        yield chosen


@pytest.fixture
def gated() -> Iterator[Callable[[Any], GatedProxy]]:
    """Factory: ``gated(peer) -> GatedProxy`` in front of ``peer``, stopped after the test."""
    proxies: list[GatedProxy] = []

    def start(peer: Any) -> GatedProxy:
        proxy = GatedProxy(peer)
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop()
    for proxy in proxies:
        if proxy.errors:
            raise proxy.errors[0]


def narrow(client: Client) -> None:
    """A small send buffer: with the proxy held, a write of a few tens of KiB waits."""
    client.conn._transport.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)


async def writing(client: Client, send: asyncio.Future[Any]) -> None:
    """Return once ``send`` waits for the socket, holding the turn to write."""
    deadline = time.monotonic() + WAIT
    while not client.conn._transport._waiter.writing:
        assert not send.done(), send
        assert time.monotonic() < deadline, "the send never had to wait"
        await asyncio.sleep(0.001)


async def requested(peer: Any, path: str) -> None:
    """Return once the h2 fault server ``peer`` has read a request for ``path``: a
    request sent just before a ``hold`` may still wait in the proxy's next read."""
    deadline = time.monotonic() + WAIT
    while not any(detail[1] == path for *_, detail in peer.events("request")):
        assert time.monotonic() < deadline, f"the server never read the request for {path}"
        await asyncio.sleep(0.001)


async def cancelled_in_line(call: Any) -> None:
    """Run ``call`` (a coroutine that waits its turn behind a held send) under a
    timeout that cancels it there."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await call


# -- one WebSocket, two tasks -------------------------------------------------------------
@pytest.mark.parametrize("deflate", [True, False], ids=["deflate", "plain"])
@pytest.mark.parametrize("mode", ["active", "passive"])
def test_messages_cancelled_in_line_go_out_in_their_place(
    request: pytest.FixtureRequest,
    flavour: Flavour,
    gated: Callable[[Any], GatedProxy],
    mode: str,
    deflate: bool,
) -> None:
    """A large message holds the socket; a message sent from another task meanwhile is
    cancelled by a timeout while it waits its turn, a third waits on, a fourth is
    cancelled too. Every one goes out, in the order the sends began.

    The cancelled send lost its bytes (taken from the caller, never kept): without
    permessage-deflate the message was silently gone; with it, the compression
    context had moved on past it and the server could not inflate the next message
    (it closed with 1007).
    """
    proxy = gated(request.getfixturevalue("ws_server_deflate" if deflate else "ws_server"))
    ws = flavour.websocket

    async def scenario() -> None:
        client = await connect(flavour, proxy, mode=mode)
        try:
            await client.upgrade("/echo", extensions=[PerMessageDeflate] if deflate else [])
            assert bool(client.websocket.extensions) is deflate
            narrow(client)
            conn, ref = client.conn, client.ref
            big = os.urandom(2**20)  # (incompressible: deflate leaves it large)
            proxy.hold()
            client.websocket, data = ws.encode(client.websocket, Binary(big))
            sending = asyncio.ensure_future(ws.stream_request_body(conn, ref, data))
            await writing(client, sending)
            client.websocket, data = ws.encode(client.websocket, Text("b"))
            await cancelled_in_line(ws.stream_request_body(conn, ref, data))
            client.websocket, data = ws.encode(client.websocket, Text("c"))
            waiting = asyncio.ensure_future(ws.stream_request_body(conn, ref, data))
            client.websocket, data = ws.encode(client.websocket, Text("d"))
            given_up = asyncio.ensure_future(ws.stream_request_body(conn, ref, data))
            await asyncio.sleep(0.01)
            given_up.cancel()
            await asyncio.sleep(0.01)
            assert given_up.cancelled() and not sending.done() and not waiting.done()
            proxy.release()
            await asyncio.wait_for(asyncio.gather(sending, waiting), WAIT)
            await client.send(Text("after"))
            frames = await client.frames(5, timeout=WAIT)
            assert frames == [Binary(big), Text("b"), Text("c"), Text("d"), Text("after")]
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("mode", ["active", "passive"])
def test_a_send_cancelled_as_its_turn_comes_passes_the_turn_on(
    flavour: Flavour, gated: Callable[[Any], GatedProxy], ws_server_deflate: Any, mode: str
) -> None:
    """The turn passes to a waiting send, and that send's task is cancelled before it
    runs (by the task whose send just ended, in the same step). It holds the turn
    then: it must pass it on with its bytes owed first, or every later send waits
    for ever and its message is lost."""
    proxy = gated(ws_server_deflate)
    ws = flavour.websocket

    async def scenario() -> None:
        client = await connect(flavour, proxy, mode=mode)
        try:
            await client.upgrade("/echo", extensions=[PerMessageDeflate])
            assert client.websocket.extensions
            narrow(client)
            conn, ref = client.conn, client.ref
            big = os.urandom(2**20)
            proxy.hold()
            client.websocket, big_data = ws.encode(client.websocket, Binary(big))
            client.websocket, b_data = ws.encode(client.websocket, Text("b"))
            client.websocket, c_data = ws.encode(client.websocket, Text("c"))
            second: list[asyncio.Future[Any]] = []

            async def big_then_cancel_the_next() -> None:
                await ws.stream_request_body(conn, ref, big_data)
                second[0].cancel()  # (its turn has come; it has not run yet)

            sending = asyncio.ensure_future(big_then_cancel_the_next())
            await writing(client, sending)
            second.append(asyncio.ensure_future(ws.stream_request_body(conn, ref, b_data)))
            third = asyncio.ensure_future(ws.stream_request_body(conn, ref, c_data))
            await asyncio.sleep(0.01)
            proxy.release()
            await asyncio.wait_for(asyncio.gather(sending, third), WAIT)
            assert second[0].cancelled()
            frames = await client.frames(3, timeout=WAIT)
            assert frames == [Binary(big), Text("b"), Text("c")]
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("peer_name", ["ws_server", "wss_server"])
def test_large_messages_given_up_in_line_all_go_out_from_the_loop(
    request: pytest.FixtureRequest,
    flavour: Flavour,
    gated: Callable[[Any], GatedProxy],
    peer_name: str,
) -> None:
    """Every send but the one holding the socket gives up its place in line: megabytes
    owed with no send left to write them, written from the loop as the socket drains,
    a part at a time (over TLS too, whose writes must be retried from where they
    stopped). All arrive whole and in order. (They were sliced off a ``bytes`` after
    every write, copying the rest each time: 8 s of CPU for 32 MiB owed to a socket
    taking a few KiB at a time, 0.7 s once cut from a bytearray; bench, not here.)"""
    proxy = gated(request.getfixturevalue(peer_name))
    ws = flavour.websocket

    async def scenario() -> None:
        client = await connect(flavour, proxy, mode="passive")
        try:
            await client.upgrade("/echo", scheme=proxy.ws_scheme)
            narrow(client)
            conn, ref = client.conn, client.ref
            frames = [Binary(bytes([n]) * 2**20 + os.urandom(64)) for n in range(6)]
            proxy.hold()
            sends = []
            for frame in frames:
                client.websocket, data = ws.encode(client.websocket, frame)
                sends.append(asyncio.ensure_future(ws.stream_request_body(conn, ref, data)))
                await asyncio.sleep(0)
            await writing(client, sends[0])
            for send in sends[1:]:
                send.cancel()
            await asyncio.sleep(0.01)
            assert all(send.cancelled() for send in sends[1:])
            proxy.release()
            await asyncio.wait_for(sends[0], WAIT)
            assert await client.frames(len(frames), timeout=WAIT) == frames
        finally:
            await client.close()

    run(scenario())


# -- HTTP/2: requests, upgrades and pings cancelled behind another stream's send ----------
async def read_until(client: Client, done: Callable[[list[Any]], bool]) -> list[Any]:
    """Every response read until ``done(responses so far)``."""
    seen: list[Any] = []
    while not done(seen):
        seen += await client.responses(WAIT)
    return seen


async def open_second(client: Client, flavour: Flavour, seen: list[Any]) -> tuple[Any, Any]:
    """Upgrade a second WebSocket on the connection; the responses read go to ``seen``."""
    ws = flavour.websocket
    client.conn, ref = await ws.upgrade("ws", client.conn, "/echo", [])
    seen += await read_until(
        client, lambda got: any(isinstance(r, Headers) and r.ref == ref for r in [*seen, *got])
    )
    status = next(r.status for r in seen if isinstance(r, Status) and r.ref == ref)
    headers = next(r.headers for r in seen if isinstance(r, Headers) and r.ref == ref)
    client.conn, websocket = ws.new(client.conn, ref, status, headers, mode=client.mode)
    return ref, websocket


def h2_peers() -> list[str]:
    return ["hypercorn_h2c", "hypercorn_tls", "fault"]


@pytest.mark.parametrize("where", ["in_line", "writing"])
@pytest.mark.parametrize("mode", ["active", "passive"])
@pytest.mark.parametrize("peer_name", h2_peers())
def test_http2_calls_cancelled_while_writing_leave_no_stream_behind(
    request: pytest.FixtureRequest,
    flavour: Flavour,
    gated: Callable[[Any], GatedProxy],
    h2_fault: Any,  # noqa: F811
    peer_name: str,
    mode: str,
    where: str,
) -> None:
    """One WebSocket's large message holds the socket; an ``upgrade``, a ``request``
    and a ``ping`` are cancelled by a timeout, each while waiting its turn to write
    (``in_line``) or, with the first send cancelled too, while writing what the
    socket had not taken (``writing``). Then the connection goes on: a new
    WebSocket opens and echoes, the first one's message comes back whole, nothing
    is reported for a ref the caller never got, and the count is right.

    Cancelled in line, the HEADERS were dropped after HPACK's table had them: the
    server failed to decode the next block (GOAWAY, every stream gone). Cancelled
    while writing, they went out later and the server opened streams (their
    ``Status`` came for refs nobody held; ``open_request_count`` stayed higher for
    good): each is now reset (CANCEL) right behind its HEADERS.
    """
    peer = h2_fault() if peer_name == "fault" else request.getfixturevalue(peer_name)
    proxy = gated(peer)
    ws, http = flavour.websocket, flavour.http

    async def scenario() -> None:
        client = await connect(flavour, proxy, mode=mode, protocols=("http2",))
        try:
            await client.upgrade("/echo")
            narrow(client)
            first = client.ref
            big = os.urandom(2**20)
            proxy.hold()
            client.websocket, data = ws.encode(client.websocket, Binary(big))
            sending = asyncio.ensure_future(ws.stream_request_body(client.conn, first, data))
            await writing(client, sending)
            if where == "writing":
                await cancelled_in_line(sending)  # (its rest is owed: it goes first)
                assert client.conn._transport._unsent
            conn = client.conn
            await cancelled_in_line(ws.upgrade("ws", conn, "/echo", []))
            await cancelled_in_line(http.request(conn, "GET", "/", []))
            await cancelled_in_line(http.ping(conn))
            assert http.open_request_count(conn) == 1
            proxy.release()
            if where == "in_line":
                await asyncio.wait_for(sending, WAIT)
            seen: list[Any] = []
            second, websocket = await open_second(client, flavour, seen)
            websocket, data = ws.encode(websocket, Text("two"))
            client.conn = await ws.stream_request_body(client.conn, second, data)
            mine = {first, second}
            sockets = {first: client.websocket, second: websocket}
            frames: dict[Any, list[Any]] = {first: [], second: []}
            read = 0
            while not (frames[first] and frames[second]):
                if read == len(seen):
                    seen += await client.responses(WAIT)
                    continue
                r = seen[read]
                read += 1
                if isinstance(r, Data) and r.ref in mine:
                    sockets[r.ref], got = ws.decode(sockets[r.ref], r.data)
                    frames[r.ref] += got
            assert frames == {first: [Binary(big)], second: [Text("two")]}
            strays = [r for r in seen if getattr(r, "ref", None) not in mine]
            assert strays == []
            assert not any(isinstance(r, Pong) for r in seen)
            assert http.open_request_count(client.conn) == 2
            assert http.is_open(client.conn)
            if peer_name == "fault":
                resets = peer.events("reset")
                assert len(resets) == 2, resets  # (the upgrade's and the request's)
                assert {code for *_, code in resets} == {8}  # CANCEL
        finally:
            await client.close()

    run(scenario())


# -- HTTP/1.1: a request cancelled half-written ---------------------------------------------
@pytest.mark.parametrize("mode", ["active", "passive"])
def test_http1_request_cancelled_half_written_ends_the_connection(
    flavour: Flavour, gated: Callable[[Any], GatedProxy], hypercorn_h1: Any, mode: str
) -> None:
    """A POST whose body the socket has not taken when a timeout cancels it: the rest
    goes out later (a request cut short would leave the server waiting for it), so
    the server answers a request the caller got no ref for, and that answer would be
    taken for the next request's. The connection ends, as on a write timeout
    (``send_timeout``): closed, not counting the request, the next call told so."""
    proxy = gated(hypercorn_h1)
    http = flavour.http

    async def scenario() -> None:
        client = await connect(flavour, proxy, mode=mode)
        try:
            narrow(client)
            proxy.hold()
            conn = client.conn
            await cancelled_in_line(http.request(conn, "POST", "/echo-body", [], os.urandom(2**20)))
            proxy.release()
            assert not http.is_open(conn)
            assert http.open_request_count(conn) == 0
            with pytest.raises(mint.HTTPError) as raised:
                await http.request(conn, "GET", "/", [])
            assert raised.value.reason == "closed"
            # The next read says so, in either mode: a task on the mailbox was told
            # nothing (the cancelled call would have raised it), and waited for ever.
            with pytest.raises(mint.TransportError) as told:
                await client.responses(5)
            assert told.value.reason == "closed"
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("mode", ["active", "passive"])
def test_http1_an_untold_end_comes_after_the_answers_already_read(
    flavour: Flavour, gated: Callable[[Any], GatedProxy], hypercorn_h1: Any, mode: str
) -> None:
    """A GET answered in full (its answer in the mailbox's queue, or in the socket),
    then a POST a cancel cut short: the end came as the GET's Error("closed"), and its
    answer, already there, was lost. A failed write reads the peer's last words first;
    a cancelled one now does too."""
    proxy = gated(hypercorn_h1)
    http = flavour.http

    async def scenario() -> None:
        client = await connect(flavour, proxy, mode=mode)
        try:
            client.conn, ref = await http.request(client.conn, "GET", "/", [])
            await asyncio.sleep(0.3)  # (the answer arrives; nobody streams it yet)
            narrow(client)
            proxy.hold()
            await cancelled_in_line(
                http.request(client.conn, "POST", "/echo-body", [], os.urandom(2**20))
            )
            proxy.release()
            with pytest.raises(mint.TransportError) as told:
                await client.responses(5)
            assert told.value.reason == "closed"
            mine = [r for r in told.value.responses if r.ref == ref]
            assert mine[0] == Status(ref, 200)
            assert isinstance(mine[1], Headers)
            assert mine[-1] == Done(ref)
            assert not any(isinstance(r, Error) for r in told.value.responses)
        finally:
            await client.close()

    run(scenario())


def test_http1_an_untold_end_reads_nothing_past_a_message_the_caller_holds(
    flavour: Flavour, gated: Callable[[Any], GatedProxy], hypercorn_h1: Any
) -> None:
    """GET / answered, its message taken from the mailbox and held; GET /chunked
    answered behind it; then a POST a cancel cut short. The end's last words were read
    past the held message: /chunked's answer was parsed first, as the answer to GET /
    (its Data and Done under the first ref), and the held message was dropped. Then
    nothing was read past it, and both answers were lost. The end now waits for the
    held message: its read gives both answers, in order, then says the end."""
    proxy = gated(hypercorn_h1)
    http = flavour.http

    async def scenario() -> None:
        client = await connect(flavour, proxy, mode="active")
        assert client.mailbox is not None
        try:
            client.conn, first = await http.request(client.conn, "GET", "/", [])
            held = await client.mailbox.areceive(WAIT)
            assert isinstance(held, mint.SocketData) and held.data
            client.conn, second = await http.request(client.conn, "GET", "/chunked", [])
            await asyncio.sleep(0.3)  # (its answer arrives behind the held one)
            narrow(client)
            proxy.hold()
            await cancelled_in_line(
                http.request(client.conn, "POST", "/echo-body", [], os.urandom(2**20))
            )
            proxy.release()
            # No more requests meanwhile: the server would take the next for the body.
            with pytest.raises(mint.HTTPError) as refused:
                await http.request(client.conn, "GET", "/", [])
            assert refused.value.reason == "closed"
            with pytest.raises(mint.TransportError) as told:
                await http.stream(client.conn, held)
            assert told.value.reason == "closed"
            got = told.value.responses
            assert [r.data for r in got if isinstance(r, Data) and r.ref == first] == [b"hello"]
            assert b"".join(r.data for r in got if isinstance(r, Data) and r.ref == second)
            assert [r for r in got if isinstance(r, Done)] == [Done(first), Done(second)]
            assert not any(isinstance(r, Error) for r in got)
            assert not http.is_open(client.conn)
        finally:
            await client.close()

    run(scenario())


def answers_a_then_b_then_the_post(conn: socket.socket) -> None:
    """Answers GET /a at once, GET /b 0.3 s later, and the POST (once its head came,
    its body read no further) a second after that."""
    seen = b""
    while seen.count(b"\r\n\r\n") < 2:
        seen += conn.recv(65536)
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n%s"
    conn.sendall(answer % b"AAAA")
    time.sleep(0.3)
    conn.sendall(answer % b"BBBB")
    while seen.count(b"\r\n\r\n") < 3:
        seen += conn.recv(65536)
    time.sleep(1.0)
    conn.sendall(answer % b"CCCC")
    time.sleep(2)


@pytest.mark.parametrize("holder", ["streams it", "is gone"])
def test_http1_an_end_that_waits_for_a_held_message_is_told_and_bounded(
    flavour: Flavour, raw_server: Any, holder: str
) -> None:
    """The end of a cancelled request waits for the message the caller holds. The
    server's answer to the cancelled POST read meanwhile made the end an
    HTTPError(("unexpected_data", b"...CCCC")); and a holder that never streamed its
    message (a task cancelled between areceive and stream) left the end untold for
    ever. The mailbox now reads nothing of the connection while it waits, and the
    empty message behind its queue says the end if the holder is gone."""
    server = raw_server(answers_a_then_b_then_the_post, rcvbuf=4096)
    http = flavour.http

    async def scenario() -> None:
        client = await connect(flavour, server, mode="active")
        assert client.mailbox is not None
        try:
            client.conn, a = await http.request(client.conn, "GET", "/a", [])
            client.conn, b = await http.request(client.conn, "GET", "/b", [])
            held = await client.mailbox.areceive(WAIT)
            narrow(client)
            await cancelled_in_line(
                http.request(client.conn, "POST", "/c", [], os.urandom(4 * 2**20))
            )
            await asyncio.sleep(1.5)  # (/b's answer and the POST's come meanwhile)
            got: list[Any] = []
            with pytest.raises(mint.TransportError) as told:
                if holder == "streams it":
                    result = await http.stream(client.conn, held)
                    assert result is not mint.UNKNOWN
                    client.conn, responses = result
                    got += responses
                while True:
                    got += await client.responses(5)
            assert told.value.reason == "closed"
            got += told.value.responses
            bodies = {r.ref: r.data for r in got if isinstance(r, Data)}
            if holder == "streams it":
                assert bodies == {a: b"AAAA", b: b"BBBB"}
            else:
                assert b not in bodies  # (nothing is read past a message held)
        finally:
            await client.close()

    run(scenario())


def answers_two_then_the_third_early(conn: socket.socket) -> None:
    """Reads the heads of GET /a, GET /b and a POST, answers all three (the POST's early,
    a 413), then reads nothing more."""
    seen = b""
    while seen.count(b"\r\n\r\n") < 3:
        chunk = conn.recv(65536)
        if not chunk:
            return
        seen += chunk
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s"
    conn.sendall(
        answer % (1, b"a")
        + answer % (1, b"b")
        + b"HTTP/1.1 413 Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
    time.sleep(2)


@pytest.mark.parametrize("mode", ["active", "passive"])
def test_http1_an_untold_end_keeps_the_answers_parsed_before_a_break(
    flavour: Flavour, raw_server: Any, mode: str
) -> None:
    """/a and /b answered, then the cancelled POST's own early 413, all in one read of
    the end's last words: h11 refused the 413 (the POST was abandoned), and the answers
    it had parsed before went with its error."""
    server = raw_server(answers_two_then_the_third_early, rcvbuf=4096)
    http = flavour.http

    async def scenario() -> None:
        client = await connect(flavour, server, mode=mode)
        try:
            client.conn, a = await http.request(client.conn, "GET", "/a", [])
            client.conn, b = await http.request(client.conn, "GET", "/b", [])
            narrow(client)
            await cancelled_in_line(
                http.request(client.conn, "POST", "/c", [], os.urandom(4 * 2**20))
            )
            with pytest.raises(mint.TransportError) as told:
                await client.responses(5)
            assert told.value.reason == "closed"
            got = told.value.responses
            assert [r for r in got if isinstance(r, Data)] == [Data(a, b"a"), Data(b, b"b")]
            assert Done(a) in got and Done(b) in got
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize(
    ("mode", "switch"),
    [("passive", "to active"), ("active", "to another mailbox"), ("active", "passive, active")],
)
def test_http1_an_untold_end_reaches_the_mailbox_the_connection_moves_to(
    flavour: Flavour, gated: Callable[[Any], GatedProxy], hypercorn_h1: Any, mode: str, switch: str
) -> None:
    """The end of a connection whose request a cancel cut short is told once, by the
    next read, wherever its input goes by then: its SocketClosed went to the mailbox it
    was on (or to none, passive), and a move took it off that one, so a task waiting on
    the new one waited for ever."""
    proxy = gated(hypercorn_h1)
    http = flavour.http

    async def scenario() -> None:
        client = await connect(flavour, proxy, mode=mode)
        other = mint.Mailbox()
        try:
            narrow(client)
            proxy.hold()
            await cancelled_in_line(
                http.request(client.conn, "POST", "/echo-body", [], os.urandom(2**20))
            )
            proxy.release()
            if switch == "to active":
                client.conn = http.set_mode(client.conn, "active")
                client.mailbox = client.conn._mailbox  # (the loop's default)
            elif switch == "to another mailbox":
                client.conn = http.controlling_process(client.conn, other)
                client.mailbox = other
            else:
                client.conn = http.set_mode(http.set_mode(client.conn, "passive"), "active")
            client.mode = "active"
            with pytest.raises(mint.TransportError) as told:
                await client.responses(5)
            assert told.value.reason == "closed"
            # Told once: a second read finds nothing more of it.
            with pytest.raises(TimeoutError):
                await client.responses(0.2)
        finally:
            other.close()
            await client.close()

    run(scenario())


# -- HTTP/2: several tasks waiting for the windows at once ---------------------------------------
@pytest.mark.parametrize("mode", ["active", "passive"])
def test_http2_sends_of_several_tasks_waiting_for_the_windows(
    flavour: Flavour, hypercorn_h2c: Any, mode: str
) -> None:
    """Two WebSockets of one connection, two sending tasks each, every message larger
    than the 1 MiB mark at which a send reads the connection for WINDOW_UPDATEs
    (``_await_window``): several sends wait for the windows at once.

    Each read the socket beside the others: one wait replaced another's and the
    sends (and the mailbox's reader, whose connection was taken off it) waited for
    ever; or each kept what it read until it ended, and the echoes came out of
    order. Now one reads at a time; every message comes back whole, in call order.
    """
    ws = flavour.websocket
    size = 2 * 2**20

    async def scenario() -> None:
        client = await connect(flavour, hypercorn_h2c, mode=mode, protocols=("http2",))
        try:
            await client.upgrade("/echo")
            seen: list[Any] = []
            second, websocket = await open_second(client, flavour, seen)
            sockets = {client.ref: client.websocket, second: websocket}
            sent: dict[Any, list[Any]] = {client.ref: [], second: []}
            sends = []
            for n in range(4):
                ref = (client.ref, second)[n % 2]
                frame = Binary(bytes([n]) * size)
                sockets[ref], data = ws.encode(sockets[ref], frame)
                sent[ref].append(frame)
                sends.append(ws.stream_request_body(client.conn, ref, data))
            echoed: dict[Any, list[Any]] = {client.ref: [], second: []}

            async def read(count: int) -> None:
                at = 0
                while sum(map(len, echoed.values())) < count:
                    if at == len(seen):
                        seen.extend(await client.responses(WAIT))
                        continue
                    r = seen[at]
                    at += 1
                    if isinstance(r, Data) and r.ref in echoed:
                        sockets[r.ref], frames = ws.decode(sockets[r.ref], r.data)
                        echoed[r.ref] += frames

            if mode == "active":  # (a passive connection is read by the sends themselves)
                await asyncio.wait_for(asyncio.gather(read(4), *sends), WAIT)
            else:
                await asyncio.wait_for(asyncio.gather(*sends), WAIT)
                await asyncio.wait_for(read(4), WAIT)
            assert echoed == sent
        finally:
            await client.close()

    run(scenario())


def test_http2_stream_cancelled_while_its_answer_waits_in_line_keeps_its_responses(
    flavour: Flavour,
    gated: Callable[[Any], GatedProxy],
    h2_fault: Any,  # noqa: F811
) -> None:
    """Active mode: ``stream`` reads a server PING with a response, and its ack waits
    its turn behind another task's send when a timeout cancels it. The responses are
    kept for the next call, and the mailbox is told: they waited for the server's
    next bytes, and it had nothing more to say (the caller waited for ever)."""
    peer = h2_fault()
    proxy = gated(peer)
    ws, http = flavour.websocket, flavour.http

    async def scenario() -> None:
        client = await connect(flavour, proxy, mode="active", protocols=("http2",))
        assert client.mailbox is not None
        try:
            await client.upgrade("/echo")
            narrow(client)
            client.conn, ref = await http.request(client.conn, "GET", "/ping", [])
            await requested(peer, "/ping")
            proxy.hold()
            client.websocket, data = ws.encode(client.websocket, Binary(os.urandom(2**19)))
            sending = asyncio.ensure_future(ws.stream_request_body(client.conn, client.ref, data))
            await writing(client, sending)
            got: list[Any] = []
            cancelled = False
            while not cancelled:  # (until a message's ack must wait: the PING's)
                message = await client.mailbox.areceive(WAIT)
                try:
                    async with asyncio.timeout(0.05):
                        client.conn, responses = await http.stream(client.conn, message)
                    got += responses
                except TimeoutError:
                    cancelled = True
            while Done(ref) not in got:
                message = await client.mailbox.areceive(5)
                client.conn, responses = await http.stream(client.conn, message)
                got += responses
            assert [r for r in got if getattr(r, "ref", None) == ref] == [
                Status(ref, 200),
                Headers(ref, []),
                Data(ref, b"pinged"),
                Done(ref),
            ]
            proxy.release()
            await asyncio.wait_for(sending, WAIT)
            deadline = time.monotonic() + WAIT
            while not peer.events("ping_ack"):  # (the cancelled call's ack went out all the same)
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)
        finally:
            await client.close()

    run(scenario())


async def waiting_for_the_windows(
    client: Client, flavour: Flavour, ref: Any
) -> asyncio.Future[Any]:
    """Start sending 2 MiB on ``ref`` (a server that opens no window), and return the
    send once it reads the connection for the windows, holding the turn to do so."""
    conn = client.conn
    sending = asyncio.ensure_future(flavour.http.stream_request_body(conn, ref, b"A" * 2 * 2**20))
    waiter = conn._transport._waiter
    deadline = time.monotonic() + WAIT
    while waiter._window_lock is None or not waiter._window_lock.locked():
        assert time.monotonic() < deadline and not sending.done()
        await asyncio.sleep(0.001)
    return sending


async def sink_answer(client: Client, ref: Any, size: int) -> None:
    """End ``ref``'s streamed body and check the fault server's ``"<length> <sha256>"``
    of the ``size`` bytes of ``b"A"`` that ``waiting_for_the_windows`` sent."""
    client.conn = await client.flavour.http.stream_request_body(client.conn, ref, mint.http.EOF)
    got: list[Any] = []
    while Done(ref) not in got:
        got += await client.responses(WAIT)
    digest = hashlib.sha256(b"A" * size).hexdigest()
    assert Data(ref, f"{size} {digest}".encode()) in got


async def held_before_the_windows(client: Client, peer: GatedProxy) -> tuple[Any, Any]:
    """A POST ``/sink`` whose 2 MiB send waits for the windows of a server that has
    not opened them yet (the proxy holds our bytes): ``(ref, the send)``."""
    # The first 64 KiB window's DATA must fit in the socket with the proxy held.
    client.conn._transport.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2**20)
    client.conn, ref = await client.flavour.http.request(client.conn, "POST", "/sink", [], STREAM)
    peer.hold()
    return ref, await waiting_for_the_windows(client, client.flavour, ref)


async def answers_a_get(client: Client, timeout: float = WAIT) -> None:
    """A GET of the fault server's ``/`` is answered, through the connection's mailbox
    (active) or ``recv`` (passive), each step within ``timeout``."""
    client.conn, get = await client.flavour.http.request(client.conn, "GET", "/", [])
    got: list[Any] = []
    while Done(get) not in got:
        got += await client.responses(timeout)
    assert Data(get, b"hello") in got


def is_off_every_mailbox(conn: Any, *boxes: mint.Mailbox | None) -> bool:
    return not any(box is not None and box.owns(conn._transport) for box in boxes)


def test_http2_responses_a_window_wait_kept_come_out_after_a_second_one(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
) -> None:
    """Active mode, a server that opens no window: one send waits for the windows
    and reads there a GET's whole answer; a second send waits its turn to read;
    both are cancelled. The answer must come out of the caller's mailbox loop.

    The first wait posted an empty message to bring it out; the second took the
    mailbox's queue, that message with it, read nothing and posted none: the
    answer waited for the server's next bytes, which never came."""
    peer = h2_fault(grant_windows=False)
    http = flavour.http

    async def scenario() -> None:
        client = await connect(flavour, peer, mode="active", protocols=("http2",))
        box = client.mailbox
        assert box is not None
        try:
            client.conn, a = await http.request(client.conn, "POST", "/sink", [], STREAM)
            client.conn, b = await http.request(client.conn, "POST", "/sink", [], STREAM)
            conn = client.conn
            first = await waiting_for_the_windows(client, flavour, a)
            conn, ref = await http.request(conn, "GET", "/", [])
            await requested(peer, "/")
            await asyncio.sleep(0.1)  # (the wait reads the answer, and keeps it)
            # (over its own stream's mark too: it waits for the turn to read)
            second = asyncio.ensure_future(http.stream_request_body(conn, b, b"B" * 2 * 2**20))
            await asyncio.sleep(0.05)  # (it waits for the turn to read)
            first.cancel()
            await asyncio.sleep(0.05)  # (it has the turn, and took the mailbox's queue)
            second.cancel()
            await asyncio.gather(first, second, return_exceptions=True)
            got: list[Any] = []
            while Done(ref) not in got:
                result = await http.stream(conn, await box.areceive(5))
                if result is not mint.UNKNOWN:
                    conn, responses = result
                    got += responses
            assert [r for r in got if getattr(r, "ref", None) == ref] == [
                Status(ref, 200),
                Headers(ref, []),
                Data(ref, b"hello"),
                Done(ref),
            ]
            client.conn = conn
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("mode", ["active", "passive"])
def test_http2_a_stream_whose_window_never_opens_holds_back_no_other_send(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
    mode: str,
) -> None:
    """A WebSocket whose server stopped reading (``/ws-stall``: its stream window
    never opens again; the connection's does): a 2 MiB send on it waits, and is given
    up. A send on another WebSocket of the connection returned only once the first
    stream's queue was under 1 MiB, that is never: the wait counted the bytes queued
    on the whole connection. Its echo came, but the send (and its Close) hung."""
    peer = h2_fault()
    ws = flavour.websocket

    async def scenario() -> None:
        client = await connect(flavour, peer, mode=mode, protocols=("http2",))
        try:
            await client.upgrade("/ws-stall")
            stalled = client.ref
            seen: list[Any] = []
            other, websocket = await open_second(client, flavour, seen)
            client.websocket, data = ws.encode(client.websocket, Binary(b"s" * 2 * 2**20))
            stuck = asyncio.ensure_future(ws.stream_request_body(client.conn, stalled, data))
            if mode == "passive":  # (one reader of the socket at a time: the wait ends first)
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(stuck, 1)
            else:
                await asyncio.sleep(0.2)
                assert not stuck.done()
            assert flavour.http.pending_bytes(client.conn, stalled) > 2**20
            echoed: list[Any] = []
            for frame in (Text("still here"), Close(1000, "bye")):
                websocket, data = ws.encode(websocket, frame)
                client.conn = await asyncio.wait_for(
                    ws.stream_request_body(client.conn, other, data), WAIT
                )
            # Active: the echoes come out of the mailbox while the first send still
            # waits (they were kept by the wait until it ended, for ever here).
            while len(echoed) < 2:
                for r in [*seen, *await client.responses(WAIT)]:
                    if isinstance(r, Data) and r.ref == other:
                        websocket, frames = ws.decode(websocket, r.data)
                        echoed += frames
                seen = []
            assert echoed == [Text("still here"), Close(1000, "bye")]
            if mode == "active":
                assert not stuck.done()
                # Cancelling the stalled stream ends the wait (no read would say so).
                client.conn = await ws.cancel(client.conn, stalled)
                await asyncio.wait_for(stuck, WAIT)
                assert flavour.http.pending_bytes(client.conn) == 0
        finally:
            await client.close()

    run(scenario())


async def stalled_beside_an_echo(
    client: Client, flavour: Flavour, seen: list[Any]
) -> tuple[Any, Any, Any]:
    """On an h2 fault server: ``/ws-stall`` (its window never opens again) with more
    than 1 MiB queued, its send given up, and an ``/echo`` WebSocket beside it (the
    responses read go to ``seen``): (stalled ref, echo ref, echo WebSocket)."""
    ws = flavour.websocket
    await client.upgrade("/ws-stall")
    stalled = client.ref
    other, websocket = await open_second(client, flavour, seen)
    client.websocket, data = ws.encode(client.websocket, Binary(b"s" * 2 * 2**20))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await ws.stream_request_body(client.conn, stalled, data)
    assert flavour.http.pending_bytes(client.conn, stalled) > 2**20
    return stalled, other, websocket


@pytest.mark.parametrize("tasks", ["one", "two", "one, moving"])
def test_http2_a_window_wait_reads_nothing_past_a_message_a_caller_holds(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
    tasks: str,
) -> None:
    """A message taken from the mailbox and not yet streamed (the caller awaits
    something in between: a send, in its own task or another's) when a send waits
    for a stalled stream's window: the wait read the socket, and what it read came
    out before the held message's bytes. The echoes of the other WebSocket came out
    of order (a DATA frame cut across reads ended the connection: protocol_error).
    "moving": the connection goes to another mailbox while the first echo is held,
    its queued second echo with it (posted there uncounted, it hid the held one)."""
    peer = h2_fault()
    ws = flavour.websocket

    async def scenario() -> None:
        client = await connect(flavour, peer, mode="active", protocols=("http2",))
        try:
            seen: list[Any] = []
            stalled, other, websocket = await stalled_beside_an_echo(client, flavour, seen)
            echoed: list[Any] = []

            def take(responses: list[Any]) -> None:
                nonlocal websocket
                for r in responses:
                    if isinstance(r, Data) and r.ref == other:
                        websocket, frames = ws.decode(websocket, r.data)
                        echoed.extend(frames)

            take(seen)

            async def stalled_send() -> None:
                # Over its stream's mark: the send waits for the window, reading.
                client.websocket, data = ws.encode(client.websocket, Binary(b"x"))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        client.conn = await ws.stream_request_body(client.conn, stalled, data)

            assert client.mailbox is not None
            sent = 0
            for _ in range(8):
                for _ in range(2):  # two echoes, in two reads of the mailbox's loop reader
                    websocket, data = ws.encode(websocket, Text(str(sent)))
                    client.conn = await ws.stream_request_body(client.conn, other, data)
                    sent += 1
                    await asyncio.sleep(0.02)
                message = await client.mailbox.areceive(WAIT)
                while isinstance(message, mint.SocketData) and not message.data:
                    # (a window wait's notice of what it read: streamed at once)
                    result = await ws.stream(client.conn, message)
                    assert result is not mint.UNKNOWN
                    client.conn, responses = result
                    take(responses)
                    message = await client.mailbox.areceive(WAIT)
                # The first echo, held ...
                if tasks == "one, moving":
                    client.mailbox = mint.Mailbox()
                    client.conn = flavour.http.controlling_process(client.conn, client.mailbox)
                if tasks != "two":
                    await stalled_send()
                else:
                    await asyncio.ensure_future(stalled_send())
                result = await ws.stream(client.conn, message)  # ... then streamed
                assert result is not mint.UNKNOWN
                client.conn, responses = result
                take(responses)
            while len(echoed) < sent:
                take(await client.responses(WAIT))
            assert echoed == [Text(str(n)) for n in range(sent)]
            assert flavour.http.pending_bytes(client.conn, stalled) > 2**20
        finally:
            await client.close()

    run(scenario())


def test_http2_a_window_wait_beside_a_held_message_says_closed_when_closed(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
) -> None:
    """A send that waits for the holder of a message (see above) while another task
    closes the connection: it returned as if its bytes had gone, where a wait that
    was reading raised TransportError("closed")."""
    peer = h2_fault()
    ws = flavour.websocket

    async def scenario() -> None:
        client = await connect(flavour, peer, mode="active", protocols=("http2",))
        assert client.mailbox is not None
        try:
            stalled, other, websocket = await stalled_beside_an_echo(client, flavour, [])
            websocket, data = ws.encode(websocket, Text("held"))
            client.conn = await ws.stream_request_body(client.conn, other, data)
            held = await client.mailbox.areceive(WAIT)
            while not (isinstance(held, mint.SocketData) and held.data):
                held = await client.mailbox.areceive(WAIT)
            client.websocket, data = ws.encode(client.websocket, Binary(b"x"))
            send = asyncio.ensure_future(ws.stream_request_body(client.conn, stalled, data))
            await asyncio.sleep(0.02)  # (it waits for the held message)
            assert not send.done()
            await flavour.http.close(client.conn)
            with pytest.raises(mint.TransportError) as info:
                await send
            assert info.value.reason == "closed"
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("mode", ["active", "passive"])
def test_http2_what_a_window_wait_read_comes_before_the_errors_of_the_end(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
    mode: str,
) -> None:
    """A send waits for the windows and reads a GET's whole answer there, then the
    server breaks HTTP/2 (a DATA frame on stream 0). The send raises the connection
    error with every ref's Error in ``.responses``: the GET's answer, read first and
    kept for the next read, came out of a read of the closed connection, after its
    own ref's Error."""
    peer = h2_fault(grant_windows=False)
    http = flavour.http

    async def scenario() -> None:
        client = await connect(flavour, peer, mode=mode, protocols=("http2",))
        try:
            client.conn, sink = await http.request(client.conn, "POST", "/sink", [], STREAM)
            sending = await waiting_for_the_windows(client, flavour, sink)
            client.conn, get = await http.request(client.conn, "GET", "/", [])
            await requested(peer, "/")
            await asyncio.sleep(0.1)  # (the wait reads the answer, and keeps it)
            client.conn, broken = await http.request(client.conn, "GET", "/break", [])
            with pytest.raises(mint.HTTPError) as info:
                await asyncio.wait_for(sending, WAIT)
            assert info.value.reason[0] == "protocol_error"
            got = info.value.responses
            assert [r for r in got if getattr(r, "ref", None) == get] == [
                Status(get, 200),
                Headers(get, []),
                Data(get, b"hello"),
                Done(get),
            ]
            errors = {r.ref for r in got if isinstance(r, Error)}
            assert errors == {sink, broken}
            assert not http.is_open(info.value.conn)
            # The socket is closed as a read that met the error closes it: the next
            # read says "closed", not "timeout", and no mailbox takes it back.
            assert info.value.conn._transport.closed
        finally:
            await client.close()

    run(scenario())


def test_http2_window_waits_take_turns_on_each_loop_the_connection_is_used_from(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
) -> None:
    """A connection made in one ``asyncio.run`` and used from two more, two sends
    waiting for the windows at once in each: the lock that gives them turns bound
    itself to the first loop it was contended on, and the second run's sends raised
    a raw ``RuntimeError`` (bound to a different event loop)."""
    peer = h2_fault()
    http = flavour.http
    client = run(connect(flavour, peer, mode="passive", protocols=("http2",)))
    bodies = [bytes([n]) * 2 * 2**20 for n in range(2)]

    async def two_sends() -> None:
        refs = []
        for _ in bodies:
            client.conn, ref = await http.request(client.conn, "POST", "/sink", [], STREAM)
            refs.append(ref)
        pairs = zip(refs, bodies, strict=True)
        sends = [http.stream_request_body(client.conn, r, d) for r, d in pairs]
        await asyncio.wait_for(asyncio.gather(*sends), WAIT)
        for ref in refs:
            client.conn = await http.stream_request_body(client.conn, ref, mint.http.EOF)
        answers: dict[Any, bytes] = {ref: b"" for ref in refs}
        done: set[Any] = set()
        while len(done) < len(refs):
            for r in await client.responses(WAIT):
                if isinstance(r, Data) and r.ref in answers:
                    answers[r.ref] += r.data
                elif isinstance(r, Done):
                    done.add(r.ref)
        for ref, body in zip(refs, bodies, strict=True):
            assert answers[ref] == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()

    try:
        run(two_sends())
        run(two_sends())
    finally:
        run(client.close())


def test_http2_connection_switched_to_passive_during_a_window_wait_stays_passive(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
) -> None:
    """``set_mode(conn, "passive")`` while a send waits for the windows (the wait has
    the connection off its mailbox): the wait, ending, put it back on that mailbox,
    whose reader then took the bytes a passive ``recv`` waits for."""
    peer = h2_fault(grant_windows=False)
    http = flavour.http

    async def scenario() -> None:
        client = await connect(flavour, peer, mode="active", protocols=("http2",))
        box = client.mailbox
        assert box is not None
        try:
            client.conn, ref = await http.request(client.conn, "POST", "/sink", [], STREAM)
            conn = client.conn
            sending = await waiting_for_the_windows(client, flavour, ref)
            client.conn = conn = http.set_mode(conn, "passive")
            client.mode = "passive"
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            assert not box.owns(conn._transport)
            await answers_a_get(client, 5)
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("switch", ["controlling_process", "set_mode_active"])
def test_http2_connection_moved_to_a_mailbox_during_a_window_wait_is_left_to_the_wait(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
    gated: Callable[[Any], GatedProxy],
    switch: str,
) -> None:
    """``controlling_process`` (active) or ``set_mode(conn, "active")`` (passive) from
    another task while a send waits for the windows, which the server has not opened
    yet (the proxy holds our bytes). The mailbox took the socket at once, its loop
    reader in place of the wait's: once the windows opened the wait never woke, and
    the send hung for ever. The mailbox now gets the socket as the wait ends; the
    body arrives whole, and the answer comes through that mailbox."""
    peer = gated(h2_fault())
    http = flavour.http
    mode = "active" if switch == "controlling_process" else "passive"

    async def scenario() -> None:
        client = await connect(flavour, peer, mode=mode, protocols=("http2",))
        box = mint.Mailbox()
        try:
            ref, sending = await held_before_the_windows(client, peer)
            conn = http.controlling_process(client.conn, box)  # passive: names it only
            if switch == "set_mode_active":
                conn = http.set_mode(conn, "active")
            assert not box.owns(conn._transport)  # not while the wait reads the socket
            peer.release()
            conn = await asyncio.wait_for(sending, WAIT)
            assert box.owns(conn._transport)
            client.conn, client.mode, client.mailbox = conn, "active", box
            await sink_answer(client, ref, 2 * 2**20)
        finally:
            await client.close()
            box.close()

    run(scenario())


@pytest.mark.parametrize("which", ["its_own", "the_one_it_moved_to"])
def test_http2_mailbox_closed_during_a_window_wait_leaves_the_send_alone(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
    gated: Callable[[Any], GatedProxy],
    which: str,
) -> None:
    """The connection's mailbox closed while a send waits for the windows (its own, or
    one it was moved to meanwhile). The wait, ending, registered the connection on it,
    which a closed mailbox refuses: the send raised ``HTTPError(("invalid_mailbox",
    box))`` though its bytes went out. Now it returns; the connection is off every
    mailbox until moved to an open one, where its answers then come."""
    peer = gated(h2_fault())
    http = flavour.http

    async def scenario() -> None:
        client = await connect(flavour, peer, mode="active", protocols=("http2",))
        other, last = mint.Mailbox(), mint.Mailbox()
        try:
            ref, sending = await held_before_the_windows(client, peer)
            if which == "its_own":
                assert client.mailbox is not None
                client.mailbox.close()
            else:
                client.conn = http.controlling_process(client.conn, other)
                other.close()
            peer.release()
            conn = await asyncio.wait_for(sending, WAIT)
            assert is_off_every_mailbox(conn, client.mailbox, other)
            client.conn = http.controlling_process(conn, last)
            client.mailbox = last
            assert last.owns(conn._transport)
            await sink_answer(client, ref, 2 * 2**20)
        finally:
            await client.close()
            other.close()
            last.close()

    run(scenario())


def test_http2_mailbox_closed_during_a_window_wait_under_a_timeout(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
) -> None:
    """``asyncio.timeout`` around a send waiting for windows the server never opens
    (as README advises), the connection's mailbox closed meanwhile: the timeout's
    ``TimeoutError``. The wait's ``HTTPError(("invalid_mailbox", box))``, raised over
    the cancellation, came out of ``asyncio.timeout`` instead."""
    peer = h2_fault(grant_windows=False)
    http = flavour.http

    async def scenario() -> None:
        client = await connect(flavour, peer, mode="active", protocols=("http2",))
        last = mint.Mailbox()
        try:
            client.conn, ref = await http.request(client.conn, "POST", "/sink", [], STREAM)
            assert client.mailbox is not None
            asyncio.get_running_loop().call_later(0.2, client.mailbox.close)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(1.0):
                    await http.stream_request_body(client.conn, ref, b"A" * 2 * 2**20)
            client.conn = http.controlling_process(client.conn, last)
            client.mailbox = last
            await answers_a_get(client)
        finally:
            await client.close()
            last.close()

    run(scenario())


@pytest.mark.parametrize("mode", ["active", "passive"])
def test_http2_tls_end_read_by_a_window_wait_is_reported_at_once(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
    tls_ca: TLSMaterial,
    mode: str,
) -> None:
    """The server ends a TLS connection while a send waits for the windows, as
    asyncio's TLS servers end one: close_notify, then up to 30 s for ours before the
    TCP close. The wait read the end and stopped, but a TLS end is read off the socket
    once: the end and the open requests' errors came only with the server's FIN.
    Now the next read reports it (the answer read before it first)."""
    front = TLSFront(
        h2_fault(grant_windows=False),
        tls_ca.server_context(["h2"]),
        cafile=tls_ca.cafile,
        shutdown_timeout=30.0,
    )
    http = flavour.http

    async def scenario() -> None:
        client = await connect(flavour, front, mode=mode, protocols=("http2",))
        try:
            client.conn, ref = await http.request(client.conn, "POST", "/sink", [], STREAM)
            sending = await waiting_for_the_windows(client, flavour, ref)
            client.conn, gone = await http.request(client.conn, "GET", "/vanish", [])
            client.conn = await asyncio.wait_for(sending, WAIT)
            got: list[Any] = []
            started = time.monotonic()
            while http.is_open(client.conn):
                try:
                    got += await client.responses(5.0)
                except mint.TransportError as exc:
                    assert exc.reason == "closed"
                    got += exc.responses
                    client.conn = exc.conn
                    break
            assert time.monotonic() - started < 5.0
            assert Data(gone, b"partial") in got
            assert {ref, gone} <= {r.ref for r in got if isinstance(r, Error)}
        finally:
            await client.close()
            front.stop()
            if front.errors:
                raise front.errors[0]

    run(scenario())


def test_a_window_wait_left_on_a_closed_loop_keeps_no_mailbox_off(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
) -> None:
    """A send waiting for the windows on a loop closed without cancelling its tasks
    (``run_until_complete``, then ``close``), the connection then used from a new
    ``asyncio.run``, as README allows: ``controlling_process`` must put it on the new
    mailbox, since that wait will never end to do so."""
    peer = h2_fault(grant_windows=False)
    http = flavour.http
    loop = flavour.loop_factory() if flavour.loop_factory else asyncio.new_event_loop()
    box = mint.Mailbox()

    async def first() -> Client:
        client = await connect(flavour, peer, mode="active", protocols=("http2",))
        client.conn, ref = await http.request(client.conn, "POST", "/sink", [], STREAM)
        await waiting_for_the_windows(client, flavour, ref)
        return client

    client = loop.run_until_complete(first())
    loop.close()  # the send is left pending, never cancelled

    async def second() -> None:
        try:
            client.conn = http.controlling_process(client.conn, box)
            client.mailbox = box
            assert box.owns(client.conn._transport)
            await answers_a_get(client)
        finally:
            await client.close()
            box.close()

    run(second())


# -- a read under way when the connection goes active ----------------------------------------
async def reading(
    client: Client, timeout: float | None, recv: Callable[..., Any] | None = None
) -> asyncio.Future[Any]:
    """Start a passive ``recv`` (``websocket.recv`` unless given) in a task of its own;
    return it once it waits (one that read what was there, the server's last SETTINGS
    frames, say, is started again)."""
    recv = recv or client.flavour.websocket.recv
    waiter = client.conn._transport._waiter
    deadline = time.monotonic() + WAIT
    while True:
        task = asyncio.ensure_future(recv(client.conn, 0, timeout))
        while waiter._future is None and not task.done():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.001)
        if not task.done():
            return task
        client.conn, responses = task.result()
        assert responses == []


@pytest.mark.parametrize("timeout", [2.0, None], ids=["timed", "untimed"])
@pytest.mark.parametrize("protocol", ["http1", "http2"])
def test_a_passive_read_under_way_when_another_task_makes_the_connection_active(
    flavour: Flavour,
    ws_server: Any,
    h2_fault: Any,  # noqa: F811
    protocol: str,
    timeout: float | None,
) -> None:
    """A task waits in ``recv`` on a passive connection; another calls
    ``set_mode(conn, "active")``. The mailbox took the wait's loop reader and its
    timer: the ``recv`` waited for ever, past its own timeout, and what the server
    sent went to the mailbox. Now it raises ``HTTPError("not_passive")`` at once (as a
    ``recv`` begun then would), with the connection, and the input comes through the
    mailbox. (HTTP/1.1: a WebSocket's read, the C path where it is built.)"""
    peer = ws_server if protocol == "http1" else h2_fault()
    http = flavour.http

    async def scenario() -> None:
        box = mint.Mailbox()
        conn = await http.connect(
            "http", peer.host, peer.port, protocols=(protocol,), mode="passive", mailbox=box
        )
        client = Client(flavour, conn, "passive")
        try:
            if protocol == "http1":
                await client.upgrade("/echo")
            task = await reading(client, timeout)
            client.conn = http.set_mode(client.conn, "active")
            client.mode, client.mailbox = "active", box
            with pytest.raises(mint.HTTPError) as info:
                await asyncio.wait_for(task, 1.0)
            assert info.value.reason == "not_passive"
            assert info.value.conn is client.conn
            assert box.owns(client.conn._transport)
            if protocol == "http1":
                await client.send(Text("after the switch"))
                assert await client.frames(timeout=WAIT) == [Text("after the switch")]
            else:
                await answers_a_get(client)
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("mode", ["active", "passive"])
def test_http2_tls_failure_read_by_a_window_wait_ends_the_connection_once(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
    tls_ca: TLSMaterial,
    gated: Callable[[Any], GatedProxy],
    mode: str,
) -> None:
    """A TLS record that fails its check (``bad_record_mac``) read by a send waiting for
    the windows. The send raised the ``tls_alert`` with no responses and left the
    connection open; the next read then said ``"closed"``, with the requests' errors.
    Now, as a read that meets it, the next read reports the alert once, with every
    open request's ``Error``, and the connection is closed."""
    front = TLSFront(
        h2_fault(grant_windows=False), tls_ca.server_context(["h2"]), cafile=tls_ca.cafile
    )
    peer = gated(front)
    http = flavour.http

    async def scenario() -> None:
        client = await connect(flavour, peer, mode=mode, protocols=("http2",))
        try:
            client.conn, ref = await http.request(client.conn, "POST", "/sink", [], STREAM)
            sending = await waiting_for_the_windows(client, flavour, ref)
            peer.corrupt()
            client.conn, get = await http.request(client.conn, "GET", "/", [])
            client.conn = await asyncio.wait_for(sending, WAIT)
            with pytest.raises(mint.TransportError) as info:
                while True:
                    assert not await client.responses(WAIT)
            assert info.value.reason[:2] == ("tls_alert", "decryption_failed_or_bad_record_mac")
            assert {ref, get} == {r.ref for r in info.value.responses if isinstance(r, Error)}
            assert not http.is_open(info.value.conn)
            client.conn = info.value.conn
        finally:
            await client.close()
            front.stop()

    run(scenario())


def test_a_passive_read_woken_before_the_switch_to_active_leaves_the_mailbox_its_reader(
    flavour: Flavour,
    wss_server: Any,
    gated: Callable[[Any], GatedProxy],
) -> None:
    """A passive wss ``recv`` (the Python path) is woken by the first bytes of a TLS
    record; before it runs, another task makes the connection active. The woken read
    found the record incomplete and waited again, registering its loop reader in
    place of the mailbox's: the active connection then received nothing more. Now
    that read ends with ``HTTPError("not_passive")``, and every echo comes out once,
    from the ``recv`` or from the mailbox."""
    peer = gated(wss_server)
    http = flavour.http

    async def scenario() -> None:
        box = mint.Mailbox()
        conn = await http.connect(
            "https",
            peer.server_hostname or peer.host,
            peer.port,
            protocols=("http1",),
            mode="passive",
            mailbox=box,
            transport_opts={"cafile": peer.cafile},
        )
        client = Client(flavour, conn, "passive")
        try:
            await client.upgrade("/echo", scheme="wss")
            with pytest.raises(TimeoutError):
                await box.areceive(0.01)  # the mailbox is this loop's from now on
            waiter = client.conn._transport._waiter
            peer.split()
            task = await reading(client, WAIT, http.recv)
            woken = waiter._future
            await client.send(Text("one"))
            deadline = time.monotonic() + WAIT
            while not woken.done():
                assert time.monotonic() < deadline
                await asyncio.sleep(0)
            client.conn = http.set_mode(client.conn, "active")
            client.mode, client.mailbox = "active", box
            try:
                client.conn, responses = await asyncio.wait_for(task, WAIT)
            except mint.HTTPError as exc:
                assert exc.reason == "not_passive"
                assert exc.conn is client.conn
            else:
                assert [r.data for r in responses if isinstance(r, Data)]
                client.websocket, client.early = flavour.websocket.decode(
                    client.websocket, b"".join(r.data for r in responses if isinstance(r, Data))
                )
            await client.send(Text("two"))
            assert await client.frames(2, timeout=5.0) == [Text("one"), Text("two")]
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("path", ["websocket.recv", "http.recv"])
def test_a_passive_read_woken_by_an_earlier_timer_before_the_switch_to_active(
    flavour: Flavour, ws_server: Any, path: str
) -> None:
    """A timed ``recv`` answered at once leaves its timer armed (it saves re-arming);
    a longer ``recv`` after it is woken by that timer and would wait again. Another
    task makes the connection active in between: the wait, woken already, could not
    be interrupted, waited again with its own loop reader in place of the mailbox's,
    and the active connection received nothing more. (``websocket.recv``: the C path
    where it is built; ``http.recv``: the Python one.)"""
    http = flavour.http
    recv = flavour.websocket.recv if path == "websocket.recv" else http.recv

    async def scenario() -> None:
        box = mint.Mailbox()
        conn = await http.connect(
            "http", ws_server.host, ws_server.port, mode="passive", mailbox=box
        )
        client = Client(flavour, conn, "passive")
        try:
            await client.upgrade("/echo")
            with pytest.raises(TimeoutError):
                await box.areceive(0.01)  # the mailbox is this loop's from now on
            await client.send(Text("zero"))
            assert await client.frames(timeout=0.5) == [Text("zero")]
            waiter = client.conn._transport._waiter
            timer = waiter._timer
            assert timer is not None  # left armed by the timed recv above
            task = await reading(client, WAIT, recv)
            woken = waiter._future

            def switch() -> None:
                assert woken.done()  # the timer's wake-up came first
                client.conn = http.set_mode(client.conn, "active")

            asyncio.get_running_loop().call_at(timer.when() + 1e-6, switch)
            with pytest.raises(mint.HTTPError) as info:
                await asyncio.wait_for(task, WAIT)
            assert info.value.reason == "not_passive"
            assert info.value.conn is client.conn
            client.mode, client.mailbox = "active", box
            await client.send(Text("two"))
            assert await client.frames(timeout=5.0) == [Text("two")]
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("mode", ["active", "passive"])
def test_http2_a_window_wait_ends_when_its_stream_is_cancelled(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
    mode: str,
) -> None:
    """A send waits for a window that never opens; another task cancels the stream,
    which drops its queue. The wait looked again only when a read came in, and the
    server, with nothing to answer, sent nothing: it waited for ever."""
    peer = h2_fault(grant_windows=False)
    http = flavour.http

    async def scenario() -> None:
        client = await connect(flavour, peer, mode=mode, protocols=("http2",))
        try:
            client.conn, ref = await http.request(client.conn, "POST", "/sink", [], STREAM)
            sending = await waiting_for_the_windows(client, flavour, ref)
            client.conn = await http.cancel_request(client.conn, ref)
            assert http.pending_bytes(client.conn) == 0
            await asyncio.wait_for(sending, WAIT)
            assert http.open_request_count(client.conn) == 0
        finally:
            await client.close()

    run(scenario())


def test_http2_a_recv_beside_a_window_wait_is_refused_and_a_wait_beside_a_recv_waits(
    flavour: Flavour,
    h2_fault: Any,  # noqa: F811
) -> None:
    """Two readers of one passive connection (not supported): a recv while a send
    waits for the windows replaced the wait's, which was then never woken (the send
    hung for good, though the server opened its windows). The recv is refused now; and
    a send whose wait finds a recv under way lets it read (its reads process the
    WINDOW_UPDATEs too) and looks again."""
    http = flavour.http

    async def scenario() -> None:
        client = await connect(flavour, h2_fault(), mode="passive", protocols=("http2",))
        try:
            client.conn, ref = await http.request(client.conn, "POST", "/sink", [], STREAM)
            # A recv under way first: the send's wait lets it read, and ends.
            reading = asyncio.ensure_future(http.recv(client.conn, 0, 3.0))
            await asyncio.sleep(0.05)
            await asyncio.wait_for(http.stream_request_body(client.conn, ref, b"A" * 2**21), WAIT)
            with contextlib.suppress(mint.TransportError):  # ("timeout", once it read all)
                await reading
            await sink_answer(client, ref, 2**21)
        finally:
            await client.close()
        # A send waits first (a server that opens no window): a recv is refused, typed.
        client = await connect(
            flavour, h2_fault(grant_windows=False), mode="passive", protocols=("http2",)
        )
        try:
            client.conn, ref = await http.request(client.conn, "POST", "/sink", [], STREAM)
            sending = await waiting_for_the_windows(client, flavour, ref)
            with pytest.raises(mint.HTTPError) as info:
                await http.recv(client.conn, 0, 1.0)
            assert info.value.reason[0] == "read_under_way"
            assert not sending.done()
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
        finally:
            await client.close()

    run(scenario())


class DeafStreamer(OneConnection):
    """An HTTP/2 server that opens no window for our requests' bodies, answers an
    extended CONNECT with 200 and then streams ``count`` numbered WebSocket frames on it,
    reading nothing of ours meanwhile: our WINDOW_UPDATEs fill the socket, and a write of
    them waits. Then it reads (and drops) what we send, until we go."""

    def __init__(self, count: int) -> None:
        self.count = count
        super().__init__(rcvbuf=4096)

    def handle(self, sock: socket.socket) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        server = h2.connection.H2Connection(config=config)
        codes = h2.settings.SettingCodes
        server.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                codes.ENABLE_CONNECT_PROTOCOL: 1,
                codes.INITIAL_WINDOW_SIZE: 0,
                codes.MAX_CONCURRENT_STREAMS: 100,
            },
        )
        server.initiate_connection()
        sock.sendall(server.data_to_send())
        websocket = sink = None
        while websocket is None or sink is None:
            data = sock.recv(65536)
            if not data:
                return
            for event in server.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    path = dict(event.headers)[b":path"]
                    if path == b"/ws":
                        websocket = event.stream_id
                        server.send_headers(websocket, [(b":status", b"200")])
                    else:
                        sink = event.stream_id
            sock.sendall(server.data_to_send())
        for seq in range(self.count):
            server.send_data(websocket, b"\x82\x04" + seq.to_bytes(4, "big"))
            sock.sendall(server.data_to_send())
            time.sleep(0.0002)
        sock.settimeout(30)
        while sock.recv(65536):
            pass


def test_http2_what_a_passive_window_wait_read_comes_out_before_a_later_recv(
    flavour: Flavour,
) -> None:
    """Two readers of one passive connection (not supported, but it must not cut
    frames): a send waits for a window that never opens, reading the connection, while
    another task's recv gets in whenever the wait does not read (its write of the
    WINDOW_UPDATEs waits on a full socket). The wait kept what it read until it ended:
    the recv handed out later frames first, and a WebSocket's frames came out of order.
    What the wait reads is handed out before it waits again."""
    http, ws = flavour.http, flavour.websocket
    count = 3000
    peer = DeafStreamer(count)

    async def scenario() -> None:
        client = await connect(flavour, peer, mode="passive", protocols=("http2",))
        try:
            client.conn._transport.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            client.conn, sink = await http.request(client.conn, "POST", "/sink", [], STREAM)
            await client.upgrade("/ws")
            sending = await waiting_for_the_windows(client, flavour, sink)
            # (the frames that came with the 200 first)
            seqs = [int.from_bytes(f.data, "big") for f in client.early]
            deadline = time.monotonic() + WAIT
            while len(seqs) < count and time.monotonic() < deadline:
                try:
                    client.conn, got = await http.recv(client.conn, 0, 0.5)
                except mint.HTTPError as exc:
                    assert exc.reason[0] == "read_under_way"
                    await asyncio.sleep(0)
                    continue
                except mint.TransportError as exc:
                    assert exc.reason == "timeout"
                    continue
                for response in got:
                    if isinstance(response, Data) and response.ref == client.ref:
                        client.websocket, frames = ws.decode(client.websocket, response.data)
                        seqs += [int.from_bytes(f.data, "big") for f in frames]
                if len(seqs) > count // 2 and not sending.done():
                    client.conn = await http.cancel_request(client.conn, sink)
            await asyncio.wait_for(sending, WAIT)
            while len(seqs) < count and time.monotonic() < deadline:
                for response in await client.responses(1.0):
                    if isinstance(response, Data) and response.ref == client.ref:
                        client.websocket, frames = ws.decode(client.websocket, response.data)
                        seqs += [int.from_bytes(f.data, "big") for f in frames]
            assert seqs == list(range(count))
        finally:
            await client.close()

    try:
        run(scenario())
    finally:
        peer.stop()
    assert not peer.errors, peer.errors


class OpensThenReadsNothing(OneConnection):
    """An HTTP/2 server that reads a streamed POST until the first windows are used,
    answers the GET beside it, opens the POST's windows wide and reads nothing more
    until ``release``: what the WINDOW_UPDATEs let go fills the socket."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        super().__init__(rcvbuf=65536)

    def handle(self, sock: socket.socket) -> None:
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        server = h2.connection.H2Connection(config=config)
        server.initiate_connection()
        sock.sendall(server.data_to_send())
        get = post = None
        taken = 0
        while get is None or post is None or taken < 65_535:
            data = sock.recv(65536)
            if not data:
                return
            for event in server.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    if dict(event.headers)[b":method"] == b"GET":
                        get = event.stream_id
                    else:
                        post = event.stream_id
                elif isinstance(event, h2.events.DataReceived):
                    taken += event.flow_controlled_length
            sock.sendall(server.data_to_send())
        server.send_headers(get, [(b":status", b"200")])
        server.send_data(get, b"hello", end_stream=True)
        server.increment_flow_control_window(2**30)
        server.increment_flow_control_window(2**30, post)
        sock.sendall(server.data_to_send())
        self.gate.wait(60)
        sock.settimeout(30)
        while sock.recv(65536):
            pass

    def stop(self) -> None:
        self.gate.set()
        super().stop()


@pytest.mark.parametrize("send_timeout", [None, 0.2])
@pytest.mark.parametrize("name", ["sync", "aio"])
def test_http2_a_recv_with_a_timeout_waits_for_no_write_of_what_its_read_lets_go(
    name: str, send_timeout: float | None
) -> None:
    """A read whose WINDOW_UPDATEs let a queued body go had it written by a send that
    waited: with the peer reading none of it, ``recv(conn, 0, 0.5)`` waited as long as
    that (for ever without ``send_timeout``), or raised the write's ``"timeout"`` with
    the GET's whole answer only in ``.responses``, where a loop that retries on a
    timeout dropped it. The read's responses come out now; the rest goes as the socket
    drains."""
    chosen = Flavour(name)
    http = chosen.http
    peer = OpensThenReadsNothing()
    opts = {} if send_timeout is None else {"send_timeout": send_timeout}

    async def scenario() -> None:
        client = await connect(
            chosen, peer, mode="passive", protocols=("http2",), transport_opts=opts
        )
        try:
            narrow(client)
            conn = client.conn
            conn, post = await http.request(conn, "POST", "/sink", [], STREAM)
            # (under the 1 MiB queued at which an asyncio send waits for the windows)
            conn = await http.stream_request_body(conn, post, os.urandom(2**20))
            conn, get = await http.request(conn, "GET", "/", [])
            seen: list[Any] = []
            while Done(get) not in seen:
                try:
                    conn, got = await http.recv(conn, 0, 0.5)
                except mint.TransportError as exc:
                    assert exc.reason == "timeout"
                    assert exc.responses == []  # (a timeout that read nothing)
                    continue
                seen += got
            assert [r for r in seen if r.ref == get] == [
                Status(get, 200),
                Headers(get, []),
                Data(get, b"hello"),
                Done(get),
            ]
            assert http.is_open(conn)
            client.conn = conn
        finally:
            peer.gate.set()
            await client.close()

    # (bounded: a recv that waits for the write waits until the gate opens, at 60 s)
    outcome: list[BaseException | None] = []

    def body() -> None:
        try:
            with use_loop(chosen):
                run(scenario(), WAIT)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=body, daemon=True)
    worker.start()
    worker.join(WAIT + 5)
    ended = not worker.is_alive()
    peer.stop()
    worker.join(30)
    assert ended, "the recv loop ended only once the peer read again: a recv waited for the write"
    if outcome[0] is not None:
        raise outcome[0]
    assert not peer.errors, peer.errors


class GoesAwayWithAnError(OneConnection):
    """An HTTP/2 server that takes a streamed POST's first window, then sends GOAWAYs
    with error codes that let every stream finish (``goaways``: (code, debug data); the
    last stream id the highest), waits ``hold`` seconds, then opens the windows, reads
    the whole body and answers it."""

    def __init__(
        self, goaways: tuple[tuple[int, bytes], ...] = ((2, b"shedding load"),), hold: float = 0.2
    ) -> None:
        self.received = 0
        self.goaways, self.hold = goaways, hold
        super().__init__()

    def handle(self, sock: socket.socket) -> None:
        sock.settimeout(30)
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        server = h2.connection.H2Connection(config=config)
        server.initiate_connection()
        sock.sendall(server.data_to_send())
        post, goaway, ended = None, False, False
        while not ended:
            data = sock.recv(65536)
            if not data:
                return
            for event in server.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    post = event.stream_id
                elif isinstance(event, h2.events.DataReceived):
                    self.received += event.flow_controlled_length
                    server.acknowledge_received_data(event.flow_controlled_length, post)
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
            if post is not None and self.received >= 65_535 and not goaway:
                goaway = True
                sock.sendall(server.data_to_send())
                time.sleep(0.2)  # (the client's send waits for the windows, reading)
                # (by hand: h2's own GOAWAY closes its side, which then reads nothing)
                for code, debug in self.goaways:
                    frame = GoAwayFrame(0, last_stream_id=2**31 - 1, error_code=code)
                    frame.additional_data = debug
                    sock.sendall(frame.serialize())
                    time.sleep(0.1)
                time.sleep(self.hold)
                server.increment_flow_control_window(2**30)
                server.increment_flow_control_window(2**30, post)
            sock.sendall(server.data_to_send())
        assert post is not None
        server.send_headers(post, [(b":status", b"200")])
        server.send_data(post, str(self.received).encode(), end_stream=True)
        sock.sendall(server.data_to_send())
        time.sleep(1)


@pytest.mark.parametrize("mode", ["active", "passive"])
def test_http2_a_goaway_that_lets_streams_finish_fails_no_send(flavour: Flavour, mode: str) -> None:
    """A send waiting for the windows read a GOAWAY with an error code whose last
    stream id let its stream finish: it raised server_closed_connection, though its
    bytes were queued and went out (a caller that retried sent them twice; a request
    gave no ref for its stream). The send goes; the next read says the GOAWAY, once."""

    server = GoesAwayWithAnError()
    http = flavour.http
    size = 3 * 2**20

    async def scenario() -> None:
        client = await connect(flavour, server, mode=mode, protocols=("http2",))
        try:
            client.conn, ref = await http.request(client.conn, "POST", "/", [], STREAM)
            client.conn = await asyncio.wait_for(
                http.stream_request_body(client.conn, ref, b"u" * size), WAIT
            )
            client.conn = await http.stream_request_body(client.conn, ref, mint.http.EOF)
            got: list[Any] = []
            told = []
            while Done(ref) not in got:
                try:
                    got += await client.responses(WAIT)
                except mint.HTTPError as exc:
                    told.append(exc.reason)
                    assert exc.conn is not None
                    client.conn = exc.conn
                    got += exc.responses
            assert told == [("server_closed_connection", "internal_error", b"shedding load")]
            assert [r for r in got if isinstance(r, Data)] == [Data(ref, str(size).encode())]
        finally:
            await client.close()

    try:
        run(scenario())
    finally:
        server.stop()
    assert not server.errors, server.errors
    assert server.received == size


def test_http2_goaway_errors_a_window_wait_keeps_are_told_at_once_and_in_order(
    flavour: Flavour,
) -> None:
    """Two GOAWAYs with error codes, read by a send's window wait that goes on waiting:
    the first was told only once the server sent more (an active connection's mailbox
    got nothing for it), and a second one was raised by the send, the first told after
    it, stale. Now each comes out of the mailbox at once, in order."""
    server = GoesAwayWithAnError(((2, b"first"), (11, b"second")), hold=2.0)
    http = flavour.http

    async def scenario() -> None:
        client = await connect(flavour, server, mode="active", protocols=("http2",))
        assert client.mailbox is not None
        try:
            client.conn, ref = await http.request(client.conn, "POST", "/", [], STREAM)
            send = asyncio.ensure_future(
                http.stream_request_body(client.conn, ref, b"u" * 3 * 2**20)
            )
            told = []
            while len(told) < 2:
                message = await client.mailbox.areceive(1.0)  # (before the windows open)
                try:
                    result = await http.stream(client.conn, message)
                except mint.HTTPError as exc:
                    told.append(exc.reason)
                    continue
                assert result is not mint.UNKNOWN
            assert told == [
                ("server_closed_connection", "internal_error", b"first"),
                ("server_closed_connection", "enhance_your_calm", b"second"),
            ]
            assert not send.done()  # (the windows are still shut)
            client.conn = await asyncio.wait_for(send, WAIT)
            client.conn = await http.stream_request_body(client.conn, ref, mint.http.EOF)
            got: list[Any] = []
            while Done(ref) not in got:
                got += await client.responses(WAIT)
        finally:
            await client.close()

    try:
        run(scenario())
    finally:
        server.stop()
    assert not server.errors, server.errors
