"""The transport: open a connection (TCP, then TLS), write all of some bytes, read some.

One source, two flavours: ``scripts/unasync.py`` turns ``mint/aio/_transport.py``
(edit that one) into ``mint/_transport.py`` by dropping ``async``/``await`` and
swapping the backend, the one place where the flavours differ: how to wait for a
socket (``poll``, or event-loop readers and writers). What never waits (error
mapping, the mailbox's read, ``close``) is shared in ``mint._backend.BaseTransport``.

Cancellation loses nothing: a ``send`` stopped while waiting keeps the bytes it still
owes the peer and they go out first (from the loop, or with the next send); one
stopped while it waited its turn behind another task's keeps its place in line (see
``AsyncWaiter.write_turn``); and a
``recv`` stopped half-way through an exact ``byte_count`` keeps what it had read for
the next read.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Sequence

from mint._backend import (
    ALPN_IDS,
    EAGER_SECONDS,
    READ,
    READ_BURST,
    READ_SIZE,
    WOULD_BLOCK,
    WRITE,
    BaseTransport,
    connect_timeout,
    make_ssl_context,
    map_os_error,
    wrap_tls,
)
from mint.aio._backend import AsyncWaiter, open_tcp
from mint.errors import TransportError

__all__ = ["ALPN_IDS", "AsyncTransport", "make_ssl_context", "map_os_error"]


class AsyncTransport(BaseTransport):
    """A connected socket (plain or TLS) with waiting I/O helpers (see mint._backend)."""

    __slots__ = ()

    def __init__(self, sock: socket.socket, *, tls: bool) -> None:
        super().__init__(sock, tls=tls)
        self._waiter = AsyncWaiter(self.sock)

    def __del__(self) -> None:
        # Dropped without close(): what the waiter keeps registered on the loop
        # would hold the socket open while the peer is quiet (AsyncWaiter.abandon).
        if not self.closed:
            with contextlib.suppress(Exception):  # (at interpreter exit, say)
                self._waiter.abandon()

    # -- connect -------------------------------------------------------------------
    @classmethod
    async def connect(
        cls,
        scheme: str,
        host: str,
        port: int,
        *,
        timeout: float | None,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        alpn: Sequence[str],
    ) -> AsyncTransport:
        """Open the TCP connection and, for ``https``, run the TLS handshake, within ``timeout``."""
        timeout = connect_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        raw = await open_tcp(host, port, timeout)
        if scheme != "https":
            return cls(raw, tls=False)
        assert ssl_context is not None
        try:
            sock = wrap_tls(ssl_context, raw, server_hostname or host, alpn)
        except BaseException as exc:
            raw.close()
            if isinstance(exc, OSError):
                raise map_os_error(exc) from exc
            raise
        transport = cls(sock, tls=True)
        try:
            await transport._handshake(deadline)
        except BaseException as exc:
            transport.close()
            if isinstance(exc, OSError):
                raise map_os_error(exc) from exc
            raise
        return transport

    async def _handshake(self, deadline: float | None) -> None:
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        while True:
            try:
                sock.do_handshake()
                return
            except ssl.SSLWantReadError:
                await self._waiter.wait(READ, deadline)
            except ssl.SSLWantWriteError:
                await self._waiter.wait(WRITE, deadline)

    # -- I/O -----------------------------------------------------------------------
    async def send(self, data: bytes | bytearray | memoryview, until: float | None = None) -> None:
        """Write all of ``data``, waiting for the socket as long as it takes, or until
        ``until`` (``time.monotonic()``): then ``TransportError("timeout")``, as after
        ``send_timeout``, the rest kept to go out first as the socket drains.

        The bytes are committed once this is called: cancelled, the send still owes
        them to the peer, and they go out in their place (see
        ``AsyncWaiter.write_turn``); a failure of the connection is the only loss.
        """
        waiter = self._waiter
        if waiter.writing:
            # Another task's send is under way: wait in line, holding the bytes.
            data = bytes(data)
            await waiter.write_turn(data, self._pass_turn)
            if self.closed:
                self._pass_turn()
                raise TransportError("closed")
            waiter.flush_later(None)
            if self._unsent:  # (what an interrupted send, or one that gave up, left)
                data = self._unsent + data
                self._unsent = b""
        elif not self._unsent:
            # The common case: the socket takes it all at once, from the caller's bytes.
            sent = self.send_now(data)
            if sent == len(data):
                return
            data = memoryview(data)[sent:]
            waiter.start_write()
        else:
            # An interrupted send left bytes the peer is owed: they go first.
            waiter.flush_later(None)
            data = self._unsent + bytes(data)
            self._unsent = b""
            waiter.start_write()
        view = memoryview(data)
        sock = self.sock
        nowait = self._nowait
        # transport_opts' send_timeout: how long the socket may take nothing (a peer
        # that stops reading, and a send waited for ever); each write that goes in
        # starts it again, so a large one over a slow link is not cut short. What is
        # left then goes out first, at the next send.
        limit = self.send_timeout
        deadline = None if limit is None else time.monotonic() + limit
        try:
            while view:
                try:
                    sent = sock.send(view, nowait)
                except ssl.SSLWantReadError:
                    # TLS wants a record read first. A mailbox that owns this socket
                    # reads it (a wait of ours would take its loop reader): then only
                    # wait to be able to write again.
                    owned = self.reader_busy or waiter.owned
                    await waiter.wait(WRITE if owned else READ, _sooner(deadline, until))
                    continue
                except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                    await waiter.wait(WRITE, _sooner(deadline, until))
                    continue
                view = view[sent:]
                if limit is not None:
                    deadline = time.monotonic() + limit
        except OSError as exc:
            raise self.send_failure(exc) from exc
        except BaseException:
            # Cancelled (or interrupted) while waiting: keep the rest, or the peer
            # would see a frame cut short. It goes out first, as the socket drains.
            if view and not self.closed:
                self._unsent = bytes(view)
            raise
        finally:
            self._pass_turn()
        if not self._unsent:
            self.owed_answers = 0  # the socket took everything

    async def recv(self, byte_count: int, timeout: float | None) -> bytes:
        """Read up to ``byte_count`` bytes (0: whatever is there), waiting up to ``timeout``.

        Returns ``b""`` when the peer closed the connection.
        """
        parts = await self.recv_parts(byte_count, timeout)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def recv_parts(self, byte_count: int, timeout: float | None) -> list[bytes]:
        """:meth:`recv`, with a burst of several reads handed out as the reads' own
        ``bytes``, in order, rather than joined: ``[b""]`` when the peer closed.

        For a WebSocket's bytes, which the decoder takes part by part: a large message
        read in several reads is then copied once, when the decoder joins its payload,
        and not once more to join the reads first.
        """
        if (
            self._drained
            and not byte_count
            and (timeout is None or timeout > 0)
            and self._unread is None
        ):
            # The hot path of a passive WebSocket: the last read emptied the socket
            # (and TLS holds no decrypted bytes), so wait first, then one read that
            # most often empties it again (the blocking backend does both in one
            # system call on a plain socket). A timeout or a cancellation reads
            # nothing: the socket is still drained.
            if self.closed:
                raise TransportError("closed")
            try:
                first = await self._waiter.wait_and_recv(READ_SIZE, timeout)
            except ssl.SSLZeroReturnError:
                return [b""]
            except OSError as exc:
                raise map_os_error(exc) from exc
            # The end of stream, or a short read of a plain socket: all there was. (A
            # TLS read is one record, short or not: _read_more looks for the rest.)
            if not first or (len(first) < READ_SIZE and not self.tls):
                return [first]
            return self._read_more(first)
        if self.closed:
            raise TransportError("closed")
        if not self._drained or self._unread is not None:
            # Bytes are (or may be) there already: taken without a wait, which gives
            # the loop no turn (see EAGER_SECONDS; the C read hands such a read over
            # to be given its turn here). Not while another task's read takes its
            # own turn, or waits: that one goes first (read_under_way).
            waiter = self._waiter
            if waiter.reading:
                waiter.read_under_way()
            now = time.monotonic()
            if now - self._eager >= EAGER_SECONDS:
                self._eager = now
                await waiter.turn()
                if self.closed:
                    raise TransportError("closed")
        if self._unread is not None:
            data = self.take_unread()  # (b"": an end a burst met after its bytes)
            if not data or byte_count == 0 or len(data) == byte_count:
                return [data]
            if len(data) > byte_count:
                self._unread = data[byte_count:]
                return [data[:byte_count]]
        else:
            data = b""
        deadline = None if timeout is None else time.monotonic() + timeout
        sock = self.sock
        try:
            if self._drained:
                self._drained = False
                if not data and (timeout is None or timeout > 0):
                    # The last read emptied the socket: wait first (one system call
                    # instead of a failed read, its exception, then the wait).
                    await self._waiter.wait(READ, deadline)
            while not data:
                try:
                    data = sock.recv(min(byte_count, READ_BURST) or READ_SIZE, self._nowait)
                except WOULD_BLOCK as exc:
                    writing = isinstance(exc, ssl.SSLWantWriteError)
                    await self._waiter.wait(WRITE if writing else READ, deadline)
                    continue
                if not data:
                    return [b""]
            if byte_count == 0:
                parts = [data]
                # Drained: the next read waits first. For TLS too: with nothing
                # decrypted left (_read_on asks pending()), and OpenSSL reading no
                # record ahead, its next bytes must come from the socket. Should TLS
                # want to write before it reads (a key update's answer), the wait's
                # read says so and the waiter waits for that instead.
                self._drained = self._read_on(parts)
                return parts
            if len(data) < byte_count:
                data = await self._recv_exactly(byte_count, data, deadline)
            if self.tls and self._unread is None:
                self._keep_decrypted()
            return [data]
        except ssl.SSLZeroReturnError:
            return [b""]
        except OSError as exc:
            raise map_os_error(exc) from exc

    def _keep_decrypted(self) -> None:
        """After a read of ``byte_count`` bytes that ended inside a TLS record: the rest
        of the record, decrypted in OpenSSL, is taken into ``_unread``. Left there,
        ``poll`` could not see it: a switch to active mode then posted nothing, and the
        mailbox waited for the server's next bytes (for ever, for a reply)."""
        sock = self.sock
        if not isinstance(sock, ssl.SSLSocket):
            return
        try:
            pending = sock.pending()
            if pending:
                self._unread = sock.recv(pending, self._nowait)
        except WOULD_BLOCK:
            pass  # (not expected: the bytes are decrypted already)
        except OSError as exc:
            self.keep_end(exc)

    async def _recv_exactly(self, byte_count: int, first: bytes, deadline: float | None) -> bytes:
        """Mint's ``recv(byte_count)`` returns exactly that many bytes (fewer at the end).

        Each read asks for at most ``READ_BURST`` bytes: a read allocates what it asks
        for up front, and a ``byte_count`` past ``ssize_t`` would not even convert
        (a raw ``OverflowError``; ``MemoryError`` for 2**40 with 5 bytes waiting).
        """
        sock = self.sock
        parts: list[bytes | memoryview] = [first]
        got = len(first)
        try:
            while got < byte_count:
                try:
                    more = sock.recv(min(byte_count - got, READ_BURST), self._nowait)
                except WOULD_BLOCK as exc:
                    writing = isinstance(exc, ssl.SSLWantWriteError)
                    await self._waiter.wait(WRITE if writing else READ, deadline)
                    continue
                except OSError as exc:
                    # A failure after bytes (a reset, TLS without close_notify): they
                    # are the caller's, as at the end of stream, and the failure is the
                    # next read's (as _read_on leaves it). Raised now, they were lost.
                    self.keep_end(exc)
                    break
                if not more:
                    break
                parts.append(more)
                got += len(more)
        except BaseException:
            # Cancelled, timed out or failed half-way: what was read stays for the next read.
            self._unread = b"".join(parts)
            raise
        return b"".join(parts)


def _sooner(a: float | None, b: float | None) -> float | None:
    """The earlier of two deadlines (``None``: none)."""
    if a is None:
        return b
    return a if b is None or a <= b else b
