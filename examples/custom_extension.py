"""A third-party WebSocket extension written against ``mint.websocket.Extension``.

``XorMask`` is a toy ("x-mint-xor"): it XORs every data message with a one-byte key
negotiated in the handshake, and marks the messages it transformed with RSV2. It shows
every part of the extension contract (see ``mint.websocket.extension``):

- ``name`` and ``rsv_bits``: the token offered in ``Sec-WebSocket-Extensions`` and the
  reserved bit the extension owns (RSV1 belongs to permessage-deflate, so it takes RSV2);
- ``params`` / ``offer_params()``: what goes into the offer (``x-mint-xor; key=42``);
- ``negotiate(answer)``: checks the server's answer and returns a *new*, initialized
  instance (never ``self``), or raises ``("extension_not_negotiated", name, detail)``;
- ``encode(message)``: transforms a whole outgoing data message and sets its bit;
- ``decode(message, limit)``: transforms a whole incoming message carrying its bit, clears
  the bit, and never produces more than ``limit`` bytes.

Run it (it starts two local ``websockets`` servers on loopback)::

    python examples/custom_extension.py

1. A stock ``websockets`` server with compression on: it does not know ``x-mint-xor`` and
   declines it, accepts ``permessage-deflate``; the WebSocket works with what was accepted.
2. A ``websockets`` server that also runs the server side of ``x-mint-xor`` (written
   against websockets' own extension API): both are accepted, and the messages travel
   XORed and deflated (RSV1 and RSV2 on the wire).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from websockets.extensions.base import Extension as WsExtension
from websockets.extensions.base import ServerExtensionFactory
from websockets.frames import CTRL_OPCODES, Frame
from websockets.sync.server import Server, ServerConnection, serve

import mint
from mint.http import Data, Done, Headers, Status
from mint.websocket import Binary, Close, Extension, PerMessageDeflate, Text
from mint.websocket.extension import RSV2, RawMessage

HOST = "127.0.0.1"


# ------------------------------------------------------------------ the client side (mint)


class XorMask(Extension):
    """XOR every data message with a negotiated key byte; claims RSV2.

    Params: ``("key", 1..255)``; the server answers with the same key (or none, which
    means "yes, that key"). Any other answer is refused.
    """

    name = "x-mint-xor"
    rsv_bits = RSV2

    def __init__(
        self, params: Sequence[str | tuple[str, str | int]] = (("key", 42),), opts: Any = None
    ) -> None:
        super().__init__(params, opts)
        keys = [value for param in self.params if isinstance(param, tuple) for value in param[1:]]
        if len(self.params) != 1 or len(keys) != 1 or not 1 <= int(keys[0]) <= 255:
            raise mint.WebSocketError(("invalid_extension", params))
        self.key = int(keys[0])

    def negotiate(self, params: list[tuple[str, str | None]]) -> XorMask:
        answered = dict(params)
        if set(answered) - {"key"} or len(params) != len(answered):
            raise mint.WebSocketError(("extension_not_negotiated", self.name, "unknown params"))
        if answered.get("key", str(self.key)) != str(self.key):
            raise mint.WebSocketError(("extension_not_negotiated", self.name, "another key"))
        ext = XorMask(self.params, self.opts)
        ext.accepted_params = params
        ext.state = {"sent": 0, "received": 0}  # per-connection state lives on the new instance
        return ext

    def encode(self, message: RawMessage) -> RawMessage:
        self.state["sent"] += 1
        return RawMessage(message.opcode, message.rsv | RSV2, xor(message.data, self.key))

    def decode(self, message: RawMessage, limit: int | None) -> RawMessage:
        # XOR does not grow the message, but an extension checks the limit before it
        # produces the output (an inflating one must stop as soon as it would exceed it).
        if limit is not None and len(message.data) > limit:
            raise mint.WebSocketError("payload_too_large", close_code=1009)
        self.state["received"] += 1
        return RawMessage(message.opcode, message.rsv & ~RSV2, xor(message.data, self.key))


def xor(data: bytes, key: int) -> bytes:
    return data.translate(bytes(b ^ key for b in range(256)))


# ------------------------------------------------------------------ the server side (websockets)


class _ServerXor(WsExtension):
    name = "x-mint-xor"  # type: ignore[assignment]

    def __init__(self, key: int) -> None:
        self.key = key

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        if frame.opcode in CTRL_OPCODES or not frame.rsv2:
            return frame
        return dataclasses.replace(frame, data=xor(bytes(frame.data), self.key), rsv2=False)

    def encode(self, frame: Frame) -> Frame:
        if frame.opcode in CTRL_OPCODES:
            return frame
        return dataclasses.replace(frame, data=xor(bytes(frame.data), self.key), rsv2=True)


class _ServerXorFactory(ServerExtensionFactory):
    name = "x-mint-xor"  # type: ignore[assignment]

    def process_request_params(self, params: Any, accepted_extensions: Any) -> Any:
        key = int(dict(params).get("key") or 7)
        return [("key", str(key))], _ServerXor(key)


@contextmanager
def echo_server(*, speaks_xor: bool) -> Iterator[Server]:
    def echo(ws: ServerConnection) -> None:
        for message in ws:
            ws.send(message)

    extensions = [_ServerXorFactory()] if speaks_xor else None
    server = serve(echo, HOST, 0, compression="deflate", extensions=extensions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()


# ------------------------------------------------------------------ a session, public API only


def session(port: int, extensions: list[Any], messages: list[Any]) -> dict[str, Any]:
    """Upgrade with ``extensions``, echo ``messages``, close; report what happened."""
    conn = mint.http.connect("http", HOST, port, mode="passive")
    conn, ref = mint.websocket.upgrade("ws", conn, "/", [], extensions=extensions)
    status, headers, done = None, [], False
    while not done:
        conn, responses = mint.websocket.recv(conn, 0, 5.0)
        for response in responses:
            match response:
                case Status(status=s):
                    status = s
                case Headers(headers=h):
                    headers = h
                case Done():
                    done = True
    assert status is not None
    conn, websocket = mint.websocket.new(conn, ref, status, headers, mode="passive")
    answer = [v for k, v in headers if k.lower() == "sec-websocket-extensions"]

    wire_bits = []
    echoed: list[Any] = []
    for message in messages:
        websocket, data = mint.websocket.encode(websocket, message)
        wire_bits.append(data[0] & 0x70)  # RSV1 0x40 (deflate), RSV2 0x20 (xor)
        conn = mint.websocket.stream_request_body(conn, ref, data)
    while len(echoed) < len(messages):
        conn, responses = mint.websocket.recv(conn, 0, 5.0)
        for response in responses:
            if isinstance(response, Data):
                websocket, frames = mint.websocket.decode(websocket, response.data)
                echoed += frames
    websocket, data = mint.websocket.encode(websocket, Close(1000, "done"))
    conn = mint.websocket.stream_request_body(conn, ref, data)
    mint.http.close(conn)
    return {
        "answer": answer,
        "extensions": [type(e).name for e in websocket.extensions],
        "wire_bits": wire_bits,
        "echoed": echoed,
        "xor_state": [e.state for e in websocket.extensions if isinstance(e, XorMask)],
    }


def main() -> list[dict[str, Any]]:
    messages = [Text("hello, extensions " * 20), Binary(bytes(range(256)) * 8)]
    offer = [(XorMask, [("key", 42)]), PerMessageDeflate]
    results = []
    with echo_server(speaks_xor=False) as stock:
        results.append(session(stock.socket.getsockname()[1], offer, messages))
    with echo_server(speaks_xor=True) as toy:
        results.append(session(toy.socket.getsockname()[1], offer, messages))
    for title, result in zip(["stock websockets", "websockets + x-mint-xor"], results, strict=True):
        print(f"-- {title}")
        print(f"   server answered: {result['answer']}")
        print(f"   negotiated:      {result['extensions']}")
        print(f"   RSV bits sent:   {[hex(b) for b in result['wire_bits']]}")
        print(f"   echo intact:     {result['echoed'] == messages}")
        print(f"   x-mint-xor state:{result['xor_state']}")
    return results


if __name__ == "__main__":
    main()
