"""``mint.websocket.recv``, ``stream_request_body`` and ``stream``, with an optional C hot path.

The Python functions (``mint.http.recv`` and ``mint.http.stream``, which serve
WebSockets as well, and ``mint.websocket._io.stream_request_body``, mint.http's under
the contract's argument name) are the reference. When the C extension
``mint._iospeedups`` is built, the three public names are its functions instead: they
take the steady state of an upgraded HTTP/1.1 connection on a plain socket (one
blocking read, or, when the last read left bytes in the socket, a read that does not
wait first; one send that takes all of the frame; or, in active mode, the mailbox's
message of the socket's bytes turned into ``Data``) in C, and hand every other case to
the Python functions unchanged. (The mailbox's own wait and read have their C path in
:mod:`mint.mailbox`.) On a TLS socket (wss), a passive connection's drained read (a
``poll``, then one read of the ``SSLSocket``, its burst left to the transport) and its
send (one ``SSLSocket.send``) are taken in C as well, through the ``SSLSocket``'s own
methods: what TLS wants (to write before it reads, or to wait) goes to Python.

Why: in a 16-byte request/response round trip a bare socket costs about 60 µs of
client CPU (loopback, client and server on their own cores), and the Python chain
between the caller and the socket (websocket → http → transport → backend, a dozen
checks of the connection's state, the ``Data`` built) is paid again on every
wake-up. Paired against the Python functions, the C pair took 4 to 5 percent off the
client's CPU per round trip; with ``encode``/``decode`` in C too (``mint._speedups``),
a round trip costs 1.10 times the bare socket's CPU, against 1.24 times. The C
functions make the same checks, on the same slots, so they hold no state of their
own and the two paths cannot disagree about a connection.
``MINT_NO_SPEEDUPS=1`` turns them off along with the codec's.

The C read takes what the socket holds in one bytes object (a large message is read
straight into one object sized by ``FIONREAD``, not read in parts and joined). The
outcomes the C path does not finish itself come back here, in :func:`_recv_tail` (the
end of stream, a timeout, a failure) and :func:`_send_rest` (a send the socket took in
part), which end them the way the Python path does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mint._backend import READ_BURST, Waiter, map_os_error
from mint._speedup import load_speedup
from mint._transport import Transport
from mint.errors import MintError, TransportError
from mint.http import _io as _http
from mint.http._conn import Conn, _attach
from mint.http._types import Data, Response
from mint.mailbox import SocketData
from mint.websocket import _io as _ws

__all__ = ["recv", "stream", "stream_request_body"]


def _recv_tail(conn: Conn, outcome: bytes | OSError) -> tuple[Conn, list[Response]]:
    """End a C read that found no bytes, as the Python path would.

    ``outcome`` is what the read gave: ``b""`` (the peer closed) or the ``OSError``
    (``EAGAIN`` only from the blocking read, when the socket's timeout ran out: a read
    that does not wait and finds nothing waits next, in C).
    """
    if type(outcome) is bytes:
        assert not outcome
        return _http._closed(conn)
    assert isinstance(outcome, OSError)
    if isinstance(outcome, BlockingIOError):
        # A blocking socket says EAGAIN only when SO_RCVTIMEO ran out.
        raise _http._read_failed(conn, TransportError("timeout")) from None
    raise _http._read_failed(conn, map_os_error(outcome)) from outcome


def _send_rest(conn: Conn, rest: memoryview) -> Conn:
    """Send what the C path's one send left of a frame (the socket's buffer filled)."""
    try:
        conn._transport.send(rest)
    except MintError as exc:
        raise _attach(exc, conn) from exc.__cause__
    return conn


_c = load_speedup("mint._iospeedups")

if TYPE_CHECKING or _c is None:
    recv = _http.recv
    stream_request_body = _ws.stream_request_body
    stream = _ws.stream
else:
    # (The C functions come back with the Python functions' documentation, for help().)
    recv, stream_request_body, stream = _c.setup(
        Conn,
        Transport,
        Waiter,
        Data,
        SocketData,
        READ_BURST,
        _http.recv,
        _ws.stream_request_body,
        _ws.stream,
        _recv_tail,
        _send_rest,
        _http._send_failed,
    )
