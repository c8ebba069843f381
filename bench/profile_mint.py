"""Profile mint's hot paths against the C echo server: where the time goes per message.

    bench/.venv/bin/python bench/profile_mint.py [--n 20000] [--mint-src head|tree|DIR]

Scenarios (16 B binary messages by default, ``--size`` for others): ping-pong passive (``mint.websocket.recv``), ping-pong
active (``mint.receive`` + ``mint.websocket.stream``), pipelined passive (100 in flight).
For each: client CPU µs per message without the profiler, then a cProfile run (CPU-time
timer, so time blocked in poll() does not count) with the
functions' own time (tottime) per message, in µs, so the shares can be compared (cProfile
inflates the cost of each Python call about 2x: compare shares, not absolute values).
Writes bench/reports/profile.md.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--mint-src", default="tree")
    ap.add_argument("--child", default="")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--size", type=int, default=16, help="payload bytes (default 16)")
    a = ap.parse_args()
    if a.child:
        return child(a)
    import run as harness

    label = harness.prepare_mint_src(a.mint_src)
    exe = harness.build_server()
    server = harness.Server([str(exe), "0"], "C echo server")
    out = [f"# mint hot-path profile (mint from {label}, {a.size} B messages, n={a.n})", ""]
    try:
        for scenario in (
            "pingpong_passive",
            "pingpong_active",
            "pipelined_passive",
            "pipelined_active",
        ):
            p = subprocess.run(
                [
                    "taskset",
                    "-c",
                    harness.CLIENT_CPU,
                    sys.executable,
                    __file__,
                    "--child",
                    scenario,
                    "--port",
                    str(server.ports[0]),
                    "--n",
                    str(a.n),
                    "--size",
                    str(a.size),
                ],
                capture_output=True,
                text=True,
                timeout=600,
                env={**os.environ, **harness.MINT_ENV},
            )
            out.append(p.stdout)
            if p.returncode:
                out.append("```\n" + p.stderr[-2000:] + "\n```")
    finally:
        server.stop()
    path = harness.REPORTS / "profile.md"
    path.write_text("\n".join(out))
    print("\n".join(out))
    return 0


def child(a) -> int:
    from _clients import MintActive, MintPassive

    scenario = a.child
    client = MintActive() if "active" in scenario else MintPassive()
    client.connect(a.port)
    payload = b"x" * a.size
    n = a.n

    def pingpong(count):
        send, recv = client.send, client.recv
        for _ in range(count):
            send(payload)
            recv()

    def pipelined(count):
        send, recv = client.send, client.recv
        sent = got = 0
        for _ in range(100):
            send(payload)
            sent += 1
        while got < sent:
            recv()
            got += 1
            if sent < count:
                send(payload)
                sent += 1

    fn = pipelined if scenario.startswith("pipelined") else pingpong
    fn(500)
    c0, t0 = time.process_time(), time.perf_counter()
    fn(n)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    prof = cProfile.Profile(time.process_time)  # CPU time: blocking in poll() is not cost
    prof.enable()
    fn(n)
    prof.disable()
    stats = pstats.Stats(prof)
    total = sum(v[2] for v in stats.stats.values())  # tottime
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:22]
    print(f"## {scenario}\n")
    print(
        f"Without profiler: {cpu / n * 1e6:.1f} µs CPU and {wall / n * 1e6:.1f} µs wall per message "
        f"({n / wall:,.0f} msg/s). Under cProfile: {total / n * 1e6:.1f} µs/msg of own time in total.\n"
    )
    print("| function (file:line) | calls/msg | own µs/msg | share | cumulative µs/msg |")
    print("|---|---|---|---|---|")
    for (file, line, name), (cc, nc, tt, ct, _callers) in rows:
        short = file.replace(str(Path(file).parents[2]) + "/", "") if "/" in file else file
        print(
            f"| `{name}` ({short}:{line}) | {nc / n:.2f} | {tt / n * 1e6:.2f} | {tt / total * 100:.1f}% | {ct / n * 1e6:.2f} |"
        )
    print()
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
