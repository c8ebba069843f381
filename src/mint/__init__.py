"""mint: a functional, process-less HTTP and WebSocket client, after Elixir's Mint.

``mint.http`` opens connections and streams requests; ``mint.websocket`` upgrades
them to WebSockets over HTTP/1.1 (RFC 6455) or HTTP/2 (RFC 8441). Active
connections deliver their input as messages to a :class:`Mailbox`; :func:`receive`
reads the calling thread's. Nothing runs in the background.
"""

from mint import http, websocket
from mint.errors import HTTPError, MintError, TransportError, UpgradeFailureError, WebSocketError
from mint.http._conn import UNKNOWN
from mint.mailbox import Mailbox, SocketClosed, SocketData, SocketError, mailbox, receive

__all__ = [
    "UNKNOWN",
    "HTTPError",
    "Mailbox",
    "MintError",
    "SocketClosed",
    "SocketData",
    "SocketError",
    "TransportError",
    "UpgradeFailureError",
    "WebSocketError",
    "http",
    "mailbox",
    "receive",
    "websocket",
]
