"""The transport's reads: bursts come out as independent bytes (joined, or as their parts);
the blocking backend's waiting read (one ``recv`` on a blocking plain socket, its timeout
in ``SO_RCVTIMEO``) keeps every timeout, and nothing else ever waits on that socket."""

from __future__ import annotations

import os
import signal
import socket
import struct
import threading
import time

import pytest

from mint._backend import READ_BURST
from mint._transport import Transport
from mint.errors import TransportError


def _send_in_thread(peer: socket.socket, data: bytes) -> threading.Thread:
    def run() -> None:
        peer.sendall(data)
        peer.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("reader", ["recv", "recv_ready", "recv_parts"])
def test_bulk_reads_are_whole_and_independent(
    pair: tuple[Transport, socket.socket], reader: str
) -> None:
    transport, peer = pair
    data = os.urandom(5 * READ_BURST + 12345)
    thread = _send_in_thread(peer, data)
    got: list[bytes] = []
    while True:
        if reader == "recv":
            chunk = transport.recv(0, 5.0)
        elif reader == "recv_parts":
            parts = transport.recv_parts(0, 5.0)
            assert parts and all(type(p) is bytes for p in parts)
            assert all(parts[:-1]), "only a last part may be the end of stream"
            assert sum(map(len, parts)) <= READ_BURST + 65536
            chunk = b"".join(parts)
        else:
            transport._waiter.wait(1, None)  # READ
            maybe = transport.recv_ready()
            assert maybe is not None
            chunk = maybe
        if not chunk:
            break
        assert type(chunk) is bytes
        assert len(chunk) <= READ_BURST + 65536
        got.append(chunk)
    thread.join(5)
    # Every earlier chunk is still what it was: none is a view of a reused buffer.
    assert b"".join(got) == data
    assert any(len(c) > 65536 for c in got)  # a read read on after a full first read


def test_exact_byte_count_reads_still_return_exactly(
    pair: tuple[Transport, socket.socket],
) -> None:
    transport, peer = pair
    data = os.urandom(3 * READ_BURST)
    thread = _send_in_thread(peer, data)
    first = transport.recv(100_000, 5.0)
    assert first == data[:100_000]
    got = [first]
    while chunk := transport.recv(0, 5.0):
        got.append(chunk)
    assert b"".join(got) == data
    thread.join(5)


def _drained(transport: Transport, peer: socket.socket) -> None:
    """One short read, so the next ``recv(0, ...)`` takes the waiting read."""
    peer.sendall(b"x")
    assert transport.recv(0, 5.0) == b"x"
    assert transport._drained


def _times_out(transport: Transport, byte_count: int, timeout: float) -> None:
    with pytest.raises(TransportError) as info:
        transport.recv(byte_count, timeout)
    assert info.value.reason == "timeout"


def _rcvtimeo(sock: socket.socket) -> float:
    """SO_RCVTIMEO in seconds (0.0: none), as the kernel keeps it: rounded up to its tick."""
    seconds, micros = struct.unpack(
        "@ll", sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)
    )
    return float(seconds + micros / 1e6)


def test_a_plain_socket_waits_in_blocking_mode_and_a_tls_one_never() -> None:
    import ssl

    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    transport = Transport(ours, tls=False)
    assert ours.getblocking()
    assert transport._nowait == socket.MSG_DONTWAIT
    transport.close()
    theirs.close()
    # An SSLSocket takes no flags: it stays non-blocking and is never read waiting.
    raw, peer = socket.socketpair()
    raw.setblocking(False)
    ctx = ssl.create_default_context()
    tls = ctx.wrap_socket(raw, server_hostname="x", do_handshake_on_connect=False)
    transport = Transport(tls, tls=True)
    assert not tls.getblocking()
    assert transport._nowait == 0
    transport.close()
    peer.close()


@pytest.mark.parametrize("timeout", [0.05, 0.2])
def test_the_waiting_read_times_out_after_its_timeout(
    pair: tuple[Transport, socket.socket], timeout: float
) -> None:
    transport, peer = pair
    _drained(transport, peer)
    start = time.monotonic()
    with pytest.raises(TransportError) as info:
        transport.recv(0, timeout)
    waited = time.monotonic() - start
    assert info.value.reason == "timeout"
    assert waited >= timeout * 0.99  # the kernel rounds SO_RCVTIMEO up, never down
    assert waited < timeout + 5.0
    # Nothing was lost or left behind: the next bytes come out whole.
    peer.sendall(b"after")
    assert transport.recv(0, 5.0) == b"after"


@pytest.mark.parametrize("timeout", [1e-12, 1e-7, 1e-6, 0.0000015])
def test_a_tiny_timeout_is_at_least_a_microsecond_never_forever(
    pair: tuple[Transport, socket.socket], timeout: float
) -> None:
    # A zero struct timeval means "no timeout": rounding a tiny one down would hang.
    transport, peer = pair
    _drained(transport, peer)
    _times_out(transport, 0, timeout)
    assert 0 < _rcvtimeo(transport.sock) <= 0.02  # one kernel tick, not 0 (forever)


def test_the_timeout_follows_each_call(pair: tuple[Transport, socket.socket]) -> None:
    transport, peer = pair
    _drained(transport, peer)
    _times_out(transport, 0, 0.01)
    assert 0.01 <= _rcvtimeo(transport.sock) <= 0.03
    # None waits as long as it takes: the bytes sent later by a thread come out.
    # A timeout read nothing: the socket is still drained, the next read waits at once.
    assert transport._drained
    timer = threading.Timer(0.2, peer.sendall, (b"late",))
    timer.start()
    assert transport.recv(0, None) == b"late"
    timer.join()
    assert _rcvtimeo(transport.sock) == 0.0
    _times_out(transport, 0, 2.5)  # nothing comes: 2.5 s, not forever
    assert 2.5 <= _rcvtimeo(transport.sock) <= 2.52


def test_calls_that_must_not_wait_never_do(pair: tuple[Transport, socket.socket]) -> None:
    transport, peer = pair
    _drained(transport, peer)
    assert transport.sock.getblocking()
    # A zero timeout, the mailbox's read and the exact-count read with no time left
    # all return at once on the blocking socket.
    _times_out(transport, 0, 0)
    assert transport.recv_ready() is None
    _times_out(transport, 10, 0)
    _times_out(transport, 0, -1.0)
    # A send the socket cannot take at once waits for room (poll), never in send().
    big = os.urandom(8 << 20)
    got = bytearray()

    def drain() -> None:
        time.sleep(0.1)
        while len(got) < len(big):
            got.extend(peer.recv(1 << 20))

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    transport.send(big)
    reader.join(10)
    assert bytes(got) == big


def test_a_signal_handler_runs_during_the_wait_and_its_exception_stops_it(
    pair: tuple[Transport, socket.socket],
) -> None:
    transport, peer = pair
    _drained(transport, peer)

    class Interrupted(Exception):
        pass

    calls: list[int] = []

    def quiet(signum: int, frame: object) -> None:
        calls.append(signum)

    def loud(signum: int, frame: object) -> None:
        raise Interrupted

    previous = signal.signal(signal.SIGALRM, quiet)
    try:
        # A handler that returns: the read goes on waiting and gets the bytes.
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        timer = threading.Timer(0.3, peer.sendall, (b"data",))
        timer.start()
        assert transport.recv(0, 5.0) == b"data"
        timer.join()
        assert calls == [signal.SIGALRM]
        # A handler that raises (Ctrl-C's KeyboardInterrupt): the wait stops with it.
        signal.signal(signal.SIGALRM, loud)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(Interrupted):
            transport.recv(0, 5.0)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    # The connection is still whole.
    peer.sendall(b"next")
    assert transport.recv(0, 5.0) == b"next"
