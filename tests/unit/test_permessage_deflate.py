"""Unit tests of permessage-deflate (RFC 7692): mint.websocket.permessage_deflate.

The server side is played by zlib directly: a raw deflater whose output loses its trailing
``00 00 ff ff`` (RFC 7692 7.2.1) and a raw inflater that gets it back (7.2.2).
"""

from __future__ import annotations

import itertools
import random
import re
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zlib
from pathlib import Path

import pytest

import mint.websocket
from mint.errors import _MESSAGES, WebSocketError, reason_tag
from mint.websocket._frame import WebSocket, _mask_py, decode, encode, new_websocket
from mint.websocket._frames import Binary, Close, Ping, Pong, Text
from mint.websocket._handshake import negotiate_extensions, normalize_extensions, offer_header
from mint.websocket.extension import RSV1, RSV2, RawMessage
from mint.websocket.permessage_deflate import DeflateAgreement, PerMessageDeflate

TAIL = b"\x00\x00\xff\xff"
NAME = "permessage-deflate"


# ------------------------------------------------------------------ helpers: the server side


def srv(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    """An unmasked server frame."""
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    if n < 126:
        return bytes([b0, n]) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", b0, 126, n) + payload
    return struct.pack("!BBQ", b0, 127, n) + payload


def unmask(data: bytes) -> tuple[int, bytes]:
    """The first header byte and the unmasked payload of one client frame."""
    n = data[1] & 0x7F
    pos = 2 if n < 126 else 4 if n == 126 else 10
    key = data[pos : pos + 4]
    return data[0], _mask_py(data[pos + 4 :], key)


class Server:
    """A server's deflate state for one connection, from plain zlib."""

    def __init__(self, agreement: DeflateAgreement) -> None:
        self.agreement = agreement
        self.inflater = zlib.decompressobj(-agreement.client_max_window_bits)
        self.deflater = self._new_deflater()

    def _new_deflater(self) -> object:
        bits = max(self.agreement.server_max_window_bits, 9)
        return zlib.compressobj(6, zlib.DEFLATED, -bits)

    def compress(self, data: bytes) -> bytes:
        if self.agreement.server_no_context_takeover:
            self.deflater = self._new_deflater()
        out = self.deflater.compress(data) + self.deflater.flush(zlib.Z_SYNC_FLUSH)  # type: ignore[attr-defined]
        assert out.endswith(TAIL)
        return out[:-4]

    def inflate(self, data: bytes) -> bytes:
        if self.agreement.client_no_context_takeover:
            self.inflater = zlib.decompressobj(-self.agreement.client_max_window_bits)
        return self.inflater.decompress(data + TAIL)


def negotiated(
    params: list[object] | None = None, answer: str = "", **opts: int
) -> PerMessageDeflate:
    offered = PerMessageDeflate(params or [], opts or None)  # type: ignore[arg-type]
    header = NAME + (f"; {answer}" if answer else "")
    [ext] = negotiate_extensions([offered], [("sec-websocket-extensions", header)])
    assert isinstance(ext, PerMessageDeflate)
    return ext


def websocket(ext: PerMessageDeflate, **limits: int | None) -> WebSocket:
    return new_websocket(
        extensions=[ext], random_bytes=lambda n: bytes(range(256)) * (n // 256 + 1), **limits
    )  # type: ignore[arg-type]


# ------------------------------------------------------------------ the offer


def test_is_exported_and_claims_rsv1() -> None:
    assert mint.websocket.PerMessageDeflate is PerMessageDeflate
    assert PerMessageDeflate.name == NAME
    assert PerMessageDeflate.rsv_bits == RSV1


OFFERS: list[tuple[str, object, str]] = [
    ("class: the RFC default", PerMessageDeflate, "permessage-deflate; client_max_window_bits"),
    ("empty params", (PerMessageDeflate, []), "permessage-deflate; client_max_window_bits"),
    (
        "all four",
        (
            PerMessageDeflate,
            [
                ("client_max_window_bits", 10),
                ("server_max_window_bits", "12"),
                "client_no_context_takeover",
                "server_no_context_takeover",
            ],
        ),
        "permessage-deflate; client_max_window_bits=10; server_max_window_bits=12;"
        " client_no_context_takeover; server_no_context_takeover",
    ),
    (
        "only what is given",
        (PerMessageDeflate, ["server_no_context_takeover"], {"level": 9}),
        "permessage-deflate; server_no_context_takeover",
    ),
    (
        "instance",
        PerMessageDeflate(["client_max_window_bits"], {"mem_level": 9}),
        "permessage-deflate; client_max_window_bits",
    ),
]


@pytest.mark.parametrize(("item", "header"), [c[1:] for c in OFFERS], ids=[c[0] for c in OFFERS])
def test_offer(item: object, header: str) -> None:
    assert offer_header(normalize_extensions([item])) == header


def test_two_offers_of_one_name() -> None:
    # RFC 7692 5.1's example: a preferred offer, then a fallback.
    exts = normalize_extensions(
        [(PerMessageDeflate, [("server_max_window_bits", 10)]), PerMessageDeflate]
    )
    assert offer_header(exts) == (
        "permessage-deflate; server_max_window_bits=10, permessage-deflate; client_max_window_bits"
    )
    [ext] = negotiate_extensions(exts, [("sec-websocket-extensions", NAME)])
    assert isinstance(ext, PerMessageDeflate)
    assert ext.agreement == DeflateAgreement()
    assert ext is not exts[0] and ext is not exts[1]


BAD_PARAMS: list[tuple[str, list[object]]] = [
    ("unknown", ["x_bits"]),
    ("repeated", ["server_no_context_takeover", "server_no_context_takeover"]),
    ("repeated bits", [("client_max_window_bits", 9), "client_max_window_bits"]),
    ("value on a flag", [("server_no_context_takeover", 1)]),
    ("server bits without value", ["server_max_window_bits"]),
    ("bits too small", [("server_max_window_bits", 7)]),
    ("bits too large", [("client_max_window_bits", 16)]),
    ("bits leading zero", [("client_max_window_bits", "09")]),
    ("bits not a number", [("client_max_window_bits", "ten")]),
    ("bits a bool", [("server_max_window_bits", True)]),
    ("bits None", [("server_max_window_bits", None)]),
    ("three-tuple", [("server_max_window_bits", 9, 1)]),
    ("not a str", [12]),
]


@pytest.mark.parametrize("params", [c[1] for c in BAD_PARAMS], ids=[c[0] for c in BAD_PARAMS])
def test_bad_params(params: list[object]) -> None:
    with pytest.raises(WebSocketError) as info:
        normalize_extensions([(PerMessageDeflate, params)])
    assert reason_tag(info.value.reason) == "invalid_extension"


@pytest.mark.parametrize(
    "opts",
    [{"level": 10}, {"level": -2}, {"level": "9"}, {"mem_level": 0}, {"mem_level": 10}, {"lvl": 1}],
)
def test_bad_opts(opts: dict[str, object]) -> None:
    with pytest.raises(WebSocketError) as info:
        normalize_extensions([(PerMessageDeflate, [], opts)])
    assert reason_tag(info.value.reason) == "invalid_extension"


@pytest.mark.parametrize("level", [-1, 0, 1, 9])
@pytest.mark.parametrize("mem_level", [1, 8, 9])
def test_opts_round_trip(level: int, mem_level: int) -> None:
    ext = negotiated(level=level, mem_level=mem_level)
    server = Server(ext.agreement)  # type: ignore[arg-type]
    ws = websocket(ext)
    message = b"level and memory level " * 50
    ws, data = encode(ws, Binary(message))
    assert server.inflate(unmask(data)[1]) == message


# ------------------------------------------------------------------ the answer (RFC 7692 7.1)

A = DeflateAgreement
# (id, offered params, answered params as they appear in the header, agreement or error detail)
NEGOTIATION: list[tuple[str, list[object], str, DeflateAgreement | str]] = [
    # accepted
    ("default, bare answer", [], "", A()),
    ("default, websockets' answer", [], "client_max_window_bits=12", A(12, 15)),
    ("default, window 8", [], "client_max_window_bits=8", A(8, 15)),
    ("quoted value", [], 'client_max_window_bits="12"', A(12, 15)),
    ("spacing", [], "  client_max_window_bits =  9  ", A(9, 15)),
    ("upper-case name", [], "Client_Max_Window_Bits=10", A(10, 15)),
    ("server adds server bits", [], "server_max_window_bits=10", A(15, 10)),
    ("server adds server flag", [], "server_no_context_takeover", A(15, 15, False, True)),
    ("server adds client flag", [], "client_no_context_takeover", A(15, 15, True, False)),
    (
        "everything",
        [
            ("client_max_window_bits", 12),
            ("server_max_window_bits", 12),
            "client_no_context_takeover",
            "server_no_context_takeover",
        ],
        "server_no_context_takeover; client_no_context_takeover;"
        " server_max_window_bits=9; client_max_window_bits=11",
        A(11, 9, True, True),
    ),
    (
        "server bits as offered",
        [("server_max_window_bits", 11)],
        "server_max_window_bits=11",
        A(15, 11),
    ),
    ("server bits smaller", [("server_max_window_bits", 11)], "server_max_window_bits=8", A(15, 8)),
    ("client bits kept from the offer", [("client_max_window_bits", 10)], "", A(10, 15)),
    ("server bits 15 offered, not answered", [("server_max_window_bits", 15)], "", A(15, 15)),
    ("client bits smaller", [("client_max_window_bits", 10)], "client_max_window_bits=9", A(9, 15)),
    ("client flag offered, not echoed", ["client_no_context_takeover"], "", A(15, 15, True, False)),
    (
        "server flag offered and echoed",
        ["server_no_context_takeover"],
        "server_no_context_takeover",
        A(15, 15, False, True),
    ),
    # refused
    ("unknown param", [], "x=1", "unknown parameter x"),
    (
        "repeated flag",
        [],
        "server_no_context_takeover; server_no_context_takeover",
        "server_no_context_takeover is repeated",
    ),
    (
        "repeated bits",
        [],
        "client_max_window_bits=9; client_max_window_bits=9",
        "client_max_window_bits is repeated",
    ),
    (
        "flag with value",
        [],
        "client_no_context_takeover=1",
        "client_no_context_takeover takes no value, got '1'",
    ),
    (
        "server bits without value",
        [],
        "server_max_window_bits",
        "server_max_window_bits must be 8..15, got None",
    ),
    (
        "client bits without value",
        [],
        "client_max_window_bits",
        "client_max_window_bits must be 8..15, got None",
    ),
    ("bits 7", [], "server_max_window_bits=7", "server_max_window_bits must be 8..15, got '7'"),
    ("bits 16", [], "client_max_window_bits=16", "client_max_window_bits must be 8..15, got '16'"),
    (
        "bits leading zero",
        [],
        "server_max_window_bits=010",
        "server_max_window_bits must be 8..15, got '010'",
    ),
    (
        "bits sign",
        [],
        "server_max_window_bits=+9",
        "server_max_window_bits must be 8..15, got '+9'",
    ),
    (
        "bits quoted junk",
        [],
        'server_max_window_bits="9x"',
        "server_max_window_bits must be 8..15, got '9x'",
    ),
    (
        "client bits not offered",
        ["server_no_context_takeover"],
        "server_no_context_takeover; client_max_window_bits=12",
        "client_max_window_bits was not offered",
    ),
    (
        "client bits larger than offered",
        [("client_max_window_bits", 10)],
        "client_max_window_bits=11",
        "client_max_window_bits=11 exceeds the offered 10",
    ),
    (
        "server bits larger than offered",
        [("server_max_window_bits", 10)],
        "server_max_window_bits=12",
        "server_max_window_bits=12 exceeds the offered 10",
    ),
    (
        "server bits offered, not answered",
        [("server_max_window_bits", 10)],
        "",
        "server_max_window_bits was offered but not answered",
    ),
    (
        "server flag offered, not answered",
        ["server_no_context_takeover"],
        "",
        "server_no_context_takeover was offered but not answered",
    ),
]


@pytest.mark.parametrize(
    ("params", "answer", "expected"),
    [c[1:] for c in NEGOTIATION],
    ids=[c[0] for c in NEGOTIATION],
)
def test_negotiation(params: list[object], answer: str, expected: DeflateAgreement | str) -> None:
    if isinstance(expected, DeflateAgreement):
        ext = negotiated(params, answer)
        assert ext.agreement == expected
        assert ext.params == params
    else:
        with pytest.raises(WebSocketError) as info:
            negotiated(params, answer)
        assert info.value.reason == ("extension_not_negotiated", NAME, expected)
        assert reason_tag(info.value.reason) in _MESSAGES


def test_negotiate_returns_a_fresh_instance_each_time() -> None:
    offered = PerMessageDeflate()
    one, two = offered.negotiate([]), offered.negotiate([])
    assert one is not two and one is not offered
    assert offered.agreement is None
    assert one.accepted_params == [] and "agreement=" in repr(one)


# ------------------------------------------------------------------ encode


def test_encode_compresses_data_messages_and_sets_rsv1() -> None:
    ext = negotiated()
    server = Server(ext.agreement)  # type: ignore[arg-type]
    ws = websocket(ext)
    for frame, opcode, raw in [
        (Text("hello " * 100), 0x1, ("hello " * 100).encode()),
        (Binary(bytes(1000)), 0x2, bytes(1000)),
    ]:
        ws, data = encode(ws, frame)
        b0, payload = unmask(data)
        assert b0 == 0x80 | RSV1 | opcode
        assert len(payload) < len(raw) and not payload.endswith(TAIL)
        assert server.inflate(payload) == raw


@pytest.mark.parametrize(
    ("frame", "payload"),
    [
        (Ping(b"ping " * 20), b"ping " * 20),
        (Pong(b"pong"), b"pong"),
        ("ping", b""),
        (Close(1000, "bye " * 10), b"\x03\xe8" + b"bye " * 10),
    ],
)
def test_control_frames_are_never_compressed(frame: object, payload: bytes) -> None:
    ws = websocket(negotiated())
    ws, data = encode(ws, frame)  # type: ignore[arg-type]
    b0, got = unmask(data)
    assert not b0 & 0x70
    assert got == payload


def test_empty_message_is_one_zero_byte() -> None:
    # RFC 7692 7.2.3.6: an empty message compresses to 0x00 (or 0x02 0x00).
    ext = negotiated()
    server = Server(ext.agreement)  # type: ignore[arg-type]
    ws = websocket(ext)
    for frame in [Text(""), Binary(b"x" * 50), Binary(b"")]:
        ws, data = encode(ws, frame)
        _, payload = unmask(data)
        assert server.inflate(payload) == (
            frame.data.encode() if isinstance(frame, Text) else frame.data
        )
    assert payload == b"\x00"


def test_context_takeover_shrinks_repeated_messages() -> None:
    ext = negotiated()
    server = Server(ext.agreement)  # type: ignore[arg-type]
    ws = websocket(ext)
    message = bytes(range(256)) * 4
    ws, first = encode(ws, Binary(message))
    ws, second = encode(ws, Binary(message))
    assert len(second) < len(first) // 4
    assert server.inflate(unmask(first)[1]) == message
    assert server.inflate(unmask(second)[1]) == message


def test_client_no_context_takeover_makes_every_message_stand_alone() -> None:
    ext = negotiated(["client_no_context_takeover"])
    assert ext.agreement is not None and ext.agreement.client_no_context_takeover
    ws = websocket(ext)
    message = bytes(range(256)) * 4
    sizes = set()
    for _ in range(3):
        ws, data = encode(ws, Binary(message))
        payload = unmask(data)[1]
        sizes.add(len(payload))
        # A fresh inflater reads it: nothing refers to an earlier message.
        assert zlib.decompressobj(-15).decompress(payload + TAIL) == message
    assert len(sizes) == 1


@pytest.mark.parametrize("bits", range(8, 16))
def test_client_window_bits_are_honoured(bits: int) -> None:
    # The server inflates with exactly the negotiated window; with 8 the deflater runs
    # with 9 bits, whose distances (<= 250) still fit a 256-byte window.
    ext = negotiated([("client_max_window_bits", bits)])
    server = Server(ext.agreement)  # type: ignore[arg-type]
    assert server.agreement.client_max_window_bits == bits
    ws = websocket(ext)
    rng = __import__("random").Random(bits)
    words = [bytes(rng.randrange(97, 123) for _ in range(rng.randrange(3, 9))) for _ in range(300)]
    for _ in range(20):
        message = b" ".join(rng.choice(words) for _ in range(rng.randrange(1, 2000)))
        ws, data = encode(ws, Binary(message))
        assert server.inflate(unmask(data)[1]) == message


def test_encode_on_an_offered_instance_is_refused() -> None:
    ws = new_websocket(extensions=[PerMessageDeflate()])
    with pytest.raises(WebSocketError) as info:
        encode(ws, Text("x"))
    assert reason_tag(info.value.reason) == "invalid_extension"
    assert info.value.websocket is ws
    _, [error] = decode(ws, srv(0x1, b"\x00", rsv=RSV1))
    assert isinstance(error, WebSocketError)
    assert reason_tag(error.reason) == "invalid_extension"


# ------------------------------------------------------------------ decode


def test_decode_compressed_and_plain_messages() -> None:
    ext = negotiated()
    server = Server(ext.agreement)  # type: ignore[arg-type]
    ws = websocket(ext)
    data = b"".join(
        [
            srv(0x1, server.compress("héllo".encode()), rsv=RSV1),
            srv(0x1, b"plain"),  # RSV1 clear: not compressed (RFC 7692 6)
            srv(0x2, server.compress(b"\x00" * 5000), rsv=RSV1),
            srv(0x9, b"ping"),
            srv(0x1, server.compress("héllo".encode()), rsv=RSV1),  # refers back
        ]
    )
    ws, frames = decode(ws, data)
    assert frames == [
        Text("héllo"),
        Text("plain"),
        Binary(b"\x00" * 5000),
        Ping(b"ping"),
        Text("héllo"),
    ]


@pytest.mark.parametrize("payload", [b"", b"\x00", b"\x02\x00"])
def test_decode_empty_message_forms(payload: bytes) -> None:
    ws = websocket(negotiated())
    ws, frames = decode(ws, srv(0x1, payload, rsv=RSV1) + srv(0x2, payload, rsv=RSV1))
    assert frames == [Text(""), Binary(b"")]


def test_decode_fragmented_message_rsv1_on_first_frame_only() -> None:
    # The server splits one compressed payload over three frames, a ping between them.
    message = ("fragments " * 300).encode()
    payload = Server(A()).compress(message)
    a, b = len(payload) // 3, 2 * len(payload) // 3
    data = (
        srv(0x1, payload[:a], fin=False, rsv=RSV1)
        + srv(0x9, b"between")
        + srv(0x0, payload[a:b], fin=False)
        + srv(0x0, payload[b:])
    )
    for split in (1, 7, len(data)):
        ws, frames = websocket(negotiated()), []
        for i in range(0, len(data), split):
            ws, got = decode(ws, data[i : i + split])
            frames += got
        assert frames == [Ping(b"between"), Text(message.decode())]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            srv(0x1, b"a", fin=False, rsv=RSV1) + srv(0x0, b"b", rsv=RSV1),
            ("malformed_reserved", RSV1),
        ),
        (srv(0x9, b"", rsv=RSV1), ("malformed_reserved", RSV1)),
        (srv(0x1, b"\x00", rsv=RSV2), ("malformed_reserved", RSV2)),
    ],
    ids=["rsv1 on continuation", "rsv1 on control", "rsv2"],
)
def test_decode_reserved_bits(data: bytes, reason: object) -> None:
    _, [error] = decode(websocket(negotiated()), data)
    assert isinstance(error, WebSocketError)
    assert error.reason == reason and error.close_code == 1002


@pytest.mark.parametrize("payload", [b"\xff\xff\xff", b"\x07", b"\x06\x00"])
def test_decode_bad_deflate_data(payload: bytes) -> None:
    _, [error] = decode(websocket(negotiated()), srv(0x2, payload, rsv=RSV1))
    assert isinstance(error, WebSocketError)
    assert reason_tag(error.reason) == "compression_error"
    assert error.close_code == 1007
    assert isinstance(error.__cause__, zlib.error)


def test_decode_invalid_utf8_after_inflating() -> None:
    ext = negotiated()
    server = Server(ext.agreement)  # type: ignore[arg-type]
    _, [error] = decode(websocket(ext), srv(0x1, server.compress(b"\xff\xfe"), rsv=RSV1))
    assert isinstance(error, WebSocketError)
    assert reason_tag(error.reason) == "invalid_utf8" and error.close_code == 1007


def _fed(ws: WebSocket, data: bytes, step: int) -> tuple[WebSocket, list[object]]:
    """decode() over ``data`` cut every ``step`` bytes."""
    out: list[object] = []
    for i in range(0, len(data), step):
        ws, got = decode(ws, data[i : i + step])
        out += got
    return ws, out


@pytest.mark.parametrize("no_takeover", [False, True])
def test_compressed_text_fails_fast_inside_fragments(no_takeover: bool) -> None:
    # RFC 6455 8.1 (Autobahn 6.4.* for plain text): bad UTF-8 is reported at the fragment
    # that shows it, before the message ends. A compressed message is inflated as its
    # fragments come, so the same holds with permessage-deflate.
    params = ["server_no_context_takeover"] if no_takeover else []
    ext = negotiated(params, "server_no_context_takeover" if no_takeover else "")
    server = Server(ext.agreement)  # type: ignore[arg-type]
    good = "κόσμε ".encode() * 2000
    payload = server.compress(good + b"\xed\xa0\x80" + good)  # a surrogate: never valid
    cut = len(payload) * 3 // 4  # past the bad bytes (compressed, they sit mid-payload)
    first = srv(0x1, payload[:cut], fin=False, rsv=RSV1)
    _, frames = decode(websocket(ext), first)
    [error] = frames
    assert isinstance(error, WebSocketError) and error.close_code == 1007
    assert reason_tag(error.reason) == "invalid_utf8"
    # The same inside one frame whose payload arrives over several reads.
    whole = srv(0x1, payload, rsv=RSV1)
    _, frames = decode(
        websocket(negotiated(params, "server_no_context_takeover" if no_takeover else "")),
        whole[:cut],
    )
    assert [reason_tag(e.reason) for e in frames if isinstance(e, WebSocketError)] == [
        "invalid_utf8"
    ]


def test_compressed_text_over_the_limit_fails_before_it_ends() -> None:
    ext = negotiated()
    server = Server(ext.agreement)  # type: ignore[arg-type]
    payload = server.compress(b"a" * 50_000)
    ws = websocket(ext, max_message_size=10_000)
    # The first fragment alone inflates past the limit: no need to wait for the rest.
    _, [error] = decode(ws, srv(0x1, payload[: len(payload) - 2], fin=False, rsv=RSV1))
    assert isinstance(error, WebSocketError) and error.reason == "payload_too_large"
    assert error.close_code == 1009


def test_compressed_text_with_bad_deflate_data_fails_at_the_fragment() -> None:
    _, [error] = decode(websocket(negotiated()), srv(0x1, b"\xff\xff\xff", fin=False, rsv=RSV1))
    assert isinstance(error, WebSocketError) and reason_tag(error.reason) == "compression_error"
    assert error.close_code == 1007 and isinstance(error.__cause__, zlib.error)


@pytest.mark.parametrize("no_takeover", [False, True])
@pytest.mark.parametrize("step", [1, 3, 64, 1000, 1 << 20])
def test_compressed_text_in_fragments_decodes_like_whole_messages(
    no_takeover: bool, step: int
) -> None:
    # Several messages in a row (the context carries over between them unless the
    # server gave it up), each in fragments, a ping between, cut every `step` bytes.
    params = ["server_no_context_takeover"] if no_takeover else []
    ext = negotiated(params, "server_no_context_takeover" if no_takeover else "")
    server = Server(ext.agreement)  # type: ignore[arg-type]
    messages = ["", "é" * 3, "mixed ünïcödé and ascii " * 400, "🙂" * 70_000, "tail"]
    data = b""
    for text in messages:
        payload = server.compress(text.encode())
        pieces = [payload[i : i + 777] for i in range(0, len(payload), 777)] or [b""]
        for i, piece in enumerate(pieces):
            op = 0x1 if i == 0 else 0x0
            data += srv(op, piece, fin=i == len(pieces) - 1, rsv=RSV1 if i == 0 else 0)
            if i == 0:
                data += srv(0x9, b"p")
    _, frames = _fed(websocket(ext), data, step)
    assert [f for f in frames if isinstance(f, Text)] == [Text(t) for t in messages]
    assert frames.count(Ping(b"p")) == len(messages)


def test_compressed_text_in_fragments_that_ends_the_deflate_stream() -> None:
    # BFINAL inside a fragmented message; the next message refers back to its text.
    message = "final block, fragmented " * 50
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    final = deflater.compress(message.encode()) + deflater.flush(zlib.Z_FINISH)
    primed = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=message.encode())
    second = (primed.compress(message.encode()) + primed.flush(zlib.Z_SYNC_FLUSH))[:-4]
    half = len(final) // 2
    data = (
        srv(0x1, final[:half], fin=False, rsv=RSV1)
        + srv(0x0, final[half:])
        + srv(0x1, second[:5], fin=False, rsv=RSV1)
        + srv(0x0, second[5:])
    )
    for step in (1, 10, len(data)):
        _, frames = _fed(websocket(negotiated()), data, step)
        assert frames == [Text(message), Text(message)]


def test_server_no_context_takeover_inflates_each_message_alone() -> None:
    ext = negotiated(["server_no_context_takeover"], "server_no_context_takeover")
    assert ext._inflater is None  # nothing kept between messages
    server = Server(ext.agreement)  # type: ignore[arg-type]
    ws = websocket(ext)
    message = b"same message again and again"
    for _ in range(3):
        ws, frames = decode(ws, srv(0x2, server.compress(message), rsv=RSV1))
        assert frames == [Binary(message)]
    # A server that (wrongly) took over its context is caught: the back-reference
    # points into a window this side no longer has.
    rogue = zlib.compressobj(6, zlib.DEFLATED, -15)
    first = rogue.compress(message * 4) + rogue.flush(zlib.Z_SYNC_FLUSH)
    second = rogue.compress(message * 4) + rogue.flush(zlib.Z_SYNC_FLUSH)
    ws, frames = decode(ws, srv(0x2, first[:-4], rsv=RSV1) + srv(0x2, second[:-4], rsv=RSV1))
    assert frames[0] == Binary(message * 4)
    assert (
        isinstance(frames[1], WebSocketError)
        and reason_tag(frames[1].reason) == "compression_error"
    )


@pytest.mark.parametrize("bits", range(8, 16))
def test_server_window_bits_are_used_to_inflate(bits: int) -> None:
    ext = negotiated([("server_max_window_bits", bits)], f"server_max_window_bits={bits}")
    assert ext.agreement is not None and ext.agreement.server_max_window_bits == bits
    server = Server(ext.agreement)
    ws = websocket(ext)
    message = bytes(range(256)) * 64
    for _ in range(3):
        ws, frames = decode(ws, srv(0x2, server.compress(message), rsv=RSV1))
        assert frames == [Binary(message)]


def test_decode_message_that_ends_the_deflate_stream() -> None:
    # RFC 7692 7.2.3.3: a block with BFINAL set; the next message may still refer back.
    ext = negotiated()
    ws = websocket(ext)
    message = b"final block " * 10
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    final = deflater.compress(message) + deflater.flush(zlib.Z_FINISH)
    primed = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=message)
    second = (primed.compress(message) + primed.flush(zlib.Z_SYNC_FLUSH))[:-4]
    ws, frames = decode(ws, srv(0x2, final, rsv=RSV1) + srv(0x2, second, rsv=RSV1))
    assert frames == [Binary(message), Binary(message)]
    # An empty final block, RFC 7692 7.2.3.6's 0x03 0x00.
    ws, frames = decode(
        websocket(negotiated()), srv(0x1, b"\x03\x00", rsv=RSV1) + srv(0x1, b"\x00", rsv=RSV1)
    )
    assert frames == [Text(""), Text("")]


class FinishingServer:
    """A server that keeps its context but ends every DEFLATE stream with BFINAL
    (RFC 7692 7.2.3.3), starting the next one with its whole window of history, every
    earlier message included, as a preset dictionary: the window is the connection's,
    so the next stream may refer back past the last message."""

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.history = b""

    def stream(self, data: bytes) -> bytes:
        window = self.history[-(1 << self.bits) :]
        deflater = (
            zlib.compressobj(6, zlib.DEFLATED, -self.bits, zdict=window)
            if window
            else (zlib.compressobj(6, zlib.DEFLATED, -self.bits))
        )
        self.history += data
        return deflater.compress(data) + deflater.flush(zlib.Z_FINISH)


@pytest.mark.parametrize("bits", [9, 12, 15])
@pytest.mark.parametrize("opcode", [0x1, 0x2])
def test_after_bfinal_the_window_is_every_earlier_message(bits: int, opcode: int) -> None:
    # Only the last message's bytes were kept as the next stream's dictionary: a
    # reference back into an earlier message failed as a compression_error (1007).
    params: list[object] = [("server_max_window_bits", bits)]
    answer = f"server_max_window_bits={bits}"
    server = FinishingServer(bits)
    sentence = b"The quick brown fox jumps over the lazy dog. "
    size = 1 << bits
    texts = [
        sentence * 3,
        b"x",  # the next message refers back past this one
        sentence * 3,
        b"y" * 7,
        b"z",
        sentence * 2 + b"x",
        bytes(range(0x20, 0x7F)) * (2 * size // 95 + 1),  # more than a window
        sentence,  # refers into the end of the large one only
        b"small",
        b"tail " * 3 + sentence,
    ]
    # Several messages in one stream each (the middle one ends it, and the one after
    # starts a new one inside the same message).
    data = b""
    for i, text in enumerate(texts):
        if i % 3 == 2 and len(text) > 4:
            payload = server.stream(text[:3]) + server.stream(text[3:])
        else:
            payload = server.stream(text)
        data += srv(opcode, payload, rsv=RSV1)
    want = [Text(t.decode()) if opcode == 0x1 else Binary(t) for t in texts]
    for step in (1, 9, len(data)):
        _, frames = _fed(websocket(negotiated(params, answer)), data, step)
        assert frames == want


@pytest.mark.parametrize("opcode", [0x1, 0x2])
def test_the_window_kept_for_bfinal_stays_bounded(opcode: int) -> None:
    # Empty messages added an entry each and no bytes, so the kept window was never
    # trimmed (1,000,000 empty messages: 1,000,000 entries), and every restart after a
    # BFINAL joined all of it: 20,000 such messages cost a millisecond each. The
    # entries are bounded now, and what a restart joined is kept joined.

    ext = negotiated()
    ws = websocket(ext)
    server = FinishingServer(15)
    texts = [b"", b"a", b"", b"bc"] * 600 + [b"The quick brown fox. " * 3]
    data = b""
    for i, text in enumerate(texts):
        # Every other empty message as 00 (RFC 7692 7.2.3.6), the rest BFINAL streams
        # (an empty one: 03 00).
        payload = server.stream(text) if text or i % 2 else b"\x00"
        data += srv(opcode, payload, rsv=RSV1)
    ws, frames = decode(ws, data)
    want = [Text(t.decode()) if opcode == 0x1 else Binary(t) for t in texts]
    assert frames == want
    # A message that refers back past all of them still inflates.
    tail = server.stream(b"bcabcabc The quick brown fox. ")
    ws, frames = decode(ws, srv(opcode, tail, rsv=RSV1))
    assert len(frames) == 1 and not isinstance(frames[0], WebSocketError), frames
    # 100,000 empty messages more: nothing more is held.
    empties = srv(opcode, b"\x00", rsv=RSV1) * 100_000
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        ws, frames = decode(ws, empties)
        del frames
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 100_000, after - before


def _streams(*texts: bytes, finish: bool = True) -> bytes:
    """One payload of several DEFLATE streams: each but the last ends with BFINAL."""
    out = b""
    for i, text in enumerate(texts):
        deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
        if i < len(texts) - 1 or finish:
            out += deflater.compress(text) + deflater.flush(zlib.Z_FINISH)
        else:
            out += (deflater.compress(text) + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4]
    return out


@pytest.mark.parametrize("no_takeover", [False, True])
@pytest.mark.parametrize("opcode", [0x1, 0x2])
@pytest.mark.parametrize("size", [10, 100_000])  # one zlib call; the chunked path
def test_streams_after_bfinal_inside_a_message_are_inflated(
    no_takeover: bool, opcode: int, size: int
) -> None:
    # RFC 7692 7.2.3.4: a sender may flush with BFINAL blocks, and its example
    # payload goes on after one. What followed the first stream was dropped.
    params = ["server_no_context_takeover"] if no_takeover else []
    answer = "server_no_context_takeover" if no_takeover else ""
    parts = [b"first " * size, bytes(range(256)) * (size // 100 + 1), b"third"]
    if opcode == 0x1:
        parts = [p.decode("latin-1").encode() for p in parts]  # valid UTF-8
    payload = _streams(*parts, finish=False)
    expected = b"".join(parts)
    want = Text(expected.decode()) if opcode == 0x1 else Binary(expected)
    half = len(payload) // 2
    data = (
        srv(opcode, payload, rsv=RSV1)
        + srv(opcode, payload[:half], fin=False, rsv=RSV1)
        + srv(0x0, payload[half:])
    )
    for step in (7, len(data)):
        _, frames = _fed(websocket(negotiated(params, answer)), data, step)
        assert frames == [want, want]
    # The RFC's own example: "Hello" in a BFINAL block, then one more 0x00.
    _, frames = decode(
        websocket(negotiated(params, answer)),
        srv(opcode, bytes.fromhex("f348cdc9c90700 00"), rsv=RSV1) * 2,
    )
    hello = Text("Hello") if opcode == 0x1 else Binary(b"Hello")
    assert frames == [hello, hello]


@pytest.mark.parametrize("fragmented", [False, True])
@pytest.mark.parametrize("opcode", [0x1, 0x2])
def test_hundreds_of_streams_inside_a_message_are_inflated(opcode: int, fragmented: bool) -> None:
    # Each stream's end copied the rest of the message (zlib's unused_data): fed in
    # pieces now, the copies are as long as the streams. Every byte still comes out.
    rng = random.Random(opcode)
    texts = [
        bytes(rng.randrange(32, 127) for _ in range(rng.randrange(600, 1400))) for _ in range(300)
    ]
    payload = _streams(*texts, finish=False)
    expected = b"".join(texts)
    want = Text(expected.decode()) if opcode == 0x1 else Binary(expected)
    if fragmented:  # cut inside streams, and at a stream's end
        cuts = [0, 1000, len(_streams(*texts[:3])), len(payload) - 10, len(payload)]
        data = b"".join(
            srv(
                opcode if not i else 0x0,
                payload[a:b],
                fin=b == len(payload),
                rsv=RSV1 if not i else 0,
            )
            for i, (a, b) in enumerate(itertools.pairwise(cuts))
        )
    else:
        data = srv(opcode, payload, rsv=RSV1)
    for step in (4099, len(data)):
        _, frames = _fed(websocket(negotiated()), data, step)
        assert frames == [want]


@pytest.mark.parametrize(
    ("first", "second", "text"),
    [
        (_streams(b"one "), _streams(b"two", finish=False), "one two"),
        (bytes.fromhex("f348cdc9c90700"), b"\x00", "Hello"),  # RFC 7692 7.2.3.4, cut
    ],
    ids=["a new stream", "the RFC's empty block"],
)
def test_a_stream_ended_at_a_fragments_end_goes_on_in_the_next(
    first: bytes, second: bytes, text: str
) -> None:
    # Text is inflated part by part: the next part meets an inflater whose stream
    # ended, and starts the next stream there.
    for opcode, want in ((0x1, Text(text)), (0x2, Binary(text.encode()))):
        data = srv(opcode, first, fin=False, rsv=RSV1) + srv(0x0, second)
        for step in (1, len(data)):
            _, frames = _fed(websocket(negotiated()), data, step)
            assert frames == [want]


@pytest.mark.parametrize("cut", [None, "after the junk", "before the junk"])
def test_input_after_a_stream_at_a_fragments_end_is_read_as_in_a_whole_message(
    cut: str | None,
) -> None:
    # Text is inflated part by part, Binary whole: what a stream left at a fragment's
    # end (here 00 00 ff ff, no stream's start) was dropped on the text path, which
    # then inflated "Hello World" from a payload the binary path refuses.
    first = _streams(b"Hello ")
    payload = first + b"\x00\x00\xff\xff" + _streams(b"World")
    at = {None: len(payload), "after the junk": len(first) + 4, "before the junk": len(first)}[cut]
    for opcode in (0x1, 0x2):
        data = srv(opcode, payload[:at], fin=at == len(payload), rsv=RSV1)
        if at < len(payload):
            data += srv(0x0, payload[at:])
        _, [error] = decode(websocket(negotiated()), data)
        assert isinstance(error, WebSocketError), (opcode, error)
        assert reason_tag(error.reason) == "compression_error"


def test_the_stream_cap_counts_the_same_input_for_text_and_binary() -> None:
    # 64 empty streams, and a 65th whose end comes with the appended tail: text,
    # inflated part by part, left the tail's 4 bytes out of the input it counted
    # (refused at 126 bytes), binary counted them (accepted at 133).
    payload = b"\x03\x00" * 64 + b"\x03"
    for opcode, want in ((0x1, Text("")), (0x2, Binary(b""))):
        whole = srv(opcode, payload, rsv=RSV1)
        parts = srv(opcode, payload[:60], fin=False, rsv=RSV1) + srv(0x0, payload[60:])
        for data in (whole, parts):
            _, frames = decode(websocket(negotiated()), data)
            assert frames == [want]


def test_the_stream_cap_counts_the_same_input_wherever_the_read_is_cut() -> None:
    # regress23: a stream that ended in an earlier read, with 00 00 ff ff left after
    # it, was counted as ending where the next read starts (4 bytes later): the same
    # message was refused read whole and handed out when cut after those 4 bytes.
    body = b"\x03\x00" * 65  # 65 empty streams
    body += b"\x01" + struct.pack("<HH", 117, 117 ^ 0xFFFF) + b"x" * 117  # the 66th
    cut = len(body) + 4  # after 00 00 ff ff 00: a stored block of 0xff00 bytes
    body += b"\x00\x00\xff\xff\x00" + b"y" * 0xFF00 + b"\x03\x00"
    wire = srv(0x1, body, rsv=RSV1)
    head = len(wire) - len(body)
    outcomes = []
    for pieces in ([wire], [wire[: head + cut], wire[head + cut :]]):
        ws = websocket(negotiated())
        frames: list[object] = []
        for piece in pieces:
            ws, got = decode(ws, piece)
            frames += got
        [error] = frames
        assert isinstance(error, WebSocketError)
        outcomes.append(error.reason)
    assert outcomes == [("compression_error", "66 DEFLATE streams in 252 bytes of one message")] * 2


def test_bad_text_after_a_stream_that_ended_at_a_fragments_end_is_told_however_cut() -> None:
    # regress23: the checkpoint of the fragment after a stream's end copied the ended
    # inflater, with the 00 00 ff ff it left over inside: read again from there, the
    # bad UTF-8 of the next stream was missed, and the corrupt data after it told.
    frag1 = _streams(b"one ") + _streams(b"two ") + b"\x00\x00\xff\xff"
    frag2 = b"\x00" + b"a" * 10 + b"\xff" + b"b" * (0xFF00 - 11) + b"\x07\xff\xff"
    wire = srv(0x1, frag1, fin=False, rsv=RSV1) + srv(0x0, frag2)
    split = len(srv(0x1, frag1, fin=False, rsv=RSV1))
    for pieces in ([wire], [wire[:split], wire[split:]], [wire[:split], wire[split:][:20]]):
        ws = websocket(negotiated())
        frames = []
        for piece in pieces:
            ws, got = decode(ws, piece)
            frames += got
        [error] = frames
        assert isinstance(error, WebSocketError)
        assert (reason_tag(error.reason), error.close_code) == ("invalid_utf8", 1007)


@pytest.mark.parametrize("fragmented", [False, True])
@pytest.mark.parametrize("opcode", [0x1, 0x2])
def test_a_message_of_empty_streams_is_refused(opcode: int, fragmented: bool) -> None:
    # Empty final blocks (03 00), 64,000 of them: each cost a new inflater with its
    # window, and a 1 MB message would have taken minutes (quadratic) then seconds.
    payload = b"\x03\x00" * 64_000
    if fragmented:
        data = srv(opcode, payload[:1000], fin=False, rsv=RSV1) + srv(0x0, payload[1000:])
    else:
        data = srv(opcode, payload, rsv=RSV1)
    _, frames = decode(websocket(negotiated()), data)
    [error] = frames
    assert isinstance(error, WebSocketError) and error.close_code == 1007
    assert error.reason[0] == "compression_error"
    # Refused within its first few hundred bytes, not after inflating all of it.
    count, taken = re.fullmatch(
        r"(\d+) DEFLATE streams in (\d+) bytes of one message", error.reason[1]
    ).groups()
    assert int(count) < 100 and int(taken) < 300


@pytest.mark.parametrize("opcode", [0x1, 0x2])
def test_junk_after_bfinal_inside_a_message_is_an_error(opcode: int) -> None:
    # Ignored before, with the message handed out as if whole.
    payload = _streams(b"complete") + b"\xde\xad\xbe\xef"
    _, frames = decode(websocket(negotiated()), srv(opcode, payload, rsv=RSV1))
    [error] = frames
    assert isinstance(error, WebSocketError)
    assert reason_tag(error.reason) == "compression_error" and error.close_code == 1007


def test_streams_after_bfinal_count_against_the_limit() -> None:
    payload = _streams(bytes(600), bytes(600))
    ws = websocket(negotiated(), max_message_size=1200)
    ws, frames = decode(ws, srv(0x2, payload, rsv=RSV1))
    assert frames == [Binary(bytes(1200))]
    for opcode in (0x1, 0x2):
        ws = websocket(negotiated(), max_message_size=1199)
        _, frames = decode(ws, srv(opcode, payload, rsv=RSV1))
        [error] = frames
        assert isinstance(error, WebSocketError) and error.reason == "payload_too_large"


# ------------------------------------------------------------------ limits and bombs


@pytest.mark.parametrize("no_takeover", [False, True])
def test_limit_is_exact(no_takeover: bool) -> None:
    params = ["server_no_context_takeover"] if no_takeover else []
    answer = "server_no_context_takeover" if no_takeover else ""
    ext = negotiated(params, answer)
    server = Server(ext.agreement)  # type: ignore[arg-type]
    ws = websocket(ext, max_message_size=1000)
    ws, frames = decode(ws, srv(0x2, server.compress(bytes(1000)), rsv=RSV1))
    assert frames == [Binary(bytes(1000))]
    ws, [error] = decode(ws, srv(0x2, server.compress(bytes(1001)), rsv=RSV1))
    assert error == WebSocketError("payload_too_large")
    assert isinstance(error, WebSocketError) and error.close_code == 1009


def test_limit_zero_allows_only_empty_messages() -> None:
    ws = new_websocket(extensions=[negotiated()], max_message_size=0)
    ws, frames = decode(ws, srv(0x1, b"", rsv=RSV1))
    assert frames == [Text("")]
    ws = new_websocket(extensions=[negotiated()], max_message_size=1)
    ws, [error] = decode(ws, srv(0x1, Server(A()).compress(b"ab"), rsv=RSV1))
    assert isinstance(error, WebSocketError) and error.reason == "payload_too_large"


def test_no_limit_inflates_everything() -> None:
    ext = negotiated()
    server = Server(ext.agreement)  # type: ignore[arg-type]
    ws = new_websocket(extensions=[ext], max_message_size=None)
    message = bytes(10 * 2**20)
    ws, frames = decode(ws, srv(0x2, server.compress(message), rsv=RSV1))
    assert frames == [Binary(message)]


def bomb(mib: int) -> bytes:
    """``mib`` MiB of zeros, deflated without ever holding them (about 1 KiB per MiB)."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(2**20)
    parts = [deflater.compress(zeros) for _ in range(mib)]
    parts.append(deflater.flush(zlib.Z_SYNC_FLUSH))
    return b"".join(parts)[:-4]


def test_decompression_bomb_is_stopped_at_the_limit_in_memory() -> None:
    # 1 GiB of zeros is ~1 MiB on the wire; with a 4 MiB limit, inflating stops there.
    payload = bomb(1024)
    assert len(payload) < 2**21
    ext = PerMessageDeflate().negotiate([])
    ws = new_websocket(extensions=[ext], max_message_size=4 * 2**20)
    frame = srv(0x2, payload, rsv=RSV1)
    tracemalloc.start()
    try:
        ws, [error] = decode(ws, frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(error, WebSocketError) and error.reason == "payload_too_large"
    assert error.close_code == 1009
    # What is held: the output up to the limit, one 256 KiB chunk in flight, and the
    # codec's copy of the ~1 MiB payload; never the gigabyte.
    assert peak < 4 * 2**20 + 2 * len(frame), peak


def test_decompression_bomb_process_rss_stays_small(tmp_path: Path) -> None:
    # The same in a fresh process, measured as the OS sees it (peak RSS, not tracemalloc).
    script = tmp_path / "bomb.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import resource, struct, sys, zlib
            sys.path[:0] = {sys.path!r}
            from mint.websocket._frame import decode, new_websocket
            from mint.websocket.permessage_deflate import PerMessageDeflate
            deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
            zeros = bytes(2**20)
            payload = b"".join([deflater.compress(zeros) for _ in range(1024)]
                               + [deflater.flush(zlib.Z_SYNC_FLUSH)])[:-4]
            frame = struct.pack("!BBQ", 0xC2, 127, len(payload)) + payload
            del zeros, deflater
            ws = new_websocket(extensions=[PerMessageDeflate().negotiate([])])
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            ws, [error] = decode(ws, frame)
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(error.reason, before, after)
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    reason, before, after = out[0], int(out[1]), int(out[2])
    assert reason == "payload_too_large"
    # Default max_message_size is 64 MiB: peak RSS grows by about that, never by 1 GiB.
    assert after - before < 100 * 1024, (before, after)  # ru_maxrss is in KiB on Linux


def test_decode_directly_edge_cases() -> None:
    ext = negotiated()
    plain = RawMessage(0x2, 0, b"not compressed")
    assert ext.decode(plain, 10) is plain  # no RSV1: not ours
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    final = deflater.compress(b"abc" * 100) + deflater.flush(zlib.Z_FINISH)
    # No limit, a final block, then a message referring back to it.
    assert ext.decode(RawMessage(0x2, RSV1 | RSV2, final), None) == RawMessage(
        0x2, RSV2, b"abc" * 100
    )
    primed = zlib.compressobj(6, zlib.DEFLATED, -15, zdict=b"abc" * 100)
    again = (primed.compress(b"abc" * 100) + primed.flush(zlib.Z_SYNC_FLUSH))[:-4]
    assert ext.decode(RawMessage(0x2, RSV1, again), None).data == b"abc" * 100
    # With server_no_context_takeover a final block changes nothing for the next message.
    fresh = negotiated(["server_no_context_takeover"], "server_no_context_takeover")
    for _ in range(2):
        assert fresh.decode(RawMessage(0x1, RSV1, final), 300).data == b"abc" * 100
