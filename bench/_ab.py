"""A/B two builds of mint, interleaved: is a change faster, on a machine that drifts?

    python bench/_ab.py --port 9000 --a /tmp/old/src --b src [--clients mint_passive,mint_aio]
        [--size 16] [--tls CAFILE]   (wss: a TLS echo server, e.g. node_tls_echo.js)

Why: the CPU cost of the same code drifts on this kind of host by more than the
change being measured (±10% over a minute is common), so two runs one after the
other rarely settle a 5% question. Here each side is a process of its own (its
``PYTHONPATH`` is that tree: a ``git archive`` of the old commit plus its built C
modules, say), both clients pinned to the same CPU and connected to the same echo
server, and they take turns: a slice of round trips by A, then one by B (the order
alternates every round), each timing its own slice with ``time.process_time()``. The
report is the median over rounds of B's CPU per round trip divided by A's, from
slices a fraction of a second apart, with the spread of those ratios.

The drivers are ``_paired.py``'s. The last line of stdout is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(key: str, kind: str, port: int, size: int, tls: str | None) -> int:
    """One side: connect, warm up, then run a slice per "go" line; print its CPU µs/rt."""
    sys.path.insert(0, str(HERE))
    import _clients
    from _clients import payload_of

    _clients.TLS_CAFILE = tls  # wss with this CA, as _paired.py --tls
    from _paired import make

    import mint

    driver = make(key, kind, port)
    driver.prepare(payload_of(size))
    print(json.dumps({"ready": mint.__file__}), flush=True)
    for line in sys.stdin:
        n = int(line)
        if n <= 0:
            break
        cpu, wall = driver.slice(n)
        print(json.dumps({"cpu_us": cpu / n * 1e6, "wall_us": wall / n * 1e6}), flush=True)
    driver.close()
    return 0


def spawn(
    tree: str, key: str, kind: str, port: int, size: int, cpu: str, tls: str | None
) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()))
    cmd = ["taskset", "-c", cpu, sys.executable, __file__, "--child", key, kind]
    cmd += ["--port", str(port), "--size", str(size)]
    if tls:
        cmd += ["--tls", tls]
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    print(f"  {tree}: mint from {ready['ready']}", file=sys.stderr)
    return proc


def ask(proc: subprocess.Popen[str], n: int) -> float:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(f"{n}\n")
    proc.stdin.flush()
    return float(json.loads(proc.stdout.readline())["cpu_us"])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--a", help="the baseline tree (a PYTHONPATH); required")
    ap.add_argument("--b", help="the changed tree (a PYTHONPATH); required")
    ap.add_argument("--clients", default="mint_passive,mint_active,mint_aio,mint_aio_uvloop")
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--slice", type=int, default=2000, help="round trips per slice")
    ap.add_argument("--cpu", default="0", help="the CPU both clients are pinned to")
    ap.add_argument("--tls", metavar="CAFILE", help="wss: the server's CA (ws without it)")
    ap.add_argument("--child", nargs=2, metavar=("KEY", "KIND"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], args.port, args.size, args.tls)
    if not (args.a and args.b):
        ap.error("--a and --b are required")

    report = {}
    for key in args.clients.split(","):
        # (the asyncio clients' loop: the active ones were run as "sync" before)
        kind = (
            "picows"
            if key == "picows"
            else "uvloop"
            if key.endswith("uvloop")
            else "asyncio"
            if key.startswith("mint_aio")
            else "sync"
        )
        a = spawn(args.a, key, kind, args.port, args.size, args.cpu, args.tls)
        b = spawn(args.b, key, kind, args.port, args.size, args.cpu, args.tls)
        ratios, a_us, b_us = [], [], []
        for r in range(args.rounds):
            if r % 2:
                ub, ua = ask(b, args.slice), ask(a, args.slice)
            else:
                ua, ub = ask(a, args.slice), ask(b, args.slice)
            a_us.append(ua)
            b_us.append(ub)
            ratios.append(ub / ua)
        for proc in (a, b):
            assert proc.stdin is not None
            proc.stdin.write("0\n")
            proc.stdin.close()
            proc.wait(timeout=30)
        ratios.sort()
        q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
        report[key] = {
            "a_cpu_us": statistics.median(a_us),
            "b_cpu_us": statistics.median(b_us),
            "ratio": statistics.median(ratios),
            "ratio_q1": q1,
            "ratio_q3": q3,
        }
        print(
            f"{key:18s} A {report[key]['a_cpu_us']:7.2f}  B {report[key]['b_cpu_us']:7.2f} µs/rt"
            f"  B/A {report[key]['ratio']:.3f} (quartiles {q1:.3f}–{q3:.3f})"
        )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
