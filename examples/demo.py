"""The demo: local echo servers, then client sessions over ws, wss and HTTP/2, printed as they go.

Run it with ``./scripts/demo``. The HTTP/1.1 server is the ``websockets`` library's;
the HTTP/2 one (RFC 8441 extended CONNECT, h2c and TLS) is ``hypercorn``; both on
loopback, with a throw-away certificate authority from ``trustme`` for TLS. The
clients are ``mint`` in active mode (mailbox) and passive mode (``recv``); the last
session multiplexes two WebSockets and a GET on one HTTP/2 connection.
"""

from __future__ import annotations

import asyncio
import socket
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
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
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
    cert.cert_chain_pems[0].write_to_path(str(Path(tmp.name) / "cert.pem"))
    cert.private_key_pem.write_to_path(str(Path(tmp.name) / "key.pem"))
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


async def _asgi_echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A tiny ASGI app: WebSocket echo with a greeting, and ``GET /`` answering "hello"."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send(
            {"type": "http.response.body", "body": b"hello over " + scope["http_version"].encode()}
        )
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "welcome"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        await send({"type": "websocket.send", **{k: v for k, v in message.items() if k != "type"}})


@contextmanager
def http2_server(certfile: str, keyfile: str) -> Iterator[tuple[int, int]]:
    """Hypercorn on two free ports: h2c (prior knowledge) and TLS (ALPN h2); yield the ports."""
    plain = socket.create_server(("127.0.0.1", 0))
    secure = socket.create_server(("127.0.0.1", 0))
    ports = (plain.getsockname()[1], secure.getsockname()[1])
    stop: list[Any] = []
    ready = threading.Event()

    def config(sock: socket.socket, tls: bool) -> Config:
        cfg = Config()
        cfg.bind = [f"fd://{sock.detach()}"]
        cfg.accesslog = None
        cfg.errorlog = None
        if tls:
            cfg.certfile, cfg.keyfile = certfile, keyfile
            cfg.alpn_protocols = ["h2"]
        return cfg

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        stop.append((loop, done))
        trigger = lambda: done  # noqa: E731 - hypercorn awaits what this returns
        servers = [
            hypercorn_serve(_asgi_echo, config(plain, False), shutdown_trigger=trigger),  # type: ignore[arg-type]
            hypercorn_serve(_asgi_echo, config(secure, True), shutdown_trigger=trigger),  # type: ignore[arg-type]
        ]
        loop.call_soon(ready.set)
        await asyncio.gather(*servers)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield ports
    finally:
        loop, done = stop[0]
        loop.call_soon_threadsafe(done.set_result, None)
        thread.join(10)


def run(url: str, *, cafile: str | None = None, passive: bool = False, http2: bool = False) -> None:
    mode = "passive" if passive else "active (mailbox)"
    print(f"\n== {url}  [{mode}{', HTTP/2' if http2 else ''}]")
    started = time.perf_counter()
    session, early = open_session(url, cafile=cafile, passive=passive, http2=http2)
    where = "with the handshake answer" if early else "after the handshake answer"
    greeting = early or session.receive()
    print(f"   upgraded over {mint.http.protocol(session.conn)}; greeting {greeting} came {where}")
    for frame in (Text("hello world"), Binary(bytes(range(8))), Text("ünïcödé ✓")):
        session.send(frame)
        print(f"   sent {frame!r:40} echoed {session.receive()}")
    session.send(Ping(b"are you there?"))
    print("   sent a ping (the loop swallows the server's pong)")
    session.send(Text("x" * 100_000))
    (big,) = session.receive()
    print(f"   100 kB text echoed intact: {big == Text('x' * 100_000)}")
    print(f"   close handshake, server replied {session.close()}")
    print(f"   session took {1000 * (time.perf_counter() - started):.1f} ms")


def multiplex(port: int) -> None:
    """Two WebSockets and a GET on one HTTP/2 connection (the point of RFC 8441)."""
    print(f"\n== two WebSockets and a GET multiplexed on one h2c connection (port {port})")
    conn = mint.http.connect("http", "127.0.0.1", port, protocols=("http2",), mode="passive")
    conn, first = mint.websocket.upgrade("ws", conn, "/one", [])
    conn, second = mint.websocket.upgrade("ws", conn, "/two", [])
    conn, get = mint.http.request(conn, "GET", "/", [])
    status: dict[Any, int] = {}
    headers: dict[Any, list[tuple[str, str]]] = {}
    body = b""
    sockets: dict[Any, Any] = {}
    frames: dict[Any, list[Any]] = {first: [], second: []}
    while len(sockets) < 2 or not body.endswith(b"2") or not all(frames.values()):
        conn, responses = mint.websocket.recv(conn, 0, 5)
        for response in responses:
            match response:
                case mint.http.Status(ref=ref, status=code):
                    status[ref] = code
                case mint.http.Headers(ref=ref, headers=hs) if ref in frames:
                    headers[ref] = hs
                    conn, sockets[ref] = mint.websocket.new(
                        conn, ref, status[ref], hs, mode="passive"
                    )
                case mint.http.Data(ref=ref, data=data) if ref == get:
                    body += data
                case mint.http.Data(ref=ref, data=data) if ref in sockets:
                    sockets[ref], decoded = mint.websocket.decode(sockets[ref], data)
                    frames[ref] += decoded
    print(f"   streams open at once: {mint.http.open_request_count(conn)}; GET body {body!r}")
    print(f"   greetings: {frames[first]} on one, {frames[second]} on the other")
    mint.http.close(conn)


def main() -> None:
    with echo_server() as (ws_port, wss_port, cafile):
        run(f"ws://127.0.0.1:{ws_port}/")
        run(f"ws://127.0.0.1:{ws_port}/", passive=True)
        run(f"wss://localhost:{wss_port}/", cafile=cafile)
        run(f"wss://localhost:{wss_port}/", cafile=cafile, passive=True)
        certdir = Path(cafile).parent
        with http2_server(str(certdir / "cert.pem"), str(certdir / "key.pem")) as (h2c, h2tls):
            run(f"ws://127.0.0.1:{h2c}/", http2=True)
            run(f"wss://localhost:{h2tls}/", cafile=cafile, passive=True, http2=True)
            multiplex(h2c)
    print("\ndemo finished")


if __name__ == "__main__":
    main()
