"""The transport edge: the only code of the sync API that touches ``socket`` and ``ssl``.

Sockets are kept non-blocking for their whole life. That one choice serves both
modes: the mailbox can read a TLS socket whose record is only half there without
blocking (``SSLWantReadError`` just means "no message yet"), and passive
``recv``/``send`` try the socket first and wait with ``poll`` only when it would
block, which is one system call in the common case of a ready socket.

Every ``OSError`` and ``ssl.SSLError`` is turned into :class:`mint.TransportError`
here, chained with ``from``, so nothing raw reaches a caller.
"""

from __future__ import annotations

import errno
import select
import socket
import ssl
import time
from collections.abc import Sequence
from typing import Any

from mint.errors import TransportError

# Bytes asked of the kernel per read. 64 KiB matches the default loopback window
# and one TLS read is at most one 16 KiB record anyway, so the loop below drains more.
READ_SIZE = 65536
# Upper bound of what one "read what is there" call gathers, so one busy socket
# cannot starve the others that share a mailbox.
READ_BURST = 1 << 20

ALPN_IDS = {"http1": "http/1.1", "http2": "h2"}

_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)

_TLS_VERIFY_ALERTS = {
    # X509 verify codes (openssl x509_vfy.h) to the TLS alert a client would send.
    2: "unknown_ca",
    18: "unknown_ca",
    19: "unknown_ca",
    20: "unknown_ca",
    21: "unknown_ca",
    10: "certificate_expired",
    9: "bad_certificate",
    62: "handshake_failure",  # host name mismatch: Erlang's ssl reports it this way
}


def map_os_error(exc: BaseException) -> TransportError:
    """Turn an exception from ``socket``/``ssl`` into the TransportError a caller matches on."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        alert = _TLS_VERIFY_ALERTS.get(exc.verify_code, "bad_certificate")
        return TransportError(("tls_alert", alert, exc.verify_message or str(exc)))
    if isinstance(exc, ssl.SSLZeroReturnError | ssl.SSLEOFError):
        return TransportError("closed")
    if isinstance(exc, ssl.SSLError):
        name = (exc.reason or "tls_error").lower()
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
        return TransportError(("os_error", code or str(exc)))
    return TransportError(("os_error", repr(exc)))


def make_ssl_context(
    *,
    ssl_context: ssl.SSLContext | None,
    cafile: str | None,
    verify: bool,
    alpn: Sequence[str],
) -> ssl.SSLContext:
    """Build the client context: verification on unless ``verify=False``, ALPN as asked."""
    if ssl_context is None:
        ctx = ssl.create_default_context(cafile=cafile)
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl_context
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


class Transport:
    """A connected, non-blocking socket (plain or TLS) with blocking-style helpers."""

    __slots__ = ("_poll", "_poll_mask", "closed", "sock", "tls")

    def __init__(self, sock: socket.socket, *, tls: bool) -> None:
        self.sock = sock
        self.tls = tls
        self.closed = False
        self._poll: Any = None
        self._poll_mask = 0

    # -- connect -------------------------------------------------------------------
    @classmethod
    def connect(
        cls,
        scheme: str,
        host: str,
        port: int,
        *,
        timeout: float | None,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str | None,
        alpn: Sequence[str],
    ) -> Transport:
        """Open the TCP connection and, for ``https``, run the TLS handshake, within ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            raw = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise map_os_error(exc) from exc
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                assert ssl_context is not None
                if deadline is not None:
                    raw.settimeout(max(deadline - time.monotonic(), 0.001))
                sock: socket.socket = ssl_context.wrap_socket(
                    raw, server_hostname=server_hostname or host
                )
            else:
                sock = raw
            sock.setblocking(False)
        except BaseException as exc:
            raw.close()
            if isinstance(exc, OSError):
                raise map_os_error(exc) from exc
            raise
        return cls(sock, tls=scheme == "https")

    def alpn_protocol(self) -> str | None:
        if isinstance(self.sock, ssl.SSLSocket):
            return self.sock.selected_alpn_protocol()
        return None

    # -- waiting -------------------------------------------------------------------
    def _wait(self, mask: int, deadline: float | None) -> None:
        """Block until the socket is ready for ``mask`` or the deadline passes."""
        if self._poll is None:
            self._poll = select.poll()
            self._poll.register(self.sock.fileno(), mask)
            self._poll_mask = mask
        elif self._poll_mask != mask:
            self._poll.modify(self.sock.fileno(), mask)
            self._poll_mask = mask
        while True:
            if deadline is None:
                wait_ms = None
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TransportError("timeout")
                wait_ms = max(int(remaining * 1000 + 0.999), 1)
            if self._poll.poll(wait_ms):
                return

    # -- I/O -----------------------------------------------------------------------
    def send(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data``, waiting for the socket as long as it takes."""
        if self.closed:
            raise TransportError("closed")
        view = memoryview(data)
        sock = self.sock
        try:
            while view:
                try:
                    sent = sock.send(view)
                except ssl.SSLWantReadError:
                    self._wait(select.POLLIN, None)
                    continue
                except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                    self._wait(select.POLLOUT, None)
                    continue
                view = view[sent:]
        except OSError as exc:
            raise map_os_error(exc) from exc

    def recv(self, byte_count: int, timeout: float | None) -> bytes:
        """Read up to ``byte_count`` bytes (0: whatever is there), waiting up to ``timeout``.

        Returns ``b""`` when the peer closed the connection.
        """
        if self.closed:
            raise TransportError("closed")
        deadline = None if timeout is None else time.monotonic() + timeout
        sock = self.sock
        want = byte_count or READ_SIZE
        data = b""
        try:
            while True:
                try:
                    data = sock.recv(want)
                except _WOULD_BLOCK as exc:
                    writing = isinstance(exc, ssl.SSLWantWriteError)
                    self._wait(select.POLLOUT if writing else select.POLLIN, deadline)
                    continue
                break
            if byte_count == 0 and data and self.tls:
                data = self._drain_tls(data)
            elif byte_count and data and len(data) < byte_count:
                # Mint's recv(byte_count) returns exactly that many bytes.
                parts = [data]
                got = len(data)
                while got < byte_count:
                    try:
                        more = sock.recv(byte_count - got)
                    except _WOULD_BLOCK as exc:
                        mask = (
                            select.POLLOUT
                            if isinstance(exc, ssl.SSLWantWriteError)
                            else select.POLLIN
                        )
                        self._wait(mask, deadline)
                        continue
                    if not more:
                        break
                    parts.append(more)
                    got += len(more)
                data = b"".join(parts)
            return data
        except ssl.SSLZeroReturnError:
            return b""
        except OSError as exc:
            raise map_os_error(exc) from exc

    def _drain_tls(self, first: bytes) -> bytes:
        """Collect what the TLS layer already decrypted: ``poll`` cannot see it."""
        sock = self.sock
        assert isinstance(sock, ssl.SSLSocket)
        pending = sock.pending()
        if not pending:
            return first
        parts = [first]
        total = len(first)
        while pending and total < READ_BURST:
            try:
                more = sock.recv(max(pending, READ_SIZE))
            except _WOULD_BLOCK:
                break
            if not more:
                break
            parts.append(more)
            total += len(more)
            pending = sock.pending()
        return b"".join(parts)

    def recv_ready(self) -> bytes | None:
        """Read what is there without waiting (the mailbox's read).

        Returns ``None`` when nothing could be read yet (a partial TLS record),
        ``b""`` at end of stream.
        """
        sock = self.sock
        parts: list[bytes] = []
        total = 0
        try:
            while total < READ_BURST:
                try:
                    data = sock.recv(READ_SIZE)
                except _WOULD_BLOCK:
                    break
                if not data:
                    if not parts:
                        return b""
                    break
                parts.append(data)
                total += len(data)
                if len(data) < READ_SIZE and not (self.tls and sock.pending()):  # type: ignore[attr-defined]
                    break
        except ssl.SSLZeroReturnError:
            if not parts:
                return b""
        except OSError as exc:
            if not parts:
                raise map_os_error(exc) from exc
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
