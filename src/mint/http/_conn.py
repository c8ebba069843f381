"""The ``Conn`` value and the ``mint.http`` functions: a thin call into a session plus one I/O step.

Walkthrough (passive mode)::

    conn = mint.http.connect("https", "example.com", 443, mode="passive")
    conn, ref = mint.http.request(conn, "GET", "/", [])
    conn, responses = mint.http.recv(conn, 0, 5.0)   # [Status(ref, 200), Headers(ref, ...), ...]
    conn = mint.http.close(conn)

Every function takes the connection and returns the one to continue with, as Mint
does. The ``Conn`` holds a mutable ``h11``/``h2`` state (single owner, never copied),
so the value returned is the same object moved on; callers must use it, not the one
they passed in. Errors are raised with ``.conn`` set to the connection to continue with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

from mint._transport import ALPN_IDS, Transport, make_ssl_context
from mint.errors import HTTPError, MintError, TransportError
from mint.http._http1 import Http1Session
from mint.http._types import Ref, Response
from mint.mailbox import Mailbox, SocketClosed, SocketData, SocketError, mailbox

if TYPE_CHECKING:
    import socket


class _Unknown:
    """Mint's ``:unknown``: the message is not this connection's."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "mint.UNKNOWN"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()

DEFAULT_CONNECT_TIMEOUT = 30.0
# How long connect() waits for an HTTP/2 server's first SETTINGS when no timeout is given.
DEFAULT_SETTINGS_TIMEOUT = 30.0


class Session(Protocol):
    """What a protocol session (HTTP/1.1 or HTTP/2) offers the facade. Sans-IO."""

    protocol: str

    def data_to_send(self) -> bytes: ...
    def open_request_count(self) -> int: ...
    def is_open(self, kind: str) -> bool: ...
    def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes | object | None,
        *,
        upgrade: str | None = None,
    ) -> Ref: ...
    def stream_request_body(self, ref: Ref, chunk: bytes | object) -> None: ...
    def receive_data(self, data: bytes) -> list[Response]: ...
    def connection_lost(self) -> tuple[list[Response], bool]: ...


class Conn:
    """An open HTTP connection (opaque; Mint's ``Mint.HTTP.t()``)."""

    __slots__ = (
        "__weakref__",
        "_held",
        "_mailbox",
        "_mode",
        "_private",
        "_session",
        "_transport",
        "host",
        "port",
        "scheme",
    )

    def __init__(
        self,
        transport: Transport,
        session: Any,
        *,
        scheme: str,
        host: str,
        port: int,
        mode: str,
        mailbox: Mailbox | None,
    ) -> None:
        self._transport = transport
        self._session = session
        self.scheme = scheme
        self.host = host
        self.port = port
        self._mode = mode
        self._mailbox = mailbox
        # Input taken back from the mailbox when going passive, served before the socket.
        self._held: list[bytes] = []
        # Per-connection data of layers above HTTP (the websocket upgrades in flight).
        self._private: dict[str, Any] = {}

    def __repr__(self) -> str:
        state = "open" if not self._transport.closed else "closed"
        return (
            f"<mint.http.Conn {self.scheme}://{self.host}:{self.port} "
            f"{self._session.protocol} {self._mode} {state}>"
        )


# -- helpers shared by every function ---------------------------------------------
def _flush(conn: Conn) -> None:
    data = conn._session.data_to_send()
    if data:
        conn._transport.send(data)


def _attach(exc: MintError, conn: Conn) -> MintError:
    exc.conn = conn
    return exc


def _check_protocols(protocols: Sequence[str]) -> tuple[str, ...]:
    protos = tuple(protocols)
    if not protos or any(p not in ALPN_IDS for p in protos):
        raise HTTPError(("invalid_protocols", protos))
    return protos


def _make_session(protocol: str, scheme: str, host: str, port: int) -> Any:
    if protocol == "http2":
        from mint.http._http2 import Http2Session  # HTTP/2 lives in its own module

        return Http2Session(scheme=scheme, host=host, port=port)
    return Http1Session(scheme=scheme, host=host, port=port)


# -- the public functions -----------------------------------------------------------
def connect(
    scheme: str,
    host: str,
    port: int,
    *,
    protocols: Sequence[str] = ("http1", "http2"),
    mode: str = "active",
    transport_opts: dict[str, Any] | None = None,
    hostname: str | None = None,
    mailbox: Mailbox | None = None,
) -> Conn:
    """Open a connection (Mint's ``connect/4``).

    Args:
        scheme: ``"http"`` or ``"https"``.
        host: the address to connect to.
        port: the TCP port.
        protocols: ``"http1"``/``"http2"``. On ``http`` HTTP/2 is used only for
            ``("http2",)`` (prior knowledge); on ``https`` ALPN picks among them.
        mode: ``"active"`` (input arrives as mailbox messages for :func:`stream`)
            or ``"passive"`` (read with :func:`recv`).
        transport_opts: ``timeout`` (connect, seconds), ``ssl_context``, ``cafile``,
            ``verify`` (default ``True``).
        hostname: the name for SNI, certificate checks and ``Host``/``:authority``
            when ``host`` is an address.
        mailbox: the mailbox of an active connection (default: the thread's).

    Raises:
        TransportError: the TCP or TLS connection failed.
        HTTPError: the arguments are invalid or an HTTP/2 server broke the protocol.
    """
    if scheme not in ("http", "https"):
        raise HTTPError(("invalid_scheme", scheme))
    if mode not in ("active", "passive"):
        raise HTTPError(("invalid_mode", mode))
    protos = _check_protocols(protocols)
    opts = dict(transport_opts or {})
    timeout = opts.get("timeout", DEFAULT_CONNECT_TIMEOUT)
    name = hostname or host
    ctx = None
    if scheme == "https":
        ctx = make_ssl_context(
            ssl_context=opts.get("ssl_context"),
            cafile=opts.get("cafile"),
            verify=opts.get("verify", True),
            alpn=[ALPN_IDS[p] for p in protos],
        )
    transport = Transport.connect(
        scheme,
        host,
        port,
        timeout=timeout,
        ssl_context=ctx,
        server_hostname=name,
        alpn=(),
    )
    if scheme == "https":
        selected = transport.alpn_protocol()
        if selected == "h2":
            protocol = "http2"
        elif selected == "http/1.1":
            protocol = "http1"
        else:
            protocol = "http1" if "http1" in protos else "http2"
    else:
        protocol = "http2" if protos == ("http2",) else "http1"
    session = _make_session(protocol, scheme, name, port)
    box = None
    if mode == "active":
        box = mailbox if mailbox is not None else _default_mailbox()
    conn = Conn(transport, session, scheme=scheme, host=name, port=port, mode=mode, mailbox=box)
    if protocol == "http2":
        try:
            _await_settings(conn, timeout if timeout is not None else DEFAULT_SETTINGS_TIMEOUT)
        except BaseException:
            transport.close()
            raise
    if box is not None:
        box.register(transport)
    return conn


def _default_mailbox() -> Mailbox:
    return mailbox()


def _await_settings(conn: Conn, timeout: float) -> None:
    """HTTP/2: send the preface and read until the server's SETTINGS are processed.

    Only then does ``upgrade`` know whether extended CONNECT is enabled. Input read
    past the SETTINGS (there should be none for a fresh connection) is kept.
    """
    import time

    session = conn._session
    session.initiate()
    _flush(conn)
    deadline = time.monotonic() + timeout
    while not session.settings_received:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransportError("timeout")
        data = conn._transport.recv(0, remaining)
        if not data:
            raise TransportError("closed")
        responses = session.receive_data(data)
        _flush(conn)
        if responses:
            conn._private.setdefault("early", []).extend(responses)


def request(
    conn: Conn,
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    body: bytes | object | None = None,
) -> tuple[Conn, Ref]:
    """Send a request (Mint's ``request/5``); ``body=STREAM`` streams it afterwards.

    Raises:
        HTTPError: the connection cannot take it (closed, a body still streaming).
        TransportError: writing failed.
    """
    try:
        if conn._transport.closed:
            raise HTTPError("connection_closed")
        ref = conn._session.request(method, path, list(headers), body)
        _flush(conn)
    except MintError as exc:
        raise _attach(exc, conn) from exc.__cause__
    return conn, ref


def stream_request_body(conn: Conn, ref: Ref, chunk: bytes | object) -> Conn:
    """Send a chunk of a streamed body, or ``EOF`` to end it.

    On an upgraded HTTP/1.1 WebSocket the bytes are written as they are.
    """
    try:
        if conn._transport.closed:
            raise TransportError("closed")
        conn._session.stream_request_body(ref, chunk)
        _flush(conn)
    except MintError as exc:
        raise _attach(exc, conn) from exc.__cause__
    return conn


def _process(conn: Conn, data: bytes) -> tuple[Conn, list[Response]]:
    try:
        responses = conn._session.receive_data(data)
        if "early" in conn._private:
            responses = conn._private.pop("early") + responses
        _flush(conn)
    except MintError as exc:
        raise _attach(exc, conn) from exc.__cause__
    return conn, responses


def _closed(conn: Conn) -> tuple[Conn, list[Response]]:
    responses, clean = conn._session.connection_lost()
    _drop_transport(conn)
    if clean:
        return conn, responses
    raise TransportError("closed", conn=conn, responses=responses)


def _drop_transport(conn: Conn) -> None:
    if conn._mailbox is not None:
        conn._mailbox.unregister(conn._transport, drop=True)
    conn._transport.close()


def stream(conn: Conn, message: object) -> tuple[Conn, list[Response]] | _Unknown:
    """Turn a mailbox message into responses, or :data:`UNKNOWN` if it is not this conn's.

    Raises:
        TransportError: the socket closed or failed; ``.responses`` has what came before.
        HTTPError: the server broke HTTP.
    """
    if not isinstance(message, SocketData | SocketClosed | SocketError):
        return UNKNOWN
    if message.socket is not conn._transport.sock:
        return UNKNOWN
    if isinstance(message, SocketData):
        return _process(conn, message.data)
    if isinstance(message, SocketClosed):
        return _closed(conn)
    _drop_transport(conn)
    conn._session.connection_lost()
    raise _attach(message.error, conn)


def recv(conn: Conn, byte_count: int, timeout: float | None) -> tuple[Conn, list[Response]]:
    """Read from a passive connection and return the responses (Mint's ``recv/3``).

    Args:
        byte_count: bytes to read; 0 reads whatever is available.
        timeout: seconds to wait (``None``: forever).

    Raises:
        TransportError: ``"timeout"``, or ``"closed"`` with ``.responses``.
    """
    if conn._mode != "passive":
        raise HTTPError("not_passive", conn=conn)
    if conn._held:
        data = b"".join(conn._held)
        conn._held.clear()
        return _process(conn, data)
    if conn._transport.closed:
        raise TransportError("closed", conn=conn)
    try:
        data = conn._transport.recv(byte_count, timeout)
    except TransportError as exc:
        if exc.reason != "timeout":
            conn._session.connection_lost()
            conn._transport.close()
        raise _attach(exc, conn) from exc.__cause__
    if not data:
        return _closed(conn)
    return _process(conn, data)


def close(conn: Conn) -> Conn:
    """Close the connection; also takes its socket off its mailbox with its queued input."""
    if conn._mailbox is not None:
        conn._mailbox.unregister(conn._transport, drop=True)
    closer = getattr(conn._session, "close", None)
    if closer is not None and not conn._transport.closed:
        try:
            closer()
            _flush(conn)
        except MintError:
            pass
    conn._transport.close()
    return conn


def is_open(conn: Conn, type: str = "read_write") -> bool:
    """Whether the connection can still read and/or write (``"read"``, ``"write"``)."""
    if conn._transport.closed:
        return False
    return bool(conn._session.is_open(type))


def protocol(conn: Conn) -> str:
    """``"http1"`` or ``"http2"``."""
    return str(conn._session.protocol)


def set_mode(conn: Conn, mode: str) -> Conn:
    """Switch between active and passive mode, losing no input already read."""
    if mode not in ("active", "passive"):
        raise HTTPError(("invalid_mode", mode), conn=conn)
    if mode == conn._mode:
        return conn
    if mode == "passive":
        if conn._mailbox is not None:
            conn._held.extend(conn._mailbox.unregister(conn._transport, drop=False))
    else:
        box = conn._mailbox if conn._mailbox is not None else _default_mailbox()
        conn._mailbox = box
        for data in conn._held:
            box.send(SocketData(conn._transport.sock, data))
        conn._held.clear()
        if not conn._transport.closed:
            box.register(conn._transport)
    conn._mode = mode
    return conn


def controlling_process(conn: Conn, new_mailbox: Mailbox) -> Conn:
    """Move an active connection's input, queued messages included, to ``new_mailbox``."""
    old = conn._mailbox
    conn._mailbox = new_mailbox
    if conn._mode != "active" or old is new_mailbox:
        return conn
    kept = old.unregister(conn._transport, drop=False) if old is not None else []
    for data in kept:
        new_mailbox.send(SocketData(conn._transport.sock, data))
    if not conn._transport.closed:
        new_mailbox.register(conn._transport)
    return conn


def get_socket(conn: Conn) -> socket.socket:
    """The connection's socket, as carried by its mailbox messages."""
    return conn._transport.sock


def open_request_count(conn: Conn) -> int:
    """Requests that have not yet received ``Done`` (or an error)."""
    return int(conn._session.open_request_count())


def ping(conn: Conn, payload: bytes | None = None) -> tuple[Conn, Ref]:
    """Send an HTTP/2 PING; its answer arrives as ``Pong(ref)``."""
    if protocol(conn) != "http2":
        raise HTTPError("unsupported_on_http1", conn=conn)
    try:
        ref: Ref = conn._session.ping(payload)
        _flush(conn)
    except MintError as exc:
        raise _attach(exc, conn) from exc.__cause__
    return conn, ref


def cancel_request(conn: Conn, ref: Ref) -> Conn:
    """Reset the stream of ``ref`` with RST_STREAM(CANCEL) (HTTP/2; Mint's ``cancel_request``).

    Nothing more is reported for ``ref``; its queued body bytes are dropped and other
    requests on the connection go on. Unknown or finished refs are ignored. This is
    how a WebSocket over HTTP/2 is abandoned when the server does not end its stream
    in the time the caller allows after the close handshake (RFC 8441 5.1).

    Raises:
        HTTPError: ``"unsupported_on_http1"`` (an HTTP/1.1 request is ended by closing
            the connection).
    """
    cancel = getattr(conn._session, "cancel", None)
    if cancel is None:
        raise HTTPError("unsupported_on_http1", conn=conn)
    try:
        cancel(ref)
        if not conn._transport.closed:
            _flush(conn)
    except MintError as exc:
        raise _attach(exc, conn) from exc.__cause__
    return conn


def pending_bytes(conn: Conn, ref: Ref | None = None) -> int:
    """Body bytes waiting for the peer's HTTP/2 flow-control windows.

    Args:
        ref: a request (or WebSocket) reference; ``None`` for the whole connection.

    Returns:
        The bytes queued by :func:`request`/:func:`stream_request_body` that were
        not sent yet; they go out as :func:`stream`/:func:`recv` process the peer's
        WINDOW_UPDATEs. Always 0 on HTTP/1.1 (bytes are written at once).
    """
    counter = getattr(conn._session, "pending_bytes", None)
    return int(counter(ref)) if counter is not None else 0


def send_window(conn: Conn, ref: Ref | None = None) -> int:
    """The bytes the HTTP/2 peer lets us send now (Mint's ``get_window_size``).

    Args:
        ref: a request reference for its stream's window (never more than the
            connection's; 0 once the stream has ended), or ``None`` for the
            connection's window.

    Raises:
        HTTPError: ``"unsupported_on_http1"``.
    """
    window = getattr(conn._session, "send_window", None)
    if window is None:
        raise HTTPError("unsupported_on_http1", conn=conn)
    return int(window(ref))
