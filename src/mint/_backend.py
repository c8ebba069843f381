"""The transport edge's common ground, and its blocking backend.

Two transports exist: ``mint._transport.Transport`` (blocking calls) and
``mint.aio._transport.AsyncTransport`` (coroutines). Only the second is written by
hand; ``scripts/unasync.py`` generates the first from it. What they run differs in
one place only, *how to wait for a socket*, and that lives in a backend:

* here, :class:`Waiter` waits with ``poll`` and :func:`open_tcp` is
  ``socket.create_connection``;
* ``mint.aio._backend`` has ``AsyncWaiter`` (event-loop readers and writers) and an
  ``open_tcp`` coroutine.

Everything that never waits is written once, here: the error mapping, the TLS
context, and :class:`BaseTransport` (the mailbox's non-blocking read, ``close``).

No read or write that is not meant to wait ever does: TLS sockets are non-blocking
for their whole life, so the mailbox can read one whose record is only half there
(``SSLWantReadError`` just means "no message yet"), and every call on a plain socket
passes ``MSG_DONTWAIT`` (``BaseTransport._nowait``). ``recv``/``send`` try the
socket first and wait only when it would block, which is one system call in the
common case of a ready socket.

The one call meant to wait is :meth:`Waiter.wait_and_recv`, the read of a passive
connection whose socket was found empty (every message of a request/response
exchange). The blocking backend keeps a plain socket in blocking mode for it, with
the timeout in ``SO_RCVTIMEO``: the wait and the read are then one ``recv`` that
sleeps in the kernel, where ``poll`` and then ``recv`` cost a wait-queue set-up and
a second system call (about 5 µs more CPU per round trip on loopback, measured
against the C echo server in ``bench/``).

Every ``OSError`` and ``ssl.SSLError`` is turned into :class:`mint.TransportError`
here, chained with ``from``, so nothing raw reaches a caller.
"""

from __future__ import annotations

import array
import errno
import fcntl
import math
import re
import select
import socket
import ssl
import struct
import termios
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from mint._speedup import load_speedup
from mint.errors import HTTPError, TransportError

# Bytes asked of the kernel per read. 64 KiB matches the default loopback window
# and one TLS read is at most one 16 KiB record anyway, so the loop below drains more.
READ_SIZE = 65536
# Upper bound of what one "read what is there" call gathers, so one busy socket
# cannot starve the others that share a mailbox.
READ_BURST = 1 << 20
# A passive asyncio read that finds bytes left by the last one takes them without a
# wait, and so without giving the event loop a turn: a consumer slower than its
# peer never found the socket empty, and every other task, timer and timeout of the
# loop waited for as long as the flood lasted (scale15: 3 s, the whole run). Such a
# read gives the loop a turn first (``asyncio.sleep(0)``) when this long has passed
# since the connection last gave one: a loop is held about that long at most (plus
# one read's work), and a steady stream pays for a turn (some 10 us) 200 times a
# second at most. (A turn every 4 such reads cost 2.4% of a 1 MiB echo's CPU.)
EAGER_SECONDS = 0.005

# recv_ready's plain-socket read in C (one bytes object per burst), when built.
_iospeedups = load_speedup("mint._iospeedups")
_recv_ready = None if _iospeedups is None else _iospeedups.recv_ready

# What a waiter waits for (poll's bits; the asyncio backend reads them as flags too).
READ = select.POLLIN
WRITE = select.POLLOUT

# Backpressure on HTTP/2 body bytes queued beyond the peer's flow-control windows:
# ``None`` here, so a blocking ``stream_request_body`` queues (up to the session's
# bound) and the caller's next ``stream``/``recv`` drains the queue, as Mint does.
# The asyncio flavour sets a high-water mark (see ``mint.aio._backend``).
WINDOW_HIGH_WATER: int | None = None
CONNECTION_HIGH_WATER: int | None = None

ALPN_IDS = {"http1": "http/1.1", "http2": "h2"}

# FIONREAD's argument and result (an int), for sizing a bulk read (see BaseTransport._read_on).
_FIONREAD = getattr(termios, "FIONREAD", None)


def _bytes_held(sock: socket.socket) -> int | None:
    """What the kernel holds for ``sock`` to read (FIONREAD): None where the platform
    has no FIONREAD, -1 when the call failed."""
    if _FIONREAD is None:
        return None
    avail = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), _FIONREAD, avail, True)
    except OSError:
        return -1
    return max(avail[0], 0)


# SO_RCVTIMEO's argument, a struct timeval; its seconds capped where Linux already
# reads "forever" (and far from overflowing a C long).
_TIMEVAL = struct.Struct("@ll")
_TIMEVAL_MAX_SECONDS = 1 << 30

WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)

_TLS_VERIFY_ALERTS = {
    # X509 verify codes (openssl x509_vfy.h) to the TLS alert a client would send.
    2: "unknown_ca",
    18: "unknown_ca",
    19: "unknown_ca",
    20: "unknown_ca",
    21: "unknown_ca",
    10: "certificate_expired",
    9: "certificate_expired",  # not yet valid: Erlang's ssl says cert_expired for both
    62: "handshake_failure",  # host name mismatch: Erlang's ssl reports it this way
    64: "handshake_failure",  # IP address mismatch: the same check, for an address
}


def reader_dies_on_error(loop: Any) -> bool:
    """Whether ``loop``'s ``add_reader`` stops for good at a socket error.

    uvloop's does: when a socket's poll reports an error (a reset: POLLERR), it runs
    the reader once and closes the socket's poll handle. A reset that came in the same
    wake-up as bytes is then never seen: the reader read the bytes, and nothing calls
    it again, so a wait on the socket never ends. Readers on such a loop ask
    ``error_pending`` at each wake-up and register anew when it says so: the new poll
    reports the error again, and a read then meets it, cause and all. asyncio's own
    loops keep reporting the error (level-triggered), and pay nothing.
    """
    return type(loop).__module__.partition(".")[0] == "uvloop"


def error_probe(fd: int) -> Any:
    """A poll of ``fd`` for :func:`error_pending`: registered for no event, since
    errors are always reported."""
    probe = select.poll()
    probe.register(fd, 0)
    return probe


def error_pending(probe: Any) -> bool:
    """Whether the socket of ``probe`` has an error pending, or has hung up (a reset
    leaves both; a read that met the error cleared it, not the hang-up). Either is left
    as it is: the next read still meets it, unlike a ``SO_ERROR`` look, which clears it."""
    return bool(probe.poll(0))


_ALERT_IN_MESSAGE = re.compile(r"\balert ([a-z][a-z ]*[a-z])")


def map_os_error(exc: BaseException) -> TransportError:
    """Turn an exception from ``socket``/``ssl`` into the TransportError a caller matches on."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        # getattr: an error built by hand (``stream(conn, SocketError(sock, e))``)
        # has none of the attributes the ssl module sets on the ones it raises.
        alert = _TLS_VERIFY_ALERTS.get(getattr(exc, "verify_code", -1), "bad_certificate")
        return TransportError(
            ("tls_alert", alert, getattr(exc, "verify_message", None) or str(exc))
        )
    if isinstance(exc, ssl.SSLZeroReturnError | ssl.SSLEOFError):
        return TransportError("closed")
    if isinstance(exc, ssl.SSLError):
        name = str(getattr(exc, "reason", None) or "").lower()
        if not name:
            # OpenSSL names some alerts only in the message ("[SSL] tlsv1 alert no
            # application protocol (_ssl.c:1006)"): Mint's name is in there.
            found = _ALERT_IN_MESSAGE.search(str(exc))
            name = "alert_" + found.group(1).replace(" ", "_") if found else "tls_error"
        if "alert" in name:
            return TransportError(("tls_alert", name.split("alert_", 1)[-1], str(exc)))
        return TransportError(("tls_alert", name, str(exc)))
    if isinstance(exc, socket.gaierror):
        return TransportError("nxdomain")
    if isinstance(exc, TimeoutError | socket.timeout):
        return TransportError("timeout")
    if isinstance(exc, ConnectionRefusedError):
        return TransportError("econnrefused")
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return TransportError("closed")
    if isinstance(exc, OSError):
        code = errno.errorcode.get(exc.errno or 0)
        if code in ("EHOSTUNREACH", "ENETUNREACH"):
            return TransportError("ehostunreach")
        if code in ("EBADF", "ENOTCONN", "ESHUTDOWN"):
            return TransportError("closed")
        if code:
            # Mint's reason is the POSIX name as an atom (:emfile, :eaddrnotavail, ...).
            return TransportError(code.lower())
        return TransportError(("os_error", str(exc)))
    return TransportError(("os_error", repr(exc)))


def make_ssl_context(
    *,
    ssl_context: ssl.SSLContext | None,
    cafile: str | None,
    verify: bool,
) -> ssl.SSLContext:
    """The client context: the caller's, or a new one with verification on unless
    ``verify=False``. ALPN is set when the socket is wrapped (:func:`wrap_tls`).

    Raises:
        HTTPError: ``("invalid_transport_opts", "cafile", cafile, detail)``: the file
            holds no certificate OpenSSL can load.
    """
    if ssl_context is not None:
        return ssl_context
    try:
        ctx = ssl.create_default_context(cafile=cafile)
    except ssl.SSLError as exc:
        raise HTTPError(("invalid_transport_opts", "cafile", cafile, str(exc))) from exc
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ALPN is a context's setting in Python's ssl; OpenSSL copies it into each connection
# as the socket is wrapped. Set right before the wrap and under this lock, connects
# that share a caller's context (threads, or tasks between their awaits) each offer
# their own protocols. The context keeps the last ones set.
_ALPN_LOCK = threading.Lock()


def wrap_tls(
    ctx: ssl.SSLContext, raw: socket.socket, server_hostname: str, alpn: Sequence[str]
) -> ssl.SSLSocket:
    """``raw`` wrapped for a client handshake (not run yet) offering ``alpn``."""
    with _ALPN_LOCK:
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        # suppress_ragged_eofs=False: a TCP end without close_notify (a truncation,
        # RFC 8446 6.1) or a reset under TLS is a failure, SSLEOFError, not the
        # stream's end: a body delimited by the close is then cut short, not Done
        # (RFC 9112 9.8), as it is on a plain socket's reset.
        return ctx.wrap_socket(
            raw,
            server_hostname=server_hostname,
            do_handshake_on_connect=False,
            suppress_ragged_eofs=False,
        )


def is_number(value: object) -> bool:
    """A real number of seconds (or bytes): an int or a float, not a bool, not NaN.

    The one check of a timeout (``recv``, ``connect``, ``receive``, ``areceive``).
    """
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and value == value  # NaN is the one value not equal to itself
    )


# A timeout at least this long (about 31 years; inf) is none: the waits cannot take it
# (``settimeout`` and the poll calls overflow, a clock cannot add it).
FOREVER = 1e9
# The longest one poll()/epoll wait takes (a C int of milliseconds, about 24.8 days):
# a longer wait raised OverflowError ("timeout is too large"); the waits loop on their
# deadline, so one that wakes at the bound waits again.
POLL_MAX_MS = 2**31 - 1
POLL_MAX_S = POLL_MAX_MS // 1000


def wait_timeout(timeout: float | None) -> float | None:
    """A checked wait timeout as a clock can add it: ``None`` from :data:`FOREVER` on,
    and no less than ``-FOREVER`` (negative is "at once"; ``-10**400`` overflowed)."""
    if timeout is None or timeout >= FOREVER:
        return None
    return timeout if timeout > -FOREVER else -FOREVER


def connect_timeout(timeout: float | None) -> float | None:
    """A connect timeout as the socket layer takes it: ``None`` from :data:`FOREVER` on."""
    return None if timeout is not None and not timeout < FOREVER else timeout


# -- the blocking backend ------------------------------------------------------------
def open_tcp(host: str, port: int, timeout: float | None) -> socket.socket:
    """A connected, non-blocking TCP socket with ``TCP_NODELAY`` (frames go out at once)."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except BlockingIOError as exc:  # timeout 0: the connect could not finish at once
        raise TransportError("timeout") from exc
    except OSError as exc:
        raise map_os_error(exc) from exc
    except UnicodeError as exc:  # a name IDNA cannot encode: no such host
        raise TransportError("nxdomain") from exc
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise map_os_error(exc) from exc
    return sock


# Held while a blocking connection's interrupted send is written from a wait, or its
# writing from the waits is stopped (Waiter.run_flush, flush_later): those run in
# whichever thread waits, and are rare; one lock for all costs no connection a lock.
_FLUSHING = threading.Lock()


class _NoTurn:
    """``Waiter.window_turn``: blocking code never waits for the windows (its high-water
    marks are None), and one thread reads; the generated code calls these all the same."""

    __slots__ = ()

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


_NO_TURN = _NoTurn()


class Waiter:
    """Blocks until one socket is ready, with ``poll`` (one object per transport, reused).

    A plain socket is put in blocking mode here, for :meth:`wait_and_recv` (see the
    module docstring); every other call on it passes ``MSG_DONTWAIT``.
    """

    __slots__ = ("_blocking", "_box", "_fd", "_flush", "_mask", "_poll", "_sock", "_timeout")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self._poll: Any = None
        self._mask = 0
        # The SO_RCVTIMEO in force (None: no timeout), set again only when it changes.
        self._timeout: float | None = None
        self._blocking = not isinstance(sock, ssl.SSLSocket)
        if self._blocking:
            sock.setblocking(True)
        # What writes the rest of an interrupted send (see flush_later), and the
        # mailbox that owns the socket (see taken), else None.
        self._flush: Callable[[], bool] | None = None
        self._box: Any = None

    def wait_and_recv(self, size: int, timeout: float | None) -> bytes:
        """Wait up to ``timeout`` seconds (``None``: forever; > 0) and read up to ``size`` bytes.

        Raises:
            TransportError: ``"timeout"``.
            OSError: from the socket, for the caller to map.
        """
        sock = self._sock
        if self._flush is not None:
            # A send left bytes: wait for input and for the socket to take them.
            deadline = None if timeout is None else time.monotonic() + timeout
            self.wait(READ, deadline)
            if deadline is not None:
                timeout = max(deadline - time.monotonic(), 1e-6)
        if self._blocking:
            if timeout != self._timeout:
                self._set_timeout(timeout)
            try:
                return sock.recv(size)
            except BlockingIOError:
                # A blocking socket says EAGAIN only when SO_RCVTIMEO ran out.
                raise TransportError("timeout") from None
        # TLS: wait, then read, until the same deadline; TLS may want to write first.
        deadline = None if timeout is None else time.monotonic() + timeout
        mask = READ
        while True:
            self.wait(mask, deadline)
            try:
                return sock.recv(size)
            except WOULD_BLOCK as exc:
                mask = WRITE if isinstance(exc, ssl.SSLWantWriteError) else READ

    def _set_timeout(self, timeout: float | None) -> None:
        # Also called by mint._iospeedups' recv before its own blocking read.
        if timeout is None:
            seconds = micros = 0  # a zero timeval is "no timeout"
        else:
            # Rounded up, and at least 1 µs: a zero timeval would mean "forever".
            seconds, micros = divmod(max(math.ceil(timeout * 1e6), 1), 1_000_000)
            seconds = min(seconds, _TIMEVAL_MAX_SECONDS)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _TIMEVAL.pack(seconds, micros))
        self._timeout = timeout

    def wait(self, mask: int, deadline: float | None) -> None:
        """Return once the socket is ready for ``mask`` (READ or WRITE).

        A wait to read also writes, as the socket drains, what an interrupted send
        left (:meth:`flush_later`): the caller waiting for the peer's answer is the
        only one left to send the rest of the message it answers.

        Raises:
            TransportError: ``"timeout"`` once ``deadline`` (``time.monotonic()``) passes.
        """
        flushing = mask == READ and self._flush is not None
        if flushing:
            mask = READ | WRITE
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(self._fd, mask)
            self._mask = mask
        elif self._mask != mask:
            self._poll.modify(self._fd, mask)
            self._mask = mask
        while True:
            if deadline is None:
                wait_ms = None
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if flushing:
                        # A wait with no time left (a recv polled with a timeout of 0)
                        # still writes what the socket takes now: polled so, the rest
                        # of a body the peer's WINDOW_UPDATEs let go never went out.
                        self.run_flush()
                    raise TransportError("timeout")
                wait_ms = min(max(int(remaining * 1000 + 0.999), 1), POLL_MAX_MS)
            ready = self._poll.poll(wait_ms)
            if not ready:
                continue
            if not flushing:
                return
            if self.run_flush():
                flushing, self._mask = False, READ
                self._poll.modify(self._fd, READ)
            if ready[0][1] & ~WRITE:
                return  # input (or an end or error, which the read finds)

    # Blocking code writes from the one thread that owns the connection: no send is
    # ever under way when another starts (see ``AsyncWaiter.write_turn``).
    writing = False

    def write_turn(self, data: bytes, pass_turn: Callable[[], None]) -> None:
        """(see ``AsyncWaiter.write_turn``)"""

    def start_write(self) -> None:
        """(see ``AsyncWaiter.write_turn``)"""

    # (see AsyncWaiter: nobody waits for a turn here)
    window_waiters = 0
    reading = False

    def pause(self, seconds: float) -> None:
        """(see ``AsyncWaiter.pause``): never called, blocking code has no window wait."""

    def turn(self) -> None:
        """(see ``AsyncWaiter.turn``): blocking code has no loop to give a turn to."""

    def window_turn(self) -> _NoTurn:
        """(see ``AsyncWaiter.window_turn``): one thread reads, nobody waits for it."""
        return _NO_TURN

    def in_window_wait(self) -> bool:
        """(see ``AsyncWaiter.in_window_wait``): the blocking flavour has no window wait."""
        return False

    def pass_turn(self) -> bytes:
        """(see ``AsyncWaiter.pass_turn``): nobody ever waits in line here."""
        return b""

    def owe(self, data: bytes) -> None:
        """(see ``AsyncWaiter.owe``): never called, nobody holds the turn here."""
        raise AssertionError("no send holds the turn in blocking code")

    def flush_later(self, flush: Callable[[], bool] | None) -> None:
        """Finish an interrupted write (a ``send_timeout``) as the socket drains, or
        (``None``) stop doing so.

        Blocking code has no loop to do it in the background. The caller's next
        send does, and until then its waits for input: a passive read's
        (:meth:`wait`), or the mailbox's that owns the socket. Left for the next
        send only, the rest of a message waited for ever behind a caller that
        waited for the peer's answer to it.
        """
        with _FLUSHING:  # (waits for a flush under way in another thread)
            self._flush = flush
        if self._box is not None:
            self._box._flush_when_writable(self._fd, flush is not None)

    def run_flush(self) -> bool:
        """Write what an interrupted send left, as far as the socket takes it now:
        True once nothing is left (or nothing was). For the waits that do it (ours,
        a mailbox's in any thread), one at a time: two threads' waits on one mailbox
        wrote the same bytes twice, and the send of the thread that owns the
        connection took them while another wrote them (:meth:`flush_later` waits)."""
        with _FLUSHING:
            flush = self._flush
            if flush is None:
                return True
            if not flush():
                return False
            self._flush = None
        if self._box is not None:
            self._box._flush_when_writable(self._fd, False)
        return True

    def release_reader(self) -> None:
        """Blocking code registers no loop reader (see ``AsyncWaiter.release_reader``)."""

    def release_timer(self) -> None:
        """Blocking code arms no loop timer (see ``AsyncWaiter.release_timer``)."""

    def taken(self, box: Any = None) -> None:
        """(see ``AsyncWaiter.taken``): mailbox ``box`` waits on the socket now, and
        writes what a send left as it drains (:meth:`flush_later`)."""
        self._box = box
        if box is not None and self._flush is not None:
            box._flush_when_writable(self._fd, True)

    def given_back(self) -> None:
        """(see ``AsyncWaiter.given_back``)."""
        self._box = None

    @property
    def owned(self) -> bool:
        """(see ``AsyncWaiter.owned``): blocking reads register no loop reader."""
        return False

    def close(self) -> None:
        """Nothing to release (the poll object holds no descriptor of its own)."""

    def abandon(self) -> None:
        """Nothing holds the socket between waits here (see AsyncWaiter.abandon)."""


# -- what both transports share ------------------------------------------------------
class BaseTransport:
    """A connected socket (plain or TLS): the parts that never wait."""

    __slots__ = (
        "_drained",
        "_eager",
        "_failure",
        "_flush_failure",
        "_nowait",
        "_unread",
        "_unsent",
        "_waiter",
        "closed",
        "owed_answers",
        "reader_busy",
        "send_timeout",
        "sock",
        "tls",
        "unstreamed",
    )

    _waiter: Any

    def __init__(self, sock: socket.socket, *, tls: bool) -> None:
        self.sock = sock
        self.tls = tls
        # The flags of every call that must not wait: a plain socket may be in
        # blocking mode (see Waiter); ``ssl.SSLSocket`` takes no flags, and is never.
        self._nowait = 0 if isinstance(sock, ssl.SSLSocket) else socket.MSG_DONTWAIT
        self.closed = False
        # How long a send may wait for the socket to take more (transport_opts'
        # send_timeout; None: as long as it takes).
        self.send_timeout: float | None = None
        # Bytes a cancelled (or interrupted) send still owes the peer: they go first.
        # ``b""`` whenever nothing is owed (what the C paths check); a bytearray once
        # they go out a part at a time (see _flush_unsent) or pile up (_owe).
        self._unsent: bytes | bytearray = b""
        # What reading made us write behind them since the socket last took everything
        # (PING and SETTINGS acks, WINDOW_UPDATEs): see mint.aio._http._answer.
        self.owed_answers = 0
        # How writing them failed, if it did (see send_failure).
        self._flush_failure: TransportError | None = None
        # Bytes a cancelled (or timed-out) recv had read: the next read returns them.
        # ``b""`` is an end a read met after its bytes (see keep_end); ``_failure``
        # then says whether it was a failure rather than the end of stream.
        self._unread: bytes | None = None
        self._failure: OSError | None = None
        # Set by a mailbox while an event loop's reader on this socket is its own.
        self.reader_busy = False
        # The SocketData (with bytes) a mailbox made of this socket's input and no
        # ``stream`` has taken yet, queued or handed out: an asyncio window wait must
        # not read past one a caller holds (see ``Mailbox.handed_out``).
        self.unstreamed = 0
        # The last passive read emptied the (plain) socket: the next one waits first
        # rather than fail a read (EAGAIN, an exception) and then wait.
        self._drained = False
        # When a passive read last gave the event loop a turn before taking what was
        # there without a wait (time.monotonic(); see EAGER_SECONDS).
        self._eager = 0.0

    def alpn_protocol(self) -> str | None:
        if isinstance(self.sock, ssl.SSLSocket):
            return self.sock.selected_alpn_protocol()
        return None

    def _read_more(self, first: bytes) -> list[bytes]:
        """``first`` (a wait's read that filled its buffer) and what the socket holds after it."""
        burst = [first]
        self._drained = self._read_on(burst)
        return burst

    def _read_on(self, parts: list[bytes]) -> bool:
        """Append what the socket already holds to ``parts``, without waiting.

        Goes on while the last read filled its buffer, up to READ_BURST in all.
        Returns True when the socket was found empty. A failure or the end of stream
        after the bytes already read is left for the next read.

        A plain socket's bulk is read in one call, into one ``bytes`` that FIONREAD
        sizes, and every part is a read's own object: a caller that can take the parts
        as they are (a WebSocket's bytes, see ``recv_parts``) copies nothing, where
        reading into a scratch buffer meant one more copy of every byte to join them.
        """
        if self.tls:
            return self._read_on_tls(parts)
        sock = self.sock
        if len(parts[-1]) < READ_SIZE:
            return True
        room = READ_BURST - sum(map(len, parts))
        nowait = self._nowait
        while room > 0:
            size = min(room, READ_SIZE)
            held = _bytes_held(sock)
            if held is not None:
                if held < 0:
                    return False  # unknown: the next read finds out
                if held == 0:
                    return True
                size = min(room, held)
            try:
                more = sock.recv(size, nowait)
            except WOULD_BLOCK:
                return True
            except OSError:
                return False
            if not more:
                return False
            parts.append(more)
            room -= len(more)
            if len(more) < size:
                return True
        return False

    def _read_on_tls(self, parts: list[bytes]) -> bool:
        """:meth:`_read_on` for TLS, where one read gives one record (16 KiB at most),
        so a short read says nothing about what is left.

        Reads on while OpenSSL holds decrypted bytes (``pending()``, which ``poll``
        cannot see) or the socket holds more records, so a large message comes in one
        burst rather than one call per record. How much the socket holds is asked
        (FIONREAD) only once those bytes are read, counting each record's plaintext
        against them: that undercounts what a record took, so at worst one read too
        many finds the socket empty. Empty means both are empty: OpenSSL reads no
        record ahead, so nothing else is hidden from the next wait.

        A burst never ends inside a record (it may pass READ_BURST by the rest of
        one): bytes left decrypted in OpenSSL would wait, unseen by ``poll``, for the
        next bytes on the socket, which a mailbox that owns this socket waits for.
        """
        sock: Any = self.sock
        room = READ_BURST - sum(map(len, parts))
        held = 0  # the socket's bytes at the last look, less the plaintext read since
        while True:
            pending = sock.pending()
            if not pending:
                if room <= 0:
                    return False  # a full burst: what the socket holds is for the next
                if held <= 0:
                    asked = _bytes_held(sock)
                    if asked is None:
                        held = READ_BURST  # no FIONREAD: read until a read finds nothing
                    elif asked < 0:
                        return False  # unknown: the next read finds out
                    elif asked == 0:
                        return True
                    else:
                        held = asked
            try:
                more = sock.recv(max(min(room, READ_SIZE), pending))
            except ssl.SSLWantWriteError:
                return False  # TLS must write first: the next read finds out, not a wait
            except WOULD_BLOCK:
                return True  # the rest of a record is still to come
            except OSError as exc:
                self.keep_end(exc)
                return False
            if not more:
                self.keep_end(b"")
                return False
            parts.append(more)
            room -= len(more)
            held -= len(more)

    def send_now(self, data: bytes | bytearray | memoryview) -> int:
        """Write what the socket takes of ``data`` at once: how many bytes it took (0
        when it would wait, when an interrupted send still owes the peer bytes, which
        must go first, or when another task's send is under way, whose frame must not
        be cut into). The caller hands the rest to ``send``, which waits its turn.

        ``send``'s common case without entering it: on the asyncio flavour that is one
        coroutine less per message sent.
        """
        if self.closed:
            raise TransportError("closed")
        if self._unsent or self._waiter.writing:
            return 0
        try:
            return self.sock.send(data, self._nowait)
        except WOULD_BLOCK:
            return 0
        except OSError as exc:
            raise self.send_failure(exc) from exc

    def send_parting(self, data: bytes) -> None:
        """Last words before ``close`` (HTTP/2's GOAWAY): one try, never a wait, no error.

        ``close`` must end the connection whatever the peer does. Waiting to write
        made it hang for ever behind a peer that stopped reading (another task's send
        waiting its turn, or bytes an interrupted send still owed), and a ``close``
        cancelled there left the socket open. What an interrupted send owes goes first,
        as far as the socket takes it at once; the words go only after it, and only
        as far as the socket takes them: the peer learns of the end from the close.
        """
        if self.closed or self._waiter.writing:
            return  # (another task's frame is going out: the words would cut into it)
        self._waiter.flush_later(None)
        try:
            if self._flush_unsent() and data:
                self.send_now(data)
        except TransportError:
            pass  # the connection is gone: nothing to say goodbye to

    def send_failure(self, exc: OSError) -> TransportError:
        """What a failed send reports: why the background write of an interrupted send
        failed, once one did, else ``exc`` mapped.

        After that write failed (the peer reset the connection, say), a TLS socket
        still holds OpenSSL's half-done write, and the next ``SSL_write`` of other
        bytes fails with OpenSSL's ``BAD_LENGTH``: ``("tls_alert", "bad_length")``
        would then be reported for a connection the peer closed.
        """
        return self._flush_failure or map_os_error(exc)

    def send_later(self, data: bytes) -> None:
        """Commit ``data`` without waiting: what the socket takes now goes, the rest
        after every send begun before it (from the loop, or with the next send).

        For what a cancelled call must still say (an HTTP/2 RST_STREAM behind the
        HEADERS it committed): it cannot wait any more.
        """
        if self.closed or not data:
            return
        waiter = self._waiter
        if waiter.writing:
            waiter.owe(data)  # in line, behind the sends waiting for their turn
            return
        waiter.flush_later(None)  # (no wait writes what is owed while it grows)
        self._owe(data)
        if not self._flush_unsent():
            waiter.flush_later(self._flush_unsent)

    def _owe(self, data: bytes) -> None:
        """Append ``data`` to what is owed, in place: sends that gave up their turn one
        after another behind a slow reader pile up megabytes here, and ``bytes``
        concatenation copied all of it for each."""
        if not self._unsent:
            self._unsent = data
            return
        if type(self._unsent) is not bytearray:
            self._unsent = bytearray(self._unsent)
        self._unsent += data

    def _pass_turn(self) -> None:
        """A send is done with the turn to write (see ``AsyncWaiter.write_turn``).

        The bytes of sends that gave up their place in line meanwhile are owed next,
        after what this one left (``_unsent``): they go out with the send the turn
        passes to, or from the loop if nobody waits.
        """
        waiter = self._waiter
        owed = waiter.pass_turn()
        if self.closed:
            self._unsent = b""
            return
        if owed:
            self._owe(owed)
        if self._unsent and not waiter.writing:
            waiter.flush_later(self._flush_unsent)

    def _flush_unsent(self) -> bool:
        """Write what an interrupted send left, without waiting; True once nothing is left.

        A failure drops the bytes: the connection is gone and the next send reports
        that failure (send_failure).
        """
        unsent = self._unsent
        if self.closed or not unsent:
            self._unsent = b""
            return True
        try:
            sent = self.sock.send(unsent, self._nowait)
        except WOULD_BLOCK:
            return False
        except OSError as exc:
            self._unsent = b""
            self._flush_failure = map_os_error(exc)
            return True
        if sent == len(unsent):
            self._unsent = b""
            self.owed_answers = 0
            return True
        # Cut what went from the front of a bytearray, which moves its start and
        # copies nothing: a bytes slice copied all that was left after every write,
        # quadratic for megabytes owed to a socket that takes a few KiB at a time.
        if type(unsent) is not bytearray:
            unsent = self._unsent = bytearray(unsent)
        del unsent[:sent]
        return False

    def push_back(self, data: bytes) -> None:
        """Bytes read from the socket earlier (a mailbox's queue) that reads return first.

        Every read, exact ``byte_count`` included, then counts them as it counts the
        socket's bytes.
        """
        if data:
            self._unread = data if self._unread is None else data + self._unread

    def keep_end(self, outcome: bytes | OSError) -> None:
        """A TLS burst met the end of stream (``b""``) or a failure after its bytes: the
        next read hands it out (``take_unread``).

        A plain socket's end stays in the kernel, where the next wait sees it again. A
        TLS end does not: OpenSSL has read close_notify (or the bad record) off the
        socket, and a peer that keeps its TCP side open then gives a wait nothing to
        see. A mailbox that read the burst would never deliver the end (see
        ``Mailbox._follow``); the C reads call this too.
        """
        self._unread = b""
        self._failure = None
        if isinstance(outcome, OSError) and not isinstance(outcome, ssl.SSLZeroReturnError):
            self._failure = outcome

    def take_unread(self) -> bytes:
        """The bytes kept for the next read (``_unread`` is not ``None``), and the
        kept end as its own read: ``b""``, or the kept failure raised as a read's."""
        data, self._unread = self._unread, None
        if data:
            return data
        failure, self._failure = self._failure, None
        if failure is not None:
            raise map_os_error(failure) from failure
        return b""

    def recv_ready(self) -> bytes | None:
        """Read what is there without waiting (the mailbox's read).

        Returns ``None`` when nothing could be read yet (a partial TLS record),
        ``b""`` at end of stream.
        """
        if self._unread is not None:
            return self.take_unread()
        if _recv_ready is not None and not self.tls:
            try:
                return cast("bytes | None", _recv_ready(self.sock.fileno(), READ_BURST))
            except OSError as exc:
                raise map_os_error(exc) from exc
        try:
            first = self.sock.recv(READ_SIZE, self._nowait)
        except WOULD_BLOCK:
            return None
        except ssl.SSLZeroReturnError:
            return b""
        except OSError as exc:
            raise map_os_error(exc) from exc
        if not first:
            return b""
        parts = [first]
        self._read_on(parts)
        return first if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._unsent = b""
        self._waiter.close()
        sock = self.sock
        if self.tls:
            # RFC 8446 6.1: close_notify before the close, so the peer can tell our
            # end from a cut. One try, never a wait: the first SSL_shutdown writes it,
            # the second (the peer's answer) wants a read on a non-blocking socket.
            try:
                sock.setblocking(False)
                cast("ssl.SSLSocket", sock).unwrap()
            except (OSError, ValueError):
                pass  # the peer is gone, or the handshake never ran: nothing to say
        try:
            sock.close()
        except OSError:
            pass
