"""asyncio active mode: how a task awaiting ``areceive`` is woken.

With ``mint._aiospeedups`` built, ``Mailbox.areceive`` awaits a C ``Wakeup`` rather
than a loop future, and the mailbox's loop reader, having queued what it read, resumes
the waiting task at once inside its own callback (``_aiospeedups.wake``); a loop
future's ``set_result`` had the loop resume it one iteration later. Every other
resolution (the timer, a ``send`` from inside a task) is scheduled, as a future's, and
a task step never runs inside another task's. Each test runs with the waiter the build
gives ("built") and with a loop future ("future", the fallback's), on asyncio's loop and
on uvloop, against a raw server on loopback.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
from aio_client import Client, Flavour, connect
from test_aio_fast_io import run, send_on, woken_task_runs_as_itself
from test_fast_io import upgraded

import mint
import mint.aio
from mint._speedup import load_speedup
from mint.websocket import Binary

# (the module: ``mint.mailbox`` the attribute is the default-mailbox function)
mailbox_module = importlib.import_module("mint.mailbox")

_c = load_speedup("mint._aiospeedups")
LOOPS = ["asyncio", "uvloop"]
WAITERS = [
    pytest.param(
        "built",
        marks=pytest.mark.skipif(_c is None, reason="the C speedups are not in use"),
    ),
    "future",
]


@pytest.fixture(params=WAITERS)
def waiter(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The kind of wait ``areceive`` makes: the build's (a Wakeup where the C module is
    built), or a loop future resolved by ``set_result`` (the fallback's)."""
    if request.param == "future":
        monkeypatch.setattr(mailbox_module, "_new_waiter", mailbox_module._future_waiter)
        monkeypatch.setattr(mailbox_module, "_wake", mailbox_module._set_none)
    return str(request.param)


AIO = Flavour("aio")  # (mint.aio's functions; each test picks its loop with run())


@pytest.fixture
def open_active(raw_server: Any) -> Iterator[Callable[..., Coroutine[Any, Any, Client]]]:
    """``await open_active(script)``: an active WebSocket on a mailbox of its own, whose
    raw server runs ``script`` once the client has it."""
    opened_all: list[Client] = []

    async def start(script: Callable[[socket.socket], None]) -> Client:
        opened = threading.Event()
        client = await connect(AIO, raw_server(upgraded(script, opened)), mode="active")
        opened_all.append(client)
        await client.upgrade("/")
        opened.set()
        return client

    yield start
    for client in opened_all:  # (the loop is gone: closed without it)
        client.conn._transport.close()
        assert client.mailbox is not None
        client.mailbox.close()


@pytest.mark.parametrize("loop", LOOPS)
def test_the_woken_task_runs_as_itself(open_active: Any, waiter: str, loop: str) -> None:
    """Resumed inside the reader's callback, the task runs in its own context (not the
    reader's, a copy made when it was registered: a value set right after the resume
    would be gone at the task's next step), as the current task, and what it raises is
    the task's, not the loop's exception handler's (the passive recv's scenario)."""
    go = [threading.Event(), threading.Event()]

    async def body() -> None:
        ws = await open_active(send_on((go[0], b"one"), (go[1], b"two")))
        await woken_task_runs_as_itself(ws.frames, lambda: bool(ws.mailbox._waiters), go)

    run(loop, body)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_reader_resumes_the_task_within_its_callback(
    open_active: Any, waiter: str, loop: str
) -> None:
    """What the Wakeup is for: the reader, called by the loop (between task steps),
    has the waiting task take the message before it returns; with a loop future the
    task takes it at a later step. Called from inside a task, the reader only
    schedules the wake-up (a task step inside another's raised RuntimeError, and the
    woken task hung): the message comes all the same, once."""
    go = [threading.Event(), threading.Event()]

    async def body() -> None:
        ws = await open_active(send_on((go[0], b"one"), (go[1], b"two")))
        loop = asyncio.get_running_loop()
        got: list[Any] = []

        async def consumer() -> None:
            for _ in range(2):
                got.extend(await ws.frames(1))

        task = asyncio.create_task(consumer())
        transport = ws.conn._transport
        fd = transport.sock.fileno()
        seen: list[int] = []
        called = asyncio.Event()

        def from_the_loop() -> None:
            ws.mailbox._on_readable_async(transport)
            seen.append(len(got))  # the task ran (or not) inside that call
            called.set()

        async def arrive(event: threading.Event, already: int) -> None:
            """The next frame sent and in the socket, the loop no longer reading it."""
            await asyncio.sleep(0.05)
            assert ws.mailbox._waiters and len(got) == already
            loop.remove_reader(fd)  # the test calls the reader itself
            event.set()
            assert await asyncio.to_thread(wait_readable, fd)

        await arrive(go[0], 0)
        loop.call_soon(from_the_loop)
        await called.wait()
        assert seen == [1 if waiter == "built" else 0]
        await asyncio.sleep(0.05)
        assert got == [Binary(b"one")]
        ws.mailbox._watch(loop, fd, transport)  # the loop reads again

        await arrive(go[1], 1)
        ws.mailbox._on_readable_async(transport)  # inside this task: scheduled
        assert len(got) == 1
        await asyncio.sleep(0.05)
        ws.mailbox._watch(loop, fd, transport)
        await task
        assert got == [Binary(b"one"), Binary(b"two")]

    run(loop, body)


def wait_readable(fd: int) -> bool:
    import select

    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(10_000))


@pytest.mark.parametrize("loop", LOOPS)
def test_tasks_waiting_on_one_mailbox_share_its_messages(waiter: str, loop: str) -> None:
    """Several tasks await one mailbox; messages posted from another thread (the loop
    runs the wake-up as a callback: each waiting task resumed at once, in turn) and
    from a task (scheduled) go one to each taker: none lost, none twice, and a task
    resumed with nothing left waits on (a resumed task waits again before the wake-up
    is through with the waiters: they are taken from a copy)."""

    async def body() -> None:
        box = mint.Mailbox()
        loop_errors: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda _, c: loop_errors.append(c))
        try:
            taken: list[tuple[int, object]] = []

            async def taker(i: int) -> None:
                while True:
                    message = await box.areceive(10.0)
                    if message is None:
                        return
                    taken.append((i, message))

            tasks = [asyncio.create_task(taker(i)) for i in range(3)]
            await asyncio.sleep(0.01)
            assert len(box._waiters) == 3

            def post(first: int, count: int) -> None:
                for k in range(first, first + count):
                    box.send(k)

            await asyncio.to_thread(post, 0, 200)
            post(200, 100)  # from this task: scheduled wake-ups
            await asyncio.sleep(0.05)
            await asyncio.to_thread(post, 300, 1)
            for _ in tasks:
                box.send(None)
            await asyncio.gather(*tasks)
            assert sorted(int(str(m)) for _, m in taken) == list(range(301))
            assert not box._waiters
            assert loop_errors == []
        finally:
            box.close()

    run(loop, body)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_send_from_a_loop_callback_resumes_the_task_after_it(waiter: str, loop: str) -> None:
    """``Mailbox.send`` on the loop's thread from code that is no task (a callback, a
    protocol's ``data_received``) wakes the waiting task the scheduled way: the task
    ran inside the ``send`` call (the caller's next statement came after it, an
    exception of the task's came out of ``send``, and a lock the caller held was held
    against the task). Only the loop's own callbacks resume a task at once."""

    class Stop(BaseException):
        pass

    async def body() -> None:
        box = mint.Mailbox()
        try:
            order: list[str] = []
            lock = threading.Lock()

            async def consumer() -> None:
                order.append(f"task got {await box.areceive(10.0)!r}")
                order.append(f"task took the lock: {lock.acquire(timeout=0.5)}")
                lock.release()
                await box.areceive(10.0)
                raise Stop("the task's own")

            task = asyncio.create_task(consumer())
            await asyncio.sleep(0.01)
            done = asyncio.Event()
            raised: list[BaseException] = []

            def callback(message: str) -> None:
                try:
                    with lock:
                        box.send(message)
                        order.append("after send")
                except BaseException as exc:  # (what send must not raise)
                    raised.append(exc)
                done.set()

            loop = asyncio.get_running_loop()
            loop.call_soon(callback, "msg")
            await done.wait()
            await asyncio.sleep(0.05)
            assert order == ["after send", "task got 'msg'", "task took the lock: True"]
            done.clear()
            loop.call_soon(callback, "stop")
            await done.wait()
            with pytest.raises(Stop, match="the task's own"):
                await task
            assert raised == []
        finally:
            box.close()

    run(loop, body)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_cancelled_or_timed_out_wait_loses_nothing(
    open_active: Any, waiter: str, loop: str
) -> None:
    """A cancelled areceive raises CancelledError, a timed-out one TimeoutError; their
    waits are gone, and the next areceive has the message that came meanwhile."""
    go = threading.Event()

    async def body() -> None:
        ws = await open_active(send_on((go, b"later")))
        task = asyncio.create_task(ws.mailbox.areceive(10.0))
        await asyncio.sleep(0.05)
        assert len(ws.mailbox._waiters) == 1
        task.cancel("why")
        with pytest.raises(asyncio.CancelledError, match="why"):
            await task
        assert not ws.mailbox._waiters
        with pytest.raises(TimeoutError):
            await ws.mailbox.areceive(0.05)
        assert not ws.mailbox._waiters
        go.set()
        await asyncio.sleep(0.1)  # read and queued while nobody waits
        assert await ws.frames(1, timeout=0.0) == [Binary(b"later")]

    run(loop, body)


@pytest.mark.skipif(_c is None, reason="the C speedups are not in use")
def test_the_wake_up_awaited_from_python() -> None:
    """``await`` of a Wakeup, as of a future: pending, it yields itself to the task;
    resolved, it gives its value (``wake``: None; ``set_result``: the value), or raises
    the cancellation; a task cancelled while it waits gets CancelledError at the await."""
    assert _c is not None

    async def body() -> None:
        loop = asyncio.get_running_loop()
        w = _c.wakeup(loop)
        iterator = w.__await__()
        assert next(iterator) is w and w._asyncio_future_blocking
        w.set_result(5)
        with pytest.raises(StopIteration) as stop:
            next(iterator)
        assert stop.value.value == 5

        w = _c.wakeup(loop)
        loop.call_soon(_c.wake, w)
        assert await w is None
        _c.wake(w)  # resolved already: nothing happens
        assert w.result() is None

        w = _c.wakeup(loop)
        w.set_result((1, 2))
        assert await w == (1, 2)  # a tuple stays one value

        w = _c.wakeup(loop)
        task = asyncio.create_task(_await(w))
        await asyncio.sleep(0)
        task.cancel("stop")
        with pytest.raises(asyncio.CancelledError, match="stop"):
            await task
        assert w.cancelled()

        with pytest.raises(TypeError):
            _c.wake(loop.create_future())

    asyncio.run(body())


async def _await(w: Any) -> object:
    return await w
