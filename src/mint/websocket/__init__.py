"""``mint.websocket``: Mint.WebSocket in Python, WebSockets over HTTP/1.1 and HTTP/2.

Walkthrough::

    conn = mint.http.connect("http", "localhost", 9000)
    conn, ref = mint.websocket.upgrade("ws", conn, "/", [])
    conn, responses = mint.websocket.stream(conn, mint.receive())
    match responses:
        case [Status(status=status), Headers(headers=headers), Done()]:
            pass
    conn, websocket = mint.websocket.new(conn, ref, status, headers)
    websocket, data = mint.websocket.encode(websocket, Text("hello world"))
    conn = mint.websocket.stream_request_body(conn, ref, data)
    conn, responses = mint.websocket.stream(conn, mint.receive())
    match responses:
        case [Data(data=data)]:
            websocket, frames = mint.websocket.decode(websocket, data)   # [Text("hello world")]

Like Mint.WebSocket this is not conformant on its own: the caller answers pings
with pongs and replies to a Close frame (see ``examples/``).
"""

from mint.errors import UpgradeFailureError, WebSocketError
from mint.websocket._api import new
from mint.websocket._fastio import recv, stream, stream_request_body
from mint.websocket._frame import WebSocket, decode, encode
from mint.websocket._frames import Binary, Close, Frame, Ping, Pong, Shorthand, Text
from mint.websocket._io import cancel, upgrade
from mint.websocket.extension import Extension
from mint.websocket.permessage_deflate import PerMessageDeflate

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
