"""Active mode: a mailbox that turns socket input into messages, as the BEAM does for Mint.

In Elixir an active socket sends ``{:tcp, socket, data}`` to its owner's mailbox and
``Mint.HTTP.stream/2`` is handed that message. Python threads have no mailbox, so
:class:`Mailbox` plays the part: a ``selectors`` selector over the sockets of
the active connections it owns, plus a queue for objects posted with :meth:`Mailbox.send`.

Nothing runs in the background. Sockets are read only while :meth:`Mailbox.receive`
runs, on the caller's thread::

    conn = mint.http.connect("http", "localhost", 9000)     # owned by mint.mailbox()
    conn, ref = mint.http.request(conn, "GET", "/", [])
    message = mint.receive(timeout=5)            # SocketData(socket, b"HTTP/1.1 200 ...")
    conn, responses = mint.http.stream(conn, message)

``send`` may be called from any thread; it wakes a ``receive`` blocked in ``select``.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mint.errors import TransportError

if TYPE_CHECKING:
    from mint._transport import Transport


@dataclass(frozen=True, slots=True, eq=False)
class SocketData:
    """Bytes read from an active connection's socket (Erlang's ``{:tcp, socket, data}``)."""

    socket: Any
    data: bytes


@dataclass(frozen=True, slots=True, eq=False)
class SocketClosed:
    """The peer closed an active connection's socket (``{:tcp_closed, socket}``)."""

    socket: Any


@dataclass(frozen=True, slots=True, eq=False)
class SocketError:
    """Reading an active connection's socket failed (``{:tcp_error, socket, reason}``)."""

    socket: Any
    error: TransportError


Message = SocketData | SocketClosed | SocketError


class Mailbox:
    """A selector over active connections' sockets and a queue of posted objects."""

    def __init__(self) -> None:
        self._queue: deque[object] = deque()
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        # A thread's default mailbox dies with the thread: release its descriptors then.
        self._finalizer = weakref.finalize(
            self, _release, self._selector, self._wake_r, self._wake_w
        )
        self._transports: dict[int, Transport] = {}
        # asyncio flavour: the loop whose readers serve this mailbox, and a waiter.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<mint.Mailbox sockets={len(self._transports)} queued={len(self._queue)}>"

    # -- posting -------------------------------------------------------------------
    def send(self, message: object) -> None:
        """Post ``message``; safe from any thread; wakes a blocked ``receive``."""
        with self._lock:
            self._queue.append(message)
        try:
            self._wake_w.send(b"\x00")
        except (BlockingIOError, OSError):
            pass  # the wake-up pipe is full: a wake-up is pending anyway
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake_async)

    # -- ownership -----------------------------------------------------------------
    def register(self, transport: Transport) -> None:
        """Start delivering ``transport``'s input here (the connection went active)."""
        fd = transport.sock.fileno()
        if fd in self._transports:
            return
        self._transports[fd] = transport
        self._selector.register(transport.sock, selectors.EVENT_READ, transport)
        if self._loop is not None:
            self._loop.add_reader(fd, self._on_readable_async, transport)

    def unregister(self, transport: Transport, *, drop: bool) -> list[bytes]:
        """Stop watching ``transport``; return (or with ``drop``, discard) its queued input.

        Queued data is handed back in order so a switch to passive mode loses nothing.
        """
        sock = transport.sock
        for fd, owned in list(self._transports.items()):
            if owned is transport:
                del self._transports[fd]
                try:
                    self._selector.unregister(sock)
                except (KeyError, ValueError, OSError):
                    pass
                if self._loop is not None and not self._loop.is_closed():
                    self._loop.remove_reader(fd)
        kept: list[bytes] = []
        with self._lock:
            remaining: deque[object] = deque()
            for message in self._queue:
                if isinstance(message, SocketData | SocketClosed | SocketError) and (
                    message.socket is sock
                ):
                    if isinstance(message, SocketData):
                        kept.append(message.data)
                else:
                    remaining.append(message)
            self._queue = remaining
        return [] if drop else kept

    def owns(self, transport: Transport) -> bool:
        return any(owned is transport for owned in self._transports.values())

    # -- receiving -----------------------------------------------------------------
    def _pop(self) -> tuple[bool, object]:
        with self._lock:
            if self._queue:
                return True, self._queue.popleft()
        return False, None

    def _read(self, transport: Transport) -> None:
        """Read one burst from a ready socket and queue what it means."""
        sock = transport.sock
        try:
            data = transport.recv_ready()
        except TransportError as exc:
            self._forget(transport)
            message: object = SocketError(sock, exc)
        else:
            if data is None:
                return
            if data:
                message = SocketData(sock, data)
            else:
                # End of stream: like ``{:tcp_closed, socket}`` it is said once.
                self._forget(transport)
                message = SocketClosed(sock)
        with self._lock:
            self._queue.append(message)

    def _forget(self, transport: Transport) -> None:
        fd = next((fd for fd, t in self._transports.items() if t is transport), None)
        if fd is None:
            return
        del self._transports[fd]
        try:
            self._selector.unregister(transport.sock)
        except (KeyError, ValueError, OSError):
            pass
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(fd)

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
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            found, message = self._pop()
            if found:
                return message
            wait = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            ready = self._selector.select(wait)
            for key, _events in ready:
                if key.data is None:
                    self._drain_wakeups()
                else:
                    self._read(key.data)
            if not ready and deadline is not None and time.monotonic() >= deadline:
                found, message = self._pop()
                if found:
                    return message
                raise TimeoutError("no message arrived in the mailbox in time")

    # -- asyncio -------------------------------------------------------------------
    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        if self._loop is not None and not self._loop.is_closed():
            for fd in self._transports:
                self._loop.remove_reader(fd)
        self._loop = loop
        for fd, transport in self._transports.items():
            loop.add_reader(fd, self._on_readable_async, transport)

    def _on_readable_async(self, transport: Transport) -> None:
        self._read(transport)
        self._wake_async()

    def _wake_async(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def areceive(self, timeout: float | None = None) -> object:
        """Await the next message without blocking the event loop.

        The running loop watches the sockets (``add_reader``); cancelling this call
        loses nothing, because input is queued before any waiter is woken.
        """
        self._bind_loop()
        assert self._loop is not None
        deadline = None if timeout is None else self._loop.time() + timeout
        while True:
            found, message = self._pop()
            if found:
                return message
            waiter = self._loop.create_future()
            self._waiter = waiter
            try:
                if deadline is None:
                    await waiter
                else:
                    remaining = deadline - self._loop.time()
                    if remaining <= 0:
                        raise TimeoutError("no message arrived in the mailbox in time")
                    try:
                        await asyncio.wait_for(waiter, remaining)
                    except TimeoutError:
                        found, message = self._pop()
                        if found:
                            return message
                        raise
            finally:
                self._waiter = None

    def close(self) -> None:
        """Release the selector and wake-up sockets (the connections stay as they are)."""
        if self._loop is not None and not self._loop.is_closed():
            for fd in self._transports:
                self._loop.remove_reader(fd)
        self._transports.clear()
        self._finalizer()


def _release(selector: selectors.BaseSelector, *sockets: socket.socket) -> None:
    selector.close()
    for sock in sockets:
        sock.close()


_local = threading.local()


def mailbox() -> Mailbox:
    """The calling thread's default mailbox (created on first use)."""
    box: Mailbox | None = getattr(_local, "mailbox", None)
    if box is None:
        box = Mailbox()
        _local.mailbox = box
    return box


def receive(timeout: float | None = None) -> object:
    """The next message of the calling thread's default mailbox (Elixir's ``receive``)."""
    return mailbox().receive(timeout)
