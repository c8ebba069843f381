"""Reference Autobahn echo client built on the `websockets` library (not on mint).

Used to check the harness itself (install, spec, runner, summary) independently of mint,
and to compare mint's results with a mature implementation:

    .venv/bin/python compliance/run.py --client reference

Protocol: GET /getCaseCount; for each case N: /getCaseInfo?case=N (to choose the
permessage-deflate offer), /runCase?case=N&agent=AGENT (echo every message until the server
closes); finally /updateReports?agent=AGENT.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deflate_offers import Offer, header_value, offers_for


def factory(offer: Offer) -> ClientPerMessageDeflateFactory:
    kw: dict[str, object] = {"client_max_window_bits": None}
    for p in offer:
        name, value = (p, True) if isinstance(p, str) else p
        kw[name] = value
    return ClientPerMessageDeflateFactory(**kw)  # type: ignore[arg-type]


def text_endpoint(base: str, path: str, timeout: float) -> str:
    """Open `path`, return the first text message, let the server close."""
    with connect(
        base + path,
        compression=None,
        open_timeout=timeout,
        close_timeout=timeout,
        ping_interval=None,
        proxy=None,
    ) as ws:
        msg = ws.recv(timeout=timeout)
        return msg if isinstance(msg, str) else msg.decode()


def run_case(base: str, n: int, agent: str, offers: list[Offer], args: argparse.Namespace) -> None:
    exts = [factory(o) for o in offers] if args.compression else []
    deadline = time.monotonic() + args.case_timeout
    try:
        with connect(
            f"{base}/runCase?case={n}&agent={agent}",
            compression=None,
            extensions=exts,
            open_timeout=args.timeout,
            close_timeout=args.timeout,
            ping_interval=None,
            max_size=args.max_message_size,
            max_queue=None,
            proxy=None,
        ) as ws:
            while time.monotonic() < deadline:
                try:
                    msg = ws.recv(timeout=args.timeout)
                except TimeoutError:
                    print(f"  case {n}: no message for {args.timeout} s, giving up", flush=True)
                    return
                ws.send(msg)
    except ConnectionClosed:
        pass
    except (WebSocketException, OSError) as e:
        print(f"  case {n}: {type(e).__name__}: {e}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--agent", default="reference")
    ap.add_argument("--timeout", type=float, default=60.0, help="receive timeout (s)")
    ap.add_argument("--case-timeout", type=float, default=600.0, help="overall limit per case (s)")
    ap.add_argument("--max-message-size", type=int, default=64 * 2**20)
    ap.add_argument("--no-compression", dest="compression", action="store_false")
    ap.add_argument("--mode", default="passive", help="ignored (mint driver option)")
    args = ap.parse_args(argv)
    base = f"ws://{args.host}:{args.port}"

    count = int(text_endpoint(base, "/getCaseCount", args.timeout))
    print(f"reference client (websockets): {count} cases, agent {args.agent!r}", flush=True)
    for n in range(1, count + 1):
        info = json.loads(text_endpoint(base, f"/getCaseInfo?case={n}", args.timeout))
        case_id = info.get("id")
        offers = offers_for(case_id)
        t0 = time.monotonic()
        run_case(base, n, args.agent, offers, args)
        print(
            f"[{n}/{count}] case {case_id} ({time.monotonic() - t0:.2f} s)"
            + (
                f" offer: {header_value(offers)}"
                if args.compression and case_id and case_id.startswith("13.")
                else ""
            ),
            flush=True,
        )
    print("updating reports", flush=True)
    text_endpoint_close(base, f"/updateReports?agent={args.agent}", args.timeout)
    return 0


def text_endpoint_close(base: str, path: str, timeout: float) -> None:
    """Open `path` and wait for the server to close (updateReports sends no message)."""
    with connect(
        base + path,
        compression=None,
        open_timeout=timeout,
        close_timeout=timeout,
        ping_interval=None,
        proxy=None,
    ) as ws:
        try:
            while True:
                ws.recv(timeout=max(timeout, 600.0))
        except (ConnectionClosed, TimeoutError):
            pass


if __name__ == "__main__":
    sys.exit(main())
