"""A TCP proxy in front of a peer, whose client-to-peer direction can be held.

While held, the proxy reads nothing from the client: the client's writes fill the
socket buffers (the proxy's receive buffer is small, set on the listener before
``listen`` so accepted sockets have it from their handshake on) and then wait, as they
would behind a slow reader, while the peer stays a real one (``websockets``,
hypercorn, the h2 fault server) that reads everything once the gate opens. The
peer-to-client direction always flows (``corrupt`` and ``split`` alter one chunk). TLS
passes through as bytes: the client talks TLS to the peer behind.

``stop()`` opens the gate, shuts every socket down and joins every thread.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

from .peer import HOST, PeerAddressMixin


class GatedProxy(PeerAddressMixin):
    """Listens on 127.0.0.1 (port from the OS) and forwards to ``peer``'s address.

    Attributes:
        host, port, scheme, cafile, server_hostname: as the peer's, with our port.
        gate: set while the client's bytes flow; :meth:`hold` and :meth:`release`.
    """

    def __init__(self, peer: Any, *, rcvbuf: int = 4096) -> None:
        self.peer = peer
        self.host = HOST
        self.scheme = peer.scheme
        self.cafile = getattr(peer, "cafile", None)
        self.server_hostname = getattr(peer, "server_hostname", None)
        self.gate = threading.Event()
        self.gate.set()
        self._corrupt = threading.Event()
        self._split = threading.Event()
        self.errors: list[BaseException] = []
        self._stopping = False
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self._listener.bind((HOST, 0))
        self._listener.listen()
        self.port = self._listener.getsockname()[1]
        self._start(self._accept)

    def hold(self) -> None:
        """Stop reading the client's bytes (after the read under way, if any)."""
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def split(self) -> None:
        """Send the next peer-to-client chunk as its first 3 bytes, then, 0.3 s later,
        the rest (over TLS: a record that wakes a reader before it is whole)."""
        self._split.set()

    def corrupt(self) -> None:
        """Flip a byte in the middle of the next peer-to-client chunk of over 40 bytes
        (over TLS: a record whose authentication then fails, ``bad_record_mac``)."""
        self._corrupt.set()

    def _start(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.peer.address)
            except OSError as exc:
                self.errors.append(exc)
                client.close()
                continue
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._stopping:
                    client.close()
                    upstream.close()
                    return
                self._socks += [client, upstream]
            self._start(self._pump, client, upstream, True)
            self._start(self._pump, upstream, client, False)

    def _pump(self, source: socket.socket, sink: socket.socket, gated: bool) -> None:
        try:
            while True:
                while gated and not self.gate.wait(0.05):
                    if self._stopping:
                        return
                data = source.recv(65536)
                if not data:
                    break
                if not gated and len(data) > 40 and self._corrupt.is_set():
                    self._corrupt.clear()
                    flipped = bytearray(data)
                    flipped[len(data) // 2] ^= 0xFF
                    data = bytes(flipped)
                if not gated and len(data) > 3 and self._split.is_set():
                    self._split.clear()
                    sink.sendall(data[:3])
                    time.sleep(0.3)
                    data = data[3:]
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            # One side went: the other learns it from the end of its stream.
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_RDWR)
        except BaseException as exc:  # kept for the test to see, never lost in a thread
            self.errors.append(exc)

    def stop(self) -> None:
        self._stopping = True
        self.gate.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            socks, threads = list(self._socks), list(self._threads)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(10)
        for sock in socks:
            sock.close()
