"""Autobahn|Testsuite echo client written with mint, the way a user of the library would.

Run through the harness (which starts the fuzzingserver):

    .venv/bin/python compliance/run.py [--cases '1.*,6.*'] [--mode active]

or by hand against a running fuzzingserver:

    .venv/bin/python compliance/client.py --port 9001 [--agent mint] [--mode passive|active]

Flow (as Autobahn clients do): GET /getCaseCount; for each case N: /getCaseInfo?case=N (the
case id picks the permessage-deflate offer, see deflate_offers.py), then /runCase?case=N&agent=A
(echo every Text/Binary message, answer Ping with Pong, answer Close with Close(code), fail the
connection on an invalid frame with Close(error.close_code)); finally /updateReports?agent=A.

Only the public API (shared/API.md) is used: mint.http.connect, mint.websocket.upgrade / new /
recv / stream / encode / decode / stream_request_body, mint.http.close, mint.receive.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mint
import mint.http
import mint.websocket
from mint.http import Data, Done, Headers, Status
from mint.websocket import Binary, Close, Ping, Pong, Text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deflate_offers import Offer, header_value, offers_for


class CaseTimeout(Exception):
    """Nothing arrived within the receive timeout, or the case ran over its time."""


@dataclass
class Session:
    """One WebSocket connection: the values the functional API hands back, kept together."""

    mode: str
    timeout: float
    deadline: float
    conn: Any = None
    ref: Any = None
    ws: Any = None
    sent_close: bool = False
    log: list[str] = field(default_factory=list)

    # -- receiving ---------------------------------------------------------------------
    def next_responses(self, timeout: float | None = None) -> list[Any]:
        """Next batch of responses, in the connection's mode."""
        timeout = self.timeout if timeout is None else timeout
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise CaseTimeout("case time limit reached")
        timeout = min(timeout, remaining)
        if self.mode == "passive":
            try:
                self.conn, responses = mint.websocket.recv(self.conn, 0, timeout)
            except mint.TransportError as e:
                self._take_conn(e)
                if e.reason == "timeout":
                    raise CaseTimeout(f"nothing received for {timeout:.0f} s") from None
                raise
            return responses
        end = time.monotonic() + timeout
        while True:
            try:
                message = mint.receive(max(0.0, end - time.monotonic()))
            except TimeoutError:
                raise CaseTimeout(f"nothing received for {timeout:.0f} s") from None
            try:
                result = mint.websocket.stream(self.conn, message)
            except mint.MintError as e:
                self._take_conn(e)
                raise
            if result is mint.UNKNOWN:
                continue  # not this connection's message (a leftover of an earlier case)
            self.conn, responses = result
            return responses

    def _take_conn(self, e: BaseException) -> None:
        conn = getattr(e, "conn", None)
        if conn is not None:
            self.conn = conn

    # -- sending -----------------------------------------------------------------------
    def send(self, frame: Any) -> None:
        self.ws, data = mint.websocket.encode(self.ws, frame)
        try:
            self.conn = mint.websocket.stream_request_body(self.conn, self.ref, data)
        except mint.MintError as e:
            self._take_conn(e)
            raise
        if isinstance(frame, Close):
            self.sent_close = True

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn = mint.http.close(self.conn)
            except mint.MintError:
                pass

    def wait_closed(self, timeout: float) -> None:
        """After the closing handshake: read until the server closes the TCP connection."""
        end = time.monotonic() + timeout
        try:
            while (left := end - time.monotonic()) > 0:
                self.next_responses(left)  # whatever still arrives is dropped
        except (mint.TransportError, CaseTimeout):
            pass


def extension_list(offers: list[Offer], compression: bool) -> list[Any]:
    pmd = getattr(mint.websocket, "PerMessageDeflate", None)
    if not compression or pmd is None:
        return []
    return [(pmd, list(offer)) for offer in offers]


def open_session(
    host: str,
    port: int,
    path: str,
    extensions: list[Any],
    args: argparse.Namespace,
    deadline: float,
    timeout: float | None = None,
) -> tuple[Session, bytes]:
    """Connect, upgrade, read the 101 answer; return the session and the early WebSocket bytes."""
    s = Session(mode=args.mode, timeout=timeout or args.timeout, deadline=deadline)
    s.conn = mint.http.connect(
        "http", host, port, mode=args.mode, transport_opts={"timeout": args.timeout}
    )
    try:
        s.conn, s.ref = mint.websocket.upgrade("ws", s.conn, path, [], extensions=extensions)
    except mint.MintError as e:
        s._take_conn(e)
        s.close()
        raise
    status = headers = None
    early: list[bytes] = []
    done = False
    try:
        while not done:
            for r in s.next_responses():
                match r:
                    case Status(ref=ref, status=st) if ref == s.ref:
                        status = st
                    case Headers(ref=ref, headers=hs) if ref == s.ref:
                        headers = hs
                    case Data(ref=ref, data=d) if ref == s.ref:
                        early.append(d)
                    case Done(ref=ref) if ref == s.ref:
                        done = True
                    case mint.http.Error(error=err):
                        raise err
        s.conn, s.ws = mint.websocket.new(
            s.conn, s.ref, status, headers, mode=args.mode, max_message_size=args.max_message_size
        )
    except BaseException as e:
        s._take_conn(e)
        s.close()
        raise
    return s, b"".join(early)


def run_session(
    s: Session, early: bytes, on_message: Callable[[Text | Binary], None], echo: bool
) -> str:
    """Drive one connection until it ends; return how it ended (for the log)."""
    try:
        return _run_session(s, early, on_message, echo)
    except mint.TransportError as e:
        # E.g. the server dropped the connection while we were writing (epipe, econnreset).
        return f"transport error {e.reason!r}"


def _run_session(
    s: Session, early: bytes, on_message: Callable[[Text | Binary], None], echo: bool
) -> str:
    s.ws, frames = mint.websocket.decode(s.ws, early)
    while True:
        for frame in frames:
            if isinstance(frame, mint.WebSocketError):
                # Fail the WebSocket connection (RFC 6455 7.1.7): Close with the error's code,
                # then wait a little for the server to close the TCP connection.
                try:
                    if not s.sent_close:
                        s.send(Close(frame.close_code))
                except mint.MintError:
                    pass
                s.wait_closed(min(s.timeout, 5.0))
                return f"failed the connection: {frame.reason!r} -> Close({frame.close_code})"
            match frame:
                case Text() | Binary():
                    on_message(frame)
                    if echo and not s.sent_close:
                        s.send(frame)
                case Ping(data=d):
                    if not s.sent_close:
                        s.send(Pong(d))
                case Pong():
                    pass
                case Close(code=code):
                    if not s.sent_close:
                        # RFC 6455 5.5.1: the endpoint typically echoes the status code.
                        s.send(Close(code if code is not None else 1000))
                    s.wait_closed(min(s.timeout, 10.0))
                    return f"closed by server with {code}"
        try:
            responses = s.next_responses()
        except mint.TransportError as e:
            if e.reason == "closed":
                return "TCP closed by server"
            raise
        data = b"".join(r.data for r in responses if isinstance(r, Data) and r.ref == s.ref)
        for r in responses:
            if isinstance(r, mint.http.Error):
                raise r.error
        s.ws, frames = mint.websocket.decode(s.ws, data)


def fetch_text(
    host: str, port: int, path: str, args: argparse.Namespace, timeout: float | None = None
) -> str:
    """Open a control endpoint (getCaseCount, getCaseInfo, updateReports) and collect its text."""
    texts: list[str] = []
    s, early = open_session(host, port, path, [], args, time.monotonic() + 900, timeout)
    try:
        run_session(
            s,
            early,
            lambda m: texts.append(m.data if isinstance(m, Text) else m.data.decode()),
            echo=False,
        )
    finally:
        s.close()
    return "".join(texts)


def run_case(host: str, port: int, n: int, case_id: str | None, args: argparse.Namespace) -> str:
    offers = offers_for(case_id)
    deadline = time.monotonic() + args.case_timeout
    s, early = open_session(
        host,
        port,
        f"/runCase?case={n}&agent={args.agent}",
        extension_list(offers, args.compression),
        args,
        deadline,
    )
    try:
        return run_session(s, early, lambda m: None, echo=True)
    finally:
        s.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--agent", default="mint")
    ap.add_argument("--mode", choices=["passive", "active"], default="passive")
    ap.add_argument("--timeout", type=float, default=60.0, help="receive timeout (s)")
    ap.add_argument("--case-timeout", type=float, default=600.0, help="overall limit per case (s)")
    ap.add_argument("--max-message-size", type=int, default=64 * 2**20)
    ap.add_argument(
        "--no-compression",
        dest="compression",
        action="store_false",
        help="offer no permessage-deflate",
    )
    ap.add_argument("--tracebacks", type=int, default=3, help="how many case tracebacks to print")
    args = ap.parse_args(argv)
    host, port = args.host, args.port

    if args.compression and getattr(mint.websocket, "PerMessageDeflate", None) is None:
        print("mint.websocket.PerMessageDeflate not available: offering no extensions", flush=True)

    count = int(fetch_text(host, port, "/getCaseCount", args))
    print(f"mint client ({args.mode} mode): {count} cases, agent {args.agent!r}", flush=True)
    errors = 0
    for n in range(1, count + 1):
        t0 = time.monotonic()
        case_id = None
        try:
            case_id = json.loads(fetch_text(host, port, f"/getCaseInfo?case={n}", args)).get("id")
            outcome = run_case(host, port, n, case_id, args)
        except CaseTimeout as e:
            outcome = f"TIMEOUT: {e}"
        except Exception as e:
            errors += 1
            outcome = f"ERROR {type(e).__name__}: {e!r}"[:500]
            if errors <= args.tracebacks:
                traceback.print_exc()
        extra = ""
        if (
            case_id
            and case_id.startswith("13.")
            and extension_list(offers_for(case_id), args.compression)
        ):
            extra = f" [offer: {header_value(offers_for(case_id))}]"
        print(
            f"[{n}/{count}] case {case_id} ({time.monotonic() - t0:.2f} s): {outcome}{extra}",
            flush=True,
        )

    print("updating reports", flush=True)
    # The server writes the reports, then closes: that can take a while after a full run.
    fetch_text(
        host, port, f"/updateReports?agent={args.agent}", args, timeout=max(args.timeout, 600)
    )
    if errors:
        print(f"{errors} case(s) raised an exception in the driver", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
