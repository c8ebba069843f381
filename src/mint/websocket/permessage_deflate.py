"""permessage-deflate (RFC 7692): whole messages compressed with DEFLATE, on RSV1.

Offer it like any extension; the class alone offers the RFC's default (``client_max_window_bits``
without a value, so the server may pick a smaller window for what the client sends)::

    conn, ref = mint.websocket.upgrade("ws", conn, "/", [], extensions=[PerMessageDeflate])
    conn, ref = mint.websocket.upgrade(
        "ws", conn, "/", [],
        extensions=[
            (PerMessageDeflate, [("server_max_window_bits", 10), "server_no_context_takeover"],
             {"level": 9}),
            PerMessageDeflate,   # a fallback offer if the server refuses the first
        ],
    )
    conn, websocket = mint.websocket.new(conn, ref, status, headers)
    websocket.extensions   # (<PerMessageDeflate ... agreement=...>,) if the server accepted it
    # encode() now compresses every Text/Binary message; decode() inflates those with RSV1.

Parameters (RFC 7692 7.1), as ``params`` items:

- ``"server_no_context_takeover"``: the server must compress each message on its own (this
  side then inflates each with a fresh context and frees it in between).
- ``"client_no_context_takeover"``: this side compresses each message on its own.
- ``("server_max_window_bits", 8..15)``: the largest LZ77 window the server may use.
- ``"client_max_window_bits"`` (no value: "the server may limit me") or
  ``("client_max_window_bits", 8..15)``: the largest window this side uses.

Options (``opts``, not negotiated): ``level`` (zlib level, -1..9, default
``zlib.Z_DEFAULT_COMPRESSION``) and ``mem_level`` (1..9, default 8).

Decisions where RFC 7692 leaves a choice:

- The server's answer is checked as RFC 7692 7.1 requires (and as the websockets client
  does): unknown or repeated parameters, values that are not 8..15 in plain decimal, a
  ``server_no_context_takeover`` or ``server_max_window_bits`` offered but missing from the
  answer, a window larger than offered, or ``client_max_window_bits`` answered when it was not
  offered are refused with ``("extension_not_negotiated", "permessage-deflate", detail)``.
- ``client_max_window_bits=8``: zlib refuses a raw 8-bit window for compression, so this side
  compresses with 9 bits. That is safe: zlib's deflate never emits a distance above
  ``window - 262`` (its ``MAX_DIST``), 250 bytes for a 9-bit window, which fits the peer's
  256-byte window (zlib itself turns 8 into 9 this way; Node's ``zlib`` and ``ws`` do too).
- ``client_no_context_takeover`` is honoured with a ``Z_FULL_FLUSH`` at the end of every
  message, which drops the history like a fresh compressor without allocating one per message.
- Every Text and Binary message is compressed, an empty one as the single byte ``00``
  (RFC 7692 7.2.3.6); control frames never are (the codec only hands data messages to
  extensions). An incoming message with RSV1 and an empty payload is read as empty.
- Inflating is bounded by ``limit`` (``max_message_size``): zlib is asked for at most
  ``limit + 1`` bytes, so a decompression bomb is stopped at the limit, reported inline as
  ``"payload_too_large"`` (close code 1009), and never held whole in memory.
- A message that ends the DEFLATE stream (a block with BFINAL set, RFC 7692 7.2.3.3) is
  accepted; the next message starts a new stream, with the last window of bytes of the
  messages before it (this one's and, with context takeover, the earlier ones') as its
  dictionary, so that context takeover keeps working. A message that goes on after
  such a block (a sender flushing with BFINAL blocks, RFC 7692 7.2.3.4) goes on in a new
  stream there, as browsers inflate it; bytes there that are not DEFLATE data are a
  ``compression_error``, never dropped.
- zlib errors become ``("compression_error", detail)`` with close code 1007.

The zlib contexts are the one mutable part of a WebSocket that negotiated this extension:
always continue with the ``WebSocket`` that ``encode``/``decode`` returned (never encode or
decode twice from the same value), as with any stateful extension.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from mint.errors import CLOSE_INVALID_DATA, CLOSE_MESSAGE_TOO_BIG, WebSocketError
from mint.websocket._utf8 import decode_part
from mint.websocket.extension import RSV1, Extension, RawMessage

__all__ = ["DeflateAgreement", "PerMessageDeflate"]

# RFC 7692 7.2.1: a sync flush ends with an empty stored block, 00 00 ff ff; the sender
# removes those 4 bytes and the receiver appends them again before inflating (7.2.2).
_TAIL = b"\x00\x00\xff\xff"
# RFC 7692 7.1.2.1: window bits are 8..15, written as decimal without leading zeros.
MIN_WINDOW_BITS = 8
MAX_WINDOW_BITS = 15
_BITS_VALUE = re.compile(r"[1-9][0-9]?")
# Inflating works on this much input and output at a time (see _inflate, and the
# decoder's part-by-part inflating of compressed text in mint.websocket._frame).
_CHUNK = 256 * 1024
# Up to this, the tail is appended to the payload (a copy) rather than inflated on its own.
_SMALL = 4096
# A DEFLATE stream that ends (BFINAL) inside a message and is followed by another
# costs a new inflater with a window as its dictionary, microseconds each: a message
# of empty streams (``03 00`` each) cost that per two bytes of input. A message may
# start this many, and one more per _RESTART_BYTES of its input; then it is refused.
_FREE_RESTARTS = 64
_RESTART_BYTES = 128
# After such a restart the input is fed in pieces growing from this size: zlib copies
# what a stream leaves of the input it was given (``unused_data``), and a message of
# many short streams fed whole copied its rest at each of them (quadratic).
_FIRST_PIECE = 64
# The largest DEFLATE window (15 bits): what a stream that starts may refer back to.
_WINDOW = 1 << 15
# zlib refuses raw 8-bit windows for deflate; 9 emits distances <= 250 (see the docstring).
_MIN_DEFLATE_BITS = 9
# zlib's deflateInit2 memLevel range, and its default (DEF_MEM_LEVEL).
_MEM_LEVELS = range(1, 10)
_DEFAULT_MEM_LEVEL = 8
_LEVELS = range(-1, 10)

_SERVER_NO_TAKEOVER = "server_no_context_takeover"
_CLIENT_NO_TAKEOVER = "client_no_context_takeover"
_SERVER_BITS = "server_max_window_bits"
_CLIENT_BITS = "client_max_window_bits"
_OPTS = frozenset({"level", "mem_level"})


@dataclass(frozen=True, slots=True)
class DeflateAgreement:
    """What was negotiated: the windows and context takeover of both directions.

    Attributes:
        client_max_window_bits: the window this side compresses for (8..15).
        server_max_window_bits: the window the server compresses with, and this side
            inflates with (8..15).
        client_no_context_takeover: this side compresses every message on its own.
        server_no_context_takeover: the server compresses every message on its own.
    """

    client_max_window_bits: int = MAX_WINDOW_BITS
    server_max_window_bits: int = MAX_WINDOW_BITS
    client_no_context_takeover: bool = False
    server_no_context_takeover: bool = False


@dataclass(frozen=True, slots=True)
class _Offer:
    client_bits: int | bool  # False: not offered; True: offered without a value
    server_bits: int | None
    client_no_takeover: bool
    server_no_takeover: bool


class PerMessageDeflate(Extension):
    """The permessage-deflate extension (RFC 7692), claiming RSV1.

    Args:
        params: what to offer (see the module docstring); ``()`` offers
            ``client_max_window_bits`` without a value.
        opts: ``level`` (-1..9) and ``mem_level`` (1..9).

    Raises:
        WebSocketError: ``("invalid_extension", item)`` for an unknown, repeated or
            out-of-range parameter or option.

    Attributes:
        agreement: on the instance negotiation returned, the :class:`DeflateAgreement`;
            ``None`` on an offered instance.
    """

    name: ClassVar[str] = "permessage-deflate"
    rsv_bits: ClassVar[int] = RSV1

    agreement: DeflateAgreement | None

    def __init__(
        self,
        params: Sequence[str | tuple[str, str | int]] = (),
        opts: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(params, opts)
        self._offer = _parse_offer(self.params)
        self._level, self._mem_level = _parse_opts(self.opts)
        self.agreement = None
        self._deflater: Any = None  # zlib compress object (typeshed has no public name)
        self._inflater: Any = None  # zlib decompress object; None: make one per message
        # With context takeover: the last messages' output, at least a window's worth
        # once there is that much, for the next stream the server ends (BFINAL) and
        # starts again; ``None`` without (see :meth:`_streamed`).
        self._recent: bytearray | None = None
        self._recent_cap = 0  # twice the server's window: then cut to one window
        self._restarts = 0  # DEFLATE streams restarted in the message under way
        self._flush = zlib.Z_SYNC_FLUSH

    # -- the offer and the answer ------------------------------------------------------

    def offer_params(self) -> list[tuple[str, str | None]]:
        """The offered parameters: as given, or ``client_max_window_bits`` when none are."""
        if not self.params:
            return [(_CLIENT_BITS, None)]
        return super().offer_params()

    def negotiate(self, params: list[tuple[str, str | None]]) -> PerMessageDeflate:
        """Check the server's answer against the offer (RFC 7692 7.1) and set up zlib.

        Args:
            params: the answered parameters, names lower-cased, values unquoted.

        Returns:
            A new, initialized instance with :attr:`agreement` set.

        Raises:
            WebSocketError: ``("extension_not_negotiated", "permessage-deflate", detail)``
                when the answer is not a valid answer to this offer.
        """
        offer = self._offer
        seen: set[str] = set()
        server_bits: int | None = None
        client_bits: int | None = None
        server_no_takeover = client_no_takeover = False
        for pname, value in params:
            if pname in seen:
                raise self._refuse(f"{pname} is repeated")
            seen.add(pname)
            if pname in (_SERVER_NO_TAKEOVER, _CLIENT_NO_TAKEOVER):
                if value is not None:
                    raise self._refuse(f"{pname} takes no value, got {value!r}")
                if pname == _SERVER_NO_TAKEOVER:
                    server_no_takeover = True
                else:
                    client_no_takeover = True
            elif pname in (_SERVER_BITS, _CLIENT_BITS):
                bits = _answered_bits(value)
                if bits is None:
                    raise self._refuse(f"{pname} must be 8..15, got {value!r}")
                if pname == _SERVER_BITS:
                    # 7.1.2.1: the same or a smaller value than offered.
                    if offer.server_bits is not None and bits > offer.server_bits:
                        raise self._refuse(
                            f"{pname}={bits} exceeds the offered {offer.server_bits}"
                        )
                    server_bits = bits
                else:
                    # 7.1.2.2: only in answer to an offer of it, and not larger.
                    if offer.client_bits is False:
                        raise self._refuse(f"{pname} was not offered")
                    if offer.client_bits is not True and bits > offer.client_bits:
                        raise self._refuse(
                            f"{pname}={bits} exceeds the offered {offer.client_bits}"
                        )
                    client_bits = bits
            else:
                raise self._refuse(f"unknown parameter {pname}")
        # 7.1.1.1 and 7.1.2.1: a server that accepts these offers includes them. An
        # offer of 15 bits limits nothing, though: a server that leaves it out of its
        # answer (aiohttp's does) agrees to the same window, so that is no refusal.
        if offer.server_no_takeover and not server_no_takeover:
            raise self._refuse(f"{_SERVER_NO_TAKEOVER} was offered but not answered")
        if offer.server_bits not in (None, MAX_WINDOW_BITS) and server_bits is None:
            raise self._refuse(f"{_SERVER_BITS} was offered but not answered")
        if client_bits is None:
            # 7.1.2.2: a value in the offer limits this side even if the answer omits it.
            offered = offer.client_bits
            client_bits = MAX_WINDOW_BITS if isinstance(offered, bool) else offered
        agreement = DeflateAgreement(
            client_max_window_bits=client_bits,
            server_max_window_bits=server_bits if server_bits is not None else MAX_WINDOW_BITS,
            client_no_context_takeover=client_no_takeover or offer.client_no_takeover,
            server_no_context_takeover=server_no_takeover,
        )
        ext = type(self)(self.params, self.opts)
        ext.accepted_params = list(params)
        ext._start(agreement)
        return ext

    def _refuse(self, detail: str) -> WebSocketError:
        return WebSocketError(("extension_not_negotiated", self.name, detail))

    def _start(self, agreement: DeflateAgreement) -> None:
        self.agreement = agreement
        self._deflater = self._new_deflater(agreement)
        self._flush = (
            zlib.Z_FULL_FLUSH if agreement.client_no_context_takeover else zlib.Z_SYNC_FLUSH
        )
        if not agreement.server_no_context_takeover:
            self._inflater = zlib.decompressobj(-agreement.server_max_window_bits)
            self._recent = bytearray()
            self._recent_cap = 2 << agreement.server_max_window_bits

    # -- traffic -----------------------------------------------------------------------

    def encode(self, message: RawMessage) -> RawMessage:
        """Compress a whole outgoing message (RFC 7692 7.2.1) and set RSV1.

        Raises:
            WebSocketError: ``("invalid_extension", self)`` on an instance that was not
                negotiated; ``("compression_error", detail)`` if zlib fails.
        """
        deflater = self._deflater
        if deflater is None:
            raise WebSocketError(("invalid_extension", self))
        try:
            head = deflater.compress(message.data)
            end = deflater.flush(self._flush)
        except zlib.error as exc:
            raise WebSocketError(("compression_error", str(exc))) from exc
        # A sync (or full) flush always ends with the empty stored block's 00 00 ff ff.
        data = head + end[:-4] if head else end[:-4]
        return RawMessage(message.opcode, message.rsv | RSV1, data)

    def encode_aborted(self) -> None:
        """Forget the message just compressed: it will not be sent.

        A later extension refused it (or zlib failed on it), and with context takeover
        the next message would refer back to bytes the peer never inflated. A deflate
        stream made by a new compressor refers to nothing before it, so the peer's
        inflater, whatever its window holds, reads it right: no copy of the context
        per message (a quarter of a megabyte at 15 window bits) to roll back to.
        """
        agreement = self.agreement
        if self._deflater is not None and agreement is not None:
            self._deflater = self._new_deflater(agreement)

    def _new_deflater(self, agreement: DeflateAgreement) -> Any:
        """A compressor for the agreed window (zlib's raw deflate takes 9 bits at least)."""
        wbits = max(agreement.client_max_window_bits, _MIN_DEFLATE_BITS)
        return zlib.compressobj(self._level, zlib.DEFLATED, -wbits, self._mem_level)

    def decode(self, message: RawMessage, limit: int | None) -> RawMessage:
        """Inflate a whole incoming message with RSV1 (RFC 7692 7.2.2), at most ``limit`` bytes.

        Raises:
            WebSocketError: ``"payload_too_large"`` (1009) as soon as the output would
                exceed ``limit``; ``("compression_error", detail)`` (1007) for data zlib
                cannot inflate; ``("invalid_extension", self)`` if not negotiated.
        """
        if not message.rsv & RSV1:
            return message
        return RawMessage(message.opcode, message.rsv & ~RSV1, self._inflate(message.data, limit))

    def _inflate(self, data: bytes, limit: int | None, text: bool = False) -> bytes:
        """:meth:`decode`'s work on a compressed payload: the inflated bytes.

        Also called by the decoder directly (``mint.websocket._frame``) when this is the
        only extension and its ``decode`` is this class's: the message then needs no
        :class:`RawMessage` in and out (two of the few microseconds a small compressed
        message costs). The decoder says whether the message is ``text``: a text
        message that inflates past ``limit`` is then ``invalid_utf8`` if its bytes
        within the limit already are, which is what the decoder's part-by-part path
        finds first when the same bytes arrive a few at a time (see over_the_limit).
        """
        inflater = self._stream()
        if inflater is None:
            raise WebSocketError(("invalid_extension", self))
        if not data:  # lenient: nothing was compressed
            return b""
        parts: list[bytes] = []
        try:
            out, at = _inflate(inflater, data, limit, _TAIL, 0, _CHUNK)
            if at is not None and goes_on(_rest(data, at)):
                # The server ended a DEFLATE stream (BFINAL) inside the message and
                # went on: the rest is a new stream (RFC 7692 7.2.3.4), inflated as
                # browsers do, never dropped.
                parts.append(out)
                size = len(out)
                recent = bytearray(out[-_WINDOW:])  # (the last window, for the next)
                while at is not None and goes_on(_rest(data, at)):
                    inflater = self._restart_within(inflater, bytes(recent), at)
                    left = None if limit is None else limit - size
                    more, at = _inflate(inflater, data, left, _TAIL, at, _FIRST_PIECE)
                    if more:
                        parts.append(more)
                        size += len(more)
                        recent += more[-_WINDOW:]
                        if len(recent) > 2 * _WINDOW:
                            del recent[:-_WINDOW]
                out = b"".join(parts)
            self._streamed(inflater, out)
        except zlib.error as exc:
            shown = self._replayed(data, limit) if text else None
            if shown is not None:
                raise shown from None
            raise WebSocketError(
                ("compression_error", str(exc)), close_code=CLOSE_INVALID_DATA
            ) from exc
        except _OverLimit as over:
            raise over_the_limit(b"", b"".join(parts + over.parts) if text else None) from None
        return out

    def _replayed(self, data: bytes, limit: int | None) -> WebSocketError | None:
        """What a text message zlib refused shows before that (see replay_text), read
        again from the state it started in (see :meth:`replay_start`)."""
        start = self.replay_start(b"")
        return replay_text(start, bytes(data) + _TAIL, b"", limit, b"", self.replay_start)

    def replay_start(self, recent: bytes) -> Any:
        """An inflater as a stream of the message being inflated started with, for
        replay_text: ``recent`` is what the message inflated to before it (``b""``:
        the message's start), and with context takeover the last window of the
        messages before it (kept by :meth:`_streamed`, which this message has not
        reached) comes first in its dictionary, as :meth:`_restarted` does.

        For an error path only: nothing is copied on the way for it (a copy of the
        inflater costs a microsecond, half of what a small message costs). It takes
        the messages before to have ended at a block boundary, as RFC 7692 7.2.1 has
        them end; one that zlib took though it did not (junk that happened to
        inflate) leaves the real inflater mid-block, and then the replay may tell
        another error of the same close code (1007) than the bytes read part by part.
        """
        agreement = self.agreement
        assert agreement is not None
        wbits = agreement.server_max_window_bits
        size = 1 << wbits
        window = recent[-size:]
        history = self._recent
        if len(window) < size and history:
            window = bytes(history[-(size - len(window)) :]) + window
        return zlib.decompressobj(-wbits, zdict=window) if window else zlib.decompressobj(-wbits)

    def _stream(self) -> Any:
        """The inflater the next message goes through (``None``: not negotiated).

        :meth:`_inflate` takes a whole message through it; the decoder
        (``mint.websocket._frame``) takes a compressed text message part by part
        through it when this is the only extension, so that bad UTF-8, a message
        inflating past the limit, or data zlib rejects is reported at the part that
        shows it, as RFC 6455 8.1 asks of text ("fail fast"), rather than when the last
        fragment arrives. Either then calls :meth:`_streamed`.
        """
        agreement = self.agreement
        if agreement is None:
            return None
        self._restarts = 0
        if self._inflater is None:  # server_no_context_takeover: a fresh context per message
            return zlib.decompressobj(-agreement.server_max_window_bits)
        return self._inflater

    def _streamed(self, inflater: Any, output: bytes | str) -> None:
        """A message inflated through :meth:`_stream` has ended as ``output`` (its bytes,
        or its text). If the server ended its DEFLATE stream (BFINAL) while keeping its
        context, the next message starts a new stream that may still refer back to the
        last window of bytes of every message before it (RFC 7692 7.2.2: the window is
        the connection's, not one stream's). zlib has no way to hand out an ended
        inflater's window, so with context takeover the output is kept in a buffer of
        at most two windows: about 80 ns a small message (6%). Keeping it only from a
        server's first BFINAL on would cost nothing before, but a server may flush
        some messages one way and some the other, and refer back across both."""
        history = self._recent
        if history is None:  # no context takeover: nothing carries over
            return
        if inflater.eof:
            self._restarted(inflater, output)
        cap = self._recent_cap
        if len(output) >= cap:  # (a large message: its end alone, not a copy of all)
            output = output[-cap:]
        history += output.encode() if isinstance(output, str) else output
        if len(history) >= cap:
            del history[: -(cap >> 1)]

    def _restart_within(self, inflater: Any, recent: bytes | str, taken: int) -> Any:
        """:meth:`_restarted`, for a stream that ended inside a message of which
        ``taken`` bytes of input were read: refused once the message started more
        streams than its input allows (``_FREE_RESTARTS``, ``_RESTART_BYTES``).

        Raises:
            WebSocketError: ``("compression_error", detail)`` (1007).
        """
        self._restarts += 1
        if self._restarts > _FREE_RESTARTS + taken // _RESTART_BYTES:
            detail = f"{self._restarts} DEFLATE streams in {taken} bytes of one message"
            raise WebSocketError(("compression_error", detail), close_code=CLOSE_INVALID_DATA)
        return self._restarted(inflater, recent)

    def _restarted(self, inflater: Any, recent: bytes | str) -> Any:
        """The inflater that follows ``inflater``, whose DEFLATE stream ended (BFINAL),
        with the last window of the bytes inflated before (the earlier messages' with
        context takeover, then ``recent``: this message's so far) as its dictionary; it
        replaces the connection's inflater when ``inflater`` was that (context
        takeover). A fresh inflater costs about as little as zlib's reset would."""
        assert self.agreement is not None
        wbits = self.agreement.server_max_window_bits
        size = 1 << wbits
        tail = recent[-size:]
        window = tail.encode() if isinstance(tail, str) else tail
        history = self._recent
        if len(window) < size and inflater is self._inflater and history:
            window = bytes(history[-(size - len(window)) :]) + window
        window = window[-size:]
        new = zlib.decompressobj(-wbits, zdict=window) if window else zlib.decompressobj(-wbits)
        if inflater is self._inflater:
            self._inflater = new
        return new

    def __repr__(self) -> str:
        shown = f" agreement={self.agreement!r}" if self.agreement is not None else ""
        return f"<PerMessageDeflate params={self.params!r}{shown}>"


class _OverLimit(Exception):
    """:func:`_inflate` went past its limit; ``parts`` is the output within it."""

    def __init__(self, parts: list[bytes]) -> None:
        super().__init__()
        self.parts = parts


def over_the_limit(tail: bytes, within: bytes | memoryview | None) -> WebSocketError:
    """The error of a message that inflates past the limit: ``payload_too_large``
    (1009), unless it is text whose bytes ``within`` the limit (after ``tail``, what
    was decoded before them left of a UTF-8 sequence) are not UTF-8 already:
    ``invalid_utf8`` (1007), the error those bytes give when they arrive a few at a
    time, before the rest can go over (RFC 6455 8.1, "fail fast"). Without that
    check a whole frame said 1009 and the same frame read in parts said 1007.
    ``within`` is None for a message that is not text.
    """
    if within is not None:
        try:
            decode_part(tail, within)
        except UnicodeDecodeError:
            return WebSocketError(("invalid_utf8", bytes(within)), close_code=CLOSE_INVALID_DATA)
    return WebSocketError("payload_too_large", close_code=CLOSE_MESSAGE_TOO_BIG)


# replay_text feeds zlib this much input at a time, then a byte at a time over the
# piece it fails in (a copy of the inflater taken before each piece to go back to).
_REPLAY_PIECE = 1024


def replay_text(
    inflater: Any,
    data: bytes | memoryview,
    tail: bytes,
    room: int | None,
    recent: bytes,
    restart: Callable[[bytes], Any],
) -> WebSocketError | None:
    """What the bytes of a compressed text message show before zlib refuses them.

    zlib drops the output of a call it fails in, so a message read whole said
    ``compression_error`` where the same bytes read a few at a time said
    ``invalid_utf8`` (or went over the limit) first: the bad text came out before
    the bad DEFLATE data went in. Called with ``inflater`` as it was before ``data``
    (a copy), ``tail`` (what the text before left of a UTF-8 sequence), ``room`` (what
    is left of the limit, None: none) and ``recent`` (the message's last bytes
    inflated before, for the dictionary of a stream that starts inside it: ``restart``
    makes that stream's inflater, as the decoder does), this inflates ``data`` again,
    a byte at a time where zlib fails, and gives the error those reads would have
    given, or None when zlib refuses first (or the input ends with the stream).
    """
    view = memoryview(data)
    window = bytearray(recent[-_WINDOW:])
    pos, end = 0, len(view)
    while pos < end:
        piece = view[pos : pos + _REPLAY_PIECE]
        saved = inflater.copy()
        refused = False
        try:
            outs = [inflater.decompress(piece)]
            used = len(piece)
        except zlib.error:  # in this piece: again from before it, a byte at a time
            inflater, outs, used = saved, [], 0
            for at in range(len(piece)):
                try:
                    outs.append(inflater.decompress(piece[at : at + 1]))
                except zlib.error:
                    refused = True
                    break
                used = at + 1
                if inflater.eof:
                    break
        for out in outs:
            if room is not None and len(out) > room:
                return over_the_limit(tail, out[:room])
            try:
                _, tail = decode_part(tail, out)
            except UnicodeDecodeError:
                return WebSocketError(("invalid_utf8", out), close_code=CLOSE_INVALID_DATA)
            if room is not None:
                room -= len(out)
            window += out
            if len(window) > 2 * _WINDOW:
                del window[:-_WINDOW]
        if inflater.eof:
            # The stream ended: a new one starts where it did (RFC 7692 7.2.3.4), if
            # more than the tail follows, as the decoder reads it.
            pos += used - len(inflater.unused_data)
            if not goes_on(bytes(view[pos : pos + len(_TAIL) + 1])):
                return None
            inflater = restart(bytes(window))
            continue
        if refused:
            return None
        pos += used
    return None


def _inflate(
    inflater: Any, data: bytes, limit: int | None, tail: bytes, start: int, piece: int
) -> tuple[bytes, int | None]:
    """Inflate ``data`` plus ``tail`` (the removed ``00 00 ff ff``, or nothing) from
    offset ``start`` into at most ``limit`` bytes: the bytes, and the offset at which
    the input left over begins if the DEFLATE stream ended (BFINAL) before it (None
    when all was taken).

    Input goes to zlib ``piece`` bytes at first, then in pieces that double up to
    ``_CHUNK``, and output comes ``_CHUNK`` at a time: zlib is never asked for more than
    what is left of ``limit + 1`` (getting that many proves the message too large), so
    a bomb costs ``limit`` plus a chunk; ``unconsumed_tail``, which zlib copies on every
    call, stays one piece long; and the input a stream leaves (``unused_data``, a copy)
    is at most twice what the stream took, plus ``_FIRST_PIECE``. A small whole input
    (``_SMALL``) takes one call, asked for ``limit + 1`` at most: it cannot inflate to
    more than about 1,032 times its size.
    """
    budget = None if limit is None else limit + 1
    end = len(data) + len(tail)
    if not start and len(data) <= _SMALL:
        out: bytes = inflater.decompress(data + tail, budget or 0)  # (0: no bound)
        if budget is not None and len(out) >= budget:
            raise _OverLimit([out[: budget - 1]])
        return out, (end - len(inflater.unused_data) if inflater.eof else None)
    parts: list[bytes] = []
    view = memoryview(data)
    pos = start
    while pos < end:
        chunk = _piece(view, tail, pos, piece)
        pos += len(chunk)
        while True:
            asked = _CHUNK if budget is None else min(budget, _CHUNK)
            out = inflater.decompress(chunk, asked)
            if budget is not None:
                budget -= len(out)
                if budget <= 0:  # (asked for no more than limit + 1 in all: one over)
                    parts.append(out[:-1])
                    raise _OverLimit(parts)
            if out:
                parts.append(out)
            if inflater.eof:
                return b"".join(parts), pos - len(inflater.unused_data)
            chunk = inflater.unconsumed_tail
            # A full output may leave output pending in zlib even with no input left.
            if not chunk and len(out) < asked:
                break
        piece = min(piece * 2, _CHUNK)
    if len(parts) == 1:
        return parts[0], None
    return b"".join(parts), None


def _piece(view: memoryview, tail: bytes, pos: int, size: int) -> bytes | memoryview:
    """``size`` bytes (or what is left) of the payload ``view`` followed by ``tail``,
    from ``pos``."""
    n = len(view)
    stop = pos + size
    if stop <= n:
        return view[pos:stop]
    if pos >= n:
        return tail[pos - n : stop - n]
    return bytes(view[pos:]) + tail[: stop - n]


def _rest(data: bytes, at: int) -> bytes:
    """The input past ``at`` in ``data`` plus ``_TAIL``, as far as :func:`goes_on` needs
    it: whether there is more than the tail (never a copy of all of it)."""
    n = len(data)
    if at >= n:
        return _TAIL[at - n :]
    if at + len(_TAIL) < n:
        return bytes(data[at : at + len(_TAIL) + 1])  # (more than the tail: it goes on)
    return bytes(data[at:]) + _TAIL


def goes_on(rest: bytes) -> bool:
    """Whether input left past the end of a DEFLATE stream (BFINAL) inside a message is
    more of the message (a new stream, RFC 7692 7.2.3.4) rather than nothing, or only
    the ``00 00 ff ff`` added to a message that ended with its stream."""
    return bool(rest) and rest != _TAIL


def _answered_bits(value: str | None) -> int | None:
    """The window bits of an answered value, or ``None`` if it is not 8..15 in decimal."""
    if value is None or not _BITS_VALUE.fullmatch(value):
        return None
    bits = int(value)
    return bits if MIN_WINDOW_BITS <= bits <= MAX_WINDOW_BITS else None


def _offered_bits(param: object, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        bits = value
    elif isinstance(value, str) and _BITS_VALUE.fullmatch(value):
        bits = int(value)
    else:
        raise WebSocketError(("invalid_extension", param))
    if not MIN_WINDOW_BITS <= bits <= MAX_WINDOW_BITS:
        raise WebSocketError(("invalid_extension", param))
    return bits


def _parse_offer(params: list[str | tuple[str, str | int]]) -> _Offer:
    client_bits: int | bool = not params  # the default offer: client_max_window_bits
    server_bits: int | None = None
    client_no_takeover = server_no_takeover = False
    seen: set[str] = set()
    for param in params:
        if isinstance(param, str):
            pname: object = param
            has_value, value = False, None
        elif isinstance(param, tuple) and len(param) == 2:
            pname, value = param
            has_value = True
        else:
            raise WebSocketError(("invalid_extension", param))
        if not isinstance(pname, str) or pname in seen:
            raise WebSocketError(("invalid_extension", param))
        seen.add(pname)
        if pname in (_SERVER_NO_TAKEOVER, _CLIENT_NO_TAKEOVER) and not has_value:
            if pname == _SERVER_NO_TAKEOVER:
                server_no_takeover = True
            else:
                client_no_takeover = True
        elif pname == _SERVER_BITS and has_value:
            server_bits = _offered_bits(param, value)
        elif pname == _CLIENT_BITS:
            client_bits = _offered_bits(param, value) if has_value else True
        else:
            raise WebSocketError(("invalid_extension", param))
    return _Offer(client_bits, server_bits, client_no_takeover, server_no_takeover)


def _parse_opts(opts: dict[str, Any]) -> tuple[int, int]:
    for key in opts:
        if key not in _OPTS:
            raise WebSocketError(("invalid_extension", {key: opts[key]}))
    level = opts.get("level", zlib.Z_DEFAULT_COMPRESSION)
    mem_level = opts.get("mem_level", _DEFAULT_MEM_LEVEL)
    for key, value, allowed in (("level", level, _LEVELS), ("mem_level", mem_level, _MEM_LEVELS)):
        if type(value) is not int or value not in allowed:
            raise WebSocketError(("invalid_extension", {key: value}))
    return level, mem_level
