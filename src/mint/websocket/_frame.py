"""The WebSocket frame codec (RFC 6455 section 5) and the immutable ``WebSocket`` value.

Pure and sans-IO: bytes in, frames out; randomness (mask keys) comes from an
injected ``random_bytes``. A walkthrough, as the facade uses it::

    ws = new_websocket(extensions=accepted)            # after the handshake
    ws, data = encode(ws, Text("hello"))               # masked client frame, to send
    ws, frames = decode(ws, received)                  # any slice of the server's bytes
    for frame in frames:
        match frame:
            case Text(text): ...
            case Ping(payload): ws, data = encode(ws, Pong(payload))   # the caller answers pings
            case Close(code, reason): ...                              # and replies to close
            case WebSocketError(close_code=code): ...  # fail: send Close(code), then close

Decisions where RFC 6455 and Mint leave a choice:

- ``decode`` returns whole messages: a fragmented message comes out as one ``Text``
  or ``Binary`` when its last fragment arrives; control frames that arrive between
  its fragments come out at once, in wire order.
- After an inline error the returned ``WebSocket`` is failed: the rest of the input
  is dropped, and every later ``decode`` returns ``[error]`` again (the same
  instance), so a caller that missed it cannot go on reading a broken stream.
  ``encode`` keeps working on a failed ``WebSocket`` (to send the Close).
- An invalid UTF-8 close reason is ``("invalid_utf8", reason_bytes)`` with close
  code 1007 (as wsproto and websockets); a bad code or a 1-byte payload is
  ``("invalid_close_payload", payload)`` with 1002.
- ``max_message_size`` bounds the bytes of a message both as received (summed over
  its frames, checked as soon as each header is parsed) and as decoded by the
  extensions (passed to them as ``limit``).
- Mask keys are consecutive 4-byte slices of ``random_bytes(4096)`` results, taken
  in order from a key source that every ``WebSocket`` derived from one
  :func:`new_websocket` shares (its one mutable part): a key is never repeated,
  even when a caller encodes from an old value. ``encode`` returns the ``WebSocket``
  it was given when nothing else changed.
- Frames after a Close frame are still decoded; what to do with them is the
  caller's business (RFC 6455 5.5.1 says a server sends none).
"""

from __future__ import annotations

import os
import weakref
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from struct import pack, unpack_from
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeAlias, cast

from mint._speedup import install_constructors as _install_constructors
from mint._speedup import load_speedup as _load_speedup
from mint.errors import (
    CLOSE_INTERNAL_ERROR,
    CLOSE_INVALID_DATA,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_PROTOCOL_ERROR,
    WebSocketError,
)
from mint.websocket._frames import Binary, Close, Frame, Ping, Pong, Text
from mint.websocket._frames import _set_binary_data as _set_binary
from mint.websocket._frames import _set_text_data as _set_text
from mint.websocket._utf8 import decode_part
from mint.websocket.extension import RSV1, Extension, RawMessage
from mint.websocket.permessage_deflate import (
    _CHUNK,
    _FIRST_PIECE,
    _TAIL,
    PerMessageDeflate,
    goes_on,
    over_the_limit,
    replay_text,
)

__all__ = ["WebSocket", "decode", "encode", "mask", "new_websocket"]

# RFC 6455 5.2: opcodes.
OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

_FIN = 0x80
_RSV_MASK = 0x70
_MASK_BIT = 0x80
# RFC 6455 5.5: control frames carry at most 125 bytes and are never fragmented.
MAX_CONTROL_PAYLOAD = 125
# RFC 6455 5.2: 7-bit lengths up to 125, 126 -> 16-bit, 127 -> 64-bit (top bit 0).
_LEN16 = 126
_LEN64 = 127
_LEN64_MIN = 0x10000
# First header bytes (RSV bits masked off) of a whole text or binary message.
_WHOLE_DATA = frozenset((0x81, 0x82))  # FIN | OP_TEXT, FIN | OP_BINARY

# Mask keys are drawn from a pool so that a frame costs no system call.
_KEY_POOL_SIZE = 4096
# Up to this, the pure-Python mask XORs two big ints; above it, four strided translate
# lanes are faster (paired, best of 15: even at 1 KiB, 1.2x at 2 KiB, 1.5x from 8 KiB to
# 64 KiB, where the int conversions run at about 0.28 GB/s and the lanes at 0.45).
_MASK_INT_MAX = 1 << 10
# Up to this, it builds the repeated key by one multiplication from tables.
_MASK_SMALL = 256
_REPEAT = [((1 << (32 * m)) - 1) // 0xFFFFFFFF for m in range((_MASK_SMALL >> 2) + 2)]
_LOW = [(1 << (8 * i)) - 1 for i in range(_MASK_SMALL + 1)]
# int.from_bytes binds a new method object at every lookup (a classmethod): 60 ns
# of a 16-byte frame's ~1 us in pure Python.
_from_bytes = int.from_bytes
# The pure-Python small-frame builder (see encode), per payload length n < 126:
# key * _KEYED[n] >> _KEYED_SHIFT[n] is the key followed by n bytes of the key
# repeated (the key repeated m + 1 times, cut to 4 + n bytes from the top), and
# _HEAD_*[n] the two header bytes above it, so a frame is one XOR and one OR.
_KEYED = [_REPEAT[((n + 3) >> 2) + 1] for n in range(_LEN16)]
_KEYED_SHIFT = [32 * ((n + 3) >> 2) - 8 * n for n in range(_LEN16)]
_HEAD_TEXT = [
    (_FIN | OP_TEXT) << (8 * n + 40) | (_MASK_BIT | n) << (8 * n + 32) for n in range(_LEN16)
]
_HEAD_BINARY = [
    (_FIN | OP_BINARY) << (8 * n + 40) | (_MASK_BIT | n) << (8 * n + 32) for n in range(_LEN16)
]
# A payload part at least this large is kept as a view of the bytes read (see _part).
_VIEW_MIN = 1 << 16

Shorthand: TypeAlias = Literal["ping", "pong", "close"]
_SHORTHANDS: dict[str, Frame] = {"ping": Ping(), "pong": Pong(), "close": Close()}
DecodeItem: TypeAlias = Frame | WebSocketError


def _valid_close_code(code: int) -> bool:
    """RFC 6455 7.4.1/7.4.2 and the IANA registry: the codes an endpoint may send."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


# --------------------------------------------------------------------------------------
# masking


def _mask_py(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte ``key``, repeated (RFC 6455 5.3); its own inverse.

    Pure Python, no byte loop: small payloads and the repeated key become two big
    ints XORed at once; larger ones go through one translate table per key byte.
    """
    if len(key) != 4:
        raise ValueError("a mask key is 4 bytes")
    n = len(data)
    if n <= _MASK_SMALL:
        if not n:
            return b""
        # The repeated key is the key times 0x..0000000100000001, cut to n bytes.
        k = _from_bytes(key, "little") * _REPEAT[(n + 3) >> 2] & _LOW[n]
        return (_from_bytes(data, "little") ^ k).to_bytes(n, "little")
    if n <= _MASK_INT_MAX:
        repeated = (key * ((n >> 2) + 1))[:n]
        return (int.from_bytes(data, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
            n, "little"
        )
    # Larger payloads: one translate table per key byte over each of the 4 strided
    # lanes, in place in one bytearray (wsproto's trick): four C loops and no big
    # ints, and the bytearray is returned as it is since the caller concatenates it
    # behind the header anyway (one copy fewer than bytes(...)).
    tables = _xor_tables()
    out = bytearray(data)
    out[0::4] = out[0::4].translate(tables[key[0]])
    out[1::4] = out[1::4].translate(tables[key[1]])
    out[2::4] = out[2::4].translate(tables[key[2]])
    out[3::4] = out[3::4].translate(tables[key[3]])
    return cast(bytes, out)


_XOR_TABLES: list[bytes] = []


def _xor_tables() -> list[bytes]:
    """The 256 tables mapping a byte to itself XOR k, built on first use (64 KiB)."""
    if not _XOR_TABLES:
        _XOR_TABLES.extend(bytes(b ^ k for b in range(256)) for k in range(256))
    return _XOR_TABLES


_speedups = _load_speedup()
_mask_c = cast(Callable[[bytes, bytes], bytes] | None, getattr(_speedups, "mask", None))
# frame(b0, payload, pool, at) -> bytes: header, key pool[at:at + 4], masked payload.
_frame_c = cast(Callable[[int, bytes, bytes, int], bytes] | None, getattr(_speedups, "frame", None))

# scan(buf, pos, out, max_frame, max_message) -> pos: decode's common case in C (see
# decode); it stops at anything else and leaves it to the Python loop.
_scan_c = cast(
    Callable[[bytes, int, list[Any], int, int], int] | None, getattr(_speedups, "scan", None)
)
if _scan_c is not None:
    _speedups.setup(Binary, Binary.__dict__["data"], Text, Text.__dict__["data"])
    # Building a frame (one per message sent) without entering the Python __init__.
    _install_constructors(Text, Binary, Ping, Pong, Close)

#: ``mask(data, key) -> bytes``: XOR with the 4-byte key, repeating (RFC 6455 5.3).
#: The C speedup when installed, else the pure-Python fallback (same bytes; above
#: 1 KiB the fallback hands back its bytearray, which callers only concatenate).
mask: Callable[[bytes, bytes], bytes] = _mask_c if _mask_c is not None else _mask_py


# --------------------------------------------------------------------------------------
# state


@dataclass(frozen=True, slots=True)
class _Config:
    """What does not change for the life of a WebSocket."""

    extensions: tuple[Extension, ...]
    max_frame_size: int | None
    max_message_size: int | None
    random_bytes: Callable[[int], bytes]
    rsv_allowed: int  # union of the accepted extensions' RSV bits
    ext_all: bool  # some extension claims no RSV bits: it sees every message
    # The limits as the C scan takes them (-1: none); None when an extension sees
    # every message (the scan must not run then).
    scan_limits: tuple[int, int] | None
    # The longest payload of a one-byte-length frame both limits accept (-1 when an
    # extension sees every message): decode's shortcuts for a read that is one
    # small whole message (see decode).
    small_max: int
    # permessage-deflate alone, as shipped: its inflate, called without the RawMessage
    # in and out of the extension API (see _message_frame); else None.
    inflate: Callable[[bytes, int | None, bool], bytes] | None
    # ... and the extension itself, for a compressed text message in progress.
    deflate: PerMessageDeflate | None


class _Keys:
    """The mask key source: a pool of random bytes and the position of the next key.

    Mutable and shared by every ``WebSocket`` derived from one :func:`new_websocket`
    (its identity never changes), so no key is handed out twice. It also carries
    what :func:`encode`'s fast path needs to know at once: whether any extension
    was negotiated (``plain``), and the pool's keys as ints (the pure-Python frame
    builder works on ints; unpacking 1,024 keys at once beats one per frame). Those
    are unpacked only when that builder first needs them, never with the C encoder:
    a tuple of 1,024 ints holds 40 KiB (10,000 connections that had sent a frame held
    400 MB more for it). An array of them would hold 4 KiB, but its items are made
    anew on each read: 50 ns more per small frame, 14% of the pure-Python encode.
    """

    __slots__ = ("__weakref__", "at", "ints", "plain", "pool", "random_bytes", "size")

    def __init__(self, random_bytes: Callable[[int], bytes], plain: bool) -> None:
        self.random_bytes = random_bytes
        self.plain = plain
        self.forget()
        _LIVE_KEYS.add(self)

    def forget(self) -> None:
        """Drop the pool: the next key comes from a new one."""
        self.pool = b""
        self.size = 0
        self.ints: tuple[int, ...] = ()
        self.at = 0

    def refill(self) -> bytes:
        pool = self.random_bytes(_KEY_POOL_SIZE)
        if type(pool) is not bytes or len(pool) < 4:
            raise ValueError("random_bytes must return bytes (at least 4)")
        self.pool = pool
        self.size = len(pool)
        self.ints = ()
        self.at = 0
        return pool

    def unpack(self) -> tuple[int, ...]:
        """The pool's keys as big-endian ints (:attr:`ints`), for the Python builder."""
        self.ints = unpack_from(f"!{self.size >> 2}I", self.pool)
        return self.ints


# Every live key source, so that a forked child can drop their pools: both processes
# would otherwise hand out the same next keys (RFC 6455 10.3 asks for keys an attacker
# cannot predict; one who sees the parent's frames would know the child's). One weak
# reference per WebSocket made by new(); nothing on the path of a frame.
_LIVE_KEYS: weakref.WeakSet[_Keys] = weakref.WeakSet()


def _forget_keys_after_fork() -> None:
    for keys in list(_LIVE_KEYS):
        keys.forget()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_keys_after_fork)


# An immutable cons list, ``(previous, item)`` or ``None``: O(1) append, joined once.
_Parts: TypeAlias = "tuple[_Parts, Any] | None"

# Where a compressed text message can be inflated again from when zlib refuses a part
# of it (see _inflate_part): a copy of the inflater (None: the message's start, see
# PerMessageDeflate.replay_start), the UTF-8 tail, the count of bytes inflated, the
# message's input size and its text parts (for the dictionary of a DEFLATE stream that
# starts later in it) at that point. The input given since is kept beside it.
_Checkpoint: TypeAlias = "tuple[Any, bytes, int, int, _Parts]"
# A new checkpoint (a copy of the inflater) is taken once this much input went by
# since the last: zlib copies its window (32 KiB) in about a microsecond, which a
# small message's parts cannot pay, and the input kept to read again stays bounded.
_CHECKPOINT_SPAN = 64 * 1024


class _Message(NamedTuple):
    """A data message being received (its first frame has arrived)."""

    opcode: int  # 1 text, 2 binary
    rsv: int  # RSV bits of its first frame
    size: int  # payload bytes received so far (before extensions)
    parts: _Parts  # str parts (streamed text) or bytes parts
    tail: bytes  # incomplete UTF-8 sequence carried to the next part (streamed text)
    stream: bool  # text validated and decoded as it arrives (no extension involved)
    # Compressed text, permessage-deflate alone: (its inflater, the limit, the
    # extension, the last checkpoint: see _Checkpoint), the message inflated, validated
    # and decoded as it arrives (parts are str, see _inflate_part); None otherwise.
    inflating: tuple[Any, int | None, PerMessageDeflate, _Checkpoint | None, _Parts] | None = None
    inflated: int = 0  # bytes inflated so far


class _Rx(NamedTuple):
    """Decoder state; ``WebSocket._rx`` is ``None`` when there is none (the fast path)."""

    error: WebSocketError | None  # set once decoding failed: nothing else matters then
    head: bytes  # unparsed input: an incomplete header or an incomplete control frame
    left: int  # payload bytes still to come for the data frame in progress (0: none)
    fin: bool  # the data frame in progress ends its message
    msg: _Message | None  # the data message in progress


@dataclass(frozen=True, slots=True, repr=False)
class WebSocket:
    """The state of one WebSocket connection's frame codec (Mint's opaque ``t()``).

    Immutable: :func:`encode` and :func:`decode` return the value to continue with
    and never change the one they are given. Build one with :func:`new_websocket`.
    """

    _cfg: _Config
    _rx: _Rx | None  # None: nothing buffered, no message in progress, not failed
    _tx: _Keys  # the mask key source (shared, mutable; see _Keys)

    @property
    def extensions(self) -> tuple[Extension, ...]:
        """The accepted extensions, in negotiated order."""
        return self._cfg.extensions

    @property
    def max_frame_size(self) -> int | None:
        """The largest frame payload :func:`decode` accepts (``None``: no limit)."""
        return self._cfg.max_frame_size

    @property
    def max_message_size(self) -> int | None:
        """The largest message :func:`decode` buffers or inflates (``None``: no limit)."""
        return self._cfg.max_message_size

    def __repr__(self) -> str:
        rx = self._rx
        buffered = 0 if rx is None else len(rx.head) + (rx.msg.size if rx.msg else 0)
        names = [type(e).name if hasattr(type(e), "name") else "?" for e in self._cfg.extensions]
        failed = f", failed={rx.error.reason!r}" if rx is not None and rx.error else ""
        return (
            f"<WebSocket extensions={names} max_frame_size={self._cfg.max_frame_size}"
            f" max_message_size={self._cfg.max_message_size} buffered={buffered}{failed}>"
        )


# Building a WebSocket per encode/decode is on the hot path: setting the slots
# directly costs a third of the frozen dataclass's generated __init__.
_new_object = object.__new__
_set_cfg = cast(Any, WebSocket.__dict__["_cfg"]).__set__
_set_rx = cast(Any, WebSocket.__dict__["_rx"]).__set__
_set_tx = cast(Any, WebSocket.__dict__["_tx"]).__set__


def _make(cfg: _Config, rx: _Rx | None, tx: _Keys) -> WebSocket:
    ws = _new_object(WebSocket)
    _set_cfg(ws, cfg)
    _set_rx(ws, rx)
    _set_tx(ws, tx)
    return ws


def new_websocket(
    *,
    extensions: Sequence[Extension] = (),
    max_frame_size: int | None = None,
    max_message_size: int | None = 64 * 2**20,
    random_bytes: Callable[[int], bytes] = os.urandom,
) -> WebSocket:
    """A fresh codec state.

    Args:
        extensions: the accepted, initialized extensions, in negotiated order.
        max_frame_size: the largest payload of any frame, control frames included, to
            accept (``None``: no limit).
        max_message_size: the largest message to buffer or inflate (``None``: no limit).
        random_bytes: the source of mask keys, called with a pool size (4096).

    Raises:
        WebSocketError: ``("invalid_extension", ext)`` for an item that is not an
            :class:`Extension` or claims bits another one claims;
            ``("invalid_limit", value)`` for a limit that is not ``None`` or an int >= 0.
    """
    exts = tuple(extensions)
    allowed = 0
    ext_all = False
    for ext in exts:
        if not isinstance(ext, Extension):
            raise WebSocketError(("invalid_extension", ext))
        bits = type(ext).rsv_bits
        if not isinstance(bits, int) or bits & ~_RSV_MASK or bits & allowed:
            raise WebSocketError(("invalid_extension", ext))
        allowed |= bits
        ext_all = ext_all or not bits
    for limit in (max_frame_size, max_message_size):
        if limit is not None and (type(limit) is not int or limit < 0):
            raise WebSocketError(("invalid_limit", limit))
    scan_limits = None
    small_max = -1
    if not ext_all:
        scan_limits = (
            -1 if max_frame_size is None else max_frame_size,
            -1 if max_message_size is None else max_message_size,
        )
        small_max = min(
            [MAX_CONTROL_PAYLOAD, *(x for x in (max_frame_size, max_message_size) if x is not None)]
        )
    inflate = deflate = None
    if len(exts) == 1 and type(exts[0]).decode is PerMessageDeflate.decode:
        deflate = cast(PerMessageDeflate, exts[0])
        inflate = deflate._inflate
    cfg = _Config(
        exts,
        max_frame_size,
        max_message_size,
        random_bytes,
        allowed,
        ext_all,
        scan_limits,
        small_max,
        inflate,
        deflate,
    )
    return WebSocket(cfg, None, _Keys(random_bytes, not exts))


# --------------------------------------------------------------------------------------
# encode


def encode(websocket: WebSocket, frame: Frame | Shorthand) -> tuple[WebSocket, bytes]:
    """Encode one frame as a masked client frame (RFC 6455 5.2, 5.3).

    Data frames go through the accepted extensions' ``encode``, in negotiated
    order; a message is never split (``max_frame_size`` bounds decoding only).

    Args:
        websocket: the WebSocket to continue from.
        frame: ``Text``, ``Binary``, ``Ping``, ``Pong``, ``Close``, or a shorthand
            ``"ping"``, ``"pong"``, ``"close"``.

    Returns:
        ``(websocket, data)``: the WebSocket to continue with and the bytes to send.

    Raises:
        WebSocketError: with ``.websocket`` set to ``websocket``: ``"control_frame_too_large"``
            (payload over 125 bytes), ``("invalid_close_payload", ...)`` (a close code
            that may not be sent, or a reason without a code), ``("invalid_utf8", text)``
            (a str with lone surrogates), ``("invalid_frame", frame)`` (not a frame),
            or an extension's error.
    """
    # The fast path: a Text or Binary message without extensions, the same
    # WebSocket back (its key source moves on), one C call for the whole frame.
    if type(frame) is Binary:
        payload = frame.data
        b0 = 0x82  # FIN | OP_BINARY
        heads = _HEAD_BINARY
    elif type(frame) is Text:
        text = frame.data
        if type(text) is not str:
            return _encode(websocket, frame)
        try:
            payload = text.encode()
        except UnicodeEncodeError:
            return _encode(websocket, frame)
        b0 = 0x81  # FIN | OP_TEXT
        heads = _HEAD_TEXT
    else:
        return _encode(websocket, frame)
    try:
        keys = websocket._tx
    except AttributeError:
        raise _not_a_websocket(websocket) from None
    if type(payload) is not bytes or not keys.plain:
        return _encode(websocket, frame)
    at = keys.at
    if at + 4 > keys.size:
        keys.refill()
        at = 0
    keys.at = at + 4
    if _frame_c is not None:
        return websocket, _frame_c(b0, payload, keys.pool, at)
    n = len(payload)
    if n < 126:
        # Small frames in pure Python: the whole frame is one big-endian int, the
        # header bytes over the key over the payload XORed with the repeated key.
        try:
            key = keys.ints[at >> 2]
        except IndexError:  # a new pool: its ints are unpacked at first use (see _Keys)
            key = keys.unpack()[at >> 2]
        keyed = key * _KEYED[n] >> _KEYED_SHIFT[n]
        return websocket, (heads[n] | _from_bytes(payload, "big") ^ keyed).to_bytes(n + 6, "big")
    return websocket, _frame_py(b0, payload, keys.pool, at)


def _abort_encode(ran: Sequence[Extension]) -> None:
    """Tell the extensions that ran on a message that it will not be sent.

    Without this, a refusal by a later extension left permessage-deflate's context
    holding a message the peer never saw: every later message referred back to it,
    and the peer failed the connection ("decompression failed"), though the caller had
    gone on with the WebSocket the error carried, as it is told to. A hook that fails
    is the extension's bug: the encode error the caller gets says what happened.
    """
    for ext in ran:
        try:
            ext.encode_aborted()
        except Exception:  # the original error is the one to raise
            continue


def _not_a_websocket(value: object) -> WebSocketError:
    """What ``encode``/``decode`` raise for a first argument that is no WebSocket (a
    raw ``AttributeError`` before)."""
    return WebSocketError(("invalid_websocket", value))


def _encode(ws: WebSocket, frame: Frame | Shorthand) -> tuple[WebSocket, bytes]:
    """Every frame :func:`encode` does not take its fast path for (same contract)."""
    if not isinstance(ws, WebSocket):
        raise _not_a_websocket(ws)
    if type(frame) not in _FRAME_TYPES and isinstance(frame, _FRAME_BASES):
        frame = _as_base_frame(frame)  # a subclass of a frame: encoded as that frame
    if type(frame) is Binary:
        payload = frame.data
        if type(payload) is not bytes:
            payload = _as_bytes(ws, frame, payload)
        opcode = OP_BINARY
    elif type(frame) is Text:
        text = frame.data
        if not isinstance(text, str):
            raise WebSocketError(("invalid_frame", frame), websocket=ws)
        try:
            # str.encode, not text.encode: a subclass (a StrEnum member) is its
            # characters, whatever its methods do.
            payload = str.encode(text)
        except UnicodeEncodeError as exc:
            raise WebSocketError(("invalid_utf8", text), websocket=ws) from exc
        opcode = OP_TEXT
    elif type(frame) is Ping or type(frame) is Pong:
        payload = frame.data
        if type(payload) is not bytes:
            payload = _as_bytes(ws, frame, payload)
        opcode = OP_PING if type(frame) is Ping else OP_PONG
    elif type(frame) is Close:
        payload = _close_payload(ws, frame)
        opcode = OP_CLOSE
    else:
        shorthand = _SHORTHANDS.get(frame) if isinstance(frame, str) else None
        if shorthand is None:
            raise WebSocketError(("invalid_frame", frame), websocket=ws)
        return _encode(ws, shorthand)

    cfg = ws._cfg
    rsv = 0
    if opcode & 0x8:
        if len(payload) > MAX_CONTROL_PAYLOAD:
            raise WebSocketError("control_frame_too_large", websocket=ws)
    elif cfg.extensions:
        message = RawMessage(opcode, 0, payload)
        for i, ext in enumerate(cfg.extensions):
            try:
                message = _checked(ext.encode(message), message, type(ext).rsv_bits)
            except WebSocketError as exc:
                exc.websocket = ws
                _abort_encode(cfg.extensions[: i + 1])
                raise
            except Exception as exc:
                _abort_encode(cfg.extensions[: i + 1])
                raise _extension_error(ext, exc, websocket=ws) from exc
        payload = message.data
        rsv = message.rsv & _RSV_MASK

    keys = ws._tx
    at = keys.at
    pool = keys.pool
    if at + 4 > len(pool):
        pool = keys.refill()
        at = 0
    keys.at = at + 4
    if type(payload) is not bytes:
        payload = bytes(payload)
    if _frame_c is not None:
        return ws, _frame_c(_FIN | rsv | opcode, payload, pool, at)
    return ws, _frame_py(_FIN | rsv | opcode, payload, pool, at)


_FRAME_BASES = (Text, Binary, Ping, Pong, Close)
_FRAME_TYPES = frozenset(_FRAME_BASES)


def _as_base_frame(frame: Frame) -> Frame:
    """``frame``, an instance of a subclass of a frame class, as that frame class (its
    fields, in the order ``match`` takes them)."""
    base = next(b for b in _FRAME_BASES if isinstance(frame, b))
    return base(*(getattr(frame, name) for name in base.__match_args__))


def _frame_py(b0: int, payload: bytes, pool: bytes, at: int) -> bytes:
    """The pure-Python ``_speedups.frame``: header, key ``pool[at:at + 4]``, masked payload."""
    key = pool[at : at + 4]
    n = len(payload)
    if n < _LEN16:
        header = pack("!BB4s", b0, _MASK_BIT | n, key)
        return header + _mask(payload, key) if n else header
    if n < _LEN64_MIN:
        return pack("!BBH4s", b0, _MASK_BIT | _LEN16, n, key) + _mask(payload, key)
    return pack("!BBQ4s", b0, _MASK_BIT | _LEN64, n, key) + _mask(payload, key)


def _as_bytes(ws: WebSocket, frame: object, payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload)
    raise WebSocketError(("invalid_frame", frame), websocket=ws)


def _close_payload(ws: WebSocket, frame: Close) -> bytes:
    code, reason = frame.code, frame.reason
    if code is None:
        if reason:
            raise WebSocketError(("invalid_close_payload", frame), websocket=ws)
        return b""
    if type(code) is not int or not _valid_close_code(code):
        raise WebSocketError(("invalid_close_payload", frame), websocket=ws)
    if reason is None:
        return pack("!H", code)
    if not isinstance(reason, str):
        raise WebSocketError(("invalid_close_payload", frame), websocket=ws)
    try:
        return pack("!H", code) + reason.encode()
    except UnicodeEncodeError as exc:
        raise WebSocketError(("invalid_utf8", reason), websocket=ws) from exc


# --------------------------------------------------------------------------------------
# decode


def _error(reason: Any, close_code: int = CLOSE_PROTOCOL_ERROR) -> WebSocketError:
    return WebSocketError(reason, close_code=close_code)


def _too_large() -> WebSocketError:
    return WebSocketError("payload_too_large", close_code=CLOSE_MESSAGE_TOO_BIG)


def decode(
    websocket: WebSocket, data: bytes | bytearray | memoryview
) -> tuple[WebSocket, list[Frame | WebSocketError]]:
    """Decode the server's bytes into frames (RFC 6455 5).

    ``data`` may hold part of a frame or many; what is incomplete is kept in the
    returned WebSocket. A fragmented message comes out whole when it ends; control
    frames come out as they arrive.

    Args:
        websocket: the WebSocket to continue from.
        data: the next bytes from the server, as they came.

    Returns:
        ``(websocket, items)``: the WebSocket to continue with and, in wire order,
        frames and, in place of a frame that could not be accepted, a
        :class:`~mint.WebSocketError` with ``.close_code`` (1002 protocol error,
        1007 invalid data, 1009 too big). After an error the rest of the input is
        dropped and the WebSocket is failed: later calls return ``[error]`` again.
    """
    if type(data) is not bytes:
        # Any bytes-like object (bytearray, memoryview...); memoryview() refuses what
        # bytes() would misread, such as an int (that many NULs) or a list of ints.
        try:
            data = memoryview(data).tobytes()
        except TypeError:
            raise WebSocketError(("invalid_data", data), websocket=websocket) from None
    try:
        cfg = websocket._cfg
    except AttributeError:
        raise _not_a_websocket(websocket) from None
    rx = websocket._rx
    out: list[Frame | WebSocketError] = []
    msg: _Message | None = None
    pos = 0
    if rx is None:
        if not data:
            return websocket, out
        buf = data
        limits = cfg.scan_limits
        if limits is not None:
            if cfg.rsv_allowed or _scan_c is None:
                # The most common read of all gets a shortcut: one small, whole,
                # unfragmented message (a request/response exchange). ``data[1] == ln``
                # says the frame is unmasked and has a 7-bit length. (With the C
                # speedup and no extension, the scan below is the shortcut.)
                ln = len(data) - 2
                if 0 <= ln <= cfg.small_max and data[1] == ln:
                    b0 = data[0]
                    rsv = b0 & _RSV_MASK
                    if rsv:
                        if (b0 & 0x8F) in _WHOLE_DATA and not rsv & ~cfg.rsv_allowed:
                            # A compressed message (permessage-deflate sets RSV1):
                            # straight to the extensions, as the loop's _finish would.
                            try:
                                out.append(_message_frame(cfg, b0 & 0x0F, rsv, data[2:]))
                            except WebSocketError as exc:
                                return _fail(websocket, out, exc)
                            return websocket, out
                    elif _scan_c is None:
                        if b0 == 0x82:  # FIN | OP_BINARY
                            item: Any = _new_object(Binary)
                            _set_binary(item, data[2:])
                            out.append(item)
                            return websocket, out
                        if b0 == 0x81:  # FIN | OP_TEXT: bad UTF-8 takes the loop's error
                            try:
                                text = data[2:].decode()
                            except UnicodeDecodeError:
                                pass
                            else:
                                item = _new_object(Text)
                                _set_text(item, text)
                                out.append(item)
                                return websocket, out
            if _scan_c is not None:
                # The common case in one C call: the input is whole data frames.
                pos = _scan_c(buf, 0, out, *limits)
                if pos == len(buf):
                    return websocket, out
    else:
        if rx.error is not None:
            out.append(rx.error)
            return websocket, out
        if not data:
            return websocket, out
        msg = rx.msg
        left = rx.left
        if left:
            # The payload of a data frame whose header was parsed in an earlier call.
            assert msg is not None
            k = len(data)
            try:
                if k < left:
                    msg = _feed(msg, _part(data, 0, k))
                    return _move(websocket, _Rx(None, b"", left - k, rx.fin, msg)), out
                msg = _feed(msg, _part(data, 0, left))
                if rx.fin:
                    out.append(_finish(cfg, msg))
                    msg = None
            except WebSocketError as exc:
                return _fail(websocket, out, exc)
            # The frames after that payload are read from where it ends (no copy).
            buf = data
            pos = left
        else:
            buf = rx.head + data if rx.head else data

    return _decode_loop(websocket, rx, cfg, buf, pos, out, msg)


def _decode_loop(
    ws: WebSocket,
    rx: _Rx | None,
    cfg: _Config,
    buf: bytes,
    pos: int,
    out: list[Frame | WebSocketError],
    msg: _Message | None,
) -> tuple[WebSocket, list[Frame | WebSocketError]]:
    """:func:`decode` from ``buf[pos:]`` on, with ``out`` so far and ``msg`` in progress.

    Also where the C entry point (``mint._speedups.decode``) goes on when its scan
    stops before the end of the input.
    """
    # The frame loop. Whole unfragmented messages without extensions take the
    # first branches only; everything else goes through _open/_feed/_finish.
    n = len(buf)
    append = out.append
    bad_rsv = _RSV_MASK & ~cfg.rsv_allowed
    simple = not cfg.ext_all
    max_frame = cfg.max_frame_size
    max_msg = cfg.max_message_size
    left = 0
    fin = 0
    error: WebSocketError | None = None
    # The C speedup takes each run of whole text and binary frames; the loop handles
    # the frame it stopped at, and hands back after it.
    scan = None
    scan_frame = scan_msg = -1
    if cfg.scan_limits is not None:
        scan = _scan_c
        scan_frame, scan_msg = cfg.scan_limits
    while n - pos >= 2:
        if scan is not None and msg is None:
            pos = scan(buf, pos, out, scan_frame, scan_msg)
            if n - pos < 2:
                break
        b0 = buf[pos]
        b1 = buf[pos + 1]
        if b1 & _MASK_BIT:  # RFC 6455 5.1: a server never masks
            error = _error("masked_server_frame")
            break
        op = b0 & 0x0F
        ln = b1 & 0x7F
        if op & 0x8:  # control frame (RFC 6455 5.5)
            if op > OP_PONG:
                error = _error(("unsupported_opcode", op))
                break
            if b0 & _RSV_MASK:
                error = _error(("malformed_reserved", b0 & _RSV_MASK))
                break
            if not b0 & _FIN:
                error = _error("fragmented_control_frame")
                break
            if ln > MAX_CONTROL_PAYLOAD:
                error = _error("control_frame_too_large")
                break
            if max_frame is not None and ln > max_frame:
                error = _too_large()  # the limit is on every frame, as documented
                break
            end = pos + 2 + ln
            if end > n:
                break
            payload = buf[pos + 2 : end]
            pos = end
            if op == OP_PING:
                append(Ping(payload))
            elif op == OP_PONG:
                append(Pong(payload))
            else:
                try:
                    append(_parse_close(payload))
                except WebSocketError as exc:
                    error = exc
                    break
            continue
        if op > OP_BINARY:
            error = _error(("unsupported_opcode", op))
            break
        rsv = b0 & _RSV_MASK
        if op:
            if msg is not None:
                error = _error("incomplete_message")
                break
            if rsv & bad_rsv:
                error = _error(("malformed_reserved", rsv))
                break
        else:
            if msg is None:
                error = _error("unexpected_continuation")
                break
            if rsv:  # RFC 6455 5.2/7692: RSV bits are set on the first frame only
                error = _error(("malformed_reserved", rsv))
                break
        if ln < _LEN16:
            start = pos + 2
        elif ln == _LEN16:
            if n - pos < 4:
                break
            ln = (buf[pos + 2] << 8) | buf[pos + 3]
            if ln < _LEN16:
                error = _error(("invalid_length", ln))
                break
            start = pos + 4
        else:
            if n - pos < 10:
                break
            (ln,) = unpack_from("!Q", buf, pos + 2)
            if ln < _LEN64_MIN or ln >> 63:
                error = _error(("invalid_length", ln))
                break
            start = pos + 10
        # Limits are enforced on the header, before a byte of payload is buffered.
        if max_frame is not None and ln > max_frame:
            error = _too_large()
            break
        if max_msg is not None and (ln if msg is None else msg.size + ln) > max_msg:
            error = _too_large()
            break
        end = start + ln
        fin = b0 & _FIN
        if end <= n:
            if op and fin and simple and not rsv:
                # The fast path: a whole message in one frame, no extension involved.
                # (Frames built by setting their slot: the dataclass __init__ is
                # the largest cost of a small frame.)
                if op == OP_TEXT:
                    try:
                        text = buf[start:end].decode()
                    except UnicodeDecodeError:
                        error = _error(("invalid_utf8", buf[start:end]), CLOSE_INVALID_DATA)
                        break
                    item: Any = _new_object(Text)
                    _set_text(item, text)
                else:
                    item = _new_object(Binary)
                    _set_binary(item, buf[start:end])
                append(item)
                pos = end
                continue
            pos = end
            if op and fin:
                # A whole message in one frame that an extension (or its RSV bits)
                # concerns: no message in progress to build.
                try:
                    append(_message_frame(cfg, op, rsv, buf[start:end]))
                except WebSocketError as exc:
                    error = exc
                    break
                continue
            try:
                if op:
                    msg = _open(cfg, op, rsv, simple)
                assert msg is not None
                msg = _feed(msg, _part(buf, start, end))
                if fin:
                    append(_finish(cfg, msg))
                    msg = None
            except WebSocketError as exc:
                error = exc
                break
            continue
        # A data frame whose payload has partly arrived: take (and validate) what is
        # there now, and remember how much is still to come.
        try:
            if op:
                msg = _open(cfg, op, rsv, simple)
            assert msg is not None
            if start < n:
                msg = _feed(msg, _part(buf, start, n))
        except WebSocketError as exc:
            error = exc
            break
        left = end - n
        pos = n
        break

    if error is not None:
        return _fail(ws, out, error)
    if left:
        new_rx: _Rx | None = _Rx(None, b"", left, bool(fin), msg)
    elif pos < n:
        new_rx = _Rx(None, buf[pos:], 0, False, msg)
    elif msg is not None:
        new_rx = _Rx(None, b"", 0, False, msg)
    else:
        new_rx = None
    if new_rx is None and rx is None:
        return ws, out
    return _move(ws, new_rx), out


def _move(ws: WebSocket, rx: _Rx | None) -> WebSocket:
    return _make(ws._cfg, rx, ws._tx)


def _fail(
    ws: WebSocket, out: list[Frame | WebSocketError], error: WebSocketError
) -> tuple[WebSocket, list[Frame | WebSocketError]]:
    out.append(error)
    return _make(ws._cfg, _Rx(error, b"", 0, False, None), ws._tx), out


def _open(cfg: _Config, opcode: int, rsv: int, simple: bool) -> _Message:
    """Start a data message; text without extensions is validated as it arrives, and
    so is compressed text when permessage-deflate is the only extension."""
    if opcode == OP_TEXT and rsv == RSV1 and cfg.deflate is not None:
        inflater = cfg.deflate._stream()
        if inflater is not None:
            inflating = (inflater, cfg.max_message_size, cfg.deflate, None, None)
            return _Message(opcode, rsv, 0, None, b"", False, inflating)
    return _Message(opcode, rsv, 0, None, b"", opcode == OP_TEXT and simple and not rsv)


def _part(buf: bytes, start: int, end: int) -> bytes | memoryview:
    """``buf[start:end]``, or a view of it when copying would be the waste.

    A large payload that arrives over several reads is joined once, in
    :func:`_finish`; a view of each read's bytes spares one copy per read, and a
    fresh 1 MiB allocation each (which the C allocator serves with new pages from
    the kernel: page faults, the largest cost of a large message). A view keeps its
    whole ``buf`` alive, so only a part that is most of its ``buf`` becomes one: what
    is held stays under twice the message's size.
    """
    size = end - start
    if size >= _VIEW_MIN and size * 2 >= len(buf):
        if start == 0 and end == len(buf):
            return buf
        return memoryview(buf)[start:end]
    return buf[start:end]


def _feed(msg: _Message, part: bytes | memoryview) -> _Message:
    """Add payload bytes to the message in progress (fail-fast UTF-8 for text)."""
    size = msg.size + len(part)
    if msg.stream:
        try:
            text, tail = decode_part(msg.tail, part)
        except UnicodeDecodeError:
            raise _error(("invalid_utf8", bytes(part)), CLOSE_INVALID_DATA) from None
        parts = _with(msg.parts, text) if text else msg.parts
        return _Message(OP_TEXT, 0, size, parts, tail, True)
    if msg.inflating is not None:
        return _inflate_part(msg, size, part)
    return _Message(
        msg.opcode, msg.rsv, size, _with(msg.parts, part) if part else msg.parts, b"", False
    )


def _inflate_part(msg: _Message, size: int, part: bytes | memoryview) -> _Message:
    """Inflate, validate and decode one part of a compressed text message.

    Raises what the whole message would get when it ends (bad UTF-8, over the limit,
    data zlib rejects) as soon as this part shows it. Input past the end of a DEFLATE
    stream (BFINAL) starts a new one, as the whole-message path does.
    """
    assert msg.inflating is not None
    inflater, limit, deflate, mark, since = msg.inflating
    tail = msg.tail
    inflated = msg.inflated
    parts = msg.parts
    # zlib drops the output of a call it fails in, so what the bytes before a failure
    # say is read again from the last checkpoint (see the except clause).
    if mark is None:  # the first part
        mark = (None, b"", 0, 0, None)
    elif msg.size - mark[3] >= _CHECKPOINT_SPAN and not inflater.eof:
        # (an ended stream is no place to start again from: the input it left over,
        # which the next stream starts with, is in it, not in the input given since)
        mark = (inflater.copy(), tail, inflated, msg.size, parts)
        since = None
    since = (since, part)
    inflating = (inflater, limit, deflate, mark, since)
    view = memoryview(part)
    pos, end = 0, len(view)
    # The input goes to zlib in pieces (see permessage_deflate._inflate): a whole part
    # (up to a frame) copied what was left of it at each stream's end.
    piece = _CHUNK
    try:
        if inflater.eof:
            # The stream ended in an earlier part, which left at most the tail after it:
            # a new one starts with that and this part if they are more than the tail.
            lead: bytes = inflater.unused_data
            if not goes_on(lead + bytes(view[: len(_TAIL) + 1])):
                inflater.decompress(view)  # (kept with the lead: an ended stream's input)
                return _Message(OP_TEXT, RSV1, size, parts, tail, False, inflating, inflated)
            # (the stream ended len(lead) bytes before this part, as the whole part
            # counts it: the restart limit is on the input taken before each stream)
            taken = size - end - len(lead)
            inflater = deflate._restart_within(inflater, _recent(parts, tail), taken)
            inflating = (inflater, limit, deflate, _after_restart(mark), since)
            if lead:  # (rare: a copy of the part, as the whole-message path reads it)
                view = memoryview(lead + bytes(view))
                end = len(view)
        while pos < end:
            chunk: bytes | memoryview = view[pos : pos + piece]
            pos += len(chunk)
            piece = min(piece * 2, _CHUNK)
            while True:
                out = inflater.decompress(chunk, _CHUNK)
                if out:
                    inflated += len(out)
                    if limit is not None and inflated > limit:
                        raise over_the_limit(tail, out[: len(out) - (inflated - limit)])
                    try:
                        text, tail = decode_part(tail, out)
                    except UnicodeDecodeError:
                        raise _error(("invalid_utf8", out), CLOSE_INVALID_DATA) from None
                    if text:
                        parts = _with(parts, text)
                if inflater.eof:
                    at = pos - len(inflater.unused_data)
                    if not goes_on(bytes(view[at : at + len(_TAIL) + 1])):
                        if pos < end:  # (the piece ended at the stream's end: keep the rest)
                            inflater.decompress(view[pos:])
                        return _Message(
                            OP_TEXT, RSV1, size, parts, tail, False, inflating, inflated
                        )
                    # A new DEFLATE stream inside the message (RFC 7692 7.2.3.4).
                    taken = size - end + at
                    inflater = deflate._restart_within(inflater, _recent(parts, tail), taken)
                    inflating = (inflater, limit, deflate, _after_restart(mark), since)
                    pos, piece = at, _FIRST_PIECE
                    break
                chunk = inflater.unconsumed_tail
                # A full output may leave output pending in zlib with no input left.
                if not chunk and len(out) < _CHUNK:
                    break
    except zlib.error as exc:
        # Read a few bytes at a time, the same input may show bad UTF-8 or go over
        # the limit before zlib sees what it refuses: say that, as those reads would.
        saved, tail, inflated, _, before = mark
        start = deflate.replay_start(b"") if saved is None else saved.copy()
        room = None if limit is None else limit - inflated
        given = b"".join(_joined(since))
        recent = _recent(before, tail)
        shown = replay_text(start, given, tail, room, recent, deflate.replay_start)
        if shown is not None:
            raise shown from None
        raise _error(("compression_error", str(exc)), CLOSE_INVALID_DATA) from exc
    return _Message(OP_TEXT, RSV1, size, parts, tail, False, inflating, inflated)


def _after_restart(mark: _Checkpoint) -> _Checkpoint:
    """The checkpoint after a new DEFLATE stream started inside a message: the same
    (read again from it, the input meets the old stream's end and goes on into the new
    one, as here), due for renewal at the next part."""
    return (mark[0], mark[1], mark[2], -_CHECKPOINT_SPAN, mark[4])


# A part this short is merged with a short part before it (see _with).
_SMALL_PART = 512


def _with(parts: _Parts, part: Any) -> _Parts:
    """``parts`` with one more at the end, two short neighbours merged into one.

    Each part costs a tuple and an object (about 56 bytes beside its own): a message
    sent as one-byte fragments (or a frame trickled a byte per read) held some 56 times
    ``max_message_size`` before the limit was reached. Merged, a part costs at most
    about a tenth of its bytes more, and the copies stay short. Only new objects are
    made: an older WebSocket value still sees its own parts.
    """
    if parts is not None and len(part) < _SMALL_PART:
        head, last = parts
        if len(last) < _SMALL_PART and type(last) is type(part):
            return (head, last + part)
    return (parts, part)


def _recent(parts: _Parts, tail: bytes) -> bytes:
    """The last bytes of a text message inflated so far (a DEFLATE window's worth, at
    most 32 KiB, and more), for the dictionary of a stream that starts inside it."""
    texts: list[str] = []
    count = 0
    while parts is not None and count < 1 << 15:
        parts, text = parts
        texts.append(text)
        count += len(text)
    texts.reverse()
    return "".join(texts).encode() + tail


def _joined(parts: _Parts) -> list[Any]:
    items = []
    while parts is not None:
        parts, item = parts
        items.append(item)
    items.reverse()
    return items


def _finish(cfg: _Config, msg: _Message) -> Frame:
    """The frame for a message whose last fragment has arrived."""
    if msg.stream:
        if msg.tail:  # the message ends inside a UTF-8 sequence
            raise _error(("invalid_utf8", msg.tail), CLOSE_INVALID_DATA)
        return Text("".join(_joined(msg.parts)))
    if msg.inflating is not None:
        if not msg.size:  # lenient, as _inflate: nothing was compressed
            return Text("")
        msg = _inflate_part(msg, msg.size + len(_TAIL), _TAIL)  # (counted as input, as whole)
        if msg.tail:
            raise _error(("invalid_utf8", msg.tail), CLOSE_INVALID_DATA)
        text = "".join(_joined(msg.parts))
        assert msg.inflating is not None
        inflater, _, deflate, _, _ = msg.inflating
        deflate._streamed(inflater, text)
        return Text(text)
    return _message_frame(cfg, msg.opcode, msg.rsv, b"".join(_joined(msg.parts)))


def _message_frame(cfg: _Config, opcode: int, rsv: int, data: bytes) -> Frame:
    """The frame for a whole message's payload, through the extensions that apply."""
    if cfg.extensions and (rsv or cfg.ext_all):
        if rsv == RSV1 and cfg.inflate is not None:
            # permessage-deflate alone: what _decode_extensions does, without the
            # RawMessage built in and out.
            try:
                data = cfg.inflate(data, cfg.max_message_size, opcode == OP_TEXT)
            except WebSocketError as exc:
                if exc.close_code is None:
                    exc.close_code = CLOSE_PROTOCOL_ERROR
                raise
            limit = cfg.max_message_size
            if limit is not None and len(data) > limit:
                raise _too_large()
        else:
            data = _decode_extensions(cfg, RawMessage(opcode, rsv, data))
    if opcode == OP_TEXT:
        try:
            return Text(data.decode())
        except UnicodeDecodeError:
            raise _error(("invalid_utf8", data), CLOSE_INVALID_DATA) from None
    return Binary(data)


def _decode_extensions(cfg: _Config, message: RawMessage) -> bytes:
    """Run the extensions' ``decode`` in reverse negotiated order (RFC 6455 9.1)."""
    limit = cfg.max_message_size
    for ext in reversed(cfg.extensions):
        bits = type(ext).rsv_bits
        if bits and not message.rsv & bits:
            continue
        try:
            message = _checked(ext.decode(message, limit), message, bits)
        except WebSocketError as exc:
            if exc.close_code is None:
                exc.close_code = CLOSE_PROTOCOL_ERROR
            raise
        except Exception as exc:
            # A bug in the extension, not the peer's fault: inline like any error, so
            # the frames before it are still delivered, and the connection is failed
            # with 1011 (internal error) rather than blamed on the peer.
            raise _extension_error(ext, exc, close_code=CLOSE_INTERNAL_ERROR) from exc
        if limit is not None and len(message.data) > limit:
            raise _too_large()
    if message.rsv & _RSV_MASK:  # a bit no extension handled
        raise _error(("malformed_reserved", message.rsv & _RSV_MASK))
    return bytes(message.data)


def _checked(message: object, given: RawMessage, bits: int) -> RawMessage:
    """An extension's result for ``given``; ``TypeError`` (its bug, see below) unless a
    message of bytes of the same opcode whose RSV bits are those it was given, its own
    ``bits`` aside. Data given as a ``bytearray`` or ``memoryview`` is handed on as
    ``bytes``, what the next extension is documented to get (``data + tail`` in one
    raised TypeError, blamed on that next extension).

    The opcode and the bits go on the wire as the extensions leave them: a changed
    opcode was ignored, and a bit no negotiated extension owns went out, which RFC 6455
    5.2 forbids (the peer fails the connection). Another extension's bit cleared is as
    bad: a compressed message then went out, or was handed out, as if it were not
    (the DEFLATE bytes as the payload, silently).
    """
    if not isinstance(message, RawMessage):
        raise TypeError(f"returned {type(message).__name__}, not RawMessage")
    data = message.data
    if type(data) is not bytes and not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"returned RawMessage data of {type(data).__name__}, not bytes")
    if message.opcode != given.opcode:
        raise TypeError(f"changed the opcode from {given.opcode!r} to {message.opcode!r}")
    rsv = message.rsv
    if type(rsv) is not int:
        if not isinstance(rsv, int) or isinstance(rsv, bool):
            raise TypeError(f"returned RSV bits of {type(rsv).__name__}, not int")
        rsv = int(rsv)  # (an IntFlag, say)
    changed = (rsv ^ given.rsv) & ~bits
    if changed or rsv < 0:
        what = "set" if rsv & changed or rsv < 0 else "cleared"
        raise TypeError(f"{what} RSV bits it does not own: {rsv!r} (owns {bits:#x})")
    if type(data) is not bytes or rsv is not message.rsv:
        return RawMessage(message.opcode, rsv, bytes(data))
    return message


def _extension_error(ext: Extension, exc: Exception, **kwargs: Any) -> WebSocketError:
    """``("extension_error", name, detail)`` for what an extension raised (not a
    ``WebSocketError``, which is its own say) or returned wrongly: one typed error in
    place of whatever the extension's bug was, with the bug chained as its cause."""
    return WebSocketError(
        ("extension_error", type(ext).name, f"{type(exc).__name__}: {exc}"), **kwargs
    )


def _parse_close(payload: bytes) -> Close:
    """RFC 6455 5.5.1 and 7.4: an optional 2-byte code, then a UTF-8 reason."""
    if not payload:
        return Close(1000, "")
    if len(payload) == 1:
        raise _error(("invalid_close_payload", payload))
    code = (payload[0] << 8) | payload[1]
    if not _valid_close_code(code):
        raise _error(("invalid_close_payload", payload))
    try:
        return Close(code, payload[2:].decode())
    except UnicodeDecodeError:
        raise _error(("invalid_utf8", payload[2:]), CLOSE_INVALID_DATA) from None


_mask = mask


# --------------------------------------------------------------------------------------
# entry points

#: The Python :func:`encode` and :func:`decode`: the reference, and the public
#: functions when the C speedup is off.
python_encode = encode
python_decode = decode

# The C decoder builds and reads _Rx and _Message by position, in this order.
_STATE_FIELDS = (
    ("error", "head", "left", "fin", "msg"),
    ("opcode", "rsv", "size", "parts", "tail", "stream", "inflating", "inflated"),
)

if (
    not TYPE_CHECKING
    and _speedups is not None
    and hasattr(_speedups, "entry_setup")
    and (_Rx._fields, _Message._fields) == _STATE_FIELDS
):
    # With the C speedup, ``encode`` and ``decode`` are its entry points: the common
    # case of each (encode's fast path above; decode's scan of whole frames with no
    # state) without a Python frame between the caller and the work, which in a small
    # request/response round trip is a measurable part of the client's CPU. They read
    # the same slots as the Python functions and hand every other case to them (and
    # an unfinished scan to _decode_loop), so the two cannot disagree; the codec tests
    # run on both (MINT_NO_SPEEDUPS=1).
    # (The C functions come back with the Python functions' documentation, for help().)
    encode, decode = _speedups.entry_setup(
        WebSocket, _Keys, _Config, encode, decode, _decode_loop, _Rx, _Message, _VIEW_MIN
    )
