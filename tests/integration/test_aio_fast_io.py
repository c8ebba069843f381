"""``mint.aio.websocket.recv`` and ``stream_request_body``: the C coroutine against Python.

With ``mint._aiospeedups`` built, the public names are C callables whose calls return a
C coroutine: it takes the steady state of a passive upgraded HTTP/1.1 connection on a
plain socket and hands everything else to the Python coroutine functions
(``mint.aio.http.recv``, ``mint.aio._websocket.stream_request_body``). Every test here
runs the same script through the public names ("public") and through the Python
functions ("python"), on asyncio's loop and on uvloop, and checks each outcome the C
path finishes itself or hands back: short and long reads, the end of stream, a reset, a
timeout (a new deadline earlier or later than the armed timer), a cancellation, the
coroutine protocol itself (send, throw, close, reuse, never awaited), a send the socket
takes only in part, and the cases that go to Python (an exact byte count, keywords).
Under ``MINT_NO_SPEEDUPS=1`` both are the Python path, and must pass as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import inspect
import os
import socket
import ssl
import struct
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from servers.raw import OP_BINARY, drain, frame, handshake_response, read_request
from test_fast_io import (
    _held,
    close_notify_after,
    mint_frames,
    read_client_frame,
    send_when,
    upgraded,
)

import mint
import mint.aio
from mint._backend import EAGER_SECONDS
from mint._speedup import load_speedup
from mint.aio import _http as aio_http
from mint.aio import _websocket as aio_ws
from mint.http import Data, Done, Headers, Status
from mint.websocket import Binary

T = TypeVar("T")

PATHS = ["public", "python"]
LOOPS = ["asyncio", "uvloop"]


def io_of(path: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
    if path == "public":
        return mint.aio.websocket.recv, mint.aio.websocket.stream_request_body
    return aio_http.recv, aio_ws.stream_request_body


def run(loop: str, body: Callable[[], Coroutine[Any, Any, T]]) -> T:
    factory = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop

    async def bounded() -> T:
        return await asyncio.wait_for(body(), 60)

    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(bounded())


class WS:
    """A passive asyncio WebSocket on a raw server (the raw server's script runs in a
    thread once the client has it), read and written through one path's functions."""

    def __init__(self, path: str) -> None:
        self.recv, self.srb = io_of(path)
        self.conn: Any = None
        self.ref: Any = None
        self.websocket: Any = None

    async def open(self, server: Any, opened: threading.Event) -> WS:
        tls = server.scheme == "https"
        options: dict[str, Any] = {"transport_opts": {"cafile": server.cafile}} if tls else {}
        self.conn = await mint.aio.http.connect(
            server.scheme, "127.0.0.1", server.port, mode="passive", **options
        )
        scheme = "wss" if tls else "ws"
        self.conn, self.ref = await mint.aio.websocket.upgrade(scheme, self.conn, "/", [])
        status = headers = None
        done = False
        while not done:
            self.conn, responses = await mint.aio.http.recv(self.conn, 0, 10.0)
            for r in responses:
                if isinstance(r, Status):
                    status = r.status
                elif isinstance(r, Headers):
                    headers = r.headers
                elif isinstance(r, Done):
                    done = True
                else:
                    raise AssertionError(f"unexpected {r!r}")
        self.conn, self.websocket = mint.aio.websocket.new(
            self.conn, self.ref, status, headers, mode="passive"
        )
        opened.set()
        return self

    async def send(self, payload: bytes) -> None:
        self.websocket, data = mint.websocket.encode(self.websocket, Binary(payload))
        conn = await self.srb(self.conn, self.ref, data)
        assert conn is self.conn

    async def frames(self, count: int, timeout: float = 10.0) -> list[Any]:
        out: list[Any] = []
        while len(out) < count:
            self.conn, responses = await self.recv(self.conn, 0, timeout)
            for response in responses:
                assert type(response) is Data
                assert response.ref == self.ref
                assert type(response.data) is bytes
                self.websocket, frames = mint.websocket.decode(self.websocket, response.data)
                out += frames
        return out

    @property
    def waiting(self) -> object:
        """The read wait's future the connection's waiter holds (None: no read waits)."""
        return self.conn._transport._waiter._future


@pytest.fixture(params=["tcp", "tls"])
def open_ws(
    raw_server: Any, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Awaitable[WS]]]:
    """``await open_ws(path, script)``: a WebSocket whose server runs ``script(conn)``,
    over a plain socket and again over TLS (the C path of each)."""
    opened_all: list[WS] = []

    async def start(path: str, script: Callable[[socket.socket], None]) -> WS:
        opened = threading.Event()
        tls = "good" if request.param == "tls" else None
        server = raw_server(upgraded(script, opened), tls=tls)
        ws = await WS(path).open(server, opened)
        opened_all.append(ws)
        return ws

    yield start
    for ws in opened_all:
        ws.conn._transport.close()


def test_the_public_names_are_c_coroutine_functions_when_built() -> None:
    try:
        import mint._aiospeedups as c
    except ImportError:
        c = None
    if os.environ.get("MINT_NO_SPEEDUPS", "") not in ("", "0") or c is None:
        assert mint.aio.websocket.recv is aio_http.recv
        assert mint.aio.websocket.stream_request_body is aio_ws.stream_request_body
        return
    for public, python in [
        (mint.aio.websocket.recv, aio_http.recv),
        (mint.aio.websocket.stream_request_body, aio_ws.stream_request_body),
    ]:
        assert type(public) is c.CoroutineFunction
        assert inspect.iscoroutinefunction(public)
        assert asyncio.iscoroutinefunction(public)
        assert inspect.signature(public) == inspect.signature(python)
        assert public.__doc__ == python.__doc__
        assert public.__qualname__ == python.__qualname__
        assert public.__module__ == "mint.aio.websocket"
        operation = public(None, None, None)  # does nothing until awaited
        assert type(operation) is c.Operation
        # Named as the Python coroutine is (a task's repr names the call).
        assert (operation.__name__, operation.__qualname__) == (
            python.__name__,
            python.__qualname__,
        )
        assert asyncio.iscoroutine(operation)
        assert inspect.isawaitable(operation)
        operation.close()
        # A call that does not fit the function fails at once, as a coroutine function's.
        with pytest.raises(TypeError):
            public(1, 2)
        with pytest.raises(TypeError):
            public(1, 2, 3, nonsense=4)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
def test_round_trips_of_every_small_size(open_ws: Any, path: str, loop: str) -> None:
    sizes = [*range(126), 126, 200, 1000, 4095, 4096, 4097, 65000]

    def echo(conn: socket.socket) -> None:
        for _ in sizes:
            conn.sendall(frame(OP_BINARY, read_client_frame(conn)))

    async def body() -> None:
        ws = await open_ws(path, echo)
        for n in sizes:
            payload = os.urandom(n)
            await ws.send(payload)
            assert await ws.frames(1) == [Binary(payload)]
            assert ws.waiting is None

    run(loop, body)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("size", [65536 - 2, 65536 * 3 + 7, 5 << 20])
def test_a_message_larger_than_one_read_comes_whole(
    open_ws: Any, path: str, loop: str, size: int
) -> None:
    payload = os.urandom(size)
    hold = threading.Event()

    def send_big(conn: socket.socket) -> None:
        conn.sendall(frame(OP_BINARY, payload) + frame(OP_BINARY, b"next"))
        hold.wait(10)

    async def body() -> None:
        ws = await open_ws(path, send_big)
        try:
            assert await ws.frames(2) == [Binary(payload), Binary(b"next")]
        finally:
            hold.set()

    run(loop, body)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
def test_timeouts_and_the_timer_a_longer_wait_finds_armed(
    open_ws: Any, path: str, loop: str
) -> None:
    go = [threading.Event() for _ in range(3)]
    delays = [0.0, 0.0, 0.6]

    def script(conn: socket.socket) -> None:
        for event, delay in zip(go, delays, strict=True):
            event.wait(10)
            time.sleep(delay)
            conn.sendall(frame(OP_BINARY, b"after"))
        read_client_frame(conn)

    async def body() -> None:
        ws = await open_ws(path, script)
        for timeout in (0.05, 0.2, 1):
            started = time.monotonic()
            with pytest.raises(mint.TransportError) as info:
                await ws.recv(ws.conn, 0, timeout)
            assert info.value.reason == "timeout"
            assert info.value.conn is ws.conn
            assert time.monotonic() - started >= timeout * 0.9
            assert mint.aio.http.is_open(ws.conn)
            assert ws.waiting is None
        go[0].set()
        assert await ws.frames(1, timeout=10.0) == [Binary(b"after")]
        # A 10 s timer stays armed: a shorter timeout must arm its own.
        started = time.monotonic()
        with pytest.raises(mint.TransportError) as info:
            await ws.recv(ws.conn, 0, 0.05)
        assert info.value.reason == "timeout"
        assert time.monotonic() - started < 5.0, "the earlier 10 s deadline was kept"
        go[1].set()
        assert await ws.frames(1, timeout=0.3) == [Binary(b"after")]
        # Now the timer is armed for 0.3 s from then; a 5 s wait finds it earlier than its
        # deadline: it fires, and the wait goes on until the bytes come 0.6 s later.
        go[2].set()
        started = time.monotonic()
        assert await ws.frames(1, timeout=5.0) == [Binary(b"after")]
        assert time.monotonic() - started >= 0.5

    run(loop, body)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
def test_a_wait_woken_by_an_earlier_timer_watches_the_socket_again(
    open_ws: Any, path: str, loop: str
) -> None:
    """The timer an earlier, shorter deadline left armed wakes a wait, which then waits
    on. When the loop reader fires in between (bytes came in the same iteration, or a
    stale readiness), it finds the wait woken already, nobody to hand the readiness to,
    and takes itself off the loop. The wait that goes on must put it back: it waited
    for its deadline with nobody watching the socket, then timed out with the bytes
    there (both paths, either loop)."""
    go = threading.Event()
    c = load_speedup("mint._aiospeedups")

    async def body() -> None:
        ws = await open_ws(path, send_when(go, b"after"))
        task = asyncio.create_task(ws.recv(ws.conn, 0, 3.0))
        await asyncio.sleep(0.05)
        waiter = ws.conn._transport._waiter
        woken = ws.waiting
        assert woken is not None and waiter._reader_loop is not None
        reader = waiter._on_readable if c is None else c.reader(waiter, waiter._fd, False)
        called = asyncio.Event()
        gone: list[bool] = []

        def timer_then_reader() -> None:
            waiter._on_timer()  # as the earlier deadline's timer: a wake-up with False
            reader()  # the wait is woken already: the reader goes
            gone.append(woken.done() and waiter._reader_loop is None)
            called.set()

        asyncio.get_running_loop().call_soon(timer_then_reader)
        await called.wait()
        assert gone == [True]
        await asyncio.sleep(0.05)
        assert not task.done() and ws.waiting is not None  # waiting on, its deadline ahead
        assert waiter._reader_loop is asyncio.get_running_loop()  # watching again
        go.set()
        ws.conn, responses = await task
        frames: list[Any] = []
        for response in responses:
            ws.websocket, more = mint.websocket.decode(ws.websocket, response.data)
            frames += more
        assert frames == [Binary(b"after")]

    run(loop, body)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
def test_the_end_of_stream_after_a_frame(open_ws: Any, path: str, loop: str) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(frame(OP_BINARY, b"last"))

    async def body() -> None:
        ws = await open_ws(path, script)
        assert await ws.frames(1) == [Binary(b"last")]
        with pytest.raises(mint.TransportError) as info:
            while True:
                ws.conn, responses = await ws.recv(ws.conn, 0, 10.0)
                assert responses == []
        assert info.value.reason == "closed"
        assert info.value.conn is ws.conn
        assert not mint.aio.http.is_open(ws.conn)

    run(loop, body)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
def test_close_notify_ends_the_stream(raw_server: Any, path: str, loop: str) -> None:
    """close_notify met by a read that waited ends the stream as a TCP close does:
    ``"closed"`` with no cause, the connection closed (the sync flavour's test, here)."""
    go = threading.Event()
    opened = threading.Event()
    server = raw_server(upgraded(close_notify_after(go), opened), tls="good")

    async def body() -> None:
        ws = await WS(path).open(server, opened)
        try:
            assert await ws.frames(1) == [Binary(b"last")]
            go.set()
            with pytest.raises(mint.TransportError) as info:
                while True:
                    ws.conn, responses = await ws.recv(ws.conn, 0, 10.0)
                    assert responses == []
            assert info.value.reason == "closed"
            assert info.value.__cause__ is None, "the end of the stream, not a failure"
            assert not mint.aio.http.is_open(info.value.conn)
            assert ws.waiting is None
        finally:
            ws.conn._transport.close()

    run(loop, body)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
def test_a_reset_is_a_typed_error_and_closes(open_ws: Any, path: str, loop: str) -> None:
    go = threading.Event()

    def script(conn: socket.socket) -> None:
        go.wait(10)
        time.sleep(0.1)  # the client waits first
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    async def body() -> None:
        ws = await open_ws(path, script)
        go.set()
        with pytest.raises(mint.TransportError) as info:
            await ws.recv(ws.conn, 0, 10.0)
        assert info.value.reason == "closed"
        if ws.conn._transport.tls:
            # ssl reads a reset as an end without close_notify (a ragged EOF), which
            # mint takes as the failure it is (SSLEOFError), on both paths alike.
            cause = info.value.__cause__
            assert isinstance(cause, ConnectionResetError | ssl.SSLEOFError)
        else:
            assert isinstance(info.value.__cause__, ConnectionResetError)
        assert info.value.conn is ws.conn
        assert not mint.aio.http.is_open(ws.conn)
        assert ws.waiting is None

    run(loop, body)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
def test_a_cancelled_wait_leaves_the_connection_as_it_was(
    open_ws: Any, path: str, loop: str
) -> None:
    go = threading.Event()

    script = send_when(go, b"later")

    async def body() -> None:
        ws = await open_ws(path, script)
        task = asyncio.create_task(ws.recv(ws.conn, 0, None))
        await asyncio.sleep(0.05)
        assert ws.waiting is not None  # it waits on the loop
        assert "coro=<recv()" in repr(task)  # (named, on either path)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert ws.waiting is None
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(ws.conn, 0, 10.0), 0.05)
        assert ws.waiting is None
        assert mint.aio.http.is_open(ws.conn)
        go.set()
        assert await ws.frames(1) == [Binary(b"later")]
        await ws.send(b"bye")

    run(loop, body)


def send_on(*steps: tuple[threading.Event, bytes]) -> Callable[[socket.socket], None]:
    """A server script: each payload as a binary frame once its event is set, then the
    socket open until the client closes it."""

    def script(conn: socket.socket) -> None:
        for event, payload in steps:
            event.wait(10)
            conn.sendall(frame(OP_BINARY, payload))
        with contextlib.suppress(OSError):
            drain(conn)

    return script


async def woken_task_runs_as_itself(
    frames: Callable[[int], Awaitable[list[Any]]],
    waiting: Callable[[], bool],
    go: list[threading.Event],
) -> None:
    """The scenario of the test below, shared with active mode's
    (``test_aio_mailbox_wakeup``): ``frames(1)`` takes the next frame, ``waiting()``
    says a wait is on the loop, and each ``go`` event has the server send one frame
    (``b"one"``, then ``b"two"``)."""
    who: contextvars.ContextVar[str] = contextvars.ContextVar("who")
    loop_errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _, c: loop_errors.append(c))
    second_wait = asyncio.Event()

    async def reader() -> None:
        me = asyncio.current_task()
        who.set("first")
        assert await frames(1) == [Binary(b"one")]
        assert (who.get(), asyncio.current_task()) == ("first", me)
        who.set("second")
        await asyncio.sleep(0)  # a step resumed the usual way: the same context
        assert who.get() == "second"
        second_wait.set()
        assert await frames(1) == [Binary(b"two")]
        assert (who.get(), asyncio.current_task()) == ("second", me)
        who.set("third")
        await asyncio.sleep(0)
        assert who.get() == "third"
        raise ValueError("the task's own")

    who.set("main")
    task = asyncio.create_task(reader())
    await asyncio.sleep(0.05)
    go[0].set()
    await second_wait.wait()
    await asyncio.sleep(0.05)
    assert waiting()  # the second wait is on the loop
    go[1].set()
    with pytest.raises(ValueError, match="the task's own"):
        await task
    assert who.get() == "main"
    assert loop_errors == []


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
def test_the_woken_task_runs_as_itself(open_ws: Any, path: str, loop: str) -> None:
    """The C path resumes a waiting task inside the loop's reader callback (a Wakeup,
    not a future and a second callback): the task must run in its own context (not in
    the reader callback's, a copy made when the reader was registered: a value set
    there right after the resume would be gone at the task's next step), as the
    current task, and what it raises must be the task's, not the loop's exception
    handler's."""
    go = [threading.Event(), threading.Event()]

    async def body() -> None:
        ws = await open_ws(path, send_on((go[0], b"one"), (go[1], b"two")))
        await woken_task_runs_as_itself(ws.frames, lambda: ws.waiting is not None, go)

    run(loop, body)


@pytest.mark.skipif(
    load_speedup("mint._aiospeedups") is None, reason="the C speedups are not in use"
)
@pytest.mark.parametrize("loop", LOOPS)
def test_a_reader_called_inside_a_task_only_schedules_the_wake_up(open_ws: Any, loop: str) -> None:
    """A task step must never run inside another task's: the Wakeup resumes its task at
    once only when no task runs on the loop (a loop calls readers between steps).
    Called from inside a task, the reader schedules the wake-up instead; the woken
    recv finds nothing to read and waits on."""
    import mint._aiospeedups as c

    go = threading.Event()

    async def body() -> None:
        ws = await open_ws("public", send_on((go, b"late")))
        task = asyncio.create_task(ws.frames(1))
        await asyncio.sleep(0.05)
        first = ws.waiting
        assert first is not None and not first.done()
        waiter = ws.conn._transport._waiter
        reader = c.reader(waiter, waiter._fd, False)
        assert reader() is None  # (run at once, the step would raise RuntimeError here)
        assert first.done() and not task.done()
        await asyncio.sleep(0.05)
        assert not task.done()
        assert ws.waiting is not None and ws.waiting is not first  # waiting again
        go.set()
        assert await task == [Binary(b"late")]

    run(loop, body)


@pytest.mark.skipif(
    load_speedup("mint._aiospeedups") is None, reason="the C speedups are not in use"
)
def test_the_wake_up_is_a_future_as_a_task_takes_it(open_ws: Any) -> None:
    """What a Task asks of what a coroutine yields (asyncio's future protocol), and what
    the waiter's Python code asks of its read wait (done, set_result), with the
    semantics of asyncio.Future: callbacks scheduled, never run at once, by every
    resolution but the loop reader's."""
    go = threading.Event()

    async def body() -> None:
        ws = await open_ws("public", send_on((go, b"after")))
        loop = asyncio.get_running_loop()
        coroutine = ws.recv(ws.conn, 0, 10.0)
        wake = coroutine.send(None)
        assert type(wake).__name__ == "Wakeup" and ws.waiting is wake
        assert asyncio.isfuture(wake) and wake._asyncio_future_blocking
        assert wake.get_loop() is loop
        assert (wake.done(), wake.cancelled()) == (False, False)
        for method in (wake.result, wake.exception):
            with pytest.raises(asyncio.InvalidStateError):
                method()
        called: list[tuple[str, Any]] = []
        context = contextvars.copy_context()
        wake.add_done_callback(lambda w: called.append(("first", w)))
        wake.add_done_callback(lambda w: called.append(("second", w)), context=context)

        def dropped(_: Any) -> None:
            called.append(("dropped", None))

        wake.add_done_callback(dropped)
        assert wake.remove_done_callback(dropped) == 1
        assert wake.remove_done_callback(dropped) == 0
        with pytest.raises(TypeError):
            wake.add_done_callback(dropped, nonsense=1)
        assert wake.cancel("why") is True
        assert wake.cancel() is False
        assert (wake.done(), wake.cancelled()) == (True, True)
        assert called == []  # scheduled, as a future's callbacks are
        await asyncio.sleep(0)
        assert called == [("first", wake), ("second", wake)]
        with pytest.raises(asyncio.CancelledError, match="why"):
            wake.result()
        with pytest.raises(asyncio.InvalidStateError):
            wake.set_result(True)
        wake.add_done_callback(lambda w: called.append(("late", w)))  # done: scheduled
        assert len(called) == 2
        await asyncio.sleep(0)
        assert called[2] == ("late", wake)
        # A task's cancellation is thrown in: the operation ends, its wait is dropped.
        with pytest.raises(asyncio.CancelledError):
            coroutine.throw(asyncio.CancelledError("why"))
        assert ws.waiting is None
        # The timer's and close()'s resolution: set_result, scheduled too.
        coroutine = ws.recv(ws.conn, 0, 10.0)
        wake = coroutine.send(None)
        wake.add_done_callback(lambda w: called.append(("set", w.result())))
        wake.set_result(False)
        assert wake.done() and wake.result() is False and called[3:] == []
        await asyncio.sleep(0)
        assert called[3:] == [("set", False)]
        coroutine.close()
        go.set()
        assert await ws.frames(1) == [Binary(b"after")]

    run("asyncio", body)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
def test_a_connection_goes_on_under_the_next_loop(open_ws: Any, path: str, loop: str) -> None:
    """A connection read under one loop, then (that loop closed) under another: the read
    wait finds the loop it runs on, not the loop its reader was left registered on."""
    go = [threading.Event(), threading.Event()]
    kept: list[WS] = []

    async def first() -> None:
        ws = await open_ws(path, send_on((go[0], b"one"), (go[1], b"two")))
        kept.append(ws)
        go[0].set()
        assert await ws.frames(1) == [Binary(b"one")]
        # The reader stays registered after a wait (unless it fired again with nobody
        # waiting, which is a matter of timing): left on this loop, as a wait leaves it.
        ws.conn._transport._waiter.own_reader(asyncio.get_running_loop())

    async def second() -> None:
        ws = kept[0]
        left_on = ws.conn._transport._waiter._reader_loop
        assert left_on is not None and left_on is not asyncio.get_running_loop()
        task = asyncio.create_task(ws.frames(1))
        await asyncio.sleep(0.05)
        go[1].set()
        assert await task == [Binary(b"two")]

    run(loop, first)
    run(loop, second)


@pytest.mark.parametrize("path", PATHS)
def test_a_coroutine_never_awaited_says_so(path: str) -> None:
    # A forgotten ``await`` loses a send or a read: dropped unstarted, the C coroutine
    # warns as a Python coroutine does; closed first, or once started, it does not.
    for function, name in zip(io_of(path), ["recv", "stream_request_body"], strict=True):
        with pytest.warns(RuntimeWarning, match=f"^coroutine '{name}' was never awaited$"):
            coroutine = function(None, None, None)
            del coroutine
            gc.collect()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            function(None, None, None).close()
            started = function(None, None, None)
            with pytest.raises(mint.HTTPError):  # (None is no connection: invalid_conn)
                started.send(None)
            del started
            gc.collect()


@pytest.mark.parametrize("path", PATHS)
def test_the_coroutine_protocol_by_hand(open_ws: Any, path: str) -> None:
    go = threading.Event()

    script = send_when(go, b"then")

    class Stop(Exception):
        pass

    async def body() -> None:
        ws = await open_ws(path, script)
        # Sent into by hand: the first send yields a future of the loop (the C path's is
        # a Wakeup, future-like as a task takes one); close ends the wait.
        coroutine = ws.recv(ws.conn, 0, 10.0)
        future = coroutine.send(None)
        assert asyncio.isfuture(future) and future.get_loop() is asyncio.get_running_loop()
        assert not future.done()
        assert ws.waiting is future
        coroutine.close()
        assert ws.waiting is None
        with pytest.raises(RuntimeError, match="cannot reuse already awaited coroutine"):
            coroutine.send(None)
        # throw raises what it is given, as an instance or as a class and value.
        for thrown in [(Stop("one"),), (Stop, "two")]:
            coroutine = ws.recv(ws.conn, 0, 10.0)
            coroutine.send(None)
            with pytest.raises(Stop) as info:
                coroutine.throw(*thrown)
            assert str(info.value) in ("one", "two")
            assert ws.waiting is None
        # Thrown into before its start: it raises, and is over.
        coroutine = ws.recv(ws.conn, 0, 10.0)
        with pytest.raises(Stop):
            coroutine.throw(Stop("early"))
        # A value sent into a coroutine that has not started is refused.
        coroutine = ws.recv(ws.conn, 0, 10.0)
        with pytest.raises(TypeError):
            coroutine.send(1)
        coroutine.close()
        # Never awaited: no wait, no read, no send.
        ws.websocket, data = mint.websocket.encode(ws.websocket, Binary(b"never"))
        ws.srb(ws.conn, ws.ref, data).close()
        ws.recv(ws.conn, 0, 10.0).close()
        assert ws.waiting is None
        # The connection is as it was: the next read gets the bytes, and the frame the
        # server reads is the one sent next.
        go.set()
        assert await ws.frames(1) == [Binary(b"then")]
        await ws.send(b"sent")

    run("asyncio", body)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
def test_only_awaited_sends_reach_the_peer(open_ws: Any, path: str, loop: str) -> None:
    got: list[bytes] = []

    def script(conn: socket.socket) -> None:
        got.append(read_client_frame(conn))
        conn.sendall(frame(OP_BINARY, b"ok"))

    async def body() -> None:
        ws = await open_ws(path, script)
        ws.websocket, dropped = mint.websocket.encode(ws.websocket, Binary(b"dropped"))
        ws.srb(ws.conn, ws.ref, dropped).close()
        await ws.send(b"kept")
        assert await ws.frames(1) == [Binary(b"ok")]
        # A task runs the C coroutine as it runs a Python one.
        assert await asyncio.create_task(ws.srb(ws.conn, ws.ref, b"")) is ws.conn

    run(loop, body)
    assert got == [b"kept"]


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
def test_a_frame_larger_than_the_socket_buffer_goes_whole(
    open_ws: Any, path: str, loop: str
) -> None:
    got: list[int] = []

    def slow_reader(conn: socket.socket) -> None:
        time.sleep(0.2)  # the client's first send fills the buffers
        total = 0
        while chunk := conn.recv(1 << 20):
            total += len(chunk)
        got.append(total)

    async def body() -> int:
        ws = await open_ws(path, slow_reader)
        ws.websocket, data = mint.websocket.encode(ws.websocket, Binary(b"\x5a" * (16 << 20)))
        assert await ws.srb(ws.conn, ws.ref, data) is ws.conn
        await mint.aio.http.close(ws.conn)
        return len(data)

    sent = run(loop, body)
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    assert got == [sent]


@pytest.mark.parametrize("path", PATHS)
def test_sending_on_a_closed_connection_or_another_ref_fails(open_ws: Any, path: str) -> None:
    def script(conn: socket.socket) -> None:
        read_client_frame(conn)

    async def body() -> None:
        ws = await open_ws(path, script)
        ws.websocket, data = mint.websocket.encode(ws.websocket, Binary(b"x"))
        with pytest.raises(mint.MintError) as wrong:
            await ws.srb(ws.conn, object(), data)
        assert wrong.value.conn is ws.conn
        await mint.aio.http.close(ws.conn)
        with pytest.raises(mint.TransportError) as closed:
            await ws.srb(ws.conn, ws.ref, data)
        assert closed.value.reason == "closed"
        assert closed.value.conn is ws.conn
        with pytest.raises(mint.TransportError) as closed:
            await ws.recv(ws.conn, 0, 1.0)
        assert closed.value.reason == "closed"

    run("asyncio", body)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
def test_an_exact_byte_count_and_keyword_calls(open_ws: Any, path: str, loop: str) -> None:
    message = frame(OP_BINARY, b"0123456789")

    def script(conn: socket.socket) -> None:
        conn.sendall(message)
        assert read_client_frame(conn) == b"by keyword"
        conn.sendall(message)

    async def body() -> None:
        ws = await open_ws(path, script)
        ws.conn, first = await ws.recv(ws.conn, 5, 10.0)
        ws.conn, rest = await ws.recv(conn=ws.conn, byte_count=len(message) - 5, timeout=10.0)
        assert [r.data for r in first + rest] == [message[:5], message[5:]]
        ws.websocket, data = mint.websocket.encode(ws.websocket, Binary(b"by keyword"))
        assert await ws.srb(conn=ws.conn, ref=ws.ref, data=data) is ws.conn
        ws.conn, responses = await ws.recv(ws.conn, 0, timeout=10.0)
        assert b"".join(r.data for r in responses) == message
        for bad in [(-1, 1.0), (0, "soon"), (0, float("nan")), (0, True)]:
            with pytest.raises(mint.HTTPError) as info:
                await ws.recv(ws.conn, *bad)
            assert info.value.conn is ws.conn

    run(loop, body)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
def test_a_byte_count_past_any_read_gets_what_comes(open_ws: Any, path: str, loop: str) -> None:
    """As the blocking flavour's (test_fast_io): bounded reads, not a raw OverflowError
    (past ssize_t) or MemoryError (2**40: each read allocated the whole count)."""
    message = frame(OP_BINARY, b"abcdef")

    def script(conn: socket.socket) -> None:
        conn.sendall(message)  # then the end of stream: the count is never reached

    async def body() -> None:
        ws = await open_ws(path, script)
        ws.conn, responses = await ws.recv(ws.conn, 2**70, 10.0)
        assert [r.data for r in responses] == [message]

    run(loop, body)


@pytest.mark.parametrize("path", PATHS)
def test_a_zero_timeout_reads_only_what_is_there(open_ws: Any, path: str) -> None:
    go = threading.Event()

    script = send_when(go, b"here")

    async def body() -> None:
        ws = await open_ws(path, script)
        with pytest.raises(mint.TransportError) as info:
            await ws.recv(ws.conn, 0, 0)
        assert info.value.reason == "timeout"
        go.set()
        await asyncio.sleep(0.2)
        ws.conn, responses = await ws.recv(ws.conn, 0, 0)
        assert b"".join(r.data for r in responses) == frame(OP_BINARY, b"here")
        await ws.send(b"done")

    run("asyncio", body)


@pytest.mark.skipif(
    load_speedup("mint._aiospeedups") is None, reason="the C speedups are not in use"
)
@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("size", [16, 60_000])
def test_a_steady_round_trip_runs_none_of_mints_python(open_ws: Any, loop: str, size: int) -> None:
    """What the C coroutines are for: once the connection is in its steady state, a round
    trip (encode, stream_request_body, recv, decode) enters no Python function of mint's
    (nor, over TLS, ssl.py's wrappers), the loop's reader that wakes the wait included
    (``AsyncWaiter._on_readable``'s C twin, which on uvloop also looks for a pending
    socket error). The other tests pass on the Python path too; this one fails when the
    C path stops taking its case. 60,000 bytes are four TLS records (a burst, or several reads of
    one frame's payload)."""
    rounds = 6
    message = b"x" * size

    def echo(conn: socket.socket) -> None:
        for _ in range(rounds):
            conn.sendall(frame(OP_BINARY, read_client_frame(conn)))
        # Open until the client closes: an end right behind the last echo would be
        # read with it (and kept for the next read: BaseTransport.keep_end).
        with contextlib.suppress(OSError):
            drain(conn)

    async def body() -> list[str]:
        ws = await open_ws("public", echo)
        for _ in range(rounds // 2):  # the first reads set the connection's steady state
            await ws.send(message)
            assert await ws.frames(1) == [Binary(message)]
        with mint_frames() as seen:
            for _ in range(rounds // 2):
                await ws.send(message)
                assert await ws.frames(1) == [Binary(message)]
        return seen

    seen = run(loop, body)
    assert seen == [], seen


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
def test_a_tls_burst_comes_whole_and_ends_on_a_record(
    raw_server: Any, path: str, loop: str
) -> None:
    """As test_fast_io's: a message of many TLS records, all in the socket before the
    read, comes in one read, as one Data on the C path; OpenSSL holds nothing after."""
    payloads = [os.urandom(300_000), b"next"]
    wire = b"".join(frame(OP_BINARY, p) for p in payloads)
    hold, opened = threading.Event(), threading.Event()

    def handler(conn: socket.socket) -> None:
        request = read_request(conn)
        if request:
            conn.sendall(handshake_response(request))
            if opened.wait(10):
                conn.sendall(wire)
                hold.wait(10)

    server = raw_server(handler, tls="good")

    async def body() -> None:
        ws = await WS(path).open(server, opened)
        sock = ws.conn._transport.sock
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        try:
            held, deadline = -1, time.monotonic() + 10
            while not (held >= len(wire) and held == _held(sock)):
                assert time.monotonic() < deadline, "the burst did not arrive"
                held = _held(sock)
                await asyncio.sleep(0.05)
            ws.conn, responses = await ws.recv(ws.conn, 0, 10.0)
            assert all(type(r) is Data and r.ref == ws.ref for r in responses)
            assert b"".join(r.data for r in responses) == wire
            if path == "public" and load_speedup("mint._aiospeedups") is not None:
                assert len(responses) == 1, "the C burst is one bytes object"
            assert sock.pending() == 0
            assert ws.conn._transport._drained
        finally:
            hold.set()
            ws.conn._transport.close()

    run(loop, body)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
def test_a_reader_slower_than_its_flood_still_lets_the_loop_run(
    open_ws: Any, path: str, loop: str
) -> None:
    # scale15: a read that found bytes left by the last one took them without a wait,
    # and so without a turn for the loop: a consumer slower than its peer never found
    # the socket empty, and every other task of the loop (here one that counts its
    # turns) stood still for as long as the flood lasted.
    frame = bytes([0x82, 127]) + (1 << 16).to_bytes(8, "big") + bytes(1 << 16)
    flood = frame * 600  # about 40 MB, more than the socket and the reader hold at once

    def script(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(flood)

    async def body() -> tuple[int, int]:
        ws = await open_ws(path, script)
        # (a buffer that a read of a megabyte never empties while the flood goes on)
        sock = mint.http.get_socket(ws.conn)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        turns = 0

        async def count() -> None:
            nonlocal turns
            while True:
                await asyncio.sleep(0)
                turns += 1

        counter = asyncio.ensure_future(count())
        await asyncio.sleep(0.3)  # the socket fills up meanwhile: no read waits from here
        before, calls, got = turns, 0, 0
        while got < 300 * len(frame):
            ws.conn, responses = await ws.recv(ws.conn, 0, 10.0)
            got += sum(len(r.data) for r in responses)
            calls += 1
            # The consumer's own work, slower than the flood, and longer than the
            # loop may be held (mint._backend.EAGER_SECONDS): each read gives a turn.
            time.sleep(EAGER_SECONDS + 0.001)
        counter.cancel()
        return turns - before, calls

    turns, calls = run(loop, body)
    assert turns >= calls // 2, (turns, calls)  # (it was none, or the few reads that waited)


_PATTERN = b"".join(i.to_bytes(4, "big") for i in range(1 << 20))  # 4 MiB, each offset known


def _flooded(path: str, open_ws: Any) -> Callable[[], Coroutine[Any, Any, Any]]:
    """A WebSocket whose server sends _PATTERN, read 10 bytes into it (so the next read
    takes bytes the last one left), with its turn due (see EAGER_SECONDS)."""

    def script(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(_PATTERN)

    async def start() -> Any:
        ws = await open_ws(path, script)
        await asyncio.sleep(0.2)
        ws.conn, [first] = await ws.recv(ws.conn, 10, 5.0)
        assert first.data == _PATTERN[:10]
        ws.conn._transport._eager = 0.0  # (the last turn long ago: this read takes one)
        return ws

    return start


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
def test_a_read_taking_its_turn_is_a_read_under_way(open_ws: Any, path: str, loop: str) -> None:
    # regress24: another task's recv read during the turn, ahead of the one that took
    # it, which then got the bytes after those: out of order, and no error.
    async def body() -> None:
        ws = await _flooded(path, open_ws)()
        second = asyncio.ensure_future(ws.recv(ws.conn, 0, 5.0))
        ws.conn, responses = await ws.recv(ws.conn, 0, 5.0)
        data = b"".join(r.data for r in responses)
        assert data == _PATTERN[10 : 10 + len(data)]
        with pytest.raises(mint.HTTPError) as info:
            await second
        assert info.value.reason[0] == "read_under_way"

    run(loop, body)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("path", PATHS)
def test_a_switch_to_active_during_a_reads_turn_ends_that_read(
    open_ws: Any, path: str, loop: str
) -> None:
    # regress24: the read went on after its turn and read a socket its mailbox owned
    # (on TLS, ahead of the rest of a record the switch had moved to the mailbox).
    async def body() -> None:
        ws = await _flooded(path, open_ws)()
        box = mint.Mailbox()

        def switch() -> None:
            ws.conn = mint.http.controlling_process(ws.conn, box)
            ws.conn = mint.aio.http.set_mode(ws.conn, "active")

        asyncio.get_running_loop().call_soon(switch)
        with pytest.raises(mint.HTTPError) as info:
            await ws.recv(ws.conn, 0, 5.0)
        assert info.value.reason == "not_passive"
        got = b""
        while len(got) < 1 << 16:  # the mailbox goes on where the reads stopped
            result = await mint.aio.websocket.stream(ws.conn, await box.areceive(5.0))
            assert result is not mint.UNKNOWN
            ws.conn, responses = result
            got += b"".join(r.data for r in responses)
        assert got == _PATTERN[10 : 10 + len(got)]

    run(loop, body)
