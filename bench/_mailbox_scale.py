"""One active connection's 16 B round trip on a mailbox that also holds N idle ones.

    python bench/_mailbox_scale.py --port 9000 [--idle 0,100,1000,5000] [--rounds 3000]

Against the C echo server (``bench/echo_server.c``). Every connection is upgraded and
registered on one ``mint.Mailbox``; one of them then ping-pongs while the others stay
idle. What it shows: whether a mailbox wait costs more with more sockets (``poll``
walks them all on every wait, ``epoll`` does not; ``MINT_MAILBOX_POLL=1`` takes
``poll``). Prints client CPU and wall µs per round trip for each N.
"""

from __future__ import annotations

import argparse
import resource
import time
from typing import Any

import mint
from mint.http import Data, Done, Headers, Status
from mint.websocket import Binary


def open_all(port: int, count: int, box: mint.Mailbox) -> list[list[Any]]:
    """``count`` upgraded connections on ``box``: [conn, ref, websocket] each."""
    conns: list[list[Any]] = []
    for _ in range(count):
        conn = mint.http.connect("http", "127.0.0.1", port, mailbox=box)
        conn, ref = mint.websocket.upgrade("ws", conn, "/", [])
        conns.append([conn, ref, None])
    by_socket = {mint.http.get_socket(c[0]): c for c in conns}
    seen: dict[int, list[Any]] = {id(c): [] for c in conns}
    pending = count
    while pending:
        message = box.receive(10)
        c = by_socket[message.socket]  # type: ignore[attr-defined]
        c[0], responses = mint.websocket.stream(c[0], message)  # type: ignore[misc]
        seen[id(c)] += responses
        if any(isinstance(r, Done) for r in responses):
            status = next(r.status for r in seen[id(c)] if isinstance(r, Status))
            headers = next(r.headers for r in seen[id(c)] if isinstance(r, Headers))
            c[0], c[2] = mint.websocket.new(c[0], c[1], status, headers)
            pending -= 1
    return conns


def measure(port: int, idle: int, rounds: int) -> tuple[float, float]:
    box = mint.Mailbox()
    conns = open_all(port, idle + 1, box)
    conn, ref, ws = conns[0]

    def round_trip() -> None:
        nonlocal conn, ws
        ws, data = mint.websocket.encode(ws, Binary(b"x" * 16))
        conn = mint.websocket.stream_request_body(conn, ref, data)
        while True:
            result = mint.websocket.stream(conn, box.receive(5))
            assert result is not mint.UNKNOWN
            conn, responses = result
            for response in responses:
                if isinstance(response, Data):
                    ws, frames = mint.websocket.decode(ws, response.data)
                    if frames:
                        return

    for _ in range(500):
        round_trip()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        round_trip()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    for c in conns:
        mint.http.close(c[0])
    box.close()
    return cpu / rounds * 1e6, wall / rounds * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--idle", default="0,100,1000,5000")
    ap.add_argument("--rounds", type=int, default=3000)
    a = ap.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 20000 if hard == resource.RLIM_INFINITY else min(20000, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    for idle in (int(n) for n in a.idle.split(",")):
        cpu, wall = measure(a.port, idle, a.rounds)
        print(f"idle={idle:5d}: {cpu:7.1f} µs CPU/rt, {wall:7.1f} µs wall/rt", flush=True)


if __name__ == "__main__":
    main()
