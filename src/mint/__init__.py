"""mint: a functional, process-less HTTP and WebSocket client (placeholder, filled in by the foundation)."""

from mint.errors import HTTPError, MintError, TransportError, UpgradeFailureError, WebSocketError

__all__ = ["HTTPError", "MintError", "TransportError", "UpgradeFailureError", "WebSocketError"]
