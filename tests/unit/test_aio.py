"""mint.aio: the same API as coroutines, the loop-fed mailbox, cancellation that loses nothing."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import mint
import mint.aio
from mint.aio._transport import AsyncTransport
from mint.errors import HTTPError
from mint.mailbox import Mailbox, SocketClosed, SocketData

mailbox_module = importlib.import_module("mint.mailbox")  # ``mint.mailbox`` is the function

HTTP_COROUTINES = {
    "connect",
    "request",
    "stream_request_body",
    "stream",
    "recv",
    "close",
    "ping",
    "cancel_request",
}
WEBSOCKET_COROUTINES = {"upgrade", "stream", "recv", "stream_request_body", "cancel"}


# -- the API ------------------------------------------------------------------------------------
def shape(function: Any) -> list[tuple[str, Any, Any]]:
    """How a function is called: its parameters' names, kinds and defaults.

    Annotations are left out: ``mint.websocket.recv`` and ``stream_request_body`` may be
    C functions (mint._iospeedups), whose signature has none.
    """
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


@pytest.mark.parametrize(
    ("aio", "sync", "coroutines"),
    [
        (mint.aio.http, mint.http, HTTP_COROUTINES),
        (mint.aio.websocket, mint.websocket, WEBSOCKET_COROUTINES),
    ],
    ids=["http", "websocket"],
)
def test_same_names_coroutines_where_they_wait_same_objects_elsewhere(
    aio: object, sync: object, coroutines: set[str]
) -> None:
    assert set(aio.__all__) == set(sync.__all__)  # type: ignore[attr-defined]
    for name in sync.__all__:  # type: ignore[attr-defined]
        ours, theirs = getattr(aio, name), getattr(sync, name)
        if name == "set_mode":  # plain in both; the default mailbox is the flavour's
            assert not inspect.iscoroutinefunction(ours)
        elif name in coroutines:
            assert inspect.iscoroutinefunction(ours), name
            assert not inspect.iscoroutinefunction(theirs), name
            assert shape(ours) == shape(theirs), name
        else:
            assert ours is theirs, name


def test_pure_functions_and_values_are_the_sync_ones() -> None:
    assert mint.aio.websocket.encode is mint.websocket.encode
    assert mint.aio.websocket.decode is mint.websocket.decode
    assert mint.aio.websocket.new is mint.websocket.new
    assert mint.aio.websocket.WebSocket is mint.websocket.WebSocket
    assert mint.aio.http.Conn is mint.http.Conn
    assert mint.aio.http.UNKNOWN is mint.UNKNOWN
    assert mint.aio.http.Status is mint.http.Status
    assert mint.aio.http.set_mode is not mint.http.set_mode  # the default mailbox differs
    assert not inspect.iscoroutinefunction(mint.aio.http.set_mode)


def test_the_loops_mailbox_is_not_the_threads() -> None:
    async def main() -> tuple[Mailbox, Mailbox]:
        return mint.aio.mailbox(), mint.aio.mailbox()

    first, again = asyncio.run(main())
    assert first is again
    assert first is not mint.mailbox()
    second, _ = asyncio.run(main())
    assert second is not first  # one per loop
    with pytest.raises(RuntimeError):
        mint.aio.mailbox()  # no running loop


# -- the loop-fed mailbox ----------------------------------------------------------------------
@pytest.fixture
def box() -> Iterator[Mailbox]:
    mailbox = Mailbox()
    yield mailbox
    mailbox.close()


def test_areceive_times_out_and_then_delivers(
    box: Mailbox, async_pair: tuple[AsyncTransport, socket.socket]
) -> None:
    transport, peer = async_pair

    async def main() -> object:
        box.register(transport)
        with pytest.raises(TimeoutError):
            await box.areceive(timeout=0.05)
        with pytest.raises(TimeoutError):
            await box.areceive(timeout=0)
        peer.sendall(b"late")
        return await box.areceive(timeout=2)

    message = asyncio.run(main())
    assert isinstance(message, SocketData) and message.data == b"late"


def test_areceive_is_woken_by_a_post_from_another_thread(box: Mailbox) -> None:
    async def main() -> object:
        loop = asyncio.get_running_loop()
        waiting = asyncio.ensure_future(box.areceive(timeout=5))
        await asyncio.sleep(0)
        await loop.run_in_executor(None, box.send, "from a thread")
        return await waiting

    assert asyncio.run(main()) == "from a thread"


def test_cancelled_areceive_loses_no_socket_input(
    box: Mailbox, async_pair: tuple[AsyncTransport, socket.socket]
) -> None:
    transport, peer = async_pair

    async def main() -> list[bytes]:
        box.register(transport)
        got: list[bytes] = []
        for i in range(20):
            waiting = asyncio.ensure_future(box.areceive())
            await asyncio.sleep(0)
            peer.sendall(b"%d;" % i)
            await asyncio.sleep(0)  # the reader may queue the data; then we cancel anyway
            waiting.cancel()
            try:
                message = await waiting
            except asyncio.CancelledError:
                continue
            assert isinstance(message, SocketData)
            got.append(message.data)
        while True:
            try:
                message = await box.areceive(timeout=0.1)
            except TimeoutError:
                return got
            assert isinstance(message, SocketData)
            got.append(message.data)

    got = asyncio.run(main())
    assert b"".join(got) == b"".join(b"%d;" % i for i in range(20))


def test_many_tasks_one_mailbox_each_message_once(box: Mailbox) -> None:
    async def main() -> list[object]:
        tasks = [asyncio.ensure_future(box.areceive(timeout=2)) for _ in range(3)]
        await asyncio.sleep(0)
        for i in range(3):
            box.send(i)
        return list(await asyncio.gather(*tasks))

    assert sorted(asyncio.run(main())) == [0, 1, 2]  # type: ignore[type-var]


def test_end_of_stream_and_readers_removed(
    box: Mailbox, async_pair: tuple[AsyncTransport, socket.socket]
) -> None:
    transport, peer = async_pair

    async def main() -> list[object]:
        box.register(transport)
        peer.sendall(b"bye")
        peer.shutdown(socket.SHUT_WR)
        messages = [await box.areceive(timeout=2)]
        while not isinstance(messages[-1], SocketClosed):
            messages.append(await box.areceive(timeout=2))
        assert not transport.reader_busy
        assert not box.owns(transport)
        return messages

    messages = asyncio.run(main())
    assert b"".join(m.data for m in messages if isinstance(m, SocketData)) == b"bye"


def test_readers_pause_when_the_consumer_falls_behind(
    box: Mailbox, async_pair: tuple[AsyncTransport, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    transport, peer = async_pair
    monkeypatch.setattr(mailbox_module, "ASYNC_HIGH_WATER", 1000)
    peer.setblocking(False)

    async def main() -> bytes:
        box.register(transport)
        with pytest.raises(TimeoutError):
            await box.areceive(timeout=0.01)  # binds the loop
        peer.sendall(b"x" * 3000)
        for _ in range(20):
            await asyncio.sleep(0.005)
            peer.send(b"y" * 100)
            if not transport.reader_busy:
                break
        assert not transport.reader_busy  # paused: the kernel holds the rest
        got = b""
        while True:
            try:
                message = await box.areceive(timeout=0.2)
            except TimeoutError:
                return got
            assert isinstance(message, SocketData)
            got += message.data

    got = asyncio.run(main())
    assert got.startswith(b"x" * 3000) and set(got[3000:]) == {ord("y")}


# -- the transport: cancellation keeps bytes --------------------------------------------------
def test_cancelled_send_keeps_its_rest_and_it_goes_first(
    async_pair: tuple[AsyncTransport, socket.socket],
) -> None:
    transport, peer = async_pair
    payload = bytes(range(256)) * 40_000  # 10 MB: far beyond the socket buffers
    received = bytearray()
    reader = threading.Thread(target=_read_all, args=(peer, received, len(payload) + 13))

    async def main() -> None:
        sending = asyncio.ensure_future(transport.send(payload))
        await asyncio.sleep(0.01)
        assert not sending.done()  # the peer reads nothing yet: the send waits
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        assert transport._unsent
        reader.start()
        await transport.send(b"and then this")

    asyncio.run(main())
    reader.join(10)
    assert bytes(received) == payload + b"and then this"


def _read_all(sock: socket.socket, into: bytearray, count: int) -> None:
    sock.settimeout(10)
    while len(into) < count:
        data = sock.recv(1 << 20)
        if not data:
            return
        into += data


def test_background_flush_after_a_cancelled_send(
    async_pair: tuple[AsyncTransport, socket.socket],
) -> None:
    """The caller never writes again: the loop still finishes the interrupted bytes."""
    transport, peer = async_pair
    payload = b"z" * 5_000_000
    received = bytearray()
    reader = threading.Thread(target=_read_all, args=(peer, received, len(payload)))

    async def main() -> None:
        sending = asyncio.ensure_future(transport.send(payload))
        await asyncio.sleep(0.01)
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sending
        reader.start()
        for _ in range(500):
            if not transport._unsent:
                return
            await asyncio.sleep(0.01)

    asyncio.run(main())
    reader.join(10)
    assert bytes(received) == payload


def test_cancelled_exact_recv_keeps_what_it_read(
    async_pair: tuple[AsyncTransport, socket.socket],
) -> None:
    transport, peer = async_pair

    async def main() -> tuple[bytes, bytes]:
        receiving = asyncio.ensure_future(transport.recv(10, None))
        peer.sendall(b"12345")
        await asyncio.sleep(0.02)
        receiving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await receiving
        peer.sendall(b"67890abc")
        first = await transport.recv(10, 1)
        second = await transport.recv(0, 1)
        return first, second

    assert asyncio.run(main()) == (b"1234567890", b"abc")


def test_recv_timeout_is_a_transport_error(
    async_pair: tuple[AsyncTransport, socket.socket],
) -> None:
    transport, _ = async_pair

    async def main() -> None:
        with pytest.raises(mint.TransportError) as info:
            await transport.recv(0, 0.05)
        assert info.value.reason == "timeout"

    asyncio.run(main())


# -- the passive read wait: a reader kept between waits, one timer for many ------------------
def test_read_waits_keep_their_reader_and_give_it_to_a_mailbox(
    box: Mailbox, async_pair: tuple[AsyncTransport, socket.socket]
) -> None:
    transport, peer = async_pair

    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        got = []
        for i in range(3):
            loop.call_later(0.02, peer.send, b"p%d" % i)
            got.append(await transport.recv(0, 2.0))
        # Bytes arriving while nobody waits: the reader takes itself off rather
        # than firing on every loop iteration.
        peer.send(b"idle")
        await asyncio.sleep(0.05)
        assert transport._waiter._reader_loop is None
        got.append(await transport.recv(0, 2.0))
        # Active: the mailbox's reader replaces ours; passive again: ours comes back.
        box.register(transport)
        peer.send(b"active")
        message = await box.areceive(timeout=2)
        assert isinstance(message, SocketData)
        got.append(message.data)
        box.unregister(transport, drop=False)
        loop.call_later(0.02, peer.send, b"passive")
        got.append(await transport.recv(0, 2.0))
        return got

    assert asyncio.run(main()) == [b"p0", b"p1", b"p2", b"idle", b"active", b"passive"]


def test_read_wait_timer_is_reused_and_rearmed(
    async_pair: tuple[AsyncTransport, socket.socket],
) -> None:
    transport, peer = async_pair

    async def main() -> None:
        loop = asyncio.get_running_loop()
        # A short deadline times out, and says so.
        with pytest.raises(mint.TransportError) as info:
            await transport.recv(0, 0.05)
        assert info.value.reason == "timeout"
        # A wait whose deadline is later than a still-armed earlier timer outlives it:
        # the first wait arms a timer for 0.3 s and returns at once...
        loop.call_later(0.01, peer.send, b"a")
        assert await transport.recv(0, 0.3) == b"a"
        # ...the second allows 5 s and its bytes come after that timer fired.
        loop.call_later(0.5, peer.send, b"b")
        assert await transport.recv(0, 5.0) == b"b"
        # And a wait with no deadline at all.
        loop.call_later(0.02, peer.send, b"c")
        assert await transport.recv(0, None) == b"c"

    asyncio.run(main())


def test_read_waits_work_across_event_loops(
    async_pair: tuple[AsyncTransport, socket.socket],
) -> None:
    # A timer (and a reader) left armed on a loop that has since closed is never
    # reused by a wait on the next loop: it would never fire there.
    transport, peer = async_pair

    async def first() -> bytes:
        asyncio.get_running_loop().call_later(0.01, peer.send, b"one")
        return await transport.recv(0, 0.3)

    async def second() -> str:
        try:
            await asyncio.wait_for(transport.recv(0, 0.3), 3.0)
        except mint.TransportError as exc:
            return str(exc.reason)
        return "no timeout"

    async def third() -> bytes:
        asyncio.get_running_loop().call_later(0.05, peer.send, b"three")
        return await transport.recv(0, 2.0)

    assert asyncio.run(first()) == b"one"
    assert asyncio.run(second()) == "timeout"
    assert asyncio.run(third()) == b"three"


@pytest.mark.parametrize("timeout", [None, 2.0])
def test_a_wake_up_that_finds_nothing_waits_again(
    async_pair: tuple[AsyncTransport, socket.socket], timeout: float | None
) -> None:
    """The reader's wake-ups are not checked (a readiness the loop saw before the
    bytes were read): a read woken for nothing reads EAGAIN and waits again, and
    returns the bytes that come next, neither an empty read (the end of stream) nor
    an error. Both ways in: the drained hot path and a plain wait."""
    transport, peer = async_pair
    waiter = transport._waiter

    async def woken_for_nothing(delay: float) -> None:
        # A few spurious wake-ups while the socket is empty, then the bytes.
        for _ in range(3):
            await asyncio.sleep(delay)
            waiter._on_readable()
        await asyncio.sleep(delay)
        peer.send(b"late")

    async def main() -> list[bytes]:
        got = []
        transport._drained = True  # the hot path: wait first, then read
        poke = asyncio.create_task(woken_for_nothing(0.01))
        got.append(await transport.recv(0, timeout))
        await poke
        transport._drained = False  # a read that fails first, then waits
        poke = asyncio.create_task(woken_for_nothing(0.01))
        got.append(await transport.recv(0, timeout))
        await poke
        return got

    assert asyncio.run(main()) == [b"late", b"late"]


def test_a_wake_up_that_finds_nothing_keeps_the_deadline(
    async_pair: tuple[AsyncTransport, socket.socket],
) -> None:
    transport, _ = async_pair
    waiter = transport._waiter

    async def main() -> float:
        loop = asyncio.get_running_loop()
        # Wake-ups for nothing late in the wait: starting the timeout again at the
        # first would end the read at about 0.25 s.
        for delay in (0.10, 0.12, 0.14):
            loop.call_later(delay, waiter._on_readable)
        transport._drained = True
        started = time.monotonic()
        with pytest.raises(mint.TransportError) as info:
            await transport.recv(0, 0.15)
        assert info.value.reason == "timeout"
        return time.monotonic() - started

    took = asyncio.run(main())
    assert 0.15 <= took < 0.22


def test_a_connection_of_the_other_flavour_is_refused_before_anything_is_sent() -> None:
    # A mint.aio connection given to mint.http sent nothing (its coroutines were never
    # awaited) while the request counted as made; the other way round broke with a
    # raw TypeError once the bytes were out.
    import mint.aio.http
    import mint.http
    import mint.websocket

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        sync_conn = mint.http.connect("http", "127.0.0.1", port, mode="passive")
        aio_conn = asyncio.run(mint.aio.http.connect("http", "127.0.0.1", port, mode="passive"))
        peer, _ = server.accept()
        peer2, _ = server.accept()
        peer.settimeout(0.2)
        peer2.settimeout(0.2)
        calls = [
            lambda c: mint.http.request(c, "GET", "/", []),
            lambda c: mint.websocket.upgrade("ws", c, "/", []),
            lambda c: mint.http.recv(c, 0, 0.1),
            lambda c: mint.http.close(c),
        ]
        for call in calls:
            with pytest.raises(HTTPError) as info:
                call(aio_conn)
            assert info.value.reason[0] == "invalid_conn"
        acalls = [
            lambda c: mint.aio.http.request(c, "GET", "/", []),
            lambda c: mint.aio.http.recv(c, 0, 0.1),
            lambda c: mint.aio.http.close(c),
        ]
        for acall in acalls:
            with pytest.raises(HTTPError) as info:
                asyncio.run(acall(sync_conn))
            assert info.value.reason[0] == "invalid_conn"
        # soak15: the blocking set_mode put an event loop's connection on the thread's
        # mailbox, where mint.aio.receive never saw its input; the event loop's, on a
        # blocking one, raised a raw RuntimeError outside a loop.
        for set_mode, conn in ((mint.http.set_mode, aio_conn), (mint.aio.http.set_mode, sync_conn)):
            with pytest.raises(HTTPError) as info:
                set_mode(conn, "active")
            assert info.value.reason[0] == "invalid_conn"
        for p in (peer, peer2):
            with pytest.raises(TimeoutError):
                p.recv(100)  # nothing was sent on either
        assert mint.http.open_request_count(aio_conn) == 0
        assert mint.http.open_request_count(sync_conn) == 0
        mint.http.close(sync_conn)
        asyncio.run(mint.aio.http.close(aio_conn))
        peer.close()
        peer2.close()
    finally:
        server.close()


def test_set_mode_active_outside_a_running_loop_is_refused_typed() -> None:
    # regress23: mint.aio's default mailbox is the running loop's; with none running,
    # set_mode raised a raw RuntimeError from mint.aio.mailbox().
    import mint.aio.http

    server = socket.create_server(("127.0.0.1", 0))
    try:
        conn = asyncio.run(
            mint.aio.http.connect("http", "127.0.0.1", server.getsockname()[1], mode="passive")
        )
        with pytest.raises(HTTPError) as info:
            mint.aio.http.set_mode(conn, "active")
        assert info.value.reason == ("invalid_mailbox", None)
        assert info.value.conn is conn
        assert conn._mode == "passive"
        asyncio.run(mint.aio.http.close(conn))
    finally:
        server.close()
