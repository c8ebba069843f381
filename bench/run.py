"""mint-websocket benchmarks against the peers: one command, one report.

    bench/.venv/bin/python bench/run.py [--quick] [--only echo,paired,tls,codec,mask,h2,memory]

Writes bench/reports/latest.md and bench/reports/latest.json. See bench/README.md.
Servers are pinned to CPU 1, clients to CPU 0 (``taskset``); every figure is the median
of 3 runs (``--quick``: 1 run, shorter loops), each run's figure the best of its slices. Servers are always stopped on the way out.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REPORTS = HERE / "reports"
TMP = REPORTS / "tmp"
PY = sys.executable
SIZES = (16, 1024, 65536, 1048576)
CLIENT_CPU, SERVER_CPU = "0", "1"

CLIENTS = [  # (key, label)
    ("mint_passive", "mint sync passive"),
    ("mint_active", "mint sync active (mailbox)"),
    ("mint_aio", "mint asyncio"),
    ("plain_socket", "plain socket (no WS work)"),
    ("websockets_sync", "websockets sync"),
    ("websockets_async", "websockets asyncio"),
    ("wsproto", "wsproto (blocking socket)"),
    ("aiohttp", "aiohttp"),
    ("picows", "picows + uvloop"),
    ("websocket_client", "websocket-client"),
    ("mint_passive_tuned", "mint sync passive, glibc malloc tunables"),
]
LABEL = dict(CLIENTS)
MINTS = ("mint_passive", "mint_active", "mint_aio")
# The interleaved ping-pong (bench/_paired.py): mint's rows, and mint asyncio on uvloop
# beside them (picows runs on uvloop too).
PAIRED_MINTS = (
    "mint_passive",
    "mint_active",
    "mint_aio",
    "mint_aio_uvloop",
    "mint_aio_active",
    "mint_aio_active_uvloop",
)
# The interleaved rows checked against the issue's targets: the clients it names (sync
# passive, sync active, asyncio). asyncio's active mode is shown beside its floor only.
TARGET_MINTS = PAIRED_MINTS[:4]
# Clients run with extra environment: not peers (no ratio rows), shown for what a user
# can set. glibc gives a freed buffer above its trim threshold back to the kernel and
# faults the pages in again for the next one; a process that moves large messages can
# keep them (a process-wide choice, so mint itself never makes it).
GLIBC_TUNABLES = "glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=33554432"
CLIENT_ENV = {"mint_passive_tuned": {"GLIBC_TUNABLES": GLIBC_TUNABLES}}
CODEC_LABEL = {
    "mint": "mint (C mask speedup)",
    "mint_pure": "mint (MINT_NO_SPEEDUPS=1)",
    "websockets": "websockets (ClientProtocol)",
    "wsproto": "wsproto (FrameProtocol)",
    "aiohttp": "aiohttp (Cython reader)",
    "aiohttp_py": "aiohttp (pure-Python reader)",
}


def log(*args: object) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


def human_size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB" if n >= 1024 else f"{n} B"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# ------------------------------------------------------------------------------ servers
class Server:
    """A child process pinned to the server CPU; READY line parsed; always stopped."""

    def __init__(self, argv: list[str], name: str):
        self.name = name
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = ""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY") or not line:
                break
        if not line.startswith("READY"):
            self.stop()
            raise RuntimeError(f"{name} did not start: {line!r}")
        self.ports = [int(p) for p in line.split()[1:]]
        self.pid = self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # both servers stop at end of stdin
            except OSError:
                pass
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def build_server() -> Path:
    TMP.mkdir(parents=True, exist_ok=True)
    exe = TMP / "echo_server"
    subprocess.run(["gcc", "-O3", "-o", str(exe), str(HERE / "echo_server.c")], check=True)
    return exe


MINT_ENV: dict = {}  # PYTHONPATH of the mint source measured (see --mint-src)


def prepare_mint_src(choice: str) -> str:
    """Which mint the workers import: the work tree (editable install), HEAD, or a path."""
    if choice == "tree":
        src = ROOT / "src"
        label = "work tree"
    elif choice == "head":
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dest = TMP / "mint-head"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", "HEAD", "src"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        for so in (ROOT / "src" / "mint").glob("*.so"):  # the C modules: built in place, not in git
            shutil.copy2(so, dest / "src" / "mint" / so.name)
        src = dest / "src"
        label = f"HEAD {commit} (snapshot)"
    else:
        src = Path(choice).resolve()
        label = str(src)
    MINT_ENV["PYTHONPATH"] = str(src)
    check = subprocess.run(
        [PY, "-c", "import mint, mint.websocket, mint.http"],
        env={**os.environ, **MINT_ENV},
        capture_output=True,
        text=True,
    )
    if check.returncode:
        raise SystemExit(
            f"mint from {label} does not import:\n{check.stderr[-800:]}\n"
            "(another engineer mid-edit? retry, or use --mint-src head)"
        )
    return label


def run_json(argv: list[str], timeout: float, env: dict | None = None) -> dict:
    """Run a worker pinned to the client CPU; its last stdout line is JSON."""
    try:
        p = subprocess.run(
            ["taskset", "-c", CLIENT_CPU, PY, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **MINT_ENV, **(env or {})},
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in p.stdout.strip().splitlines() if ln.startswith("{")]
    if not lines:
        return {"error": f"exit {p.returncode}: {p.stderr.strip()[-500:]}"}
    return json.loads(lines[-1])


# ------------------------------------------------------------------------- benchmarks
def bench_echo(cfg, raw) -> None:
    """Each client in its own process, one process per size: within a repetition, the
    clients of one size run back to back (a few seconds in all, the order rotating from
    one repetition to the next), so the figures a ratio compares are seconds apart, not
    the minutes a process measuring every size took (the same 16 B code moved by 10%
    between such windows). A repetition's processes are merged into one run per client."""
    exe = build_server()
    server = Server([str(exe), "0"], "C echo server")
    try:
        for rep in range(cfg.reps):
            merged: dict = {}
            shift = rep % len(CLIENTS)
            order = CLIENTS[shift:] + CLIENTS[:shift]
            for size in SIZES:
                log(f"echo run {rep + 1}/{cfg.reps}: {human_size(size)}")
                for key, label in order:
                    out = run_json(
                        [
                            "bench/_clients.py",
                            "--client",
                            key,
                            "--port",
                            str(server.ports[0]),
                            "--server-pid",
                            str(server.pid),
                            "--sizes",
                            str(size),
                            "--duration",
                            str(cfg.echo_duration),
                            "--rcvbuf",
                            str(cfg.rcvbuf),
                            "--window",
                            "100",
                        ],
                        timeout=300,
                        env=CLIENT_ENV.get(key),
                    )
                    if "error" in out:
                        log(f"  {key} ({label}), {human_size(size)}: {out['error']}")
                    run = merged.setdefault(key, {"client": key, "results": []})
                    if "results" in out:
                        run["results"].extend(out["results"])
                    else:
                        run.update({k: v for k, v in out.items() if k != "results"})
            for key, _label in CLIENTS:
                raw.setdefault("echo", {}).setdefault(key, []).append(merged[key])
    finally:
        server.stop()


def bench_codec(cfg, raw) -> None:
    runs = [
        ("plain", [], {}),
        # websockets again, in the same process and at the same sizes: the pure
        # fallback's ratio is taken against it (paired), not against another run.
        ("pure", ["--libs", "mint,websockets"], {"MINT_NO_SPEEDUPS": "1"}),
        ("deflate", ["--deflate"], {}),
    ]
    for rep in range(cfg.reps):
        for name, extra, env in runs:
            log(f"codec run {rep + 1}/{cfg.reps}: {name}")
            out = run_json(
                [
                    "bench/_codec.py",
                    "--what",
                    "codec",
                    "--duration",
                    str(cfg.codec_duration),
                    *extra,
                ],
                timeout=900,
                env=env,
            )
            raw.setdefault("codec", {}).setdefault(name, []).append(out)


def bench_mask(cfg, raw) -> None:
    for rep in range(cfg.reps):
        log(f"mask run {rep + 1}/{cfg.reps}")
        raw.setdefault("mask", []).append(
            run_json(
                ["bench/_codec.py", "--what", "mask", "--duration", str(cfg.codec_duration)],
                timeout=300,
            )
        )


def bench_h2(cfg, raw) -> None:
    node_dir = ROOT / "tests" / "servers" / "node"
    if not shutil.which("node"):
        raw["h2"] = {"skip": "node is not installed"}
        return
    if not (node_dir / "node_modules").exists():
        log("npm ci in tests/servers/node")
        subprocess.run(["npm", "ci", "--silent"], cwd=node_dir, check=False, timeout=300)
    try:
        server = Server(["node", str(HERE / "node_echo.js")], "Node echo")
    except Exception as exc:
        raw["h2"] = {"skip": f"Node echo server: {exc}"}
        return
    try:
        h2port, h1port = server.ports
        for rep in range(cfg.reps):
            for key, port in (("mint_h2", h2port), ("mint_h1node", h1port)):
                log(f"h2 run {rep + 1}/{cfg.reps}: {key}")
                out = run_json(
                    [
                        "bench/_clients.py",
                        "--client",
                        key,
                        "--port",
                        str(port),
                        "--server-pid",
                        str(server.pid),
                        "--duration",
                        str(cfg.echo_duration),
                        "--sizes",
                        "65536,1048576",
                        "--rcvbuf",
                        str(cfg.rcvbuf),
                        "--window",
                        "10",
                    ],
                    timeout=300,
                )
                raw.setdefault("h2", {}).setdefault(key, []).append(out)
    finally:
        server.stop()


TLS_CLIENTS = (
    "mint_passive,mint_active,mint_aio,mint_aio_uvloop,websockets_sync,websockets_async,"
    "aiohttp,picows,websocket_client"
)


def bench_tls(cfg, raw) -> None:
    """wss ping-pong, interleaved as ``paired``, against Node's ``ws`` on ``https``
    (a trustme certificate), the clients that speak TLS."""
    node_dir = ROOT / "tests" / "servers" / "node"
    if not shutil.which("node"):
        raw["tls"] = {"error": "node is not installed"}
        return
    try:
        import trustme
    except ImportError:
        raw["tls"] = {"error": "trustme is not installed (bench/requirements.txt)"}
        return
    if not (node_dir / "node_modules").exists():
        log("npm ci in tests/servers/node")
        subprocess.run(["npm", "ci", "--silent"], cwd=node_dir, check=False, timeout=300)
    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        chain, key, cafile = (os.path.join(tmp, n) for n in ("chain.pem", "key.pem", "ca.pem"))
        with open(chain, "wb") as f:
            f.write(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        cert.private_key_pem.write_to_path(key)
        ca.cert_pem.write_to_path(cafile)
        try:
            server = Server(["node", str(HERE / "node_tls_echo.js"), chain, key], "Node TLS echo")
        except Exception as exc:
            raw["tls"] = {"error": f"Node TLS echo server: {exc}"}
            return
        try:
            log(f"wss ping-pong: {cfg.paired_rounds} rounds, every client in one process")
            raw["tls"] = run_json(
                [
                    "bench/_paired.py",
                    "--port",
                    str(server.ports[0]),
                    "--tls",
                    cafile,
                    "--sizes",
                    "16,65536",
                    "--rounds",
                    str(cfg.paired_rounds),
                    "--clients",
                    TLS_CLIENTS,
                    "--slice-16",
                    "100" if cfg.quick else "300",
                    "--slice-big",
                    "5" if cfg.quick else "30",
                ],
                timeout=900,
            )
        finally:
            server.stop()


def bench_memory(cfg, raw) -> None:
    exe = build_server()
    for key in ("mint", "websockets_sync", "websockets_async"):
        server = Server([str(exe), "0"], "C echo server")
        try:
            log(f"memory: {cfg.mem_n} idle connections, {key}")
            raw.setdefault("memory", {})[key] = run_json(
                [
                    "bench/_memory.py",
                    "--client",
                    key,
                    "--port",
                    str(server.ports[0]),
                    "--n",
                    str(cfg.mem_n),
                    "--deadline",
                    "150",
                ],
                timeout=240,
            )
        finally:
            server.stop()
        time.sleep(1.0)


def bench_paired(cfg, raw) -> None:
    exe = build_server()
    server = Server([str(exe), "0"], "C echo server")
    try:
        log(f"interleaved ping-pong: {cfg.paired_rounds} rounds, every client in one process")
        raw["paired"] = run_json(
            [
                "bench/_paired.py",
                "--port",
                str(server.ports[0]),
                "--rounds",
                str(cfg.paired_rounds),
                *(["--slice-16", "200", "--slice-big", "5"] if cfg.quick else []),
            ],
            timeout=900,
        )
        if "error" in raw["paired"]:
            log(f"  interleaved ping-pong: {raw['paired']['error']}")
    finally:
        server.stop()


# ---------------------------------------------------------------------------- reduce
def reduce_paired(raw_paired: dict) -> dict:
    """Per size: each client's median over rounds, and mint ÷ peer as the median of
    the per-round ratios (slices of one round are a fraction of a second apart)."""
    if "error" in raw_paired:
        return {"error": raw_paired["error"]}
    out: dict = {"labels": raw_paired["labels"], "errors": raw_paired["errors"], "sizes": {}}
    for size, block in raw_paired["sizes"].items():
        rounds = [r for r in block["rounds"] if r]
        keys = list(raw_paired["labels"])
        cell: dict = {"slice": block["slice"], "rounds": len(rounds), "clients": {}, "ratios": {}}
        for key in keys:
            if all(key in r for r in rounds):
                cell["clients"][key] = {
                    m: median([r[key][m] for r in rounds]) for m in ("cpu_us", "mbps")
                }
        for m in PAIRED_MINTS:
            if m not in cell["clients"]:
                continue
            for key in cell["clients"]:
                cell["ratios"][f"{m}/{key}"] = {
                    metric: median([r[m][metric] / r[key][metric] for r in rounds])
                    for metric in ("cpu_us", "mbps")
                }
        out["sizes"][size] = cell
    return out


def reduce_echo(raw_echo: dict) -> dict:
    """{client: {(mode, size): {metric: median}}} plus errors/skips."""
    out = {}
    for key, runs in raw_echo.items():
        cells: dict = {}
        notes = [r.get("error") or r.get("skip") for r in runs]
        for r in runs:
            for m in r.get("results", []):
                cell = cells.setdefault(f"{m['mode']}:{m['size']}", {})
                for metric in ("rate", "cpu_us", "mbps", "server_cpu"):
                    cell.setdefault(metric, []).append(m[metric])
        out[key] = {
            "cells": {k: {mt: median(v) for mt, v in c.items()} for k, c in cells.items()},
            "runs": len(runs),
            "notes": [n for n in notes if n],
        }
    return out


def reduce_codec(raw_codec: dict) -> dict:
    """{(lib, deflate): {size: {metric: median}}}, notes."""
    table: dict = {}
    notes: set = set()
    paired: dict = {}  # (op): [mint pure ÷ websockets, per run, 16 B]
    for name, runs in raw_codec.items():
        for run in runs:
            notes.update(run.get("notes", []))
            if "error" in run:
                notes.add(f"codec run {name}: {run['error']}")
            if name == "pure":
                rows16 = {
                    r["lib"]: r
                    for r in run.get("codec", [])
                    if r.get("size") == 16 and "error" not in r
                }
                if "mint" in rows16 and "websockets" in rows16:
                    for op, key in (("decode", "decode_x1"), ("encode", "encode")):
                        theirs = rows16["websockets"].get(key)
                        if theirs:
                            paired.setdefault(op, []).append(
                                (rows16["mint"].get(key), theirs, rows16["mint"].get(key) / theirs)
                            )
            for row in run.get("codec", []):
                if name == "pure" and row["lib"] != "mint":
                    continue  # only the pairing above uses the peers of the pure run
                lib = "mint_pure" if name == "pure" else row["lib"]
                k = f"{lib}:{'deflate' if row.get('deflate') else 'plain'}"
                if "error" in row:
                    table.setdefault(k, {})["error"] = row["error"]
                    continue
                cell = table.setdefault(k, {}).setdefault(str(row["size"]), {"batch": row["batch"]})
                for metric in ("decode_x1", "decode_xN", "encode"):
                    cell.setdefault(metric + "_all", []).append(row.get(metric))
    for k, sizes in table.items():
        for size, cell in sizes.items():
            if size == "error":
                continue
            for metric in ("decode_x1", "decode_xN", "encode"):
                cell[metric] = median(cell.pop(metric + "_all", []))
    pure_pairs = {
        op: {
            "mint": median([m for m, _, _ in v]),
            "peer": median([w for _, w, _ in v]),
            "ratio": median([r for _, _, r in v]),
        }
        for op, v in paired.items()
    }
    return {"table": table, "notes": sorted(notes), "pure_pairs": pure_pairs}


def reduce_mask(runs: list) -> list:
    rows: dict = {}
    for run in runs:
        for r in run.get("mask", []):
            rows.setdefault(r["name"], []).append(r.get("gbps"))
    return [{"name": n, "gbps": median(v)} for n, v in rows.items()]


# ---------------------------------------------------------------------------- report
def fmt(v, kind="rate"):
    if v is None:
        return "–"
    if kind == "ratio":
        return f"{v:.2f}×"
    if kind == "pct":
        return f"{v * 100:.0f}%"
    if v >= 100_000:
        return f"{v / 1000:,.0f}k"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def echo_section(echo: dict, mode: str, metric: str, title: str, lower_better: bool) -> list[str]:
    present = [k for k, _ in CLIENTS if k in echo and echo[k]["cells"]]
    lines = [f"### {title}", ""]
    header = ["client"] + [human_size(s) for s in SIZES]
    rows = []
    for k in present:
        c = echo[k]["cells"]
        rows.append([LABEL[k]] + [fmt(c.get(f"{mode}:{s}", {}).get(metric)) for s in SIZES])
    lines += md_table(header, rows)
    mints = [m for m in MINTS if m in present]
    if mints:
        lines += [
            "",
            f"Ratio mint ÷ peer ({'lower' if lower_better else 'higher'} is better for mint):",
            "",
        ]
        header = ["peer"] + [f"{human_size(s)} {m.split('_')[1]}" for s in SIZES for m in mints]
        rows = []
        for k in present:
            if k in MINTS or k in CLIENT_ENV:
                continue
            peer = echo[k]["cells"]
            rows.append(
                [LABEL[k]]
                + [
                    fmt(
                        ratio(
                            echo[m]["cells"].get(f"{mode}:{s}", {}).get(metric),
                            peer.get(f"{mode}:{s}", {}).get(metric),
                        ),
                        "ratio",
                    )
                    for s in SIZES
                    for m in mints
                ]
            )
        lines += md_table(header, rows)
    lines.append("")
    return lines


def tunables_section(echo: dict) -> list[str]:
    """Large messages with and without glibc's allocator keeping freed buffers."""
    tuned = echo.get("mint_passive_tuned", {}).get("cells")
    base = echo.get("mint_passive", {}).get("cells")
    picows = echo.get("picows", {}).get("cells")
    if not tuned or not base:
        return []
    lines = [
        "### Large messages and glibc's allocator",
        "",
        f"`mint sync passive` again with `GLIBC_TUNABLES={GLIBC_TUNABLES}` in its",
        "environment (no change to mint). Without it, each freed 1 MiB buffer goes back",
        "to the kernel and the next one faults its pages in again (about 256 faults per",
        "MiB); the API hands out three fresh objects per message (the encoded frame,",
        "the bytes read, the payload). Same run; ratios are mint ÷ picows.",
        "",
    ]
    header = [
        "figure",
        "size",
        "mint passive",
        "mint passive, tunables",
        "picows",
        "ratio",
        "ratio, tunables",
    ]
    rows = []
    for mode, metric, title in (
        ("pingpong", "cpu_us", "ping-pong CPU µs/rt (lower is better)"),
        ("pingpong", "mbps_pp", "ping-pong MB/s"),
        ("pipelined", "mbps", "pipelined MB/s"),
        ("pipelined", "cpu_us", "pipelined CPU µs/msg (lower is better)"),
    ):
        for size in (65536, 1048576):
            key = f"{mode}:{size}"

            def get(cells, key=key, metric=metric, size=size):
                cell = (cells or {}).get(key, {})
                if metric == "mbps_pp":
                    rate = cell.get("rate")
                    return rate * size / 1e6 if rate else None
                return cell.get(metric)

            b, t, w = get(base), get(tuned), get(picows)
            rows.append(
                [
                    title,
                    human_size(size),
                    fmt(b),
                    fmt(t),
                    fmt(w),
                    fmt(ratio(b, w), "ratio"),
                    fmt(ratio(t, w), "ratio"),
                ]
            )
    lines += md_table(header, rows)
    lines.append("")
    return lines


def server_share_section(echo: dict) -> list[str]:
    lines = ["### Echo server CPU share (utime+stime of the C server ÷ wall time, CPU 1)", ""]
    header = ["client"] + [
        f"{mode} {human_size(s)}" for mode in ("pingpong", "pipelined") for s in SIZES
    ]
    rows = []
    peak = 0.0
    for k, _ in CLIENTS:
        if k not in echo or not echo[k]["cells"]:
            continue
        c = echo[k]["cells"]
        vals = [
            c.get(f"{mode}:{s}", {}).get("server_cpu")
            for mode in ("pingpong", "pipelined")
            for s in SIZES
        ]
        peak = max([peak] + [v for v in vals if v is not None])
        rows.append([LABEL[k]] + [fmt(v, "pct") for v in vals])
    lines += md_table(header, rows)
    lines += [
        "",
        f"Peak server share: {peak * 100:.0f}% of one core (100% would mean the server is the bottleneck).",
        "",
    ]
    return lines


def codec_section(codec: dict, deflate: bool) -> list[str]:
    table = codec["table"]
    tag = "deflate" if deflate else "plain"
    libs = [lib for lib in CODEC_LABEL if f"{lib}:{tag}" in table]
    if not libs:
        return []
    lines = [
        f"### Codec {'with permessage-deflate ' if deflate else ''}(frames/s, in-process, no sockets)",
        "",
    ]
    header = ["library"] + [
        f"{op} {human_size(s)}" for op in ("decode ×1", "decode ×1000", "encode") for s in SIZES
    ]
    rows, errors = [], []
    for lib in libs:
        t = table[f"{lib}:{tag}"]
        if "error" in t and len(t) == 1:
            errors.append(f"- {CODEC_LABEL[lib]}: {t['error']}")
            continue
        rows.append(
            [CODEC_LABEL[lib]]
            + [
                fmt(t.get(str(s), {}).get(m))
                for m in ("decode_x1", "decode_xN", "encode")
                for s in SIZES
            ]
        )
    lines += md_table(header, rows)
    mint_rows = [
        m for m in ("mint", "mint_pure") if f"{m}:{tag}" in table and len(table[f"{m}:{tag}"]) > 1
    ]
    if mint_rows:
        lines += ["", "Ratio mint ÷ peer (higher is better for mint):", ""]
        header = ["mint build", "peer"] + [
            f"{op} {human_size(s)}" for op in ("dec ×1", "dec ×1000", "enc") for s in SIZES
        ]
        rows = []
        for m in mint_rows:
            mt = table[f"{m}:{tag}"]
            for lib in libs:
                if lib.startswith("mint") or len(table[f"{lib}:{tag}"]) <= 1:
                    continue
                pt = table[f"{lib}:{tag}"]
                rows.append(
                    [CODEC_LABEL[m], CODEC_LABEL[lib]]
                    + [
                        fmt(ratio(mt.get(str(s), {}).get(x), pt.get(str(s), {}).get(x)), "ratio")
                        for x in ("decode_x1", "decode_xN", "encode")
                        for s in SIZES
                    ]
                )
        lines += md_table(header, rows)
    if errors:
        lines += ["", *errors]
    lines += [
        "",
        "×1000: 1,000 frames per call (64 frames for 1 MiB: calls are capped at 64 MiB).",
        "",
    ]
    return lines


def paired_label(res: dict, key: str) -> str:
    return res.get("paired", {}).get("labels", {}).get(key, key)


PAIRED_INTRO = (
    "Each client holds its own connection to the same C echo server, in one process; "
    "each round runs one slice of every client back to back (the order rotates), so "
    "a ratio is taken between slices a fraction of a second apart and a slow spell of "
    "the machine hits both sides of it. Figures: the median over the rounds; ratios: "
    "the median of the per-round ratios (bench/README.md, Method)."
)
PAIRED_OUTRO = (
    "At 1 MiB the clients share one heap here, so how often the allocator hands "
    "pages back to the kernel (and faults them in again) depends on its neighbours: "
    "the per-process table above is the one to read for 1 MiB."
)
TLS_INTRO = (
    "The same interleaved slices over TLS (wss, TLS 1.3 as negotiated, no compression) "
    "against Node's `ws` on an `https` server (`bench/node_tls_echo.js`, a trustme "
    "certificate), every client that speaks TLS. Node, not the C epoll server: the figures "
    "are client CPU, comparable across the clients here, not with the sections above."
)
TLS_OUTRO = (
    "mint reads TLS through the `ssl` module's objects, the `SSLSocket`'s own `_ssl` "
    "object from its C paths (OpenSSL reads a record in two system calls, with no "
    "read-ahead; the records a burst finds are decrypted into one `bytes`); picows and "
    "aiohttp through asyncio's or uvloop's memory-BIO TLS; websockets' sync client "
    "through `SSLSocket` as well."
)


def paired_section(
    paired: dict,
    title: str = "## Ping-pong, interleaved: every client in one process, slices in turn",
    intro: str = PAIRED_INTRO,
    outro: str = PAIRED_OUTRO,
) -> list[str]:
    lines = [title, "", intro, ""]
    if "error" in paired:
        return [*lines, f"Not measured: {paired['error']}", ""]
    labels = paired["labels"]
    for size, cell in paired["sizes"].items():
        ratios = cell["ratios"]
        mints = [m for m in PAIRED_MINTS if m in cell["clients"]]
        head = [
            "client",
            "CPU µs/rt",
            "MB/s",
            *[f"{labels[m]} ÷ client, CPU" for m in mints[:1]],
            *[f"{labels[m]} ÷ client, MB/s" for m in mints[:1]],
        ]
        rows = []
        for key, c in cell["clients"].items():
            first = ratios.get(f"{mints[0]}/{key}", {}) if mints else {}
            rows.append(
                [
                    labels[key],
                    fmt(c["cpu_us"], "us"),
                    fmt(c["mbps"]),
                    fmt(first.get("cpu_us"), "ratio"),
                    fmt(first.get("mbps"), "ratio"),
                ]
            )
        lines += [
            f"### {human_size(int(size))}: {cell['rounds']} rounds of {cell['slice']} round trips per client",
            "",
            *md_table(head, rows),
            "",
        ]
    lines += [
        outro,
        *[f"- {labels.get(k, k)}: not measured: {e}" for k, e in paired.get("errors", {}).items()],
        "",
    ]
    return lines


def summary(res: dict) -> tuple[list[str], list[dict]]:
    checks = []
    echo = res.get("echo", {})
    codec = res.get("codec", {}).get("table", {})
    masks = {r["name"]: r["gbps"] for r in res.get("mask", [])}

    def e(client, mode, size, metric):
        return echo.get(client, {}).get("cells", {}).get(f"{mode}:{size}", {}).get(metric)

    def add(target, ours, theirs, op, factor, unit=""):
        if ours is None or theirs is None:
            checks.append({"target": target, "mint": ours, "peer": theirs, "status": "n/a"})
            return
        r = ours / theirs if theirs else None
        ok = (r <= factor) if op == "<=" else (r >= factor)
        checks.append(
            {
                "target": target,
                "mint": ours,
                "peer": theirs,
                "ratio": r,
                "status": "PASS" if ok else "MISS",
                "unit": unit,
            }
        )

    pairs = res.get("codec", {}).get("pure_pairs", {})
    for m in ("mint", "mint_pure"):
        for op, key in (("decode", "decode_x1"), ("encode", "encode")):
            pair = pairs.get(op) if m == "mint_pure" else None
            if pair is not None:
                # websockets measured in the same process as the fallback, in turns
                # with it slice by slice; the ratio is the median of the per-run ratios.
                checks.append(
                    {
                        "target": f"codec 16 B {op} ({CODEC_LABEL[m]}) ≥ 2× websockets (same process)",
                        "mint": pair["mint"],
                        "peer": pair["peer"],
                        "ratio": pair["ratio"],
                        "status": "PASS" if pair["ratio"] >= 2.0 else "MISS",
                        "unit": "frames/s",
                    }
                )
                continue
            ours = codec.get(f"{m}:plain", {}).get("16", {}).get(key)
            theirs = codec.get("websockets:plain", {}).get("16", {}).get(key)
            add(
                f"codec 16 B {op} ({CODEC_LABEL[m]}) ≥ 2× websockets",
                ours,
                theirs,
                ">=",
                2.0,
                "frames/s",
            )
    for m in MINTS:
        if m not in echo or not echo[m]["cells"]:
            continue
        ours = e(m, "pingpong", 16, "cpu_us")
        add(
            f"ping-pong 16 B CPU/rt ({LABEL[m]}) ≤ 1.1× plain socket",
            ours,
            e("plain_socket", "pingpong", 16, "cpu_us"),
            "<=",
            1.1,
            "µs",
        )
        add(
            f"ping-pong 16 B CPU/rt ({LABEL[m]}) ≤ picows",
            ours,
            e("picows", "pingpong", 16, "cpu_us"),
            "<=",
            1.0,
            "µs",
        )
        ours = e(m, "pipelined", 16, "rate")
        add(
            f"pipelined 16 B msg/s ({LABEL[m]}) ≥ 2× websockets sync",
            ours,
            e("websockets_sync", "pipelined", 16, "rate"),
            ">=",
            2.0,
            "msg/s",
        )
        add(
            f"pipelined 16 B msg/s ({LABEL[m]}) ≥ aiohttp",
            ours,
            e("aiohttp", "pipelined", 16, "rate"),
            ">=",
            1.0,
            "msg/s",
        )
        add(
            f"1 MiB echo MB/s pipelined ({LABEL[m]}) ≥ picows",
            e(m, "pipelined", 1048576, "mbps"),
            e("picows", "pipelined", 1048576, "mbps"),
            ">=",
            1.0,
            "MB/s",
        )
        add(
            f"1 MiB echo MB/s ping-pong ({LABEL[m]}) ≥ picows",
            e(m, "pingpong", 1048576, "mbps"),
            e("picows", "pingpong", 1048576, "mbps"),
            ">=",
            1.0,
            "MB/s",
        )
    paired = res.get("paired", {}).get("sizes", {})
    # 16 B only: at 1 MiB one shared heap changes what is measured (see paired_section).
    small = paired.get("16", {})
    for m in TARGET_MINTS:
        for peer, bound in (("plain_socket", 1.1), ("picows", 1.0)):
            r = small.get("ratios", {}).get(f"{m}/{peer}")
            if r is None:
                continue
            checks.append(
                {
                    "target": f"ping-pong 16 B CPU/rt, interleaved ({paired_label(res, m)}) "
                    f"≤ {'1.1× plain socket' if peer == 'plain_socket' else 'picows'}",
                    "mint": small["clients"][m]["cpu_us"],
                    "peer": small["clients"][peer]["cpu_us"],
                    "ratio": r["cpu_us"],
                    "status": "PASS" if r["cpu_us"] <= bound else "MISS",
                    "unit": "µs",
                }
            )
    c = next((v for k, v in masks.items() if k.startswith("mint C")), None)
    p = next((v for k, v in masks.items() if k.startswith("mint pure")), None)
    add("masking 1 MiB, mint C speedup ≥ 20 GB/s", c, 20.0, ">=", 1.0, "GB/s")
    add("masking 1 MiB, mint pure fallback ≥ 0.6 GB/s", p, 0.6, ">=", 1.0, "GB/s")
    w = next((v for k, v in masks.items() if k.startswith("wsproto")), None)
    add("masking 1 MiB, mint pure fallback ≥ wsproto (same run)", p, w, ">=", 1.0, "GB/s")
    lines = ["## Summary: the issue's targets", ""]
    rows = [
        [
            ch["target"],
            fmt(ch["mint"]),
            fmt(ch["peer"]),
            fmt(ch.get("ratio"), "ratio"),
            f"**{ch['status']}**",
        ]
        for ch in checks
    ]
    lines += md_table(["target", "mint", "peer / bound", "ratio", "status"], rows)
    lines.append("")
    lines += floors(small, res)
    return lines, checks


# mint's rows of the interleaved run that wait on a poll, each beside the client that
# waits the same way with no WebSocket work: the active (mailbox) client beside a plain
# socket read after an epoll_wait (_clients.PlainSocketPoll), the asyncio ones beside a
# plain socket awaited on the same loop (_clients.AsyncPlainSocket).
FLOORS = (
    ("mint_active", "plain_poll"),
    ("mint_aio", "plain_aio"),
    ("mint_aio_uvloop", "plain_aio_uvloop"),
    ("mint_aio_active", "plain_aio"),
    ("mint_aio_active_uvloop", "plain_aio_uvloop"),
)


def pair_rows(small: dict, res: dict, pairs) -> list[list[str]]:
    """One table row per (mint, peer) pair of the interleaved 16 B run: each one's CPU
    per round trip and the median of the per-round ratios."""
    rows = []
    for m, peer in pairs:
        r = small.get("ratios", {}).get(f"{m}/{peer}")
        if r is None:
            continue
        rows.append(
            [
                paired_label(res, m),
                fmt(small["clients"][m]["cpu_us"], "us"),
                paired_label(res, peer),
                fmt(small["clients"][peer]["cpu_us"], "us"),
                fmt(r["cpu_us"], "ratio"),
            ]
        )
    return rows


def floors(small: dict, res: dict) -> list[str]:
    """What the active and asyncio rows above are made of: each mint flavour against a
    plain socket that waits the same way (an epoll then a read; an await on the same
    loop) the cheapest way found. The gap to the blocking plain socket (a read that
    sleeps: two system calls a round trip, not three) and to picows (callbacks, no
    task wake-up) left above is the wait's, not the WebSocket's."""
    rows = pair_rows(small, res, FLOORS)
    if not rows:
        return []
    head = ["mint", "CPU µs/rt", "floor: same wait, no WS work", "CPU µs/rt", "ratio"]
    return [
        "### The active and asyncio rows against their floor (16 B ping-pong, interleaved)",
        "",
        "Not a target of the issue: what is left of the gaps above once the wait itself "
        "is paid. Each floor sends pre-built frame bytes and reads a fixed-size reply with "
        "no WebSocket work, waiting as the mint flavour beside it does: the active one "
        "calls `epoll_wait` before each read (`PlainSocketPoll`), as a mailbox does and "
        "as picows on uvloop does, where the blocking plain socket's read sleeps by itself; "
        "the asyncio ones await a future set by a loop reader (`AsyncPlainSocket`, both in "
        "`bench/_clients.py`). picows is callback-driven and pays no task wake-up.",
        "",
        *md_table(head, rows),
        "",
        *awaited(small, res),
    ]


# mint's asyncio rows beside picows used as a coroutine uses it (_paired.PicowsAwaitDriver).
AWAITED = ("mint_aio", "mint_aio_uvloop", "mint_aio_active", "mint_aio_active_uvloop")


def awaited(small: dict, res: dict) -> list[str]:
    """mint asyncio against picows when both wake a task per message: picows's row
    above sends each message from the callback of the last echo, which no ``await
    ws.recv()`` API can do."""
    rows = pair_rows(small, res, [(m, "picows_await") for m in AWAITED])
    if not rows:
        return []
    head = ["mint", "CPU µs/rt", "peer", "CPU µs/rt", "ratio"]
    return [
        "### The asyncio rows against picows awaited per message (16 B, interleaved)",
        "",
        "Not a target of the issue. `picows + uvloop, each echo awaited` is picows as a "
        "task uses it: send, then await a future its listener resolves with the echo "
        "(`PicowsAwaitDriver` in `bench/_paired.py`), as a coroutine awaiting "
        "`recv()` does; the picows row of the targets chains each send from the last "
        "echo's callback and never wakes a task.",
        "",
        *md_table(head, rows),
        "",
    ]


def write_report(cfg, raw: dict, res: dict, started: float) -> Path:
    lines = [
        "# mint-websocket benchmarks",
        "",
        f"Generated {datetime.datetime.now().isoformat(timespec='seconds')} by `bench/run.py{' --quick' if cfg.quick else ''}` "
        f"in {time.time() - started:.0f} s; {cfg.reps} run(s) per figure (median), "
        "each run's figure the best of its slices (see bench/README.md, Method). "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, Linux {platform.release()}. "
        f"Clients pinned to CPU {CLIENT_CPU}, servers to CPU {SERVER_CPU}. "
        + (
            f"Every client's TCP socket has a {cfg.rcvbuf} B receive buffer set after it "
            "connects (`--rcvbuf`; the kernel doubles it), which turns the kernel's "
            "autotuning off: autotuning settled the same 64 KiB pipelined client near "
            "2 or near 4.5 GB/s from one process to the next."
            if cfg.rcvbuf
            else "Receive buffers left to the kernel's autotuning (`--rcvbuf 0`): the "
            "pipelined rows of 64 KiB and more vary by up to 2x from one process to the next."
        ),
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in res.get("versions", {}).items()),
        "",
    ]
    load_end = os.getloadavg()
    # Only the load at the start says whether others were busy: by the end, the
    # benchmark's own client and server (about one CPU between them) are in it.
    lines += [
        f"Load average (1 min) at start {cfg.load_start[0]:.2f}, at end {load_end[0]:.2f} "
        "(the end counts this benchmark's own processes too: a client and a server add about 1.0)."
        + (
            " **Warning: other processes were using the CPUs when this run started; wall-clock "
            "rates (round trips/s, messages/s, MB/s) are unreliable, CPU µs less so. Re-run on "
            "an idle machine.**"
            if cfg.load_start[0] > 0.7
            else " The machine was idle at the start."
        ),
        "",
    ]
    if getattr(cfg, "reused", None):
        origins = ", ".join(f"{part} those of {cfg.reused_from[part]}" for part in cfg.reused)
        lines += [
            f"Measured again in this run: everything but {', '.join(cfg.reused)}, whose raw "
            f"figures are taken from an earlier run (`--reuse`): {origins}.",
            "",
        ]
    sum_lines, checks = summary(res)
    res["checks"] = checks
    lines += sum_lines
    echo = res.get("echo")
    if echo:
        lines += ["## Echo against the C epoll server (loopback)", ""]
        lines += echo_section(
            echo, "pingpong", "cpu_us", "Ping-pong: client CPU µs per round trip", True
        )
        lines += echo_section(echo, "pingpong", "rate", "Ping-pong: round trips/s", False)
        lines += echo_section(
            echo, "pipelined", "rate", "Pipelined (100 in flight, at most 8 MiB): messages/s", False
        )
        lines += echo_section(
            echo,
            "pipelined",
            "mbps",
            "Pipelined (100 in flight, at most 8 MiB): MB/s (payload, one direction)",
            False,
        )
        lines += echo_section(
            echo, "pipelined", "cpu_us", "Pipelined: client CPU µs per message", True
        )
        lines += server_share_section(echo)
        lines += tunables_section(echo)
        notes = [f"- {LABEL.get(k, k)}: {n}" for k, v in echo.items() for n in set(v["notes"])]
        if notes:
            lines += ["Clients not measured:", "", *notes, ""]
    if res.get("paired"):
        lines += paired_section(res["paired"])
    if res.get("tls"):
        lines += paired_section(
            res["tls"],
            "## wss ping-pong, interleaved (TLS, Node `ws` server)",
            TLS_INTRO,
            TLS_OUTRO,
        )
    codec = res.get("codec")
    if codec:
        lines += ["## Codec micro-benchmark", ""]
        lines += codec_section(codec, False)
        lines += codec_section(codec, True)
        lines += [
            "- picows: no public codec (frames are parsed inside `WSTransport.data_received`): not measured.",
            "- websockets' masking uses its C speedup (`websockets.speedups`), as installed.",
            *[f"- {n}" for n in codec["notes"]],
            "",
        ]
    if res.get("mask"):
        lines += ["## Masking 1 MiB (GB/s)", ""]
        lines += md_table(
            ["implementation", "GB/s"], [[r["name"], fmt(r["gbps"])] for r in res["mask"]]
        )
        lines.append("")
    h2 = res.get("h2")
    if h2:
        lines += [
            "## WebSocket over HTTP/2 (h2c, RFC 8441) vs HTTP/1.1, mint sync passive, same Node (`ws`) server",
            "",
        ]
        if "skip" in h2:
            lines += [f"Not measured: {h2['skip']}", ""]
        else:
            rows = []
            for key, label in (("mint_h2", "HTTP/2 (h2c)"), ("mint_h1node", "HTTP/1.1")):
                c = h2.get(key, {}).get("cells", {})
                rows.append(
                    [label]
                    + [
                        fmt(c.get(f"{m}:{s}", {}).get("mbps"))
                        for m in ("pingpong", "pipelined")
                        for s in (65536, 1048576)
                    ]
                    + [fmt(max([v.get("server_cpu") or 0 for v in c.values()] or [0]), "pct")]
                )
            h2c, h1c = (
                h2.get("mint_h2", {}).get("cells", {}),
                h2.get("mint_h1node", {}).get("cells", {}),
            )
            rows.append(
                ["ratio h2 ÷ h1"]
                + [
                    fmt(
                        ratio(
                            h2c.get(f"{m}:{s}", {}).get("mbps"), h1c.get(f"{m}:{s}", {}).get("mbps")
                        ),
                        "ratio",
                    )
                    for m in ("pingpong", "pipelined")
                    for s in (65536, 1048576)
                ]
                + [""]
            )
            lines += md_table(
                [
                    "protocol",
                    "echo MB/s 64 KiB",
                    "echo MB/s 1 MiB",
                    "10 in flight 64 KiB",
                    "10 in flight 1 MiB",
                    "peak Node CPU",
                ],
                rows,
            )
            notes = [n for k in ("mint_h2", "mint_h1node") for n in h2.get(k, {}).get("notes", [])]
            lines += [
                "",
                *[f"- {n}" for n in notes],
                "The Node server runs both listeners in one process (`bench/node_echo.js`); "
                "a Node CPU share near 100% means Node, not mint, bounds the figure.",
                "",
            ]
    mem = res.get("memory")
    if mem:
        lines += [
            f"## Memory per idle connection ({cfg.mem_n:,} upgraded idle connections in one process)",
            "",
        ]
        rows = []
        for key, label in (
            ("mint", "mint (HTTP/1.1, passive)"),
            ("websockets_sync", "websockets sync client"),
            ("websockets_async", "websockets asyncio client"),
        ):
            m = mem.get(key, {})
            if "error" in m:
                rows.append([label, "–", f"not measured: {m['error']}"])
            elif m:
                rows.append(
                    [
                        label,
                        f"{m['kib_per_conn']:.1f}",
                        f"RSS {m['rss_before'] / 2**20:.0f} → {m['rss_after'] / 2**20:.0f} MiB",
                    ]
                )
        lines += md_table(["client", "KiB per connection", "notes"], rows)
        mk = mem.get("mint", {}).get("kib_per_conn")
        for key in ("websockets_sync", "websockets_async"):
            pk = mem.get(key, {}).get("kib_per_conn")
            if mk and pk:
                lines.append(
                    f"\nmint ÷ {key.replace('_', ' ')}: {mk / pk:.2f}× (lower is better for mint)"
                )
        lines.append("")
    lines += [
        "## Method",
        "",
        "See bench/README.md. Client CPU = `time.process_time()` of the client process (all threads) ÷ "
        "messages; rates = messages ÷ wall time of the loop; every loop has a count cap and a deadline.",
        "",
    ]
    REPORTS.mkdir(parents=True, exist_ok=True)
    md = REPORTS / "latest.md"
    md.write_text("\n".join(lines))
    (REPORTS / "latest.json").write_text(
        json.dumps({"config": vars(cfg), "results": res, "raw": raw}, indent=1, default=str)
    )
    return md


def versions() -> dict:
    out = {}
    for dist in (
        "mint-websocket",
        "websockets",
        "wsproto",
        "aiohttp",
        "picows",
        "websocket-client",
        "uvloop",
        "h11",
        "h2",
    ):
        try:
            from importlib.metadata import version

            out[dist] = version(dist)
        except Exception:
            out[dist] = "not installed"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick", action="store_true", help="1 run per figure, short loops (~2-3 min smoke)"
    )
    ap.add_argument("--only", default="echo,paired,tls,codec,mask,h2,memory")
    ap.add_argument(
        "--reuse",
        default="",
        help="parts (e.g. codec,mask) whose raw figures are taken from the last "
        "reports/latest.json rather than measured again; the report says so",
    )
    ap.add_argument(
        "--mint-src",
        default="tree",
        help="tree (default: the work tree, as installed editable), head (a snapshot of HEAD), or a src dir",
    )
    ap.add_argument(
        "--rcvbuf",
        type=int,
        default=4 << 20,
        help="SO_RCVBUF set on every echo client's socket (bytes); 0 leaves autotuning on",
    )
    cfg = ap.parse_args()
    cfg.reps = 1 if cfg.quick else 3
    cfg.echo_duration = 0.25 if cfg.quick else 1.0
    cfg.codec_duration = 0.05 if cfg.quick else 0.3
    cfg.mem_n = 2000 if cfg.quick else 10000
    # 100 rounds: the per-round ratios of two 16 B clients spread by about ±8%
    # (quartiles); over 30 rounds their median still moved by 3-5% between runs.
    cfg.paired_rounds = 3 if cfg.quick else 100
    parts = cfg.only.split(",")
    if not shutil.which("taskset"):
        raise SystemExit("taskset (util-linux) is needed")
    started = time.time()
    cfg.load_start = os.getloadavg()
    if cfg.load_start[0] > 0.7:
        log(
            f"warning: the machine is busy (load average {cfg.load_start[0]:.2f}): other processes share the CPUs"
        )
    raw: dict = {}
    cfg.reused = [p for p in cfg.reuse.split(",") if p]
    if cfg.reused:
        previous = json.loads((REPORTS / "latest.json").read_text())
        stamp = (REPORTS / "latest.json").stat().st_mtime
        last_run = datetime.datetime.fromtimestamp(stamp).isoformat(timespec="seconds")
        # When each part was measured: the last run, or, for a part that run reused
        # too, the run it came from (one date per part; older reports kept one date).
        earlier = previous.get("config", {}).get("reused_from") or {}
        if not isinstance(earlier, dict):
            earlier = dict.fromkeys(previous.get("config", {}).get("reused") or [], earlier)
        cfg.reused_from = {part: earlier.get(part, last_run) for part in cfg.reused}
        for part in cfg.reused:
            if part in previous.get("raw", {}):
                raw[part] = previous["raw"][part]
    res: dict = {"versions": versions()}
    res["versions"]["mint source"] = prepare_mint_src(cfg.mint_src)
    log(f"mint from {res['versions']['mint source']}")
    try:
        if "echo" in parts:
            if "echo" not in raw:
                bench_echo(cfg, raw)
            res["echo"] = reduce_echo(raw["echo"])
        if "paired" in parts:
            if "paired" not in raw:
                bench_paired(cfg, raw)
            res["paired"] = reduce_paired(raw["paired"])
        if "tls" in parts:
            if "tls" not in raw:
                bench_tls(cfg, raw)
            res["tls"] = reduce_paired(raw["tls"])
        if "codec" in parts:
            if "codec" not in raw:
                bench_codec(cfg, raw)
            res["codec"] = reduce_codec(raw["codec"])
        if "mask" in parts:
            if "mask" not in raw:
                bench_mask(cfg, raw)
            res["mask"] = reduce_mask(raw["mask"])
        if "h2" in parts:
            if "h2" not in raw:
                bench_h2(cfg, raw)
            h2raw = raw.get("h2", {})
            res["h2"] = h2raw if "skip" in h2raw else reduce_echo(h2raw)
        if "memory" in parts:
            if "memory" not in raw:
                bench_memory(cfg, raw)
            res["memory"] = raw["memory"]
    finally:
        md = write_report(cfg, raw, res, started)
        log(f"wrote {md} and {md.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
