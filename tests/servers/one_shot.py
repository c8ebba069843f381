"""A server for one connection, scripted by a subclass: the shape of the small h2
servers a test writes when it needs a peer that behaves in one particular way (reads
nothing for a while, opens its windows at a given moment).

``handle(sock)`` runs in a thread on the accepted socket; an ``OSError`` there is the
client going away, anything else is kept in ``errors`` for the test to raise.
"""

from __future__ import annotations

import socket
import threading

from servers.peer import PeerAddressMixin


class OneConnection(PeerAddressMixin):
    """Listens on 127.0.0.1 (port from the OS) and serves the first connection.

    ``rcvbuf`` is set on the listener before ``listen``, so the accepted socket has
    it from its handshake on (a small one makes the client's writes wait sooner)."""

    scheme = "http"
    host = "127.0.0.1"

    def __init__(self, *, rcvbuf: int | None = None) -> None:
        self.errors: list[BaseException] = []
        self.listener = socket.socket()
        if rcvbuf is not None:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.listener.bind((self.host, 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def handle(self, sock: socket.socket) -> None:
        raise NotImplementedError

    def _serve(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        try:
            with sock:
                self.handle(sock)
        except OSError:
            pass  # (the client went)
        except BaseException as exc:
            self.errors.append(exc)

    def stop(self) -> None:
        self.listener.close()
        self.thread.join(10)
