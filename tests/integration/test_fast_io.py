"""``mint.websocket.recv``, ``stream_request_body`` and ``stream``: the C hot path against Python.

With ``mint._iospeedups`` built, the public names are C functions that take the steady
state of a passive upgraded HTTP/1.1 connection on a plain socket and hand everything
else to the Python functions (``mint.http``'s). Every test here runs the same script
through the public names ("public") and through the Python functions ("python"), and
checks each outcome the C path finishes itself or hands back: a short read, a full read
(a large message), the end of stream, a reset, a timeout (and a changed timeout), a
signal during the wait, a send the socket takes only in part, a closed connection and a
wrong ref. ``stream`` (active mode: the mailbox's messages) is checked the same way, for
its own socket's input, other messages, the end of stream and a failure. Under
``MINT_NO_SPEEDUPS=1`` both are the Python path, and must pass as such.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import os
import random
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from servers.raw import (
    OP_BINARY,
    AnswersTheWholeMessage,
    close_notify_behind,
    drain,
    frame,
    handshake_response,
    read_request,
)
from wsclient import Client, handshake

import mint
from mint._speedup import load_speedup
from mint.http import Data, Done, Headers, Status
from mint.http import _io as http_io
from mint.websocket import Binary, Text
from mint.websocket import _io as ws_io

PATHS = ["public", "python"]


def io_of(path: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    if path == "public":
        return mint.websocket.recv, mint.websocket.stream_request_body
    return http_io.recv, ws_io.stream_request_body


def read_client_frame(conn: socket.socket) -> bytes:
    """One masked client frame's payload (lengths below 126 and 16-bit; what these tests send)."""

    def exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            more = conn.recv(n - len(buf))
            if not more:
                raise ConnectionError("client went away")
            buf += more
        return buf

    _, b1 = exactly(2)
    assert b1 & 0x80, "client frames are masked"
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", exactly(2))
    key = exactly(4)
    data = exactly(n)
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def send_when(go: threading.Event, payload: bytes) -> Callable[[socket.socket], None]:
    """A server script: once ``go`` is set, one binary frame, then the client's answer."""

    def script(conn: socket.socket) -> None:
        go.wait(10)
        conn.sendall(frame(OP_BINARY, payload))
        read_client_frame(conn)

    return script


def upgraded(
    script: Callable[[socket.socket], None], opened: threading.Event
) -> Callable[[socket.socket], None]:
    """A raw-server handler: the 101, then ``script(conn)`` once the client has a WebSocket."""

    def handler(conn: socket.socket) -> None:
        request = read_request(conn)
        if request:
            conn.sendall(handshake_response(request))
            if opened.wait(10):
                script(conn)

    return handler


def opener(raw_server: Any, mode: str, tls: bool = False) -> Iterator[Callable[..., Client]]:
    """``start(script)``: a WebSocket in ``mode`` on a raw server that runs ``script``
    once the client has it (active: on a mailbox of its own), over TLS (wss) when
    ``tls``; all closed at the end."""
    clients: list[Client] = []

    def start(script: Callable[[socket.socket], None]) -> Client:
        opened = threading.Event()
        server = raw_server(upgraded(script, opened), tls="good" if tls else None)
        box = mint.Mailbox() if mode == "active" else None
        options: dict[str, Any] = {"transport_opts": {"cafile": server.cafile}} if tls else {}
        conn = mint.http.connect(
            server.scheme, "127.0.0.1", server.port, mode=mode, mailbox=box, **options
        )
        client = Client(conn, mode, box)
        scheme = "wss" if tls else "ws"
        client.conn, client.ref = mint.websocket.upgrade(scheme, client.conn, "/", [])
        status, headers, early = handshake(client)
        assert not early
        client.conn, client.websocket = mint.websocket.new(
            client.conn, client.ref, status, headers, mode=mode
        )
        clients.append(client)
        opened.set()
        return client

    yield start
    for client in clients:
        client.close()


@pytest.fixture(params=["tcp", "tls"])
def open_passive(
    raw_server: Any, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Client]]:
    """A passive WebSocket over a plain socket, and again over TLS (the C path of each)."""
    yield from opener(raw_server, "passive", tls=request.param == "tls")


def read_frames(client: Client, recv: Callable[..., Any], count: int) -> list[Any]:
    out: list[Any] = []
    while len(out) < count:
        client.conn, responses = recv(client.conn, 0, 10.0)
        for response in responses:
            assert type(response) is Data
            assert response.ref == client.ref
            assert type(response.data) is bytes
            client.websocket, frames = mint.websocket.decode(client.websocket, response.data)
            out += frames
    return out


def test_public_names_are_the_c_functions_when_built() -> None:
    try:
        import mint._iospeedups as c
    except ImportError:
        c = None
    if c is None or os.environ.get("MINT_NO_SPEEDUPS", "") not in ("", "0"):
        assert mint.websocket.recv is http_io.recv
        assert mint.websocket.stream_request_body is ws_io.stream_request_body
        assert mint.websocket.stream is ws_io.stream
    else:
        for public, python in [
            (mint.websocket.recv, http_io.recv),
            (mint.websocket.stream_request_body, ws_io.stream_request_body),
            (mint.websocket.stream, ws_io.stream),
        ]:
            assert type(public) is type(c.recv)  # a C function
            assert public.__name__ == python.__name__
            assert public.__doc__ == python.__doc__  # help() shows the Python documentation
            assert list(inspect.signature(public).parameters) == list(
                inspect.signature(python).parameters
            )


@pytest.mark.parametrize("path", PATHS)
def test_round_trips_of_every_small_size(open_passive: Any, path: str) -> None:
    sizes = [*range(126), 126, 200, 1000, 65000]

    def echo(conn: socket.socket) -> None:
        for _ in sizes:
            conn.sendall(frame(OP_BINARY, read_client_frame(conn)))

    client = open_passive(echo)
    recv, srb = io_of(path)
    for n in sizes:
        payload = os.urandom(n)
        client.websocket, data = mint.websocket.encode(client.websocket, Binary(payload))
        conn = srb(client.conn, client.ref, data)
        assert conn is client.conn
        assert read_frames(client, recv, 1) == [Binary(payload)]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("size", [65536 - 2, 65536 * 3 + 7, 5 << 20])
def test_a_message_larger_than_one_read_comes_whole(
    open_passive: Any, path: str, size: int
) -> None:
    payload = os.urandom(size)
    hold = threading.Event()

    def send_big(conn: socket.socket) -> None:
        conn.sendall(frame(OP_BINARY, payload))
        hold.wait(10)

    client = open_passive(send_big)
    recv, _ = io_of(path)
    try:
        assert read_frames(client, recv, 1) == [Binary(payload)]
    finally:
        hold.set()


@pytest.mark.parametrize("path", PATHS)
def test_timeouts_follow_each_call_and_leave_the_connection_usable(
    open_passive: Any, path: str
) -> None:
    go = [threading.Event(), threading.Event()]

    def script(conn: socket.socket) -> None:
        for event in go:
            event.wait(10)
            conn.sendall(frame(OP_BINARY, b"after"))
        read_client_frame(conn)

    client = open_passive(script)
    recv, _ = io_of(path)
    for timeout in (0.05, 0.2):
        with pytest.raises(mint.TransportError) as info:
            recv(client.conn, 0, timeout)
        assert info.value.reason == "timeout"
        assert info.value.conn is client.conn
        assert mint.http.is_open(client.conn)
    go[0].set()
    assert read_frames(client, recv, 1) == [Binary(b"after")]
    # A long timeout in force, then a short one: the short one is the one that counts.
    started = time.monotonic()
    with pytest.raises(mint.TransportError) as info:
        recv(client.conn, 0, 0.05)
    assert info.value.reason == "timeout"
    assert time.monotonic() - started < 5.0, "the socket kept the earlier 10 s timeout"
    go[1].set()
    assert read_frames(client, recv, 1) == [Binary(b"after")]


@pytest.mark.parametrize("path", PATHS)
def test_the_end_of_stream_after_a_frame(open_passive: Any, path: str) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(frame(OP_BINARY, b"last"))

    client = open_passive(script)  # the handler returns: the server closes the socket
    recv, _ = io_of(path)
    assert read_frames(client, recv, 1) == [Binary(b"last")]
    with pytest.raises(mint.TransportError) as info:
        while True:
            client.conn, responses = recv(client.conn, 0, 10.0)
            assert responses == []
    assert info.value.reason == "closed"
    assert info.value.conn is client.conn
    assert not mint.http.is_open(client.conn)


@pytest.mark.parametrize("path", PATHS)
def test_a_reset_is_a_typed_error_and_closes(open_passive: Any, path: str) -> None:
    go = threading.Event()

    def script(conn: socket.socket) -> None:
        go.wait(10)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # with a zero linger: a reset, not an orderly end

    client = open_passive(script)
    recv, _ = io_of(path)
    go.set()
    with pytest.raises(mint.TransportError) as info:
        recv(client.conn, 0, 10.0)
    assert info.value.reason == "closed"  # mint's reason for a reset (map_os_error)
    assert_reset_cause(client, info.value)
    assert info.value.conn is client.conn
    assert not mint.http.is_open(client.conn)


def assert_reset_cause(client: Client, error: mint.TransportError) -> None:
    """A plain socket's reset is the ConnectionResetError behind "closed". Over TLS the
    ssl module reads a reset as an end without close_notify (a "ragged EOF"), which
    mint takes as the failure it is (SSLEOFError; suppress_ragged_eofs=False)."""
    if client.conn._transport.tls:
        assert isinstance(error.__cause__, ConnectionResetError | ssl.SSLEOFError)
    else:
        assert isinstance(error.__cause__, ConnectionResetError)


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("path", PATHS)
def test_signals_during_the_wait(open_passive: Any, path: str) -> None:
    go = threading.Event()

    def script(conn: socket.socket) -> None:
        go.wait(10)
        time.sleep(0.3)
        conn.sendall(frame(OP_BINARY, b"late"))
        read_client_frame(conn)

    client = open_passive(script)
    recv, _ = io_of(path)
    calls: list[int] = []

    def raising(signum: int, _: Any) -> None:
        raise Interrupted

    def returning(signum: int, _: Any) -> None:
        calls.append(signum)

    previous = signal.signal(signal.SIGALRM, raising)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(Interrupted):
            recv(client.conn, 0, 10.0)
        assert mint.http.is_open(client.conn)
        signal.signal(signal.SIGALRM, returning)
        go.set()
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        assert read_frames(client, recv, 1) == [Binary(b"late")]
        assert calls == [signal.SIGALRM]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("path", PATHS)
def test_a_frame_larger_than_the_socket_buffer_goes_whole(open_passive: Any, path: str) -> None:
    got: list[int] = []

    def slow_reader(conn: socket.socket) -> None:
        time.sleep(0.2)  # let the client's first send fill the buffers
        total = 0
        while chunk := conn.recv(1 << 20):
            total += len(chunk)
        got.append(total)

    client = open_passive(slow_reader)
    _, srb = io_of(path)
    client.websocket, data = mint.websocket.encode(client.websocket, Binary(b"\x5a" * (16 << 20)))
    assert srb(client.conn, client.ref, data) is client.conn
    mint.http.close(client.conn)
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    assert got == [len(data)]


def test_sending_on_a_closed_connection_or_another_ref_fails_alike(open_passive: Any) -> None:
    def script(conn: socket.socket) -> None:
        read_client_frame(conn)

    outcomes = []
    for path in PATHS:
        client = open_passive(script)
        _, srb = io_of(path)
        client.websocket, data = mint.websocket.encode(client.websocket, Binary(b"x"))
        with pytest.raises(mint.MintError) as wrong:
            srb(client.conn, object(), data)
        mint.http.close(client.conn)
        with pytest.raises(mint.TransportError) as closed:
            srb(client.conn, client.ref, data)
        assert closed.value.reason == "closed"
        assert closed.value.conn is client.conn
        outcomes.append((type(wrong.value), wrong.value.reason))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("path", PATHS)
def test_an_exact_byte_count(open_passive: Any, path: str) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(frame(OP_BINARY, b"abcdef"))
        read_client_frame(conn)

    client = open_passive(script)
    recv, _ = io_of(path)
    client.conn, responses = recv(client.conn, 3, 10.0)
    assert responses == [Data(client.ref, b"\x82\x06a")]
    client.websocket, frames = mint.websocket.decode(client.websocket, responses[0].data)
    assert frames == []
    assert read_frames(client, recv, 1) == [Binary(b"abcdef")]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("byte_count", [2**40, 2**70])
def test_a_byte_count_past_any_read_gets_what_comes(
    open_passive: Any, path: str, byte_count: int
) -> None:
    """An exact count larger than one read can ask for is read in bounded reads: it
    raised a raw OverflowError past ssize_t, and MemoryError at 2**40 (each read
    allocated the whole count up front), with 8 bytes waiting."""
    message = frame(OP_BINARY, b"abcdef")

    def script(conn: socket.socket) -> None:
        conn.sendall(message)  # then the end of stream: the count is never reached

    client = open_passive(script)
    recv, _ = io_of(path)
    client.conn, responses = recv(client.conn, byte_count, 10.0)
    assert responses == [Data(client.ref, message)]


@pytest.mark.parametrize("path", PATHS)
def test_keyword_calls_with_the_contracts_names(open_passive: Any, path: str) -> None:
    """API.md names them ``stream_request_body(conn, ref, data)``, ``recv(conn, byte_count,
    timeout)``, ``encode(websocket, frame)`` and ``decode(websocket, data)``: code that
    passes them by keyword runs on either path (the C functions hand keyword calls on)."""

    def echo(conn: socket.socket) -> None:
        conn.sendall(frame(OP_BINARY, read_client_frame(conn)))

    client = open_passive(echo)
    recv, srb = io_of(path)
    client.websocket, data = mint.websocket.encode(
        websocket=client.websocket, frame=Binary(b"by name")
    )
    client.conn = srb(conn=client.conn, ref=client.ref, data=data)
    client.conn, responses = recv(conn=client.conn, byte_count=0, timeout=10.0)
    client.websocket, frames = mint.websocket.decode(
        websocket=client.websocket, data=responses[0].data
    )
    assert frames == [Binary(b"by name")]


# A read that stops at READ_BURST leaves bytes in the socket and says so (the transport's
# _drained is False): the next read takes what is there without waiting, and waits only
# when it finds the socket empty. (On the public path that read is C's too.) Whether a
# read of a real burst stops there depends on how fast the peer's bytes arrive, so the
# tests set that state themselves: here before every read of a 2.1 MB burst, so the
# reads meet a socket with bytes, a socket momentarily empty, and the last short frame.
@pytest.mark.parametrize("path", PATHS)
def test_reads_after_a_read_that_left_bytes(open_passive: Any, path: str) -> None:
    burst = [os.urandom(700_000) for _ in range(3)]
    go, late = threading.Event(), os.urandom(300)

    def script(conn: socket.socket) -> None:
        conn.sendall(b"".join(frame(OP_BINARY, payload) for payload in burst))
        go.wait(10)
        time.sleep(0.2)  # the client is waiting on an empty socket by then
        conn.sendall(frame(OP_BINARY, late))
        read_client_frame(conn)

    client = open_passive(script)
    recv, _ = io_of(path)
    got: list[Any] = []
    while len(got) < len(burst):
        client.conn, responses = recv(undrained(client).conn, 0, 10.0)
        for response in responses:
            client.websocket, frames = mint.websocket.decode(client.websocket, response.data)
            got += frames
    assert got == [Binary(payload) for payload in burst]
    go.set()
    client.conn, responses = recv(undrained(client).conn, 0, 10.0)
    client.websocket, frames = mint.websocket.decode(client.websocket, responses[0].data)
    assert frames == [Binary(late)]


def undrained(client: Client) -> Client:
    """The state a read stopped at READ_BURST leaves, on a socket that holds nothing now."""
    client.conn._transport._drained = False
    return client


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("timeout", [0, 0.0, None])
def test_an_undrained_read_that_finds_bytes_takes_them_at_any_timeout(
    open_passive: Any, path: str, timeout: float | None
) -> None:
    sent = threading.Event()

    def script(conn: socket.socket) -> None:
        conn.sendall(frame(OP_BINARY, b"ready"))
        sent.set()
        read_client_frame(conn)

    client = open_passive(script)
    recv, _ = io_of(path)
    assert sent.wait(10)
    time.sleep(0.1)  # in the client's socket by now
    client.conn, responses = recv(undrained(client).conn, 0, timeout)
    assert responses == [Data(client.ref, frame(OP_BINARY, b"ready"))]
    assert client.conn._transport._drained, "a short read emptied the socket"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("timeout", [0, 0.05])
def test_an_undrained_read_of_an_empty_socket_times_out(
    open_passive: Any, path: str, timeout: float
) -> None:
    go = threading.Event()

    script = send_when(go, b"after")

    client = undrained(open_passive(script))
    recv, _ = io_of(path)
    started = time.monotonic()
    with pytest.raises(mint.TransportError) as info:
        recv(client.conn, 0, timeout)
    assert info.value.reason == "timeout"
    assert info.value.conn is client.conn
    assert time.monotonic() - started < 5.0
    assert mint.http.is_open(client.conn)
    go.set()
    assert read_frames(client, recv, 1) == [Binary(b"after")]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("ending", ["close", "reset"])
def test_an_undrained_read_at_the_end_of_the_socket(
    open_passive: Any, path: str, ending: str
) -> None:
    go = threading.Event()

    def script(conn: socket.socket) -> None:
        go.wait(10)
        if ending == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    client = undrained(open_passive(script))
    recv, _ = io_of(path)
    go.set()
    time.sleep(0.2)  # the end is in the socket before the read, which must not wait
    with pytest.raises(mint.TransportError) as info:
        while True:
            client.conn, responses = recv(client.conn, 0, 10.0)
            assert responses == []
    assert info.value.reason == "closed"
    assert info.value.conn is client.conn
    if ending == "reset":
        assert_reset_cause(client, info.value)
    assert not mint.http.is_open(client.conn)


@pytest.mark.parametrize("path", PATHS)
def test_an_exact_byte_count_counts_what_the_mailbox_held(open_active: Any, path: str) -> None:
    """Bytes a mailbox had queued when the connection went passive are read first, and
    an exact ``byte_count`` counts them as it counts the socket's (Mint's ``recv/3``)."""
    more = threading.Event()

    def script(conn: socket.socket) -> None:
        conn.sendall(b"0123456789")
        more.wait(10)
        conn.sendall(b"abcdef")
        time.sleep(1)

    client = open_active(script)
    assert client.mailbox is not None
    queued = client.mailbox.receive(timeout=10)
    assert isinstance(queued, mint.SocketData)
    assert queued.socket is mint.http.get_socket(client.conn)
    assert queued.data == b"0123456789"
    client.mailbox.send(queued)  # still queued for the connection when it goes passive
    client.conn = mint.http.set_mode(client.conn, "passive")
    recv, _ = io_of(path)
    got = []
    for count in (3, 4):
        client.conn, responses = recv(client.conn, count, 5.0)
        got += [r.data for r in responses]
    more.set()
    client.conn, responses = recv(client.conn, 6, 5.0)  # 3 held, 3 from the socket
    got += [r.data for r in responses]
    client.conn, responses = recv(client.conn, 0, 5.0)
    got += [r.data for r in responses]
    assert got == [b"012", b"3456", b"789abc", b"def"]


# ----------------------------------------------------------------------- active: stream
@pytest.fixture(params=["tcp", "tls"])
def open_active(raw_server: Any, request: pytest.FixtureRequest) -> Iterator[Callable[..., Client]]:
    """An active WebSocket on a mailbox of its own, over a plain socket and over TLS
    (the mailbox's C path reads both)."""
    yield from opener(raw_server, "active", tls=request.param == "tls")


def stream_of(path: str) -> Callable[..., Any]:
    return mint.websocket.stream if path == "public" else ws_io.stream


@pytest.mark.parametrize("path", PATHS)
def test_stream_turns_its_sockets_input_into_data(open_active: Any, path: str) -> None:
    # Echoes of every length class, then (without being asked) a message larger than
    # one read: the fast path's full read, ended by the mailbox's Python.
    sizes = [0, 1, 125, 126, 65535]
    big = os.urandom(300_000)

    def echo(conn: socket.socket) -> None:
        for _ in sizes:
            conn.sendall(frame(OP_BINARY, read_client_frame(conn)))
        read_client_frame(conn)
        conn.sendall(frame(OP_BINARY, big))

    client = open_active(echo)
    stream = stream_of(path)
    for n in [*sizes, -1]:
        payload = os.urandom(n) if n >= 0 else big
        request = payload if n >= 0 else b"big one, please"
        client.websocket, data = mint.websocket.encode(client.websocket, Binary(request))
        client.conn = mint.websocket.stream_request_body(client.conn, client.ref, data)
        frames: list[Any] = []
        while not frames:
            assert client.mailbox is not None
            message = client.mailbox.receive(10)
            assert isinstance(message, mint.SocketData)
            client.conn, responses = stream(client.conn, message)
            assert [type(r) for r in responses] == [Data]
            assert responses[0].ref == client.ref and responses[0].data == message.data
            client.websocket, frames = mint.websocket.decode(client.websocket, message.data)
        assert frames == [Binary(payload)]


@pytest.mark.parametrize("path", PATHS)
def test_stream_leaves_other_messages_alone(open_active: Any, path: str) -> None:
    client = open_active(lambda conn: None)
    stream = stream_of(path)
    other = socket.socket()
    try:
        for message in [
            "posted",
            mint.SocketData(other, b"\x82\x00"),
            mint.SocketClosed(other),
        ]:
            assert stream(client.conn, message) is mint.UNKNOWN
    finally:
        other.close()
    # Its own socket's message with no bytes (a caller can build one): no responses.
    conn, responses = stream(client.conn, mint.SocketData(client.conn._transport.sock, b""))
    assert conn is client.conn and responses == []


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("econnreset", "econnreset"),
        (ConnectionResetError(104, "reset"), "closed"),
        (42, ("socket_error", 42)),
        (mint.TransportError("timeout"), "timeout"),
        # Built by hand, these lack the attributes ssl sets on the ones it raises
        # (reason, verify_code): mapping them read those and raised AttributeError.
        (ssl.SSLError(1, "x"), ("tls_alert", "tls_error", "x")),
        (ssl.SSLCertVerificationError(1, "bad cert"), ("tls_alert", "bad_certificate", "bad cert")),
        (ssl.SSLEOFError(), "closed"),
    ],
    ids=["str", "oserror", "other", "transport_error", "ssl", "ssl_verify", "ssl_eof"],
)
def test_a_socket_error_a_caller_built_is_typed(
    open_active: Any, path: str, error: Any, reason: Any
) -> None:
    # The mailbox posts SocketError(socket, TransportError); API.md gives the message
    # as SocketError(socket, error) without a type, and stream raised a raw
    # AttributeError for any other error.
    client = open_active(lambda conn: None)
    stream = stream_of(path)
    with pytest.raises(mint.TransportError) as info:
        stream(client.conn, mint.SocketError(client.conn._transport.sock, error))
    assert info.value.reason == reason
    assert info.value.conn is not None
    assert not mint.http.is_open(info.value.conn)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("ending", ["close", "reset"])
def test_stream_at_the_end_of_the_socket(open_active: Any, path: str, ending: str) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(frame(OP_BINARY, b"last words"))
        if ending == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    client = open_active(script)
    stream = stream_of(path)
    got = b""
    assert client.mailbox is not None
    with pytest.raises(mint.TransportError) as info:
        while True:
            client.conn, responses = stream(client.conn, client.mailbox.receive(10))
            got += b"".join(r.data for r in responses if type(r) is Data)
    assert info.value.reason == "closed"
    assert not mint.http.is_open(info.value.conn)
    if ending == "close":
        assert got == frame(OP_BINARY, b"last words")


# ------------------------------------------------------- the C paths are the ones taken
@contextmanager
def mint_frames() -> Iterator[list[str]]:
    """The functions of mint's own source that run as Python frames in the block, in
    the list it yields (this thread only: a server's thread is not profiled; an event
    loop run inside the block is), and those of ssl.py, prefixed ``ssl:`` (the C paths
    call the SSLSocket's _ssl object, not ssl.py's wrappers around it)."""
    root = os.path.dirname(mint.__file__)
    ssl_py = ssl.__file__
    seen: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            name = frame.f_code.co_filename
            if name.startswith(root):
                seen.append(frame.f_code.co_qualname)
            elif name == ssl_py:
                seen.append("ssl:" + frame.f_code.co_qualname)

    sys.setprofile(profile)
    try:
        yield seen
    finally:
        sys.setprofile(None)


@pytest.mark.skipif(
    load_speedup("mint._iospeedups") is None or load_speedup() is None,
    reason="the C speedups are not in use",
)
@pytest.mark.parametrize("transport", ["tcp", "tls"])
@pytest.mark.parametrize("mode", ["passive", "active"])
@pytest.mark.parametrize("size", [16, 60_000])
def test_a_steady_round_trip_runs_none_of_mints_python(
    raw_server: Any, mode: str, size: int, transport: str
) -> None:
    """What the C paths are for: once a connection is in its steady state, a round trip
    (encode, stream_request_body, the read, decode) enters no Python function of mint's
    (nor, over TLS, ssl.py's wrappers), but for ``Mailbox.receive`` itself when a mailbox
    other than the thread's default is read. Every other test here passes on the Python
    fallback too, so a C path that stopped taking its case (a state it can no longer
    read, say) would only be slower; this one fails. 60,000 bytes are four TLS records:
    the reads after the first are the C burst's too."""
    rounds = 6

    def echo(conn: socket.socket) -> None:
        for _ in range(rounds):
            conn.sendall(frame(OP_BINARY, read_client_frame(conn)))
        # Open until the client closes: an end right behind the last echo would be
        # read with it (and kept for the next read: BaseTransport.keep_end).
        with contextlib.suppress(OSError):
            drain(conn)

    with contextmanager(opener)(raw_server, mode, transport == "tls") as start:
        client = start(echo)
        seen = steady_round_trips(client, mode, size, rounds)
    allowed = {"Mailbox.receive"} if mode == "active" else set()
    assert set(seen) <= allowed, seen


def steady_round_trips(client: Client, mode: str, size: int, rounds: int) -> list[str]:
    """Round trips of ``size`` bytes; what of mint's (and ssl.py's) Python the second
    half ran (the first sets the connection's steady state)."""

    def round_trip() -> None:
        client.websocket, data = mint.websocket.encode(client.websocket, Binary(b"x" * size))
        client.conn = mint.websocket.stream_request_body(client.conn, client.ref, data)
        frames: list[Any] = []
        while not frames:
            if mode == "passive":
                client.conn, responses = mint.websocket.recv(client.conn, 0, 10.0)
            else:
                assert client.mailbox is not None
                message = client.mailbox.receive(10.0)
                client.conn, responses = mint.websocket.stream(client.conn, message)
            for r in responses:
                client.websocket, more = mint.websocket.decode(client.websocket, r.data)
                frames += more
        assert frames == [Binary(b"x" * size)]

    for _ in range(rounds // 2):  # the first reads set the connection's steady state
        round_trip()
    # Earlier tests' garbage is not this round trip's: collected now, not inside the
    # window (a mailbox's or a transport's finalizer run by a collection there).
    gc.collect()
    gc.disable()
    try:
        with mint_frames() as seen:
            for _ in range(rounds // 2):
                round_trip()
    finally:
        gc.enable()
    return seen


# A TLS read gives one record (16 KiB at most). When OpenSSL or the socket holds more,
# the read goes on in a burst: on the C path into one bytes object (one Data, the
# records decrypted straight into it), on the Python path one bytes per record. Either
# way the burst ends with OpenSSL holding nothing decrypted (poll cannot see those
# bytes; a mailbox that owns the socket would wait on them), and says whether the
# socket still holds bytes (_drained). The client's receive buffer is raised so that
# the whole burst is in the socket before the read.
@pytest.fixture
def open_tls(raw_server: Any) -> Iterator[Callable[..., Client]]:
    yield from opener(raw_server, "passive", tls=True)


def settled(client: Client, at_least: int) -> int:
    """Wait until the client's socket holds ``at_least`` bytes and no more arrive."""
    sock = client.conn._transport.sock
    held, deadline = -1, time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = _held(sock)
        if now >= at_least and now == held:
            return now
        held = now
    raise AssertionError(f"the socket holds {held} bytes, not {at_least}")


def _held(sock: socket.socket) -> int:
    import fcntl
    import termios

    avail = struct.pack("i", 0)
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, avail))[0]


@contextmanager
def one_tls_read(
    open_tls: Any, path: str, payloads: list[bytes]
) -> Iterator[tuple[Client, list[Any], Callable[..., Any], bytes]]:
    """The payloads' frames, all in the client's socket, then one read of ``path``:
    ``(client, its responses, that path's recv, the frames' bytes)``."""
    wire = b"".join(frame(OP_BINARY, p) for p in payloads)
    hold = threading.Event()

    def script(conn: socket.socket) -> None:
        conn.sendall(wire)
        hold.wait(10)

    client = open_tls(script)
    client.conn._transport.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    recv, _ = io_of(path)
    try:
        settled(client, len(wire))
        client.conn, responses = recv(client.conn, 0, 10.0)
        assert all(type(r) is Data and r.ref == client.ref for r in responses)
        yield client, responses, recv, wire
    finally:
        hold.set()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("size", [60_000, 400_000])
def test_a_tls_burst_comes_whole_and_ends_on_a_record(open_tls: Any, path: str, size: int) -> None:
    payloads = [os.urandom(size), b"next"]
    with one_tls_read(open_tls, path, payloads) as (client, responses, _, wire):
        assert b"".join(r.data for r in responses) == wire
        if path == "public" and load_speedup("mint._iospeedups") is not None:
            assert len(responses) == 1, "the C burst is one bytes object"
        transport = client.conn._transport
        assert transport.sock.pending() == 0
        assert transport._drained, "the burst took all there was"


@pytest.mark.parametrize("path", PATHS)
def test_a_tls_burst_stops_after_read_burst_at_the_end_of_a_record(
    open_tls: Any, path: str
) -> None:
    from mint._backend import READ_BURST

    payloads = [os.urandom(300_000) for _ in range(6)]  # 1.8 MB: more than READ_BURST
    with one_tls_read(open_tls, path, payloads) as (client, responses, recv, wire):
        first = b"".join(r.data for r in responses)
        # READ_BURST, passed by at most the rest of the record it ends in (16 KiB)
        assert READ_BURST <= len(first) < READ_BURST + (16 << 10)
        transport = client.conn._transport
        assert transport.sock.pending() == 0, "the burst ended inside a record"
        assert not transport._drained, "the socket still holds the rest"
        got = [first]
        while sum(map(len, got)) < len(wire):
            client.conn, responses = recv(client.conn, 0, 10.0)
            got += [r.data for r in responses]
        assert b"".join(got) == wire
        frames: list[Any] = []
        for part in got:
            client.websocket, more = mint.websocket.decode(client.websocket, part)
            frames += more
        assert frames == [Binary(p) for p in payloads]


# A TLS record the socket holds only in part: the read finds no whole record
# (SSLWantReadError) and waits again, on the passive path and the mailbox's alike. A
# proxy between the client and the server hands the server's bytes on in pieces of a
# few hundred bytes to a few KB, a moment apart, so records arrive cut anywhere.
@contextmanager
def trickling_proxy(port: int) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    sockets: list[socket.socket] = [listener]

    def pump(src: socket.socket, dst: socket.socket, trickle: bool) -> None:
        rng = random.Random(port)
        try:
            while chunk := src.recv(65536):
                while chunk and not stop.is_set():
                    n = rng.randint(200, 3000) if trickle else len(chunk)
                    dst.sendall(chunk[:n])
                    chunk = chunk[n:]
                    if trickle:
                        time.sleep(0.0005)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def serve() -> None:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        upstream = socket.create_connection(("127.0.0.1", port))
        sockets.extend([client, upstream])
        threading.Thread(target=pump, args=(client, upstream, False), daemon=True).start()
        pump(upstream, client, True)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        for s in sockets:
            s.close()


@pytest.mark.parametrize("mode", ["passive", "active"])
def test_tls_records_that_arrive_in_pieces(raw_server: Any, mode: str) -> None:
    sizes = [5, 300, 20_000, 70_000, 1, 200_000]
    payloads = [os.urandom(n) for n in sizes]
    proxies: list[Any] = []

    def proxied(handler: Any, tls: str | None = None) -> Any:
        server = raw_server(handler, tls=tls)
        proxy = trickling_proxy(server.port)
        proxies.append(proxy)
        return types.SimpleNamespace(
            scheme=server.scheme, port=proxy.__enter__(), cafile=server.cafile
        )

    def script(conn: socket.socket) -> None:
        for payload in payloads:
            conn.sendall(frame(OP_BINARY, payload))
        read_client_frame(conn)

    try:
        with contextmanager(opener)(proxied, mode, True) as start:
            client = start(script)
            got: list[Any] = []
            while len(got) < len(payloads):
                if mode == "passive":
                    client.conn, responses = mint.websocket.recv(client.conn, 0, 10.0)
                else:
                    assert client.mailbox is not None
                    message = client.mailbox.receive(10.0)
                    assert isinstance(message, mint.SocketData), message
                    client.conn, responses = mint.websocket.stream(client.conn, message)
                for r in responses:
                    client.websocket, frames = mint.websocket.decode(client.websocket, r.data)
                    got += frames
            assert got == [Binary(p) for p in payloads]
    finally:
        for proxy in proxies:
            proxy.__exit__(None, None, None)


def close_notify_after(go: threading.Event) -> Callable[[socket.socket], None]:
    """A TLS server script: one frame; once ``go`` is set (the client waits by then),
    close_notify (the server's half of a TLS shutdown), then the TCP close."""

    def script(conn: socket.socket) -> None:
        conn.sendall(frame(OP_BINARY, b"last"))
        go.wait(10)
        time.sleep(0.1)
        assert isinstance(conn, ssl.SSLSocket)
        conn.settimeout(1)
        try:
            conn.unwrap()  # sends close_notify; the client never answers it
        except OSError:
            pass

    return script


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("mode", ["passive", "active"])
def test_close_notify_behind_the_last_bytes_ends_the_stream(
    raw_server: Any, mode: str, path: str
) -> None:
    """close_notify read in the same burst as the last bytes, the TCP side left open:
    the bytes, then ``"closed"``; the end is not lost to a wait that has nothing left to
    see (the mailbox posts it behind the bytes)."""
    release = threading.Event()
    with contextmanager(opener)(raw_server, mode, True) as start:
        client = start(close_notify_behind(frame(OP_BINARY, b"last"), release))
        try:
            got, error = frames_until_error(client, mode, path, 5.0)
        finally:
            release.set()
        assert got == [Binary(b"last")]
        assert error.reason == "closed"
        assert not mint.http.is_open(error.conn)


@pytest.mark.parametrize("path", PATHS)
def test_an_end_a_passive_read_kept_is_posted_when_the_connection_goes_active(
    raw_server: Any, path: str
) -> None:
    """A passive read took the last bytes and close_notify behind them (the end is kept
    for the next read); the connection then goes active: its mailbox posts the end at
    once, since no wait would see it."""
    release = threading.Event()
    with contextmanager(opener)(raw_server, "passive", True) as start:
        client = start(close_notify_behind(frame(OP_BINARY, b"last"), release))
        try:
            recv, _ = io_of(path)
            assert read_frames(client, recv, 1) == [Binary(b"last")]
            box = mint.Mailbox()
            client.conn = mint.http.controlling_process(client.conn, box)
            client.conn = mint.http.set_mode(client.conn, "active")
            message = box.receive(5.0)
            assert isinstance(message, mint.SocketClosed)
            with pytest.raises(mint.TransportError) as info:
                stream_of(path)(client.conn, message)
            assert info.value.reason == "closed"
            box.close()
        finally:
            release.set()


def frames_until_error(
    client: Client,
    mode: str,
    path: str,
    timeout: float,
    seen: Callable[[list[Any]], object] = lambda got: None,
) -> tuple[list[Any], mint.TransportError]:
    """Read ``client``'s frames (passive, or from its mailbox; through ``path``'s
    functions) until a read raises ``TransportError``: the frames, and the error.
    ``seen`` is shown the frames so far after each read."""
    recv, _ = io_of(path)
    got: list[Any] = []
    with pytest.raises(mint.TransportError) as info:
        while True:
            if mode == "passive":
                client.conn, responses = recv(client.conn, 0, timeout)
            else:
                assert client.mailbox is not None
                message = client.mailbox.receive(timeout)
                client.conn, responses = stream_of(path)(client.conn, message)
            for r in responses:
                client.websocket, frames = mint.websocket.decode(client.websocket, r.data)
                got += frames
            seen(got)
    return got, info.value


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("mode", ["passive", "active"])
def test_close_notify_ends_the_stream(raw_server: Any, mode: str, path: str) -> None:
    """close_notify met by a read that waited (a passive read, the mailbox's) ends the
    stream as a TCP close does: ``"closed"``, the connection closed."""
    go = threading.Event()
    with contextmanager(opener)(raw_server, mode, True) as start:
        client = start(close_notify_after(go))
        got, error = frames_until_error(client, mode, path, 10.0, lambda got: got and go.set())
        assert got == [Binary(b"last")]
        assert error.reason == "closed"
        assert error.__cause__ is None, "the end of the stream, not a failure"
        assert not mint.http.is_open(error.conn)


def test_a_queued_end_goes_with_the_connection(raw_server: Any) -> None:
    """Three connections reset at once: one receive reads them all, gives one end and
    queues the others. A connection moved to another mailbox, or set passive, with its
    end still queued gets that end from its next read: the reset (a socket reports it
    once; a second read would only see a plain end of stream)."""

    def reset(conn: socket.socket) -> None:
        if read_request(conn):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    server = raw_server(reset)
    box = mint.Mailbox()
    conns = [mint.http.connect("http", server.host, server.port, mailbox=box) for _ in range(3)]
    conns = [mint.http.request(conn, "GET", "/", [])[0] for conn in conns]
    try:
        time.sleep(0.3)  # all three resets arrive before the mailbox looks
        first = box.receive(5.0)
        assert isinstance(first, mint.SocketError)
        queued = [c for c in conns if mint.http.get_socket(c) is not first.socket]
        assert len(queued) == 2
        other = mint.Mailbox()
        moved = mint.http.controlling_process(queued[0], other)
        message = other.receive(5.0)
        assert isinstance(message, mint.SocketError)
        assert message.socket is mint.http.get_socket(moved)
        assert isinstance(message.error.__cause__, ConnectionResetError)
        with pytest.raises(mint.TransportError) as info:
            mint.http.stream(moved, message)
        assert info.value.responses == []  # its request ends with the connection
        passive = mint.http.set_mode(queued[1], "passive")
        with pytest.raises(mint.TransportError) as info:
            mint.http.recv(passive, 0, 5.0)
        assert info.value.reason == "closed"
        assert isinstance(info.value.__cause__, ConnectionResetError)
        with pytest.raises(TimeoutError):
            box.receive(0.1)  # nothing of theirs is left behind
        other.close()
    finally:
        for conn in conns:
            mint.http.close(conn)
        box.close()


@pytest.mark.parametrize("path", PATHS)
def test_an_upgraded_connection_writes_any_bytes_like_chunk(open_passive: Any, path: str) -> None:
    # A strided memoryview raised a raw TypeError ("can't concat memoryview to
    # bytearray") on an upgraded connection, though plain HTTP/1.1 bodies, encode and
    # decode take it.
    got = bytearray()
    done = threading.Event()
    chunks: list[Any] = [
        b"one",
        memoryview(b"0123456789")[::2],
        bytearray(b"two"),
        memoryview(b"three"),
        memoryview(b"f-o-u-r")[::2],
    ]
    wanted = b"one02468twothreefour"

    def script(conn: socket.socket) -> None:
        conn.settimeout(5.0)
        while len(got) < len(wanted):
            data = conn.recv(65536)
            if not data:
                break
            got.extend(data)
        done.set()

    client = open_passive(script)
    _, stream_request_body = io_of(path)
    for chunk in chunks:
        client.conn = stream_request_body(client.conn, client.ref, chunk)
    assert done.wait(10.0)
    assert bytes(got) == wanted


def test_mint_receive_writes_what_a_timed_out_send_left(raw_server: Any) -> None:
    # mint.receive (the thread's mailbox, its wait in C) waited for input alone: on
    # poll (MINT_MAILBOX_POLL=1, and systems without epoll) the rest of a message whose
    # send hit its send_timeout never went out, and the answer to it never came.
    peer = AnswersTheWholeMessage(bytes(range(256)) * (1 << 15))
    server = raw_server(peer)
    conn = mint.http.connect(
        "http", server.host, server.port, mode="active", transport_opts={"send_timeout": 0.3}
    )

    def responses() -> list[Any]:
        nonlocal conn
        while True:
            result = mint.websocket.stream(conn, mint.receive(10.0))
            if result is not mint.UNKNOWN:
                conn, got = result
                return list(got)

    try:
        conn, ref = mint.websocket.upgrade("ws", conn, "/", [])
        status, headers, done = 0, [], False
        while not done:
            for response in responses():
                if isinstance(response, Status):
                    status = response.status
                elif isinstance(response, Headers):
                    headers = response.headers
                done = done or isinstance(response, Done)
        conn, ws = mint.websocket.new(conn, ref, status, headers)
        ws, data = mint.websocket.encode(ws, Binary(peer.big))
        with pytest.raises(mint.TransportError) as info:
            mint.websocket.stream_request_body(conn, ref, data)
        assert info.value.reason == "timeout"
        conn = info.value.conn
        threading.Timer(0.2, peer.release.set).start()  # (the server reads on, later)
        frames: list[Any] = []
        while not frames:
            for response in responses():
                if isinstance(response, Data):
                    ws, more = mint.websocket.decode(ws, response.data)
                    frames += more
        assert frames == [Text("ok")]
    finally:
        peer.stop()
        mint.http.close(conn)


@pytest.mark.parametrize("path", PATHS)
def test_a_message_given_out_counts_until_it_is_streamed(open_active: Any, path: str) -> None:
    # The mailbox counts what it gives out that no stream took (Mailbox.handed_out):
    # nothing of the socket may be read and parsed past such a message (a connection's
    # last words took /b's answer for /a's). The C receive and stream did not count.
    def two(conn: socket.socket) -> None:
        conn.sendall(frame(OP_BINARY, b"one"))
        time.sleep(0.2)
        conn.sendall(frame(OP_BINARY, b"two"))
        time.sleep(1)

    client = open_active(two)
    stream = stream_of(path)
    assert client.mailbox is not None
    transport = client.conn._transport
    message = client.mailbox.receive(10)
    assert isinstance(message, mint.SocketData) and message.data
    assert client.mailbox.handed_out(transport) == 1
    client.conn, _ = stream(client.conn, message)
    assert client.mailbox.handed_out(transport) == 0
    time.sleep(0.4)  # (the second is in the socket; a receive reads it)
    message = client.mailbox.receive(10)
    assert client.mailbox.handed_out(transport) == 1
    client.conn, _ = stream(client.conn, message)
    assert client.mailbox.handed_out(transport) == transport.unstreamed == 0


def test_waits_of_weeks_are_waits_not_overflows(open_passive: Any) -> None:
    # poll() takes a C int of milliseconds (about 24.8 days): a longer timeout, short
    # of the 1e9 s taken as none, raised a raw OverflowError ("timeout is too large").
    def late(conn: socket.socket) -> None:
        time.sleep(0.2)
        conn.sendall(frame(OP_BINARY, b"late"))
        time.sleep(1)

    client = open_passive(late)
    client.conn, responses = mint.websocket.recv(client.conn, 8, 1e7)
    assert b"".join(r.data for r in responses if isinstance(r, Data)) == frame(OP_BINARY, b"late")
    box = mint.Mailbox()
    try:
        threading.Timer(0.2, box.send, ("posted",)).start()
        assert box.receive(timeout=1e7) == "posted"
    finally:
        box.close()
