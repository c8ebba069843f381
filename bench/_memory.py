"""Memory per idle WebSocket connection, run by bench/run.py in a subprocess.

    python bench/_memory.py --client mint|websockets_sync|websockets_async --port P --n 10000

Opens one connection as a warm-up, reads RSS (/proc/self/statm), opens N more upgraded,
idle connections (mint: HTTP/1.1, passive), reads RSS again, prints
{"client", "n", "rss_before", "rss_after", "kib_per_conn"} as JSON. RLIMIT_NOFILE is
raised to its hard limit. Bounded by a deadline.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time

HOST = "127.0.0.1"
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def mint_open(port: int):
    import mint
    from mint.http import Done, Headers, Status

    conn = mint.http.connect("http", HOST, port, mode="passive")
    conn, ref = mint.websocket.upgrade("ws", conn, "/", [])
    status = headers = None
    done = False
    while not done:
        conn, responses = mint.websocket.recv(conn, 0, 30.0)
        for r in responses:
            if isinstance(r, Status):
                status = r.status
            elif isinstance(r, Headers):
                headers = r.headers
            elif isinstance(r, Done):
                done = True
    conn, ws = mint.websocket.new(conn, ref, status, headers, mode="passive")
    return (conn, ws)


def ws_sync_open(port: int):
    from websockets.sync.client import connect

    return connect(f"ws://{HOST}:{port}/", compression=None)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--client", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--deadline", type=float, default=240.0)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stop = time.monotonic() + a.deadline
    keep = []
    try:
        if a.client in ("mint", "websockets_sync"):
            opener = mint_open if a.client == "mint" else ws_sync_open
            keep.append(opener(a.port))
            gc.collect()
            before = rss()
            for _ in range(a.n):
                if time.monotonic() > stop:
                    raise TimeoutError(f"only {len(keep) - 1} connections in {a.deadline} s")
                keep.append(opener(a.port))
            gc.collect()
            after = rss()
        elif a.client == "websockets_async":
            import asyncio

            from websockets.asyncio.client import connect

            async def go():
                conns = [
                    await connect(f"ws://{HOST}:{a.port}/", compression=None, ping_interval=None)
                ]
                gc.collect()
                b = rss()
                for _ in range(a.n):
                    if time.monotonic() > stop:
                        raise TimeoutError(f"only {len(conns) - 1} connections in {a.deadline} s")
                    conns.append(
                        await connect(
                            f"ws://{HOST}:{a.port}/", compression=None, ping_interval=None
                        )
                    )
                gc.collect()
                await asyncio.sleep(0.2)
                return b, rss(), conns

            before, after, keep = asyncio.run(go())
        else:
            raise SystemExit(f"unknown client {a.client}")
    except Exception as exc:
        print(
            json.dumps(
                {"client": a.client, "error": f"{type(exc).__name__}: {exc}", "opened": len(keep)}
            )
        )
        os._exit(1)
    print(
        json.dumps(
            {
                "client": a.client,
                "n": a.n,
                "rss_before": before,
                "rss_after": after,
                "kib_per_conn": (after - before) / a.n / 1024,
                "nofile": [soft, hard],
            }
        )
    )
    sys.stdout.flush()
    os._exit(0)  # the connections go with the process (no 10k close handshakes)


if __name__ == "__main__":
    main()
