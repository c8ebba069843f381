"""The demo: a local echo server, then client sessions over ws and wss, printed as they go.

Run it with ``./scripts/demo``. The server is the ``websockets`` library's, on
loopback, with a throw-away certificate authority from ``trustme`` for wss; the
clients are ``mint`` in active mode (mailbox) and passive mode (``recv``).
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import trustme
from echo_client import open_session
from websockets.asyncio.server import ServerConnection, serve

import mint
from mint.websocket import Binary, Ping, Text


async def _echo(ws: ServerConnection) -> None:
    await ws.send("welcome")  # lands right behind the 101: the client decodes it after new()
    async for message in ws:
        await ws.send(message)


@contextmanager
def echo_server() -> Iterator[tuple[int, int, str]]:
    """Start ws and wss echo servers on free ports in a thread; yield (ws, wss, cafile)."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    tmp = tempfile.TemporaryDirectory()
    cafile = str(Path(tmp.name) / "ca.pem")
    ca.cert_pem.write_to_path(cafile)
    ready = threading.Event()
    ports: list[int] = []
    stop: list[Any] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        stop.append((loop, done))
        async with (
            serve(_echo, "127.0.0.1", 0, compression=None) as plain,
            serve(_echo, "127.0.0.1", 0, ssl=server_ctx, compression=None) as secure,
        ):
            ports.extend([plain.sockets[0].getsockname()[1], secure.sockets[0].getsockname()[1]])
            ready.set()
            await done

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield ports[0], ports[1], cafile
    finally:
        loop, done = stop[0]
        loop.call_soon_threadsafe(done.set_result, None)
        thread.join(10)
        tmp.cleanup()


def run(url: str, *, cafile: str | None = None, passive: bool = False) -> None:
    mode = "passive" if passive else "active (mailbox)"
    print(f"\n== {url}  [{mode}]")
    started = time.perf_counter()
    session, early = open_session(url, cafile=cafile, passive=passive)
    where = "in the same read as the 101" if early else "after the 101"
    greeting = early or session.receive()
    print(f"   upgraded over {mint.http.protocol(session.conn)}; greeting {greeting} came {where}")
    for frame in (Text("hello world"), Binary(bytes(range(8))), Text("ünïcödé ✓")):
        session.send(frame)
        print(f"   sent {frame!r:40} echoed {session.receive()}")
    session.send(Ping(b"are you there?"))
    print("   sent a ping (the server's pong is swallowed by the loop)")
    session.send(Text("x" * 100_000))
    (big,) = session.receive()
    print(f"   100 kB text echoed intact: {big == Text('x' * 100_000)}")
    print(f"   close handshake, server replied {session.close()}")
    print(f"   session took {1000 * (time.perf_counter() - started):.1f} ms")


def main() -> None:
    with echo_server() as (ws_port, wss_port, cafile):
        run(f"ws://127.0.0.1:{ws_port}/")
        run(f"ws://127.0.0.1:{ws_port}/", passive=True)
        run(f"wss://localhost:{wss_port}/", cafile=cafile)
        run(f"wss://localhost:{wss_port}/", cafile=cafile, passive=True)
    print("\ndemo finished")


if __name__ == "__main__":
    main()
