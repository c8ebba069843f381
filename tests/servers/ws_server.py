"""A ``websockets`` server in a background thread; what it does depends on the request path.

Paths:

* ``/echo``: echo every message (text stays text, binary stays binary).
* ``/greet``: the text "hello" goes out in the same write as the 101 (it is put in the body of
  the handshake response, which ``websockets`` serializes right after the head), then echo.
* ``/fragmented``: send "fragmented" as the text fragments "frag", "ment", "ed", then
  bytes 0..3 as the binary fragments ``00 01`` and ``02 03`` (FIN on each last fragment),
  then echo.
* ``/fragmented-iter``: the same through ``send(iterable)``, which ends each message with an
  extra empty continuation frame carrying FIN, then echo.
* ``/close``: after the first message, close with 1000 "bye".
* ``/ping``: send a ping with payload ``b"mint"``; when its pong comes, send the text "pong"
  and echo; with no pong in 10 s, close with 1011 "no pong".
* ``/headers``: send the request headers as one JSON text message (a list of
  ``[name, value]``), then echo.
* ``/forbidden``: answer 403 to the handshake.
* anything else: 404.

``requests`` keeps every handshake request (``websockets.http11.Request``: ``.path``,
``.headers``) and ``messages`` every message received as ``(path, message)``.
"""

from __future__ import annotations

import http
import json
import ssl
import threading
import urllib.parse
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from .peer import HOST, PeerAddressMixin
from .raw import OP_TEXT, frame

GREETING = "hello"
FRAGMENTS_TEXT = ["frag", "ment", "ed"]
FRAGMENTS_BINARY = [b"\x00\x01", b"\x02\x03"]
PING_PAYLOAD = b"mint"
PONG_TIMEOUT = 10.0
MAX_SIZE = 64 * 1024 * 1024

PATHS = {
    "/echo",
    "/greet",
    "/fragmented",
    "/fragmented-iter",
    "/close",
    "/ping",
    "/headers",
    "/forbidden",
}


def _path(request: Request) -> str:
    return urllib.parse.urlsplit(request.path).path


class WSServer(PeerAddressMixin):
    """A running ``websockets`` sync server (``host``, ``port``, ``scheme`` as a Peer).

    Args:
        compression: ``None`` (no permessage-deflate) or ``"deflate"``.
        ssl_context: A server context for wss, or ``None`` for ws.
        cafile: The CA PEM path for wss (given to tests as ``peer.cafile``).
    """

    def __init__(
        self,
        *,
        compression: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        cafile: str | None = None,
    ) -> None:
        self.compression = compression
        self.requests: list[Request] = []
        self.messages: list[tuple[str, str | bytes]] = []
        self._lock = threading.Lock()
        self.server: Server = serve(
            self._handler,
            HOST,
            0,
            compression=compression,
            ssl=ssl_context,
            process_request=self._process_request,
            process_response=self._process_response,
            open_timeout=30,  # generous: a loaded CI machine must not fail a handshake
            close_timeout=2,
            max_size=MAX_SIZE,
        )
        port = self.server.socket.getsockname()[1]
        tls = ssl_context is not None
        self.host = HOST
        self.port = port
        self.scheme = "https" if tls else "http"
        self.cafile = cafile
        self.server_hostname = "localhost" if tls else None
        self._thread = threading.Thread(
            target=self.server.serve_forever, name=f"websockets-{port}", daemon=True
        )
        self._thread.start()

    # -- recorded traffic -----------------------------------------------------------------------

    @property
    def last_request(self) -> Request:
        with self._lock:
            return self.requests[-1]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.messages.clear()

    # -- websockets hooks -----------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        with self._lock:
            self.requests.append(request)
        path = _path(request)
        if path == "/forbidden":
            return connection.respond(http.HTTPStatus.FORBIDDEN, "Forbidden\n")
        if path not in PATHS:
            return connection.respond(http.HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        if _path(request) == "/greet" and response.status_code == 101:
            # Response.serialize() appends the body to the head: the greeting frame leaves in
            # the same send as the 101. An uncompressed frame is valid with or without
            # permessage-deflate (RFC 7692 section 6: RSV1 clear means not compressed).
            response.body = frame(OP_TEXT, GREETING.encode())

    def _handler(self, ws: ServerConnection) -> None:
        path = _path(ws.request) if ws.request is not None else ""
        try:
            if path == "/fragmented":
                # Exact frames, FIN on the last fragment (compressed per frame with deflate).
                with ws.send_context():
                    ws.protocol.send_text(FRAGMENTS_TEXT[0].encode(), fin=False)
                    ws.protocol.send_continuation(FRAGMENTS_TEXT[1].encode(), fin=False)
                    ws.protocol.send_continuation(FRAGMENTS_TEXT[2].encode(), fin=True)
                with ws.send_context():
                    ws.protocol.send_binary(FRAGMENTS_BINARY[0], fin=False)
                    ws.protocol.send_continuation(FRAGMENTS_BINARY[1], fin=True)
            elif path == "/fragmented-iter":
                # websockets' own way: one frame per item, then an empty final continuation.
                ws.send(FRAGMENTS_TEXT)
                ws.send(FRAGMENTS_BINARY)
            elif path == "/close":
                self._record(path, ws.recv())
                ws.close(1000, "bye")
                return
            elif path == "/ping":
                if not ws.ping(PING_PAYLOAD).wait(PONG_TIMEOUT):
                    ws.close(1011, "no pong")
                    return
                ws.send("pong")
            elif path == "/headers":
                ws.send(json.dumps([[k, v] for k, v in ws.request.headers.raw_items()]))
            for message in ws:
                self._record(path, message)
                ws.send(message)
        except ConnectionClosed:
            pass

    def _record(self, path: str, message: Any) -> None:
        with self._lock:
            self.messages.append((path, message))

    def stop(self) -> None:
        self.server.shutdown()
        self._thread.join()
