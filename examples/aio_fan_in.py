"""Many WebSockets, one event loop, one mailbox: a fan-in on asyncio.

Every connection is active and delivers to the running loop's default mailbox; one
task reads it and hands each message to its connection's ``stream`` (the message's
``socket`` says whose it is). No task per connection, no thread: the loop's readers
feed the mailbox.

    python examples/aio_fan_in.py ws://localhost:9000/ --count 500
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import mint
import mint.aio
from mint.http import Data, Done, Headers, Status
from mint.websocket import Close, Ping, Pong, Text


@dataclass
class Peer:
    """One connection's state, kept by the fan-in loop."""

    conn: Any
    ref: Any
    websocket: Any = None
    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    frames: list[Any] = field(default_factory=list)

    async def send(self, frame: Any) -> None:
        self.websocket, data = mint.aio.websocket.encode(self.websocket, frame)
        self.conn = await mint.aio.websocket.stream_request_body(self.conn, self.ref, data)


async def open_peer(url: str, limit: asyncio.Semaphore) -> Peer:
    parts = urlsplit(url)
    async with limit:  # connects in flight: be gentle with the server's accept queue
        conn = await mint.aio.http.connect(
            "https" if parts.scheme == "wss" else "http",
            parts.hostname or "localhost",
            parts.port or (443 if parts.scheme == "wss" else 80),
        )
    scheme: Literal["ws", "wss"] = "wss" if parts.scheme == "wss" else "ws"
    conn, ref = await mint.aio.websocket.upgrade(scheme, conn, parts.path or "/", [])
    return Peer(conn, ref)


async def dispatch(peers: dict[Any, Peer], timeout: float) -> Peer:
    """Read one message from the loop's mailbox and give it to its connection."""
    message = await mint.aio.receive(timeout=timeout)
    peer = peers[message.socket]  # type: ignore[attr-defined]
    result = await mint.aio.websocket.stream(peer.conn, message)
    assert result is not mint.UNKNOWN  # (the mailbox is the loop's, its sockets ours)
    peer.conn, responses = result
    for response in responses:
        match response:
            case Status(status=status):
                peer.status = status
            case Headers(headers=headers):
                peer.headers = headers
            case Done() if peer.websocket is None:
                peer.conn, peer.websocket = mint.aio.websocket.new(
                    peer.conn, peer.ref, peer.status or 0, peer.headers
                )
            case Data(data=data) if peer.websocket is not None:
                peer.websocket, frames = mint.aio.websocket.decode(peer.websocket, data)
                for frame in frames:
                    if isinstance(frame, Ping):
                        await peer.send(Pong(frame.data))  # the caller's job, as in Mint
                    else:
                        peer.frames.append(frame)
    return peer


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    started = time.monotonic()

    limit = asyncio.Semaphore(100)
    opened = await asyncio.gather(*(open_peer(args.url, limit) for _ in range(args.count)))
    peers = {mint.aio.http.get_socket(peer.conn): peer for peer in opened}
    while any(peer.websocket is None for peer in peers.values()):
        await dispatch(peers, timeout=10)
    print(f"{len(peers)} WebSockets open after {time.monotonic() - started:.2f} s")

    for i, peer in enumerate(peers.values()):
        await peer.send(Text(f"hello from {i}"))
    while sum(len(peer.frames) for peer in peers.values()) < len(peers):
        await dispatch(peers, timeout=10)
    print(f"{len(peers)} echoes after {time.monotonic() - started:.2f} s")

    for peer in peers.values():
        await peer.send(Close(1000, "bye"))
        peer.conn = await mint.aio.http.close(peer.conn)


if __name__ == "__main__":
    asyncio.run(main())
