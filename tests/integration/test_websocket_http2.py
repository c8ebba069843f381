"""WebSockets over HTTP/2 (RFC 8441) against real servers, through the public API only.

Servers: hypercorn (h2c and TLS), Node.js ``http2`` + ``ws`` (h2c and TLS, and one without
SETTINGS_ENABLE_CONNECT_PROTOCOL), and the ``h2`` fault server of ``servers/h2_fault.py``.
hypercorn 0.18 crashes on DATA after it finished a stream (pgjones/hypercorn#329), so its
close path is not used as an oracle for the stream's end.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from conftest_h2 import (
    WS,
    connect_h2,
    get,
    h2_fault,  # noqa: F401 - fixture
    of,
    open_ws,
    read,
    read_until,
    send,
    wait_frames,
)

import mint
from mint.http import Done, Error, Headers, Status
from mint.websocket import Binary, Close, Ping, Pong, Text

SERVERS = [
    "hypercorn_h2c",
    "hypercorn_tls",
    pytest.param("node_h2c", marks=pytest.mark.node),
    pytest.param("node_h2_tls", marks=pytest.mark.node),
    "fault",
]
MODES = ["passive", "active"]
BIG = 1_500_000


@pytest.fixture
def named_server(request: pytest.FixtureRequest, h2_fault: Any) -> tuple[str, Any]:  # noqa: F811
    name = request.param
    if name == "fault":
        return name, h2_fault()
    if name == "fault_off":
        return name, h2_fault(connect_protocol=False)
    return name, request.getfixturevalue(name)


def _close(conn: Any) -> None:
    mint.http.close(conn)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("named_server", SERVERS, indirect=True)
def test_connect_is_http2_with_extended_connect(named_server: tuple[str, Any], mode: str) -> None:
    _, peer = named_server
    conn = connect_h2(peer, mode)
    try:
        assert mint.http.protocol(conn) == "http2"  # ALPN picked h2 on TLS
        conn, ws = open_ws(conn, mode)
        assert mint.http.open_request_count(conn) == 1
        conn = send(conn, ws, Text("hello"))
        conn = wait_frames(conn, mode, [ws], 1)
        assert ws.frames == [Text("hello")]
    finally:
        _close(conn)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("named_server", SERVERS, indirect=True)
def test_big_text_and_binary_echo_both_ways(named_server: tuple[str, Any], mode: str) -> None:
    _, peer = named_server
    conn = connect_h2(peer, mode)
    try:
        conn, ws = open_ws(conn, mode)
        text = Text("é" * (BIG // 2))  # 1.5 MB of UTF-8
        binary = Binary(os.urandom(BIG))
        conn = send(conn, ws, text)
        conn = send(conn, ws, binary)
        assert mint.http.pending_bytes(conn) > 0  # more than the server's windows
        conn = wait_frames(conn, mode, [ws], 2, timeout=60)
        assert ws.frames == [text, binary]
        assert mint.http.pending_bytes(conn) == 0
    finally:
        _close(conn)


PING_SERVERS = [
    "hypercorn_h2c",
    "hypercorn_tls",
    pytest.param("node_h2c", marks=pytest.mark.node),
    pytest.param("node_h2_tls", marks=pytest.mark.node),
    "fault",
]


@pytest.mark.parametrize("named_server", PING_SERVERS, indirect=True)
def test_ping_pong(named_server: tuple[str, Any]) -> None:
    _, peer = named_server
    conn = connect_h2(peer, "passive")
    try:
        conn, ws = open_ws(conn, "passive")
        conn = send(conn, ws, Ping(b"are you there"))
        conn = wait_frames(conn, "passive", [ws], 1, timeout=3)
        assert ws.frames == [Pong(b"are you there")]
        conn, ref = mint.http.ping(conn)  # the HTTP/2 PING, on the same connection
        conn, _ = read_until(conn, "passive", lambda rs: mint.http.Pong(ref) in rs)
    finally:
        _close(conn)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("named_server", SERVERS, indirect=True)
def test_close_started_by_the_client(named_server: tuple[str, Any], mode: str) -> None:
    name, peer = named_server
    conn = connect_h2(peer, mode)
    try:
        conn, ws = open_ws(conn, mode)
        conn = send(conn, ws, Close(1000, "done"))
        conn = wait_frames(conn, mode, [ws], 1)
        assert ws.frames[0] == Close(1000, "done")
        if "hypercorn" not in name:
            conn, _ = read_until(conn, mode, lambda rs: ws.take(rs) or ws.done)
            assert mint.http.open_request_count(conn) == 0
        # The connection still serves requests after the WebSocket ended.
        conn, status, _ = get(conn, mode)
        assert status == 200
    finally:
        _close(conn)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("named_server", SERVERS, indirect=True)
def test_close_started_by_the_server(named_server: tuple[str, Any], mode: str) -> None:
    name, peer = named_server
    conn = connect_h2(peer, mode)
    try:
        conn, ws = open_ws(conn, mode, "/close")
        conn = send(conn, ws, Text("bye?"))
        conn = wait_frames(conn, mode, [ws], 1)
        assert ws.frames[-1] == Close(1000, "bye")
        if "hypercorn" in name:
            return  # replying would hit pgjones/hypercorn#329
        conn = send(conn, ws, Close(1000, ""))
        conn, _ = read_until(conn, mode, lambda rs: ws.take(rs) or ws.done)
        assert mint.http.open_request_count(conn) == 0
    finally:
        _close(conn)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("named_server", SERVERS, indirect=True)
def test_two_websockets_and_a_get_multiplexed(named_server: tuple[str, Any], mode: str) -> None:
    _, peer = named_server
    conn = connect_h2(peer, mode)
    try:
        conn, first = open_ws(conn, mode)
        conn, second = open_ws(conn, mode)
        assert first.ref != second.ref
        payload_a = Binary(os.urandom(300_000))
        payload_b = Text("b" * 300_000)
        conn = send(conn, first, payload_a)
        conn = send(conn, second, payload_b)
        # Answered while both WebSockets are busy.
        conn, status, got = get(conn, mode, sockets=[first, second])
        assert (status, got) == (200, b"hello")
        for i in range(5):
            conn = send(conn, first, Text(f"a{i}"))
            conn = send(conn, second, Text(f"b{i}"))
        conn = wait_frames(conn, mode, [first, second], 6, timeout=30)
        assert first.frames == [payload_a, *[Text(f"a{i}") for i in range(5)]]
        assert second.frames == [payload_b, *[Text(f"b{i}") for i in range(5)]]
        assert mint.http.open_request_count(conn) == 2
    finally:
        _close(conn)


@pytest.mark.parametrize("named_server", SERVERS, indirect=True)
def test_403_on_connect(named_server: tuple[str, Any]) -> None:
    _, peer = named_server
    conn = connect_h2(peer, "passive")
    try:
        conn, ref = mint.websocket.upgrade("ws", conn, "/forbidden", [])
        conn, seen = read_until(conn, "passive", lambda rs: Done(ref) in rs)
        status = next(r.status for r in seen if isinstance(r, mint.http.Status))
        headers = next(r.headers for r in seen if isinstance(r, mint.http.Headers))
        with pytest.raises(mint.UpgradeFailureError) as info:
            mint.websocket.new(conn, ref, status, headers, mode="passive")
        assert info.value.status_code == 403
        assert info.value.reason == ("upgrade_failure", 403)
        assert info.value.conn is conn
        conn, status, _ = get(conn, "passive")
        assert status == 200
    finally:
        _close(conn)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("named_server", SERVERS, indirect=True)
def test_refused_upgrades_give_their_streams_back(named_server: tuple[str, Any], mode: str) -> None:
    # A refusal (403, END_STREAM) left the client's side of the stream open: counted by
    # open_request_count and by the server's SETTINGS_MAX_CONCURRENT_STREAMS (100 on
    # these servers) for the connection's life, so the 101st request failed with
    # too_many_concurrent_requests. Mint ends it (RST_STREAM(NO_ERROR)) once the answer
    # is over; so does mint now.
    name, peer = named_server
    conn = connect_h2(peer, mode)
    try:
        for _ in range(120):
            conn, ref = mint.websocket.upgrade("ws", conn, "/forbidden", [])
            conn, seen = read_until(conn, mode, lambda rs, ref=ref: Done(ref) in rs)
            mine = of(ref, seen)
            assert mine[0] == Status(ref, 403)
            headers = next(r.headers for r in mine if isinstance(r, Headers))
            with pytest.raises(mint.UpgradeFailureError):
                mint.websocket.new(conn, ref, 403, headers, mode=mode)
            assert mint.http.open_request_count(conn) == 0
            # EOF for a WebSocket that never was: as after a close handshake, a no-op.
            conn = mint.websocket.stream_request_body(conn, ref, mint.http.EOF)
        conn, status, _ = get(conn, mode)
        assert status == 200
        if name == "fault":
            resets = peer.events("reset")
            assert len(resets) == 120 and {e[3] for e in resets} == {0}  # NO_ERROR
    finally:
        _close(conn)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("named_server", SERVERS, indirect=True)
def test_eof_after_the_close_handshake_is_a_no_op_however_the_server_ended(
    named_server: tuple[str, Any], mode: str
) -> None:
    # Node and the fault server end the stream behind their Close (END_STREAM), which
    # forgot the stream: the caller's EOF then raised unknown_request_to_stream. With
    # hypercorn, which never ends it, the same EOF was fine.
    _, peer = named_server
    conn = connect_h2(peer, mode)
    try:
        conn, ws = open_ws(conn, mode)
        conn = send(conn, ws, Close(1000, "bye"))
        conn, _ = read_until(conn, mode, lambda _: Close in map(type, ws.frames), sockets=[ws])
        conn = mint.websocket.stream_request_body(conn, ws.ref, mint.http.EOF)
        conn = mint.websocket.stream_request_body(conn, ws.ref, mint.http.EOF)
        with pytest.raises(mint.HTTPError) as info:
            mint.websocket.stream_request_body(conn, ws.ref, b"more")
        assert info.value.reason == "request_body_not_streaming"
        assert mint.http.open_request_count(conn) == 0
    finally:
        _close(conn)


@pytest.mark.parametrize("mode", MODES)
def test_a_2xx_that_new_refuses_resets_the_stream(
    h2_fault: Any,  # noqa: F811
    mode: str,
) -> None:
    # The server accepted, but the answer cannot be taken (here an extension that was
    # not offered; RFC 6455 4.1 fails the WebSocket): the server held a WebSocket open
    # that nobody would use or end. new() resets it (CANCEL), written with the next I/O.
    peer = h2_fault(max_concurrent_streams=1)
    conn = connect_h2(peer, mode)
    try:
        conn, ref = mint.websocket.upgrade("ws", conn, "/echo", [])
        conn, seen = read_until(conn, mode, lambda rs: Headers in map(type, of(ref, rs)))
        headers = next(r.headers for r in of(ref, seen) if isinstance(r, Headers))
        answered = [*headers, ("sec-websocket-extensions", "permessage-deflate")]
        with pytest.raises(mint.WebSocketError) as info:
            mint.websocket.new(conn, ref, 200, answered, mode=mode)
        assert info.value.reason == ("extension_not_negotiated", "permessage-deflate")
        conn = info.value.conn
        assert mint.http.open_request_count(conn) == 0
        conn = mint.websocket.stream_request_body(conn, ref, mint.http.EOF)  # a no-op
        # The server's only slot is free again: the reset went out before the request.
        conn, status, _ = get(conn, mode)
        assert status == 200
        assert [(e[1], e[3]) for e in peer.events("reset")] == [(1, 8)]  # CANCEL
    finally:
        _close(conn)


class _OddBits(mint.websocket.Extension):
    """Its negotiate returns an instance of a class with RSV bits no frame has."""

    name = "x-odd"

    def negotiate(self, params: list[tuple[str, str | None]]) -> mint.websocket.Extension:
        return type("_Odd", (_OddBits,), {"rsv_bits": 0x80})()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("answer", ["permessage-deflate", "x-odd"])
def test_the_reset_of_a_refused_2xx_goes_out_while_the_client_only_waits(
    h2_fault: Any,  # noqa: F811
    mode: str,
    answer: str,
) -> None:
    # ext15: the reset waited for the client's next write, and a client that only read
    # (recv timing out, or a mailbox waiting) never sent it: the server kept the
    # WebSocket open, counted against its streams. With an extension whose negotiate
    # gave bad RSV bits, new() raised (typed) before the reset was even made.
    peer = h2_fault()
    conn = connect_h2(peer, mode)
    try:
        conn, ref = mint.websocket.upgrade("ws", conn, "/echo", [], extensions=[_OddBits])
        conn, seen = read_until(conn, mode, lambda rs: Headers in map(type, of(ref, rs)))
        headers = next(r.headers for r in of(ref, seen) if isinstance(r, Headers))
        answered = [*headers, ("sec-websocket-extensions", answer)]
        with pytest.raises(mint.WebSocketError) as info:
            mint.websocket.new(conn, ref, 200, answered, mode=mode)
        assert info.value.reason[:2] == ("extension_not_negotiated", answer)
        conn = info.value.conn
        deadline = time.monotonic() + 5
        while not peer.events("reset") and time.monotonic() < deadline:
            if mode == "passive":
                with pytest.raises(mint.TransportError) as waited:
                    mint.http.recv(conn, 0, 0.05)
                assert waited.value.reason == "timeout"
                conn = waited.value.conn
            else:
                with pytest.raises(TimeoutError):
                    mint.receive(0.05)
        assert [(e[1], e[3]) for e in peer.events("reset")] == [(1, 8)]  # CANCEL
        assert mint.http.open_request_count(conn) == 0
    finally:
        _close(conn)


@pytest.mark.parametrize(
    "named_server",
    [pytest.param("node_h2c_no_connect", marks=pytest.mark.node), "fault_off"],
    indirect=True,
)
def test_extended_connect_disabled(named_server: tuple[str, Any]) -> None:
    _, peer = named_server
    conn = connect_h2(peer, "passive")
    try:
        with pytest.raises(mint.WebSocketError) as info:
            mint.websocket.upgrade("ws", conn, "/echo", [])
        assert info.value.reason == "extended_connect_disabled"
        conn = info.value.conn
        assert mint.http.open_request_count(conn) == 0
        conn, status, got = get(conn, "passive")
        assert (status, got) == (200, b"hello")
    finally:
        _close(conn)


# -- the fault server -----------------------------------------------------------------------
def test_reset_of_one_websocket_leaves_the_others(h2_fault: Any) -> None:  # noqa: F811
    peer = h2_fault()
    conn = connect_h2(peer, "passive")
    try:
        conn, doomed = open_ws(conn, "passive", "/ws-reset")
        conn, alive = open_ws(conn, "passive")
        conn = send(conn, doomed, Text("boom"))
        conn = send(conn, alive, Text("still here"))
        conn = wait_frames(conn, "passive", [doomed, alive], 1)
        assert doomed.error == mint.HTTPError(("server_closed_request", "cancel"))
        assert alive.frames == [Text("still here")]
        with pytest.raises(mint.HTTPError) as info:
            send(conn, doomed, Text("too late"))
        conn = info.value.conn
        conn = send(conn, alive, Text("again"))
        conn = wait_frames(conn, "passive", [alive], 2)
        assert alive.frames[-1] == Text("again")
    finally:
        _close(conn)


@pytest.mark.parametrize(("scheme", "sent"), [("ws", "http"), ("wss", "https")])
def test_extended_connect_scheme_is_the_websocket_uris(
    h2_fault: Any,  # noqa: F811
    scheme: str,
    sent: str,
) -> None:
    # RFC 8441 4 and Mint's upgrade: :scheme is "https" for a wss URI and "http" for a
    # ws one, whatever the hop (h2c here, as behind a proxy that ends TLS); the
    # connection's own scheme went out for both.
    peer = h2_fault()
    conn = connect_h2(peer, "passive")
    try:
        conn, ref = mint.websocket.upgrade(scheme, conn, "/echo", [])
        conn, seen = read_until(conn, "passive", lambda seen: bool(of(ref, seen)))
        assert of(ref, seen)[0] == Status(ref, 200)
        ((_, _, _, (method, path, headers)),) = peer.events("request")
        assert (method, path, headers[":protocol"]) == ("CONNECT", "/echo", "websocket")
        assert headers[":scheme"] == sent
    finally:
        _close(conn)


@pytest.mark.parametrize("mode", MODES)
def test_tiny_windows_big_echo(h2_fault: Any, mode: str) -> None:  # noqa: F811
    peer = h2_fault(initial_window=1000, window_step=700)
    conn = connect_h2(peer, mode)
    try:
        assert mint.http.send_window(conn) == 65_535
        conn, ws = open_ws(conn, mode)
        message = Binary(os.urandom(BIG))
        conn = send(conn, ws, message)
        assert mint.http.send_window(conn, ws.ref) == 0
        assert mint.http.pending_bytes(conn, ws.ref) > BIG - 2000
        conn = wait_frames(conn, mode, [ws], 1, timeout=60)
        assert ws.frames == [message]
        assert mint.http.pending_bytes(conn) == 0
    finally:
        _close(conn)


@pytest.mark.parametrize("mode", MODES)
def test_a_client_close_keeps_the_stream_open_for_the_answer(
    h2_fault: Any,  # noqa: F811
    mode: str,
) -> None:
    # A server that resets the stream when the client ends it before the server's
    # Close (lighttpd 1.4's mod_proxy over HTTP/2 does: its backend answers the
    # Close later). The client's END_STREAM now waits for the server's Close
    # (RFC 6455 7.1.1), so the answer's code and reason arrive, and the stream ends.
    peer = h2_fault()
    conn = connect_h2(peer, mode)
    try:
        conn, ws = open_ws(conn, mode, "/half-close-resets")
        conn = send(conn, ws, Text("hello"))
        conn = send(conn, ws, Close(4001, "client bye"))
        conn, _ = read_until(conn, mode, lambda _: ws.done or ws.error is not None, sockets=[ws])
        assert ws.error is None  # was HTTPError(("server_closed_request", "internal_error"))
        assert ws.frames == [Text("hello"), Close(4001, "client bye")]
        assert mint.http.open_request_count(conn) == 0
        deadline = time.monotonic() + 5
        while not peer.events("reset") and time.monotonic() < deadline:
            time.sleep(0.01)
        # The stream ended on both sides: the client's side once the server's had.
        assert [e[3] for e in peer.events("reset")] == [0]  # NO_ERROR
        assert not peer.events("half_close_reset") and not peer.events("end_stream")
        conn, status, _ = get(conn, mode)  # the connection goes on
        assert status == 200
    finally:
        _close(conn)


@pytest.mark.parametrize("mode", MODES)
def test_cancel_lets_go_a_close_the_windows_never_let_out(
    h2_fault: Any,  # noqa: F811
    mode: str,
) -> None:
    # The caller ends a WebSocket (EOF after its Close) whose Close waits behind a
    # window the server never opens, on a server of one stream at a time. The stream
    # holds the server's only slot, and says so; cancel gives it up.
    peer = h2_fault(initial_window=1000, grant_windows=False, max_concurrent_streams=1)
    conn = connect_h2(peer, mode)
    try:
        conn, ws = open_ws(conn, mode)
        conn = send(conn, ws, Binary(os.urandom(3000)))
        conn = send(conn, ws, Close(1000, "bye"))
        conn = mint.websocket.stream_request_body(conn, ws.ref, mint.http.EOF)
        queued = mint.http.pending_bytes(conn, ws.ref)
        assert queued > 2000
        assert mint.http.pending_bytes(conn) == queued
        assert mint.http.open_request_count(conn) == 1  # was 0, beside the error below
        with pytest.raises(mint.HTTPError) as info:
            mint.websocket.upgrade("ws", conn, "/echo", [])
        assert info.value.reason == "too_many_concurrent_requests"
        conn = info.value.conn
        conn = mint.websocket.cancel(conn, ws.ref)  # did nothing: the ref was gone
        assert mint.http.pending_bytes(conn, ws.ref) == 0
        assert mint.http.pending_bytes(conn) == 0
        assert mint.http.open_request_count(conn) == 0
        deadline = time.monotonic() + 5
        while not peer.events("reset") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [e[3] for e in peer.events("reset")] == [8]  # CANCEL
        conn, again = open_ws(conn, mode)  # the slot is free again
        conn = send(conn, again, Text("hi"))
        conn = wait_frames(conn, mode, [again], 1)
        assert again.frames == [Text("hi")]
        assert ws.frames == [] and ws.error is None  # nothing reported for the first
    finally:
        _close(conn)


@pytest.mark.parametrize("mode", MODES)
def test_close_lets_go_what_waits_for_the_windows(h2_fault: Any, mode: str) -> None:  # noqa: F811
    # mint.http.close: what waited behind shut windows will never go, ended or not.
    peer = h2_fault(initial_window=1000, grant_windows=False)
    conn = connect_h2(peer, mode)
    try:
        conn, ended = open_ws(conn, mode)
        conn, open_one = open_ws(conn, mode)
        for ws in (ended, open_one):
            conn = send(conn, ws, Binary(os.urandom(3000)))
        conn = send(conn, ended, Close(1000, "bye"))
        conn = mint.websocket.stream_request_body(conn, ended.ref, mint.http.EOF)
        assert mint.http.pending_bytes(conn) > 4000
    finally:
        conn = mint.http.close(conn)
    assert mint.http.pending_bytes(conn) == 0
    assert mint.http.pending_bytes(conn, ended.ref) == 0
    assert mint.http.pending_bytes(conn, open_one.ref) == 0


def test_cancel_after_the_close_handshake(h2_fault: Any) -> None:  # noqa: F811
    peer = h2_fault()
    conn = connect_h2(peer, "passive")
    try:
        conn, ws = open_ws(conn, "passive", "/ws-hold")
        conn = send(conn, ws, Close(1000, ""))
        conn = wait_frames(conn, "passive", [ws], 1)
        assert ws.frames == [Close(1000, "")]
        # The server keeps its side open: wait a bounded time, then cancel.
        with pytest.raises(mint.TransportError) as info:
            read(conn, "passive", timeout=0.3)
        assert info.value.reason == "timeout"
        conn = mint.websocket.cancel(conn, ws.ref)
        assert mint.http.open_request_count(conn) == 0
        conn, status, _ = get(conn, "passive")  # the connection goes on
        assert status == 200
        assert [e[3] for e in peer.events("reset")] == [8]  # CANCEL (RFC 9113 7)
    finally:
        _close(conn)


def test_late_settings(h2_fault: Any) -> None:  # noqa: F811
    peer = h2_fault(settings_delay=0.3)
    started = time.monotonic()
    conn = connect_h2(peer, "passive")
    try:
        assert time.monotonic() - started >= 0.25  # connect waited for the SETTINGS
        conn, ws = open_ws(conn, "passive")  # and so saw ENABLE_CONNECT_PROTOCOL
        conn = send(conn, ws, Text("x"))
        conn = wait_frames(conn, "passive", [ws], 1)
        assert ws.frames == [Text("x")]
    finally:
        _close(conn)


def test_goaway_keeps_open_websockets_going(h2_fault: Any) -> None:  # noqa: F811
    peer = h2_fault()
    conn = connect_h2(peer, "passive")
    try:
        conn, ws = open_ws(conn, "passive")  # stream 1
        conn, ref = mint.http.request(conn, "GET", "/goaway", [])  # stream 3: last_stream_id=1
        conn, seen = read_until(
            conn, "passive", lambda rs: any(isinstance(r, Error) for r in rs), sockets=[ws]
        )
        assert Error(ref, mint.HTTPError("unprocessed")) in seen
        assert not mint.http.is_open(conn, "write")
        assert mint.http.is_open(conn, "read")
        # RFC 9113 6.8: the WebSocket below last_stream_id goes on.
        conn = send(conn, ws, Text("after goaway"))
        conn = wait_frames(conn, "passive", [ws], 1)
        assert ws.frames == [Text("after goaway")]
        conn = send(conn, ws, Close(1000, ""))
        conn, _ = read_until(conn, "passive", lambda rs: ws.done, sockets=[ws])
        assert ws.frames[-1] == Close(1000, "")
        conn, rest = read(conn, "passive")  # then the server closes the connection
        assert rest == []
        assert not mint.http.is_open(conn)
    finally:
        _close(conn)


def _answer(conn: Any, ref: Any) -> tuple[Any, int, list[tuple[str, str]]]:
    conn, seen = read_until(
        conn, "passive", lambda rs: any(isinstance(r, Done) for r in of(ref, rs))
    )
    mine = of(ref, seen)
    status = next(r.status for r in mine if isinstance(r, Status))
    return conn, status, next(r.headers for r in mine if isinstance(r, Headers))


def test_upgrades_refused_or_given_up_leave_nothing_behind(
    h2_fault: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An upgrade's entry, kept for new(), went only with a successful new(): every
    # refused upgrade (and every one cancelled, reset, or never taken) kept a few
    # hundred bytes for as long as the connection lived.
    peer = h2_fault()
    conn = connect_h2(peer, "passive")
    pending = lambda: len(conn._private.get("upgrades", {}))  # noqa: E731
    try:
        for _ in range(20):
            conn, ref = mint.websocket.upgrade("ws", conn, "/forbidden", [])
            conn, status, headers = _answer(conn, ref)
            with pytest.raises(mint.UpgradeFailureError) as info:
                mint.websocket.new(conn, ref, status, headers, mode="passive")
            assert info.value.status_code == 403
            conn = info.value.conn
            # Over: asked again, it is no upgrade of this connection any more.
            with pytest.raises(mint.WebSocketError) as again:
                mint.websocket.new(conn, ref, status, headers, mode="passive")
            assert again.value.reason == ("not_upgraded", ref)
        assert pending() == 0
        # The caller's own mistake leaves the upgrade to be taken again.
        conn, ref = mint.websocket.upgrade("ws", conn, "/echo", [])
        conn, seen = read_until(conn, "passive", lambda rs: any(isinstance(r, Headers) for r in rs))
        headers = next(r.headers for r in seen if isinstance(r, Headers))
        with pytest.raises(mint.WebSocketError):
            mint.websocket.new(conn, ref, "200", headers, mode="passive")
        conn, websocket = mint.websocket.new(conn, ref, 200, headers, mode="passive")
        assert pending() == 0
        # Cancelled before new: gone too.
        conn, ref = mint.websocket.upgrade("ws", conn, "/echo", [])
        conn = mint.websocket.cancel(conn, ref)
        assert pending() == 0
        # Never taken at all: those over go past the bound; the newest still works.
        monkeypatch.setattr("mint.websocket._api.MAX_PENDING_UPGRADES", 4)
        for _ in range(10):
            conn, ref = mint.websocket.upgrade("ws", conn, "/forbidden", [])
            conn, _status, _headers = _answer(conn, ref)
        assert pending() <= 4
        # ... but none still in flight goes (scale15: past 1,024 upgrades at once, new()
        # said not_upgraded for a WebSocket open on the server, for good).
        live = []
        for _ in range(9):
            conn, ref = mint.websocket.upgrade("ws", conn, "/echo", [])
            answered = lambda rs, ref=ref: Headers in map(type, of(ref, rs))  # noqa: E731
            conn, seen = read_until(conn, "passive", answered)
            live.append((ref, next(r.headers for r in of(ref, seen) if isinstance(r, Headers))))
        for ref, headers in live:
            conn, _ = mint.websocket.new(conn, ref, 200, headers, mode="passive")
            conn = mint.websocket.cancel(conn, ref)
        assert pending() == 0
        conn, ref = mint.websocket.upgrade("ws", conn, "/echo", [])
        conn, seen = read_until(conn, "passive", lambda rs: any(isinstance(r, Headers) for r in rs))
        headers = next(r.headers for r in seen if isinstance(r, Headers))
        conn, websocket = mint.websocket.new(conn, ref, 200, headers, mode="passive")
        ws = WS(ref, websocket)
        conn = send(conn, ws, Text("still here"))
        conn = wait_frames(conn, "passive", [ws], 1)
        assert ws.frames == [Text("still here")]
    finally:
        _close(conn)


@pytest.mark.parametrize("before", ["nothing", "a_message_beyond_the_window"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("named_server", SERVERS, indirect=True)
def test_eof_after_a_close_leaves_the_connection_whole(
    named_server: tuple[str, Any], mode: str, before: str
) -> None:
    # The caller ends its side right after its Close: an empty END_STREAM DATA frame
    # there made hypercorn 0.18 drop the whole connection (pgjones/hypercorn#329), and
    # every other stream with it; RST_STREAM(NO_ERROR) ends the stream instead.
    _, peer = named_server
    conn = connect_h2(peer, mode)
    try:
        conn, first = open_ws(conn, mode)
        conn, second = open_ws(conn, mode)
        if before != "nothing":
            # (the Close then waits behind the message for the server's windows)
            conn = send(conn, first, Binary(os.urandom(1 << 20)))
        conn = send(conn, first, Close(1000, "bye"))
        conn = mint.websocket.stream_request_body(conn, first.ref, mint.http.EOF)
        # Over at once: only the second is counted, and the first while its Close
        # still waits for the server's windows (it holds one of the server's streams).
        queued = mint.http.pending_bytes(conn, first.ref)
        assert (queued > 0) == (before != "nothing")
        assert mint.http.open_request_count(conn) == (2 if queued else 1)
        time.sleep(0.2)  # (the server takes both before the next frame)
        conn = send(conn, second, Text("still there?"))
        conn = wait_frames(conn, mode, [second], 1)
        assert second.frames == [Text("still there?")]
        assert second.error is None
        conn, status, _ = get(conn, mode)
        assert status == 200
        deadline = time.monotonic() + 10
        while mint.http.pending_bytes(conn) and time.monotonic() < deadline:
            conn, responses = read(conn, mode, 10)  # (the server's windows open)
            assert of(first.ref, responses) == []  # nothing reported for it
        assert mint.http.pending_bytes(conn) == 0
        # The ended WebSocket is over once its Close is out: only the open one is
        # counted (the ended one was, for the connection's life, where the server
        # never ends its side).
        assert mint.http.open_request_count(conn) == 1
        assert first.frames == [] and first.error is None
    finally:
        _close(conn)
