"""Interleaved ping-pong: every client in one process, short slices taken in turn.

    python bench/_paired.py --port 9000 [--rounds 30] [--sizes 16,1048576]

Why: on a shared machine the CPU cost of the same code drifts by tens of percent
over seconds (other tenants, frequency, caches). ``_clients.py`` measures each client
in its own process, one after another, so a slow spell can land on one client and
not on the one it is compared with. Here every client holds its own connection to
the same echo server, in one process, and each round runs a slice of every client
back to back (the order rotates from round to round). A ratio is then taken per
round, between slices a fraction of a second apart, and the report gives the median
over the rounds: a drift slower than one round hits both sides of every ratio.

Only one client runs at a time, so ``time.process_time()`` around a slice is that
client's CPU (its event loop, if any, is idle between its slices). The clients are
``_clients.py``'s; the asyncio ones run on their own loop each (``run_until_complete``
per slice), picows on uvloop as in ``_clients.py``, and mint's asyncio flavour on
both loops. The last line of stdout is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _clients
from _clients import ASYNC, RECV_TIMEOUT, SYNC, payload_of, ssl_context, ws_url

# key -> (label, kind): kind picks the driver.
CLIENTS: list[tuple[str, str, str]] = [
    ("plain_socket", "plain socket (no WS work)", "sync"),
    ("plain_poll", "plain socket, epoll then recv (no WS work)", "sync"),
    ("plain_aio", "asyncio plain socket (no WS work)", "asyncio"),
    ("plain_aio_uvloop", "asyncio plain socket + uvloop (no WS work)", "uvloop"),
    ("mint_passive", "mint sync passive", "sync"),
    ("mint_active", "mint sync active (mailbox)", "sync"),
    ("mint_aio", "mint asyncio", "asyncio"),
    ("mint_aio_uvloop", "mint asyncio + uvloop", "uvloop"),
    ("mint_aio_active", "mint asyncio active (mailbox)", "asyncio"),
    ("mint_aio_active_uvloop", "mint asyncio active (mailbox) + uvloop", "uvloop"),
    ("websockets_sync", "websockets sync", "sync"),
    ("websockets_async", "websockets asyncio", "asyncio"),
    ("wsproto", "wsproto (blocking socket)", "sync"),
    ("aiohttp", "aiohttp", "asyncio"),
    ("picows", "picows + uvloop", "picows"),
    ("picows_await", "picows + uvloop, each echo awaited", "picows_await"),
    ("websocket_client", "websocket-client", "sync"),
]
WARM = 20


class SyncDriver:
    def __init__(self, key: str, port: int) -> None:
        self.client = SYNC[key]()
        self.client.connect(port)
        self.payload = b""

    def prepare(self, payload: bytes) -> None:
        self.payload = payload
        if hasattr(self.client, "prepare"):
            self.client.prepare(payload)
        for _ in range(WARM):
            self.client.send(payload)
            got = self.client.recv()
            if len(got) != len(payload):
                raise RuntimeError(f"echo of {len(payload)} B came back as {len(got)} B")

    def slice(self, n: int) -> tuple[float, float]:
        send, recv, payload = self.client.send, self.client.recv, self.payload
        c0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(n):
            send(payload)
            recv()
        return time.process_time() - c0, time.perf_counter() - t0

    def close(self) -> None:
        self.client.close()


class AsyncDriver:
    def __init__(self, key: str, port: int, uvloop: bool) -> None:
        if uvloop:
            import uvloop as _uvloop

            self.loop = _uvloop.new_event_loop()
        else:
            self.loop = asyncio.new_event_loop()
        self.client = ASYNC[key.replace("_uvloop", "")]()
        self.loop.run_until_complete(self.client.connect(port))
        self.payload = b""

    def prepare(self, payload: bytes) -> None:
        self.payload = payload

        async def warm() -> None:
            for _ in range(WARM):
                await self.client.send(payload)
                got = await self.client.recv()
                if len(got) != len(payload):
                    raise RuntimeError(f"echo of {len(payload)} B came back as {len(got)} B")

        self.loop.run_until_complete(warm())

    def slice(self, n: int) -> tuple[float, float]:
        async def run() -> tuple[float, float]:
            send, recv, payload = self.client.send, self.client.recv, self.payload
            c0 = time.process_time()
            t0 = time.perf_counter()
            for _ in range(n):
                await send(payload)
                await recv()
            return time.process_time() - c0, time.perf_counter() - t0

        return self.loop.run_until_complete(run())

    def close(self) -> None:
        self.loop.run_until_complete(self.client.close())
        self.loop.close()


class PicowsDriver:
    """picows is callback-driven: a slice is a chain of sends, each from the last echo."""

    def __init__(self, port: int) -> None:
        import uvloop
        from picows import WSListener, WSMsgType, ws_connect

        self.loop = uvloop.new_event_loop()
        self.binary = WSMsgType.BINARY
        driver = self

        class Listener(WSListener):  # type: ignore[misc]
            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                if frame.msg_type == WSMsgType.BINARY:
                    driver.on_echo(frame.get_payload_as_bytes())

        async def connect() -> Any:
            transport, _ = await ws_connect(
                Listener, ws_url(port), ssl_context=ssl_context(), max_frame_size=64 << 20
            )
            return transport

        self.transport = self.loop.run_until_complete(connect())
        self.payload = b""
        self.left = 0
        self.future: asyncio.Future[None] | None = None

    def on_echo(self, data: bytes) -> None:
        if len(data) != len(self.payload):
            assert self.future is not None
            self.future.set_exception(RuntimeError("bad echo size"))
            return
        self.left -= 1
        if self.left > 0:
            self.transport.send(self.binary, self.payload)
        elif self.future is not None and not self.future.done():
            self.future.set_result(None)

    def _run(self, n: int) -> None:
        async def run() -> None:
            self.future = self.loop.create_future()
            self.left = n
            self.transport.send(self.binary, self.payload)
            await asyncio.wait_for(self.future, RECV_TIMEOUT * 4)

        self.loop.run_until_complete(run())

    def prepare(self, payload: bytes) -> None:
        self.payload = payload
        self._run(WARM)

    def slice(self, n: int) -> tuple[float, float]:
        c0 = time.process_time()
        t0 = time.perf_counter()
        self._run(n)
        return time.process_time() - c0, time.perf_counter() - t0

    def close(self) -> None:
        self.transport.disconnect()
        self.loop.run_until_complete(asyncio.sleep(0.01))
        self.loop.close()


class PicowsAwaitDriver(PicowsDriver):
    """picows as a coroutine uses it: a task sends, then awaits the echo (a future the
    listener resolves), as ``await ws.recv()`` reads. What the callback chain above
    saves by never waking a task is then paid as every awaiting client pays it."""

    def on_echo(self, data: bytes) -> None:
        future = self.future
        if future is None or future.done():
            return
        if len(data) != len(self.payload):
            future.set_exception(RuntimeError("bad echo size"))
        else:
            future.set_result(None)

    def _run(self, n: int) -> None:
        async def run() -> None:
            send, binary, payload = self.transport.send, self.binary, self.payload
            create = self.loop.create_future
            for _ in range(n):
                self.future = future = create()
                send(binary, payload)
                await future

        self.loop.run_until_complete(asyncio.wait_for(run(), RECV_TIMEOUT * 4))


def make(key: str, kind: str, port: int) -> Any:
    if kind == "sync":
        return SyncDriver(key, port)
    if kind == "picows":
        return PicowsDriver(port)
    if kind == "picows_await":
        return PicowsAwaitDriver(port)
    return AsyncDriver(key, port, uvloop=kind == "uvloop")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sizes", default="16,1048576")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--slice-16", type=int, default=1000, help="round trips per 16 B slice")
    ap.add_argument("--slice-big", type=int, default=30, help="round trips per 1 MiB slice")
    ap.add_argument("--clients", default=",".join(k for k, _, _ in CLIENTS))
    ap.add_argument("--tls", metavar="CAFILE", help="wss: the server's CA (ws without it)")
    a = ap.parse_args()
    _clients.TLS_CAFILE = a.tls
    wanted = a.clients.split(",")
    drivers: dict[str, Any] = {}
    labels: dict[str, str] = {}
    errors: dict[str, str] = {}
    for key, label, kind in CLIENTS:
        if key not in wanted:
            continue
        try:
            drivers[key] = make(key, kind, a.port)
            labels[key] = label
        except Exception as exc:  # a peer that is not installed: reported, not fatal
            errors[key] = f"{type(exc).__name__}: {exc}"
    out: dict[str, Any] = {"labels": labels, "errors": errors, "sizes": {}}
    keys = list(drivers)
    for size in (int(s) for s in a.sizes.split(",")):
        n = a.slice_16 if size <= 1024 else a.slice_big
        payload = payload_of(size)
        for key in list(keys):
            try:
                drivers[key].prepare(payload)
            except Exception as exc:
                errors[key] = f"{type(exc).__name__}: {exc}"
                keys.remove(key)
        rounds: list[dict[str, dict[str, float]]] = []
        for r in range(a.rounds):
            order = keys[r % len(keys) :] + keys[: r % len(keys)]
            row: dict[str, dict[str, float]] = {}
            for key in order:
                cpu, wall = drivers[key].slice(n)
                row[key] = {"cpu_us": cpu / n * 1e6, "mbps": n * size / wall / 1e6}
            rounds.append(row)
        out["sizes"][str(size)] = {"slice": n, "rounds": rounds}
    for driver in drivers.values():
        try:
            driver.close()
        except Exception:
            pass  # the figures are taken; a peer that closes badly changes nothing
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
