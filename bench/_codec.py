"""Codec micro-benchmarks (no sockets) and masking GB/s, run by bench/run.py in a subprocess.

    python bench/_codec.py --what codec --duration 0.5 [--deflate]
    MINT_NO_SPEEDUPS=1 python bench/_codec.py --what codec --libs mint

Prints one JSON object. Decode input is unmasked server frames (binary); encode output is
masked client frames. "x1" = one frame per call, "x1000" = 1,000 frames concatenated per
call (capped at 64 MiB per call: 64 frames of 1 MiB). Each figure: frames/s over a loop
bounded by a count and a deadline, after a short warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import zlib

SIZES = (16, 1024, 65536, 1048576)
BATCH_BYTES = 64 << 20
NOTES: list[str] = []


def payload_of(size: int, text_like: bool = False) -> bytes:
    rnd = random.Random(size)
    if not text_like:
        return rnd.randbytes(size)
    words = [
        bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9)))
        for _ in range(500)
    ]
    out = bytearray()
    while len(out) < size:
        out += rnd.choice(words) + b" "
    return bytes(out[:size])


def server_frame(payload: bytes, rsv1: bool = False) -> bytes:
    n = len(payload)
    b0 = 0x82 | (0x40 if rsv1 else 0)
    if n < 126:
        return bytes([b0, n]) + payload
    if n < 65536:
        return bytes([b0, 126]) + n.to_bytes(2, "big") + payload
    return bytes([b0, 127]) + n.to_bytes(8, "big") + payload


def deflated(payload: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    data = c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


def bench_turns(entries, duration: float, cap_calls: int, slices: int = 5) -> dict:
    """frames/s of each ``(name, fn, per_call)`` entry: the best of its ``slices`` slices.

    The best, as ``timeit`` advises: on a shared 2-core machine a slice only gets
    slower by what else runs meanwhile, so the fastest slice is the closest to the
    code's own cost. The entries take turns, one slice each per round, in an order
    that rotates from round to round: the libraries compared at one size and metric
    are then measured over the same stretch of time (a slow spell of the host lands
    on all of them), not one after the other, seconds apart.
    """
    clock = time.perf_counter
    plans = []
    for name, fn, per_call in entries:
        fn()
        fn()
        # calibrate a batch of about 2 ms
        t = clock()
        fn()
        one = max(clock() - t, 1e-7)
        batch = max(1, min(1000, int(0.002 / one)))
        # Slow calls (large frames through a slow parser) get fewer slices, so that a
        # figure takes about ``duration`` whatever the call costs.
        own = max(1, min(slices, int(duration / (one * batch))))
        plans.append((name, fn, per_call, batch, own, max(1, cap_calls // own)))
    best = dict.fromkeys((plan[0] for plan in plans), 0.0)
    rounds = max((plan[4] for plan in plans), default=0)
    for r in range(rounds):
        k = r % len(plans)
        for name, fn, per_call, batch, own, cap in plans[k:] + plans[:k]:
            if r >= own:
                continue
            calls = 0
            t0 = clock()
            deadline = t0 + duration / own
            while calls < cap:
                for _ in range(batch):
                    fn()
                calls += batch
                if clock() >= deadline:
                    break
            best[name] = max(best[name], calls * per_call / (clock() - t0))
    return best


# ------------------------------------------------------------------------------ codecs
def mint_codec(deflate: bool):
    import mint.websocket._frame as F
    from mint.websocket import Binary

    ext = []
    if deflate:
        import mint.websocket as W

        PMD = getattr(W, "PerMessageDeflate", None)
        if PMD is None:
            raise LookupError("mint.websocket.PerMessageDeflate does not exist yet")

    def new():
        exts = [PMD().negotiate([])] if deflate else []
        return F.new_websocket(extensions=exts, max_message_size=None)

    def decoder(blob: bytes, expect: int):
        state = [new()]
        decode = F.decode

        def run():
            state[0], frames = decode(state[0], blob)
            return frames

        got = run()
        assert len(got) == expect and all(type(f) is Binary for f in got), got[:1]
        return run

    def encoder(payload: bytes):
        state = [new()]
        encode = F.encode

        def run():
            state[0], data = encode(state[0], Binary(payload))
            return data

        return run

    del ext
    return decoder, encoder


def websockets_codec(deflate: bool):
    from websockets.client import ClientProtocol
    from websockets.frames import Frame
    from websockets.protocol import State
    from websockets.uri import parse_uri

    def new():
        p = ClientProtocol(parse_uri("ws://localhost/"), state=State.OPEN, max_size=None)
        if deflate:
            from websockets.extensions.permessage_deflate import PerMessageDeflate

            p.extensions = [PerMessageDeflate(False, False, 15, 15)]
        return p

    def decoder(blob: bytes, expect: int):
        p = new()

        def run():
            p.receive_data(blob)
            return p.events_received()

        got = run()
        assert len(got) == expect and isinstance(got[0], Frame), got[:1]
        return run

    def encoder(payload: bytes):
        p = new()

        def run():
            p.send_binary(payload)
            return p.data_to_send()

        return run

    return decoder, encoder


def wsproto_codec(deflate: bool):
    from wsproto.frame_protocol import FrameProtocol

    def new():
        exts = []
        if deflate:
            from wsproto.extensions import PerMessageDeflate

            pmd = PerMessageDeflate()
            pmd.finalize("permessage-deflate")
            exts = [pmd]
        return FrameProtocol(client=True, extensions=exts)

    def decoder(blob: bytes, expect: int):
        p = new()

        def run():
            p.receive_bytes(blob)
            return list(p.received_frames())

        got = run()
        assert len(got) == expect, len(got)
        return run

    def encoder(payload: bytes):
        p = new()

        def run():
            return p.send_data(payload, fin=True)

        return run

    return decoder, encoder


class _FakeProtocol:
    _reading_paused = False
    _paused = False

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass


class _FakeTransport:
    def __init__(self):
        self.last = b""

    def write(self, data):
        self.last = data

    def is_closing(self):
        return False


def aiohttp_codec(deflate: bool, pure: bool = False):
    from aiohttp._websocket import reader_py
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
    from aiohttp._websocket.writer import WebSocketWriter
    from aiohttp.http_websocket import WSMsgType

    if pure:
        WebSocketReader, WebSocketDataQueue = (
            reader_py.WebSocketReader,
            reader_py.WebSocketDataQueue,
        )
    elif WebSocketReader is reader_py.WebSocketReader:
        NOTES.append(
            "aiohttp's Cython reader is not importable here: its pure-Python reader was measured"
        )
    loop = asyncio.new_event_loop()

    def decoder(blob: bytes, expect: int):
        q = WebSocketDataQueue(_FakeProtocol(), 2**30, loop=loop)
        r = WebSocketReader(q, 0, deflate, True)
        buf = q._buffer

        def run():
            r.feed_data(blob)
            n = len(buf)
            buf.clear()
            return n

        assert run() == expect
        return run

    def encoder(payload: bytes):
        w = WebSocketWriter(
            _FakeProtocol(), _FakeTransport(), use_mask=True, compress=15 if deflate else 0
        )
        BIN = WSMsgType.BINARY

        if deflate:
            # compressed frames need a running loop (lock, executor for large payloads)
            NOTES.append(
                "aiohttp deflate encode is driven by loop.run_until_complete (it needs a running loop)"
            )

            def run():
                loop.run_until_complete(w.send_frame(payload, BIN))

            return run

        def run():
            coro = w.send_frame(payload, BIN)
            try:
                coro.send(None)
            except StopIteration:
                pass
            else:  # it suspended (would need a loop): not expected without compression
                coro.close()
                raise RuntimeError("aiohttp send_frame suspended")

        return run

    return decoder, encoder


LIBS = {
    "mint": mint_codec,
    "websockets": websockets_codec,
    "wsproto": wsproto_codec,
    "aiohttp": aiohttp_codec,
    "aiohttp_py": lambda d: aiohttp_codec(d, pure=True),
}


def run_codec(libs, sizes, duration, deflate):
    """Every lib at one size before the next size; at one size and metric the libs
    take turns slice by slice (bench_turns), so drift on a shared machine hits them
    alike and the ratios between them hold even when the figures themselves move."""
    results = []
    makers = {}
    for lib in libs:
        try:
            makers[lib] = LIBS[lib](deflate)
        except Exception as exc:
            results.append(
                {"lib": lib, "deflate": deflate, "error": f"{type(exc).__name__}: {exc}"}
            )
    cap = 10_000_000
    for size in sizes:
        payload = payload_of(size, text_like=deflate)
        frame = server_frame(deflated(payload), rsv1=True) if deflate else server_frame(payload)
        per_call = min(1000, max(1, BATCH_BYTES // max(size, 1)))
        blob = frame * per_call
        rows = {
            lib: {"lib": lib, "deflate": deflate, "size": size, "batch": per_call} for lib in makers
        }
        # metric -> [(lib, fn, frames per call)]; a lib that fails to set one up
        # (or fails while measured) gets an error row instead of that figure.
        plans: dict[str, list] = {"decode_x1": [], "decode_xN": [], "encode": []}
        for lib, (decoder, encoder) in makers.items():
            try:
                plans["decode_x1"].append((lib, decoder(frame, 1), 1))
                plans["decode_xN"].append((lib, decoder(blob, per_call), per_call))
                plans["encode"].append((lib, encoder(payload), 1))
            except Exception as exc:
                rows[lib]["error"] = f"{type(exc).__name__}: {exc}"
        for metric, entries in plans.items():
            entries = [e for e in entries if "error" not in rows[e[0]]]
            try:
                figures = bench_turns(entries, duration, cap)
            except Exception:
                # find the culprit: measure them one by one
                figures = {}
                for entry in entries:
                    try:
                        figures.update(bench_turns([entry], duration, cap))
                    except Exception as exc:
                        rows[entry[0]]["error"] = f"{type(exc).__name__}: {exc}"
            for lib, rate in figures.items():
                rows[lib][metric] = rate
        del blob, plans
        results.extend(rows.values())
    return results


# ----------------------------------------------------------------------------- masking
MASK_ROUNDS = 7


def run_mask(duration):
    """GB/s of each masking implementation over 1 MiB.

    The implementations take turns, one slice each, for ``MASK_ROUNDS`` rounds, and
    each keeps its best slice: whatever else the machine runs then slows them all
    alike, and the pure-Python fallback and wsproto (the same strided-translate
    algorithm) are compared on the same footing rather than seconds apart.
    """
    import mint.websocket._frame as F

    size = 1 << 20
    data = payload_of(size)
    key = b"\x01\x02\x03\x04"
    ref = (int.from_bytes(data, "little") ^ int.from_bytes(key * (size // 4), "little")).to_bytes(
        size, "little"
    )
    entries = []  # (name, fn), checked
    rows = []

    def add(name, fn, check=True):
        try:
            if check and bytes(fn()) != ref:
                raise AssertionError("wrong result")
            entries.append((name, fn))
        except Exception as exc:
            rows.append({"name": name, "error": f"{type(exc).__name__}: {exc}"})

    try:
        import mint._speedups as S

        add("mint C speedup (mint._speedups.mask)", lambda: S.mask(data, key))
    except ImportError as exc:
        rows.append({"name": "mint C speedup (mint._speedups.mask)", "error": str(exc)})
    add("mint pure-Python fallback (_frame._mask_py)", lambda: F._mask_py(data, key))
    from websockets.speedups import apply_mask

    add("websockets C speedup (websockets.speedups.apply_mask)", lambda: apply_mask(data, key))
    from aiohttp._websocket.helpers import websocket_mask

    def aio():
        b = bytearray(data)
        websocket_mask(key, b)
        return b

    add("aiohttp Cython (websocket_mask, incl. bytearray copy)", aio)
    from wsproto.frame_protocol import XorMaskerSimple

    add("wsproto XorMaskerSimple.process", lambda: XorMaskerSimple(key).process(data))
    add("memcpy ceiling: bytearray(data)", lambda: bytearray(data), check=False)
    add("memcpy ceiling: bytes(bytearray(data))", lambda: bytes(bytearray(data)), check=False)
    best = dict.fromkeys((name for name, _ in entries), 0.0)
    slice_time = duration / MASK_ROUNDS
    clock = time.perf_counter
    for _ in range(MASK_ROUNDS):
        for name, fn in entries:
            fn()
            calls = 0
            t0 = clock()
            while True:
                fn()
                calls += 1
                elapsed = clock() - t0
                if elapsed >= slice_time or calls >= 100_000:
                    break
            best[name] = max(best[name], calls * size / elapsed / 1e9)
    return [{"name": name, "gbps": gbps} for name, gbps in best.items()] + rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--what", choices=("codec", "mask"), default="codec")
    ap.add_argument("--libs", default="mint,websockets,wsproto,aiohttp,aiohttp_py")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)))
    ap.add_argument("--duration", type=float, default=0.5)
    ap.add_argument("--deflate", action="store_true")
    a = ap.parse_args()
    info = {}
    import mint.websocket._frame as F

    info["mint_mask"] = "C" if F._mask_c is not None else "pure"
    if a.what == "codec":
        sizes = [int(s) for s in a.sizes.split(",")]
        info["codec"] = run_codec(a.libs.split(","), sizes, a.duration, a.deflate)
    else:
        info["mask"] = run_mask(a.duration)
    info["notes"] = NOTES
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
