"""Run :mod:`asgi_app` under hypercorn on 127.0.0.1, on a port the OS picks.

Usage: python hypercorn_main.py [--certfile PEM --keyfile PEM]

The launcher binds and listens itself, hands the socket to hypercorn as ``fd://N`` (no port
race), and prints ``READY <port>`` when hypercorn logs that it serves. It stops on SIGTERM or
when stdin closes. Plain TCP serves HTTP/1.1 and h2c with prior knowledge (hypercorn switches on
the HTTP/2 preface); with a certificate it serves TLS with ALPN h2 and http/1.1. Over HTTP/2
hypercorn sends SETTINGS_ENABLE_CONNECT_PROTOCOL=1 (RFC 8441).

Known quirk (hypercorn 0.18, upstream pgjones/hypercorn#329): over HTTP/2, once the WebSocket
close handshake is done hypercorn forgets the stream without sending END_STREAM; a DATA frame
the client sends on it afterwards (even an empty one with END_STREAM) raises ``KeyError`` in
hypercorn and it drops the whole TCP connection. The traceback lands in the peer's log file.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
from typing import Any

from asgi_app import app
from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.logging import Logger


class ReadyLogger(Logger):
    """Hypercorn's logger, plus the readiness line once the server socket is served."""

    async def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        await super().info(message, *args, **kwargs)
        if message.startswith("Running on"):
            sys.stdout.write(f"READY {PORT}\n")
            sys.stdout.flush()


PORT = 0


def main() -> None:
    global PORT
    parser = argparse.ArgumentParser()
    parser.add_argument("--certfile")
    parser.add_argument("--keyfile")
    args = parser.parse_args()

    sock = socket.create_server(("127.0.0.1", 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    PORT = sock.getsockname()[1]

    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.logger_class = ReadyLogger
    config.errorlog = "-"  # stderr, which the fixture keeps in a log file
    config.accesslog = None
    config.graceful_timeout = 1.0
    config.keep_alive_timeout = 60
    if args.certfile:
        config.certfile = args.certfile
        config.keyfile = args.keyfile
        config.alpn_protocols = ["h2", "http/1.1"]

    asyncio.run(serve(app, config, shutdown_trigger=_shutdown_trigger))


class _StdinWatcher(asyncio.Protocol):
    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop.set()


async def _shutdown_trigger() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    # EOF on stdin: the test runner is gone (or stopped us); shut down.
    transport, _ = await loop.connect_read_pipe(lambda: _StdinWatcher(stop), sys.stdin)
    try:
        await stop.wait()
    finally:
        transport.close()


if __name__ == "__main__":
    main()
