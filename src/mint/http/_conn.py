"""The ``Conn`` value and what both flavours of ``mint.http`` share.

The functions that do I/O are in ``_io.py`` (blocking), which ``scripts/unasync.py``
generates from ``mint/aio/_http.py`` (coroutines); the value, the helpers and the
functions that never wait are here, once, and ``mint.aio.http`` re-exports them.

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

import enum
import os
import socket
import ssl
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from mint._backend import ALPN_IDS, is_number, map_os_error
from mint.errors import HTTPError, MintError, Reason
from mint.http._http1 import Http1Session
from mint.http._types import Chunk, IOData, OpenKind, ProtocolName, Ref, Response, _Marker
from mint.mailbox import Mailbox, SocketClosed, SocketData


class _Unknown(enum.Enum):
    """Mint's ``:unknown``: the message is not this connection's.

    An enum of one member, so that type checkers narrow on it: after
    ``if result is mint.UNKNOWN: continue`` the result is the ``(conn, responses)``
    tuple (with a plain object only ``isinstance(result, tuple)`` narrowed it)."""

    UNKNOWN = "unknown"

    def __repr__(self) -> str:
        return "mint.UNKNOWN"

    __str__ = __repr__


UNKNOWN: Final = _Unknown.UNKNOWN

DEFAULT_CONNECT_TIMEOUT = 30.0
# How long connect() waits for an HTTP/2 server's first SETTINGS when no timeout is given.
DEFAULT_SETTINGS_TIMEOUT = 30.0


class Session(Protocol):
    """What a protocol session (HTTP/1.1 or HTTP/2) offers the facade. Sans-IO."""

    protocol: ProtocolName

    @property
    def closing(self) -> bool: ...
    def data_to_send(self) -> bytes: ...
    def open_request_count(self) -> int: ...
    def is_open(self, kind: str) -> bool: ...
    def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: IOData | _Marker | None,
        *,
        upgrade: str | None = None,
        scheme: str | None = None,
    ) -> Ref: ...
    def stream_request_body(self, ref: Ref, chunk: Chunk) -> None: ...
    def abandon(self, ref: Ref) -> None: ...
    def receive_data(self, data: bytes) -> list[Response]: ...
    def connection_lost(self, failure: Reason | None = None) -> tuple[list[Response], bool]: ...


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
        transport: Any,
        session: Any,
        *,
        scheme: str,
        host: str,
        port: int,
        mode: str,
        mailbox: Mailbox | None,
    ) -> None:
        # A Transport (mint.http) or an AsyncTransport (mint.aio.http): same attributes.
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
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (
            f"<mint.http.Conn {self.scheme}://{host}:{self.port} "
            f"{self._session.protocol} {self._mode} {state}>"
        )


# -- helpers of both flavours -----------------------------------------------------
def _attach(exc: MintError, conn: Conn) -> MintError:
    exc.conn = conn
    return exc


def _put_on(conn: Conn, box: Mailbox) -> None:
    """Have ``box`` deliver the connection's input, with an empty message first when
    responses are kept for the next ``stream`` (a window wait's): nothing else would
    bring them out before the server's next bytes, which may never come."""
    box.register(conn._transport)
    if "early" in conn._private:  # (responses, or an error kept with none: _keep_error)
        box.send(SocketData(conn._transport.sock, b""))


def _watch_from(conn: Conn, box: Mailbox) -> None:
    """:func:`_put_on`, now or, while a send reads the socket for the HTTP/2 windows
    (``_await_window``), when that wait ends: it puts the connection on its mailbox
    as it is then. ``set_mode`` and ``controlling_process`` called meanwhile (from
    another task) that registered at once had the mailbox take the wait's loop
    reader, and the wait never woke.

    A connection whose end nobody was told of yet (a call cancelled once its HTTP/1.1
    request was committed: ``_forsaken``) is closed, and its ``SocketClosed`` went to
    the mailbox it was on then, or to none: the new one gets one, to tell it."""
    transport = conn._transport
    if transport.closed:
        if "untold" in conn._private:
            box.send(SocketClosed(transport.sock))
        return
    if "ending" in conn._private:
        # (its end waits for a message the caller holds, with the socket read by no
        # mailbox: what a mailbox gave out now would count as held too; see _forsaken)
        return
    if not transport._waiter.in_window_wait():
        _put_on(conn, box)


def _reset_now(conn: Conn, ref: Ref) -> None:
    """Reset ``ref``'s HTTP/2 stream (CANCEL) from a call that cannot wait (a cancelled
    request's end, a 2xx ``new`` refuses): the RST_STREAM goes out as far as the socket
    takes it now, the rest as it drains (``send_later``), behind every send begun
    before it. Left for the next write, it never went while the caller only read."""
    conn._session.cancel(ref)
    if not conn._transport.closed:
        conn._transport.send_later(conn._session.data_to_send())


def _check_open(conn: Conn) -> None:
    """A closed connection takes no new request (nor upgrade, which is one in Mint):
    ``HTTPError("closed")``, as Mint's ``request/5``."""
    if conn._transport.closed:
        raise HTTPError("closed")


# The exact types of the timeouts recv is called with (subclasses take the long way).
_PLAIN_TIMEOUTS = frozenset({float, int, type(None)})


def _check_recv_args(conn: Conn, byte_count: object, timeout: object) -> None:
    """``recv``'s arguments (both flavours): an int ``byte_count`` >= 0, a number or
    ``None`` for ``timeout`` (a negative one runs out at once).

    Raises:
        HTTPError: ``("invalid_byte_count", n)``, ``("invalid_timeout", t)``.
    """
    if (
        byte_count.__class__ is int
        and byte_count >= 0
        and timeout.__class__ in _PLAIN_TIMEOUTS
        and timeout == timeout  # not NaN
    ):
        return  # the common call, checked without a function call
    if not (is_number(byte_count) and isinstance(byte_count, int) and byte_count >= 0):
        raise HTTPError(("invalid_byte_count", byte_count), conn=conn)
    if timeout is not None and not is_number(timeout):
        raise HTTPError(("invalid_timeout", timeout), conn=conn)


_TRANSPORT_OPTS = frozenset({"timeout", "send_timeout", "ssl_context", "cafile", "verify"})


def _check_transport_opts(opts: object, mailbox: object) -> dict[str, Any]:
    """``connect``'s ``transport_opts`` as a dict, their values checked, and its
    ``mailbox``: what would otherwise fail deep in ``ssl`` or ``socket`` (or, for a
    mailbox, after the socket is open) with a bare Python exception.

    Raises:
        HTTPError: ``("invalid_transport_opts", key, value)`` (key ``None``: the
            options are not a mapping), ``("invalid_mailbox", mailbox)``.
    """
    if mailbox is not None and (not isinstance(mailbox, Mailbox) or mailbox.closed):
        raise HTTPError(("invalid_mailbox", mailbox))
    if opts is None:
        return {}
    if not isinstance(opts, Mapping):
        raise HTTPError(("invalid_transport_opts", None, opts))
    checked = dict(opts)
    for key, value in checked.items():
        if key not in _TRANSPORT_OPTS:
            # A misspelt option ("timout") would leave a connect without the bound
            # the caller meant (Mint hands it to :gen_tcp, which refuses it).
            raise HTTPError(("invalid_transport_opts", key, value, "unknown option"))
    for key in ("timeout", "send_timeout"):
        timeout = checked.get(key)
        if timeout is not None and not (is_number(timeout) and timeout >= 0):
            raise HTTPError(("invalid_transport_opts", key, timeout))
    context = checked.get("ssl_context")
    if context is not None and not isinstance(context, ssl.SSLContext):
        raise HTTPError(("invalid_transport_opts", "ssl_context", context))
    cafile = checked.get("cafile")
    if cafile is not None:
        if not isinstance(cafile, str | bytes | os.PathLike):
            raise HTTPError(("invalid_transport_opts", "cafile", cafile))
        if not os.path.isfile(cafile) or not os.access(cafile, os.R_OK):
            raise HTTPError(("invalid_transport_opts", "cafile", cafile, "no readable file"))
    if "verify" in checked and type(checked["verify"]) is not bool:
        # (None too: connect's "if not verify" turned the checks off for it)
        raise HTTPError(("invalid_transport_opts", "verify", checked["verify"]))
    verify = checked.get("verify")
    if context is not None:
        # The caller's context is used as it is: an option beside it that it would not
        # honour is refused, not dropped (verify=True went through a context that
        # checked nothing, to a server of an unknown CA; cafile was never loaded).
        if cafile is not None:
            why = "given beside ssl_context: load it into the context"
            raise HTTPError(("invalid_transport_opts", "cafile", cafile, why))
        certs = context.verify_mode != ssl.CERT_NONE
        checks = certs and context.check_hostname
        if verify is not None and verify is not checks:
            does = (
                "checks certificates and host names"
                if checks
                else "checks certificates but not host names"
                if certs
                else "checks no certificate"
            )
            why = f"the ssl_context given {does}"
            raise HTTPError(("invalid_transport_opts", "verify", verify, why))
    return checked


def _check_address(host: object, port: object, hostname: object) -> None:
    """What ``socket`` would otherwise meet: a raw ``TypeError`` or ``OverflowError``,
    or worse, a port of 65536 or more taken modulo 65536 (another server's)."""
    if not isinstance(host, str) or not host:
        raise HTTPError(("invalid_host", host))
    if type(port) is not int or not 0 < port < 65536:
        raise HTTPError(("invalid_port", port))
    if hostname is not None and (not isinstance(hostname, str) or not hostname):
        raise HTTPError(("invalid_hostname", hostname))


def _unbracketed(host: str) -> str:
    """An IPv6 literal as a URL writes it (``"[::1]"``, RFC 3986 3.2.2) is the address
    inside: the brackets went to the resolver (``nxdomain``). ``Host`` and
    ``:authority`` put them back."""
    if len(host) > 2 and host[0] == "[" and host[-1] == "]" and ":" in host:
        return host[1:-1]
    return host


def _check_protocols(protocols: Sequence[str]) -> tuple[str, ...]:
    if isinstance(protocols, str):  # "http2" for ("http2",): refused as given
        raise HTTPError(("invalid_protocols", protocols))
    try:
        protos = tuple(protocols)
    except TypeError:
        raise HTTPError(("invalid_protocols", protocols)) from None
    if not protos or any(p not in ALPN_IDS for p in protos):
        raise HTTPError(("invalid_protocols", protos))
    return protos


def _make_session(protocol: str, scheme: str, host: str, port: int) -> Any:
    if protocol == "http2":
        try:
            from mint.http._http2 import Http2Session  # HTTP/2 lives in its own module
        except OSError as exc:
            # Its first import opens files (h2's modules): out of descriptors there is
            # the socket's own failure, as Mint would say it.
            raise map_os_error(exc) from exc

        return Http2Session(scheme=scheme, host=host, port=port)
    return Http1Session(scheme=scheme, host=host, port=port)


# -- the functions that never wait: the same objects in mint.http and mint.aio.http --
def _check_conn(conn: object) -> None:
    """A raw ``AttributeError`` on ``None`` (a connect that failed, say) otherwise."""
    if not isinstance(conn, Conn):
        raise HTTPError(("invalid_conn", f"not a connection: {conn!r}"))


def is_open(conn: Conn, type: OpenKind = "read_write") -> bool:
    """Whether the connection can still read and/or write (``"read"``, ``"write"``).

    Raises:
        HTTPError: ``("invalid_type", type)`` for any other ``type`` (Mint's guard).
    """
    _check_conn(conn)
    if type not in ("read_write", "read", "write"):
        raise HTTPError(("invalid_type", type))
    if conn._transport.closed:
        return False
    return bool(conn._session.is_open(type))


def protocol(conn: Conn) -> ProtocolName:
    """``"http1"`` or ``"http2"``."""
    _check_conn(conn)
    name: ProtocolName = conn._session.protocol
    return name


def controlling_process(conn: Conn, mailbox: Mailbox) -> Conn:
    """Move an active connection's input, queued messages included, to ``mailbox``.

    Raises:
        HTTPError: ``("invalid_mailbox", mailbox)`` when it is not an open
            :class:`mint.Mailbox` (the connection then stays where it was).
    """
    _check_conn(conn)
    if not isinstance(mailbox, Mailbox) or mailbox.closed:
        raise HTTPError(("invalid_mailbox", mailbox), conn=conn)
    old = conn._mailbox
    conn._mailbox = mailbox
    if conn._mode != "active" or old is mailbox:
        return conn
    kept = old.unregister(conn._transport, drop=False) if old is not None else []
    for data in kept:
        mailbox.post_input(conn._transport, data)
    _watch_from(conn, mailbox)
    return conn


def get_socket(conn: Conn) -> socket.socket:
    """The connection's socket, as carried by its mailbox messages."""
    _check_conn(conn)
    sock: socket.socket = conn._transport.sock
    return sock


def open_request_count(conn: Conn) -> int:
    """Requests that have not yet received ``Done`` (or an error).

    On HTTP/2, as Mint counts: the streams that hold one of the server's
    ``MAX_CONCURRENT_STREAMS`` (RFC 9113 5.1.2), so also one whose ``Done`` came while
    the caller's body (or a WebSocket's Close) is still to go, until it has ended or
    been cancelled; a new request is refused (``too_many_concurrent_requests``) only
    when this reaches the server's limit.

    A closed connection has none: nothing more can come for them (HTTP/2 counted a
    request in flight at ``close`` for good, and so did HTTP/1.1 after a response it
    refused, while an HTTP/1.1 end with requests in line counted none).
    """
    _check_conn(conn)
    if conn._transport.closed:
        return 0
    return int(conn._session.open_request_count())


def pending_bytes(conn: Conn, ref: Ref | None = None) -> int:
    """Body bytes waiting for the peer's HTTP/2 flow-control windows.

    Args:
        ref: a request (or WebSocket) reference; ``None`` for the whole connection.

    Returns:
        The bytes queued by :func:`request`/:func:`stream_request_body` that were
        not sent yet; they go out as :func:`stream`/:func:`recv` process the peer's
        WINDOW_UPDATEs. Always 0 on HTTP/1.1 (bytes are written at once).
    """
    _check_conn(conn)
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
