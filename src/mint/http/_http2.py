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
  stream end with a WebSocket Close frame, they go out with END_STREAM (RFC 8441 5.1:
  the Close handshake is followed by END_STREAM); :meth:`Http2Session.cancel` resets a
  stream the server does not end (the caller decides when, see
  :func:`mint.websocket.cancel`).
* **GOAWAY that keeps its promises.** RFC 9113 6.8: streams up to the GOAWAY's
  last stream id may still complete; ``h2`` would refuse their frames, so the client
  connection object is told to stay open for reading (:class:`_ClientConnection`).
"""

from __future__ import annotations

import contextlib
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any, cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from h2.settings import SettingCodes

from mint.errors import HTTPError, MintError, TransportError
from mint.http._types import (
    STREAM,
    Data,
    Done,
    Error,
    Headers,
    Pong,
    Ref,
    Response,
    Status,
    body_end,
    check_request,
)

USER_AGENT = "mint-websocket/0.1"

# Our receive windows: large enough that a fast server is never throttled by us.
# RFC 9113 6.9.2: the connection window starts at 65,535 whatever SETTINGS say.
DEFAULT_RECEIVE_WINDOW = 16 * 2**20
_INITIAL_CONNECTION_WINDOW = 65_535
# The largest DATA frame we accept (RFC 9113 6.5.2 allows up to 2**24 - 1).
DEFAULT_MAX_FRAME_SIZE = 2**20

# The most bytes held on a connection waiting for the peer's flow-control windows.
DEFAULT_MAX_SEND_QUEUE = 64 * 2**20

# RFC 9113 8.2.2: connection-specific header fields are not used in HTTP/2.
_CONNECTION_HEADERS = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}
)

# RFC 9113 4.1: every frame starts with a 9-octet header whose first 3 octets are
# the payload length.
_FRAME_HEADER = 9

# How many streams the peer stopped with RST_STREAM(NO_ERROR) are remembered, so
# that bytes the caller still sends on them are dropped instead of failing.
_STOPPED_MEMORY = 1024

# RFC 6455 5.2: opcode of a Close frame.
_WS_OPCODE_CLOSE = 0x8

_ping_counter = itertools.count(1)


class _ClientConnection(h2.connection.H2Connection):
    """``h2``'s connection, kept readable after the peer's GOAWAY.

    ``h2`` moves to CLOSED on GOAWAY and then rejects every frame, although RFC 9113
    6.8 lets the streams at or below the last stream id finish. The state before the
    GOAWAY is restored (new requests are refused by :class:`Http2Session` itself), and
    the frames already prepared for sending (SETTINGS ACKs, WINDOW_UPDATEs) are kept.
    """

    sent_goaway = False

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
            header.append(data[pos])
            pos += 1
            if len(header) < 2:
                continue
            size = header[1] & 0x7F
            need = 2 + (2 if size == 126 else 8 if size == 127 else 0)
            need += 4 if header[1] & 0x80 else 0
            if len(header) < need:
                continue
            if size == 126:
                size = int.from_bytes(header[2:4], "big")
            elif size == 127:
                size = int.from_bytes(header[2:10], "big")
            self.last_opcode = header[0] & 0x0F
            header.clear()
            self._skip = size
        return not self._skip and not self._header and self.last_opcode == _WS_OPCODE_CLOSE


@dataclass(slots=True, eq=False)
class _Stream:
    """One request's stream: what was sent, what is queued, what was received."""

    ref: Ref
    stream_id: int
    upgrade: bool
    streaming: bool  # the caller may still stream body chunks
    queue: deque[memoryview] = field(default_factory=deque)
    queued: int = 0
    end_pending: bool = False  # END_STREAM goes out once the queue is empty
    local_ended: bool = False  # END_STREAM sent (or the stream was reset)
    remote_ended: bool = False  # Done or Error handed out
    scanner: _WebSocketScanner | None = None
    trailers: list[tuple[bytes, bytes]] | None = None  # sent with END_STREAM, after the queue


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

    protocol = "http2"
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
                SettingCodes.MAX_HEADER_LIST_SIZE: self._h2.DEFAULT_MAX_HEADER_LIST_SIZE,
            },
        )
        # Accepted at once: the peer may use the larger size as soon as it has our SETTINGS.
        self._h2.max_inbound_frame_size = DEFAULT_MAX_FRAME_SIZE
        self._scheme = scheme
        default_port = 443 if scheme == "https" else 80
        shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
        self._authority = shown if port == default_port else f"{shown}:{port}"
        self._streams: dict[int, _Stream] = {}
        self._refs: dict[Ref, _Stream] = {}
        self._pings: dict[bytes, deque[Ref]] = {}
        self._stopped: dict[Ref, None] = {}  # ordered set, see _STOPPED_MEMORY
        self._queued = 0
        self._max_send_queue = max_send_queue
        self._inbuf = bytearray()
        self.settings_received = False
        self._goaway = False  # the server sent GOAWAY: no new requests
        self._closed = False  # we sent GOAWAY (close) or the connection failed
        self._read_closed = False

    # -- state ---------------------------------------------------------------------
    def initiate(self) -> None:
        """Queue the client preface, our SETTINGS and a connection WINDOW_UPDATE."""
        self._h2.initiate_connection()
        self._h2.increment_flow_control_window(DEFAULT_RECEIVE_WINDOW - _INITIAL_CONNECTION_WINDOW)

    def data_to_send(self) -> bytes:
        return self._h2.data_to_send()

    @property
    def extended_connect_enabled(self) -> bool:
        """RFC 8441 3: the server's SETTINGS_ENABLE_CONNECT_PROTOCOL is 1."""
        return bool(self._h2.remote_settings.enable_connect_protocol == 1)

    def open_request_count(self) -> int:
        return sum(1 for s in self._streams.values() if not s.remote_ended)

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
        return stream.queued if stream is not None else 0

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
        body: bytes | object | None,
        *,
        upgrade: str | None = None,
    ) -> Ref:
        """Open a stream with a request; ``upgrade`` names an extended CONNECT protocol.

        Raises:
            HTTPError: ``"closed_for_writing"`` after GOAWAY, ``"closed"`` after close
                (Mint's reasons),
                ``"too_many_concurrent_requests"`` at the server's
                MAX_CONCURRENT_STREAMS, ``("invalid_request", ...)``.
        """
        headers = check_request(method, path, headers)
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
                authority = value  # RFC 9113 8.3.1: :authority replaces Host
                continue
            if key in _CONNECTION_HEADERS or (key == "te" and value.lower() != "trailers"):
                continue
            has_user_agent = has_user_agent or key == "user-agent"
            regular.append((key, value))
        if not has_user_agent:
            regular.append(("user-agent", USER_AGENT))
        if upgrade is not None:
            # RFC 8441 4: extended CONNECT carries :protocol, :scheme and :path.
            pseudo = [
                (":method", "CONNECT"),
                (":protocol", upgrade),
                (":scheme", self._scheme),
                (":path", path),
                (":authority", authority),
            ]
        else:
            pseudo = [
                (":method", method.upper()),
                (":scheme", self._scheme),
                (":path", path),
                (":authority", authority),
            ]
        encoded = _encode_headers(pseudo + regular)
        has_body = bool(body) and not streaming
        if has_body:
            assert isinstance(body, bytes | bytearray | memoryview)
            sendable = min(
                len(body),
                self._h2.remote_settings.initial_window_size,
                self._h2.outbound_flow_control_window,
            )
            if self._queued + len(body) - sendable > self._max_send_queue:
                raise HTTPError("send_queue_full")
        end_now = not streaming and not has_body
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
        self._streams[stream_id] = stream
        self._refs[stream.ref] = stream
        if has_body:
            assert isinstance(body, bytes | bytearray | memoryview)
            self._enqueue(stream, bytes(body), end=True)
        return stream.ref

    def stream_request_body(self, ref: Ref, chunk: bytes | object) -> None:
        """Send a body chunk (or ``EOF``) on ``ref``'s stream, queuing what does not fit.

        On a WebSocket stream, a chunk that ends with a Close frame ends the stream.

        Bytes for a stream the peer stopped with RST_STREAM(NO_ERROR) after its
        complete answer (reported as ``Done``) are dropped, as RFC 9113 8.1 asks.

        Raises:
            HTTPError: ``"unknown_request_to_stream"``, ``"request_body_not_streaming"``,
                ``"send_queue_full"`` (nothing of the chunk was queued).
        """
        stream = self._refs.get(ref)
        if stream is None:
            if ref in self._stopped:
                return  # RFC 9113 8.1: the peer asked us to stop sending; not an error
            raise HTTPError("unknown_request_to_stream")
        trailers = body_end(chunk)
        if trailers is not None:
            if not stream.streaming:
                if stream.upgrade:
                    return  # the Close frame already ended it
                raise HTTPError("request_body_not_streaming")
            if trailers:
                # A HEADERS frame with END_STREAM after the queued DATA (RFC 9113 8.1);
                # field names are lower-case there, and pseudo-headers belong to the head.
                encoded = _encode_headers([(name.lower(), value) for name, value in trailers])
                if any(name.startswith(b":") for name, _ in encoded):
                    raise HTTPError(("invalid_request", "pseudo-header in trailing headers"))
                stream.trailers = encoded
            stream.streaming = False
            self._enqueue(stream, b"", end=True)
            return
        if not stream.streaming:
            raise HTTPError("request_body_not_streaming")
        if not chunk:
            return
        data = bytes(cast("bytes", chunk))  # body_end let only bytes-like through
        self._check_room(stream, len(data))
        end = stream.scanner.feed(data) if stream.scanner is not None else False
        if end:
            stream.streaming = False
        self._enqueue(stream, data, end=end)

    def _check_room(self, stream: _Stream, size: int) -> None:
        sendable = 0 if stream.queue else min(size, self.send_window(stream.ref))
        if self._queued + size - sendable > self._max_send_queue:
            raise HTTPError("send_queue_full")

    def _enqueue(self, stream: _Stream, data: bytes, *, end: bool) -> None:
        if data:
            stream.queue.append(memoryview(data))
            stream.queued += len(data)
            self._queued += len(data)
        if end:
            stream.end_pending = True
        self._pump(stream)

    def _pump(self, stream: _Stream) -> None:
        """Send as much of ``stream``'s queue as the windows allow, then END_STREAM."""
        if stream.local_ended:
            return
        h2conn = self._h2
        sid = stream.stream_id
        try:
            while stream.queue:
                room = min(h2conn.local_flow_control_window(sid), h2conn.max_outbound_frame_size)
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
                last = not stream.queue and stream.end_pending and stream.trailers is None
                h2conn.send_data(sid, piece.tobytes(), end_stream=last)
                if last:
                    stream.local_ended = True
                    self._forget_if_finished(stream)
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

    def _pump_all(self) -> None:
        for stream in list(self._streams.values()):
            if stream.queue or (stream.end_pending and not stream.local_ended):
                self._pump(stream)

    def _drop_queue(self, stream: _Stream) -> None:
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

    def cancel(self, ref: Ref) -> None:
        """Reset ``ref``'s stream with CANCEL (RFC 9113 8.7); unknown refs are ignored.

        Its queued bytes are dropped and nothing more is reported for it.
        """
        stream = self._refs.get(ref)
        if stream is None:
            return
        self._forget(stream)
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

    def close(self) -> None:
        """Send GOAWAY (NO_ERROR); the session takes nothing more."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self._h2.close_connection()

    # -- responses -----------------------------------------------------------------
    def receive_data(self, data: bytes) -> list[Response]:
        """Turn socket input into responses.

        Frames are handed to ``h2`` one by one, so a protocol error in one frame does
        not lose the responses of the frames before it.

        Raises:
            HTTPError: ``("protocol_error", detail)``; ``.responses`` has what came before.
        """
        responses: list[Response] = []
        buf = self._inbuf
        buf += data
        pos = 0
        try:
            while len(buf) - pos >= _FRAME_HEADER:
                size = _FRAME_HEADER + int.from_bytes(buf[pos : pos + 3], "big")
                if len(buf) - pos < size:
                    break
                events = self._h2.receive_data(buf[pos : pos + size])  # h2 copies it once
                pos += size
                self._handle(events, responses)
        except h2.exceptions.ProtocolError as exc:
            del buf[:]
            self._fail_all(responses, HTTPError(("protocol_error", str(exc))))
            self._closed = True
            raise HTTPError(("protocol_error", str(exc)), responses=responses) from exc
        except MintError as exc:
            exc.responses = responses
            raise
        finally:
            if pos:
                del buf[:pos]
        self._pump_all()
        return responses

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
                if stream is not None:
                    self._forget(stream)
                    if stream.remote_ended:
                        pass
                    elif event.error_code == h2.errors.ErrorCodes.NO_ERROR:
                        # RFC 9113 8.1: NO_ERROR asks us to stop sending after a complete
                        # answer (Node ends WebSocket streams this way): the end, as Mint.
                        # What the caller still sends on it (a Close reply) is dropped.
                        responses.append(Done(stream.ref))
                        self._stopped[stream.ref] = None
                        if len(self._stopped) > _STOPPED_MEMORY:
                            del self._stopped[next(iter(self._stopped))]
                    else:
                        reason = ("stream_reset", _error_code_name(event.error_code))
                        responses.append(Error(stream.ref, HTTPError(reason)))
            elif isinstance(event, h2.events.PingAckReceived):
                refs = self._pings.get(bytes(event.ping_data or b""))
                if refs:
                    responses.append(Pong(refs.popleft()))
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
        self._forget_if_finished(stream)

    def _on_goaway(self, event: h2.events.ConnectionTerminated, responses: list[Response]) -> None:
        """RFC 9113 6.8: streams above ``last_stream_id`` were not processed."""
        self._goaway = True
        last = event.last_stream_id if event.last_stream_id is not None else 2**31 - 1
        for stream in sorted(self._streams.values(), key=lambda s: s.stream_id):
            if stream.stream_id > last:
                self._forget(stream)
                if not stream.remote_ended:
                    responses.append(Error(stream.ref, HTTPError("goaway")))

    def _fail_all(self, responses: list[Response], error: MintError) -> None:
        for stream in sorted(self._streams.values(), key=lambda s: s.stream_id):
            self._forget(stream)
            if not stream.remote_ended:
                responses.append(Error(stream.ref, error))

    def connection_lost(self) -> tuple[list[Response], bool]:
        """The peer closed the connection. Returns the responses and whether that was clean.

        Streams still waiting for their end get ``Error(ref, TransportError("closed"))``;
        the close is clean when there was none.
        """
        self._read_closed = True
        responses: list[Response] = []
        self._fail_all(responses, TransportError("closed"))
        self._pings.clear()
        return responses, not responses
