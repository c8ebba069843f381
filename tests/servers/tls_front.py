"""TLS in front of a plain peer, ending as asyncio's TLS servers end a connection.

When the peer behind ends the connection, the front closes its TLS side the way an
``asyncio`` server does (uvicorn, hypercorn and aiohttp among them): close_notify,
then a wait of up to ``shutdown_timeout`` seconds for the client's own close_notify
before the TCP close. A client that only notices the end of a TLS connection by its
FIN sees it that much later. Runs an event loop in a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from typing import Any

from .peer import HOST, PeerAddressMixin


class TLSFront(PeerAddressMixin):
    """Listens on 127.0.0.1 (TLS, ``context``) and forwards to ``peer``'s address.

    Attributes:
        host, port, scheme (``"https"``), cafile, server_hostname: where to connect.
        errors: exceptions of the front itself, for the test to raise.
    """

    scheme = "https"

    def __init__(
        self,
        peer: Any,
        context: ssl.SSLContext,
        *,
        cafile: str,
        shutdown_timeout: float = 30.0,
    ) -> None:
        self.peer = peer
        self.host = HOST
        self.cafile = cafile
        self.server_hostname = "localhost"
        self.errors: list[BaseException] = []
        self._context = context
        self._shutdown_timeout = shutdown_timeout
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self.errors:
            raise RuntimeError(f"the TLS front did not start: {self.errors}")

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._listen())
        except BaseException as exc:
            self.errors.append(exc)
            return
        finally:
            self._ready.set()
        self._loop.run_forever()
        # Stopped: every connection goes at once (no TLS goodbye), then the loop.
        for writer in self._writers:
            writer.transport.abort()
        # (Not cancelled: asyncio's stream server logs a handler task it finds
        # cancelled. Each ends by itself at the abort.)
        tasks = asyncio.all_tasks(self._loop)
        if tasks:
            self._loop.run_until_complete(asyncio.wait(tasks, timeout=5))
        for task in tasks:
            task.cancel()
        self._loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._forward,
            HOST,
            0,
            ssl=self._context,
            ssl_shutdown_timeout=self._shutdown_timeout,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.peer.address)
        self._writers |= {writer, up_writer}

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()  # TLS side: close_notify, then the wait for the client's

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def stop(self) -> None:
        def shut() -> None:
            self._server.close()
            self._loop.stop()

        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(shut)
            self._thread.join(10)
