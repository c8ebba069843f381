"""``mint.aio.websocket.recv`` and ``stream_request_body``, with an optional C hot path.

The Python coroutine functions (``mint.aio.http.recv``, which serves WebSockets as
well, and ``mint.aio._websocket.stream_request_body``) are the reference. When the C
extension ``mint._aiospeedups`` is built, the public names are its callables instead:
calling one returns a C coroutine that takes the steady state of a passive upgraded
HTTP/1.1 connection on a plain socket (wait on the loop through the connection's
``AsyncWaiter``, read what is there as one ``Data``; or one send that takes all of the
frame) and hands every other case, unchanged, to the Python coroutine, which it then
drives as ``yield from`` would. On TLS (wss) it takes the drained read (the same wait,
then one ``SSLSocket.recv``, its burst left to the transport's ``_read_more``) and the
send (one ``SSLSocket.send``) through the ``SSLSocket``'s own methods; what TLS asks for
(to write before it reads, or to wait to write) is the Python coroutine's.

Why: an asyncio round trip through the Python path creates and resumes a chain of
coroutines (``recv`` → ``Transport.recv_parts`` → ``AsyncWaiter.wait_and_recv``;
``stream_request_body`` twice), and every level that returns raises a StopIteration.
The C coroutine is one object that the caller's ``await`` sends into directly (see
the C file's header for what it does and does not take, and ``bench/_ab.py`` in the
issue notes for the figures). ``MINT_NO_SPEEDUPS=1`` turns it off with the rest.

The C callables carry the Python functions' ``__code__``, names and documentation, so
``inspect.iscoroutinefunction`` and ``inspect.signature`` see the coroutine functions
they stand for; the C coroutine is registered as a ``collections.abc.Coroutine``, so
``asyncio.create_task`` and ``asyncio.run`` take it. Outcomes that are not bytes come
back here: :func:`_recv_tail` (end of stream, timeout, failure) and :func:`_send_rest`
(a send the socket took in part) end them as the Python path does.
"""

from __future__ import annotations

import asyncio
import collections.abc
from typing import TYPE_CHECKING

from mint._backend import READ_BURST, map_os_error
from mint._speedup import load_speedup
from mint.aio import _http
from mint.aio import _websocket as _ws
from mint.aio._backend import AsyncWaiter
from mint.aio._transport import AsyncTransport
from mint.errors import MintError, TransportError
from mint.http._conn import Conn, _attach
from mint.http._types import Data, Response

__all__ = ["recv", "stream_request_body"]


def _recv_tail(conn: Conn, outcome: bytes | BaseException | None) -> tuple[Conn, list[Response]]:
    """End a C read that found no bytes: ``b""`` (the peer closed), the ``OSError``,
    ``None`` (the timeout ran out), the error its wait was woken with or refused with
    (the socket went to a mailbox: ``AsyncWaiter.taken``), or another exception of its
    wait (raised as it is), as the Python path would."""
    if isinstance(outcome, MintError):
        raise _attach(outcome, conn) from None
    if isinstance(outcome, BaseException) and not isinstance(outcome, OSError):
        raise outcome
    if outcome is None:
        raise _http._read_failed(conn, TransportError("timeout")) from None
    if isinstance(outcome, OSError):
        raise _http._read_failed(conn, map_os_error(outcome)) from outcome
    assert not outcome
    return _http._closed(conn)


async def _send_rest(conn: Conn, rest: memoryview) -> Conn:
    """Send what the C path's one send left of a frame (the socket's buffer filled)."""
    try:
        await conn._transport.send(rest)
    except MintError as exc:
        raise _attach(exc, conn) from exc.__cause__
    return conn


_c = load_speedup("mint._aiospeedups")

if TYPE_CHECKING or _c is None:
    recv = _http.recv
    stream_request_body = _ws.stream_request_body
else:
    recv, stream_request_body = _c.setup(
        Conn,
        AsyncTransport,
        AsyncWaiter,
        Data,
        READ_BURST,
        _http.recv,
        _ws.stream_request_body,
        _recv_tail,
        _send_rest,
        asyncio.get_running_loop,
        _http._send_failed,
    )
    for _ours, _python in ((recv, _http.recv), (stream_request_body, _ws.stream_request_body)):
        for _name in (
            "__module__",
            "__name__",
            "__qualname__",
            "__doc__",
            "__code__",
            "__defaults__",
            "__kwdefaults__",
            "__annotations__",
        ):
            setattr(_ours, _name, getattr(_python, _name))
        _ours.__module__ = "mint.aio.websocket"
        # get_type_hints evaluates the annotations in the __globals__ of what
        # __wrapped__ leads to: a C callable has none ("Conn" raised NameError).
        _ours.__wrapped__ = _python
    collections.abc.Coroutine.register(_c.Operation)
