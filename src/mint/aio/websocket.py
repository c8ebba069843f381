"""``mint.aio.websocket``: ``mint.websocket`` for asyncio, function for function.

``upgrade``, ``stream``, ``recv``, ``stream_request_body`` and ``cancel`` are
coroutines; ``new``, ``encode``, ``decode``, the frames and ``WebSocket`` are the
objects of ``mint.websocket``.

Walkthrough::

    conn = await mint.aio.http.connect("http", "localhost", 9000)
    conn, ref = await mint.aio.websocket.upgrade("ws", conn, "/", [])
    conn, responses = await mint.aio.websocket.stream(conn, await mint.aio.receive())
    match responses:
        case [Status(status=status), Headers(headers=headers), Done()]:
            pass
    conn, websocket = mint.aio.websocket.new(conn, ref, status, headers)
    websocket, data = mint.aio.websocket.encode(websocket, Text("hello world"))
    conn = await mint.aio.websocket.stream_request_body(conn, ref, data)
    conn, responses = await mint.aio.websocket.stream(conn, await mint.aio.receive())
    match responses:
        case [Data(data=data)]:
            websocket, frames = mint.aio.websocket.decode(websocket, data)   # [Text("hello world")]

As in Mint.WebSocket, the caller answers pings with pongs and replies to a Close.
"""

from mint.aio._fastio import recv, stream_request_body
from mint.aio._websocket import cancel, stream, upgrade
from mint.websocket import (
    Binary,
    Close,
    Extension,
    Frame,
    PerMessageDeflate,
    Ping,
    Pong,
    Shorthand,
    Text,
    UpgradeFailureError,
    WebSocket,
    WebSocketError,
    decode,
    encode,
    new,
)

__all__ = [
    "Binary",
    "Close",
    "Extension",
    "Frame",
    "PerMessageDeflate",
    "Ping",
    "Pong",
    "Shorthand",
    "Text",
    "UpgradeFailureError",
    "WebSocket",
    "WebSocketError",
    "cancel",
    "decode",
    "encode",
    "new",
    "recv",
    "stream",
    "stream_request_body",
    "upgrade",
]
