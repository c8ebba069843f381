"""HTTP/2 session state over ``h2``: bytes in, responses and bytes to write out.

Sans-IO, like :mod:`mint.http._http1`: the facade feeds socket input into
:meth:`Http2Session.receive_data` and writes what :meth:`Http2Session.data_to_send`
returns. Walkthrough of what a caller sees::

    session = Http2Session(scheme="https", host="example.com", port=443)
    session.initiate()                      # preface + SETTINGS (ENABLE_PUSH=0, 16 MiB windows)
    ... write session.data_to_send(), feed input until session.settings_received ...
    ref = session.request("GET", "/", [], None)
    responses = session.receive_data(data)  # Status, Headers, Data, Done / Error, Pong

What this layer adds to ``h2``:

* **Flow control on the way out.** DATA that does not fit the peer's stream or
  connection window (or ``SETTINGS_MAX_FRAME_SIZE``) is queued per stream, in order,
  and sent as WINDOW_UPDATEs arrive; END_STREAM goes out after the queued bytes. The
  queue is bounded (:data:`DEFAULT_MAX_SEND_QUEUE`): a chunk that would overflow it is
  refused whole with ``HTTPError("send_queue_full")``. Received DATA is acknowledged
  as it is handed out, so the peer never stalls.
* **Extended CONNECT (RFC 8441).** ``request(..., upgrade="websocket")`` sends
  ``:method CONNECT`` with ``:protocol websocket``. When the bytes streamed on such a
  stream end with a WebSocket Close frame, the stream ends (RFC 8441 5.1: the Close
  handshake is followed by the stream's end): with that Close when it answers a server
  that has ended its side, else once the server ends it (see ``_held_end``);
  :meth:`Http2Session.cancel` resets a stream the server does not end (the caller
  decides when, see :func:`mint.websocket.cancel`).
* **A WebSocket's frames past h2.** Once a WebSocket's stream has its 2xx, its DATA
  frames without flags and the WINDOW_UPDATEs for it (and for the connection) are
  read here, and the bytes it streams written here as DATA frames, against h2's own
  flow-control windows: h2 costs 40-60 Python calls a frame, and a 1 MiB message is
  64 frames each way plus as many WINDOW_UPDATEs. Everything else (END_STREAM,
  padding, every other stream and frame type) is h2's.
* **GOAWAY that keeps its promises.** RFC 9113 6.8: streams up to the GOAWAY's
  last stream id may still complete; ``h2`` would refuse their frames, so the client
  connection object is told to stay open for reading (:class:`_ClientConnection`).
"""

from __future__ import annotations

import contextlib
import itertools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.frame_buffer
import h2.settings
import h2.utilities
from h2.connection import ConnectionState
from h2.settings import SettingCodes
from h2.stream import H2Stream, StreamClosedBy, StreamState
from hyperframe.frame import DataFrame, Frame, RstStreamFrame, WindowUpdateFrame

from mint.errors import HTTPError, MintError, Reason, TransportError
from mint.http._types import (
    STREAM,
    Chunk,
    Data,
    Done,
    Error,
    Headers,
    IOData,
    Pong,
    ProtocolName,
    Ref,
    Response,
    Status,
    _Marker,
    body_end,
    body_left,
    check_request,
    iodata,
)

USER_AGENT = "mint-websocket/0.1"

# Our receive windows: large enough that a fast server is never throttled by us.
# RFC 9113 6.9.2: the connection window starts at 65,535 whatever SETTINGS say.
DEFAULT_RECEIVE_WINDOW = 16 * 2**20
_INITIAL_CONNECTION_WINDOW = 65_535
# The largest DATA frame we accept (RFC 9113 6.5.2 allows up to 2**24 - 1).
DEFAULT_MAX_FRAME_SIZE = 2**20
# The largest decoded header list we accept (RFC 9113 6.5.2, counted as RFC 7541 4.1
# does): 1 MiB, the bound HTTP/1.1 puts on a head, where h2's default is 64 KiB. A
# larger one is a connection error (ENHANCE_YOUR_CALM): HPACK stops decoding midway,
# and the compression state both sides share cannot be trusted after that.
MAX_HEADER_LIST_SIZE = 2**20
# The most bytes of one header block (HEADERS or PUSH_PROMISE and its CONTINUATIONs)
# held until it ends. h2 holds the frames until END_HEADERS and bounds only their count
# (64): 64 frames of 1 MiB, 64 MiB a connection, where no block within the list size
# above takes more than about 4 MiB (Huffman may spend 30 bits on an octet, plus a few
# octets a field). Over it is a connection error (ENHANCE_YOUR_CALM).
MAX_HEADER_BLOCK = 5 * MAX_HEADER_LIST_SIZE

# The most bytes held on a connection waiting for the peer's flow-control windows.
DEFAULT_MAX_SEND_QUEUE = 64 * 2**20
# Chunks shorter than this queued behind others are gathered into one bytearray of
# about this size (see Http2Session._enqueue): one frame's worth at the usual 16 KiB.
_GATHER = 16384

# RFC 9113 8.2.2: connection-specific header fields are not used in HTTP/2.
_CONNECTION_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}
)

# RFC 9113 4.1: every frame starts with a 9-octet header whose first 3 octets are
# the payload length.
_FRAME_HEADER = 9
# RFC 9113 6: the frame types read here, and END_HEADERS (HEADERS, PUSH_PROMISE and
# CONTINUATION frames end a header block with it).
_DATA, _HEADERS, _PUSH_PROMISE, _WINDOW_UPDATE, _CONTINUATION = 0x0, 0x1, 0x5, 0x8, 0x9
_END_HEADERS = 0x4
# RFC 9113 6.9.1: the largest a flow-control window may grow.
_MAX_WINDOW = 2**31 - 1
# The h2 stream states in which a WebSocket's frames go past h2 (RFC 9113 5.1): DATA
# is sent, and WINDOW_UPDATEs counted, in the first two; DATA is received in the last.
_FAST_STATES = (StreamState.OPEN, StreamState.HALF_CLOSED_REMOTE)
_RECEIVING_STATES = (StreamState.OPEN, StreamState.HALF_CLOSED_LOCAL)

# How many streams the peer stopped with RST_STREAM(NO_ERROR) are remembered, so
# that bytes the caller still sends on them are dropped instead of failing (and how
# many we sent a RST_STREAM on: see _ClientConnection._prepare_for_sending).
_STOPPED_MEMORY = 1024


def _remember(seen: dict[Any, None], key: object) -> None:
    """Add ``key`` to ``seen``, an ordered set of the last ``_STOPPED_MEMORY`` keys."""
    seen[key] = None
    if len(seen) > _STOPPED_MEMORY:
        del seen[next(iter(seen))]


# RFC 6455 5.2: opcode of a Close frame.
_WS_OPCODE_CLOSE = 0x8

_ping_counter = itertools.count(1)


class _QuietDataFrame(DataFrame):
    """A received DATA frame whose ``repr`` leaves the payload out.

    ``h2`` traces every frame it receives as ``repr(frame)``, computed before the
    logger decides not to print it, and a DATA frame's repr hexlifies its whole
    payload (then keeps 20 digits of it). That was a fifth of the client's CPU for a
    WebSocket over HTTP/2 at 1 MiB (about 26 µs per 16 KiB frame, ``cProfile``).
    """

    def _body_repr(self) -> str:
        return f"<{len(self.data)} bytes>"


class _ZeroWindowUpdateFrame(WindowUpdateFrame):
    """A WINDOW_UPDATE of 0 on a stream: RFC 9113 6.9 makes it a stream error (of
    type PROTOCOL_ERROR), which ``hyperframe`` refuses to parse at all (the whole
    connection ended)."""


class _QuietFrameBuffer(h2.frame_buffer.FrameBuffer):
    """``h2``'s frame buffer, handing DATA frames out as :class:`_QuietDataFrame`, and
    the WINDOW_UPDATEs ``hyperframe`` refuses as RFC 9113 6.9 reads them."""

    def __next__(self) -> Frame:
        try:
            frame = super().__next__()
        except h2.exceptions.ProtocolError:
            window_update = self._window_update()
            if window_update is None:
                raise
            return window_update
        if frame.__class__ is DataFrame:
            frame.__class__ = _QuietDataFrame
        return frame

    def _window_update(self) -> Frame | None:
        """The WINDOW_UPDATE at the head of the buffer that ``hyperframe`` refused,
        or None (the refusal was of something else, and stands). Its reserved bit
        is to be ignored, and was not; an increment of 0 on a stream is that
        stream's error, and was the connection's. On the connection it is the
        connection's (:class:`_ZeroWindowUpdateFrame` is for a stream only)."""
        head = self._data[:13]
        if len(head) < 13 or head[3] != 0x8 or head[:3] != b"\x00\x00\x04":
            return None
        stream_id = int.from_bytes(head[5:9], "big") & 0x7FFF_FFFF
        increment = int.from_bytes(head[9:13], "big") & 0x7FFF_FFFF
        if increment:
            frame: Frame = WindowUpdateFrame(stream_id, window_increment=increment)
        elif stream_id:
            frame = _ZeroWindowUpdateFrame(stream_id)
        else:
            return None
        replacement = self._update_header_buffer(frame)  # (raises inside a header block)
        del self._data[:13]
        return replacement


class _MalformedResponse(h2.exceptions.ProtocolError):
    """A response ``h2`` found malformed on one stream (RFC 9113 8.1.1): a stream error
    of type ``error_code``, whose RST_STREAM is still to be sent if ``reset_owed``
    (``h2``'s state machine closed the stream as it refused the frame)."""

    def __init__(
        self,
        detail: str,
        error_code: h2.errors.ErrorCodes = h2.errors.ErrorCodes.PROTOCOL_ERROR,
        *,
        reset_owed: bool = False,
    ) -> None:
        super().__init__(detail)
        self.error_code = error_code
        self.reset_owed = reset_owed


# The refusals of h2's stream that are the response's. Its others are not: a frame on
# a stream already closed (StreamClosedError, which h2 answers with a RST_STREAM of
# its own) and a stream window overrun (FlowControlError, which h2 makes the
# connection's, as RFC 9113 6.9.1 allows).
_RESPONSE_REFUSALS = (h2.exceptions.ProtocolError, h2.exceptions.InvalidBodyLengthError)


def _malformed_if_refused(check: Callable[..., Any], *, frame: bool = False) -> Callable[..., Any]:
    """``check`` (a method of ``h2``'s stream), raising its refusal of the response as
    :class:`_MalformedResponse`. With ``frame`` (the stream's taking of a whole frame,
    around the checks made inside it), also says how the stream is to be reset, from
    its state before the frame: the checks inside run after the frame's END_STREAM
    closed it, and a malformed head that carried one was reset as STREAM_CLOSED, or
    not at all."""

    def checked(self: Any, *args: Any) -> Any:
        before = self.state_machine.state
        try:
            return check(self, *args)
        except h2.exceptions.ProtocolError as exc:
            if type(exc) not in _RESPONSE_REFUSALS and not (
                frame and type(exc) is _MalformedResponse
            ):
                raise
            refused = exc if type(exc) is _MalformedResponse else _MalformedResponse(str(exc))
            if frame:
                # A frame the stream's state refuses (a head after the server's
                # END_STREAM) is a STREAM_CLOSED stream error (RFC 9113 5.1). h2 closes
                # the stream as it refuses some frames (that one, DATA before any
                # head, a 1xx after the final head), and then refuses to reset it: owed.
                ended = before in (StreamState.HALF_CLOSED_REMOTE, StreamState.CLOSED)
                codes = h2.errors.ErrorCodes
                refused.error_code = codes.STREAM_CLOSED if ended else codes.PROTOCOL_ERROR
                refused.reset_owed = before is not StreamState.CLOSED and self.closed
            if refused is exc:
                raise
            raise refused from exc

    return checked


def _status_of(headers: Any) -> bytes | None:
    """A header block's ``:status``, or None. Its names and values are bytes or str
    (as ``h2`` decoded them, or as it was configured), never compared across: under
    ``python -bb`` that is an error, and a block whose first header is not
    ``:status`` (one without it, or a pseudo-header out of place) raised one."""
    for name, value in headers:
        if isinstance(name, bytes):
            if name != b":status":
                continue
        elif name != ":status":
            continue
        return value.encode("latin-1") if isinstance(value, str) else bytes(value)
    return None


class _CheckedStream(H2Stream):
    """``h2``'s stream, telling a malformed response (:class:`_MalformedResponse`) from
    the protocol errors that are the connection's.

    ``h2`` raises ``ProtocolError`` for both, and a ``ProtocolError`` ends the whole
    connection: one bad response (an upper-case header name, a body that does not
    match its ``content-length``) failed every stream on it, WebSockets included.
    RFC 9113 8.1.1 makes it a stream error. These are the checks of the response
    itself, made after the frame's state changes and header decoding went through, so
    the connection's state is whole and only the stream need end.
    """

    # A frame's own checks: trailers without END_STREAM, an informational head with
    # END_STREAM, DATA before any head (RFC 9113 8.1). Made once HPACK decoded the
    # block and the connection window counted the DATA: only the stream need end.
    def _receive_headers(self, headers: Any, end_stream: bool, encoding: Any) -> Any:
        """``h2``'s taking of a header block, and the check it leaves out: a final head
        with END_STREAM is a whole response with no content, so its ``content-length``
        must be 0 (RFC 9113 8.1.1; a HEAD's, a 204's and a 304's are, see
        :meth:`_initialize_content_length`). h2 counts the length on DATA only, and
        such a head was handed out as a whole, empty body: ``Done``."""
        frames, events = H2Stream.receive_headers(self, headers, end_stream, encoding)
        expected = self._expected_content_length
        if end_stream and expected and events and isinstance(events[0], h2.events.ResponseReceived):
            raise _MalformedResponse(
                f"InvalidBodyLengthError: Expected {expected} bytes, received 0"
            )
        return frames, events

    receive_headers = _malformed_if_refused(_receive_headers, frame=True)
    receive_data = _malformed_if_refused(H2Stream.receive_data, frame=True)

    _h2_initialize_content_length = _malformed_if_refused(H2Stream._initialize_content_length)
    _track_content_length = _malformed_if_refused(H2Stream._track_content_length)
    _final_seen = False  # (a class default: h2's streams are given this class, not made)

    def _initialize_content_length(self, headers: Any) -> None:
        """``h2``'s reading of ``content-length``, with what it leaves out.

        h2 runs it for every header block, trailers too: trailers (which carry none)
        reset the expected length, and a body shorter than its ``content-length`` that
        trailers ended was handed out as whole, ``Done`` and all (RFC 9113 8.1.1: a
        malformed response). A 204 or 304 has no content (RFC 9110 15.3.5, 15.4.5),
        as h2 knows of a HEAD's answer only: their DATA was handed out as a body.
        """
        if self._final_seen:  # trailers: the body is over
            expected, actual = self._expected_content_length, self._actual_content_length
            if expected is not None and expected != actual:
                raise _MalformedResponse(
                    f"InvalidBodyLengthError: Expected {expected} bytes, received {actual}"
                )
            return
        status = _status_of(headers)
        if status is not None and status.startswith(b"1"):
            return  # an informational head: the final one says
        self._h2_initialize_content_length(headers)
        self._final_seen = True
        if status in (b"204", b"304"):
            self._expected_content_length = 0

    _h2_process_received_headers = _malformed_if_refused(H2Stream._process_received_headers)

    def _process_received_headers(self, headers: Any, flags: Any, encoding: Any) -> Any:
        """``h2``'s checks, and one it leaves out: a response's ``:status`` is three
        digits (RFC 9113 8.3.2, RFC 9110 15), as h11 asks of HTTP/1.1. ``h2`` only
        looks at its first digit, so ``abc`` failed the whole connection later and
        ``2000`` or ``-200`` were handed out as statuses."""
        out = self._h2_process_received_headers(headers, flags, encoding)
        if flags.is_response_header and not flags.is_trailer:
            status = _status_of(out)
            if status is not None:
                text = status.decode("latin-1")
                if not (len(text) == 3 and text.isascii() and text.isdigit()) or text < "100":
                    raise _MalformedResponse(f"invalid :status {text!r}")
                if text == "101":
                    # RFC 9113 8.6: HTTP/2 has no 101. Passed on as an informational
                    # Status, it had an extended CONNECT's caller call new(101), which
                    # refused it and forgot the upgrade: the real 200 was then none.
                    raise _MalformedResponse("a 101 (Switching Protocols) in HTTP/2")
        return out


class _CompressionError(h2.exceptions.ProtocolError):
    """A header block HPACK cannot decode: RFC 9113 4.3 makes it a connection error of
    type COMPRESSION_ERROR (``h2`` says PROTOCOL_ERROR)."""

    error_code = h2.errors.ErrorCodes.COMPRESSION_ERROR


class _MalformedResponseReceived(h2.events.Event):
    """Our event: the stream's response was malformed, and we reset the stream."""

    def __init__(self, stream_id: int, detail: str) -> None:
        self.stream_id = stream_id
        self.detail = detail


class _ClientConnection(h2.connection.H2Connection):
    """``h2``'s connection, kept readable after the peer's GOAWAY, and quiet on DATA.

    ``h2`` moves to CLOSED on GOAWAY and then rejects every frame, although RFC 9113
    6.8 lets the streams at or below the last stream id finish. The state before the
    GOAWAY is restored (new requests are refused by :class:`Http2Session` itself), and
    the frames already prepared for sending (SETTINGS ACKs, WINDOW_UPDATEs) are kept.

    Received DATA frames are :class:`_QuietDataFrame`, dispatched as ``h2`` dispatches
    DATA (its table is keyed by the frame's exact class). Should a later ``h2`` hold
    its buffer or its table differently, the connection is left as ``h2`` made it.
    """

    sent_goaway = False

    def __init__(self, config: h2.config.H2Configuration) -> None:
        # The streams we sent a RST_STREAM on (an ordered set): see _prepare_for_sending.
        self.reset_sent: dict[int, None] = {}
        super().__init__(config=config)
        table = getattr(self, "_frame_dispatch_table", None)
        if (
            isinstance(table, dict)
            and DataFrame in table
            and type(self.incoming_buffer) is h2.frame_buffer.FrameBuffer
        ):
            table[_QuietDataFrame] = table[DataFrame]
            table[_ZeroWindowUpdateFrame] = self._receive_zero_window_update
            self.incoming_buffer = _QuietFrameBuffer(server=False)

    def _begin_new_stream(self, stream_id: int, allowed_ids: Any) -> Any:
        stream = super()._begin_new_stream(stream_id, allowed_ids)
        if type(stream) is H2Stream:
            stream.__class__ = _CheckedStream
        return stream

    def _receive_headers_frame(self, frame: Any) -> tuple[list[Any], list[h2.events.Event]]:
        if not frame.stream_id % 2 and frame.stream_id not in self.streams:
            # A server opens no stream (push is off): RFC 9113 5.1.1's connection
            # error. h2 took it for a request to us, and we reset it as malformed.
            detail = f"HEADERS on stream {frame.stream_id}, which a server cannot open"
            raise h2.exceptions.ProtocolError(detail)
        try:
            return super()._receive_headers_frame(frame)
        except _MalformedResponse as exc:
            return self._malformed(frame.stream_id, exc, 0)
        except h2.exceptions.ProtocolError as exc:
            if type(exc) is h2.exceptions.ProtocolError and str(exc).startswith(
                "Error decoding header block"
            ):
                raise _CompressionError(str(exc)) from exc
            raise

    def _prepare_for_sending(self, frames: list[Frame]) -> None:
        """``h2``'s, less the RST_STREAM it answers each frame with on a stream that
        already had one from us.

        RFC 9113 5.1: frames the peer sent before it saw our RST_STREAM are to be
        ignored. ``h2`` answered each with another RST_STREAM(STREAM_CLOSED): a stream
        cancelled with 12 MiB in flight cost 769 of them. The streams that had one are
        remembered (the last ``_STOPPED_MEMORY``), as ``h2`` remembers closed streams.
        """
        if frames:
            reset = self.reset_sent
            kept = []
            for f in frames:
                if f.__class__ is RstStreamFrame:
                    if f.stream_id in reset and f.error_code == h2.errors.ErrorCodes.STREAM_CLOSED:
                        continue
                    _remember(reset, f.stream_id)
                kept.append(f)
            frames = kept
        super()._prepare_for_sending(frames)

    def _receive_data_frame(self, frame: Any) -> tuple[list[Any], list[h2.events.Event]]:
        try:
            return super()._receive_data_frame(frame)
        except _MalformedResponse as exc:
            return self._malformed(frame.stream_id, exc, frame.flow_controlled_length)

    def _receive_zero_window_update(
        self, frame: _ZeroWindowUpdateFrame
    ) -> tuple[list[Any], list[h2.events.Event]]:
        """As ``h2`` takes a WINDOW_UPDATE, with the increment of 0 the stream's error
        (RFC 9113 6.9); a stream already closed ignores it, as any other."""
        events = self.state_machine.process_input(h2.connection.ConnectionInputs.RECV_WINDOW_UPDATE)
        try:
            if self._get_stream_by_id(frame.stream_id).closed:
                return [], events
        except h2.exceptions.StreamClosedError:
            return [], events
        refused = _MalformedResponse("WINDOW_UPDATE with an increment of 0")
        frames, more = self._malformed(frame.stream_id, refused, 0)
        return frames, events + more

    def _malformed(
        self, stream_id: int, exc: Exception, length: int
    ) -> tuple[list[Any], list[h2.events.Event]]:
        """RFC 9113 8.1.1: a malformed response is a stream error of type
        PROTOCOL_ERROR (or the ``error_code`` of a :class:`_MalformedResponse`). The
        stream is reset, and the connection window gets back the ``length`` bytes of
        DATA it took for a frame never handed out."""
        code = getattr(exc, "error_code", h2.errors.ErrorCodes.PROTOCOL_ERROR)
        try:
            self.reset_stream(stream_id, code)
        except h2.exceptions.ProtocolError:
            if getattr(exc, "reset_owed", False):
                reset = RstStreamFrame(stream_id)
                reset.error_code = code
                self._prepare_for_sending([reset])
                # As h2 records its own resets: frames the server sent before it saw
                # this one are then ignored (RFC 9113 5.1), not a connection error.
                stream = self.streams.get(stream_id)
                if stream is not None:
                    stream.state_machine.stream_closed_by = StreamClosedBy.SEND_RST_STREAM
        if length:
            self.acknowledge_received_data(length, stream_id)
        return [], [_MalformedResponseReceived(stream_id, str(exc))]

    def _receive_goaway_frame(self, frame: Any) -> tuple[list[Any], list[h2.events.Event]]:
        state = self.state_machine.state
        pending = bytes(self._data_to_send)
        frames, events = super()._receive_goaway_frame(frame)
        if not self.sent_goaway:
            self.state_machine.state = state
            self._data_to_send[:0] = pending
        return frames, events

    def close_connection(
        self,
        error_code: h2.errors.ErrorCodes | int = 0,
        additional_data: bytes | None = None,
        last_stream_id: int | None = None,
    ) -> None:
        self.sent_goaway = True
        super().close_connection(error_code, additional_data, last_stream_id)


class _WebSocketScanner:
    """Finds where WebSocket frames start in the bytes a client streams (RFC 6455 5.2).

    Only the headers are read, to know whether the last complete frame of a chunk is
    a Close: that chunk then ends the HTTP/2 stream. Frames may be split anywhere
    across chunks; the partial header and the payload still to skip are kept.
    """

    __slots__ = ("_header", "_skip", "last_opcode")

    def __init__(self) -> None:
        self._header = bytearray()
        self._skip = 0
        self.last_opcode: int | None = None

    def feed(self, data: bytes | memoryview) -> bool:
        """Scan ``data``; True if it ends exactly after a complete Close frame."""
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            header = self._header
            if not header:
                # A whole header in this chunk (the common case): read it at once.
                taken = self._take(data, pos, end)
                if taken:
                    pos += taken
                    continue
            # A header cut by the chunk's end: gathered byte by byte across chunks.
            header.append(data[pos])
            pos += 1
            if self._take(header, 0, len(header)):
                header.clear()
        return not self._skip and not self._header and self.last_opcode == _WS_OPCODE_CLOSE

    def _take(self, buf: bytes | bytearray | memoryview, at: int, end: int) -> int:
        """Read the frame header at ``buf[at:end]`` into ``last_opcode`` and the payload
        to skip: its length, or 0 (nothing read) when it is not whole there."""
        if end - at < 2:
            return 0
        size = buf[at + 1] & 0x7F
        need = 2 + (2 if size == 126 else 8 if size == 127 else 0)
        need += 4 if buf[at + 1] & 0x80 else 0
        if end - at < need:
            return 0
        if size == 126:
            size = int.from_bytes(buf[at + 2 : at + 4], "big")
        elif size == 127:
            size = int.from_bytes(buf[at + 2 : at + 10], "big")
        self.last_opcode = buf[at] & 0x0F
        self._skip = size
        return need


def _check_outbound(headers: list[tuple[bytes, bytes]], *, trailer: bool) -> None:
    """h2's own checks of a header block, run before h2 sends it.

    h2 runs them lazily while it HPACK-encodes the block: a block it refused half-way
    (an ordinary CONNECT with :path, say) had already changed the encoder's dynamic
    table, so the next request's indexes meant other fields to the server, which ended
    the whole connection (COMPRESSION_ERROR), every stream with it.

    Raises:
        HTTPError: ``("invalid_request", why)``, with nothing sent or changed.
    """
    flags = h2.utilities.HeaderValidationFlags(
        is_client=True, is_trailer=trailer, is_response_header=False, is_push_promise=False
    )
    try:
        for _ in h2.utilities.validate_outbound_headers(
            h2.utilities.normalize_outbound_headers(headers, flags, False), flags
        ):
            pass
    except h2.exceptions.ProtocolError as exc:
        raise HTTPError(("invalid_request", str(exc))) from exc


@dataclass(slots=True, eq=False)
class _Stream:
    """One request's stream: what was sent, what is queued, what was received."""

    ref: Ref
    stream_id: int
    upgrade: bool
    streaming: bool  # the caller may still stream body chunks
    # The caller's chunks as they came (views of them), small ones behind a backlog
    # gathered into a bytearray (see Http2Session._enqueue).
    queue: deque[memoryview | bytearray] = field(default_factory=deque)
    queued: int = 0
    end_pending: bool = False  # END_STREAM goes out once the queue is empty
    local_ended: bool = False  # END_STREAM sent (or the stream was reset)
    remote_ended: bool = False  # Done or Error handed out
    # A WebSocket's stream once its 2xx came without content-length: its DATA frames
    # without flags are read here, not by h2 (see Http2Session._fast_data).
    fast: bool = False
    scanner: _WebSocketScanner | None = None
    # Our Close went out, and the stream's end waits for the peer's (see _held_end).
    end_held: bool = False
    # The caller ended it (EOF after its Close) with the Close still queued behind the
    # windows: reset (NO_ERROR) once the queue is out (see Http2Session._held_end).
    reset_when_sent: bool = False
    trailers: list[tuple[bytes, bytes]] | None = None  # sent with END_STREAM, after the queue
    body_left: int | None = None  # a streamed body's bytes still owed its content-length
    # An extended CONNECT whose final answer was not 2xx: no WebSocket will use the
    # stream, so ours ends with the server's (see Http2Session._end).
    refused: bool = False


def _encode_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    try:
        return [(name.encode("ascii"), value.encode("latin-1")) for name, value in headers]
    except (UnicodeEncodeError, AttributeError) as exc:
        raise HTTPError(("invalid_request", f"header not encodable: {exc}")) from exc


def _decode_headers(headers: Any) -> tuple[int | None, list[tuple[str, str]]]:
    """Split ``:status`` from the regular fields; names lower-case, values str."""
    status: int | None = None
    out: list[tuple[str, str]] = []
    for name, value in headers:
        key = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if key == ":status":
            try:
                status = int(text)
            except ValueError:
                status = None
        elif not key.startswith(":"):
            out.append((key.lower(), text))
    return status, out


def _error_code_name(code: Any) -> str | int:
    try:
        return h2.errors.ErrorCodes(code).name.lower()
    except ValueError:
        return int(code)


class Http2Session:
    """One HTTP/2 connection's protocol state (client side)."""

    protocol: ProtocolName = "http2"
    # HTTP/1.1's upgraded request (bytes written as they are); never on HTTP/2.
    direct_ref: Ref | None = None

    def __init__(
        self,
        *,
        scheme: str,
        host: str,
        port: int,
        max_send_queue: int = DEFAULT_MAX_SEND_QUEUE,
    ) -> None:
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self._h2 = _ClientConnection(config=config)
        self._h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                SettingCodes.ENABLE_PUSH: 0,
                SettingCodes.INITIAL_WINDOW_SIZE: DEFAULT_RECEIVE_WINDOW,
                # Large DATA frames from the peer: fewer frames (and h2 events) per MB.
                SettingCodes.MAX_FRAME_SIZE: DEFAULT_MAX_FRAME_SIZE,
                SettingCodes.MAX_CONCURRENT_STREAMS: 100,
                SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST_SIZE,
            },
        )
        # Accepted at once: the peer may use the larger sizes as soon as it has our SETTINGS.
        self._h2.max_inbound_frame_size = DEFAULT_MAX_FRAME_SIZE
        self._h2.decoder.max_header_list_size = MAX_HEADER_LIST_SIZE
        self._scheme = scheme
        default_port = 443 if scheme == "https" else 80
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        self._authority = shown if port == default_port else f"{shown}:{port}"
        self._streams: dict[int, _Stream] = {}
        self._refs: dict[Ref, _Stream] = {}
        self._pings: dict[bytes, deque[Ref | None]] = {}  # None: forget_ping
        self._stopped: dict[Ref, None] = {}  # ordered set, see _STOPPED_MEMORY
        # WebSockets the caller ended with EOF after its Close (see _held_end): an EOF
        # again is tolerated, a body refused as for any ended stream.
        self._ended: dict[Ref, None] = {}
        # Those of them whose Close still waits for the windows, by id: no longer the
        # caller's (not in _streams), their queue still goes out.
        self._draining: dict[int, _Stream] = {}
        self._queued = 0
        # The stream that last sent queued bytes while others waited (see _pump_all).
        self._last_served = 0
        # The streams that have had bytes (or an END_STREAM) wait for a window, by id:
        # what _pump_all goes through, rather than every stream of the connection.
        self._backlog: dict[int, _Stream] = {}
        self._max_send_queue = max_send_queue
        self._inbuf = bytearray()
        # The bytes of DATA frames read past h2, per stream (0: the connection), not
        # yet handed back to the peer with WINDOW_UPDATEs of our own (_window_updates).
        self._unacked: dict[int, int] = {}
        # Frames of our own (those WINDOW_UPDATEs, a WebSocket's DATA), behind the
        # bytes h2 had queued before them (_own_frames): data_to_send's first part.
        self._own_out = bytearray()
        # The last frame h2 was given opened a header block that a CONTINUATION
        # must end (RFC 9113 6.10): no frame may go past h2 until it does.
        self._in_header_block = False
        self._header_block_bytes = 0  # of the header block under way
        self.settings_received = False
        self._goaway = False  # the server sent GOAWAY: no new requests
        # A GOAWAY's error (its code's name and debug data), to raise once its read ends.
        self._goaway_error: tuple[str | int, bytes] | None = None
        self._closed = False  # we sent GOAWAY (close) or the connection failed
        self._read_closed = False

    # -- state ---------------------------------------------------------------------
    def initiate(self) -> None:
        """Queue the client preface, our SETTINGS and a connection WINDOW_UPDATE."""
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(DEFAULT_RECEIVE_WINDOW - _INITIAL_CONNECTION_WINDOW)

    def data_to_send(self) -> bytes:
        own = self._own_out
        if not own:
            return self._h2.data_to_send()
        # Our frames went behind all h2 had queued then (see _own_frames); h2's
        # bytes since come after them.
        out = bytes(own) + self._h2.data_to_send()
        own.clear()
        return out

    def _own_frames(self) -> bytearray:
        """The buffer our own frames go to, h2's queued bytes moved into it first so
        that the peer gets every frame in the order it was made."""
        out = self._own_out
        out += self._h2.data_to_send()
        return out

    @property
    def extended_connect_enabled(self) -> bool:
        """RFC 8441 3: the server's SETTINGS_ENABLE_CONNECT_PROTOCOL is 1."""
        return bool(self._h2.remote_settings.enable_connect_protocol == 1)

    def has_request(self, ref: Ref) -> bool:
        """``ref`` names a request whose stream is still open on our side."""
        return ref in self._refs

    def open_request_count(self) -> int:
        # Every stream that holds one of the server's MAX_CONCURRENT_STREAMS (RFC 9113
        # 5.1.2: open or half-closed either way), as Mint counts them: one the server
        # has ended (Done) while the caller's body or Close is still to go, and a
        # WebSocket the caller ended while its Close waits behind the windows, until
        # they are out (or cancelled). Left out, a new request's
        # too_many_concurrent_requests came with a count of none open.
        return len(self._streams) + len(self._draining)

    @property
    def closing(self) -> bool:
        """GOAWAY sent (a connection error, or ``close``): once it is written, the
        facade closes the socket, as Mint does."""
        return self._closed

    def is_open(self, kind: str) -> bool:
        readable = not self._read_closed and not self._closed
        if kind == "read":
            return readable
        writable = readable and not self._goaway
        return writable

    def pending_bytes(self, ref: Ref | None = None) -> int:
        """Bytes queued for the peer's windows: on the connection, or for ``ref``."""
        if ref is None:
            return self._queued
        stream = self._refs.get(ref)
        if stream is None:
            stream = self._draining_stream(ref)
        return stream.queued if stream is not None else 0

    def _draining_stream(self, ref: Ref) -> _Stream | None:
        """``ref``'s stream if the caller ended it and its Close is still queued (also
        once ``_ended`` no longer remembers it: a draining stream stays reachable)."""
        for stream in self._draining.values():
            if stream.ref is ref:
                return stream
        return None

    def send_window(self, ref: Ref | None = None) -> int:
        """Bytes the peer lets us send now: connection window, or ``ref``'s stream's.

        A stream's window is also bounded by the connection's (``h2``'s view), and is
        0 for a stream that is finished or unknown.
        """
        if ref is None:
            return int(self._h2.outbound_flow_control_window)
        stream = self._refs.get(ref)
        if stream is None or stream.local_ended:
            return 0
        try:
            return int(self._h2.local_flow_control_window(stream.stream_id))
        except h2.exceptions.NoSuchStreamError:
            return 0

    # -- requests ------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: IOData | _Marker | None,
        *,
        upgrade: str | None = None,
        scheme: str | None = None,
    ) -> Ref:
        """Open a stream with a request; ``upgrade`` names an extended CONNECT protocol.

        ``scheme`` is the ``:scheme`` of an extended CONNECT, where the caller's URI says
        it (``wss`` is ``https``, RFC 8441 4, as Mint's ``upgrade`` sends it), which may
        differ from the connection's own behind a proxy that ends TLS.

        Raises:
            HTTPError: ``"closed_for_writing"`` after GOAWAY, ``"closed"`` after close
                (Mint's reasons),
                ``"too_many_concurrent_requests"`` at the server's
                MAX_CONCURRENT_STREAMS, ``("invalid_request", ...)``.
        """
        headers, body, length = check_request(method, path, headers, body, upgrade=upgrade)
        if upgrade is None and method != "CONNECT" and path[0] != "/" and path != "*":
            # RFC 9113 8.3.1: :path is the target's path and query; the scheme and host
            # of an absolute-form target go in :scheme and :authority, and the server
            # reset a stream whose :path held them.
            raise HTTPError(
                ("invalid_request", f"HTTP/2 takes a path starting with / (or *): {path!r}")
            )
        if not self.is_open("write"):
            raise HTTPError("closed_for_writing" if self.is_open("read") else "closed")
        streaming = body is STREAM
        if (
            not streaming
            and body is not None
            and not isinstance(body, bytes | bytearray | memoryview)
        ):
            raise HTTPError(("invalid_request", "body must be bytes, None or STREAM"))
        limit = self._h2.remote_settings.max_concurrent_streams
        if self._h2.open_outbound_streams >= limit:
            raise HTTPError("too_many_concurrent_requests")
        authority = self._authority
        regular: list[tuple[str, str]] = []
        has_user_agent = False
        for name, value in headers:
            key = name.lower()
            if key == "host":
                if not value:
                    # (HTTP/1.1's for a target with no authority; RFC 9113 8.3.1)
                    raise HTTPError(("invalid_request", "an empty host: :authority names one"))
                authority = value  # RFC 9113 8.3.1: :authority replaces Host
                continue
            if key in _CONNECTION_HEADERS or key == "content-length":
                continue  # (Content-Length goes once, as the number it says: below)
            if key == "te":
                # RFC 9113 8.2.2: "trailers" is all TE may say on HTTP/2 (as spelt: a
                # server may compare it exactly); "trailers, gzip" keeps its trailers.
                codings = (part.split(";")[0].strip().lower() for part in value.split(","))
                if "trailers" in codings:
                    regular.append(("te", "trailers"))
                continue
            has_user_agent = has_user_agent or key == "user-agent"
            regular.append((key, value))
        if not has_user_agent:
            regular.append(("user-agent", USER_AGENT))
        if length is not None:
            # A list ("1, 1", valid on HTTP/1.1, which h11 sends as "1") or the field
            # twice went out as given: hypercorn ended the connection (GOAWAY), Node
            # reset the stream. RFC 9110 8.6: 1*DIGIT.
            regular.append(("content-length", str(length)))
        if upgrade is not None:
            # RFC 8441 4: extended CONNECT carries :protocol, :scheme and :path.
            pseudo = [
                (":method", "CONNECT"),
                (":protocol", upgrade),
                (":scheme", self._scheme if scheme is None else scheme),
                (":path", path),
                (":authority", authority),
            ]
        elif method == "CONNECT":
            # RFC 9113 8.5: a tunnel to the authority-form target, which is all of it
            # (no :scheme, no :path: h2 refused the request that carried them).
            pseudo = [(":method", "CONNECT"), (":authority", path)]
        else:
            pseudo = [
                (":method", method),  # as given: RFC 9110 9.1, case-sensitive
                (":scheme", self._scheme),
                (":path", path),
                (":authority", authority),
            ]
        encoded = _encode_headers(pseudo + regular)
        most = self._h2.remote_settings.max_header_list_size
        if most is not None:
            # RFC 9113 6.5.2: names and values plus 32 octets a field, as Mint counts
            # it; the server would reset the stream (or end the connection) instead.
            size = sum(len(name) + len(value) + 32 for name, value in encoded)
            if size > most:
                raise HTTPError(("max_header_list_size_exceeded", size, most))
        # (bytes: a memoryview's len counts its items, not its bytes)
        payload = b"" if body is None or streaming else bytes(cast("bytes", body))
        has_body = bool(payload)
        if has_body:
            sendable = min(
                len(payload),
                self._h2.remote_settings.initial_window_size,
                self._h2.outbound_flow_control_window,
            )
            if self._queued + len(payload) - sendable > self._max_send_queue:
                raise HTTPError("send_queue_full")
        end_now = not streaming and not has_body
        _check_outbound(encoded, trailer=False)
        try:
            stream_id = self._h2.get_next_available_stream_id()
            self._h2.send_headers(stream_id, encoded, end_stream=end_now)
        except h2.exceptions.TooManyStreamsError as exc:
            raise HTTPError("too_many_concurrent_requests") from exc
        except h2.exceptions.ProtocolError as exc:
            raise HTTPError(("invalid_request", str(exc))) from exc
        stream = _Stream(
            ref=Ref(),
            stream_id=stream_id,
            upgrade=upgrade is not None,
            streaming=streaming,
            local_ended=end_now,
            scanner=_WebSocketScanner() if upgrade == "websocket" else None,
        )
        if streaming:
            stream.body_left = length
        self._streams[stream_id] = stream
        self._refs[stream.ref] = stream
        if has_body:
            self._enqueue(stream, payload, end=True)
        return stream.ref

    def stream_request_body(self, ref: Ref, chunk: Chunk) -> None:
        """Send a body chunk (or ``EOF``) on ``ref``'s stream, queuing what does not fit.

        On a WebSocket stream, a chunk that ends with a Close frame ends the stream.

        Bytes for a stream the peer stopped with RST_STREAM(NO_ERROR) after its
        complete answer (reported as ``Done``) are dropped, as RFC 9113 8.1 asks.

        Raises:
            HTTPError: ``"unknown_request_to_stream"``, ``"request_body_not_streaming"``,
                ``"send_queue_full"`` (nothing of the chunk was queued).
        """
        chunk = iodata(chunk)
        stream = self._refs.get(ref)
        if stream is None:
            if ref in self._stopped:
                return  # RFC 9113 8.1: the peer asked us to stop sending; not an error
            if ref in self._ended or self._draining_stream(ref) is not None:
                if body_end(chunk) is not None:
                    return
                raise HTTPError("request_body_not_streaming")
            raise HTTPError("unknown_request_to_stream")
        trailers = body_end(chunk)
        if trailers is not None:
            if not stream.streaming:
                if stream.end_held:
                    # The caller ends the stream itself, without waiting for the peer.
                    self._held_end(stream)
                if stream.upgrade:
                    return  # the Close frame already ended it (or just did)
                raise HTTPError("request_body_not_streaming")
            body_left(stream.body_left, 0, True)
            if trailers:
                # A HEADERS frame with END_STREAM after the queued DATA (RFC 9113 8.1);
                # field names are lower-case there, and pseudo-headers belong to the head.
                encoded = _encode_headers([(name.lower(), value) for name, value in trailers])
                if any(name.startswith(b":") for name, _ in encoded):
                    raise HTTPError(("invalid_request", "pseudo-header in trailing headers"))
                _check_outbound(encoded, trailer=True)
                stream.trailers = encoded
            stream.streaming = False
            self._enqueue(stream, b"", end=True)
            return
        if not stream.streaming:
            raise HTTPError("request_body_not_streaming")
        if not chunk:
            return
        data = bytes(cast("bytes", chunk))  # body_end let only bytes-like through
        left = body_left(stream.body_left, len(data), False)
        self._check_room(stream, len(data))
        stream.body_left = left
        end = stream.scanner.feed(data) if stream.scanner is not None else False
        if end:
            stream.streaming = False
            if not stream.remote_ended:
                # Our Close opens the close handshake: the stream's end waits for the
                # peer's (see _held_end).
                stream.end_held = True
                end = False
        self._enqueue(stream, data, end=end)

    def _held_end(self, stream: _Stream) -> None:
        """The peer ended its side after our Close (or the caller says ``EOF``): ours
        ends too.

        RFC 8441 5.1 maps the WebSocket's TCP close onto END_STREAM, and RFC 6455 7.1.1
        has the server close the TCP connection first, the client once it has sent
        *and received* a Close. A Close that opens the handshake, sent with
        END_STREAM, is a half-close in the middle of it: most servers take it, but
        lighttpd 1.4 (mod_proxy over HTTP/2) answered it with RST_STREAM
        (INTERNAL_ERROR), and the server's Close (its code, its reason) was lost. So
        that Close goes out alone, and the stream ends once the server has ended its
        side (``Done``), or when the caller says ``EOF``. It ends with RST_STREAM
        (NO_ERROR), not an empty END_STREAM DATA frame: the WebSocket is over (or
        the caller no longer waits for the server's Close), and hypercorn 0.18 drops
        the whole connection on a DATA frame for a stream it has finished
        (pgjones/hypercorn#329), as it has once it took our Close. A Close that
        answers one from a server that already ended its side ends the stream at
        once, as before. Our Close still queued (behind the windows) carries the
        END_STREAM in its last frame.
        """
        stream.end_held = False
        if stream.local_ended:
            return
        if not stream.remote_ended:
            # The caller's EOF: the stream is over for the caller now, and nothing more
            # of it is reported (as after cancel). Kept, it stayed counted by
            # open_request_count and in memory for the connection's life: hypercorn
            # never ends its side. A Close still queued goes out first.
            self._streams.pop(stream.stream_id, None)
            self._refs.pop(stream.ref, None)
            _remember(self._ended, stream.ref)
            if stream.queue:
                stream.reset_when_sent = True
                self._draining[stream.stream_id] = stream
                return
        elif stream.queue:
            self._enqueue(stream, b"", end=True)
            return
        self._reset_ended(stream)

    def _reset_ended(self, stream: _Stream) -> None:
        """End our side of a WebSocket that is over with RST_STREAM(NO_ERROR)."""
        stream.local_ended = True
        self._draining.pop(stream.stream_id, None)
        self._backlog.pop(stream.stream_id, None)
        if not self._closed:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._h2.reset_stream(stream.stream_id, h2.errors.ErrorCodes.NO_ERROR)

    def _drop_draining(self, stream_ids: Iterable[int] | None = None) -> None:
        """Let go the queues of streams the caller ended (``None``: all of them): the
        server reset them, or the connection is going."""
        for stream_id in list(self._draining) if stream_ids is None else stream_ids:
            stream = self._draining.pop(stream_id, None)
            if stream is not None:
                self._drop_queue(stream)
                stream.local_ended = True

    def _check_room(self, stream: _Stream, size: int) -> None:
        sendable = 0 if stream.queue else min(size, self.send_window(stream.ref))
        if self._queued + size - sendable > self._max_send_queue:
            raise HTTPError("send_queue_full")

    def _enqueue(self, stream: _Stream, data: bytes, *, end: bool) -> None:
        """Queue ``data`` on ``stream`` and send what the windows let go now.

        Only this stream is pumped, though others may wait too: each of those was
        pumped when the windows last changed (:meth:`_pump_all`, after every read), so
        each is held by its own stream window, which this stream's bytes do not take,
        or by the connection's, which holds these as well. (Pumping them all here made
        every queued write cost a walk over the connection's streams: 790 µs a write
        with 1,000 WebSockets behind shut windows.)

        A small chunk behind a backlog joins the bytearray at its end: each queued
        chunk cost some 300 bytes beside its own (a view and a bytes object), so a
        64 MiB bound on the bytes held 1.3 GB of 16 B messages; the bound is now on
        what the queue holds.
        """
        if data:
            queue = stream.queue
            size = len(data)
            if queue and size < _GATHER and len(last := queue[-1]) < _GATHER:
                if type(last) is bytearray:
                    last += data
                else:
                    queue[-1] = bytearray(last) + data
            else:
                queue.append(memoryview(data))
            stream.queued += size
            self._queued += size
        if end:
            stream.end_pending = True
        self._pump(stream)
        if stream.queue or (stream.end_pending and not stream.local_ended):
            self._backlog[stream.stream_id] = stream

    def _pump(self, stream: _Stream, budget: int | None = None) -> None:
        """Send as much of ``stream``'s queue as the windows allow (at most ``budget``
        bytes: a turn of :meth:`_pump_all`), then END_STREAM."""
        if stream.local_ended:
            return
        h2conn = self._h2
        sid = stream.stream_id
        try:
            if stream.fast and stream.queue:
                sent = self._pump_fast(stream, budget)
                if budget is not None:
                    budget -= sent
            while stream.queue:
                room = min(h2conn.local_flow_control_window(sid), h2conn.max_outbound_frame_size)
                if budget is not None:
                    room = min(room, budget)
                if room <= 0:
                    return
                head = stream.queue[0]
                piece = head[:room]
                if len(piece) == len(head):
                    stream.queue.popleft()
                else:
                    stream.queue[0] = head[room:]
                stream.queued -= len(piece)
                self._queued -= len(piece)
                if budget is not None:
                    budget -= len(piece)
                last = not stream.queue and stream.end_pending and stream.trailers is None
                h2conn.send_data(sid, bytes(piece), end_stream=last)
                if last:
                    stream.local_ended = True
                    self._forget_if_finished(stream)
                    return
            if stream.reset_when_sent:
                self._reset_ended(stream)
                return
            if stream.end_pending:
                if stream.trailers is not None:
                    h2conn.send_headers(sid, stream.trailers, end_stream=True)
                else:
                    h2conn.end_stream(sid)
                stream.local_ended = True
                self._forget_if_finished(stream)
        except h2.exceptions.ProtocolError as exc:
            raise HTTPError(("invalid_request", str(exc))) from exc

    def _pump_fast(self, stream: _Stream, budget: int | None = None) -> int:
        """Write a WebSocket's queued bytes as DATA frames of our own, as far as the
        windows let them go, taking them from h2's windows as h2's ``send_data`` does.

        Such a stream sends nothing but DATA frames of the caller's bytes (16 KiB each
        at most, as most servers ask: a 1 MiB message is 64 of them), and ``h2``'s
        ``send_data`` costs about 40 Python calls a frame. The frame that ends the
        stream is left to h2 (:meth:`_pump`'s loop), so that its state machine sees
        END_STREAM. Returns the bytes sent (at most ``budget``).
        """
        h2conn = self._h2
        h2stream = h2conn.streams.get(stream.stream_id)
        if (
            h2stream is None
            or h2stream.state_machine.state not in _FAST_STATES
            or h2conn.state_machine.state is not ConnectionState.CLIENT_OPEN
        ):
            return 0
        conn_left = h2conn.outbound_flow_control_window
        stream_left = h2stream.outbound_flow_control_window
        frame_max = h2conn.max_outbound_frame_size
        queue = stream.queue
        tail = b"\x00\x00" + stream.stream_id.to_bytes(4, "big")  # DATA, no flags
        out: bytearray | None = None
        sent = 0
        left = budget if budget is not None else conn_left
        while queue:
            room = min(conn_left, stream_left, frame_max, left - sent)
            if room <= 0:
                break
            head = queue[0]
            piece = head[:room]
            if len(piece) == len(head):
                if len(queue) == 1 and stream.end_pending:
                    break  # the last piece carries END_STREAM
                queue.popleft()
            else:
                queue[0] = head[room:]
            if out is None:
                out = self._own_frames()
            n = len(piece)
            out += n.to_bytes(3, "big")
            out += tail
            out += piece
            conn_left -= n
            stream_left -= n
            sent += n
        if sent:
            h2conn.outbound_flow_control_window = conn_left
            h2stream.outbound_flow_control_window = stream_left
            stream.queued -= sent
            self._queued -= sent
        return sent

    def _pump_all(self) -> None:
        """Share the windows among the streams with bytes queued: a frame each in
        turn, the turns going round from the stream after the one served last.

        Each draining its queue in stream order (as before) let a busy stream with a
        low id take every WINDOW_UPDATE's room while the caller kept it fed: a 16 KiB
        message on another WebSocket of the connection waited 3.5 s, until the busy
        one stopped. RFC 9113 5.3 leaves the order to the sender.
        """
        backlog = self._backlog
        if not backlog:
            return
        waiting = [s for s in backlog.values() if s.queue or (s.end_pending and not s.local_ended)]
        backlog.clear()
        try:
            self._take_turns(waiting)
        finally:
            for stream in waiting:
                if stream.queue or (stream.end_pending and not stream.local_ended):
                    backlog[stream.stream_id] = stream

    def _take_turns(self, waiting: list[_Stream]) -> None:
        """:meth:`_pump_all`'s turns among the streams ``waiting``."""
        if len(waiting) <= 1:
            if waiting:
                self._pump(waiting[0])
            return
        waiting.sort(key=lambda s: s.stream_id)
        after = next((i for i, s in enumerate(waiting) if s.stream_id > self._last_served), 0)
        waiting = waiting[after:] + waiting[:after]
        turn = self._h2.max_outbound_frame_size
        while waiting:
            going: list[_Stream] = []
            for stream in waiting:
                before = stream.queued
                self._pump(stream, turn)
                if stream.queued != before:
                    self._last_served = stream.stream_id
                if stream.queue and stream.queued != before:
                    going.append(stream)  # sent a turn and has more: another round
                # (One whose queue emptied has had its END_STREAM sent by _pump.)
            waiting = going

    def _drop_queue(self, stream: _Stream) -> None:
        self._backlog.pop(stream.stream_id, None)
        self._queued -= stream.queued
        stream.queued = 0
        stream.queue.clear()
        stream.end_pending = False

    def _forget(self, stream: _Stream) -> None:
        self._drop_queue(stream)
        self._streams.pop(stream.stream_id, None)
        self._refs.pop(stream.ref, None)

    def _forget_if_finished(self, stream: _Stream) -> None:
        if stream.local_ended and stream.remote_ended:
            self._forget(stream)
            if stream.upgrade:
                # The caller's EOF after the close handshake (or a refusal) is a no-op
                # however the stream ended (END_STREAM, a reset, the caller's own EOF):
                # whether the server ended its side first is the server's choice.
                _remember(self._ended, stream.ref)

    def abandon(self, ref: Ref) -> None:
        """``ref``'s HEADERS could not be written (the socket failed under the write):
        the request was never made, so it is not counted and gets no ``Error`` later."""
        stream = self._refs.get(ref)
        if stream is not None:
            self._forget(stream)

    def cancel(self, ref: Ref) -> None:
        """Reset ``ref``'s stream with CANCEL (RFC 9113 8.7); unknown refs are ignored.

        Its queued bytes are dropped and nothing more is reported for it. That holds
        for a WebSocket the caller already ended (``EOF`` after its Close) whose Close
        still waits for the server's windows: cancelling it is how the caller gives up
        on a server that never opens them, and frees the stream's slot.
        """
        stream = self._refs.get(ref)
        if stream is not None:
            self._forget(stream)
            if stream.upgrade:
                _remember(self._ended, ref)  # (the caller's EOF after it: a no-op)
        else:
            stream = self._draining_stream(ref)
            if stream is None:
                return
            self._drop_draining([stream.stream_id])
        if self._closed:
            return
        # Already closed on both sides (h2 refuses): there is nothing to reset.
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.reset_stream(stream.stream_id, h2.errors.ErrorCodes.CANCEL)

    def ping(self, payload: bytes | None = None) -> Ref:
        """Send a PING (RFC 9113 6.7); its ACK becomes ``Pong(ref)``."""
        if payload is None:
            payload = next(_ping_counter).to_bytes(8, "big")
        if len(payload) != 8:
            raise HTTPError(("invalid_request", "a PING payload is 8 bytes (RFC 9113 6.7)"))
        if self._closed:
            raise HTTPError("closed")
        try:
            self._h2.ping(payload)
        except h2.exceptions.ProtocolError as exc:
            raise HTTPError(("invalid_request", str(exc))) from exc
        ref = Ref()
        self._pings.setdefault(payload, deque()).append(ref)
        return ref

    def forget_ping(self, ref: Ref) -> None:
        """The caller never got ``ref`` (the write of its PING failed): its ACK, which
        may still come (the frame can be in what the socket had not taken), matches
        it in order but is not reported."""
        for refs in self._pings.values():
            for at, queued in enumerate(refs):
                if queued is ref:
                    refs[at] = None
                    return

    def close(self) -> None:
        """Send GOAWAY (NO_ERROR); the session takes nothing more."""
        if self._closed:
            return
        self._closed = True
        # What waits for the windows will never go: pending_bytes says so at once.
        self._drop_draining()
        for stream in self._streams.values():
            self._drop_queue(stream)
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.close_connection()

    # -- responses -----------------------------------------------------------------
    def receive_data(self, data: bytes) -> list[Response]:
        """Turn socket input into responses.

        Frames are handed to ``h2`` one by one, so a protocol error in one frame does
        not lose the responses of the frames before it. A WebSocket's DATA frames are
        the exception: see :meth:`_fast_data`.

        Raises:
            HTTPError: ``("protocol_error", detail)``; ``.responses`` has what came before.
        """
        responses: list[Response] = []
        buf = self._inbuf
        # Frames are cut from the caller's bytes as they are, unless a frame begun by
        # an earlier read waits in the buffer: then from the buffer, with these behind.
        if buf:
            buf += data
            src: bytes | bytearray = buf
        else:
            src = data
        end = len(src)
        pos = 0
        h2conn = self._h2
        try:
            while end - pos >= _FRAME_HEADER:
                size = _FRAME_HEADER + int.from_bytes(src[pos : pos + 3], "big")
                if end - pos < size:
                    if size - _FRAME_HEADER > h2conn.max_inbound_frame_size:
                        self._frame_too_large(src, pos, size - _FRAME_HEADER)
                    break
                kind = src[pos + 3]
                if (
                    kind == _DATA
                    and not src[pos + 4]  # no END_STREAM, no PADDED
                    and self._fast_data(src, pos, size, responses)
                ):
                    pos += size
                    continue
                if (
                    kind == _WINDOW_UPDATE
                    and size == _FRAME_HEADER + 4
                    and self._fast_window_update(src, pos)
                ):
                    pos += size
                    continue
                if kind in (_HEADERS, _PUSH_PROMISE, _CONTINUATION):
                    block = size - _FRAME_HEADER
                    if kind == _CONTINUATION:
                        block += self._header_block_bytes
                    if block > MAX_HEADER_BLOCK:
                        h2conn.close_connection(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)
                        raise h2.exceptions.DenialOfServiceError(
                            f"a header block of more than {MAX_HEADER_BLOCK} bytes"
                        )
                    self._in_header_block = not src[pos + 4] & _END_HEADERS
                    self._header_block_bytes = block if self._in_header_block else 0
                events = h2conn.receive_data(src[pos : pos + size])  # h2 copies it once
                pos += size
                self._handle(events, responses)
        except h2.exceptions.ProtocolError as exc:
            del buf[:]
            pos = end = 0
            # Mint's reasons: the error code of the GOAWAY h2 sent, by name
            # (protocol_error, frame_size_error, flow_control_error, compression_error).
            reason = (_error_code_name(exc.error_code), str(exc))
            self._fail_all(responses, HTTPError(reason))
            self._closed = True
            raise HTTPError(reason, responses=responses) from exc
        except MintError as exc:
            exc.responses = responses
            raise
        finally:
            if src is buf:
                if pos:
                    del buf[:pos]
            elif pos < end:
                buf += memoryview(src)[pos:end]
            if self._unacked:
                self._window_updates()
        self._pump_all()
        if self._goaway_error is not None:
            # Mint's {:server_closed_connection, error_code, debug_data}, once, after
            # the frames of the read (the streams it let finish go on).
            code, debug = self._goaway_error
            self._goaway_error = None
            raise HTTPError(("server_closed_connection", code, debug), responses=responses)
        return responses

    def _frame_too_large(self, src: bytes | bytearray, pos: int, length: int) -> NoReturn:
        """A frame header announces more than our SETTINGS_MAX_FRAME_SIZE: a connection
        error of type FRAME_SIZE_ERROR (RFC 9113 4.2), said now.

        ``h2`` says it only once the whole frame is there: up to 16 MiB buffered first,
        and a peer that never sends them (or one that is no HTTP/2 server: "HTTP/1.1 4"
        reads as a 4.7 MB frame) left the caller waiting for its timeout.
        """
        h2conn = self._h2
        h2conn.close_connection(h2.errors.ErrorCodes.FRAME_SIZE_ERROR)
        detail = f"frame of {length} bytes announced; the most we take is "
        detail += f"{h2conn.max_inbound_frame_size}"
        if bytes(src[pos : pos + 5]) == b"HTTP/":
            detail += " (the server answered in HTTP/1.x: it does not speak HTTP/2 here)"
        raise h2.exceptions.FrameTooLargeError(detail)

    def _fast_data(
        self, src: bytes | bytearray, pos: int, size: int, responses: list[Response]
    ) -> bool:
        """Read a DATA frame (no flags) of an open WebSocket stream past ``h2``;
        ``False`` leaves the frame to ``h2``.

        ``h2`` costs about 60 Python calls a frame, and a WebSocket over HTTP/2 is a
        stream of DATA frames of 16 KiB or less (1 MiB: 64 of them each way). What h2
        would do with such a frame on such a stream is: check the flow-control windows
        and take the bytes from them, then hand the payload out. Here the windows are
        h2's own, less what was read past it and not yet given back; the bytes are given
        back with our own WINDOW_UPDATEs when this read is done, as h2 would give back
        the bytes it read (Received DATA is acknowledged as it is handed out). h2's
        windows never see these bytes, so they stay right for the frames it does read.

        Everything else goes to h2: frames with flags (END_STREAM ends the stream in
        h2's state machine; padding), any stream but a WebSocket's after its 2xx (h2
        checks content-length; a response's DATA before its HEADERS is an error), a
        frame in the middle of a header block, one larger than our
        SETTINGS_MAX_FRAME_SIZE, and any frame once the connection is not open.
        """
        sid = int.from_bytes(src[pos + 5 : pos + 9], "big") & 0x7FFF_FFFF
        streams = self._past_h2(sid, _RECEIVING_STATES)
        h2conn = self._h2
        length = size - _FRAME_HEADER
        # (A stream whose END_STREAM came is HALF_CLOSED_REMOTE or CLOSED in h2.)
        if streams is None or length > h2conn.max_inbound_frame_size:
            return False
        stream, h2stream = streams
        unacked = self._unacked
        if length:
            # RFC 9113 6.9.1: a sender must not exceed either window.
            conn_left = h2conn.inbound_flow_control_window - unacked.get(0, 0)
            stream_left = h2stream.inbound_flow_control_window - unacked.get(sid, 0)
            if length > conn_left or length > stream_left:
                h2conn.close_connection(h2.errors.ErrorCodes.FLOW_CONTROL_ERROR)
                raise h2.exceptions.FlowControlError(
                    f"DATA of {length} bytes on stream {sid} exceeds the flow-control "
                    f"window ({min(conn_left, stream_left)} bytes)"
                )
            unacked[0] = unacked.get(0, 0) + length
            unacked[sid] = unacked.get(sid, 0) + length
            start = pos + _FRAME_HEADER
            payload = src[start : start + length]
            responses.append(
                Data(stream.ref, payload if type(payload) is bytes else bytes(payload))
            )
        return True

    def _fast_window_update(self, src: bytes | bytearray, pos: int) -> bool:
        """Count a WINDOW_UPDATE for the connection or a WebSocket's stream into h2's
        windows; ``False`` leaves the frame to ``h2``.

        A peer gives a sender's window back about as often as it reads a DATA frame, so
        these are as many as the DATA frames that go out. Only an increment h2 would
        take as it is goes this way (not 0, not past 2**31-1: h2 answers those).
        """
        h2conn = self._h2
        increment = int.from_bytes(src[pos + 9 : pos + 13], "big") & 0x7FFF_FFFF
        sid = int.from_bytes(src[pos + 5 : pos + 9], "big") & 0x7FFF_FFFF
        if not increment or not self._past_h2_open():
            return False
        if not sid:
            window = h2conn.outbound_flow_control_window + increment
            if window > _MAX_WINDOW:
                return False
            h2conn.outbound_flow_control_window = window
            return True
        streams = self._past_h2(sid, _FAST_STATES)
        if streams is None:
            return False
        h2stream = streams[1]
        window = h2stream.outbound_flow_control_window + increment
        if window > _MAX_WINDOW:
            return False
        h2stream.outbound_flow_control_window = window
        return True

    def _past_h2_open(self) -> bool:
        """Whether the connection lets a frame go past h2 now: open (not after our
        GOAWAY or a failure, when h2 is CLOSED), and no header block under way (RFC 9113
        6.10: only its CONTINUATION may come, and h2 says so of anything else)."""
        return (
            not self._in_header_block
            and self._h2.state_machine.state is ConnectionState.CLIENT_OPEN
        )

    def _past_h2(
        self, sid: int, states: tuple[StreamState, ...]
    ) -> tuple[_Stream, H2Stream] | None:
        """Stream ``sid`` (ours and h2's) when its frames may go past h2: the
        connection lets them (:meth:`_past_h2_open`), the stream is a WebSocket's after
        its 2xx (``fast``), and h2's stream is in one of ``states``."""
        if not self._past_h2_open():
            return None
        stream = self._streams.get(sid)
        if stream is None or not stream.fast:
            return None
        h2stream = self._h2.streams.get(sid)
        if h2stream is None or h2stream.state_machine.state not in states:
            return None
        return stream, h2stream

    def _window_updates(self) -> None:
        """Give the bytes :meth:`_fast_data` read back to the peer (RFC 9113 6.9)."""
        if not self._closed:
            out = self._own_frames()
            streams = self._h2.streams
            for sid, increment in self._unacked.items():
                if sid and (sid not in streams or streams[sid].closed):
                    continue  # (reset in the same read: nothing but PRIORITY, RFC 9113 5.1)
                out += bytes((0, 0, 4, _WINDOW_UPDATE, 0))  # length 4, no flags
                out += sid.to_bytes(4, "big")
                out += increment.to_bytes(4, "big")
        self._unacked.clear()

    def _whole_by_length(self, stream_id: int) -> bool:
        """Whether stream ``stream_id``'s final head came with a ``content-length`` its
        body has reached (h2 keeps a stream it reset a while: its counts are there)."""
        h2stream = self._h2.streams.get(stream_id)
        if h2stream is None or not getattr(h2stream, "_final_seen", False):
            return False
        expected = h2stream._expected_content_length
        return expected is not None and expected == h2stream._actual_content_length

    def _handle(self, events: list[h2.events.Event], responses: list[Response]) -> None:
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                stream = self._streams.get(event.stream_id or 0)
                if event.flow_controlled_length and event.stream_id:
                    self._h2.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
                if stream is not None and event.data:
                    responses.append(Data(stream.ref, bytes(event.data)))
                if event.stream_ended is not None:
                    self._end(event.stream_ended, responses)
            elif isinstance(
                event, h2.events.ResponseReceived | h2.events.InformationalResponseReceived
            ):
                stream = self._streams.get(event.stream_id or 0)
                if stream is not None:
                    status, headers = _decode_headers(event.headers or [])
                    if status is None:
                        raise HTTPError(("protocol_error", "response without :status"))
                    responses.append(Status(stream.ref, status))
                    responses.append(Headers(stream.ref, headers))
                    final = isinstance(event, h2.events.ResponseReceived)
                    stream.fast = (
                        stream.upgrade
                        and 200 <= status < 300
                        and isinstance(event, h2.events.ResponseReceived)
                        and event.stream_ended is None
                        and not any(name == "content-length" for name, _ in headers)
                    )
                    stream.refused = stream.upgrade and final and not 200 <= status < 300
                if isinstance(event, h2.events.ResponseReceived) and event.stream_ended is not None:
                    self._end(event.stream_ended, responses)
            elif isinstance(event, h2.events.TrailersReceived):
                stream = self._streams.get(event.stream_id or 0)
                if stream is not None:
                    responses.append(Headers(stream.ref, _decode_headers(event.headers or [])[1]))
                if event.stream_ended is not None:
                    self._end(event.stream_ended, responses)
            elif isinstance(event, h2.events.StreamEnded):
                self._end(event, responses)
            elif isinstance(event, h2.events.StreamReset):
                stream = self._streams.get(event.stream_id or 0)
                if stream is None and self._draining:
                    self._drop_draining([event.stream_id or 0])
                if stream is not None:
                    self._forget(stream)
                    if stream.remote_ended:
                        if event.error_code == h2.errors.ErrorCodes.NO_ERROR:
                            # RFC 9113 8.1's own case: the whole answer (Done already),
                            # then a stop: what the caller still streams is dropped.
                            _remember(self._stopped, stream.ref)
                    elif event.error_code == h2.errors.ErrorCodes.NO_ERROR and stream.fast:
                        # RFC 9113 8.1: NO_ERROR asks us to stop sending after a complete
                        # answer (Node ends WebSocket streams this way): the end, as Mint.
                        # What the caller still sends on it (a Close reply) is dropped.
                        responses.append(Done(stream.ref))
                        _remember(self._stopped, stream.ref)
                    elif event.error_code == h2.errors.ErrorCodes.NO_ERROR:
                        # Before the answer was complete (no END_STREAM; no 2xx yet on
                        # an upgrade): Mint's Done handed a body cut short out as whole,
                        # or a request with no answer at all as answered. A body its
                        # content-length says is whole is whole, END_STREAM or not.
                        if self._whole_by_length(event.stream_id or 0):
                            responses.append(Done(stream.ref))
                        else:
                            cut = HTTPError(("server_closed_request", "no_error"))
                            responses.append(Error(stream.ref, cut))
                        _remember(self._stopped, stream.ref)
                    elif not event.remote_reset:
                        # h2 reset it for the server's error on it (a WINDOW_UPDATE
                        # past 2^31 - 1): Mint's {:flow_control_error, detail}, say.
                        code = _error_code_name(event.error_code)
                        detail = (
                            "window size too big"
                            if code == "flow_control_error"
                            else "the server broke HTTP/2 on this stream: reset"
                        )
                        responses.append(Error(stream.ref, HTTPError((code, detail))))
                    else:
                        # Mint's reason: {:server_closed_request, error_code}.
                        reason = ("server_closed_request", _error_code_name(event.error_code))
                        responses.append(Error(stream.ref, HTTPError(reason)))
            elif isinstance(event, _MalformedResponseReceived):
                stream = self._streams.get(event.stream_id)
                if stream is None and self._draining:
                    # We reset it: its queue goes (else _pump_all sent on a closed
                    # stream, and every read of the connection failed).
                    self._drop_draining([event.stream_id])
                if stream is not None:
                    self._forget(stream)
                    if not stream.remote_ended:  # (after Done: as a reset, nothing more)
                        reason = ("protocol_error", event.detail)
                        responses.append(Error(stream.ref, HTTPError(reason)))
            elif isinstance(event, h2.events.PingAckReceived):
                refs = self._pings.get(bytes(event.ping_data or b""))
                if refs:
                    ref = refs.popleft()
                    if ref is not None:
                        responses.append(Pong(ref))
                    if not refs:
                        del self._pings[bytes(event.ping_data or b"")]
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                self.settings_received = True
            elif isinstance(event, h2.events.ConnectionTerminated):
                self._on_goaway(event, responses)

    def _end(self, event: h2.events.StreamEnded, responses: list[Response]) -> None:
        stream = self._streams.get(event.stream_id or 0)
        if stream is None or stream.remote_ended:
            return
        stream.remote_ended = True
        responses.append(Done(stream.ref))
        if stream.end_held:
            self._held_end(stream)
        elif stream.refused and not stream.local_ended:
            # A refused upgrade's answer is over: nothing will be sent on the stream.
            # Left open on our side, it stayed counted (open_request_count, and the
            # server's SETTINGS_MAX_CONCURRENT_STREAMS) until the caller cancelled it,
            # which neither Mint nor the docs ask for: after 100 refusals no request
            # could be made. Mint ends it so (RST_STREAM(NO_ERROR), RFC 9113 8.1).
            # (Its queue goes with the stream, just below.)
            self._reset_ended(stream)
        self._forget_if_finished(stream)

    def _on_goaway(self, event: h2.events.ConnectionTerminated, responses: list[Response]) -> None:
        """RFC 9113 6.8: streams above ``last_stream_id`` were not processed."""
        self._goaway = True
        if event.error_code:
            self._goaway_error = (
                _error_code_name(event.error_code),
                bytes(event.additional_data or b""),
            )
        last = event.last_stream_id if event.last_stream_id is not None else 2**31 - 1
        self._drop_draining([i for i in self._draining if i > last])
        for stream in sorted(self._streams.values(), key=lambda s: s.stream_id):
            if stream.stream_id > last:
                self._forget(stream)
                if not stream.remote_ended:
                    # Mint's :unprocessed: safe to retry on another connection.
                    responses.append(Error(stream.ref, HTTPError("unprocessed")))

    def _fail_all(self, responses: list[Response], error: MintError) -> None:
        self._drop_draining()
        for stream in sorted(self._streams.values(), key=lambda s: s.stream_id):
            self._forget(stream)
            if not stream.remote_ended:
                responses.append(Error(stream.ref, error))

    def connection_lost(self, failure: Reason | None = None) -> tuple[list[Response], bool]:
        """The peer closed the connection, or it failed with reason ``failure`` (a reset,
        a TLS alert). Returns the responses and whether that was clean.

        Streams still waiting for their end get ``Error(ref, TransportError(reason))``
        (``"closed"`` for a close): every request ends, however the connection did. The
        close is clean when there was none.
        """
        self._read_closed = True
        responses: list[Response] = []
        self._fail_all(responses, TransportError("closed" if failure is None else failure))
        self._pings.clear()
        return responses, not responses
