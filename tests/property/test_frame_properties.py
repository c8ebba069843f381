"""Property tests of the frame codec (hypothesis), with differential tests.

- any valid server stream, split anywhere, decodes to the same frames as in one call;
- encode -> unmask (as a server does) -> decode is the identity;
- on random valid and invalid input, our decoder, wsproto's ``FrameProtocol`` and
  websockets' Sans-I/O ``Protocol`` agree on the frames and on whether (and with
  which close code) the stream fails.
"""

from __future__ import annotations

import codecs
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode as WsOpcode
from websockets.protocol import Protocol as WsProtocol
from websockets.protocol import Side, State
from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed

import mint.websocket._frame as frame_mod
from mint.errors import WebSocketError, reason_tag
from mint.websocket._frame import _mask_py, decode, encode, new_websocket
from mint.websocket._frames import Binary, Close, Frame, Ping, Pong, Text

# Large inputs are what these properties are about: hypothesis' size health check
# fails at random on them (seen in a full run), so it is off with the slow-input one.
SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large]
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=SUPPRESSED)

VALID_CLOSE_CODES = st.one_of(
    st.sampled_from([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]),
    st.integers(3000, 4999),
)

# ------------------------------------------------------------------ building server streams


def wire(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """An unmasked server frame, built by websockets (an independent encoder)."""
    return WsFrame(WsOpcode(opcode), payload, fin=fin).serialize(mask=False)


control_frames = st.one_of(
    st.binary(max_size=125).map(lambda b: (9, b)),
    st.binary(max_size=125).map(lambda b: (10, b)),
)


@st.composite
def data_message(draw: Any) -> tuple[list[tuple[int, bytes, bool]], object]:
    """A text or binary message, split into fragments with control frames between."""
    if draw(st.booleans()):
        text = draw(st.text(max_size=300))
        payload, opcode, frame = text.encode(), 1, Text(text)
    else:
        payload = draw(st.binary(max_size=300))
        opcode, frame = 2, Binary(payload)
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=4)))
    pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
    frames: list[tuple[int, bytes, bool]] = []
    for i, piece in enumerate(pieces):
        frames.append((opcode if i == 0 else 0, piece, i == len(pieces) - 1))
        if i < len(pieces) - 1:
            for op, data in draw(st.lists(control_frames, max_size=2)):
                frames.append((op, data, True))
    return frames, frame


def control_value(op: int, data: bytes) -> object:
    return Ping(data) if op == 9 else Pong(data)


@st.composite
def server_stream(draw: Any) -> tuple[bytes, list[object]]:
    """Valid server bytes and the frames decode must return for them."""
    out: list[bytes] = []
    expected: list[object] = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            op, data = draw(control_frames)
            out.append(wire(op, data))
            expected.append(control_value(op, data))
        else:
            frames, value = draw(data_message())
            for op, data, fin in frames:
                out.append(wire(op, data, fin))
                if op >= 8:  # control frames between fragments come out at once
                    expected.append(control_value(op, data))
            expected.append(value)
    if draw(st.booleans()):
        code = draw(VALID_CLOSE_CODES)
        reason = draw(st.text(max_size=20))
        out.append(wire(8, struct.pack("!H", code) + reason.encode()))
        expected.append(Close(code, reason))
    return b"".join(out), expected


@st.composite
def chunked(draw: Any, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def decode_chunks(chunks: list[bytes]) -> list[object]:
    ws = new_websocket(max_message_size=None)
    got: list[object] = []
    for chunk in chunks:
        ws, frames = decode(ws, chunk)
        got += frames
        if frames and isinstance(frames[-1], WebSocketError):
            break  # failed: later calls only repeat the error
    return got


# ------------------------------------------------------------------ properties


@SETTINGS
@given(st.data())
def test_any_split_gives_the_same_frames(data: st.DataObject) -> None:
    stream, expected = data.draw(server_stream())
    chunks = data.draw(chunked(stream))
    assert decode_chunks([stream]) == expected
    assert decode_chunks(chunks) == expected


@SETTINGS
@given(st.data())
def test_any_split_gives_the_same_errors(data: st.DataObject) -> None:
    stream = data.draw(invalid_stream())
    chunks = data.draw(chunked(stream))
    # The same frames and the same error at the same place, however it is split
    # (fail-fast reports an error sooner in time, never at another position).
    assert shape(decode_chunks(chunks)) == shape(decode_chunks([stream]))


frames_to_send = st.one_of(
    st.text(max_size=300).map(Text),
    st.one_of(st.binary(max_size=300), st.binary(min_size=65_530, max_size=65_540)).map(Binary),
    st.binary(max_size=125).map(Ping),
    st.binary(max_size=125).map(Pong),
    st.just(Close()),
    st.builds(Close, VALID_CLOSE_CODES, st.text(max_size=20)),
)


def unmask_to_server_frame(data: bytes) -> bytes:
    """What a server reads, re-sent unmasked: strip the mask bit and the key."""
    b0, b1 = data[0], data[1]
    n, pos = b1 & 0x7F, 2
    if n == 126:
        pos = 4
    elif n == 127:
        pos = 10
    key = data[pos : pos + 4]
    return bytes([b0, b1 & 0x7F]) + data[2:pos] + _mask_py(data[pos + 4 :], key)


@SETTINGS
@given(st.lists(frames_to_send, max_size=5), st.binary(min_size=4, max_size=64))
def test_encode_unmask_decode_round_trip(frames: list[Any], pool: bytes) -> None:
    ws = new_websocket(random_bytes=lambda n: pool)  # any pool length works
    for frame in frames:
        server = FrameProtocol(client=False, extensions=[])  # it stops reading after a Close
        ws, data = encode(ws, frame)
        assert data[1] & 0x80
        expected = Close(1000, "") if frame == Close() else frame
        assert decode(new_websocket(), unmask_to_server_frame(data))[1] == [expected]
        if isinstance(frame, Close) and frame.code == 1014:
            continue  # wsproto does not know 1014 (Bad Gateway, IANA registry)
        # A real server-side parser agrees.
        server.receive_bytes(data)
        (got,) = list(server.received_frames())
        payload = got.payload
        if isinstance(frame, Close):
            payload = (int(payload[0]), payload[1])
            assert payload == ((1005, "") if frame.code is None else (frame.code, frame.reason))
        else:
            assert payload == frame.data


# ------------------------------------------------------------------ differential: valid input


def ours(data: bytes) -> tuple[list[object], int | None]:
    """Frames up to the first error or Close, and the error's close code."""
    _, items = decode(new_websocket(max_message_size=None), data)
    return _until_end(items)


def _until_end(items: list[Any]) -> tuple[list[object], int | None]:
    frames: list[object] = []
    for item in items:
        if isinstance(item, WebSocketError):
            return frames, item.close_code
        frames.append(item)
        if isinstance(item, Close):
            break
    return frames, None


def with_wsproto(data: bytes) -> tuple[list[object], int | None]:
    fp = FrameProtocol(client=True, extensions=[])
    fp.receive_bytes(data)
    frames: list[object] = []
    parts: list[Any] = []
    kind = None
    try:
        for frame in fp.received_frames():
            op = frame.opcode
            if op is Opcode.PING:
                frames.append(Ping(bytes(frame.payload)))
            elif op is Opcode.PONG:
                frames.append(Pong(bytes(frame.payload)))
            elif op is Opcode.CLOSE:
                code, reason = frame.payload
                frames.append(Close(1000 if code == 1005 else int(code), reason))
                break
            else:
                if op is not Opcode.CONTINUATION:
                    kind = op
                parts.append(frame.payload)
                if frame.message_finished:
                    if kind is Opcode.TEXT:
                        frames.append(Text("".join(parts)))
                    else:
                        frames.append(Binary(b"".join(bytes(p) for p in parts)))
                    parts = []
    except ParseFailed as exc:
        return frames, int(exc.code)
    return frames, None


def with_websockets(data: bytes) -> tuple[list[object], int | None]:
    """websockets' Sans-I/O parser, plus the UTF-8 check its application layer does
    (an incremental decoder per fragment, as its message assembler)."""
    proto = WsProtocol(Side.CLIENT, state=State.OPEN, max_size=None)
    proto.receive_data(data)
    frames: list[object] = []
    parts: list[bytes] = []
    kind = None
    utf8 = codecs.getincrementaldecoder("utf-8")()
    for event in proto.events_received():
        op = int(event.opcode)
        if op == 9:
            frames.append(Ping(bytes(event.data)))
        elif op == 10:
            frames.append(Pong(bytes(event.data)))
        elif op == 8:
            if not event.data:
                frames.append(Close(1000, ""))
            else:
                code = struct.unpack("!H", event.data[:2])[0]
                frames.append(Close(code, bytes(event.data[2:]).decode()))
            break
        else:
            if op:
                kind = op
                utf8.reset()
            parts.append(bytes(event.data))
            if kind == 1:
                try:
                    utf8.decode(bytes(event.data), final=bool(event.fin))
                except UnicodeDecodeError:
                    return frames, 1007
            if event.fin:
                payload = b"".join(parts)
                parts = []
                frames.append(Text(payload.decode()) if kind == 1 else Binary(payload))
    if proto.parser_exc is not None:
        assert proto.close_sent is not None
        return frames, int(proto.close_sent.code)
    return frames, None


@SETTINGS
@given(server_stream())
def test_same_frames_as_wsproto_and_websockets(case: tuple[bytes, list[object]]) -> None:
    stream, expected = case
    mine = ours(stream)
    assert mine == _until_end(expected)
    if not any(isinstance(f, Close) and f.code == 1014 for f in mine[0]):
        assert with_wsproto(stream) == mine
    assert with_websockets(stream) == mine


# ------------------------------------------------------------------ differential: invalid input


@st.composite
def bad_frame(draw: Any) -> bytes:
    """One frame that breaks a rule (or, sometimes, does not)."""
    kind = draw(
        st.sampled_from(
            [
                "opcode",
                "rsv",
                "masked",
                "utf8",
                "close",
                "control_long",
                "control_fragmented",
                "continuation",
                "random",
                "length",
            ]
        )
    )
    payload = draw(st.binary(max_size=40))
    if kind == "opcode":
        op = draw(st.sampled_from([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]))
        return bytes([0x80 | op, len(payload)]) + payload
    if kind == "rsv":
        op = draw(st.sampled_from([0, 1, 2, 8, 9, 10]))
        rsv = draw(st.sampled_from([0x10, 0x20, 0x40, 0x70]))
        return bytes([0x80 | rsv | op, len(payload)]) + payload
    if kind == "masked":
        return bytes([0x82, 0x80 | len(payload)]) + b"\x00\x00\x00\x00" + payload
    if kind == "utf8":
        return bytes([draw(st.sampled_from([0x81, 0x01])), len(payload)]) + payload
    if kind == "close":
        body = payload[: draw(st.integers(0, 3))] if draw(st.booleans()) else payload
        if draw(st.booleans()):
            body = struct.pack("!H", draw(st.integers(0, 5100))) + body[2:]
        return bytes([0x88, len(body)]) + body
    if kind == "control_long":
        big = payload * 4 + bytes(130)
        return struct.pack("!BBH", 0x89, 126, len(big)) + big
    if kind == "control_fragmented":
        return bytes([0x09, len(payload)]) + payload
    if kind == "continuation":
        return bytes([draw(st.sampled_from([0x00, 0x80])), len(payload)]) + payload
    if kind == "length":
        n = len(payload)
        return struct.pack("!BBH", 0x82, 126, n) + payload  # non-minimal 16-bit length
    # Any first byte, masked or not: a complete frame with whatever it says.
    masked = draw(st.booleans())
    head = bytes([draw(st.integers(0, 255)), (0x80 if masked else 0) | len(payload)])
    return head + (
        b"\x00\x01\x02\x03" + _mask_py(payload, b"\x00\x01\x02\x03") if masked else payload
    )


@st.composite
def invalid_stream(draw: Any) -> bytes:
    """Valid frames and frames that break a rule; every frame complete.

    (A decoder that fails on a header before the payload has arrived, as this one
    does, cannot be compared with one that waits for the whole frame on a stream
    that ends inside that frame: the other has not failed *yet*.)
    """
    pieces = [draw(server_stream())[0]]
    for _ in range(draw(st.integers(1, 3))):
        pieces.append(draw(bad_frame()))
        if draw(st.booleans()):
            pieces.append(draw(server_stream())[0])
    return b"".join(pieces)


def shape(items: list[object]) -> list[object]:
    return [
        (reason_tag(i.reason), i.close_code) if isinstance(i, WebSocketError) else i for i in items
    ]


def caught_surrogate_lead(stream: bytes) -> bool:
    """Whether we failed on ED A0..BF at the end of the bytes seen (a surrogate that is
    invalid before its third byte arrives): CPython's incremental decoder, which
    wsproto and websockets use, only notices with the third byte."""
    _, items = decode(new_websocket(max_message_size=None), stream)
    for item in items:
        if isinstance(item, WebSocketError) and reason_tag(item.reason) == "invalid_utf8":
            bad = item.reason[1]
            return len(bad) >= 2 and bad[-2] == 0xED and bad[-1] >= 0xA0
    return False


def agree(mine: tuple[list[object], int | None], theirs: tuple[list[object], int | None]) -> None:
    frames, code = mine
    their_frames, their_code = theirs
    assert (code is None) == (their_code is None), (mine, theirs)
    if code is None:
        assert frames == their_frames
    else:
        assert code == their_code, (mine, theirs)
        # We fail fast (UTF-8 inside fragments): we may stop earlier, never later.
        assert their_frames[: len(frames)] == frames, (mine, theirs)


@SETTINGS
@given(invalid_stream())
def test_failures_agree_with_wsproto(stream: bytes) -> None:
    mine = ours(stream)
    _, items = decode(new_websocket(max_message_size=None), stream)
    # wsproto does not know close code 1014 (Bad Gateway, IANA registry).
    assume(not any(isinstance(i, Close) and i.code == 1014 for i in mine[0]))
    assume(
        not any(
            isinstance(i, WebSocketError) and i.reason == ("invalid_close_payload", b"\x03\xf6")
            for i in items
        )
    )
    assume(not caught_surrogate_lead(stream))
    agree(mine, with_wsproto(stream))


@SETTINGS
@given(invalid_stream())
def test_failures_agree_with_websockets(stream: bytes) -> None:
    _, items = decode(new_websocket(max_message_size=None), stream)
    # websockets accepts non-minimal length encodings; RFC 6455 5.2 forbids them.
    assume(
        not any(
            isinstance(i, WebSocketError) and reason_tag(i.reason) == "invalid_length"
            for i in items
        )
    )
    assume(not caught_surrogate_lead(stream))
    # A close frame with both a bad code and a bad reason: we (and wsproto) check
    # the code first (1002), websockets the reason (1007).
    for item in items:
        if isinstance(item, WebSocketError) and reason_tag(item.reason) == "invalid_close_payload":
            try:
                item.reason[1][2:].decode()
            except UnicodeDecodeError:
                assume(False)
    mine, theirs = ours(stream), with_websockets(stream)
    # RFC 6455 5.4 allows control frames, Close included, between fragments;
    # websockets fails a Close that interrupts a fragmented message (wsproto, the
    # other differential, accepts it as we do).
    if mine[0] and isinstance(mine[0][-1], Close) and mine[1] is None and theirs[1] == 1002:
        assume(theirs[0] != mine[0][:-1])
    agree(mine, theirs)


# ------------------------------------------------------------------ the C scan speedup


def decode_all(
    chunks: list[bytes], max_frame: int | None, max_message: int | None, decoder: Any = decode
) -> list[Any]:
    ws = new_websocket(max_frame_size=max_frame, max_message_size=max_message)
    got: list[Any] = []
    for chunk in chunks:
        ws, frames = decoder(ws, chunk)
        got += frames
    return [
        (reason_tag(i.reason), i.reason, i.close_code) if isinstance(i, WebSocketError) else i
        for i in got
    ]


limits = st.one_of(st.none(), st.integers(0, 400), st.just(2**64))


@st.composite
def simple_frame(draw: Any) -> bytes:
    """A whole text or binary frame (what the C scan takes), or one that is almost one."""
    size = draw(st.one_of(st.integers(0, 200), st.integers(60_000, 70_000)))
    if draw(st.booleans()):
        payload = draw(st.text(max_size=size)).encode()
        if draw(st.integers(0, 9)) == 0 and payload:  # now and then invalid UTF-8
            at = draw(st.integers(0, len(payload) - 1))
            payload = payload[:at] + draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80"]))
        head = wire(1, payload)
    else:
        head = wire(2, draw(st.binary(min_size=size, max_size=size)))
    flip = draw(st.sampled_from([0, 0, 0, 0, 0x4000, 0x0080]))  # RSV1, or the mask bit
    if flip:
        head = (int.from_bytes(head[:2], "big") ^ flip).to_bytes(2, "big") + head[2:]
    return head


@st.composite
def simple_stream(draw: Any) -> bytes:
    """Runs of whole data frames, now and then a control frame or a broken frame."""
    pieces = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            op, data = draw(control_frames)
            pieces.append(wire(op, data))
        elif kind == 1:
            pieces.append(draw(bad_frame()))
        else:
            pieces.append(draw(simple_frame()))
    return b"".join(pieces)


STREAMS = {
    "simple": simple_stream(),
    "valid": server_stream().map(lambda case: case[0]),
    "invalid": invalid_stream(),
}


@pytest.mark.parametrize("kind", list(STREAMS))
@SETTINGS
@given(data=st.data(), max_frame=limits, max_message=limits)
def test_c_scan_decodes_as_the_python_loop(
    kind: str, data: st.DataObject, max_frame: int | None, max_message: int | None
) -> None:
    """Valid or not, split anywhere, under any limits: the same items, errors included.

    Three decoders: the public ``decode`` (the C entry point when built), the Python
    ``decode`` with the C scan, and the Python ``decode`` with no C at all.
    """
    if frame_mod._scan_c is None:
        pytest.skip("the C speedups are off (or not built)")
    stream = data.draw(STREAMS[kind])
    chunks = data.draw(chunked(stream))
    public = decode_all(chunks, max_frame, max_message)
    with_scan = decode_all(chunks, max_frame, max_message, frame_mod.python_decode)
    saved = frame_mod._scan_c
    frame_mod._scan_c = None
    try:
        without = decode_all(chunks, max_frame, max_message, frame_mod.python_decode)
    finally:
        frame_mod._scan_c = saved
    assert public == with_scan == without


def state_of(ws: Any) -> Any:
    """A WebSocket's decoder state, comparable across decoders (an error by its reason)."""
    rx = ws._rx
    if rx is None or rx.error is None:
        return rx
    return rx._replace(error=(reason_tag(rx.error.reason), rx.error.close_code))


@pytest.mark.parametrize("kind", list(STREAMS))
@SETTINGS
@given(data=st.data(), max_frame=limits, max_message=limits)
def test_the_c_decoder_leaves_the_state_the_python_decoder_leaves(
    kind: str, data: st.DataObject, max_frame: int | None, max_message: int | None
) -> None:
    """Read by read, the public ``decode`` (C when built: it also builds and follows the
    state of a binary frame whose payload is still to come) and the Python ``decode``
    return the same items and leave the same state, so either may take the next read."""
    if frame_mod._scan_c is None:
        pytest.skip("the C speedups are off (or not built)")
    chunks = data.draw(chunked(data.draw(STREAMS[kind])))
    ws_c = ws_py = new_websocket(max_frame_size=max_frame, max_message_size=max_message)
    for chunk in chunks:
        swap = data.draw(st.integers(0, 3))  # now and then one goes on from the other's
        if swap == 1:
            ws_c = ws_py
        elif swap == 2:
            ws_py = ws_c
        ws_c, items_c = decode(ws_c, chunk)
        ws_py, items_py = frame_mod.python_decode(ws_py, chunk)
        assert [i if isinstance(i, Frame) else (i.reason, i.close_code) for i in items_c] == [
            i if isinstance(i, Frame) else (i.reason, i.close_code) for i in items_py
        ]
        assert state_of(ws_c) == state_of(ws_py)
