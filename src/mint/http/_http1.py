"""HTTP/1.1 session state over ``h11``: bytes in, responses and bytes to write out.

Sans-IO: nothing here touches a socket. The facade (``mint.http``) feeds what the
socket produced into :meth:`Http1Session.receive_data` and writes what
:meth:`Http1Session.data_to_send` returns.

``h11`` runs one request/response cycle at a time; Mint pipelines. To pipeline on
top of ``h11``, a request sent while another is in flight is serialised by a
throw-away ``h11.Connection`` (so ``h11`` still validates it) and written at once;
its events are replayed on the main connection, output discarded, when its turn
comes to read the response. After a ``101 Switching Protocols`` answer to an
upgrade request the session stops speaking HTTP: every byte read is ``Data`` of
the upgraded request and every byte streamed is written as it is.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, cast

import h11

from mint.errors import HTTPError, MintError, Reason, TransportError
from mint.http._types import (
    STREAM,
    Chunk,
    Data,
    Done,
    Error,
    Headers,
    IOData,
    ProtocolName,
    Ref,
    Response,
    Status,
    _Marker,
    body_end,
    body_left,
    check_request,
    iodata,
    new_data,
)

USER_AGENT = "mint-websocket/0.1"
# The largest response head (status line and headers) read before it is refused.
_MAX_HEAD = 1 << 20


@dataclass(slots=True)
class _Request:
    ref: Ref
    method: bytes
    events: list[Any] = field(default_factory=list)  # replayed on the main connection
    streaming: bool = False  # body still being streamed by the caller
    upgrade: bool = False
    sent_on_main: bool = False
    close_after: bool = False  # the answer's framing was ambiguous: close after it
    body_left: int | None = None  # a streamed body's bytes still owed its content-length
    # The throw-away h11 connection that serialises a pipelined request's body.
    scratch: Any = None


_TOO_LARGE = f"a response head (or trailer block) larger than {_MAX_HEAD} bytes"


def _too_large(event: object) -> bool:
    """Whether a head (or trailers) h11 parsed whole is over the bound.

    h11 bounds a head only while it is incomplete (``max_incomplete_event_size``):
    the same head was refused when it came in several reads and taken when one read
    held it all. Its size is counted here from what it holds (each header line with
    its ": " and CRLF), so the verdict no longer depends on how the socket split it.
    """
    if type(event) is h11.Response or type(event) is h11.InformationalResponse:
        size = len(event.reason) + 15  # "HTTP/1.1 200 " and CRLF
    elif type(event) is h11.EndOfMessage:
        size = 0
    else:
        return False
    return size + sum(len(name) + len(value) + 4 for name, value in event.headers) > _MAX_HEAD


def _encode_headers(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    try:
        return [(name.encode("ascii"), value.encode("latin-1")) for name, value in headers]
    except (UnicodeEncodeError, AttributeError) as exc:
        raise HTTPError(("invalid_request", f"header not encodable: {exc}")) from exc


def _decode_headers(headers: Any) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


class Http1Session:
    """One HTTP/1.1 connection's protocol state (client side)."""

    protocol: ProtocolName = "http1"
    # Slots: the C fast paths read direct_ref on every call (mint._slots.h,
    # direct_ref_of), and a slot is one load where an instance attribute is a dict
    # lookup after a type lookup.
    __slots__ = (
        "_answered",
        "_authority",
        "_broken",
        "_h11",
        "_out",
        "_read_closed",
        "_requests",
        "_stopped",
        "_upgraded",
        "direct_ref",
    )

    def __init__(self, *, scheme: str, host: str, port: int) -> None:
        # h11 bounds a header block only while it is incomplete (16 KiB by default),
        # so the same response would pass in one read and fail over several; a bound
        # well above what servers send (nginx 32 KiB, Node 16 KiB) still caps memory.
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)
        default_port = 443 if scheme == "https" else 80
        self._authority = host if port == default_port else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            self._authority = f"[{host}]" if port == default_port else f"[{host}]:{port}"
        self._out = bytearray()
        self._requests: deque[_Request] = deque()
        self._upgraded: Ref | None = None
        # The upgraded request once the server switched protocols: the facade writes
        # its chunks straight to the socket and skips the flush after a read.
        self.direct_ref: Ref | None = None
        self._broken = False  # a protocol error or EOF: no more requests
        self._stopped = False  # no more requests, the answers still read (stop_requests)
        # A request answered while the caller still streams its body (an early 413, a
        # 417 to Expect: 100-continue): its body may still be finished, and the next
        # request waits for that (RFC 9112 9.3: h11 starts the next cycle only then).
        self._answered: _Request | None = None
        self._read_closed = False

    # -- state ---------------------------------------------------------------------
    def data_to_send(self) -> bytes:
        if not self._out:
            return b""
        out = bytes(self._out)
        self._out.clear()
        return out

    @property
    def upgraded_ref(self) -> Ref | None:
        return self._upgraded

    @property
    def closing(self) -> bool:
        """Done with for good (a ``Connection: close`` answer read, the server broke
        HTTP, or it sent what nobody asked for): the facade closes the socket, as
        Mint does (RFC 9112 9.6: the client closes after such a response)."""
        return self._broken and self._upgraded is None

    def has_request(self, ref: Ref) -> bool:
        """``ref`` names a request not yet answered in full (or the upgraded one)."""
        return ref is self._upgraded or any(r.ref is ref for r in self._requests)

    def open_request_count(self) -> int:
        return len(self._requests)

    def is_open(self, kind: str) -> bool:
        if self._upgraded is not None:
            return not (self._read_closed and kind != "write")
        if self._broken:
            return False
        if kind == "read":
            return not self._read_closed
        writable = not self._stopped and self._h11.our_state not in (
            h11.MUST_CLOSE,
            h11.CLOSED,
            h11.ERROR,
        )
        if kind == "write":
            return writable
        return writable and not self._read_closed

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
        """Queue a request; ``upgrade`` names the protocol of an Upgrade request.

        ``scheme`` is HTTP/2's (an extended CONNECT's ``:scheme``): an HTTP/1.1 request
        line in origin-form carries none.
        """
        headers, body, length = check_request(method, path, headers, body, upgrade=upgrade)
        if self._upgraded is not None or self._broken or not self.is_open("write"):
            raise HTTPError("closed")
        if self._answered is not None or any(r.streaming for r in self._requests):
            raise HTTPError("request_body_is_streaming")
        if any(r.upgrade for r in self._requests):
            # RFC 6455 4.1: nothing more until the upgrade (or CONNECT) is answered;
            # after a 101 (a 2xx) these bytes would be read as the new protocol's.
            raise HTTPError(("invalid_request", "an upgrade request is waiting for its answer"))
        names = {name.lower() for name, _ in headers}
        full = list(headers)
        if "host" not in names:
            full.insert(0, ("host", self._authority))
        if "user-agent" not in names:
            full.append(("user-agent", USER_AGENT))
        streaming = body is STREAM
        if streaming:
            if "content-length" not in names and "transfer-encoding" not in names:
                full.append(("transfer-encoding", "chunked"))
        elif body is not None:
            if not isinstance(body, bytes | bytearray | memoryview):
                raise HTTPError(("invalid_request", "body must be bytes, None or STREAM"))
            if "content-length" not in names and "transfer-encoding" not in names:
                full.append(("content-length", str(memoryview(body).nbytes)))
        elif method in ("POST", "PUT", "PATCH") and "content-length" not in names:
            full.append(("content-length", "0"))
        try:
            head = h11.Request(
                # As given: RFC 9110 9.1 makes the method case-sensitive (and Mint
                # sends it as given); "get" is not GET.
                method=method.encode("ascii"),
                target=path.encode("ascii"),
                headers=_encode_headers(full),
            )
        except (h11.LocalProtocolError, UnicodeEncodeError) as exc:
            raise HTTPError(("invalid_request", str(exc))) from exc
        # Nothing goes behind a request that may switch the connection to something
        # else (RFC 9110 7.8 Upgrade, 9.3.6 CONNECT): the bytes of one pipelined after
        # it went into the tunnel or the new protocol.
        switching = bool(upgrade) or method == "CONNECT" or "upgrade" in names
        req = _Request(ref=Ref(), method=head.method, upgrade=switching, streaming=streaming)
        if streaming:
            req.body_left = length
        req.events.append(head)
        if not streaming:
            if body:
                assert isinstance(body, bytes | bytearray | memoryview)
                req.events.append(h11.Data(data=bytes(body)))
            req.events.append(h11.EndOfMessage())
        if not self._requests:
            self._start_on_main(req)
        else:
            req.scratch = h11.Connection(h11.CLIENT)
            self._out += self._serialise(req.scratch, req.events)
        self._requests.append(req)
        return req.ref

    def stop_requests(self) -> None:
        """Take no more requests (a cancelled one's rest still goes out: the server
        would take the next for its body), while the answers before it are read."""
        self._stopped = True

    def abandon(self, ref: Ref) -> None:
        """``ref``'s bytes could not be written (the socket failed under the write):
        the request was never made, so it is not counted and gets no ``Error`` later.
        One that h11 saw go out (no request before it) leaves h11 unable to go on."""
        for req in self._requests:
            if req.ref is ref:
                self._requests.remove(req)
                if req.sent_on_main:
                    self._broken = True
                return

    def _start_on_main(self, req: _Request) -> None:
        """Send ``req``'s events through the main h11 connection (its turn to read).

        A pipelined request (one with a ``scratch`` connection) was written when it
        was made: its events are only replayed, so that h11 follows the cycle, and
        what h11 gives back is dropped, or the server would get the request twice.
        """
        written = req.scratch is not None
        try:
            for event in req.events:
                data = self._h11.send(event)
                if data and not written:
                    self._out += data
        except h11.LocalProtocolError as exc:
            raise HTTPError(("invalid_request", str(exc))) from exc
        req.sent_on_main = True
        req.scratch = None

    @staticmethod
    def _serialise(scratch: h11.Connection, events: list[Any]) -> bytes:
        out = bytearray()
        try:
            for event in events:
                out += scratch.send(event) or b""
        except h11.LocalProtocolError as exc:
            raise HTTPError(("invalid_request", str(exc))) from exc
        return bytes(out)

    def stream_request_body(self, ref: Ref, chunk: Chunk) -> None:
        chunk = iodata(chunk)
        trailers = body_end(chunk)
        if self._upgraded is not None and (ref is self._upgraded or ref == self._upgraded):
            # (not None: that is no request, and its bytes went out raw, into a body)
            if trailers is None:
                if type(chunk) is memoryview and not chunk.c_contiguous:
                    chunk = chunk.tobytes()  # (a bytearray takes only contiguous bytes)
                self._out += cast("bytes", chunk)
            return  # the end of a body means nothing on an upgraded connection
        req = next((r for r in self._requests if r.ref == ref), None)
        answered = req is None and self._answered is not None and self._answered.ref == ref
        if answered:
            # Answered already (see _answered): h11 still wants the body whole before
            # the connection can carry another request.
            req = self._answered
        if req is None:
            raise HTTPError("unknown_request_to_stream")
        if not req.streaming:
            raise HTTPError("request_body_not_streaming")
        size = 0 if trailers is not None else memoryview(cast("bytes", chunk)).nbytes
        left = body_left(req.body_left, size, trailers is not None)
        event: Any
        if trailers is not None:
            if trailers and req.body_left is not None:
                # Trailers need a chunked body (RFC 9112 7.1.2): h11 refused them after
                # a Content-Length only once it had taken the end in, stream half-ended.
                raise HTTPError(("invalid_request", "trailers on a body with a content-length"))
            try:
                event = h11.EndOfMessage(headers=trailers)
            except h11.LocalProtocolError as exc:
                raise HTTPError(("invalid_request", str(exc))) from exc
        elif not size:
            return  # an empty chunk would end a chunked body early
        else:
            event = h11.Data(data=bytes(cast("bytes", chunk)))
        if req.sent_on_main:
            try:
                self._out += self._h11.send(event) or b""
            except h11.LocalProtocolError as exc:
                raise HTTPError(("invalid_request", str(exc))) from exc
        else:
            # Pipelined behind another request: write it now, replay it on h11 later.
            self._out += self._serialise(req.scratch, [event])
            req.events.append(event)
        req.body_left = left
        if trailers is not None:
            req.streaming = False
        if answered and not req.streaming:
            self._answered = None
            conn = self._h11
            if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()
            else:
                self._broken = True  # h11 cannot go on (an HTTP/1.0 server, say)

    # -- responses -----------------------------------------------------------------
    def receive_data(self, data: bytes) -> list[Response]:
        """Turn socket input into responses.

        Raises:
            HTTPError: the server broke HTTP; ``.responses`` has what came before.
        """
        if not data:
            return []  # h11 reads b"" as end of stream; that is connection_lost's job
        if self._upgraded is not None:
            return [new_data(self._upgraded, data)]
        responses: list[Response] = []
        try:
            self._h11.receive_data(data)
        except RuntimeError as exc:  # data after the server closed its side
            self._broken = True
            raise HTTPError(("invalid_response", str(exc)), responses=responses) from exc
        self._pump(responses)
        if not self._requests and self._upgraded is None:
            unasked, _ = self._h11.trailing_data
            if unasked:
                # RFC 9112 6.3: never taken as the answer to a later request (that is
                # how caches get poisoned). Mint's {:unexpected_data, data}.
                self._broken = True
                raise HTTPError(("unexpected_data", unasked), responses=responses)
        return responses

    def _pump(self, responses: list[Response]) -> None:
        conn = self._h11
        while self._requests:
            req = self._requests[0]
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._broken = True
                # (431: h11's own bound on a head still incomplete, the one _too_large
                # applies to a whole one; the same reason however the head was split)
                message = _TOO_LARGE if exc.error_status_hint == 431 else str(exc)
                raise HTTPError(("invalid_response", message), responses=responses) from exc
            if _too_large(event):
                self._broken = True
                raise HTTPError(("invalid_response", _TOO_LARGE), responses=responses)
            if event is h11.NEED_DATA:
                return
            if event is h11.PAUSED:
                if conn.their_state is h11.SWITCHED_PROTOCOL:
                    self._switch(req, responses)
                    return
                if not self._next_cycle(responses):
                    return
                continue
            ref = req.ref
            if isinstance(event, h11.InformationalResponse):
                if event.status_code == 101 and event.http_version != b"1.1":
                    # h11 takes any HTTP/d.d, but protocol switching is HTTP/1.1's
                    # (RFC 9110 7.8; RFC 6455 4.2.2): an "HTTP/1.0 101" is no upgrade
                    # and whatever follows it cannot be read as one.
                    self._broken = True
                    version = event.http_version.decode("ascii", "replace")
                    raise HTTPError(
                        ("invalid_response", f"a 101 in HTTP/{version}: switching needs HTTP/1.1"),
                        responses=responses,
                    )
                responses.append(Status(ref, event.status_code))
                responses.append(Headers(ref, _decode_headers(event.headers)))
                if event.status_code == 101 and conn.their_state is h11.SWITCHED_PROTOCOL:
                    self._switch(req, responses)
                    return
            elif isinstance(event, h11.Response):
                responses.append(Status(ref, event.status_code))
                headers = _decode_headers(event.headers)
                responses.append(Headers(ref, headers))
                names = {name for name, _ in headers}
                if "content-length" in names and "transfer-encoding" in names:
                    # RFC 9112 6.3: read as chunked, but a sign of smuggling or
                    # splitting; the connection is closed after this answer.
                    req.close_after = True
            elif isinstance(event, h11.Data):
                if event.data:
                    responses.append(Data(ref, bytes(event.data)))
            elif isinstance(event, h11.EndOfMessage):
                if event.headers:
                    responses.append(Headers(ref, _decode_headers(event.headers)))
                responses.append(Done(ref))
                self._requests.popleft()
                if req.close_after:
                    # The answer's framing was ambiguous (RFC 9112 6.3): nothing more
                    # is read from this connection.
                    self._broken = True
                    self._fail_pending(responses, TransportError("closed"))
                    return
                if conn.our_state is h11.DONE or conn.our_state is h11.MUST_CLOSE:
                    if not self._next_cycle(responses):
                        return
                elif conn.their_state is h11.MUST_CLOSE:
                    # Answered early, and the server closes (a 413 with Connection:
                    # close): RFC 9112 9.6, stop sending the body; the connection ends.
                    self._broken = True
                    return
                else:
                    # Answered early on a connection kept alive: the caller may still
                    # finish the body (stream_request_body), then the next cycle starts.
                    self._answered = req
                    return
            elif isinstance(event, h11.ConnectionClosed):
                self._read_closed = True
                self._fail_pending(responses, TransportError("closed"))
                return

    def _switch(self, req: _Request, responses: list[Response]) -> None:
        """The server switched protocols: hand out the rest as raw upgrade data."""
        trailing, _closed = self._h11.trailing_data
        self._upgraded = req.ref
        self.direct_ref = req.ref
        self._requests.popleft()
        if trailing:
            responses.append(Data(req.ref, bytes(trailing)))
        responses.append(Done(req.ref))
        # Anything pipelined after an upgrade request can never be answered.
        self._fail_pending(responses, HTTPError("closed"))

    def _next_cycle(self, responses: list[Response]) -> bool:
        """Move h11 on to the next pipelined request; False if it cannot go on."""
        conn = self._h11
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            if self._requests:
                self._start_on_main(self._requests[0])
            return True
        if conn.our_state is h11.MUST_CLOSE or conn.their_state in (h11.MUST_CLOSE, h11.CLOSED):
            self._broken = True
            self._fail_pending(responses, TransportError("closed"))
        return False

    def _fail_pending(self, responses: list[Response], error: MintError) -> None:
        while self._requests:
            responses.append(Error(self._requests.popleft().ref, error))

    def connection_lost(self, failure: Reason | None = None) -> tuple[list[Response], bool]:
        """The peer closed its side, or it failed with reason ``failure`` (a reset, a
        TLS alert). Returns the responses and whether that was clean.

        A body delimited by the connection's end completes here (``Done``), on a close
        only: a reset cuts it short. A request still waiting for its answer makes the
        close unclean (the caller raises ``TransportError("closed")`` with the
        responses); as in Mint, HTTP/1.1 does not end each request with an ``Error``.
        """
        self._read_closed = True
        if self._upgraded is not None:
            return [], False
        if failure is not None:
            self._broken = True
            self._requests.clear()
            return [], False
        responses: list[Response] = []
        if not self._requests:
            # Idle, as Mint's handle_close: {:error, conn, %TransportError{reason:
            # :closed}, []} (only a body delimited by the close ends cleanly).
            self._broken = True
            return responses, False
        try:
            self._h11.receive_data(b"")
        except RuntimeError:
            pass
        try:
            self._pump(responses)
        except HTTPError as exc:
            responses = list(exc.responses)
        self._broken = True
        clean = not self._requests and not any(isinstance(r, Error) for r in responses)
        self._requests.clear()
        return responses, clean
