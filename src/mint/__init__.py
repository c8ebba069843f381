"""mint: a functional, process-less HTTP and WebSocket client, after Elixir's Mint.

``mint.http`` opens connections and streams requests; ``mint.websocket`` upgrades
them to WebSockets over HTTP/1.1 (RFC 6455) or HTTP/2 (RFC 8441). Active
connections deliver their input as messages to a :class:`Mailbox`; :func:`receive`
reads the calling thread's. Nothing runs in the background. ``mint.aio`` is the same
API for asyncio programs.
"""

from mint import http, websocket
from mint.errors import HTTPError, MintError, TransportError, UpgradeFailureError, WebSocketError
from mint.http._conn import UNKNOWN
from mint.mailbox import Mailbox, SocketClosed, SocketData, SocketError, mailbox, receive

from mint import aio  # isort: skip  (after the sync API it builds on)

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
    "aio",
    "http",
    "mailbox",
    "receive",
    "websocket",
]
