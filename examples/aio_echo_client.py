"""The seed's flow on asyncio: upgrade, send, receive, answer pings, close.

The same functions as ``examples/echo_client.py``, awaited: ``mint.aio.http`` and
``mint.aio.websocket`` mirror ``mint.http`` and ``mint.websocket``; ``encode``,
``decode`` and ``new`` are the very same functions. Active mode reads the running
loop's mailbox (``await mint.aio.receive()``); passive mode awaits ``recv``.

    python examples/aio_echo_client.py ws://localhost:9000/
    python examples/aio_echo_client.py wss://localhost:9443/ --cafile ca.pem --passive
    python examples/aio_echo_client.py ws://localhost:9000/ --http2
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, Literal
from urllib.parse import urlsplit

import mint
import mint.aio
from mint.http import Data, Done, Error, Headers, Status
from mint.websocket import Binary, Close, Ping, Pong, Text


class Session:
    """One WebSocket over one connection, driven by the caller's task."""

    def __init__(self, conn: Any, ref: Any, *, passive: bool) -> None:
        self.conn = conn
        self.ref = ref
        self.websocket: Any = None
        self.passive = passive
        self.closed = False
        self.pending: mint.MintError | None = None  # an error to raise after its responses
        # How the server ended the WebSocket's HTTP/2 stream, raised by the next receive.
        self.ended: mint.MintError | None = None

    # -- the two I/O steps ------------------------------------------------------------
    async def responses(self, timeout: float) -> list[Any]:
        # A read that ends in an error may have read responses before it (the last
        # message before a reset, the server's Close): they come in the error's
        # .responses. They are handled first, and the error is raised by the next call.
        if self.pending is not None:
            error, self.pending = self.pending, None
            raise error
        try:
            if self.passive:
                self.conn, responses = await mint.aio.websocket.recv(self.conn, 0, timeout)
                return responses
            while True:
                message = await mint.aio.receive(timeout=timeout)
                result = await mint.aio.websocket.stream(self.conn, message)
                if result is not mint.UNKNOWN:
                    self.conn, responses = result
                    return list(responses)
        except mint.MintError as error:
            if error.conn is not None:
                self.conn = error.conn
            if not error.responses:
                raise
            self.pending = error
            return error.responses

    async def send(self, frame: Any) -> None:
        self.websocket, data = mint.aio.websocket.encode(self.websocket, frame)
        self.conn = await mint.aio.websocket.stream_request_body(self.conn, self.ref, data)

    # -- the loop the library leaves to the caller ------------------------------------
    async def handle(self, frames: list[Any]) -> list[Any]:
        """Answer pings and closes; fail on inline errors; return the data frames."""
        messages = []
        for frame in frames:
            match frame:
                case Ping(data=payload):
                    await self.send(Pong(payload))
                case Close(code=code):
                    if not self.closed:
                        # RFC 6455 5.5.1: echo the status code in the reply.
                        await self.send(Close(code if code != 1005 else 1000))
                        self.closed = True
                    messages.append(frame)
                case mint.WebSocketError() as error:
                    await self.send(Close(error.close_code or 1002))
                    self.closed = True
                    raise error
                case Pong():
                    pass
                case _:
                    messages.append(frame)
        return messages

    async def receive(self, timeout: float = 5.0) -> list[Any]:
        """Wait for the next data frames (or the server's Close)."""
        while True:
            if self.ended is not None:
                raise self.ended
            messages: list[Any] = []
            for response in await self.responses(timeout):
                match response:
                    case Data(ref=r, data=data) if r == self.ref:
                        self.websocket, frames = mint.aio.websocket.decode(self.websocket, data)
                        messages += await self.handle(frames)
                    case Error(ref=r, error=error) if r == self.ref:
                        # HTTP/2: the server reset the WebSocket's stream (or the
                        # connection ended): raised once the frames before it are out.
                        self.closed, self.ended = True, error
                    case Done(ref=r) if r == self.ref:
                        # HTTP/2: the server ended the stream (after its Close, or not).
                        self.ended = mint.TransportError("closed")
            if messages:
                return messages

    async def close(self, timeout: float = 5.0) -> Close | None:
        """The close handshake: send Close, wait for the server's, then close."""
        reply = None
        if not self.closed:
            await self.send(Close(1000, "bye"))
            self.closed = True
            try:
                while reply is None:
                    for message in await self.receive(timeout):
                        if isinstance(message, Close):
                            reply = message
            except (mint.TransportError, TimeoutError):
                pass
        self.conn = await mint.aio.http.close(self.conn)
        return reply


async def open_session(
    url: str,
    *,
    cafile: str | None = None,
    http2: bool = False,
    passive: bool = False,
    timeout: float = 5.0,
) -> tuple[Session, list[Any]]:
    """Connect, upgrade and build the WebSocket; returns the session and early frames."""
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    mode: Literal["active", "passive"] = "passive" if passive else "active"
    conn = await mint.aio.http.connect(
        "https" if secure else "http",
        parts.hostname or "localhost",
        port,
        protocols=("http2",) if http2 else ("http1",),
        mode=mode,
        transport_opts={"cafile": cafile} if cafile else None,
    )
    conn, ref = await mint.aio.websocket.upgrade("wss" if secure else "ws", conn, path, [])
    session = Session(conn, ref, passive=passive)
    status, headers, early, done = None, None, b"", False
    while not done:
        for response in await session.responses(timeout):
            match response:
                case Status(ref=r, status=s) if r == ref:
                    status = s
                case Headers(ref=r, headers=h) if r == ref:
                    headers = h
                case Data(ref=r, data=d) if r == ref:
                    early += d
                case Done(ref=r) if r == ref:
                    done = True
        # On HTTP/2 a 2xx answer has no Done: the stream stays open for frames.
        # (A server may send no header but :status: the Headers is there, empty.)
        if status is not None and mint.aio.http.protocol(session.conn) == "http2":
            done = done or headers is not None
    assert status is not None and headers is not None
    session.conn, session.websocket = mint.aio.websocket.new(
        session.conn, ref, status, headers, mode=mode
    )
    frames: list[Any] = []
    if early:
        session.websocket, decoded = mint.aio.websocket.decode(session.websocket, early)
        frames = await session.handle(decoded)
    return session, frames


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--cafile")
    parser.add_argument("--http2", action="store_true")
    parser.add_argument("--passive", action="store_true")
    args = parser.parse_args()
    session, early = await open_session(
        args.url, cafile=args.cafile, http2=args.http2, passive=args.passive
    )
    for frame in early:
        print("early:", frame)
    for frame in (Text("hello world"), Binary(b"\x00\x01\x02")):
        if session.closed:  # the server closed first: its Close was among the frames
            break
        await session.send(frame)
        print("received:", await session.receive())
    print("server's close:", await session.close())


if __name__ == "__main__":
    asyncio.run(main())
