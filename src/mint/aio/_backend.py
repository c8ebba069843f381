"""The asyncio backend: how ``AsyncTransport`` waits for its socket, and ``open_tcp``.

The blocking twin is ``mint._backend`` (``Waiter``, ``open_tcp``); the transport code
that calls either is written once (``mint.aio._transport``) and generated for the
blocking flavour by ``scripts/unasync.py``.

Waiting is a future resolved by a one-shot ``loop.add_reader``/``add_writer``
callback: no task, no thread, no polling. The socket is non-blocking (an
``ssl.SSLSocket`` for TLS), as the blocking flavour's TLS sockets are, so TLS needs no
second implementation: ``SSLWantReadError``/``SSLWantWriteError`` say which way to wait, and
``SSLSocket.pending()`` is drained before waiting again (``BaseTransport._read_on``).

A reader on a socket is one callback per loop: an active connection's reader belongs
to its mailbox, so the transport waits only for *writing* while it is active (see
``AsyncTransport.send``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NoReturn

from mint._backend import (
    READ,
    WOULD_BLOCK,
    WRITE,
    error_pending,
    error_probe,
    map_os_error,
    reader_dies_on_error,
)
from mint._speedup import load_speedup
from mint.errors import HTTPError, MintError, TransportError

__all__ = ["CONNECTION_HIGH_WATER", "WINDOW_HIGH_WATER", "AsyncWaiter", "open_tcp"]

# HTTP/2 backpressure: once more than this many body bytes of one stream wait for the
# peer's flow-control windows, ``await stream_request_body`` (and ``request`` with a
# body) reads the connection, processing WINDOW_UPDATEs, until that stream's queue is
# back under it. 1 MiB: sixteen times the RFC 9113 6.9.2 default window of 65,535
# bytes, so a fast peer never waits on us. Per stream: a WebSocket whose server stops
# reading (its stream window shut for good) must not hold back the sends of the
# others, which multiplexing is for (counted per connection, one stalled stream's
# 1 MiB made every later send wait for ever, its Close frames too).
WINDOW_HIGH_WATER: int | None = 1 << 20
# ... and once more than this many wait on the whole connection, whatever the stream:
# memory stays bounded per connection (a quarter of the 64 MiB queue bound, past
# which a send is refused with "send_queue_full").
CONNECTION_HIGH_WATER: int | None = 16 << 20


# The waiter's loop reader in C (AsyncWaiter._on_readable's twin), when built.
_speedups = load_speedup("mint._aiospeedups")
_c_reader: Callable[[Any, int, bool], Callable[[], None]] | None = (
    None if _speedups is None else _speedups.reader
)


def _wake(future: asyncio.Future[Any], value: object) -> None:
    """Resolve ``future`` unless it is done (a loop callback: a timer, a writer, or a
    wake-up handed to the loop's thread)."""
    if not future.done():
        future.set_result(value)


def _call_on(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
    """Run ``callback`` now on ``loop``'s thread, else hand it to ``loop`` (its callbacks,
    futures and readers are not thread-safe)."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        callback(*args)
    else:
        loop.call_soon_threadsafe(callback, *args)


class _Turn:
    """A send's place in line for the turn to write (see AsyncWaiter.write_turn)."""

    __slots__ = ("data", "future")

    def __init__(self, data: bytes, future: asyncio.Future[None] | None) -> None:
        self.data = data
        # Resolved when the turn comes; None once the send gave up its wait.
        self.future = future


# The turn of a send that found nobody writing and went on past its first write.
_HELD = _Turn(b"", None)


class AsyncWaiter:
    """Awaits one socket's readiness on the running loop.

    Reading is the hot path (every passive ``recv`` that finds the socket empty), so
    its loop reader stays registered from one wait to the next rather than being
    added and removed each time (two ``epoll_ctl`` calls and the loop's bookkeeping
    per message), and one timer serves every wait whose deadline is not earlier than
    it. The reader removes itself when it fires with nobody waiting (the loop's
    readiness is level-triggered: it would fire on every iteration). A wake-up is
    not checked: a readiness the loop saw before the task it woke read the bytes
    makes the caller's read find nothing (EAGAIN), and every caller then waits
    again. Checking it (a zero-timeout ``poll`` in the reader) cost a system call per
    message, and on asyncio's own loop it was worse than that: in ping-pong the
    stale readiness usually fires after the next message went out, when its answer
    is already there, so taking it as it is serves the next read with no sleep (16 B
    ping-pong: 20% less CPU on asyncio's loop, 6% on uvloop, ``bench/_ab.py``; about
    one wake-up in 400 found nothing). Writing waits are rare and one-shot.
    """

    __slots__ = (
        "_fd",
        "_flush_loop",
        "_fragile",
        "_future",
        "_owned",
        "_reader_loop",
        "_sock",
        "_timer",
        "_timer_at",
        "_timer_loop",
        "_turns",
        "_window_lock",
        "_window_loop",
        "_write_future",
        "_write_loop",
        "_writer",
        "window_waiters",
    )

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        # The loop of a pending background flush (see flush_later), else None.
        self._flush_loop: asyncio.AbstractEventLoop | None = None
        # The loop our reader is registered on (None: none is), the read wait's
        # future (on the C path a mint._aiospeedups.Wakeup, which answers done() and
        # set_result() as a future does), its timer and the deadline that timer fires at.
        self._reader_loop: asyncio.AbstractEventLoop | None = None
        # When that loop's reader stops at a socket error (uvloop): the poll that says
        # whether one is pending (mint._backend.reader_dies_on_error).
        self._fragile: Any = None
        # A mailbox owns the socket (taken .. given_back): no wait may register our
        # loop reader then, which would replace the mailbox's.
        self._owned = False
        self._future: asyncio.Future[bool | MintError] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        # A send's wait for the socket to take more (see _wait_writable), or None.
        self._write_future: asyncio.Future[bool] | None = None
        # The loop that wait's writer is registered on, until the wait or close takes it off.
        self._write_loop: asyncio.AbstractEventLoop | None = None
        # The turn to write (see write_turn): held by a send under way past its first
        # write, or handed to the first of those waiting in line; None while nobody
        # holds it. (The C path reads it: a send goes through Python while it is held.)
        self._writer: _Turn | None = None
        # The sends waiting for the turn, in the order they began.
        self._turns: deque[_Turn] = deque()
        # Made on first use on each loop: one task at a time reads for HTTP/2 windows
        # (window_turn).
        self._window_lock: asyncio.Lock | None = None
        # Tasks waiting for that turn: the one holding it hands it over (_await_window).
        self.window_waiters = 0
        self._window_loop: asyncio.AbstractEventLoop | None = None

    async def wait(self, mask: int, deadline: float | None) -> None:
        """Return once the socket is ready for ``mask`` (READ or WRITE).

        Raises:
            TransportError: ``"timeout"`` once ``deadline`` (``time.monotonic()``) passes.
        """
        if mask != READ:
            await self._wait_writable(deadline)
            return
        timeout = None
        if deadline is not None:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise TransportError("timeout")
        await self.wait_and_recv(0, timeout)

    @property
    def reading(self) -> bool:
        """A read wait is under way (a task's ``recv``, or a send's window wait)."""
        return self._future is not None

    def read_under_way(self) -> NoReturn:
        """Refuse a read while another task's waits (a ``recv``, a send's window wait):
        one wait replaced the other's, which was then never woken, timeout or not.
        (The C read calls this too.)"""
        raise HTTPError(
            ("read_under_way", "another task is reading this connection: one reader at a time")
        )

    async def pause(self, seconds: float) -> None:
        """Let the loop run (a window wait whose reading another task does)."""
        await asyncio.sleep(seconds)

    async def turn(self) -> None:
        """Give the loop a turn as a read (see ``AsyncTransport.recv_parts``): one loop
        iteration, during which the read counts as under way, as a wait does (another
        task's ``recv`` is refused with ``read_under_way``, a send's window wait leaves
        the reading to it), and a mailbox taking the socket ends it with
        ``HTTPError("not_passive")`` (regress24: with a plain ``asyncio.sleep(0)``
        another task's ``recv`` read in between, ahead of this one, and after a switch
        to active mode this one read a socket its mailbox owned: bytes out of order).
        """
        if self._future is not None:
            self.read_under_way()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool | MintError] = loop.create_future()
        self._future = future
        loop.call_soon(_wake, future, True)
        try:
            woken = await future
        finally:
            self._future = None
        if isinstance(woken, MintError):
            raise woken  # the socket went to a mailbox (see taken)
        if self._owned:
            raise HTTPError("not_passive")  # (taken once our turn was over)

    async def wait_and_recv(self, size: int, timeout: float | None) -> bytes:
        """Wait up to ``timeout`` seconds (``None``: forever; > 0) and read up to ``size``
        bytes (0: only wait, which is what ``wait(READ)`` is, and returns ``b""``).

        The read wait itself lives here rather than in :meth:`wait` because this is
        the hot path of every passive read: one coroutine less to create and to
        resume through is measurable. A wake-up that finds nothing to read (see the
        class docstring) waits again, until the same deadline.
        """
        if self._future is not None:
            self.read_under_way()
        deadline = None if timeout is None else time.monotonic() + timeout
        loop = asyncio.get_running_loop()
        try:
            while True:
                if self._reader_loop is not loop:
                    # The first wait on this loop; or a wait going on after our timer
                    # woke it, whose reader, firing before the task resumed, found the
                    # wait woken already and took itself off (see _on_readable).
                    self.own_reader(loop)
                future: asyncio.Future[bool | MintError] = loop.create_future()
                self._future = future
                if deadline is not None and (
                    # Our timer (which only _arm cancels, and which clears itself when
                    # it fires) fires first: the wait then re-arms for what is left.
                    self._timer is None or self._timer_at > deadline or self._timer_loop is not loop
                ):
                    self._arm(loop, deadline)
                woken = await future
                if woken is True:
                    if not size:
                        return b""
                    try:
                        return self._sock.recv(size)
                    except ssl.SSLWantWriteError:
                        return await self._recv_after_write(size, deadline)
                    except WOULD_BLOCK:
                        continue  # woken for nothing
                if woken is not False:
                    raise woken  # the socket went to a mailbox (see taken)
                # Our timer fired: at the deadline, or at an earlier one it was armed
                # for (an earlier wait's, left armed: with no deadline, no timeout).
                if deadline is not None and deadline <= time.monotonic():
                    raise TransportError("timeout")
        finally:
            self._future = None

    async def _recv_after_write(self, size: int, deadline: float | None) -> bytes:
        """TLS must send before it reads on (the answer to a key update, say, into a
        full socket buffer): wait the way each try asks until the read gives bytes.
        Not for READ first: the record may already be in OpenSSL, not the socket."""
        mask = WRITE
        while True:
            await self.wait(mask, deadline)
            try:
                return self._sock.recv(size)
            except WOULD_BLOCK as exc:
                mask = WRITE if isinstance(exc, ssl.SSLWantWriteError) else READ

    def own_reader(self, loop: asyncio.AbstractEventLoop) -> None:
        """Register our reader on ``loop`` (the first wait there), off any other loop.

        The reader is :meth:`_on_readable`, or its twin in C (``mint._aiospeedups``)
        when built: the one function a steady passive round trip still calls.

        Raises:
            HTTPError: ``"not_passive"`` while a mailbox owns the socket (see
                :meth:`taken`): a wait woken before the switch to active (a part of a
                TLS record; the timer of an earlier wait) that would wait again, whose
                reader would replace the mailbox's.
        """
        if self._owned:
            raise HTTPError("not_passive")
        self.release_reader()
        fragile = reader_dies_on_error(loop)
        if _c_reader is not None:
            loop.add_reader(self._fd, _c_reader(self, self._fd, fragile))
        else:
            if fragile and self._fragile is None:
                self._fragile = error_probe(self._fd)
            loop.add_reader(self._fd, self._on_readable)
        self._reader_loop = loop

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Have our timer fire at ``deadline`` at the latest (see wait_and_recv's test
        for the common case, a timer already armed earlier: nothing to do)."""
        timer = self._timer
        if timer is not None:
            timer.cancel()
        self._timer = loop.call_later(deadline - time.monotonic(), self._on_timer)
        self._timer_at = deadline
        self._timer_loop = loop

    def release_timer(self) -> None:
        """Cancel and drop our timer (a mailbox is taking the socket over).

        A timer left armed between waits saves re-arming on the hot path, but it holds
        its loop: an active connection's waiter, held by the loop's default mailbox,
        would then keep that loop (the mailbox's key, held weakly) alive for ever,
        and with it the mailbox and every socket dropped without ``close``.
        """
        timer = self._timer
        if timer is not None:
            timer.cancel()
        self._timer = None
        self._timer_loop = None

    def _on_timer(self) -> None:
        self._timer = None
        future = self._future
        if future is not None and not future.done():
            future.set_result(False)

    def _on_readable(self) -> None:
        if self._fragile is not None and error_pending(self._fragile):
            # uvloop has closed its poll of the socket after this call: ours is gone.
            # The next wait registers a new one (see reader_dies_on_error).
            self.release_reader()
        future = self._future
        if future is None or future.done():
            self.release_reader()  # nobody waits: stop, or the loop calls us again and again
        else:
            future.set_result(True)

    def release_reader(self) -> None:
        """Take our loop reader off (a mailbox is about to own the socket's, or closing)."""
        loop = self._reader_loop
        if loop is None:
            return
        self._reader_loop = None
        if not loop.is_closed():
            loop.remove_reader(self._fd)

    async def _wait_writable(self, deadline: float | None) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        fd = self._fd
        timer = None
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransportError("timeout")
            timer = loop.call_later(remaining, _wake, future, False)
        loop.add_writer(fd, _wake, future, True)
        self._write_future, self._write_loop = future, loop
        try:
            ready = await future
        finally:
            self._write_future = None
            if self._write_loop is loop:  # (else close took the writer off already)
                self._write_loop = None
                loop.remove_writer(fd)
            if timer is not None:
                timer.cancel()
        if not ready:
            raise TransportError("timeout")

    @property
    def writing(self) -> bool:
        """A send holds the turn to write on this socket (see :meth:`write_turn`)."""
        return self._writer is not None

    async def write_turn(self, data: bytes, pass_turn: Callable[[], None]) -> None:
        """Return once it is this send's turn to write ``data``, in the order sends began.

        A send that waits for the socket to take more holds the rest of its bytes; a
        send from another task in that time went straight to the socket, into the
        middle of the first one's frame (the peer saw garbage, and one writer hung), so
        sends take turns. Sharing a connection between tasks stays the caller's to
        order; this keeps the byte stream whole when they do.

        The bytes are the peer's from the moment the send begins: the session that
        made them has moved on (HPACK's table, a deflate context, a stream it opened),
        so a send cancelled while it waits in line cannot take them back. They keep
        their place (``data`` is kept here) and go out in it, ahead of every later
        send: written by the send whose turn follows, or from the loop (see
        :meth:`pass_turn`). Dropping them lost an HTTP/2 HEADERS block the server's
        HPACK decoder then missed (GOAWAY, every stream gone), or a compressed frame
        the next message's inflate needed.

        Returns holding the turn (the caller passes it on, ``pass_turn``, when done).
        Cancelled once the turn had come but before the task ran, the turn passes on
        at once, with ``data`` owed first.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        turn = _Turn(data, future)
        self._turns.append(turn)
        try:
            await future
        except BaseException:
            turn.future = None  # given up: its bytes go out in its place all the same
            if future.done() and not future.cancelled():
                self._turns.appendleft(turn)  # the turn was ours: our bytes come next
                pass_turn()
            raise

    def window_turn(self) -> asyncio.Lock:
        """Held while a task reads the connection for HTTP/2 flow-control windows
        (``_await_window``): a second would read the same socket beside it.

        One lock per loop: an ``asyncio.Lock`` binds to the first loop it is contended
        on, and a connection may be used from one ``asyncio.run`` and then another,
        as the rest of the waiter allows (a raw ``RuntimeError`` otherwise).
        """
        loop = asyncio.get_running_loop()
        lock = self._window_lock
        if lock is None or self._window_loop is not loop:
            lock = self._window_lock = asyncio.Lock()
            self._window_loop = loop
        return lock

    def in_window_wait(self) -> bool:
        """Whether a task reads the connection for the windows now (it holds the
        :meth:`window_turn` of a loop that still runs). A wait left behind on a loop
        closed without cancelling its tasks never ends, and does not count."""
        lock, loop = self._window_lock, self._window_loop
        return lock is not None and lock.locked() and loop is not None and not loop.is_closed()

    def start_write(self) -> None:
        """A send goes on past its first write: it holds the turn (:meth:`write_turn`)."""
        self._writer = _HELD

    def owe(self, data: bytes) -> None:
        """Bytes committed without a send to wait for them (``send_later``): they take
        the next place in line, as a send that gave up its wait there."""
        self._turns.append(_Turn(data, None))

    def pass_turn(self) -> bytes:
        """The turn's holder is done (sent, failed or cancelled): hand the turn on.

        Returns the bytes of the sends that gave up in line ahead of the next one
        still waiting, in order, for the caller to owe the peer before anything else.
        The turn goes to that next send, which writes them first; with none, nobody
        holds it and the caller writes them from the loop.
        """
        turns = self._turns
        owed: list[bytes] = []
        while turns:
            turn = turns.popleft()
            future = turn.future
            if future is None or future.done():  # (done: cancelled, not yet told)
                owed.append(turn.data)
                continue
            self._writer = turn
            future.set_result(None)
            break
        else:
            self._writer = None
        return b"".join(owed) if owed else b""

    def flush_later(self, flush: Callable[[], bool] | None) -> None:
        """Finish an interrupted write from the loop, or (``None``) stop doing so.

        A ``send`` cancelled half-way leaves bytes the peer is owed (the rest of a
        frame). They are written by a writer callback as the socket drains, so the
        byte stream stays whole even if the caller never writes again.
        """
        if flush is None:
            if self._flush_loop is not None:
                if not self._flush_loop.is_closed():
                    self._flush_loop.remove_writer(self._fd)
                self._flush_loop = None
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next send writes them first
        self._flush_loop = loop
        loop.add_writer(self._fd, self._on_writable, flush)

    def _on_writable(self, flush: Callable[[], bool]) -> None:
        if flush():
            self.flush_later(None)

    def abandon(self) -> None:
        """The transport was dropped without ``close`` (see AsyncTransport.__del__).

        Our loop reader, kept registered between passive waits, and the timer left
        armed between them are the only holders of the socket then (the loop holds
        them): the socket stayed open for as long as the peer said nothing, where the
        blocking flavour's is collected (with any Python socket's ResourceWarning).
        They let go here, on the loop's thread: loop callbacks are not thread-safe, and
        a drop elsewhere hands the release to the loop, with us (and the socket, so its
        number is not reused meanwhile) held until it runs.
        """
        loop = self._reader_loop or self._timer_loop
        if loop is None or loop.is_closed():
            return
        _call_on(loop, self._let_go)

    def taken(self, box: Any = None) -> None:
        """A mailbox (``box``) takes the socket (the connection went active): our loop
        reader and timer go, and a read wait under way (another task's passive
        ``recv``) ends with ``HTTPError("not_passive")``, as a ``recv`` begun now
        would. Left waiting, it waited for ever, past its timeout: nothing was left
        to wake it. (What a send left still goes from the loop: :meth:`flush_later`.)"""
        self._owned = True
        self.release_reader()
        self.release_timer()
        future = self._future
        if future is None or future.done():
            return  # (one already woken ends if it would wait again: own_reader refuses)
        loop = future.get_loop()
        if not loop.is_closed():
            _call_on(loop, _wake, future, HTTPError("not_passive"))

    @property
    def owned(self) -> bool:
        """Whether a mailbox owns the socket (see :meth:`taken`)."""
        return self._owned

    def given_back(self) -> None:
        """The mailbox lets the socket go (the connection went passive, or closes)."""
        self._owned = False

    def _let_go(self) -> None:
        self.release_reader()
        self.release_timer()

    def close(self) -> None:
        self.flush_later(None)
        self.release_reader()
        self.release_timer()
        # A send's writer too, now, before the socket closes: taken off by the wait
        # once woken, it was a watcher of a closed descriptor until then (uvloop
        # aborted the process: "Fatal Python error: Aborted"), and the number may be
        # another socket's by the time the wait runs.
        write_loop, self._write_loop = self._write_loop, None
        if write_loop is not None and not write_loop.is_closed():
            write_loop.remove_writer(self._fd)
        # A wait of another task's (a recv, a send into a full socket) would wait for
        # ever once the reader and the timer are gone: it is woken, and its read or
        # write finds the socket closed (TransportError "closed"). One left on a loop
        # closed without cancelling its tasks never runs again: it is let be (waking
        # it raised RuntimeError "Event loop is closed" out of close).
        for future in (self._future, self._write_future):
            if future is not None and not future.done() and not future.get_loop().is_closed():
                future.set_result(True)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def open_tcp(host: str, port: int, timeout: float | None) -> socket.socket:
    """A connected, non-blocking TCP socket with ``TCP_NODELAY``, like ``create_connection``.

    Addresses are tried in ``getaddrinfo`` order; the last error is raised. A literal
    address needs no resolver; a name is resolved by ``loop.getaddrinfo`` (the loop's
    executor: the system resolver only exists as a blocking call).
    """
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            if _is_address(host):
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                infos: list[tuple[Any, Any, int, str, Any]] = [
                    (family, socket.SOCK_STREAM, 0, "", (host, port)),
                ]
            else:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            error: OSError | None = None
            for family, kind, proto, _name, address in infos:
                sock = socket.socket(family, kind, proto)
                try:
                    sock.setblocking(False)
                    await loop.sock_connect(sock, address)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError as exc:
                    sock.close()
                    error = exc
                    continue
                except BaseException:
                    sock.close()
                    raise
                return sock
            raise error or OSError(f"getaddrinfo found no address for {host!r}")
    except TimeoutError as exc:
        raise TransportError("timeout") from exc
    except UnicodeError as exc:  # a name IDNA cannot encode: no such host
        raise TransportError("nxdomain") from exc
    except OSError as exc:
        raise map_os_error(exc) from exc
