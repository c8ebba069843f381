"""Run the Autobahn|Testsuite client conformance cases against a driver.

    .venv/bin/python compliance/run.py                       # every case, mint driver
    .venv/bin/python compliance/run.py --cases '1.*,6.4.*'   # a subset
    .venv/bin/python compliance/run.py --client reference    # the `websockets` reference driver

Writes a fuzzingserver spec on a free port, starts `wstest -m fuzzingserver` (installed by
compliance/install.sh), waits for its port, runs the driver (a subprocess), stops the server
(always), then summarises compliance/reports/clients/index.json. Exits 1 if any case is FAILED
or UNIMPLEMENTED (or missing from the report), or if the driver failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"
WSTEST = CACHE / "wstest-venv" / "bin" / "wstest"
OUTDIR_REL = "compliance/reports/clients"  # relative to ROOT, where wstest runs
OUTDIR = ROOT / OUTDIR_REL  # --outdir changes both
DRIVERS = {"mint": HERE / "client.py", "reference": HERE / "reference_client.py"}
BEHAVIORS = ["OK", "NON-STRICT", "INFORMATIONAL", "FAILED", "UNIMPLEMENTED"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"wstest exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"wstest did not listen on port {port} within {timeout} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def summarize(agent: str, wall: float, driver_rc: int | None) -> int:
    index = OUTDIR / "index.json"
    print()
    print("=" * 72)
    if not index.exists():
        print(f"no report: {index} missing (driver exit code {driver_rc})")
        print(f"wall time: {wall:.1f} s")
        return 1
    data = json.loads(index.read_text())
    results: dict[str, dict[str, object]] = data.get(agent, {})
    if not results:
        print(f"no results for agent {agent!r} in {index} (agents: {sorted(data)})")
        return 1

    def key(case: str) -> tuple[int, ...]:
        return tuple(int(p) for p in case.split(".") if p.isdigit())

    cases = sorted(results, key=key)
    behavior = Counter(str(results[c]["behavior"]) for c in cases)
    close = Counter(str(results[c]["behaviorClose"]) for c in cases)
    failing = [c for c in cases if results[c]["behavior"] in ("FAILED", "UNIMPLEMENTED")]
    close_failing = [
        c
        for c in cases
        if results[c]["behaviorClose"] in ("FAILED", "UNIMPLEMENTED") and c not in failing
    ]
    nonstrict = [c for c in cases if results[c]["behavior"] == "NON-STRICT"]
    expected = read_expected_count()
    missing = expected - len(cases) if expected is not None else 0

    print(
        f"Autobahn client results for agent {agent!r}: {len(cases)} cases"
        + (f" ({missing} of {expected} MISSING from the report)" if missing > 0 else "")
    )
    print(
        "behavior:      "
        + ", ".join(f"{b} {behavior.get(b, 0)}" for b in BEHAVIORS)
        + "".join(f", {b} {n}" for b, n in behavior.items() if b not in BEHAVIORS)
    )
    print("behaviorClose: " + ", ".join(f"{b} {n}" for b, n in sorted(close.items())))

    def show(title: str, lst: list[str]) -> None:
        print(f"{title} ({len(lst)}):")
        for c in lst:
            r = results[c]
            print(
                f"  {c:10} {r['behavior']:13} close={r['behaviorClose']:13} "
                f"remoteCloseCode={r.get('remoteCloseCode')} {OUTDIR_REL}/{r.get('reportfile', '')}"
            )

    if failing:
        show("FAILED/UNIMPLEMENTED", failing)
    if close_failing:
        show("behavior OK but behaviorClose FAILED", close_failing)
    if nonstrict:
        show("NON-STRICT", nonstrict)
    informational = [c for c in cases if results[c]["behavior"] == "INFORMATIONAL"]
    if informational:
        print(f"INFORMATIONAL ({len(informational)}): " + " ".join(informational))
    print(f"HTML report: {OUTDIR / 'index.html'}")
    print(f"wall time: {wall:.1f} s" + (f" (driver exit code {driver_rc})" if driver_rc else ""))
    return 1 if failing or missing > 0 or driver_rc else 0


_expected_count: int | None = None


def read_expected_count() -> int | None:
    return _expected_count


def main(argv: list[str] | None = None) -> int:
    global _expected_count
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--cases", default="*", help="comma-separated case patterns, e.g. '1.*,6.4.*' (default: *)"
    )
    ap.add_argument("--exclude", default="", help="comma-separated case patterns to exclude")
    ap.add_argument(
        "--agent", default=None, help="agent name in the report (default: the client name)"
    )
    ap.add_argument(
        "--client", choices=sorted(DRIVERS), default="mint", help="driver (default: mint)"
    )
    ap.add_argument(
        "--mode",
        choices=["passive", "active"],
        default="passive",
        help="mint connection mode (default: passive)",
    )
    ap.add_argument("--port", type=int, default=0, help="fuzzingserver port (default: a free one)")
    ap.add_argument("--timeout", type=float, default=60.0, help="driver receive timeout (s)")
    ap.add_argument("--case-timeout", type=float, default=600.0, help="driver limit per case (s)")
    ap.add_argument(
        "--run-timeout", type=float, default=3 * 3600.0, help="limit for the whole driver run (s)"
    )
    ap.add_argument("--no-compression", action="store_true", help="offer no permessage-deflate")
    ap.add_argument("--python", default=sys.executable, help="Python running the driver")
    ap.add_argument(
        "--outdir",
        default=OUTDIR_REL,
        help=f"report directory, relative to the repository root (default: {OUTDIR_REL})",
    )
    args = ap.parse_args(argv)
    agent = args.agent or args.client
    set_outdir(args.outdir)
    if not OUTDIR.resolve().is_relative_to((HERE / "reports").resolve()):
        ap.error("--outdir must be under compliance/reports/ (it is emptied before each run)")

    if not WSTEST.exists():
        print(f"{WSTEST} not found: run compliance/install.sh first", file=sys.stderr)
        return 2

    # On SIGTERM, unwind so that the `finally` blocks stop the driver and the server.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    port = args.port or free_port()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    exclude = [c.strip() for c in args.exclude.split(",") if c.strip()]
    spec = {
        "url": f"ws://127.0.0.1:{port}",
        "outdir": OUTDIR_REL,
        "cases": cases,
        "exclude-cases": exclude,
        "exclude-agent-cases": {},
    }
    if OUTDIR.exists():
        shutil.rmtree(OUTDIR)
    OUTDIR.mkdir(parents=True)
    spec_path = OUTDIR / "fuzzingserver.json"
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    log_path = OUTDIR / "wstest.log"
    print(
        f"spec {spec_path}: cases {cases}"
        + (f", exclude {exclude}" if exclude else "")
        + f", port {port}; server log {log_path}",
        flush=True,
    )

    t0 = time.monotonic()
    driver_rc: int | None = None
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [str(WSTEST), "-m", "fuzzingserver", "-s", str(spec_path), "-u", "0"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_port(port, server, 60)
            _expected_count = count_cases(log_path)
            print(
                f"fuzzingserver up (pid {server.pid}) after {time.monotonic() - t0:.1f} s"
                + (f", {_expected_count} cases" if _expected_count is not None else ""),
                flush=True,
            )
            cmd = [
                args.python,
                str(DRIVERS[args.client]),
                "--port",
                str(port),
                "--agent",
                agent,
                "--mode",
                args.mode,
                "--timeout",
                str(args.timeout),
                "--case-timeout",
                str(args.case_timeout),
            ]
            if args.no_compression:
                cmd.append("--no-compression")
            print("driver: " + " ".join(cmd), flush=True)
            driver = subprocess.Popen(
                cmd, cwd=ROOT, stdin=subprocess.DEVNULL, start_new_session=True
            )
            try:
                driver_rc = driver.wait(args.run_timeout)
            except subprocess.TimeoutExpired:
                print(f"driver still running after {args.run_timeout} s: killing it", flush=True)
                driver_rc = -1
            except BaseException:
                driver_rc = -2
                raise
            finally:
                stop(driver)
            if driver_rc:
                print(f"driver exited with {driver_rc}", flush=True)
                if not (OUTDIR / "index.json").exists():
                    # Ask the server for the reports of the cases that did run.
                    update_reports(port, agent)
        except Exception as e:
            print(f"error: {e}", flush=True)
            print(f"--- tail of {log_path} ---")
            print(log_path.read_text(errors="replace")[-3000:])
            driver_rc = driver_rc or 1
        finally:
            stop(server)
    return summarize(agent, time.monotonic() - t0, driver_rc)


def set_outdir(rel: str) -> None:
    global OUTDIR_REL, OUTDIR
    path = Path(rel)
    OUTDIR = path if path.is_absolute() else ROOT / path
    OUTDIR_REL = rel


def count_cases(log_path: Path) -> int | None:
    """The case count the fuzzingserver announced ("Ok, will run N test cases ...")."""
    for _ in range(20):
        for line in log_path.read_text(errors="replace").splitlines():
            if line.startswith("Ok, will run ") and " test cases" in line:
                with contextlib.suppress(ValueError):
                    return int(line.split()[3])
        time.sleep(0.1)
    return None


def update_reports(port: int, agent: str) -> None:
    """Minimal RFC 6455 client for /updateReports (so no dependency on the driver)."""
    import base64

    try:
        with socket.create_connection(("127.0.0.1", port), 10) as s:
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall(
                (
                    f"GET /updateReports?agent={agent} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            )
            s.settimeout(600)
            while s.recv(65536):  # the server closes after writing the reports
                pass
    except OSError as e:
        print(f"updateReports failed: {e}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
