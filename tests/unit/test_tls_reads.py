"""The transports' TLS reads, against a real TLS peer on loopback (both flavours).

A TLS read gives one record (16 KiB at most), and OpenSSL may hold decrypted bytes
that ``poll`` cannot see, so the plain socket's rules ("a short read emptied it")
do not carry over. What must hold: a read that follows a read which emptied both the
socket and OpenSSL waits first instead of failing a read (an ``SSLWantReadError``
per message on the Python path); the records the socket already holds come out in
one burst, not one call per record; bytes left decrypted in OpenSSL are read without
a wait; the end of stream is ``[b""]``.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import os
import socket
import ssl
import termios
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from servers.certs import TLSMaterial

import mint._backend
from mint._backend import READ_SIZE
from mint._transport import Transport
from mint.aio._backend import AsyncWaiter
from mint.aio._transport import AsyncTransport

FLAVOURS = ["sync", "aio"]


class CountingSSLSocket(ssl.SSLSocket):
    """The client's TLS socket, counting the reads that found no whole record."""

    failed_reads = 0

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        try:
            return super().recv(buflen, flags)
        except ssl.SSLWantReadError:
            self.failed_reads += 1
            raise


class TLSPair:
    """A client transport of one flavour over TLS to a blocking TLS server socket."""

    def __init__(self, flavour: str, tls_ca: TLSMaterial) -> None:
        listener = socket.create_server(("127.0.0.1", 0))
        raw = socket.create_connection(listener.getsockname())
        server_raw, _ = listener.accept()
        listener.close()
        ctx = ssl.create_default_context(cafile=tls_ca.cafile)
        ctx.sslsocket_class = CountingSSLSocket
        raw.setblocking(False)
        self.sock: CountingSSLSocket = ctx.wrap_socket(  # type: ignore[assignment]
            raw, server_hostname="localhost", do_handshake_on_connect=False
        )
        accepted: list[ssl.SSLSocket] = []
        server = threading.Thread(
            target=lambda: accepted.append(
                tls_ca.server_context().wrap_socket(server_raw, server_side=True)
            ),
            daemon=True,
        )
        server.start()
        self.flavour = flavour
        self.transport: Any = (AsyncTransport if flavour == "aio" else Transport)(
            self.sock, tls=True
        )
        if flavour == "aio":
            asyncio.run(self.transport._handshake(None))
        else:
            self.transport._handshake(None)
        server.join(10)
        self.peer = accepted[0]

    def recv_parts(self, byte_count: int, timeout: float | None) -> list[bytes]:
        if self.flavour == "aio":
            return asyncio.run(self.transport.recv_parts(byte_count, timeout))  # type: ignore[no-any-return]
        return self.transport.recv_parts(byte_count, timeout)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.transport.close()
        self.peer.close()


@pytest.fixture(params=FLAVOURS)
def tls_pair(request: pytest.FixtureRequest, tls_ca: TLSMaterial) -> Iterator[TLSPair]:
    pair = TLSPair(request.param, tls_ca)
    yield pair
    pair.close()


def _held(sock: socket.socket) -> int:
    """The bytes in ``sock``'s receive queue (FIONREAD)."""
    avail = array.array("i", [0])
    fcntl.ioctl(sock.fileno(), termios.FIONREAD, avail, True)
    return avail[0]


def _later(action: Callable[[], object], delay: float = 0.01) -> threading.Timer:
    timer = threading.Timer(delay, action)
    timer.start()
    return timer


def test_a_drained_tls_read_waits_first_and_fails_no_read(tls_pair: TLSPair) -> None:
    # Each message is sent only after the client is already reading, so the read
    # finds the socket empty: before, every such read failed once (an exception on
    # the Python path) and then waited.
    tls_pair.peer.sendall(b"first")
    assert tls_pair.recv_parts(0, 5.0) == [b"first"]
    assert tls_pair.transport._drained
    tls_pair.sock.failed_reads = 0
    for i in range(30):
        message = b"message %d" % i
        timer = _later(lambda m=message: tls_pair.peer.sendall(m))  # type: ignore[misc]
        assert tls_pair.recv_parts(0, 5.0) == [message]
        timer.join()
        assert tls_pair.transport._drained
    # asyncio's wake-ups are not checked (see AsyncWaiter): a rare stale one may
    # still find nothing. A read that failed first every time would count 30.
    assert tls_pair.sock.failed_reads <= (3 if tls_pair.flavour == "aio" else 0)


def test_the_records_the_socket_holds_come_in_one_burst(tls_pair: TLSPair) -> None:
    tls_pair.peer.sendall(b"x")  # a first read, so the next one is the drained path
    assert tls_pair.recv_parts(0, 5.0) == [b"x"]
    data = os.urandom(6 * 16384 + 1000)  # seven records
    tls_pair.peer.sendall(data)
    # Until all seven records are in the client's socket (each is its plaintext and
    # at least 21 bytes of framing and tag).
    deadline = time.monotonic() + 5
    while _held(tls_pair.sock) < len(data) + 7 * 21:
        assert time.monotonic() < deadline, "the records never all arrived"
        time.sleep(0.001)
    parts = tls_pair.recv_parts(0, 5.0)
    # One call takes them all (one record per call would take seven).
    assert b"".join(parts) == data


def test_a_record_larger_than_a_read_leaves_no_byte_behind(tls_pair: TLSPair) -> None:
    # An exact count reads part of a record: the rest is decrypted in OpenSSL, where
    # poll cannot see it. The next read must take it without waiting for the socket.
    tls_pair.peer.sendall(b"0123456789" * 100)
    assert tls_pair.recv_parts(10, 5.0) == [b"0123456789"]
    assert b"".join(tls_pair.recv_parts(0, 0.5)) == b"0123456789" * 99


def _close_notify_then_close(peer: ssl.SSLSocket) -> None:
    """Send TLS's close_notify, wait a little for the answer, close."""
    peer.settimeout(0.5)
    try:
        peer.unwrap()
    except OSError:
        pass  # no answer: the close_notify went out all the same
    peer.close()


@pytest.mark.parametrize("how", ["close_notify", "tcp_close"])
def test_the_end_of_a_tls_stream_after_a_drained_read(tls_pair: TLSPair, how: str) -> None:
    tls_pair.peer.sendall(b"last")
    assert tls_pair.recv_parts(0, 5.0) == [b"last"]
    assert tls_pair.transport._drained
    peer = tls_pair.peer
    close = (lambda: _close_notify_then_close(peer)) if how == "close_notify" else peer.close
    timer = _later(close)
    assert tls_pair.recv_parts(0, 5.0) == [b""]
    timer.join()


def test_a_full_read_burst_is_cut_at_read_burst_and_loses_nothing(tls_pair: TLSPair) -> None:
    # More than one burst: the reads stop at READ_BURST and the rest comes next.
    data = os.urandom(3 * READ_SIZE)
    sender = threading.Thread(target=tls_pair.peer.sendall, args=(data,), daemon=True)
    sender.start()
    got = bytearray()
    while len(got) < len(data):
        got += b"".join(tls_pair.recv_parts(0, 5.0))
    sender.join(5)
    assert bytes(got) == data


class _RecordInOpenSSL(socket.socket):
    """A socket whose first read takes the kernel's bytes and then says TLS must write
    first: the state of an SSLSocket that read a record (a key update asking for an
    answer) and cannot send the answer yet. The bytes are then in "OpenSSL", not in
    the socket, so waiting to read again would wait for nothing. No Python API makes
    OpenSSL do this on demand, hence the stand-in."""

    held: bytes | None = None

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if self.held is None:
            self.held = super().recv(bufsize, flags)
            raise ssl.SSLWantWriteError("the key update's answer must go out first")
        data, self.held = self.held, b""
        return data


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_tls_read_that_must_write_first_waits_to_write_not_to_read(loop: str) -> None:
    # On asyncio's own loop a stale readiness (see AsyncWaiter) may wake a wrong read
    # wait anyway; uvloop's has none here, so only the wait for writing returns.
    factory = None
    if loop == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        factory = uvloop.new_event_loop
    a, b = socket.socketpair()
    a.setblocking(False)
    sock = _RecordInOpenSSL(a.family, a.type, fileno=a.detach())
    waiter = AsyncWaiter(sock)

    async def main() -> bytes:
        b.sendall(b"record")
        return await waiter.wait_and_recv(100, 2.0)

    try:
        # Waiting to read again would time out (TransportError): the socket is empty.
        with asyncio.Runner(loop_factory=factory) as runner:
            assert runner.run(main()) == b"record"
    finally:
        waiter.close()
        sock.close()
        b.close()


@pytest.mark.parametrize("reader", ["recv_ready", "recv_parts"])
def test_a_full_burst_never_ends_inside_a_record(
    tls_pair: TLSPair, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bytes left decrypted in OpenSSL are invisible to poll: a mailbox (recv_ready is
    # its read) would wait for the socket's next bytes before delivering them. With a
    # burst of 50,000 and records of 9,000, the sixth record straddles the limit.
    monkeypatch.setattr(mint._backend, "READ_BURST", 50_000)
    records = [os.urandom(9000) for _ in range(8)]
    for record in records:
        tls_pair.peer.sendall(record)  # one TLS record each
    deadline = time.monotonic() + 5
    while _held(tls_pair.sock) < 8 * (9000 + 21):
        assert time.monotonic() < deadline, "the records never all arrived"
        time.sleep(0.001)
    if reader == "recv_ready":
        first = tls_pair.transport.recv_ready()
    else:
        first = b"".join(tls_pair.recv_parts(0, 5.0))
    assert tls_pair.sock.pending() == 0
    assert len(first) == 6 * 9000  # past the limit by the rest of the sixth record
    rest = b""
    while len(first) + len(rest) < 8 * 9000:
        more = tls_pair.transport.recv_ready() if reader == "recv_ready" else None
        rest += more if more is not None else b"".join(tls_pair.recv_parts(0, 5.0))
    assert first + rest == b"".join(records)
