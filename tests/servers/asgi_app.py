"""The ASGI app hypercorn serves in the integration tests (no framework, plain ASGI 3).

WebSocket paths (HTTP/1.1 upgrade, or RFC 8441 extended CONNECT over HTTP/2):

* ``/echo``: echo every message (text stays text, binary stays binary).
* ``/greet``: send the text "hello" right after accepting, then echo.
* ``/close``: after the first message, close with 1000 "bye".
* ``/headers``: send the request headers as one JSON text message (a list of
  ``[name, value]``, as hypercorn passed them), then echo.
* ``/forbidden``: reject with a 403 response (``websocket.http.response``), body "forbidden".
* anything else: close before accepting (hypercorn answers 403).

HTTP paths:

* ``GET /``: 200 "hello".
* ``POST /echo-body``: 200, the request body.
* ``GET /chunked``: 200, "chunk-0\\n" .. "chunk-4\\n" sent as five body messages (chunked
  transfer-encoding over HTTP/1.1, five DATA frames over HTTP/2).
* anything else: 404.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CHUNKS = [f"chunk-{i}\n".encode() for i in range(5)]
# A readiness hook for the launcher: called once lifespan startup is done.
on_startup: Callable[[], None] | None = None


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    elif scope["type"] == "http":
        await _http(scope, receive, send)
    elif scope["type"] == "websocket":
        await _websocket(scope, receive, send)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    return bytes(body)


async def _respond(send: Send, status: int, body: bytes, content_type: bytes = b"text/plain"):
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _http(scope: Scope, receive: Receive, send: Send) -> None:
    method, path = scope["method"], scope["path"]
    body = await _read_body(receive)
    if method == "GET" and path == "/":
        await _respond(send, 200, b"hello")
    elif method == "POST" and path == "/echo-body":
        await _respond(send, 200, body, b"application/octet-stream")
    elif method == "GET" and path == "/chunked":
        # No content-length: HTTP/1.1 falls back to chunked transfer-encoding.
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        for chunk in CHUNKS:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    else:
        await _respond(send, 404, b"not found")


async def _websocket(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    path = scope["path"]
    if path == "/forbidden":
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 403,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"9")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"forbidden"})
        return
    if path not in {"/echo", "/greet", "/close", "/headers"}:
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "websocket.accept"})
    if path == "/greet":
        await send({"type": "websocket.send", "text": "hello"})
    elif path == "/headers":
        headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
        await send({"type": "websocket.send", "text": json.dumps(headers)})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if path == "/close":
            await send({"type": "websocket.close", "code": 1000, "reason": "bye"})
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
