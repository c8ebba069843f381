"""Active mode: a mailbox that turns socket input into messages, as the BEAM does for Mint.

In Elixir an active socket sends ``{:tcp, socket, data}`` to its owner's mailbox and
``Mint.HTTP.stream/2`` is handed that message. Python threads have no mailbox, so
:class:`Mailbox` plays the part: an ``epoll`` (else ``poll``) over the sockets of
the active connections it owns, plus a queue for objects posted with :meth:`Mailbox.send`.

Nothing runs in the background. Sockets are read only while :meth:`Mailbox.receive`
runs, on the caller's thread::

    conn = mint.http.connect("http", "localhost", 9000)     # owned by mint.mailbox()
    conn, ref = mint.http.request(conn, "GET", "/", [])
    message = mint.receive(timeout=5)            # SocketData(socket, b"HTTP/1.1 200 ...")
    conn, responses = mint.http.stream(conn, message)

``send`` may be called from any thread; it wakes a ``receive`` blocked in its wait.

An active connection pays for the mailbox on every message: a wait over the sockets, a
read, a ``SocketData``. With the C extension ``mint._iospeedups`` built, the common
case of :meth:`Mailbox.receive` (nothing queued, then the input of one plain socket
alone) runs in C, and hands anything else to the Python loop before reading a byte,
with the same outcome as the loop's own. Measured in paired slices of 16-byte round
trips against a C echo server, that took an active client from 1.36-1.47x to about
1.3x the CPU of a bare blocking socket, and reading the mailbox's state through its
slots (a load each, not a getattr) to about 1.2x. The rest is mostly the wait (then
``poll``, now ``epoll_wait``): in C, a wait then ``recv`` costs 1.11-1.13x a blocking
``recv`` round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol, cast

from mint._backend import (
    POLL_MAX_MS,
    POLL_MAX_S,
    READ_BURST,
    error_pending,
    error_probe,
    is_number,
    map_os_error,
    reader_dies_on_error,
    wait_timeout,
)
from mint._backend import BaseTransport as Transport
from mint._speedup import load_speedup
from mint._transport import Transport as SyncTransport
from mint.errors import HTTPError, TransportError

# asyncio: bytes a loop-fed mailbox reads ahead of its consumer before its readers pause.
ASYNC_HIGH_WATER = 4 * 2**20
# A post after close meets the wake-up socket shut: an error, not a SIGPIPE that kills
# a program which restored SIGPIPE's default action.
_NO_SIGPIPE = getattr(socket, "MSG_NOSIGNAL", 0)
# The selector of Mailbox.receive: epoll (Linux), else poll. MINT_MAILBOX_POLL=1 takes
# poll where epoll exists too (tests run both).
_EPOLL = hasattr(select, "epoll") and not os.environ.get("MINT_MAILBOX_POLL")


class _Waiter(Protocol):
    """What ``areceive`` awaits: a loop future, or with the C module its Wakeup."""

    def done(self) -> bool: ...

    def set_result(self, value: None, /) -> None: ...

    def __await__(self) -> Generator[Any, None, object]: ...


def _future_waiter(loop: asyncio.AbstractEventLoop) -> _Waiter:
    return loop.create_future()


def _set_none(waiter: _Waiter) -> None:
    """Resolve ``waiter`` the scheduled way, unless it is resolved already (the timer
    of a wait that a message ended, or a second wake-up)."""
    if not waiter.done():
        waiter.set_result(None)


# An ``areceive`` waits on a Wakeup of mint._aiospeedups where it is built: the loop
# reader that queued the input resumes the waiting task at once, inside its own
# callback (``wake``), where a loop future's set_result had the loop resume it one
# iteration later, through a second callback. Any other resolution (the timer, a
# ``send`` from a task) is scheduled, as a future's. See the Wakeup in the C file.
_aio = load_speedup("mint._aiospeedups")
_new_waiter: Callable[[asyncio.AbstractEventLoop], _Waiter] = (
    _future_waiter if _aio is None else _aio.wakeup
)
_wake: Callable[[_Waiter], None] = _set_none if _aio is None else _aio.wake


@dataclass(frozen=True, slots=True)
class SocketData:
    """Bytes read from an active connection's socket (Erlang's ``{:tcp, socket, data}``)."""

    socket: socket.socket
    data: bytes


# SocketData is built per read: setting its slots directly skips the frozen
# dataclass's __init__ (object.__setattr__ per field).
_new_object = object.__new__
_set_socket = cast(Any, SocketData.__dict__["socket"]).__set__
_set_data = cast(Any, SocketData.__dict__["data"]).__set__


def _socket_data(sock: Any, data: bytes) -> SocketData:
    message: SocketData = _new_object(SocketData)
    _set_socket(message, sock)
    _set_data(message, data)
    return message


@dataclass(frozen=True, slots=True)
class SocketClosed:
    """The peer closed an active connection's socket (``{:tcp_closed, socket}``)."""

    socket: socket.socket


@dataclass(frozen=True, slots=True)
class SocketError:
    """Reading an active connection's socket failed (``{:tcp_error, socket, reason}``)."""

    socket: socket.socket
    error: TransportError


Message = SocketData | SocketClosed | SocketError


class Mailbox:
    """A selector over active connections' sockets and a queue of posted objects."""

    # Slots: the C fast path of receive reads _queue, _wake_fd and _transports on
    # every wait (a load each, where an instance attribute is a type lookup and a dict
    # lookup).
    __slots__ = (
        "__weakref__",
        "_closed",
        "_epfd",
        "_finalizer",
        "_flushes",
        "_fragile",
        "_lock",
        "_loop",
        "_paused",
        "_poll",
        "_poll_turn",
        "_probes",
        "_queue",
        "_transports",
        "_unread_bytes",
        "_waiters",
        "_wake_fd",
        "_wake_r",
        "_wake_w",
    )

    def __init__(self) -> None:
        self._queue: deque[object] = deque()
        self._lock = threading.Lock()
        # poll: one thread's wait at a time (a select.poll refuses a second, with a
        # raw RuntimeError); the others wait their turn. epoll takes them all.
        self._poll_turn = threading.Lock()
        # ``epoll`` where there is one: the sockets are registered once and a wait
        # costs the same with 5,000 of them as with one, where ``poll`` walks every
        # socket on every wait (1,000 idle connections made a round trip 15x slower).
        # Else ``poll``; either is one C call per wait, where a ``selectors``
        # selector adds a Python layer of key objects per event.
        # _epfd: the epoll descriptor (the C fast path waits on it), or -1 with poll.
        self._poll: Any
        epoll = None
        try:
            if _EPOLL:
                epoll = select.epoll()
                self._poll, self._epfd = epoll, epoll.fileno()
            else:
                self._poll, self._epfd = select.poll(), -1
            self._wake_r, self._wake_w = socket.socketpair()
        except OSError as exc:
            # Out of descriptors (EMFILE) is the usual one: typed, as a socket's own.
            if epoll is not None:
                epoll.close()
            raise map_os_error(exc) from exc
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_fd = self._wake_r.fileno()
        self._poll.register(self._wake_fd, select.POLLIN)
        # The descriptors go with the mailbox object (a thread's default mailbox dies
        # with the thread), not with ``close``: a wait under way at the close may be
        # about to poll the epoll's number, or polling it again after a signal, and
        # a number closed under it can be another's by then (a wait on a stranger's
        # epoll, for ever); epoll also forgets the pending event of a descriptor
        # closed before the waiting thread took it.
        self._finalizer = weakref.finalize(
            self, _release, self._wake_r, self._wake_w, self._poll if _EPOLL else None
        )
        self._closed = False
        self._transports: dict[int, Transport] = {}
        # The blocking sockets whose send left bytes (a send_timeout): written from
        # the waits here as the socket drains (see _flush_when_writable).
        self._flushes: set[int] = set()
        # asyncio: the loop whose readers feed this mailbox (weakly: a loop's default
        # mailbox must not keep the loop alive), the tasks waiting, the flow control.
        self._loop: weakref.ref[asyncio.AbstractEventLoop] | None = None
        self._fragile = False  # that loop's readers stop at a socket error (uvloop)
        self._probes: dict[int, Any] = {}  # then, a poll of each watched socket's errors
        self._waiters: set[_Waiter] = set()
        self._unread_bytes = 0
        self._paused = False

    def __repr__(self) -> str:
        return f"<mint.Mailbox sockets={len(self._transports)} queued={len(self._queue)}>"

    # -- posting -------------------------------------------------------------------
    def send(self, message: object) -> None:
        """Post ``message``; safe from any thread; wakes a blocked ``receive``."""
        with self._lock:
            self._queue.append(message)
        try:
            self._wake_w.send(b"\x00", _NO_SIGPIPE)
        except (BlockingIOError, OSError):
            pass  # full (a wake-up is pending anyway), or shut by close (woken for good)
        self._wake_loop()

    def _wake_loop(self) -> None:
        """Wake the tasks awaiting ``areceive`` on this mailbox's loop, from any thread."""
        loop = self._live_loop()
        if loop is not None:
            try:
                running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                # (the caller may be any code of the loop's thread, a task or a callback:
                # the waiting task resumes after it, as a future's callbacks run)
                self._wake_async(eager=False)
            else:
                try:
                    loop.call_soon_threadsafe(self._wake_async)
                except RuntimeError:
                    pass  # the loop closed meanwhile: nobody is waiting on it

    # -- ownership -----------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called: the mailbox takes no connection any more,
        and a wait on it is refused once its queue is empty."""
        return self._closed

    def _refuse_closed(self) -> None:
        """Raises:
        HTTPError: ``("invalid_mailbox", self)``: it is closed.
        """
        if self.closed:
            raise HTTPError(("invalid_mailbox", self))

    def register(self, transport: Transport) -> None:
        """Start delivering ``transport``'s input here (the connection went active).

        Raises:
            HTTPError: ``("invalid_mailbox", self)`` once the mailbox is closed.
        """
        self._refuse_closed()
        fd = transport.sock.fileno()
        owner = self._transports.get(fd)
        if owner is transport:
            return
        if owner is not None:
            # Its number is another socket's now: the owner's was closed behind the
            # mailbox's back (not by mint.http.close), which epoll does not report.
            # Said now, once, as its end.
            self._forget(owner)
            self.send(SocketError(owner.sock, TransportError("closed")))
        self._transports[fd] = transport
        try:
            self._poll.register(fd, select.POLLIN)
        except FileExistsError:  # epoll: a registration the kernel has not dropped yet
            self._poll.modify(fd, select.POLLIN)
        # The passive waits are over: their loop reader and timer go now, whether or
        # not a loop feeds this mailbox yet. Both hold their loop, and this mailbox
        # may be that loop's default one, which the loop's death must be able to end
        # (mint.aio._mailbox keeps it weakly, by loop). A wait under way is ended.
        transport._waiter.taken(self)
        loop = self._live_loop()
        if loop is not None and not self._paused:
            self._watch(loop, fd, transport)
        # What a passive read kept (bytes, or an end its burst met): no wait would
        # announce it, so it is posted now, as the socket's next message.
        self._follow(transport)

    def unregister(self, transport: Transport, *, drop: bool) -> list[bytes]:
        """Stop watching ``transport``; return (or with ``drop``, discard) its queued input.

        Queued data is handed back in order so a switch to passive mode loses nothing.
        A queued end (``SocketClosed``, ``SocketError``) is kept on the transport for
        its next read (``keep_end``), which the socket itself may no longer give: a
        reset is reported once, and a TLS end was read off the socket already.
        """
        sock = transport.sock
        self._forget(transport)
        kept: list[bytes] = []
        with self._lock:
            remaining: deque[object] = deque()
            for message in self._queue:
                if isinstance(message, SocketData | SocketClosed | SocketError) and (
                    message.socket is sock
                ):
                    if isinstance(message, SocketData):
                        kept.append(message.data)
                        if message.data and transport.unstreamed:
                            transport.unstreamed -= 1  # (taken back: held by nobody)
                    elif not drop:
                        cause = message.error.__cause__ if type(message) is SocketError else None
                        transport.keep_end(cause if isinstance(cause, OSError) else b"")
                else:
                    remaining.append(message)
            self._queue = remaining
        return [] if drop else kept

    def owns(self, transport: Transport) -> bool:
        return self._fd_of(transport) is not None

    def post_input(self, transport: Transport, data: bytes) -> None:
        """Queue input of ``transport`` read before (by another mailbox, or while the
        connection was passive) as this mailbox's own, counted as :meth:`_said` counts
        it: posted uncounted, it hid a message a caller held from ``handed_out``."""
        if data:
            transport.unstreamed += 1
        self.send(SocketData(transport.sock, data))

    def handed_out(self, transport: Transport) -> int:
        """The SocketData of ``transport`` this mailbox gave out that no ``stream`` has
        taken yet: a caller holds them (between ``areceive`` and ``stream``, in another
        task or its own). Bytes read off the socket now would come after theirs, and a
        window wait that read them handed them out first: frames out of order, or a
        DATA frame cut in two and fed to h2 the wrong way round (``protocol_error``)."""
        sock = transport.sock
        with self._lock:
            queued = sum(
                1
                for message in self._queue
                if type(message) is SocketData and message.socket is sock and message.data
            )
        return max(0, transport.unstreamed - queued)

    # -- receiving -----------------------------------------------------------------
    def _pop(self) -> tuple[bool, object]:
        with self._lock:
            if self._queue:
                return True, self._queue.popleft()
        return False, None

    def _read(self, transport: Transport) -> int:
        """Read one burst from a ready socket and queue what it means; return its size."""
        message = self._message(transport)
        if message is None:
            return 0
        with self._lock:
            self._queue.append(message)
        self._follow(transport)
        return len(message.data) if isinstance(message, SocketData) else 0

    def _follow(self, transport: Transport) -> None:
        """Post what a read kept for the next one, which no wait would announce: an
        end a TLS burst met after its bytes (``BaseTransport.keep_end``), or bytes a
        passive read left before the connection went active. (Also called by the C
        read, ``mint._iospeedups``.) Rare, so it is posted as ``send`` posts, wake-up
        included, for whoever waits."""
        if transport._unread is not None:
            message = self._message(transport)
            if message is not None:
                self.send(message)

    def _message(self, transport: Transport) -> object | None:
        """Read one burst from a ready socket: the message it makes, or None (nothing yet)."""
        try:
            data = transport.recv_ready()
        except TransportError as exc:
            return self._said(transport, exc)
        return self._said(transport, data)

    def _said(self, transport: Transport, read: bytes | TransportError | None) -> object | None:
        """The message one read of ``transport`` makes (None: there was nothing yet)."""
        if read is None:
            return None
        sock = transport.sock
        if type(read) is bytes and read:
            transport.unstreamed += 1
            return _socket_data(sock, read)
        # The end of stream or a failure: like ``{:tcp_closed, socket}`` it is said once.
        self._forget(transport)
        if isinstance(read, TransportError):
            return SocketError(sock, read)
        return SocketClosed(sock)

    def _after_read(self, transport: Transport, outcome: bytes | OSError) -> object | None:
        """End a read of the C fast path (see :meth:`receive`) that found no bytes.

        ``outcome`` is what its read gave: ``b""`` (the peer closed) or the ``OSError``.
        As :meth:`_message` would end it.
        """
        if isinstance(outcome, OSError):
            if isinstance(outcome, BlockingIOError | InterruptedError):
                return None
            error = map_os_error(outcome)
            error.__cause__ = outcome
            return self._said(transport, error)
        return self._said(transport, outcome)

    def _fd_of(self, transport: Transport) -> int | None:
        """The descriptor ``transport`` is registered under, or None (not ours)."""
        fd = transport.sock.fileno()
        if self._transports.get(fd) is transport:
            return fd  # the common case, without a walk over thousands of sockets
        # Its socket was closed (fileno() is -1) while registered: look it up.
        return next((fd for fd, t in self._transports.items() if t is transport), None)

    def _forget(self, transport: Transport) -> None:
        fd = self._fd_of(transport)
        if fd is None:
            return
        del self._transports[fd]
        try:
            self._poll.unregister(fd)
        except (KeyError, ValueError, OSError):
            pass
        self._unwatch(fd, transport)  # (its loop writer too, while it is in _flushes)
        self._flushes.discard(fd)
        transport._waiter.given_back()

    def _flush_when_writable(self, fd: int, wanted: bool) -> None:
        """Have the waits here also write what a send on ``fd`` left, as the socket
        drains (``wanted``), or stop.

        Called by the blocking waiter (``Waiter.flush_later``, from any thread): it
        has no loop to write the rest of a send that hit its ``send_timeout``, and a
        caller of an active connection waits here for the answer to the message it
        was part of. A loop that feeds the mailbox (``areceive``) writes it too.
        """
        if fd not in self._transports or wanted == (fd in self._flushes):
            return
        if wanted:
            self._flushes.add(fd)
        else:
            self._flushes.discard(fd)
        events = select.POLLIN | select.POLLOUT if wanted else select.POLLIN
        with contextlib.suppress(OSError, ValueError, KeyError):
            self._poll.modify(fd, events)
        loop = self._live_loop()
        if loop is not None:
            loop.call_soon_threadsafe(self._watch_writable, loop, fd, self._transports[fd])

    def _watch_writable(
        self, loop: asyncio.AbstractEventLoop, fd: int, transport: Transport
    ) -> None:
        """On ``loop``'s thread: a writer for ``fd`` while it is in ``_flushes``, and
        ``transport``'s still (else _forget took it off, and the number may be
        another socket's by now, whose writer is not ours to take)."""
        if self._transports.get(fd) is not transport:
            return
        if fd in self._flushes and not self._paused:
            loop.add_writer(fd, self._on_writable_async, transport)
        else:
            loop.remove_writer(fd)

    def _on_writable_async(self, transport: Transport) -> None:
        # (done, the waiter says so: _flush_when_writable, which takes the writer off)
        transport._waiter.run_flush()

    def _flush_ready(self, ready: list[tuple[int, int]]) -> None:
        """Write what sends left on the sockets of ``ready`` that can take more."""
        for fd, events in ready:
            if events & select.POLLOUT and fd in self._flushes:
                transport = self._transports.get(fd)
                if transport is not None:
                    transport._waiter.run_flush()

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def receive(self, timeout: float | None = None) -> object:
        """Return the next message, reading sockets as needed.

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds.
        """
        if _fast_receive is not None:
            # The common case in C (mint._iospeedups): nothing queued, then one plain
            # socket's input alone. It passes before reading anything when the case
            # is not that one, or when anything else woke it.
            message = _fast_receive(self, timeout)
            if message is _TIMED_OUT:
                return self._timed_out()
            if message is not _PASSED:
                return message
        return self._receive_loop(timeout)

    def _receive_loop(self, timeout: float | None) -> object:
        """:meth:`receive` in Python: after its C fast path passed, or without it."""
        _check_timeout(timeout)
        timeout = wait_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            found, message = self._pop()
            if found:
                return message
            self._refuse_closed()
            if not _EPOLL:
                ready = self._poll_in_turn(deadline)
            elif deadline is None:
                ready = self._poll.poll(-1)
            else:  # seconds, which epoll rounds up to its milliseconds
                ready = self._poll.poll(min(max(deadline - time.monotonic(), 0.0), POLL_MAX_S))
            if self._flushes:
                self._flush_ready(ready)
            if len(ready) == 1 and not self._queue:
                # The common case: one socket ready and nothing queued. Its message is
                # the next one: hand it over without the queue (and its lock) in between.
                transport = self._transports.get(ready[0][0])
                if transport is not None:
                    message = self._message(transport)
                    if message is not None:
                        self._follow(transport)
                        return message
                    continue
            for fd, events in ready:
                if fd == self._wake_fd:
                    self._drain_wakeups()
                    continue
                transport = self._transports.get(fd)
                if transport is not None:
                    self._read(transport)
                elif events & select.POLLNVAL:
                    # A descriptor closed under us and no longer ours: stop polling it.
                    try:
                        self._poll.unregister(fd)
                    except (KeyError, ValueError):
                        pass
            if not ready and deadline is not None and time.monotonic() >= deadline:
                return self._timed_out()

    def _poll_in_turn(self, deadline: float | None) -> list[tuple[int, int]]:
        """A ``poll`` wait, once the thread before it has had its own (empty: the
        deadline came first, or what came meanwhile is looked at before waiting)."""
        if deadline is None:
            self._poll_turn.acquire()
        elif not self._poll_turn.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            return []
        try:
            if self._closed or self._queue:
                return []
            ms = (
                None
                if deadline is None
                else min(max(int((deadline - time.monotonic()) * 1000 + 0.999), 0), POLL_MAX_MS)
            )
            ready: list[tuple[int, int]] = self._poll.poll(ms)
            return ready
        finally:
            self._poll_turn.release()

    def _timed_out(self) -> object:
        """The end of a wait that ran out: a message posted at the last moment, or TimeoutError."""
        found, message = self._pop()
        if found:
            return message
        raise TimeoutError("no message arrived in the mailbox in time")

    # -- asyncio -------------------------------------------------------------------
    # The running loop feeds the mailbox: each owned socket gets a loop reader that
    # reads a burst into the queue and wakes the tasks awaiting ``areceive``. Input is
    # queued before anyone is woken, so a cancelled ``areceive`` loses nothing. When a
    # consumer falls behind by more than ASYNC_HIGH_WATER bytes the readers pause (the
    # kernel's buffers and TCP flow control then hold the peer back) until the queue is
    # empty again.
    def _live_loop(self) -> asyncio.AbstractEventLoop | None:
        loop = self._loop() if self._loop is not None else None
        if loop is None or loop.is_closed():
            return None
        return loop

    def _watch(self, loop: asyncio.AbstractEventLoop, fd: int, transport: Transport) -> None:
        # One reader per socket and loop: a passive wait's reader, kept between
        # waits, gave way to the mailbox's when the socket was registered.
        loop.add_reader(fd, self._on_readable_async, transport)
        transport.reader_busy = True
        if fd in self._flushes:
            loop.add_writer(fd, self._on_writable_async, transport)

    def _probe(self, fd: int) -> Any:
        probe = self._probes[fd] = error_probe(fd)
        return probe

    def _unwatch(self, fd: int, transport: Transport) -> None:
        self._probes.pop(fd, None)
        transport.reader_busy = False
        loop = self._live_loop()
        if loop is not None:
            loop.remove_reader(fd)
            if fd in self._flushes:
                loop.remove_writer(fd)

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._live_loop() is loop:
            return loop
        if self._live_loop() is not None:
            for fd, transport in self._transports.items():
                self._unwatch(fd, transport)
        self._loop = weakref.ref(loop)
        self._fragile = reader_dies_on_error(loop)
        self._paused = False
        for fd, transport in self._transports.items():
            self._watch(loop, fd, transport)
        return loop

    def _on_readable_async(self, transport: Transport) -> None:
        self._unread_bytes += self._read(transport)
        if self._fragile and not transport.closed:
            fd = transport.sock.fileno()
            loop = self._live_loop()
            if (
                loop is not None
                and self._transports.get(fd) is transport
                and error_pending(self._probes.get(fd) or self._probe(fd))
            ):
                # uvloop has closed its poll of the socket after this call (see
                # reader_dies_on_error): a new reader of it meets the error.
                self._unwatch(fd, transport)
                if not self._paused:
                    self._watch(loop, fd, transport)
        if self._unread_bytes > ASYNC_HIGH_WATER and not self._paused:
            self._paused = True
            for fd, owned in self._transports.items():
                self._unwatch(fd, owned)
        self._wake_async()

    def _resume(self, loop: asyncio.AbstractEventLoop) -> None:
        self._unread_bytes = 0
        if self._paused:
            self._paused = False
            for fd, transport in self._transports.items():
                self._watch(loop, fd, transport)

    def _wake_async(self, eager: bool = True) -> None:
        """Wake the tasks awaiting ``areceive``: resumed at once (``eager``, from a
        callback the loop runs: our reader, or a ``send`` from another thread), or
        scheduled (a ``send`` on the loop's thread, whose caller goes on first)."""
        wake = _wake if eager else _set_none  # (either leaves a resolved waiter be)
        # (a copy: a task resumed at once may wait again, adding to the set)
        for waiter in tuple(self._waiters):
            wake(waiter)

    async def areceive(self, timeout: float | None = None) -> object:
        """Await the next message without blocking the event loop.

        The running loop watches the sockets (``add_reader``); nothing polls. Several
        tasks may wait on one mailbox (each message goes to one of them), but as with
        a BEAM process one task should own it.

        Cancelling this call loses nothing: input is queued before any waiter is
        woken, and a message is taken off the queue only when it is returned. With the
        C module built, the reader that queued it resumes the waiting task at once,
        inside its own callback (see ``_new_waiter``), as a passive ``recv``'s does.

        Raises:
            TimeoutError: nothing arrived within ``timeout`` seconds.
        """
        if timeout is not None and (timeout.__class__ is not float or timeout != timeout):
            _check_timeout(timeout)  # (a float that is not NaN needs no call)
        loop = self._bind_loop()
        timeout = wait_timeout(timeout)
        deadline = None if timeout is None else loop.time() + timeout
        waited = False
        while True:
            found, message = self._pop()
            if found:
                return message
            self._refuse_closed()
            self._resume(loop)
            if waited and deadline is not None and loop.time() >= deadline:
                raise TimeoutError("no message arrived in the mailbox in time")
            waiter = _new_waiter(loop)
            self._waiters.add(waiter)
            timer = None if deadline is None else loop.call_at(deadline, _set_none, waiter)
            try:
                await waiter
            finally:
                self._waiters.discard(waiter)
                if timer is not None:
                    timer.cancel()
            waited = True

    def close(self) -> None:
        """Stop taking connections and wake every wait under way (the connections
        stay as they are; the selector's descriptors go with the mailbox object).

        A closed mailbox takes no connection (``connect``, ``controlling_process`` and
        ``set_mode`` refuse it with ``HTTPError(("invalid_mailbox", mailbox))``), and a
        wait on it, once its queue is empty, raises the same. A default mailbox
        (``mint.mailbox()``, ``mint.aio.mailbox()``) that was closed is replaced by a
        new one the next time it is asked for.
        """
        # Closed shows first, then the wake-up: a wait woken before the close showed
        # would look, find the mailbox open, and wait again, with nobody left to wake it.
        self._closed = True
        # The C fast path of receive reads these: -1 makes it pass to the Python loop.
        self._epfd = self._wake_fd = -1
        # (A snapshot, taken in one C call: another close, or a read that meets an
        # end, may change the sockets meanwhile. No lock: a signal handler may close
        # the mailbox while its own thread holds the queue's.)
        transports, self._transports = self._transports, {}
        for fd, transport in list(transports.items()):
            self._unwatch(fd, transport)
        # The wake-up for good: its writing end shut, the reading end stays ready (end
        # of stream) for every wait under way, however many, and for a late one.
        try:
            self._wake_w.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # its finalizer closed the sockets already (the interpreter's exit)
        self._wake_loop()


def _release(*closables: Any) -> None:
    for thing in closables:
        if thing is not None:
            thing.close()


_local = threading.local()


def mailbox() -> Mailbox:
    """The calling thread's default mailbox (created on first use)."""
    box: Mailbox | None = getattr(_local, "mailbox", None)
    if box is None or box.closed:
        box = Mailbox()
        _local.mailbox = box
    return box


def _check_timeout(timeout: object) -> None:
    """``receive``'s and ``areceive``'s timeout, as ``recv``'s: ``None`` or a number of
    seconds (negative: at once). NaN waited for ever on asyncio's loop and raised a raw
    ``ValueError`` elsewhere; a str a raw ``TypeError``.

    Raises:
        HTTPError: ``("invalid_timeout", timeout)``.
    """
    if timeout is not None and not is_number(timeout):
        raise HTTPError(("invalid_timeout", timeout))


def _receive(timeout: float | None = None) -> object:
    """The next message of the calling thread's default mailbox (Elixir's ``receive``).

    Raises:
        TimeoutError: nothing arrived within ``timeout`` seconds.
    """
    box: Mailbox | None = getattr(_local, "mailbox", None)
    if box is None or (box._closed and not box._queue):
        # A default closed (by this thread or another) is replaced once what it had
        # queued was taken. (A wait under way at the close is refused instead.)
        box = mailbox()
    return box.receive(timeout)


# Markers of the C fast path's answers that are not a message (see Mailbox.receive).
_PASSED = object()
_TIMED_OUT = object()
_c = load_speedup("mint._iospeedups")
_fast_receive: Callable[[Mailbox, float | None], object] | None = (
    None
    if _c is None
    else _c.setup_mailbox(SyncTransport, SocketData, Mailbox, READ_BURST, _PASSED, _TIMED_OUT)
)

#: ``receive(timeout=None)``: :func:`_receive`, or with the C module its common case
#: (an existing default Mailbox) in C: no Python frame between the caller and the wait.
receive = _receive
if _c is not None:
    receive = _c.setup_receive(_local, Mailbox, _receive)
