"""The ``mint.websocket`` functions that touch a connection: upgrade, new, stream, send, recv.

Walkthrough::

    conn = mint.http.connect("http", "localhost", 9000)
    conn, ref = mint.websocket.upgrade("ws", conn, "/", [])
    conn, responses = mint.websocket.stream(conn, mint.receive())   # Status, Headers, Done
    conn, websocket = mint.websocket.new(conn, ref, status, headers)
    websocket, data = mint.websocket.encode(websocket, Text("hello"))
    conn = mint.websocket.stream_request_body(conn, ref, data)
    conn, [Data(ref, data)] = mint.websocket.stream(conn, mint.receive())
    websocket, frames = mint.websocket.decode(websocket, data)

The codec (``encode``/``decode``) never looks at the HTTP version; only ``upgrade``
and ``new`` differ between HTTP/1.1 (GET + Upgrade, 101) and HTTP/2 (extended
CONNECT, 2xx). Answering pings and replying to a Close are left to the caller,
as in Mint: see ``examples/``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mint.errors import MintError, UpgradeFailureError, WebSocketError
from mint.http import _conn
from mint.http._conn import Conn
from mint.http._types import STREAM, Ref
from mint.websocket import _handshake
from mint.websocket._frame import WebSocket, new_websocket
from mint.websocket.extension import Extension

DEFAULT_MAX_MESSAGE_SIZE = 64 * 2**20


@dataclass(frozen=True, slots=True)
class _Upgrade:
    """What ``new`` needs to check the server's answer to one upgrade request."""

    protocol: str
    key: str | None
    extensions: tuple[Extension, ...]


def upgrade(
    scheme: str,
    conn: Conn,
    path: str,
    headers: list[tuple[str, str]],
    *,
    extensions: Sequence[Any] = (),
) -> tuple[Conn, Ref]:
    """Ask the server to upgrade to a WebSocket (Mint's ``upgrade/5``).

    HTTP/1.1 sends a GET with the RFC 6455 headers and a fresh random key; HTTP/2
    opens an extended CONNECT stream (RFC 8441, ``:protocol websocket``).

    Args:
        scheme: ``"ws"`` or ``"wss"`` (matching the connection's ``http``/``https``).
        extensions: extension classes, ``(cls, params)``, ``(cls, params, opts)``
            or ``Extension`` instances, offered in this order.

    Raises:
        WebSocketError: ``"extended_connect_disabled"`` when the HTTP/2 server did not
            enable extended CONNECT; ``("invalid_extension", item)`` for a bad item.
        HTTPError, TransportError: as :func:`mint.http.request`.
    """
    try:
        if scheme not in ("ws", "wss"):
            raise WebSocketError(("invalid_scheme_ws", scheme))
        offered = tuple(_handshake.normalize_extensions(extensions))
        session = conn._session
        if session.protocol == "http2":
            if not session.extended_connect_enabled:
                raise WebSocketError("extended_connect_disabled")
            request_headers = list(headers) + _handshake.http2_connect_headers(offered)
            ref = session.request("CONNECT", path, request_headers, STREAM, upgrade="websocket")
            info = _Upgrade("http2", None, offered)
        else:
            key = _handshake.new_key()
            request_headers = list(headers) + _handshake.http1_upgrade_headers(key, offered)
            ref = session.request("GET", path, request_headers, None, upgrade="websocket")
            info = _Upgrade("http1", key, offered)
        conn._private.setdefault("upgrades", {})[ref] = info
        _conn._flush(conn)
    except MintError as exc:
        exc.conn = conn
        raise
    return conn, ref


def new(
    conn: Conn,
    ref: Ref,
    status: int,
    headers: list[tuple[str, str]],
    *,
    mode: str = "active",
    max_frame_size: int | None = None,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
) -> tuple[Conn, WebSocket]:
    """Check the server's answer and build the WebSocket value (Mint's ``new/5``).

    WebSocket bytes that arrived with the handshake (a ``Data(ref, ...)`` before
    ``Done(ref)``) are to be passed to :func:`decode` after this.

    Args:
        mode: the connection's mode, as Mint's option; informational, since the
            connection already knows it (``new`` does not change it).
        max_frame_size: the largest frame payload ``decode`` accepts (None: any).
        max_message_size: the largest message, after decompression, ``decode``
            assembles; over it gives ``"payload_too_large"`` inline.

    Raises:
        UpgradeFailureError: the status is not 101 (HTTP/1.1) or 2xx (HTTP/2).
        WebSocketError: ``"invalid_nonce"``, ``("extension_not_negotiated", ...)``, ...
    """
    try:
        if mode not in ("active", "passive"):
            raise WebSocketError(("invalid_mode", mode))
        info: _Upgrade | None = conn._private.get("upgrades", {}).get(ref)
        if info is None:
            raise WebSocketError(("not_upgraded", ref))
        if info.protocol == "http2":
            if not 200 <= status < 300:
                raise UpgradeFailureError(status, list(headers))
        else:
            if status != 101:
                raise UpgradeFailureError(status, list(headers))
            assert info.key is not None
            _handshake.check_http1_upgrade(status, list(headers), info.key)
        accepted = _handshake.negotiate_extensions(info.extensions, list(headers))
        websocket = new_websocket(
            extensions=accepted,
            max_frame_size=max_frame_size,
            max_message_size=max_message_size,
        )
    except MintError as exc:
        exc.conn = conn
        raise
    del conn._private["upgrades"][ref]
    return conn, websocket


def stream(conn: Conn, message: object) -> Any:
    """:func:`mint.http.stream` that keeps working on an upgraded HTTP/1.1 connection."""
    return _conn.stream(conn, message)


def recv(conn: Conn, byte_count: int, timeout: float | None) -> tuple[Conn, list[Any]]:
    """:func:`mint.http.recv` for WebSocket connections (passive mode)."""
    return _conn.recv(conn, byte_count, timeout)


def stream_request_body(conn: Conn, ref: Ref, data: bytes | object) -> Conn:
    """Send encoded frames on the WebSocket of ``ref`` (HTTP/1.1 or HTTP/2)."""
    return _conn.stream_request_body(conn, ref, data)


def cancel(conn: Conn, ref: Ref) -> Conn:
    """Abandon the HTTP/2 WebSocket of ``ref``: RST_STREAM(CANCEL) (RFC 8441, RFC 9113 8.7).

    After the close handshake (our Close went out with END_STREAM, theirs arrived),
    the server should end its side of the stream (``Done(ref)``). If it does not do
    so in the time the caller is willing to wait, the caller cancels the stream;
    the other streams of the connection go on::

        deadline = time.monotonic() + 5.0
        while not done and time.monotonic() < deadline:
            conn, responses = mint.websocket.stream(conn, mint.receive(timeout=...))
            done = Done(ref) in responses
        if not done:
            conn = mint.websocket.cancel(conn, ref)

    On HTTP/1.1 a WebSocket owns its connection: close it with
    :func:`mint.http.close` instead (this raises ``HTTPError("unsupported_on_http1")``).
    """
    return _conn.cancel_request(conn, ref)
