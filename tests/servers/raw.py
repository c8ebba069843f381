"""A scripted TCP server for peers that misbehave, and the RFC 6455 handshake arithmetic.

A test hands :class:`RawServer` a ``handler(conn)`` that owns one accepted socket (already
TLS-wrapped when the server has a context). The builders below cover the usual scripts::

    server = raw_server(upgrade_then(frame(OP_TEXT, b"hel")[:-1]))      # peer vanishes mid-frame
    server = raw_server(reply(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"))

Every handler exception is kept in ``server.errors`` instead of escaping the thread (pytest would
turn it into a warning, hence an error). ``stop()`` wakes blocked handlers by shutting their
sockets down, joins every thread and closes every socket.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import selectors
import socket
import ssl
import struct
import threading
from collections.abc import Callable

from .peer import HOST, PeerAddressMixin

# RFC 6455 section 1.3: the GUID appended to Sec-WebSocket-Key before hashing.
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# RFC 6455 section 5.2 opcodes.
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

Handler = Callable[[socket.socket], None]


def accept_key(key: bytes | str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2, item 5.4)."""
    if isinstance(key, str):
        key = key.encode("ascii")
    return base64.b64encode(hashlib.sha1(key.strip() + WS_GUID).digest()).decode("ascii")


def parse_headers(request: bytes) -> dict[str, str]:
    """Header fields of an HTTP/1.1 request head, names lowercased (last one wins)."""
    head = request.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    fields = {}
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return fields


def handshake_response(
    request: bytes,
    *,
    accept: str | None = None,
    extra_headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> bytes:
    """The 101 a correct server answers to ``request`` (pass ``accept`` to make it wrong)."""
    if accept is None:
        accept = accept_key(parse_headers(request)["sec-websocket-key"])
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept}",
        *(f"{name}: {value}" for name, value in extra_headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = None,
) -> bytes:
    """One WebSocket frame (RFC 6455 section 5.2); servers send unmasked frames."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if mask is not None else 0
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, mask_bit | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", first, mask_bit | 126, n)
    else:
        head = struct.pack("!BBQ", first, mask_bit | 127, n)
    if mask is None:
        return head + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


@dataclasses.dataclass(frozen=True, slots=True)
class Frame:
    fin: bool
    rsv: int
    opcode: int
    payload: bytes


def parse_frames(data: bytes) -> tuple[list[Frame], bytes]:
    """Split ``data`` into whole frames (unmasking masked ones) and the incomplete rest."""
    frames = []
    view = memoryview(data)
    pos = 0
    while len(view) - pos >= 2:
        first, second = view[pos], view[pos + 1]
        n, head = second & 0x7F, 2
        if n == 126:
            if len(view) - pos < 4:
                break
            n, head = struct.unpack_from("!H", view, pos + 2)[0], 4
        elif n == 127:
            if len(view) - pos < 10:
                break
            n, head = struct.unpack_from("!Q", view, pos + 2)[0], 10
        mask = None
        if second & 0x80:
            if len(view) - pos < head + 4:
                break
            mask = bytes(view[pos + head : pos + head + 4])
            head += 4
        if len(view) - pos < head + n:
            break
        payload = bytes(view[pos + head : pos + head + n])
        if mask is not None:  # (as one big-integer XOR: 16 MiB take 50 ms, not seconds)
            key = (mask * (n // 4 + 1))[:n]
            payload = (int.from_bytes(payload) ^ int.from_bytes(key)).to_bytes(n)
        frames.append(Frame(bool(first & 0x80), (first >> 4) & 0x7, first & 0x0F, payload))
        pos += head + n
    return frames, bytes(view[pos:])


def close_frame(code: int = 1000, reason: str = "") -> bytes:
    return frame(OP_CLOSE, struct.pack("!H", code) + reason.encode())


def read_request(conn: socket.socket, limit: int = 65536) -> bytes:
    """Read one request head (through the blank line); b"" if the peer closed first."""
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            return b""
        buf += chunk
        if len(buf) > limit:
            raise ValueError("request head too large")
    return bytes(buf)


def drain(conn: socket.socket) -> bytes:
    """Read until the peer closes (or the server stops); return what came."""
    buf = bytearray()
    while chunk := conn.recv(65536):
        buf += chunk
    return bytes(buf)


# -- handler builders ---------------------------------------------------------------------------


def reply(data: bytes, *, then_close: bool = True) -> Handler:
    """Read the request, send ``data`` (say, garbage instead of a 101), then close or hold."""

    def handler(conn: socket.socket) -> None:
        if read_request(conn):
            conn.sendall(data)
            if not then_close:
                drain(conn)

    return handler


def upgrade_then(
    data: bytes = b"",
    *,
    then_close: bool = True,
    accept: str | None = None,
    extra_headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
) -> Handler:
    """Answer a (by default correct) 101 and ``data`` in ONE ``sendall``, then close or hold.

    ``then_close=True`` with a truncated frame in ``data`` is a peer vanishing mid-frame; with
    ``then_close=False`` the server keeps reading until the client closes.
    """

    def handler(conn: socket.socket) -> None:
        request = read_request(conn)
        if request:
            response = handshake_response(request, accept=accept, extra_headers=extra_headers)
            conn.sendall(response + data)
            if not then_close:
                drain(conn)

    return handler


def close_notify_behind(data: bytes, release: threading.Event) -> Callable[[socket.socket], None]:
    """A TLS script: ``data`` and close_notify in one TCP segment, then the TCP side held
    open until ``release`` (asyncio's TLS servers wait 30 s for the client's close_notify,
    Twisted's for ever). The client's read of ``data`` meets the end behind it, and no
    later wait has anything to see."""

    def script(conn: socket.socket) -> None:
        assert isinstance(conn, ssl.SSLSocket)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        conn.sendall(data)
        conn.setblocking(False)
        try:
            conn.unwrap()  # writes close_notify; the client's would be read next
        except (ssl.SSLWantReadError, OSError):
            pass
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        release.wait(10)

    return script


def close_at_once(conn: socket.socket) -> None:
    """Accept the TCP connection and close it without reading or answering."""


def never_answer(conn: socket.socket) -> None:
    """Read whatever comes and never answer, until the client (or ``stop()``) closes."""
    drain(conn)


# -- the server ---------------------------------------------------------------------------------


class RawServer(PeerAddressMixin):
    """A listening socket on 127.0.0.1 whose every connection runs ``handler`` in a thread.

    Attributes:
        host, port, scheme, cafile: As :class:`servers.peer.Peer`.
        connections: How many connections were accepted.
        errors: Exceptions the handlers raised (OSError after the client left is normal).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        ssl_context: ssl.SSLContext | None = None,
        cafile: str | None = None,
        rcvbuf: int | None = None,
    ) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.host = HOST
        self.scheme = "https" if ssl_context is not None else "http"
        self.cafile = cafile
        self.server_hostname = "localhost" if ssl_context is not None else None
        self.connections = 0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # A small receive buffer for a peer that reads nothing, set before listen
            # so that the accepted sockets inherit it before their handshake. Set on
            # an accepted socket, it shrank below the window already offered: the
            # kernel dropped the client's segments, and the connection stalled for
            # seconds now and then (persist timer backed off, nothing to read).
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self._listener.bind((HOST, 0))
        self._listener.listen()
        self.port = self._listener.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopped = False
        self._accept_thread = threading.Thread(
            target=self._accept_loop, name=f"raw-server-{self.port}", daemon=True
        )
        self._accept_thread.start()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in sel.select()}
                if self._wake_r in ready:
                    return
                conn, _ = self._listener.accept()
                with self._lock:
                    if self._stopped:
                        conn.close()
                        return
                    self.connections += 1
                    self._conns.append(conn)
                    thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
                    self._threads.append(thread)
                thread.start()

    def _run(self, conn: socket.socket) -> None:
        try:
            if self.ssl_context is not None:
                tls = self.ssl_context.wrap_socket(
                    conn, server_side=True, do_handshake_on_connect=False
                )
                with self._lock:
                    self._conns.append(tls)  # before the handshake, so stop() can wake it
                conn = tls
                tls.do_handshake()
            self.handler(conn)
        except BaseException as exc:
            with self._lock:
                self.errors.append(exc)
        finally:
            # Closing here is what "peer vanishes" means for the client.
            with contextlib.suppress(OSError):
                conn.close()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        self._wake_w.send(b"x")
        self._accept_thread.join()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:
            # Wakes a handler blocked in recv(); it then returns and closes its socket.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join()
        for sock in (*conns, self._listener, self._wake_r, self._wake_w):
            sock.close()


class AnswersTheWholeMessage:
    """A handler: the 101, then nothing read until ``release`` (a client's large
    send fills the socket buffers and may time out); then Text "ok" once ``big`` came
    whole as the first frame ("corrupt" otherwise). The bytes that came after that
    frame, until the client left or ``done``, are kept in ``after``."""

    def __init__(self, big: bytes) -> None:
        self.big = big
        self.release, self.done = threading.Event(), threading.Event()
        self.after: list[bytes] = []

    def __call__(self, conn: socket.socket) -> None:
        request = read_request(conn)
        if not request:
            return
        conn.sendall(handshake_response(request))
        self.release.wait(20.0)
        data = bytearray()
        while not parse_frames(bytes(data))[0]:
            more = conn.recv(1 << 22)
            if not more:
                return
            data += more
        (got, *more_frames), rest = parse_frames(bytes(data))
        conn.sendall(frame(0x1, b"ok" if got.payload == self.big else b"corrupt"))
        after = bytearray(f"<{len(more_frames)} frames>".encode() if more_frames else b"")
        after += rest
        conn.settimeout(0.05)
        while not self.done.is_set():
            try:
                more = conn.recv(1 << 16)
            except TimeoutError:
                continue
            if not more:
                break
            after += more
        self.after.append(bytes(after))

    def stop(self) -> None:
        self.release.set()
        self.done.set()
