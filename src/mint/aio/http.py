"""``mint.aio.http``: ``mint.http`` for asyncio, function for function.

``connect``, ``request``, ``stream_request_body``, ``stream``, ``recv``, ``close``,
``ping`` and ``cancel_request`` are coroutines; the rest, the values and the errors
are the objects of ``mint.http``.

Walkthrough (active mode, the loop's mailbox)::

    import mint.aio
    conn = await mint.aio.http.connect("http", "localhost", 8080)
    conn, ref = await mint.aio.http.request(conn, "GET", "/", [])
    while True:
        conn, responses = await mint.aio.http.stream(conn, await mint.aio.receive(timeout=5))
        ...  # Status(ref, 200), Headers(ref, [...]), Data(ref, b"..."), Done(ref)
"""

from mint.aio._http import (
    cancel_request,
    close,
    connect,
    ping,
    recv,
    request,
    set_mode,
    stream,
    stream_request_body,
)
from mint.http._conn import (
    UNKNOWN,
    Conn,
    controlling_process,
    get_socket,
    is_open,
    open_request_count,
    pending_bytes,
    protocol,
    send_window,
)
from mint.http._types import EOF, STREAM, Data, Done, Error, Headers, Pong, Ref, Response, Status

__all__ = [
    "EOF",
    "STREAM",
    "UNKNOWN",
    "Conn",
    "Data",
    "Done",
    "Error",
    "Headers",
    "Pong",
    "Ref",
    "Response",
    "Status",
    "cancel_request",
    "close",
    "connect",
    "controlling_process",
    "get_socket",
    "is_open",
    "open_request_count",
    "pending_bytes",
    "ping",
    "protocol",
    "recv",
    "request",
    "send_window",
    "set_mode",
    "stream",
    "stream_request_body",
]
