"""One test body, two flavours: ``mint.http``/``mint.websocket`` and ``mint.aio``.

:class:`Flavour` gives a test the API as coroutines whatever the flavour: for ``"aio"``
it is ``mint.aio`` itself; for ``"sync"`` each function that may wait is wrapped in a
coroutine that calls the blocking one (the peers run in other threads or processes, so
blocking the test's loop is harmless). The test bodies are then written once, with
``await``, and run against the same real servers in both flavours.

``"aio-uvloop"`` is ``mint.aio`` again, on uvloop's event loop (the loop most asyncio
servers and fast clients run on): the flavour picks the loop :func:`run` starts.

:class:`Client` is the async twin of ``wsclient.Client``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import types
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import mint
import mint.aio
from mint.http import Data, Done, Headers, Status

T = TypeVar("T")

FLAVOURS = ["sync", "aio", "aio-uvloop"]
HTTP_IO = {
    "connect",
    "request",
    "stream_request_body",
    "stream",
    "recv",
    "close",
    "ping",
    "cancel_request",
}
WEBSOCKET_IO = {"upgrade", "stream", "recv", "stream_request_body", "cancel"}


def _coroutine(function: Callable[..., T]) -> Callable[..., Awaitable[T]]:
    @functools.wraps(function)
    async def call(*args: Any, **kwargs: Any) -> T:
        return function(*args, **kwargs)

    return call


def _awaitable_module(module: types.ModuleType, io: set[str]) -> types.SimpleNamespace:
    names = {name: getattr(module, name) for name in module.__all__}
    for name in io:
        names[name] = _coroutine(names[name])
    return types.SimpleNamespace(**names)


class Flavour:
    """``http``, ``websocket`` (waiting functions awaitable) and ``receive(box, timeout)``."""

    def __init__(self, name: str) -> None:
        self.name = name
        # The loop its tests run on (None: asyncio's own); see use_loop.
        self.loop_factory = _uvloop_factory() if name == "aio-uvloop" else None
        if name.startswith("aio"):
            self.http: Any = mint.aio.http
            self.websocket: Any = mint.aio.websocket
        else:
            self.http = _awaitable_module(mint.http, HTTP_IO)
            self.websocket = _awaitable_module(mint.websocket, WEBSOCKET_IO)

    async def receive(self, box: mint.Mailbox, timeout: float | None) -> object:
        if self.name.startswith("aio"):
            return await box.areceive(timeout)
        return box.receive(timeout)

    def __repr__(self) -> str:
        return self.name


# The loop run() starts (None: asyncio's own), set for a test by use_loop.
_loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None


@contextlib.contextmanager
def use_loop(flavour: Flavour) -> Iterator[None]:
    """Run the test bodies inside on ``flavour``'s loop (the ``flavour`` fixture's job)."""
    global _loop_factory
    _loop_factory = flavour.loop_factory
    try:
        yield
    finally:
        _loop_factory = None


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    import uvloop

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(coroutine: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    """Run a test body on a fresh loop (the flavour's), within ``timeout``."""

    async def bounded() -> T:
        return await asyncio.wait_for(coroutine, timeout)

    with asyncio.Runner(loop_factory=_loop_factory) as runner:
        return runner.run(bounded())


@dataclass
class Client:
    flavour: Flavour
    conn: Any
    mode: str
    mailbox: mint.Mailbox | None = None
    ref: Any = None
    websocket: Any = None
    early: list[Any] = field(default_factory=list)

    async def responses(self, timeout: float = 15.0) -> list[Any]:
        """One step of input: the responses of one message (active) or one read (passive)."""
        ws = self.flavour.websocket
        if self.mode == "passive":
            self.conn, responses = await ws.recv(self.conn, 0, timeout)
            return list(responses)
        assert self.mailbox is not None
        while True:
            message = await self.flavour.receive(self.mailbox, timeout)
            result = await ws.stream(self.conn, message)
            if result is not mint.UNKNOWN:
                self.conn, responses = result
                return list(responses)

    async def handshake(self, timeout: float = 15.0) -> tuple[int, list[Any], bytes]:
        status, headers, early, done = 0, [], b"", False
        while not done:
            for response in await self.responses(timeout):
                match response:
                    case Status(status=s):
                        status = s
                    case Headers(headers=h):
                        headers = h
                        if self.flavour.http.protocol(self.conn) == "http2":
                            done = True
                    case Data(data=d):
                        early += d
                    case Done():
                        done = True
        return status, headers, early

    async def upgrade(self, path: str = "/echo", scheme: str = "ws", **kwargs: Any) -> None:
        ws = self.flavour.websocket
        self.conn, self.ref = await ws.upgrade(scheme, self.conn, path, [], **kwargs)
        status, headers, early = await self.handshake()
        self.conn, self.websocket = ws.new(self.conn, self.ref, status, headers, mode=self.mode)
        if early:
            self.websocket, self.early = ws.decode(self.websocket, early)

    async def send(self, frame: Any) -> None:
        ws = self.flavour.websocket
        self.websocket, data = ws.encode(self.websocket, frame)
        self.conn = await ws.stream_request_body(self.conn, self.ref, data)

    async def frames(self, count: int = 1, timeout: float = 15.0) -> list[Any]:
        """Read until ``count`` frames (or inline errors) were decoded."""
        out: list[Any] = list(self.early)
        self.early = []
        while len(out) < count:
            for response in await self.responses(timeout):
                if isinstance(response, Data) and response.ref == self.ref:
                    self.websocket, frames = self.flavour.websocket.decode(
                        self.websocket, response.data
                    )
                    out += frames
        return out

    async def frames_until_error(self, timeout: float = 15.0) -> tuple[list[Any], Any]:
        """Read frames until a read raises ``TransportError``: the frames (those that
        came with the handshake first), and the error (its ``.conn`` is kept)."""
        out: list[Any] = list(self.early)
        self.early = []
        try:
            while True:
                for response in await self.responses(timeout):
                    if isinstance(response, Data) and response.ref == self.ref:
                        self.websocket, frames = self.flavour.websocket.decode(
                            self.websocket, response.data
                        )
                        out += frames
        except mint.TransportError as error:
            self.conn = error.conn
            return out, error

    async def close(self) -> None:
        self.conn = await self.flavour.http.close(self.conn)
        if self.mailbox is not None:
            self.mailbox.close()


async def connect(
    flavour: Flavour,
    peer: Any,
    *,
    mode: str = "active",
    protocols: tuple[str, ...] = ("http1",),
    **opts: Any,
) -> Client:
    mailbox = mint.Mailbox() if mode == "active" else None
    transport_opts = dict(opts.pop("transport_opts", {}))
    if getattr(peer, "cafile", None):
        transport_opts.setdefault("cafile", peer.cafile)
    conn = await flavour.http.connect(
        peer.scheme,
        getattr(peer, "server_hostname", None) or peer.host,
        peer.port,
        protocols=protocols,
        mode=mode,
        mailbox=mailbox,
        transport_opts=transport_opts,
        **opts,
    )
    return Client(flavour, conn, mode, mailbox)
