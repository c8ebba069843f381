"""Unit tests of the Extension API (mint.websocket.extension) as the codec uses it.

``Reverse`` and ``Upper`` are what a third party would write: they prove the API
is enough to build an extension outside the package.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from mint.errors import WebSocketError, reason_tag
from mint.websocket._frame import _mask_py, decode, encode, new_websocket
from mint.websocket._frames import Binary, Close, Ping, Text
from mint.websocket._handshake import negotiate_extensions, normalize_extensions, offer_header
from mint.websocket.extension import RSV1, RSV2, RSV3, Extension, RawMessage
from mint.websocket.permessage_deflate import PerMessageDeflate


class Reverse(Extension):
    """Reverses every message's bytes; claims RSV3."""

    name = "x-reverse"
    rsv_bits = RSV3

    def negotiate(self, params: list[tuple[str, str | None]]) -> Extension:
        if params:
            raise WebSocketError(("extension_not_negotiated", self.name, "no params expected"))
        return Reverse(self.params, self.opts)

    def encode(self, message: RawMessage) -> RawMessage:
        return RawMessage(message.opcode, message.rsv | RSV3, message.data[::-1])

    def decode(self, message: RawMessage, limit: int | None) -> RawMessage:
        if limit is not None and len(message.data) > limit:
            raise WebSocketError("payload_too_large", close_code=1009)
        return RawMessage(message.opcode, message.rsv & ~RSV3, message.data[::-1])


class Double(Extension):
    """Doubles every byte (an "inflating" extension); claims RSV2; stateful counter."""

    name = "x-double"
    rsv_bits = RSV2

    def negotiate(self, params: list[tuple[str, str | None]]) -> Extension:
        ext = Double(self.params, self.opts)
        ext.state = 0
        return ext

    def encode(self, message: RawMessage) -> RawMessage:
        return RawMessage(message.opcode, message.rsv | RSV2, message.data[::2])

    def decode(self, message: RawMessage, limit: int | None) -> RawMessage:
        self.state += 1
        if limit is not None and 2 * len(message.data) > limit:
            raise WebSocketError("payload_too_large", close_code=1009)
        data = bytes(b for b in message.data for _ in range(2))
        return RawMessage(message.opcode, message.rsv & ~RSV2, data)


class Bang(Extension):
    """Adds a "!" on decode, removes it on encode; claims RSV2 (does not commute with Reverse)."""

    name = "x-bang"
    rsv_bits = RSV2

    def encode(self, message: RawMessage) -> RawMessage:
        return RawMessage(message.opcode, message.rsv | RSV2, message.data.removesuffix(b"!"))

    def decode(self, message: RawMessage, limit: int | None) -> RawMessage:
        return RawMessage(message.opcode, message.rsv & ~RSV2, message.data + b"!")


class Seen(Extension):
    """Claims no RSV bits: sees every data message; records them."""

    name = "x-seen"

    def negotiate(self, params: list[tuple[str, str | None]]) -> Extension:
        ext = Seen()
        ext.state = []
        return ext

    def decode(self, message: RawMessage, limit: int | None) -> RawMessage:
        self.state.append(message)
        return message


class Sloppy(Extension):
    """Forgets to clear its bit."""

    name = "x-sloppy"
    rsv_bits = RSV3

    def decode(self, message: RawMessage, limit: int | None) -> RawMessage:
        return message


class Broken(Extension):
    name = "x-broken"
    rsv_bits = RSV3

    def decode(self, message: RawMessage, limit: int | None) -> RawMessage:
        raise WebSocketError("compression_error")

    def encode(self, message: RawMessage) -> RawMessage:
        raise WebSocketError("compression_error")


class Buggy(Extension):
    """An extension with bugs of its own: what its callbacks raise or return is not the
    API's (``mode`` in its opts picks the bug)."""

    name = "x-buggy"
    rsv_bits = RSV3

    def negotiate(self, params: list[tuple[str, str | None]]) -> Extension:
        if self.opts.get("mode") == "negotiate":
            raise KeyError("negotiate bug")
        return Buggy(self.params, self.opts)

    def _bug(self, message: RawMessage) -> RawMessage:
        mode = self.opts.get("mode")
        if mode == "raise":
            raise ValueError("codec bug")
        if mode == "none":
            return None  # type: ignore[return-value]
        if mode == "str":
            return RawMessage(message.opcode, 0, "text")  # type: ignore[arg-type]
        if mode == "opcode":
            return RawMessage(3 - message.opcode, message.rsv, message.data)
        if mode == "rsv1":  # a bit that is not its own (RSV3 is)
            return RawMessage(message.opcode, message.rsv | RSV1, message.data)
        if mode == "all":
            return RawMessage(message.opcode, -1, message.data)
        return RawMessage(message.opcode, message.rsv ^ RSV3, message.data)

    def encode(self, message: RawMessage) -> RawMessage:
        return self._bug(message)

    def decode(self, message: RawMessage, limit: int | None) -> RawMessage:
        return self._bug(message)


def srv(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv: int = 0) -> bytes:
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    if n < 126:
        return bytes([b0, n]) + payload
    return struct.pack("!BBH", b0, 126, n) + payload


def accepted(*exts: Extension, header: str) -> list[Extension]:
    return negotiate_extensions(list(exts), [("sec-websocket-extensions", header)])


def unmask(data: bytes) -> tuple[int, bytes]:
    n = data[1] & 0x7F
    pos = 2 if n < 126 else 4
    key = data[pos : pos + 4]
    return data[0], _mask_py(data[pos + 4 :], key)


# ------------------------------------------------------------------ the base class


def test_defaults() -> None:
    class Plain(Extension):
        name = "x-plain"

    ext = Plain(["a", ("b", 12), ("c", "v")], {"level": 3})
    assert ext.params == ["a", ("b", 12), ("c", "v")]
    assert ext.opts == {"level": 3}
    assert ext.offer_params() == [("a", None), ("b", "12"), ("c", "v")]
    got = ext.negotiate([("b", "10")])
    assert got is not ext
    assert isinstance(got, Plain)
    assert got.accepted_params == [("b", "10")]
    assert ext.accepted_params == []
    msg = RawMessage(1, 0, b"x")
    assert got.encode(msg) is msg
    assert got.decode(msg, None) is msg
    assert "x-plain" in repr(ext)
    assert Plain.rsv_bits == 0


def test_default_negotiate_gives_each_connection_the_state_its_init_sets_up() -> None:
    # API.md lets one instance be offered to many upgrades: each negotiated extension
    # belongs to one connection. A copy of the offer shared what __init__ had set up.
    class Counting(Extension):
        name = "x-count"

        def __init__(self, params: Sequence[Any] = (), opts: Mapping[str, Any] | None = None):
            super().__init__(params, opts)
            self.state = {"sent": 0}

        def encode(self, message: RawMessage) -> RawMessage:
            self.state["sent"] += 1
            return message

    offer = Counting(["a"], {"level": 1})
    first, second = offer.negotiate([]), offer.negotiate([("a", None)])
    first.encode(RawMessage(1, 0, b"x"))
    assert first.state == {"sent": 1}
    assert second.state == {"sent": 0}
    assert offer.state == {"sent": 0}
    assert (second.params, second.opts, second.accepted_params) == (
        ["a"],
        {"level": 1},
        [("a", None)],
    )
    assert second.params is not offer.params and second.opts is not offer.opts


def test_default_negotiate_takes_a_state_it_cannot_copy_as_it_is() -> None:
    # A state that cannot be deep-copied (a lock) is shared, as the caller made it,
    # and a state that refers to the offered instance refers to the accepted one.
    class Locked(Extension):
        name = "x-locked"

        def __init__(self, params: Sequence[Any] = (), opts: Mapping[str, Any] | None = None):
            super().__init__(params, opts)
            self.state = {"lock": threading.Lock()}

    class Owned(Extension):
        name = "x-owned"

        def __init__(self, params: Sequence[Any] = (), opts: Mapping[str, Any] | None = None):
            super().__init__(params, opts)
            self.state = {"owner": self, "seen": []}

    locked = Locked()
    assert locked.negotiate([]).state is locked.state

    class Unpicklable:
        def __deepcopy__(self, memo: object) -> None:
            raise ValueError("ctypes objects containing pointers cannot be pickled")

    class Pointer(Extension):
        name = "x-pointer"

    pointer = Pointer()
    pointer.state = Unpicklable()
    assert pointer.negotiate([]).state is pointer.state
    owned = Owned()
    got = owned.negotiate([])
    assert got.state["owner"] is got
    assert got.state["seen"] is not owned.state["seen"]


def test_default_negotiate_keeps_what_the_offered_instance_was_built_and_set_with() -> None:
    # An instance built with its own __init__ signature, or set up after it was built
    # (a hook), negotiates as it did: the copy carries both over.
    class Tagged(Extension):
        name = "x-tagged"

        def __init__(self, tag: str = "a") -> None:
            super().__init__([], {})
            self.tag = tag

    offer = Tagged(tag="b")
    seen: list[bytes] = []
    offer.hook = seen.append  # type: ignore[attr-defined]
    got = offer.negotiate([])
    assert isinstance(got, Tagged) and got is not offer
    assert got.tag == "b"
    got.hook(b"x")  # type: ignore[attr-defined]
    assert seen == [b"x"]


@pytest.mark.parametrize(
    "bad", [[("a", 1, 2)], [("a", b"x")], [3], [("bad name", "v")], [("a", True)]]
)
def test_bad_params(bad: list[object]) -> None:
    class Plain(Extension):
        name = "x-plain"

    with pytest.raises(WebSocketError) as info:
        Plain(bad).offer_params()  # type: ignore[arg-type]
    assert reason_tag(info.value.reason) == "invalid_extension"


def test_params_must_be_a_sequence() -> None:
    with pytest.raises(WebSocketError):
        Reverse("abc")  # type: ignore[arg-type]


# ------------------------------------------------------------------ through the codec


def test_third_party_extension_round_trip() -> None:
    exts = normalize_extensions([Reverse])
    assert offer_header(exts) == "x-reverse"
    ws = new_websocket(extensions=accepted(*exts, header="x-reverse"))
    ws, data = encode(ws, Text("hello"))
    b0, payload = unmask(data)
    assert b0 == 0x80 | RSV3 | 1
    assert payload == b"olleh"
    _, frames = decode(ws, srv(1, b"dlrow", rsv=RSV3))
    assert frames == [Text("world")]
    # Without the bit, the message is not the extension's: passed through as is.
    _, frames = decode(ws, srv(1, b"plain"))
    assert frames == [Text("plain")]


def test_control_frames_bypass_extensions() -> None:
    ws = new_websocket(extensions=accepted(Reverse(), header="x-reverse"))
    _, data = encode(ws, Ping(b"abc"))
    assert unmask(data) == (0x89, b"abc")
    _, data = encode(ws, Close(1000, "ab"))
    assert unmask(data) == (0x88, b"\x03\xe8ab")
    # RSV3 on a control frame is still an error.
    _, frames = decode(ws, srv(9, b"x", rsv=RSV3))
    assert frames == [WebSocketError(("malformed_reserved", RSV3))]


def test_fragmented_message_reassembled_before_decode() -> None:
    ws = new_websocket(extensions=accepted(Reverse(), header="x-reverse"))
    data = srv(1, b"cba", fin=False, rsv=RSV3) + srv(9, b"p") + srv(0, b"fed")
    _, frames = decode(ws, data)
    assert frames == [Ping(b"p"), Text("defabc")]
    # Byte by byte, too.
    w = ws
    got: list[object] = []
    for i in range(len(data)):
        w, items = decode(w, data[i : i + 1])
        got += items
    assert got == [Ping(b"p"), Text("defabc")]


def test_rsv_on_continuation_is_an_error_even_if_claimed() -> None:
    ws = new_websocket(extensions=accepted(Reverse(), header="x-reverse"))
    _, frames = decode(ws, srv(2, b"a", fin=False, rsv=RSV3) + srv(0, b"b", rsv=RSV3))
    assert frames == [WebSocketError(("malformed_reserved", RSV3))]


def test_unclaimed_bit_still_an_error() -> None:
    ws = new_websocket(extensions=accepted(Reverse(), header="x-reverse"))
    _, frames = decode(ws, srv(2, b"a", rsv=RSV2))
    assert frames == [WebSocketError(("malformed_reserved", RSV2))]


def test_order_encode_in_order_decode_reversed() -> None:
    exts = accepted(Reverse(), Bang(), header="x-bang, x-reverse")
    assert [e.name for e in exts] == ["x-bang", "x-reverse"]  # the server's order
    ws = new_websocket(extensions=exts)
    ws, data = encode(ws, Binary(b"abc!"))
    b0, payload = unmask(data)
    assert b0 == 0x80 | RSV2 | RSV3 | 2
    assert payload == b"cba"  # bang's encode ("abc") then reverse
    _, frames = decode(ws, srv(2, b"cba", rsv=RSV2 | RSV3))
    assert frames == [Binary(b"abc!")]  # reverse first ("abc"), then bang


def test_stateful_extension_keeps_its_own_state() -> None:
    exts = accepted(Double(), header="x-double")
    ws = new_websocket(extensions=exts)
    for _ in range(3):
        ws, frames = decode(ws, srv(2, b"ab", rsv=RSV2))
        assert frames == [Binary(b"aabb")]
    assert exts[0].state == 3


def test_text_validated_after_extensions() -> None:
    ws = new_websocket(extensions=accepted(Reverse(), header="x-reverse"))
    # "☃" reversed is not valid UTF-8 on the wire, but valid once decoded.
    _, frames = decode(ws, srv(1, "☃".encode()[::-1], rsv=RSV3))
    assert frames == [Text("☃")]
    _, frames = decode(ws, srv(1, "☃".encode(), rsv=RSV3))
    assert len(frames) == 1 and isinstance(frames[0], WebSocketError)
    assert frames[0].close_code == 1007
    assert reason_tag(frames[0].reason) == "invalid_utf8"


def test_limit_passed_to_extension_decode() -> None:
    ws = new_websocket(extensions=accepted(Double(), header="x-double"), max_message_size=10)
    _, frames = decode(ws, srv(2, b"abcde", rsv=RSV2))
    assert frames == [Binary(b"aabbccddee")]
    _, frames = decode(ws, srv(2, b"abcdef", rsv=RSV2))
    assert frames == [WebSocketError("payload_too_large")]
    assert frames[0].close_code == 1009  # type: ignore[union-attr]


def test_limit_enforced_even_if_extension_ignores_it() -> None:
    class Greedy(Double):
        name = "x-greedy"

        def decode(self, message: RawMessage, limit: int | None) -> RawMessage:
            return super().decode(message, None)

    ws = new_websocket(extensions=accepted(Greedy(), header="x-greedy"), max_message_size=10)
    _, frames = decode(ws, srv(2, b"abcdef", rsv=RSV2))
    assert frames == [WebSocketError("payload_too_large")]


def test_extension_error_is_inline_with_a_close_code() -> None:
    ws = new_websocket(extensions=accepted(Broken(), header="x-broken"))
    ws2, frames = decode(ws, srv(1, b"ok") + srv(2, b"a", rsv=RSV3) + srv(1, b"dropped"))
    assert frames == [Text("ok"), WebSocketError("compression_error")]
    assert frames[1].close_code == 1002  # type: ignore[union-attr]
    assert decode(ws2, srv(1, b"x"))[1] == [frames[1]]


def test_extension_encode_error_raises_with_websocket() -> None:
    ws = new_websocket(extensions=accepted(Broken(), header="x-broken"))
    with pytest.raises(WebSocketError) as info:
        encode(ws, Text("x"))
    assert info.value.reason == "compression_error"
    assert info.value.websocket is ws


class Refuser(Extension):
    """Refuses every message while ``refusing`` is set (a policy extension, after
    permessage-deflate in the chain, sees compressed bytes), and counts the messages it
    was told were not sent."""

    name = "x-refuser"
    rsv_bits = 0

    def negotiate(self, params: list[tuple[str, str | None]]) -> Extension:
        ext = type(self)(self.params, self.opts)  # (subclasses below too)
        ext.state = 0
        ext.refusing = self.refusing
        return ext

    refusing = False

    def encode(self, message: RawMessage) -> RawMessage:
        if self.refusing:
            raise WebSocketError(("forbidden", self.name), close_code=1008)
        return message

    def encode_aborted(self) -> None:
        self.state += 1


def test_a_refused_message_leaves_no_trace_in_the_deflate_context() -> None:
    # The refusal came after permessage-deflate had compressed the message into its
    # context: the next message referred back to bytes the peer never received, and
    # the peer failed the connection, though the caller went on with e.websocket.
    from mint.websocket.permessage_deflate import PerMessageDeflate

    exts = accepted(PerMessageDeflate(), Refuser(), header="permessage-deflate, x-refuser")
    ws = new_websocket(extensions=exts)
    first = "the quick brown fox jumps over the lazy dog " * 3
    refused = "secret words nobody may read, said twice: secret words nobody may read"
    last = "secret words nobody may read".replace("secret", "public") + " " + refused[6:]
    ws, one = encode(ws, Text(first))
    exts[1].refusing = True
    with pytest.raises(WebSocketError) as info:
        encode(ws, Text(refused))
    exts[1].refusing = False
    assert info.value.reason == ("forbidden", "x-refuser")
    ws = info.value.websocket
    ws, three = encode(ws, Text(last))
    assert exts[1].state == 1
    # The server's side: one inflater over the messages it received (RFC 7692 7.2.2).
    inflater = zlib.decompressobj(-15)
    got = []
    for data in (one, three):
        b0, payload = unmask(data)
        assert b0 == 0x80 | RSV1 | 1
        got.append(inflater.decompress(payload + b"\x00\x00\xff\xff").decode())
    assert got == [first, last]
    # And the client's own later messages still refer back to what was sent.
    ws, four = encode(ws, Text(last))
    assert len(unmask(four)[1]) < len(unmask(three)[1])
    assert inflater.decompress(unmask(four)[1] + b"\x00\x00\xff\xff").decode() == last


def test_every_extension_that_ran_is_told_the_message_was_not_sent() -> None:
    # The one that refused included; one after it never saw the message.
    class Counting(Refuser):
        name = "x-counting"

        def encode(self, message: RawMessage) -> RawMessage:
            return message

    class Failing(Counting):
        name = "x-failing"

        def encode_aborted(self) -> None:
            raise RuntimeError("a bug in the hook: the refusal is still what is raised")

    exts = accepted(Counting(), Refuser(), Failing(), header="x-counting, x-refuser, x-failing")
    ws = new_websocket(extensions=exts)
    exts[1].refusing = True
    with pytest.raises(WebSocketError) as info:
        encode(ws, Binary(b"a secret"))
    exts[1].refusing = False
    assert info.value.reason == ("forbidden", "x-refuser")
    assert [exts[0].state, exts[1].state, exts[2].state] == [1, 1, 0]
    ws, data = encode(ws, Binary(b"public"))
    assert unmask(data) == (0x82, b"public")
    assert [exts[0].state, exts[1].state, exts[2].state] == [1, 1, 0]


def test_bit_left_set_is_malformed_reserved() -> None:
    ws = new_websocket(extensions=accepted(Sloppy(), header="x-sloppy"))
    _, frames = decode(ws, srv(2, b"a", rsv=RSV3))
    assert frames == [WebSocketError(("malformed_reserved", RSV3))]


def test_extension_without_bits_sees_every_message() -> None:
    exts = accepted(Seen(), header="x-seen")
    ws = new_websocket(extensions=exts)
    data = srv(1, b"a") + srv(2, b"b", fin=False) + srv(0, b"c") + srv(9)
    _, frames = decode(ws, data)
    assert frames == [Text("a"), Binary(b"bc"), Ping(b"")]
    assert exts[0].state == [RawMessage(1, 0, b"a"), RawMessage(2, 0, b"bc")]
    # Invalid UTF-8 still caught (after the extension).
    _, frames = decode(ws, srv(1, b"\xff"))
    assert reason_tag(frames[0].reason) == "invalid_utf8"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("mode", "detail"),
    [
        ("raise", "ValueError: codec bug"),
        ("none", "TypeError: returned NoneType, not RawMessage"),
        ("str", "TypeError: returned RawMessage data of str, not bytes"),
        ("opcode", "TypeError: changed the opcode from 2 to 1"),
        ("rsv1", "TypeError: set RSV bits it does not own: 80 (owns 0x10)"),
    ],
)
def test_extension_bug_in_decode_is_inline_1011(mode: str, detail: str) -> None:
    # Whatever the extension's bug, the frames before it are still delivered and the
    # error is typed, inline, with 1011 (internal error): not the peer's fault.
    ws = new_websocket(extensions=accepted(Buggy(opts={"mode": mode}), header="x-buggy"))
    ws2, frames = decode(ws, srv(9, b"p") + srv(1, b"ok") + srv(2, b"a", rsv=RSV3) + srv(1, b"x"))
    assert frames[:2] == [Ping(b"p"), Text("ok")]
    assert len(frames) == 3
    error = frames[2]
    assert isinstance(error, WebSocketError)
    assert error.reason[:2] == ("extension_error", "x-buggy")
    assert error.reason[2] == detail
    assert error.close_code == 1011
    if mode == "raise":
        assert isinstance(error.__cause__, ValueError)
    assert decode(ws2, srv(1, b"y"))[1] == [error]  # the WebSocket stays failed


@pytest.mark.parametrize("mode", ["raise", "none", "str", "opcode", "rsv1", "all"])
def test_extension_bug_in_encode_raises_typed_with_websocket(mode: str) -> None:
    # An opcode changed, or RSV bits the extension does not own (RFC 6455 5.2), went
    # out on the wire as they were (or were silently ignored) before.
    ws = new_websocket(extensions=accepted(Buggy(opts={"mode": mode}), header="x-buggy"))
    with pytest.raises(WebSocketError) as info:
        encode(ws, Binary(b"x"))
    assert info.value.reason[:2] == ("extension_error", "x-buggy")
    assert info.value.websocket is ws
    # Control frames do not pass through extensions: the Close still goes out.
    _, data = encode(ws, Close(1011, ""))
    assert unmask(data) == (0x88, b"\x03\xf3")


def test_extension_bug_in_negotiate_is_typed() -> None:
    with pytest.raises(WebSocketError) as info:
        accepted(Buggy(opts={"mode": "negotiate"}), header="x-buggy")
    assert info.value.reason == ("extension_error", "x-buggy", "KeyError: 'negotiate bug'")
    assert isinstance(info.value.__cause__, KeyError)


def test_sound_extension_still_round_trips_through_the_checks() -> None:
    ws = new_websocket(extensions=accepted(Buggy(opts={"mode": "ok"}), header="x-buggy"))
    _, data = encode(ws, Binary(b"abc"))
    assert unmask(data) == (0x82 | RSV3, b"abc")
    _, frames = decode(ws, srv(2, b"abc", rsv=RSV3))
    assert frames == [Binary(b"abc")]


class Clearing(Extension):
    """Owns no RSV bit, and clears RSV1 (permessage-deflate's) on the way through."""

    name = "x-clear"
    rsv_bits = 0

    def negotiate(self, params: list[tuple[str, str | None]]) -> Extension:
        return Clearing(self.params, self.opts)

    def encode(self, message: RawMessage) -> RawMessage:
        return RawMessage(message.opcode, message.rsv & ~RSV1, message.data)

    def decode(self, message: RawMessage, limit: int | None) -> RawMessage:
        return RawMessage(message.opcode, message.rsv & ~RSV1, message.data)


def test_extension_clearing_a_bit_it_does_not_own_is_its_bug() -> None:
    # ext15: the compressed bytes went out as the payload of a frame without RSV1, and
    # a compressed message came out of decode as its DEFLATE bytes, silently.
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    compressed = (deflate.compress(b"hello") + deflate.flush(zlib.Z_SYNC_FLUSH))[:-4]
    ws = new_websocket(
        extensions=accepted(PerMessageDeflate(), Clearing(), header="permessage-deflate, x-clear")
    )
    with pytest.raises(WebSocketError) as info:
        encode(ws, Binary(b"hello"))
    assert info.value.reason[:2] == ("extension_error", "x-clear")
    assert info.value.reason[2] == "TypeError: cleared RSV bits it does not own: 0 (owns 0x0)"
    _, frames = decode(ws, srv(2, b"ok") + srv(2, compressed, rsv=RSV1))
    assert frames[0] == Binary(b"ok")
    error = frames[1]
    assert isinstance(error, WebSocketError)
    assert error.reason[:2] == ("extension_error", "x-clear")
    assert error.close_code == 1011


class Viewing(Extension):
    """Hands its data on as a memoryview (or a bytearray), which the API allows."""

    name = "x-view"
    rsv_bits = 0

    def negotiate(self, params: list[tuple[str, str | None]]) -> Extension:
        return Viewing(self.params, self.opts)

    def encode(self, message: RawMessage) -> RawMessage:
        return RawMessage(message.opcode, message.rsv, bytearray(message.data))  # type: ignore[arg-type]

    def decode(self, message: RawMessage, limit: int | None) -> RawMessage:
        return RawMessage(message.opcode, message.rsv, memoryview(message.data))  # type: ignore[arg-type]


def test_the_next_extension_gets_bytes_whatever_the_last_returned() -> None:
    # ext15: permessage-deflate after an extension that returned a memoryview failed
    # a sound message with its own TypeError (data + tail), 1011, blamed on itself.
    server = zlib.compressobj(6, zlib.DEFLATED, -15)
    compressed = (server.compress(b"hello") + server.flush(zlib.Z_SYNC_FLUSH))[:-4]
    for header in ("permessage-deflate, x-view", "x-view, permessage-deflate"):
        exts = accepted(PerMessageDeflate(), Viewing(), header=header)
        ws = new_websocket(extensions=exts)
        _, frames = decode(ws, srv(1, compressed, rsv=RSV1))
        assert frames == [Text("hello")], header
        _, data = encode(ws, Text("hi"))
        opcode, payload = unmask(data)
        assert opcode == 0x81 | RSV1
        assert zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff") == b"hi"


class Returning(Extension):
    """Its negotiate returns an instance of a class with the RSV bits its opts say."""

    name = "x-returning"

    def negotiate(self, params: list[tuple[str, str | None]]) -> Extension:
        return type("Odd", (Returning,), {"rsv_bits": self.opts["what"]})(self.params, self.opts)


@pytest.mark.parametrize(
    ("what", "detail"),
    [
        ("bits", "negotiate() returned RSV bits 'bits'"),
        (0x80, "negotiate() returned RSV bits 128"),
        (True, "negotiate() returned RSV bits True"),
    ],
)
def test_the_bits_of_what_negotiate_returns_are_checked(what: object, detail: str) -> None:
    # ext15: bits of another type raised a raw TypeError from the claim, and bits no
    # frame has went on to the codec (whose refusal left an HTTP/2 stream unreset).
    offered = normalize_extensions([Returning(opts={"what": what})])
    headers = [("sec-websocket-extensions", "x-returning")]
    with pytest.raises(WebSocketError) as info:
        negotiate_extensions(offered, headers)
    assert info.value.reason == ("extension_not_negotiated", "x-returning", detail)


class BadOffer(Extension):
    name = "x-bad-offer"

    def offer_params(self) -> list[tuple[str, str | None]]:
        what = self.opts["what"]
        if what == "raise":
            raise KeyError("offer bug")
        return what  # type: ignore[no-any-return]


class BadInit(Extension):
    name = "x-bad-init"

    def __init__(self, params: Any = (), opts: Any = None) -> None:
        raise KeyError("init bug")


@pytest.mark.parametrize(
    "item",
    [
        BadOffer(opts={"what": None}),
        BadOffer(opts={"what": 42}),
        BadOffer(opts={"what": "raise"}),
        BadInit,
        (BadInit, []),
    ],
    ids=["none", "int", "raises", "init", "init-params"],
)
def test_an_extensions_own_bug_in_its_offer_is_invalid_extension(item: object) -> None:
    # ext15: a raw TypeError or KeyError came out of upgrade, with no .conn.
    with pytest.raises(WebSocketError) as info:
        offer_header(normalize_extensions([item]))
    assert info.value.reason == ("invalid_extension", item)
    assert info.value.__cause__ is not None
