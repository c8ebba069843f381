"""Unit tests of the frame codec: mint.websocket._frame (RFC 6455 section 5)."""

from __future__ import annotations

import dataclasses
import inspect
import os
import struct
import warnings
from collections.abc import Callable
from typing import Any

import pytest

import mint.websocket._frame as frame_mod
from mint.errors import _MESSAGES, WebSocketError, reason_tag
from mint.websocket._frame import (
    _mask_py,
    decode,
    encode,
    mask,
    new_websocket,
)
from mint.websocket._frames import Binary, Close, Ping, Pong, Text
from mint.websocket.extension import Extension

# ------------------------------------------------------------------ helpers


def srv(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = False,
    length: tuple[int, int] | None = None,
) -> bytes:
    """A server frame; ``length=(marker, value)`` forces a length encoding."""
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    if length is not None:
        marker, value = length
        ext = b"" if marker < 126 else struct.pack("!H" if marker == 126 else "!Q", value)
        head = bytes([b0, marker | (0x80 if masked else 0)]) + ext
    elif n < 126:
        head = bytes([b0, n | (0x80 if masked else 0)])
    elif n < 65536:
        head = struct.pack("!BBH", b0, 126 | (0x80 if masked else 0), n)
    else:
        head = struct.pack("!BBQ", b0, 127 | (0x80 if masked else 0), n)
    if masked:
        key = b"\x01\x02\x03\x04"
        return head + key + _mask_py(payload, key)
    return head + payload


def counter_bytes() -> Callable[[int], bytes]:
    """A deterministic random_bytes: 0, 1, 2, ... (mod 256) across calls."""
    state = {"next": 0}

    def random_bytes(n: int) -> bytes:
        start = state["next"]
        state["next"] += n
        return bytes((start + i) % 256 for i in range(n))

    return random_bytes


def unmask_client_frame(data: bytes) -> tuple[int, int, bytes, bytes]:
    """Parse one masked client frame: (b0, payload length, key, unmasked payload)."""
    b0, b1 = data[0], data[1]
    assert b1 & 0x80, "client frames are masked"
    n = b1 & 0x7F
    pos = 2
    if n == 126:
        (n,) = struct.unpack_from("!H", data, 2)
        pos = 4
    elif n == 127:
        (n,) = struct.unpack_from("!Q", data, 2)
        pos = 10
    key = data[pos : pos + 4]
    payload = data[pos + 4 :]
    assert len(payload) == n
    return b0, n, key, _mask_py(payload, key)


def shape(items: list[object]) -> list[object]:
    """Frames as they are, errors as (tag, close_code): what does not depend on chunking.

    (An ``("invalid_utf8", data)`` error carries the bytes that were being checked,
    which depend on how the input was split.)
    """
    return [
        (reason_tag(i.reason), i.close_code) if isinstance(i, WebSocketError) else i for i in items
    ]


def err(reason: object, code: int = 1002) -> WebSocketError:
    return WebSocketError(reason, close_code=code)  # type: ignore[arg-type]


WS = new_websocket()

# ------------------------------------------------------------------ decode: valid frames

VALID_CASES: list[tuple[str, bytes, list[object]]] = [
    ("empty input", b"", []),
    ("text", srv(1, b"hello"), [Text("hello")]),
    ("empty text", srv(1), [Text("")]),
    ("binary", srv(2, b"\x00\xff"), [Binary(b"\x00\xff")]),
    ("ping", srv(9, b"p"), [Ping(b"p")]),
    ("pong", srv(10), [Pong(b"")]),
    ("close empty", srv(8), [Close(1000, "")]),
    ("close code", srv(8, b"\x03\xe8"), [Close(1000, "")]),
    ("close reason", srv(8, b"\x03\xe9bye"), [Close(1001, "bye")]),
    ("close 4999", srv(8, b"\x13\x87"), [Close(4999, "")]),
    ("utf8 text", srv(1, "héllo ☃ 𝄞".encode()), [Text("héllo ☃ 𝄞")]),
    ("125 bytes", srv(2, b"a" * 125), [Binary(b"a" * 125)]),
    ("126 bytes", srv(2, b"a" * 126), [Binary(b"a" * 126)]),
    ("65535 bytes", srv(2, b"a" * 65535), [Binary(b"a" * 65535)]),
    ("65536 bytes", srv(2, b"a" * 65536), [Binary(b"a" * 65536)]),
    ("ping 125", srv(9, b"x" * 125), [Ping(b"x" * 125)]),
    (
        "fragmented text",
        srv(1, b"he", fin=False) + srv(0, b"l", fin=False) + srv(0, b"lo"),
        [Text("hello")],
    ),
    (
        "fragmented with pings between",
        srv(2, b"a", fin=False) + srv(9, b"1") + srv(0, b"b", fin=False) + srv(10) + srv(0, b"c"),
        [Ping(b"1"), Pong(b""), Binary(b"abc")],
    ),
    (
        "utf8 split across fragments",
        srv(1, b"\xe2\x98", fin=False) + srv(0, b"\x83"),
        [Text("☃")],
    ),
    (
        "empty fragments",
        srv(1, b"", fin=False) + srv(0, b"", fin=False) + srv(0, b""),
        [Text("")],
    ),
    (
        "several frames",
        srv(1, b"a") + srv(2, b"b") + srv(9) + srv(8, b"\x03\xe8"),
        [Text("a"), Binary(b"b"), Ping(b""), Close(1000, "")],
    ),
]


@pytest.mark.parametrize(
    ("data", "expected"), [c[1:] for c in VALID_CASES], ids=[c[0] for c in VALID_CASES]
)
def test_decode_valid(data: bytes, expected: list[object]) -> None:
    _, frames = decode(WS, data)
    assert frames == expected
    # Every split point gives the same frames.
    for cut in range(len(data) + 1) if len(data) < 300 else (1, 2, 3, 5, 9, 10, 11, len(data) - 1):
        ws1, first = decode(WS, data[:cut])
        _, second = decode(ws1, data[cut:])
        assert first + second == expected, cut


@pytest.mark.parametrize(
    ("data", "expected"), [c[1:] for c in VALID_CASES], ids=[c[0] for c in VALID_CASES]
)
def test_decode_byte_by_byte(data: bytes, expected: list[object]) -> None:
    ws = WS
    got: list[object] = []
    for i in range(len(data)):
        ws, frames = decode(ws, data[i : i + 1])
        got += frames
    assert got == expected
    assert ws._rx is None  # nothing left over


# ------------------------------------------------------------------ decode: errors

ERROR_CASES: list[tuple[str, bytes, list[object]]] = [
    ("masked server frame", srv(1, b"hi", masked=True), [err("masked_server_frame")]),
    ("opcode 3", srv(3), [err(("unsupported_opcode", 3))]),
    ("opcode 7", srv(7), [err(("unsupported_opcode", 7))]),
    ("opcode 0xB", srv(0xB), [err(("unsupported_opcode", 0xB))]),
    ("opcode 0xF", srv(0xF), [err(("unsupported_opcode", 0xF))]),
    ("continuation first", srv(0, b"x"), [err("unexpected_continuation")]),
    (
        "text during fragmented",
        srv(1, b"a", fin=False) + srv(1, b"b"),
        [err("incomplete_message")],
    ),
    (
        "binary during fragmented",
        srv(2, b"a", fin=False) + srv(9) + srv(2, b"b"),
        [Ping(b""), err("incomplete_message")],
    ),
    ("rsv1 unclaimed", srv(1, b"x", rsv=0x40), [err(("malformed_reserved", 0x40))]),
    ("rsv2 unclaimed", srv(2, b"x", rsv=0x20), [err(("malformed_reserved", 0x20))]),
    ("rsv3 unclaimed", srv(2, b"x", rsv=0x10), [err(("malformed_reserved", 0x10))]),
    ("rsv on control", srv(9, rsv=0x40), [err(("malformed_reserved", 0x40))]),
    (
        "rsv on continuation",
        srv(2, b"a", fin=False) + srv(0, b"b", rsv=0x20),
        [err(("malformed_reserved", 0x20))],
    ),
    ("fragmented ping", srv(9, b"x", fin=False), [err("fragmented_control_frame")]),
    ("fragmented close", srv(8, fin=False), [err("fragmented_control_frame")]),
    ("ping 126", srv(9, b"x" * 126), [err("control_frame_too_large")]),
    ("close 126", srv(8, b"\x03\xe8" + b"x" * 124), [err("control_frame_too_large")]),
    # The 7-bit length alone tells it: no need to wait for the extended length.
    ("ping 16-bit marker, header only", bytes([0x89, 126]), [err("control_frame_too_large")]),
    ("non-minimal 16", srv(2, b"x" * 5, length=(126, 5)), [err(("invalid_length", 5))]),
    (
        "non-minimal 16 at 125",
        srv(2, b"x" * 125, length=(126, 125)),
        [err(("invalid_length", 125))],
    ),
    ("non-minimal 64", srv(2, b"x" * 200, length=(127, 200)), [err(("invalid_length", 200))]),
    (
        "non-minimal 64 at 65535",
        bytes([0x82, 127]) + struct.pack("!Q", 65535),
        [err(("invalid_length", 65535))],
    ),
    (
        "64-bit top bit",
        bytes([0x82, 127]) + struct.pack("!Q", 1 << 63),
        [err(("invalid_length", 1 << 63))],
    ),
    ("text invalid utf8", srv(1, b"\xff"), [err(("invalid_utf8", b"\xff"), 1007)]),
    ("text surrogate", srv(1, b"\xed\xa0\x80"), [err(("invalid_utf8", b"\xed\xa0\x80"), 1007)]),
    (
        "text ends inside a sequence",
        srv(1, b"a\xe2\x98", fin=False) + srv(0, b""),
        [err(("invalid_utf8", b"\xe2\x98"), 1007)],
    ),
    ("close 1 byte", srv(8, b"\x03"), [err(("invalid_close_payload", b"\x03"))]),
    ("close bad reason", srv(8, b"\x03\xe8\xff"), [err(("invalid_utf8", b"\xff"), 1007)]),
    (
        "frames before an error are delivered",
        srv(1, b"a") + srv(9, b"p") + srv(3) + srv(1, b"dropped"),
        [Text("a"), Ping(b"p"), err(("unsupported_opcode", 3))],
    ),
]

# RFC 6455 7.4 and the IANA registry.
CLOSE_CODES = [
    (999, False),
    (1000, True),
    (1001, True),
    (1002, True),
    (1003, True),
    (1004, False),
    (1005, False),
    (1006, False),
    (1007, True),
    (1011, True),
    (1012, True),
    (1014, True),
    (1015, False),
    (1016, False),
    (2000, False),
    (2999, False),
    (3000, True),
    (3999, True),
    (4000, True),
    (4999, True),
    (5000, False),
    (65535, False),
    (0, False),
]


@pytest.mark.parametrize(
    ("data", "expected"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_decode_errors(data: bytes, expected: list[object]) -> None:
    ws, frames = decode(WS, data)
    assert frames == expected
    error = frames[-1]
    assert isinstance(error, WebSocketError)
    assert error.close_code == expected[-1].close_code  # type: ignore[union-attr]
    # Failed: later calls give the same error again, and nothing else.
    ws2, again = decode(ws, srv(1, b"more"))
    assert again == [error]
    assert again[0] is error
    assert ws2 is ws
    # Fed byte by byte, the same items come out (fail fast where possible).
    got: list[object] = []
    w = WS
    for i in range(len(data)):
        w, items = decode(w, data[i : i + 1])
        got += items
        if items and isinstance(items[-1], WebSocketError):
            break
    assert shape(got) == shape(expected)


@pytest.mark.parametrize(("code", "valid"), CLOSE_CODES)
def test_close_codes(code: int, valid: bool) -> None:
    payload = struct.pack("!H", code) + b"why"
    _, frames = decode(WS, srv(8, payload))
    if valid:
        assert frames == [Close(code, "why")]
        _, data = encode(WS, Close(code, "why"))
        assert unmask_client_frame(data)[3] == payload
    else:
        assert frames == [err(("invalid_close_payload", payload))]
        assert frames[0].close_code == 1002  # type: ignore[union-attr]
        with pytest.raises(WebSocketError) as info:
            encode(WS, Close(code, "why"))
        assert reason_tag(info.value.reason) == "invalid_close_payload"


def test_every_reason_has_a_message() -> None:
    reasons = {
        "masked_server_frame",
        "unsupported_opcode",
        "unexpected_continuation",
        "incomplete_message",
        "malformed_reserved",
        "fragmented_control_frame",
        "control_frame_too_large",
        "invalid_length",
        "invalid_utf8",
        "invalid_close_payload",
        "payload_too_large",
        "invalid_frame",
        "invalid_extension",
        "invalid_limit",
    }
    for tag in {reason_tag(c[2][-1].reason) for c in ERROR_CASES}:  # type: ignore[union-attr]
        assert tag in reasons
    for reason in reasons:
        assert reason in _MESSAGES
        assert len(_MESSAGES[reason]) > 15
        assert str(WebSocketError(reason)) != reason


# ------------------------------------------------------------------ fail fast


def test_utf8_fails_fast_inside_a_partial_frame() -> None:
    # Autobahn 6.4.3/6.4.4: the frame header promises more, but the bytes so far
    # are already invalid: report now, without waiting for the rest.
    payload = "κόσμε".encode() + b"\xf4\x90\x80\x80" + b"x" * 1000
    data = srv(1, payload)
    ws, frames = decode(WS, data[:20])
    assert frames == [err(("invalid_utf8", data[4:20]), 1007)]
    assert decode(ws, data[20:])[1] == frames


def test_utf8_fails_fast_on_surrogate_lead_at_the_end_of_a_chunk() -> None:
    data = srv(1, b"ab\xed\xa0\x80cd")
    _, frames = decode(WS, data[:6])  # header + "ab" + ED A0
    assert len(frames) == 1
    assert isinstance(frames[0], WebSocketError)
    assert frames[0].close_code == 1007


def test_utf8_fails_fast_across_fragments() -> None:
    ws, frames = decode(WS, srv(1, b"ok", fin=False))
    assert frames == []
    _, frames = decode(ws, srv(0, b"\xc0", fin=False))  # C0 can never be valid
    assert frames == [err(("invalid_utf8", b"\xc0"), 1007)]


def test_utf8_partial_sequence_at_end_of_chunk_is_kept() -> None:
    data = srv(1, "a☃b".encode())
    for cut in range(2, len(data)):
        ws, frames = decode(WS, data[:cut])
        assert frames == []
        assert decode(ws, data[cut:])[1] == [Text("a☃b")]


def test_large_text_frame_validated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = frame_mod.decode_part

    def spy(tail: bytes, part: bytes) -> tuple[str, bytes]:
        calls.append(len(part))
        return real(tail, part)

    monkeypatch.setattr(frame_mod, "decode_part", spy)
    payload = "é".encode() * 50_000
    data = srv(1, payload)
    ws = WS
    for i in range(0, len(data), 1000):  # (the Python decoder's: C's decodes in C)
        ws, frames = frame_mod.python_decode(ws, data[i : i + 1000])
    assert frames == [Text("é" * 50_000)]
    assert sum(calls) == len(payload)  # each byte seen once


@pytest.mark.parametrize("opcode", [1, 2])
@pytest.mark.parametrize("cut", [10, 70_000, 150_000, 300_009, 300_010, 300_011])
def test_large_payloads_across_reads_decode_to_bytes(opcode: int, cut: int) -> None:
    # Parts of 64 KiB and more are kept as views of the bytes read (no copy per
    # read): what comes out is still one bytes/str per message, the frames behind
    # it in the same read decode as usual, and the old WebSocket value still works.
    payload = bytes(range(97, 123)) * 11_539 + b"z"  # 300_015 bytes, ASCII
    big = srv(opcode, payload[:300_000], fin=False) + srv(0, payload[300_000:])
    data = big + srv(2, b"after") + srv(9, b"p")
    ws, first = decode(new_websocket(max_message_size=None), data[:cut])
    ws2, rest = decode(ws, data[cut:])
    items = first + rest
    want: object = payload.decode() if opcode == 1 else payload
    assert [type(f) for f in items] == [Text if opcode == 1 else Binary, Binary, Ping]
    assert items[0].data == want  # type: ignore[union-attr]
    assert type(items[0].data) is (str if opcode == 1 else bytes)  # type: ignore[union-attr]
    assert items[1:] == [Binary(b"after"), Ping(b"p")]
    assert decode(ws, data[cut:])[1] == rest  # the value passed in is unchanged
    assert ws2 is not None


@pytest.mark.parametrize("opcode", [1, 2])
@pytest.mark.parametrize("read", [7, 4096, 65_536, 70_001, 400_000])
def test_a_message_over_many_reads(opcode: int, read: int) -> None:
    # The common case of a large message (and of any message over TLS, which comes a
    # record at a time): an unfragmented frame whose payload takes many reads, then
    # more frames. Every intermediate value stays usable (immutable), and counts what
    # is still to come. The text has 2-, 3- and 4-byte sequences, so reads end inside
    # them.
    if opcode == 1:
        text = ("aé☃𝄞" * 104_858)[: 1 << 20]
        payload = text.encode()
        message: object = Text(text)
    else:
        payload = bytes(range(256)) * 4096 + b"end"  # 1 MiB + 3
        message = Binary(payload)
    head = 10
    data = srv(opcode, payload) + srv(2, b"after") + srv(9, b"p") + srv(1, b"x" * 70_000)
    ws = new_websocket(max_message_size=None)
    chunks = [data[at : at + read] for at in range(0, len(data), read)]
    values, steps = [], []
    for i, chunk in enumerate(chunks):
        values.append(ws)
        ws, more = decode(ws, chunk)
        steps.append(more)
        if (i + 1) * read < head + len(payload):
            assert more == []
        if head <= (i + 1) * read < head + len(payload):  # the header is in, not the payload
            assert ws._rx is not None and ws._rx.left == head + len(payload) - (i + 1) * read
    items = [item for more in steps for item in more]
    assert items == [message, Binary(b"after"), Ping(b"p"), Text("x" * 70_000)]
    assert type(items[0].data) is (str if opcode == 1 else bytes)  # type: ignore[union-attr]
    assert ws._rx is None
    half = len(chunks) // 2  # an old value decodes the rest again as it did
    replay, again = values[half], []
    for chunk in chunks[half:]:
        replay, more = decode(replay, chunk)
        again.append(more)
    assert again == steps[half:]


@pytest.mark.parametrize("bad", [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])
@pytest.mark.parametrize("where", ["first read", "middle", "last read", "tail"])
def test_bad_utf8_in_a_text_frame_over_reads_fails_at_once(bad: bytes, where: str) -> None:
    # Fail fast (RFC 6455 8.1): the read that shows the bytes can no longer be UTF-8
    # gets the 1007, whichever read of the payload it is; the reads before it do not.
    good = "é☃".encode() * 20_000  # 100,000 bytes
    if where == "tail":  # the message ends inside a sequence: known at its end only
        payload = good + b"\xe2\x98"
        shows = len(payload) - 1
    else:
        at = {"first read": 100, "middle": 50_001, "last read": 99_990}[where]
        payload = good[:at] + bad + good[at:]
        # the byte from which the prefix can no longer be UTF-8: the lead itself, or
        # (0xED 0xA0: a surrogate; 0xF4 0x90: past U+10FFFF) the byte after it
        shows = at + (1 if bad[0] in (0xED, 0xF4) else 0)
    data = srv(1, payload)
    ws = new_websocket(max_message_size=None)
    reads = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    for i, chunk in enumerate(reads):
        ws, frames = decode(ws, chunk)
        if frames:
            assert len(frames) == 1 and isinstance(frames[0], WebSocketError)
            assert frames[0].close_code == 1007 and reason_tag(frames[0].reason) == "invalid_utf8"
            assert i == (10 + shows) // 4096, "not the read that showed it"
            break
    else:
        raise AssertionError("no error")


@pytest.mark.parametrize("opcode", [1, 2])
def test_fragments_whose_frames_end_with_their_reads(opcode: int) -> None:
    # A fragmented message whose every frame ends exactly where a read ends, so a read
    # is all payload and all of a frame's rest: each is kept whole for the join.
    pieces = [b"a" * 5_000, "é".encode() * 40_000, b"z" * 3, b"q" * 70_000]
    frames = [
        srv(opcode if i == 0 else 0, piece, fin=i == len(pieces) - 1)
        for i, piece in enumerate(pieces)
    ]
    reads = []
    for f in frames:  # the header and 10 bytes, then the rest of the frame
        head = 2 if len(f) < 136 else (4 if len(f) - 4 < 65536 else 10)
        reads += [f[: head + 10], f[head + 10 :]]
    ws = new_websocket(max_message_size=None)
    items: list[object] = []
    for read in reads:
        ws, more = decode(ws, read)
        items += more
    whole = b"".join(pieces)
    assert items == [Text(whole.decode()) if opcode == 1 else Binary(whole)]
    assert ws._rx is None


def test_large_invalid_utf8_part_is_reported_as_bytes() -> None:
    payload = b"a" * 100_000 + b"\xff" + b"b" * 100_000
    data = srv(1, payload)
    ws, frames = decode(new_websocket(max_message_size=None), data[:50])
    assert frames == []
    _, frames = decode(ws, data[50:])
    assert len(frames) == 1 and isinstance(frames[0], WebSocketError)
    assert frames[0].close_code == 1007
    reason = frames[0].reason
    assert reason[0] == "invalid_utf8" and type(reason[1]) is bytes


def test_small_parts_do_not_hold_large_reads() -> None:
    # A small part of a large read is copied, so a fragmented message made of
    # small pieces never pins the large buffers it arrived in.
    part = frame_mod._part(b"x" * 200_000, 10, 20)
    assert type(part) is bytes and part == b"x" * 10
    view = frame_mod._part(b"y" * 200_000, 10, 150_000)
    assert type(view) is memoryview and bytes(view) == b"y" * 149_990
    whole = b"w" * 100_000
    assert frame_mod._part(whole, 0, len(whole)) is whole


# ------------------------------------------------------------------ limits


def test_max_frame_size() -> None:
    ws = new_websocket(max_frame_size=10)
    assert decode(ws, srv(2, b"x" * 10))[1] == [Binary(b"x" * 10)]
    _, frames = decode(ws, srv(2, b"x" * 11)[:4])  # only the header: fails at once
    assert frames == [err("payload_too_large", 1009)]
    assert frames[0].close_code == 1009  # type: ignore[union-attr]


@pytest.mark.parametrize("limit", [0, 10, 125, 126, 65535, 65536, 70_000])
@pytest.mark.parametrize("which", ["max_frame_size", "max_message_size"])
@pytest.mark.parametrize("opcode", [1, 2])
def test_limits_are_exact_on_whole_frames(limit: int, which: str, opcode: int) -> None:
    """A frame of exactly the limit passes, one byte more fails, in every length form."""
    ws = new_websocket(**{which: limit})  # type: ignore[arg-type]
    value = Text("x" * limit) if opcode == 1 else Binary(b"x" * limit)
    empty = Text("") if opcode == 1 else Binary(b"")
    ok = srv(opcode, b"x" * limit)
    assert decode(ws, srv(opcode, b"") + ok + srv(opcode, b""))[1] == [empty, value, empty]
    over = srv(opcode, b"x" * (limit + 1))
    _, frames = decode(ws, ok + over + ok)
    assert frames == [value, err("payload_too_large", 1009)]
    # Alone in a read (the shortcuts for one whole message): the same answers.
    assert decode(ws, ok)[1] == [value]
    assert decode(ws, over)[1] == [err("payload_too_large", 1009)]


def test_max_message_size_over_fragments() -> None:
    ws = new_websocket(max_message_size=10)
    ok = srv(2, b"x" * 5, fin=False) + srv(0, b"y" * 5)
    assert decode(ws, ok)[1] == [Binary(b"x" * 5 + b"y" * 5)]
    bad = srv(2, b"x" * 5, fin=False) + srv(0, b"y" * 6)[:2]
    assert decode(ws, bad)[1] == [err("payload_too_large", 1009)]


def test_huge_length_fails_on_header_without_buffering() -> None:
    ws = new_websocket()  # 64 MiB
    header = bytes([0x82, 127]) + struct.pack("!Q", 2**40)
    _, frames = decode(ws, header)
    assert frames == [err("payload_too_large", 1009)]


def test_unlimited() -> None:
    ws = new_websocket(max_message_size=None, max_frame_size=None)
    data = srv(2, b"z" * 70_000)
    assert decode(ws, data)[1] == [Binary(b"z" * 70_000)]


@pytest.mark.parametrize("bad", [-1, "10", 1.5, True])
def test_invalid_limits(bad: object) -> None:
    with pytest.raises(WebSocketError) as info:
        new_websocket(max_frame_size=bad)  # type: ignore[arg-type]
    assert info.value.reason == ("invalid_limit", bad)


# ------------------------------------------------------------------ state


def test_decode_does_not_change_its_argument() -> None:
    data = srv(1, b"ab", fin=False) + srv(9) + srv(0, b"cd") + srv(2, b"x" * 300)
    ws, _ = decode(WS, data[:7])
    before = (ws._cfg, ws._rx, ws._tx)
    first = decode(ws, data[7:20])
    second = decode(ws, data[7:20])
    assert first[1] == second[1]
    assert first[0] == second[0]
    assert (ws._cfg, ws._rx, ws._tx) == before
    assert first[0] is not ws


def test_unchanged_state_returns_same_value() -> None:
    ws, frames = decode(WS, srv(1, b"a") + srv(2, b"b"))
    assert ws is WS
    assert frames == [Text("a"), Binary(b"b")]
    ws2, frames = decode(WS, b"")
    assert ws2 is WS and frames == []


def test_repr_does_not_dump_buffers() -> None:
    ws, _ = decode(WS, srv(2, b"secret" * 100)[:-1])
    text = repr(ws)
    assert "secret" not in text
    assert "buffered=" in text
    failed, _ = decode(WS, srv(3))
    assert "unsupported_opcode" in repr(failed)


def test_bytearray_and_memoryview_input() -> None:
    data = srv(2, b"abc")
    assert decode(WS, bytearray(data))[1] == [Binary(b"abc")]
    assert decode(WS, memoryview(data))[1] == [Binary(b"abc")]  # type: ignore[arg-type]
    assert type(decode(WS, bytearray(data))[1][0].data) is bytes  # type: ignore[union-attr]


def test_websocket_is_frozen() -> None:
    with pytest.raises(AttributeError):
        WS._rx = None  # type: ignore[misc]


# ------------------------------------------------------------------ encode

ENCODE_CASES: list[tuple[str, object, int, bytes]] = [
    ("text", Text("hi"), 0x81, b"hi"),
    ("text utf8", Text("☃"), 0x81, "☃".encode()),
    ("binary", Binary(b"\x00\x01"), 0x82, b"\x00\x01"),
    ("empty binary", Binary(b""), 0x82, b""),
    ("ping", Ping(b"p"), 0x89, b"p"),
    ("pong", Pong(b"q"), 0x8A, b"q"),
    ("close none", Close(), 0x88, b""),
    ("close code", Close(1000), 0x88, b"\x03\xe8"),
    ("close reason", Close(1001, "bye"), 0x88, b"\x03\xe9bye"),
    ("close empty reason", Close(1000, ""), 0x88, b"\x03\xe8"),
    ("shorthand ping", "ping", 0x89, b""),
    ("shorthand pong", "pong", 0x8A, b""),
    ("shorthand close", "close", 0x88, b""),
    ("ping 125", Ping(b"x" * 125), 0x89, b"x" * 125),
    ("binary 125", Binary(b"x" * 125), 0x82, b"x" * 125),
    ("binary 126", Binary(b"x" * 126), 0x82, b"x" * 126),
    ("binary 65535", Binary(b"x" * 65535), 0x82, b"x" * 65535),
    ("binary 65536", Binary(b"x" * 65536), 0x82, b"x" * 65536),
    ("binary bytearray", Binary(bytearray(b"ab")), 0x82, b"ab"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("frame", "b0", "payload"), [c[1:] for c in ENCODE_CASES], ids=[c[0] for c in ENCODE_CASES]
)
def test_encode(frame: object, b0: int, payload: bytes) -> None:
    ws, data = encode(WS, frame)  # type: ignore[arg-type]
    got_b0, n, _key, unmasked = unmask_client_frame(data)
    assert got_b0 == b0
    assert unmasked == payload
    # Minimal length encoding (RFC 6455 5.2).
    marker = data[1] & 0x7F
    assert marker == (n if n < 126 else 126 if n < 65536 else 127)
    assert ws is WS  # nothing but the shared key source changed


def test_encode_masks_with_fresh_keys_from_a_pool() -> None:
    requests: list[int] = []
    source = counter_bytes()

    def random_bytes(n: int) -> bytes:
        requests.append(n)
        return source(n)

    ws = new_websocket(random_bytes=random_bytes)
    keys = []
    for _ in range(1100):
        ws, data = encode(ws, Text("x"))
        keys.append(unmask_client_frame(data)[2])
    assert requests == [4096, 4096]  # one call per 1024 frames, none per frame
    assert keys[0] == b"\x00\x01\x02\x03"
    assert keys[1] == b"\x04\x05\x06\x07"
    assert len({k for k in keys[:64]}) == 64


def test_encode_is_deterministic_with_injected_randomness() -> None:
    frames = [Text("a"), Binary(b"b" * 300), Ping(b"c"), Close(1000, "d")]

    def run() -> list[bytes]:
        ws = new_websocket(random_bytes=counter_bytes())
        out = []
        for f in frames:
            ws, data = encode(ws, f)  # type: ignore[arg-type]
            out.append(data)
        return out

    assert run() == run()


def test_encode_accepts_short_random_bytes() -> None:
    ws = new_websocket(random_bytes=lambda n: b"\xaa\xbb\xcc\xdd")
    ws, a = encode(ws, Text("x"))
    ws, b = encode(ws, Text("x"))
    assert a == b  # the injected source repeats itself; the codec asks again
    assert a[2:6] == b"\xaa\xbb\xcc\xdd"


def test_encode_never_repeats_a_key_when_an_old_value_is_reused() -> None:
    calls = iter(range(10))

    def distinct_keys(n: int) -> bytes:  # 4-byte big-endian counters: all keys distinct
        first = next(calls) * (n // 4)
        return b"".join(i.to_bytes(4, "big") for i in range(first, first + n // 4))

    ws = new_websocket(random_bytes=distinct_keys)
    keys = set()
    for _ in range(1100):
        _, data = encode(ws, Text("x"))  # the returned value is dropped on purpose
        keys.add(unmask_client_frame(data)[2])
    assert len(keys) == 1100


def test_encode_keeps_the_decoder_state() -> None:
    ws, _ = decode(new_websocket(), srv(1, b"partial")[:3])
    ws2, _ = encode(ws, Binary(b"x"))
    assert ws2 is ws
    _, frames = decode(ws2, srv(1, b"partial")[3:])
    assert frames == [Text("partial")]


def test_encode_does_not_split_large_frames() -> None:
    ws = new_websocket(max_frame_size=10)
    _, data = encode(ws, Binary(b"x" * 100))
    assert unmask_client_frame(data)[3] == b"x" * 100


def test_encode_works_on_failed_websocket() -> None:
    failed, _ = decode(WS, srv(3))
    _, data = encode(failed, Close(1002))
    assert unmask_client_frame(data)[3] == b"\x03\xea"


ENCODE_ERRORS: list[tuple[str, object, object]] = [
    ("ping 126", Ping(b"x" * 126), "control_frame_too_large"),
    ("pong 126", Pong(b"x" * 126), "control_frame_too_large"),
    ("close too long", Close(1000, "x" * 124), "control_frame_too_large"),
    (
        "close reason without code",
        Close(None, "why"),
        ("invalid_close_payload", Close(None, "why")),
    ),
    ("close 1005", Close(1005), ("invalid_close_payload", Close(1005))),
    ("close 1006", Close(1006, "x"), ("invalid_close_payload", Close(1006, "x"))),
    ("close bad type", Close("1000"), ("invalid_close_payload", Close("1000"))),  # type: ignore[arg-type]
    ("lone surrogate", Text("\ud800"), ("invalid_utf8", "\ud800")),
    ("text not str", Text(b"x"), ("invalid_frame", Text(b"x"))),  # type: ignore[arg-type]
    ("binary not bytes", Binary("x"), ("invalid_frame", Binary("x"))),  # type: ignore[arg-type]
    ("unknown shorthand", "text", ("invalid_frame", "text")),
    ("not a frame", 42, ("invalid_frame", 42)),
]


@pytest.mark.parametrize(
    ("frame", "reason"), [c[1:] for c in ENCODE_ERRORS], ids=[c[0] for c in ENCODE_ERRORS]
)
def test_encode_errors(frame: object, reason: object) -> None:
    with pytest.raises(WebSocketError) as info:
        encode(WS, frame)  # type: ignore[arg-type]
    assert info.value.reason == reason
    assert info.value.websocket is WS
    assert reason_tag(info.value.reason) in _MESSAGES


def test_round_trip_through_server_unmasking() -> None:
    frames = [
        Text("héllo"),
        Binary(bytes(range(256)) * 300),
        Ping(b"x"),
        Pong(b""),
        Close(3000, "r"),
    ]
    ws = new_websocket(random_bytes=counter_bytes())
    for f in frames:
        ws, data = encode(ws, f)
        b0, _, _, payload = unmask_client_frame(data)
        assert decode(WS, srv(b0 & 0x0F, payload))[1] == [f]


# ------------------------------------------------------------------ mask


MASK_SIZES = [0, 1, 2, 3, 4, 5, 15, 16, 17, 255, 256, 257, 1000, 1023, 1024, 1025, 1026, 1027]
MASK_SIZES += [65535, 65536, 65537, 200_001]


@pytest.mark.parametrize("n", MASK_SIZES)
def test_mask_matches_bytewise_xor(n: int) -> None:
    data = bytes((i * 7 + 3) % 256 for i in range(n))
    key = b"\x12\x34\x56\x78"
    expected = bytes(b ^ key[i % 4] for i, b in enumerate(data))
    assert _mask_py(data, key) == expected
    assert mask(data, key) == expected
    assert _mask_py(expected, key) == data


def test_mask_rejects_bad_key() -> None:
    with pytest.raises(ValueError):
        _mask_py(b"abc", b"abc")


def test_mask_uses_speedup_when_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import sys
    import types

    fake = types.ModuleType("mint._speedups")
    fake.mask = lambda data, key: b"C"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mint._speedups", fake)
    monkeypatch.delenv("MINT_NO_SPEEDUPS", raising=False)
    assert frame_mod._load_speedup() is fake
    monkeypatch.setenv("MINT_NO_SPEEDUPS", "1")  # forces the pure-Python fallback
    assert frame_mod._load_speedup() is None
    monkeypatch.setenv("MINT_NO_SPEEDUPS", "0")
    assert frame_mod._load_speedup() is fake
    monkeypatch.setitem(sys.modules, "mint._speedups", None)  # import fails
    assert frame_mod._load_speedup() is None
    assert importlib.import_module("mint.websocket._frame") is frame_mod


def test_new_websocket_rejects_bad_extensions() -> None:
    class A(Extension):
        name = "a"
        rsv_bits = 0x40

    class B(Extension):
        name = "b"
        rsv_bits = 0x40

    class Bad(Extension):
        name = "bad"
        rsv_bits = 0x80

    with pytest.raises(WebSocketError) as info:
        new_websocket(extensions=[A(), B()])
    assert reason_tag(info.value.reason) == "invalid_extension"
    with pytest.raises(WebSocketError):
        new_websocket(extensions=[Bad()])
    with pytest.raises(WebSocketError):
        new_websocket(extensions=["permessage-deflate"])  # type: ignore[list-item]
    assert new_websocket(extensions=[A()]).extensions[0].name == "a"


@pytest.mark.parametrize("speedup", [False, True])
def test_encode_with_and_without_speedup(monkeypatch: pytest.MonkeyPatch, speedup: bool) -> None:
    # Both the pure-Python path (small frames are masked inline) and whatever
    # ``mask`` is (the C speedup when built) give correct frames.
    encoder = encode  # the public function: the C entry point when built
    if not speedup:
        monkeypatch.setattr(frame_mod, "_mask_c", None)
        monkeypatch.setattr(frame_mod, "_frame_c", None)
        monkeypatch.setattr(frame_mod, "_mask", _mask_py)
        encoder = frame_mod.python_encode
    ws = new_websocket(random_bytes=counter_bytes())
    for n in [*range(0, 300), 65535, 65536, 70_000]:
        payload = bytes((i * 31) % 256 for i in range(n))
        ws, data = encoder(ws, Binary(payload))
        assert data[0] == 0x82 and unmask_client_frame(data)[3] == payload
        text = "".join(chr(97 + i % 26) for i in range(n))
        ws, data = encoder(ws, Text(text))
        assert data[0] == 0x81 and unmask_client_frame(data)[3] == text.encode()


def test_a_websocket_that_sent_a_frame_holds_little() -> None:
    # The mask key pool (4 KiB of random bytes) was also unpacked into a tuple of
    # 1,024 ints on every refill, which only the pure-Python builder reads: 40 KiB
    # more per WebSocket once it had sent a frame through the C encoder.
    import tracemalloc

    if frame_mod._frame_c is None:
        pytest.skip("mint._speedups is not built (or MINT_NO_SPEEDUPS)")
    sockets = [new_websocket() for _ in range(200)]
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        sent = [encode(ws, Binary(b"hi"))[0] for ws in sockets]
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    per_websocket = (after - before) / len(sent)
    assert per_websocket < 6 * 1024, per_websocket  # the 4 KiB pool


@pytest.mark.parametrize("speedup", [False, True])
def test_keys_past_one_pool_mask_correctly(monkeypatch: pytest.MonkeyPatch, speedup: bool) -> None:
    # The pure-Python builder unpacks a pool's keys at its first use of that pool.
    if not speedup:
        monkeypatch.setattr(frame_mod, "_frame_c", None)
    seen = set()
    ws = new_websocket()
    for i in range(2100):  # past two pools, and switching builder half-way
        if i == 1500:
            monkeypatch.setattr(frame_mod, "_frame_c", None)
        ws, data = encode(ws, Binary(b"abc"))
        assert unmask_client_frame(data)[3] == b"abc"
        seen.add(data[2:6])
    assert len(seen) > 2000  # random keys, one per frame


def test_c_frame_matches_the_pure_python_frame() -> None:
    speedups = pytest.importorskip("mint._speedups")
    pool = bytes(range(256)) * 4
    for n in [0, 1, 7, 125, 126, 300, 65535, 65536, 70_000]:
        payload = bytes((i * 13) % 256 for i in range(n))
        for b0, at in [(0x82, 0), (0x81, 5), (0xC1, 1020)]:
            expected = frame_mod._frame_py(b0, payload, pool, at)
            assert speedups.frame(b0, payload, pool, at) == expected
    for bad in [(0x82, b"x", pool, 1021), (0x82, b"x", pool, -1), (256, b"x", pool, 0)]:
        with pytest.raises(ValueError):
            speedups.frame(*bad)
    with pytest.raises(TypeError):
        speedups.frame(0x82, bytearray(b"x"), pool, 0)


# ------------------------------------------------------------------ frame values


@pytest.mark.parametrize(
    ("cls", "args", "kwargs", "fields"),
    [
        (Text, ("hé",), {}, {"data": "hé"}),
        (Binary, (b"\x00\xff",), {}, {"data": b"\x00\xff"}),
        (Ping, (), {}, {"data": b""}),
        (Ping, (), {"data": b"p"}, {"data": b"p"}),
        (Pong, (b"q",), {}, {"data": b"q"}),
        (Pong, (), {}, {"data": b""}),
        (Close, (), {}, {"code": None, "reason": None}),
        (Close, (1000,), {}, {"code": 1000, "reason": None}),
        (Close, (), {"reason": "bye", "code": 1001}, {"code": 1001, "reason": "bye"}),
    ],
)
def test_frames_are_frozen_slotted_dataclasses(
    cls: Any, args: tuple[object, ...], kwargs: dict[str, object], fields: dict[str, object]
) -> None:
    """The hand-written ``__init__``s keep the dataclass contract API.md promises."""
    frame = cls(*args, **kwargs)
    assert dataclasses.is_dataclass(frame)
    assert [f.name for f in dataclasses.fields(frame)] == list(fields)
    assert dataclasses.asdict(frame) == fields
    assert not hasattr(frame, "__dict__")
    assert frame == cls(**fields) and hash(frame) == hash(cls(**fields))
    assert repr(frame) == f"{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"
    assert list(inspect.signature(cls).parameters) == list(fields)
    name = next(iter(fields))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(frame, name, fields[name])
    with pytest.raises(TypeError):
        cls(*args, unknown=1, **kwargs)
    changed = dataclasses.replace(frame, **{name: None})
    assert getattr(changed, name) is None and type(changed) is cls
    assert cls.__match_args__ == tuple(fields)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Binary(), "missing 1 required positional argument: 'data'"),
        (lambda: Text("a", "b"), "takes 2 positional arguments but 3 were given"),
        (lambda: Ping(b"a", b"b"), "takes from 1 to 2 positional arguments but 3 were given"),
        (lambda: Close(1000, "a", "b"), "takes from 1 to 3 positional arguments but 4 were given"),
        (lambda: Close(1000, code=1000), "got multiple values for argument 'code'"),
        (lambda: Binary(b"a", data=b"b"), "got multiple values for argument 'data'"),
    ],
)
def test_frame_construction_errors_are_pythons(call: Callable[[], object], message: str) -> None:
    """Construction errors read as the ``__init__``'s own, with the C constructor or without."""
    with pytest.raises(TypeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_frame_classes_can_be_subclassed_and_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    """A subclass runs its own ``__init__``, and a patched ``__init__`` is the one that runs
    (the C constructor steps aside), until it is put back."""

    class Joined(Binary):
        def __init__(self, a: bytes, b: bytes) -> None:
            super().__init__(a + b)

    joined = Joined(b"a", b"b")
    assert type(joined) is Joined and joined.data == b"ab"
    assert Binary(b"c") == Binary(b"c") and type(Binary(b"c")) is Binary

    calls: list[tuple[object, ...]] = []
    original = Close.__init__

    def spy(self: Close, *args: Any) -> None:
        calls.append(args)
        original(self, *args)

    monkeypatch.setattr(Close, "__init__", spy)
    assert Close(1000, "bye").reason == "bye"
    assert Close().code is None
    assert calls == [(1000, "bye"), ()]
    monkeypatch.undo()
    assert Close(1001).code == 1001 and len(calls) == 2


@pytest.mark.parametrize("cls", [Text, Binary, Ping, Pong, Close])
def test_frame_defaults_are_the_dataclass_defaults(cls: Any) -> None:
    fields = dataclasses.fields(cls)
    required = [f for f in fields if f.default is dataclasses.MISSING]
    args = ["x" if cls is Text else b"x" for _ in required]
    frame = cls(*args)
    for f in fields[len(required) :]:
        assert getattr(frame, f.name) is f.default
    values = [1000, "why"] if cls is Close else args or [b"y"]
    full = cls(*values)
    assert [getattr(full, f.name) for f in fields] == values


def test_frames_match_by_position() -> None:
    def describe(frame: object) -> str:
        match frame:
            case Close(code, reason):
                return f"close {code} {reason}"
            case Binary(data) | Ping(data) | Pong(data):
                return f"{type(frame).__name__} {data!r}"
            case Text(data):
                return f"text {data}"
        return "other"

    assert describe(Close(1000, "ok")) == "close 1000 ok"
    assert describe(Binary(b"b")) == "Binary b'b'"
    assert describe(Pong()) == "Pong b''"
    assert describe(Text("t")) == "text t"
    assert describe(b"x") == "other"


# ------------------------------------------------------------------ the C entry points


def test_positional_frame_construction_skips_the_python_init_when_built() -> None:
    """With the C module, ``Binary(data)`` enters no Python frame (the hot path of every
    send); keywords, and the pure-Python build, run ``__init__``."""
    import sys

    entered: list[str] = []

    def profile(frame: Any, event: str, arg: object) -> None:
        if event == "call" and frame.f_code.co_name == "__init__":
            entered.append(frame.f_code.co_qualname)

    sys.setprofile(profile)
    try:
        built = [Binary(b"b"), Text("t"), Ping(), Pong(b"p"), Close(1000, "r")]
        by_keyword = Binary(data=b"k")
    finally:
        sys.setprofile(None)
    assert [type(f) for f in built] == [Binary, Text, Ping, Pong, Close]
    assert by_keyword.data == b"k"
    if frame_mod._speedups is None:
        names = ["Binary", "Text", "Ping", "Pong", "Close", "Binary"]
        assert entered == [f"{name}.__init__" for name in names]
    else:
        assert entered == ["Binary.__init__"]


def test_public_encode_and_decode_are_the_c_entry_points_when_built() -> None:
    import mint.websocket

    speedups = frame_mod._speedups
    if speedups is None:
        assert encode is frame_mod.python_encode and decode is frame_mod.python_decode
    else:
        for public, python in [
            (encode, frame_mod.python_encode),
            (decode, frame_mod.python_decode),
        ]:
            assert type(public) is type(speedups.encode)  # a C function
            assert public.__name__ == python.__name__
            assert public.__doc__ == python.__doc__  # help() shows the Python documentation
            assert list(inspect.signature(public).parameters) == list(
                inspect.signature(python).parameters
            )
    assert mint.websocket.encode is encode and mint.websocket.decode is decode


class _Tagged(Extension):
    name = "x-tagged"
    rsv_bits = 0x40


def _outcome(call: Any) -> Any:
    try:
        _, data = call()
    except Exception as exc:  # the same error, by type and reason
        return ("error", type(exc), getattr(exc, "reason", None))
    return ("ok", data)


def test_c_encode_matches_python_encode_byte_for_byte() -> None:
    """Same key source, same frames: every case the entry point takes or hands over."""
    frames: list[Any] = []
    for n in [0, 1, 3, 4, 125, 126, 127, 65535, 65536, 70_000]:
        frames += [Binary(bytes(range(256)) * (n // 256) + bytes(n % 256)), Text("é" * (n // 2))]
    frames += [
        Text("\ud800"),  # a lone surrogate: Python's invalid_utf8
        Binary(bytearray(b"abc")),  # not bytes: the Python path
        Binary(memoryview(b"abc")),
        Ping(b"p"),
        Pong(b""),
        Close(1000, "bye"),
        Close(1005, ""),  # may not be sent: Python's error
        "ping",
        "close",
        "nonsense",
        42,
    ]
    frames += [Binary(bytes([i % 256])) for i in range(1500)]  # through a pool refill
    for extensions in ([], [_Tagged()]):
        ws_c = new_websocket(random_bytes=counter_bytes(), extensions=extensions)
        ws_py = new_websocket(random_bytes=counter_bytes(), extensions=extensions)
        for frame in frames:
            got = _outcome(lambda: encode(ws_c, frame))  # noqa: B023
            want = _outcome(lambda: frame_mod.python_encode(ws_py, frame))  # noqa: B023
            assert got == want, frame
    assert encode(websocket=ws_c, frame=Binary(b"k"))[1][0] == 0x82  # keywords: the Python path


def test_c_decode_matches_python_decode_for_every_input_type_and_state() -> None:
    inputs: list[Any] = [
        b"",
        srv(2, b"abc") + srv(1, "hé".encode()),
        bytearray(srv(2, b"abc")),
        memoryview(srv(1, b"xyz")),
        srv(1, b"\xff"),  # bad UTF-8: the loop reports it
        srv(2, b"a") + srv(9, b"p") + srv(2, b"b"),  # a ping stops the scan
        srv(2, b"x" * 300)[:100],  # a partial frame: state for the next call
        srv(2, b"x" * 300)[100:],
        srv(2, b"q", fin=False) + srv(0, b"r"),
        srv(2, b"m", masked=True),  # a masked server frame fails the WebSocket
        srv(2, b"after the failure"),
    ]
    for settings in ({}, {"max_frame_size": 2}, {"extensions": [_Tagged()]}):
        ws_c = new_websocket(**settings)
        ws_py = new_websocket(**settings)
        for data in inputs:
            ws_c, got = decode(ws_c, data)
            ws_py, want = frame_mod.python_decode(ws_py, data)
            strip = [
                (type(i), getattr(i, "reason", None)) if isinstance(i, Exception) else i
                for i in got
            ]
            assert strip == [
                (type(i), getattr(i, "reason", None)) if isinstance(i, Exception) else i
                for i in want
            ], (settings, data)
            assert repr(ws_c) == repr(ws_py)
    _, frames = decode(websocket=new_websocket(), data=srv(2, b"k"))  # keywords: the Python path
    assert frames == [Binary(b"k")]


def test_parameter_names_are_the_contracts() -> None:
    """API.md: ``encode(websocket, frame)``, ``decode(websocket, data)``; the C entry
    points and the Python functions alike, and a keyword call works on both."""
    ws = new_websocket()
    for enc, dec in [(encode, decode), (frame_mod.python_encode, frame_mod.python_decode)]:
        assert list(inspect.signature(enc).parameters) == ["websocket", "frame"]
        assert list(inspect.signature(dec).parameters) == ["websocket", "data"]
        ws, data = enc(websocket=ws, frame=Text("x"))
        assert len(data) == 7
        ws, frames = dec(websocket=ws, data=b"\x81\x01y")
        assert frames == [Text("y")]


@pytest.mark.parametrize("opcode", [0x9, 0xA, 0x8])
def test_max_frame_size_bounds_control_frames_too(opcode: int) -> None:
    """``max_frame_size`` is "the largest frame payload to accept": a control frame over
    it fails like a data frame (1009), after the frames before it; one at it passes."""
    payload = b"\x03\xe8ok"  # also a valid Close payload (1000, "ok")
    ws = new_websocket(max_frame_size=4)
    ws, frames = decode(ws, srv(2, b"1234") + srv(opcode, payload))
    assert len(frames) == 2 and frames[0] == Binary(b"1234")
    assert type(frames[1]) is not WebSocketError
    ws = new_websocket(max_frame_size=3)
    ws, frames = decode(ws, srv(2, b"123") + srv(opcode, payload) + srv(2, b"x"))
    assert frames[0] == Binary(b"123")
    assert len(frames) == 2
    error = frames[1]
    assert isinstance(error, WebSocketError)
    assert error.reason == "payload_too_large" and error.close_code == 1009


# ------------------------------------------------------------------ memory per buffered byte


def _held(feed: Callable[[], Any]) -> tuple[int, Any]:
    """The bytes still allocated after ``feed()`` (its result kept alive), and its result."""
    import gc
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    try:
        result = feed()
        gc.collect()
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return held, result


@pytest.mark.parametrize("opcode", [0x1, 0x2])
def test_a_message_of_tiny_fragments_holds_about_its_size(opcode: int) -> None:
    # One-byte fragments held some 56 bytes each (a tuple and an object per part):
    # a server could pin 56 times max_message_size before the limit was reached.
    size = 200_000
    data = srv(opcode, b"a", fin=False) + srv(0x0, b"a", fin=False) * (size - 1)

    def feed() -> Any:
        ws = new_websocket(max_message_size=size + 1)
        for i in range(0, len(data), 30_000):  # reads of 30,000 bytes, as a socket's
            ws, frames = decode(ws, data[i : i + 30_000])
            assert frames == []
        return ws

    held, ws = _held(feed)
    assert held < 2 * size, f"{held / size:.1f} bytes held per payload byte"
    _, frames = decode(ws, srv(0x0, b"a"))
    assert frames == [Text("a" * (size + 1)) if opcode == 0x1 else Binary(b"a" * (size + 1))]


@pytest.mark.parametrize("opcode", [0x1, 0x2])
def test_a_frame_trickled_a_byte_per_read_holds_about_its_size(opcode: int) -> None:
    # The same through the partial-frame path (a frame arriving in tiny reads).
    size = 100_000
    payload = "é".encode() * (size // 2)  # two-byte characters: reads split them too
    data = srv(opcode, payload)

    def feed() -> Any:
        ws = new_websocket()
        for i in range(len(data) - 1):
            ws, frames = decode(ws, data[i : i + 1])
            assert frames == []
        return ws

    held, ws = _held(feed)
    assert held < 2 * size, f"{held / size:.1f} bytes held per payload byte"
    _, frames = decode(ws, data[-1:])
    assert frames == [Text(payload.decode()) if opcode == 0x1 else Binary(payload)]


def test_an_older_value_keeps_its_own_parts_when_parts_are_merged() -> None:
    # Merging builds new objects: decoding on from one partial value twice gives each
    # branch its own message.
    ws = new_websocket()
    ws, _ = decode(ws, srv(0x2, b"ab", fin=False) + srv(0x0, b"cd", fin=False))
    one, _ = decode(ws, srv(0x0, b"ef", fin=False))
    _, frames_two = decode(ws, srv(0x0, b"XY"))
    _, frames_one = decode(one, srv(0x0, b"gh"))
    assert frames_two == [Binary(b"abcdXY")]
    assert frames_one == [Binary(b"abcdefgh")]


def test_decode_refuses_what_is_not_bytes_with_a_typed_error() -> None:
    ws = new_websocket()
    for data in ("text", None, 42, [1, 2]):
        with pytest.raises(WebSocketError) as info:
            decode(ws, data)  # type: ignore[arg-type]
        assert info.value.reason == ("invalid_data", data)
        assert info.value.websocket is ws
    assert decode(ws, bytearray(srv(0x2, b"ok")))[1] == [Binary(b"ok")]


def test_subclasses_of_frames_and_of_str_are_encoded_as_their_base() -> None:
    import enum

    class Cmd(enum.StrEnum):
        SUBSCRIBE = "subscribe"

    @dataclasses.dataclass(frozen=True, slots=True)
    class Tagged(Binary):
        pass

    ws = new_websocket()
    for frame, plain in [
        (Text(Cmd.SUBSCRIBE), Text("subscribe")),
        (Tagged(b"x"), Binary(b"x")),
    ]:
        _, data = encode(ws, frame)
        _, expected = encode(ws, plain)
        assert data[0] == expected[0] and unmask_payload(data) == unmask_payload(expected)


def unmask_payload(data: bytes) -> bytes:
    n = data[1] & 0x7F
    pos = 2 if n < 126 else 4 if n == 126 else 10
    return _mask_py(data[pos + 4 :], data[pos : pos + 4])


def test_encode_and_decode_refuse_what_is_not_a_websocket() -> None:
    # A raw AttributeError before ('NoneType' object has no attribute '_tx').
    for value in (None, 42, "ws"):
        with pytest.raises(WebSocketError) as info:
            encode(value, Text("x"))  # type: ignore[arg-type]
        assert info.value.reason == ("invalid_websocket", value)
        with pytest.raises(WebSocketError) as info:
            encode(value, Close(1000, "bye"))  # type: ignore[arg-type]
        assert info.value.reason == ("invalid_websocket", value)
        with pytest.raises(WebSocketError) as info:
            decode(value, b"\x81\x00")  # type: ignore[arg-type]
        assert info.value.reason == ("invalid_websocket", value)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_draws_new_mask_keys() -> None:
    """Keys come from a pool per WebSocket: a child forked with the value in hand would
    hand out the parent's next keys (RFC 6455 10.3: keys must not be predictable from
    frames already seen). The child drops every pool at the fork."""
    ws, _ = encode(new_websocket(), Binary(b"x"))  # the pool is filled now
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # (3.12+: fork with threads)
        pid = os.fork()
    if pid == 0:  # the child: its next frame's key to the parent, and out
        try:
            os.write(write_end, encode(ws, Binary(b"y"))[1][2:6])
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        child_key = os.read(read_end, 4)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    ws, parent_frame = encode(ws, Binary(b"y"))
    assert len(child_key) == 4
    assert child_key != parent_frame[2:6]
    # The parent's own keys go on from its pool, unchanged by the fork.
    assert encode(ws, Binary(b"z"))[1][2:6] != parent_frame[2:6]
