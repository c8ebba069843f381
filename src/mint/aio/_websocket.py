"""The ``mint.aio.websocket`` functions that write or read a connection.

One source, two flavours: ``scripts/unasync.py`` generates the blocking
``mint/websocket/_io.py`` from ``mint/aio/_websocket.py`` (edit that one). ``new``
and the sans-IO half of ``upgrade`` are in ``mint/websocket/_api.py``;
``encode``/``decode`` are pure (``mint/websocket/_frame.py``). Both flavours share them.

Walkthrough::

    conn = await mint.aio.http.connect("http", "localhost", 9000)
    conn, ref = await mint.aio.websocket.upgrade("ws", conn, "/", [])
    conn, responses = await mint.aio.websocket.stream(conn, await mint.aio.receive())
    conn, websocket = mint.aio.websocket.new(conn, ref, status, headers)
    websocket, data = mint.aio.websocket.encode(websocket, Text("hello"))
    conn = await mint.aio.websocket.stream_request_body(conn, ref, data)
    conn, responses = await mint.aio.websocket.stream(conn, await mint.aio.receive())
    for response in responses:
        if isinstance(response, Data):
            websocket, frames = mint.aio.websocket.decode(websocket, response.data)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mint.aio import _http
from mint.errors import MintError
from mint.http._conn import Conn
from mint.http._types import Chunk, Ref
from mint.websocket._api import WebSocketScheme, forget_upgrade, start_upgrade


async def upgrade(
    scheme: WebSocketScheme,
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
        scheme: ``"ws"`` or ``"wss"``, usually the connection's ``http``/``https``. On
            HTTP/2 it is the extended CONNECT's ``:scheme`` (``http``/``https``, RFC 8441 4).
        extensions: extension classes, ``(cls, params)``, ``(cls, params, opts)``
            or ``Extension`` instances, offered in this order.

    Raises:
        WebSocketError: ``"extended_connect_disabled"`` when the HTTP/2 server did not
            enable extended CONNECT; ``("invalid_extension", item)`` for a bad item.
        HTTPError, TransportError: as :func:`mint.aio.http.request`.
    """
    _http._check_flavour(conn)
    ref = start_upgrade(scheme, conn, path, headers, extensions)
    try:
        await _http._sent_or_abandoned(conn, ref)
    except MintError as exc:
        forget_upgrade(conn, ref)
        exc.conn = conn
        raise
    except BaseException:
        forget_upgrade(conn, ref)  # (cancelled: the stream is reset, _forsaken)
        raise
    return conn, ref


# On a WebSocket these are the HTTP functions themselves (an upgraded HTTP/1.1
# connection reads and writes raw bytes there), not wrappers: one call less per
# frame on the hot path. Their docstrings say so.
stream = _http.stream
recv = _http.recv


async def stream_request_body(conn: Conn, ref: Ref, data: Chunk) -> Conn:
    """Send ``data``, frames from :func:`encode`, on the WebSocket of ``ref``.

    :func:`mint.aio.http.stream_request_body` under the argument name the contract
    gives this one (``data``, as Mint.WebSocket's), so a keyword call works; the HTTP
    function keeps ``chunk``. On an upgraded HTTP/1.1 connection the bytes go out as
    they are; on HTTP/2 they are the stream's DATA.

    Raises:
        HTTPError, TransportError: as :func:`mint.aio.http.stream_request_body`.
    """
    return await _http.stream_request_body(conn, ref, data)


async def cancel(conn: Conn, ref: Ref) -> Conn:
    """Abandon the HTTP/2 WebSocket of ``ref``: RST_STREAM(CANCEL) (RFC 8441, RFC 9113 8.7).

    After the close handshake (our Close went out, theirs arrived), the server should
    end its side of the stream (``Done(ref)``), and ours then ends too. If it does not do
    so in the time the caller is willing to wait, the caller cancels the stream;
    the other streams of the connection go on::

        deadline = time.monotonic() + 5.0
        while not done and time.monotonic() < deadline:
            conn, responses = await mint.aio.websocket.stream(conn, await mint.aio.receive(...))
            done = Done(ref) in responses
        if not done:
            conn = await mint.aio.websocket.cancel(conn, ref)

    On HTTP/1.1 a WebSocket owns its connection: close it with
    :func:`mint.aio.http.close` instead (this raises ``HTTPError("unsupported_on_http1")``).
    """
    conn = await _http.cancel_request(conn, ref)
    forget_upgrade(conn, ref)  # (one never taken by new)
    return conn
