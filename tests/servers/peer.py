"""What a peer fixture yields, and a runner for peers that live in a subprocess."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import selectors
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

HOST = "127.0.0.1"

# A peer that has not printed its readiness line by then is broken, not slow.
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


class PeerAddressMixin:
    """URL helpers for anything with ``host``, ``port`` and ``scheme``."""

    __slots__ = ()
    host: str
    port: int
    scheme: str

    @property
    def ws_scheme(self) -> str:
        return "wss" if self.scheme == "https" else "ws"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def url(self, path: str = "/") -> str:
        """The ``ws://``/``wss://`` URL of ``path`` on this peer."""
        return f"{self.ws_scheme}://{self.host}:{self.port}{path}"

    def http_url(self, path: str = "/") -> str:
        return f"{self.scheme}://{self.host}:{self.port}{path}"


@dataclasses.dataclass(frozen=True, slots=True)
class Peer(PeerAddressMixin):
    """Where a test peer listens.

    Attributes:
        host: Always ``127.0.0.1``.
        port: The port the OS gave the listening socket.
        scheme: ``"http"`` or ``"https"``: the transport, as ``mint.http.connect`` takes it.
        cafile: For TLS peers, the path of the PEM of the CA that signed the server certificate.
        server_hostname: The name the certificate is valid for (``"localhost"``; 127.0.0.1 is in
            the certificate too).
        http_version: ``"1.1"``, ``"2"`` or ``"any"`` (TLS with ALPN h2 and http/1.1).
        log_path: For subprocess peers, the file that collects their stderr (hypercorn logs
            its tracebacks there, e.g. when it drops a connection).
    """

    host: str
    port: int
    scheme: str
    cafile: str | None = None
    server_hostname: str | None = None
    http_version: str = "1.1"
    log_path: str | None = None


class PeerStartError(RuntimeError):
    pass


class Subprocess:
    """A peer in a child process that prints ``READY <port>`` on stdout when it accepts.

    The child gets a pipe on stdin and must exit when it closes, so a killed test runner leaves
    no server behind. :meth:`stop` always reaps the child and closes every pipe (no
    ResourceWarning).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                cwd=cwd,
                env=env,
            )
        except BaseException:
            self._log.close()
            raise
        self.port = 0

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> int:
        """Read stdout until the ``READY <port>`` line; return the port."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        buf = bytearray()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in buf:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sel.select(remaining):
                    raise PeerStartError(f"{self.argv!r}: no readiness line\n{self.log()}")
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise PeerStartError(
                        f"{self.argv!r} exited ({self.proc.wait()}) before it was ready\n"
                        f"{self.log()}"
                    )
                buf += chunk
        line = bytes(buf).split(b"\n", 1)[0].decode()
        if not line.startswith("READY "):
            raise PeerStartError(f"{self.argv!r}: unexpected first line {line!r}\n{self.log()}")
        self.port = int(line.split()[1])
        return self.port

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        proc = self.proc
        try:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        finally:
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            self._log.close()
