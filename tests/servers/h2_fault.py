"""A small ``h2`` server for HTTP/2 fault injection (resets, GOAWAY, tiny windows, late SETTINGS).

One thread accepts on 127.0.0.1 (port from the OS); each connection runs in its own thread
with an ``h2`` server connection. :class:`FaultOptions` shapes the connection; the path of
each request picks a script:

* ``GET /`` → 200 "hello"; ``GET /big?size=N`` → 200 with N bytes (``i % 251``).
* ``GET /ping`` → a PING (``b"server!!"``), then 200 "pinged", in one write.
* ``POST /sink`` → reads the body, answers 200 with ``"<length> <sha256>"``.
* ``GET /reset?code=N`` → 200 headers, a DATA "partial", then RST_STREAM(N).
* ``GET /goaway`` → GOAWAY with ``last_stream_id`` = the stream before this one, then
  finishes every plain stream at or below it ("done"); WebSockets at or below it go on.
  The connection is closed once they have all ended.
* ``GET /break`` → a DATA frame on stream 0 (a connection error of the client's).
* ``GET /vanish`` → 200 headers and "partial", then the TCP connection is dropped.
* ``GET /hold`` → 200 headers, nothing more (the stream stays open).
* extended CONNECT ``:protocol websocket`` (wsproto's frame layer, no extensions):
  ``/echo`` echoes messages and answers pings; a Close is answered with a Close and
  END_STREAM. ``/close`` answers the first message with Close(1000, "bye") and ends the
  stream once the client's Close came. ``/ws-hold`` echoes but answers a Close without
  ending the stream (to be cancelled). ``/ws-stall`` echoes but never gives its stream
  window back (the connection's it does): a handler that stopped reading. ``/ws-reset``
  resets the stream (CANCEL) at the first message. ``/forbidden`` answers 403.

What happened is recorded in ``server.log`` (``(conn_no, stream_id, what, detail)``) for the
tests to check, e.g. that a RST_STREAM(CANCEL) arrived. Handler exceptions are kept in
``server.errors``; ``stop()`` shuts every socket down and joins every thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import socket
import struct
import sys
import termios
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from h2.connection import ConnectionState
from h2.settings import SettingCodes
from wsproto.frame_protocol import CloseReason, FrameProtocol, Opcode

from .peer import HOST, PeerAddressMixin


@dataclasses.dataclass(frozen=True)
class FaultOptions:
    """How the server's connections behave.

    Attributes:
        connect_protocol: send SETTINGS_ENABLE_CONNECT_PROTOCOL=1.
        initial_window: SETTINGS_INITIAL_WINDOW_SIZE (stream windows of the client's DATA).
        window_step: acknowledge received DATA in WINDOW_UPDATEs of at most this many bytes,
            one per read (tiny windows trickle).
        grant_windows: ``False``: never give received bytes back (windows stay shut once
            the client has used them).
        max_concurrent_streams: SETTINGS_MAX_CONCURRENT_STREAMS.
        settings_delay: seconds to wait before the server's first SETTINGS (late SETTINGS).
        extra_settings_frame: send ENABLE_CONNECT_PROTOCOL in a second SETTINGS frame
            after the first (empty) one, as some servers do.
    """

    connect_protocol: bool = True
    initial_window: int = 65_535
    window_step: int | None = None
    grant_windows: bool = True
    max_concurrent_streams: int = 100
    settings_delay: float = 0.0
    extra_settings_frame: bool = False


class FaultServer(PeerAddressMixin):
    scheme = "http"

    def __init__(self, options: FaultOptions | None = None) -> None:
        self.options = options or FaultOptions()
        self.host = HOST
        self.log: list[tuple[int, int, str, Any]] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server((HOST, 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        self._stopping = False
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def record(self, conn_no: int, stream_id: int, what: str, detail: Any = None) -> None:
        with self._lock:
            self.log.append((conn_no, stream_id, what, detail))

    def events(self, what: str) -> list[tuple[int, int, str, Any]]:
        with self._lock:
            return [entry for entry in self.log if entry[2] == what]

    def _accept(self) -> None:
        count = 0
        while not self._stopping:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            count += 1
            with self._lock:
                self._socks.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock, count), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket, conn_no: int) -> None:
        try:
            _Connection(self, sock, conn_no).run()
        except (OSError, h2.exceptions.ProtocolError) as exc:
            if not self._stopping:
                self.record(conn_no, 0, "connection_error", repr(exc))
        except BaseException as exc:  # kept for the test to see, never lost in a thread
            self.errors.append(exc)
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (Linux)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._accepter.join(5)
        for thread in self._threads:
            thread.join(5)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()


@dataclasses.dataclass
class _Stream:
    path: str
    websocket: FrameProtocol | None = None
    body: bytearray = dataclasses.field(default_factory=bytearray)
    pending: bytearray = dataclasses.field(default_factory=bytearray)  # waiting for window
    end_after_pending: bool = False
    ended: bool = False
    responded: bool = False
    closing: bool = False  # the server sent its Close first
    # /half-close-resets: the client's Close, answered after the read that brought it
    deferred_close: tuple[int | None, str] | None = None


class _Connection:
    def __init__(self, server: FaultServer, sock: socket.socket, conn_no: int) -> None:
        self.server = server
        self.sock = sock
        self.no = conn_no
        opts = server.options
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=config)
        values: dict[Any, int] = {
            SettingCodes.MAX_CONCURRENT_STREAMS: opts.max_concurrent_streams,
            SettingCodes.INITIAL_WINDOW_SIZE: opts.initial_window,
        }
        if opts.connect_protocol and not opts.extra_settings_frame:
            values[SettingCodes.ENABLE_CONNECT_PROTOCOL] = 1
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values=values)
        self.streams: dict[int, _Stream] = {}
        self.unacked: dict[int, int] = {}
        self.close_after_flush = False
        self.reset_after_flush = False  # close with a TCP RST (SO_LINGER 0), not a FIN
        self.goaway_last: int | None = None  # close once the streams up to it have ended
        self.raw_after_flush = b""  # bytes written as they are after h2's (/break)

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def run(self) -> None:
        opts = self.server.options
        if opts.settings_delay:
            time.sleep(opts.settings_delay)
        self.h2.initiate_connection()
        if opts.extra_settings_frame and opts.connect_protocol:
            self.h2.update_settings({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
        self.flush()
        while True:
            data = self.sock.recv(65_536)
            if not data:
                self.server.record(self.no, 0, "eof")
                return
            for event in self.h2.receive_data(data):
                self.handle(event)
            self.answer_deferred_closes()
            self.ack_received()
            self.send_pending()
            if self.goaway_last is not None and all(
                s.ended for i, s in self.streams.items() if i <= self.goaway_last
            ):
                self.close_after_flush = True
            self.flush()
            if self.raw_after_flush:
                self.sock.sendall(self.raw_after_flush)
                self.raw_after_flush = b""
            if self.reset_after_flush:
                # An abort drops what the send queue still holds: the answers flushed
                # just before must reach the client first (they were lost now and then).
                self.wait_sent()
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.sock.close()
                return
            if self.close_after_flush:
                self.sock.shutdown(socket.SHUT_RDWR)
                return

    def wait_sent(self, limit: float = 2.0) -> None:
        """Until the peer has acknowledged every byte sent (SIOCOUTQ is 0), ``limit`` at most."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            unsent = fcntl.ioctl(self.sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
            if not int.from_bytes(unsent, sys.byteorder):
                return
            time.sleep(0.001)

    # -- flow control ----------------------------------------------------------------------
    def ack_received(self) -> None:
        """Give the received bytes back, in WINDOW_UPDATEs of ``window_step`` bytes at most."""
        step = self.server.options.window_step
        if not self.server.options.grant_windows:
            return
        for stream_id, size in list(self.unacked.items()):
            self.unacked[stream_id] = 0
            while size > 0:
                amount = size if step is None else min(size, step)
                size -= amount
                self.h2.increment_flow_control_window(amount)
                stalled = stream_id in self.streams and self.streams[stream_id].path == "/ws-stall"
                stream = self.h2.streams.get(stream_id)
                if stream is not None and stream.open and not stalled:
                    with contextlib.suppress(h2.exceptions.ProtocolError):
                        self.h2.increment_flow_control_window(amount, stream_id=stream_id)

    def send(self, stream_id: int, data: bytes, *, end: bool = False) -> None:
        stream = self.streams[stream_id]
        stream.pending += data
        stream.end_after_pending = stream.end_after_pending or end
        self.send_pending()

    def send_pending(self) -> None:
        for stream_id, stream in self.streams.items():
            if stream.ended:
                continue
            while stream.pending:
                try:
                    window = self.h2.local_flow_control_window(stream_id)
                except h2.exceptions.StreamClosedError:
                    stream.pending.clear()
                    break
                size = min(window, self.h2.max_outbound_frame_size, len(stream.pending))
                if size <= 0:
                    break
                try:
                    self.h2.send_data(stream_id, bytes(stream.pending[:size]))
                except h2.exceptions.StreamClosedError:
                    # Reset by the client in the read that asked for this answer.
                    stream.pending.clear()
                    stream.ended = True
                    break
                del stream.pending[:size]
            if not stream.pending and stream.end_after_pending:
                stream.ended = True
                with contextlib.suppress(h2.exceptions.StreamClosedError):
                    self.h2.end_stream(stream_id)

    def answer_deferred_closes(self) -> None:
        for stream_id, stream in self.streams.items():
            if stream.deferred_close is not None and not stream.ended:
                code, reason = stream.deferred_close
                stream.deferred_close = None
                assert stream.websocket is not None
                self.send(stream_id, bytes(stream.websocket.close(code, reason)), end=True)

    # -- events ------------------------------------------------------------------------------
    def handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self.on_request(event.stream_id, dict(event.headers))
        elif isinstance(event, h2.events.DataReceived):
            self.unacked[event.stream_id] = (
                self.unacked.get(event.stream_id, 0) + event.flow_controlled_length
            )
            self.on_data(event.stream_id, event.data)
        elif isinstance(event, h2.events.StreamEnded):
            self.on_end(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self.server.record(self.no, event.stream_id, "reset", event.error_code)
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.ended = True
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.server.record(self.no, 0, "goaway", event.error_code)
        elif isinstance(event, h2.events.PingReceived):
            self.server.record(self.no, 0, "ping", event.ping_data)
        elif isinstance(event, h2.events.PingAckReceived):
            self.server.record(self.no, 0, "ping_ack", event.ping_data)

    def respond(
        self, stream_id: int, status: int, headers: list[tuple[str, str]] | None = None
    ) -> None:
        self.streams[stream_id].responded = True
        self.h2.send_headers(stream_id, [(":status", str(status)), *(headers or [])])

    def on_request(self, stream_id: int, headers: dict[str, str]) -> None:
        url = urlsplit(headers.get(":path", "/"))
        path, query = url.path, parse_qs(url.query)
        method = headers.get(":method")
        stream = _Stream(path=path)
        self.streams[stream_id] = stream
        self.server.record(self.no, stream_id, "request", (method, headers.get(":path"), headers))
        if stream_id not in self.h2.streams or self.h2.streams[stream_id].closed:
            # Reset in the same read as its HEADERS (h2 takes every frame of a read
            # before its events are handled here): there is nothing to answer.
            stream.ended = True
            return
        if method == "CONNECT" and headers.get(":protocol") == "websocket":
            if path == "/forbidden":
                self.respond(stream_id, 403, [("content-type", "text/plain")])
                self.send(stream_id, b"forbidden", end=True)
                return
            stream.websocket = FrameProtocol(client=False, extensions=[])
            self.respond(stream_id, 200)
            return
        if path == "/":
            self.respond(stream_id, 200)
            self.send(stream_id, b"hello", end=True)
        elif path == "/ping":
            self.h2.ping(b"server!!")  # (in the same write as the answer: the client must ack)
            self.respond(stream_id, 200)
            self.send(stream_id, b"pinged", end=True)
        elif path == "/big":
            size = int(query.get("size", ["0"])[0])
            self.respond(stream_id, 200, [("content-length", str(size))])
            self.send(stream_id, bytes(i % 251 for i in range(size)), end=True)
        elif path == "/sink":
            pass  # answered at the end of the body
        elif path == "/reset":
            code = int(query.get("code", ["2"])[0])
            self.respond(stream_id, 200)
            self.h2.send_data(stream_id, b"partial")
            self.h2.reset_stream(stream_id, code)
            stream.ended = True
        elif path == "/break":
            # A DATA frame on stream 0: a connection error (RFC 9113 6.1), the client's.
            self.raw_after_flush = b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x"
        elif path == "/goaway":
            last = stream_id - 2 if stream_id > 2 else 0
            self.h2.close_connection(last_stream_id=last)
            # h2 refuses to send after its own GOAWAY; RFC 9113 6.8 lets us finish the rest.
            self.h2.state_machine.state = ConnectionState.SERVER_OPEN
            for other_id, other in self.streams.items():
                if other_id <= last and not other.ended and other.websocket is None:
                    if not other.responded:
                        self.respond(other_id, 200)
                    self.send(other_id, b"done", end=True)
            self.goaway_last = last
        elif path == "/vanish":
            self.respond(stream_id, 200)
            self.h2.send_data(stream_id, b"partial")
            self.close_after_flush = True
        elif path == "/short-then-trailers":  # 5 bytes of a declared 10, then trailers
            self.respond(stream_id, 200, [("content-length", "10")])
            self.h2.send_data(stream_id, b"hello")
            self.h2.send_headers(stream_id, [("x-checksum", "abc")], end_stream=True)
            stream.ended = True
        elif path == "/no-content-with-data":  # a 204 or 304 (?status=) with a body
            self.respond(stream_id, int(query.get("status", ["204"])[0]))
            self.send(stream_id, b"smuggled-body", end=True)
        elif path == "/answer-then-stop":  # RFC 9113 8.1: a whole answer, then a stop
            self.respond(stream_id, 200, [("content-length", "4")])
            self.h2.send_data(stream_id, b"done", end_stream=True)
            self.h2.reset_stream(stream_id, 0)
            stream.ended = True
        elif path == "/hold":
            self.respond(stream_id, 200)
        elif path == "/abort":
            self.reset_after_flush = True
        else:
            self.respond(stream_id, 404)
            self.send(stream_id, b"", end=True)

    def on_data(self, stream_id: int, data: bytes) -> None:
        stream = self.streams.get(stream_id)
        if stream is None:
            return
        if stream.websocket is None:
            stream.body += data
            return
        ws = stream.websocket
        ws.receive_bytes(data)
        for frame in ws.received_frames():
            self.on_frame(stream_id, stream, frame)

    def on_frame(self, stream_id: int, stream: _Stream, frame: Any) -> None:
        ws = stream.websocket
        assert ws is not None
        opcode = frame.opcode
        self.server.record(self.no, stream_id, "ws_frame", opcode.name)
        if opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION):
            if stream.path == "/ws-reset":
                self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
                stream.ended = True
                return
            if stream.path == "/close":
                stream.closing = True
                self.send(stream_id, bytes(ws.close(1000, "bye")))
                return
            if stream.path == "/ws-last-words":  # the echo, then a TCP reset
                self.send(stream_id, bytes(ws.send_data(frame.payload, True)))
                self.reset_after_flush = True
                return
            if opcode is Opcode.TEXT:
                opcode_out: Any = frame.payload
            else:
                opcode_out = bytes(frame.payload)
            self.send(stream_id, bytes(ws.send_data(opcode_out, frame.frame_finished)))
        elif opcode is Opcode.PING:
            self.send(stream_id, bytes(ws.pong(bytes(frame.payload))))
        elif opcode is Opcode.CLOSE:
            code, reason = frame.payload
            self.server.record(self.no, stream_id, "ws_close", (code, reason))
            if stream.closing:
                self.send(stream_id, b"", end=True)
                return
            if stream.path == "/half-close-resets":
                # As lighttpd 1.4's mod_proxy over HTTP/2: the Close goes to a backend,
                # and the client's END_STREAM before its answer resets the stream.
                stream.deferred_close = (code, reason)
                return
            reply = ws.close(code if code != CloseReason.NO_STATUS_RCVD else None, reason)
            self.send(stream_id, bytes(reply), end=stream.path != "/ws-hold")

    def on_end(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        self.server.record(self.no, stream_id, "end_stream")
        if stream is None or stream.ended:
            return
        if stream.deferred_close is not None:
            self.h2.reset_stream(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
            stream.ended = True
            self.server.record(self.no, stream_id, "half_close_reset")
            return
        if stream.path == "/sink":
            body = bytes(stream.body)
            self.respond(stream_id, 200)
            digest = hashlib.sha256(body).hexdigest()
            self.send(stream_id, f"{len(body)} {digest}".encode(), end=True)
