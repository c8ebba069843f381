"""The mailbox: socket input as messages, posted objects, wake-ups, ownership moves.

Every test of ``Mailbox.receive`` runs twice: with its C fast path (``mint._iospeedups``,
when built: one plain socket's input, nothing queued) and on the Python loop alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

import mint
import mint._backend
from mint._transport import Transport
from mint.errors import HTTPError
from mint.mailbox import Mailbox, SocketClosed, SocketData, SocketError

MAILBOX_MODULE = sys.modules["mint.mailbox"]  # (``mint.mailbox`` is also the function)


EPOLL = hasattr(__import__("select"), "epoll")


@pytest.fixture(
    params=[("fast", "epoll"), ("python", "epoll"), ("fast", "poll"), ("python", "poll")],
    ids=lambda p: "-".join(p),
)
def box(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    """A new mailbox; "python" takes its C fast path away (both are the Python loop when
    the extension is not built, or under MINT_NO_SPEEDUPS=1); "poll" makes it wait with
    ``poll`` where it would take ``epoll``."""
    path, selector = request.param
    if selector == "epoll" and not EPOLL:
        pytest.skip("no epoll here")
    if path == "python":
        monkeypatch.setattr(MAILBOX_MODULE, "_fast_receive", None)
        monkeypatch.setattr(mint._backend, "_recv_ready", None)  # the transport's C read
    monkeypatch.setattr(MAILBOX_MODULE, "_EPOLL", selector == "epoll")
    mailbox = Mailbox()
    yield mailbox
    mailbox.close()


def test_socket_input_becomes_socket_data(
    box: Mailbox, pair: tuple[Transport, socket.socket]
) -> None:
    transport, peer = pair
    box.register(transport)
    peer.sendall(b"hello")
    message = box.receive(timeout=2)
    assert isinstance(message, SocketData)
    assert message.socket is transport.sock
    assert message.data == b"hello"


def test_messages_compare_by_value_as_the_tuples_they_stand_for(
    box: Mailbox, pair: tuple[Transport, socket.socket]
) -> None:
    # Erlang's {:tcp, socket, data} equals any tuple of the same socket and data: a test
    # that builds the message it expects compared it with an identity check.
    transport, peer = pair
    box.register(transport)
    peer.sendall(b"hello")
    assert box.receive(timeout=2) == SocketData(transport.sock, b"hello")
    assert SocketData(transport.sock, b"hello") != SocketData(transport.sock, b"other")
    assert SocketClosed(transport.sock) == SocketClosed(transport.sock)
    assert SocketClosed(transport.sock) != SocketClosed(peer)
    error = mint.TransportError("closed")
    assert SocketError(transport.sock, error) == SocketError(transport.sock, error)
    assert len({SocketClosed(transport.sock), SocketClosed(transport.sock)}) == 1


def test_end_of_stream_is_said_once(box: Mailbox, pair: tuple[Transport, socket.socket]) -> None:
    transport, peer = pair
    box.register(transport)
    peer.sendall(b"last")
    peer.close()
    messages = [box.receive(timeout=2)]
    while not isinstance(messages[-1], SocketClosed):
        messages.append(box.receive(timeout=2))
    assert b"".join(m.data for m in messages if isinstance(m, SocketData)) == b"last"
    with pytest.raises(TimeoutError):
        box.receive(timeout=0.05)
    assert not box.owns(transport)


def test_queued_messages_come_before_a_ready_socket(
    box: Mailbox, pair: tuple[Transport, socket.socket]
) -> None:
    # A socket read while others wait in the queue goes behind them, in wire order;
    # only with an empty queue is its message handed over at once.
    transport, peer = pair
    box.register(transport)
    box.send("posted first")
    peer.sendall(b"one")
    assert box.receive(timeout=2) == "posted first"
    first = box.receive(timeout=2)
    assert isinstance(first, SocketData) and first.data == b"one"
    peer.sendall(b"two")
    second = box.receive(timeout=2)
    assert isinstance(second, SocketData) and second.data == b"two"
    box.send("posted last")
    assert box.receive(timeout=2) == "posted last"


def test_two_ready_sockets_each_deliver(box: Mailbox) -> None:
    pairs = [socket.socketpair() for _ in range(2)]
    transports = []
    for ours, _ in pairs:
        ours.setblocking(False)
        transports.append(Transport(ours, tls=False))
        box.register(transports[-1])
    for i, (_, theirs) in enumerate(pairs):
        theirs.sendall(b"from %d" % i)
    got = {}
    for _ in range(2):
        message = box.receive(timeout=2)
        assert isinstance(message, SocketData)
        got[message.socket] = message.data
    assert got == {t.sock: b"from %d" % i for i, t in enumerate(transports)}
    for transport, (_, theirs) in zip(transports, pairs, strict=True):
        transport.close()
        theirs.close()


def test_timeout_when_nothing_arrives(box: Mailbox) -> None:
    with pytest.raises(TimeoutError):
        box.receive(timeout=0.01)


def test_posted_objects_come_in_order_and_wake_a_blocked_receive(box: Mailbox) -> None:
    box.send("first")
    assert box.receive(timeout=1) == "first"
    result: list[object] = []
    reader = threading.Thread(target=lambda: result.append(box.receive(timeout=5)))
    reader.start()
    box.send({"from": "another thread"})
    reader.join(5)
    assert result == [{"from": "another thread"}]


def test_unregister_hands_back_queued_data_in_order(
    box: Mailbox, pair: tuple[Transport, socket.socket]
) -> None:
    transport, peer = pair
    box.register(transport)
    box.send("other")
    peer.sendall(b"abc")
    # Read the socket into the queue without taking its message out.
    assert box.receive(timeout=1) == "other"
    box._read(transport)  # what a concurrent receive would have queued
    peer.sendall(b"def")
    box._read(transport)
    assert box.unregister(transport, drop=False) == [b"abc", b"def"]
    with pytest.raises(TimeoutError):
        box.receive(timeout=0.01)


def test_read_error_is_socket_error(box: Mailbox) -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    transport = Transport(ours, tls=False)
    box.register(transport)
    theirs.sendall(b"x")
    ours.shutdown(socket.SHUT_RD)  # the next read fails in a way the kernel reports
    message = box.receive(timeout=1)
    assert isinstance(message, SocketData | SocketClosed | SocketError)
    transport.close()
    theirs.close()


def test_default_mailbox_is_per_thread() -> None:
    here = mint.mailbox()
    assert mint.mailbox() is here
    there: list[Mailbox] = []
    worker = threading.Thread(target=lambda: there.append(mint.mailbox()))
    worker.start()
    worker.join()
    assert there[0] is not here


def test_areceive_delivers_socket_input_and_posts(
    box: Mailbox, pair: tuple[Transport, socket.socket]
) -> None:
    transport, peer = pair

    async def main() -> list[object]:
        box.register(transport)
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, peer.sendall, b"async")
        first = await box.areceive(timeout=2)
        threading.Timer(0.01, box.send, args=("posted",)).start()
        second = await box.areceive(timeout=2)
        return [first, second]

    first, second = asyncio.run(main())
    assert isinstance(first, SocketData) and first.data == b"async"
    assert second == "posted"


def test_cancelled_areceive_loses_nothing(
    box: Mailbox, pair: tuple[Transport, socket.socket]
) -> None:
    transport, peer = pair

    async def main() -> object:
        box.register(transport)
        waiter = asyncio.ensure_future(box.areceive())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        peer.sendall(b"kept")
        return await box.areceive(timeout=2)

    message = asyncio.run(main())
    assert isinstance(message, SocketData) and message.data == b"kept"


def test_a_socket_closed_under_the_mailbox_neither_spins_nor_blocks_its_number(
    box: Mailbox, pair: tuple[Transport, socket.socket]
) -> None:
    # Closed without going through the connection (a misuse): poll reports the
    # descriptor as invalid, and the mailbox says so once (SocketError); epoll drops
    # it without a word. Either way nothing spins, and a new socket that gets the same
    # number is the mailbox's as any other (the closed one's end is said then).
    transport, _peer = pair
    box.register(transport)
    sock = transport.sock
    fd = sock.fileno()
    sock.close()
    if not MAILBOX_MODULE._EPOLL:
        message = box.receive(timeout=2)
        assert isinstance(message, SocketError)
        assert message.socket is sock
        assert message.error.reason == "closed"
    started = time.process_time()
    with pytest.raises(TimeoutError):
        box.receive(timeout=0.2)
    assert time.process_time() - started < 0.1  # waited, did not spin
    # A new socket under the closed one's number: the lowest free number, unless a
    # collection closed some other descriptor meanwhile (then dup2 puts it there).
    a, b = socket.socketpair()
    if b.fileno() == fd:
        a, b = b, a
    if a.fileno() != fd:  # (fd is free: two lower numbers went first)
        os.dup2(a.fileno(), fd)
        a.close()
        a = socket.socket(fileno=fd)
    try:
        assert a.fileno() == fd
        a.setblocking(False)
        fresh = Transport(a, tls=False)
        box.register(fresh)
        b.sendall(b"fresh")
        messages = [box.receive(timeout=2)]
        if MAILBOX_MODULE._EPOLL:
            assert isinstance(messages[0], SocketError)
            assert messages[0].socket is sock
            messages = [box.receive(timeout=2)]
        assert isinstance(messages[0], SocketData)
        assert messages[0].socket is a
        assert messages[0].data == b"fresh"
    finally:
        a.close()
        b.close()


def test_a_burst_beyond_one_read_comes_whole(
    box: Mailbox, pair: tuple[Transport, socket.socket]
) -> None:
    # More than one read's worth (READ_SIZE) waiting: the fast path's full read is
    # ended by the mailbox's Python, which reads on; nothing is lost or reordered.
    transport, peer = pair
    box.register(transport)
    blob = os.urandom(300_000)
    sender = threading.Thread(target=peer.sendall, args=(blob,))
    sender.start()
    got = b""
    while len(got) < len(blob):
        message = box.receive(timeout=5)
        assert isinstance(message, SocketData)
        got += message.data
    sender.join(5)
    assert got == blob


def _read_path(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``BaseTransport.recv_ready``'s plain-socket read: the C one, or the Python one."""
    if path == "python":
        monkeypatch.setattr(mint._backend, "_recv_ready", None)
    elif mint._backend._recv_ready is None:
        pytest.skip("mint._iospeedups is not built (or MINT_NO_SPEEDUPS)")


def _tcp_pair(rcvbuf: int | None = None) -> tuple[Transport, socket.socket]:
    """A non-blocking transport over a loopback TCP connection, and the other end."""
    listener = socket.create_server(("127.0.0.1", 0))
    ours = socket.socket()
    if rcvbuf is not None:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    ours.connect(listener.getsockname())
    theirs, _ = listener.accept()
    listener.close()
    ours.setblocking(False)
    return Transport(ours, tls=False), theirs


@pytest.mark.parametrize("path", ["c", "python"])
def test_a_read_without_a_wait_takes_one_burst_at_most(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the mailbox's loop and asyncio's reader read with: everything the socket
    # holds, in one bytes object, but never more than READ_BURST (one busy socket must
    # not starve the others); then None (nothing yet), then b"" (the end).
    _read_path(path, monkeypatch)
    transport, theirs = _tcp_pair(rcvbuf=8 << 20)
    ours = transport.sock
    burst = mint._backend.READ_BURST
    blob = os.urandom(2 * burst + 12_345)
    theirs.sendall(blob)
    deadline = time.monotonic() + 5
    while mint._backend._bytes_held(ours) != len(blob):  # all of it in our socket
        assert time.monotonic() < deadline
        time.sleep(0.01)
    reads = [transport.recv_ready() for _ in range(3)]
    assert [len(r or b"") for r in reads] == [burst, burst, 12_345]
    assert b"".join(r or b"" for r in reads) == blob
    assert transport.recv_ready() is None
    theirs.close()
    deadline = time.monotonic() + 5
    while (end := transport.recv_ready()) is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert end == b""
    transport.close()


@pytest.mark.parametrize("path", ["c", "python"])
def test_a_read_without_a_wait_maps_a_reset(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _read_path(path, monkeypatch)
    transport, theirs = _tcp_pair()
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    theirs.close()
    deadline = time.monotonic() + 5
    with pytest.raises(mint.TransportError) as caught:
        while transport.recv_ready() is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    assert caught.value.reason == "closed"
    assert isinstance(caught.value.__cause__, ConnectionResetError)
    transport.close()


def test_a_reset_is_socket_error_with_its_cause(box: Mailbox) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    ours = socket.create_connection(listener.getsockname())
    theirs, _ = listener.accept()
    listener.close()
    ours.setblocking(False)
    transport = Transport(ours, tls=False)
    box.register(transport)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    theirs.close()  # RST: the next read fails with ECONNRESET
    message = box.receive(timeout=2)
    assert isinstance(message, SocketError), message
    assert message.socket is transport.sock
    assert message.error.reason == "closed"
    assert isinstance(message.error.__cause__, ConnectionResetError)
    assert not box.owns(transport)
    with pytest.raises(TimeoutError):
        box.receive(timeout=0.05)
    transport.close()


@pytest.mark.parametrize("timeout", [0, 0.0, 1, 0.4])
def test_timeouts_of_every_kind(
    box: Mailbox, pair: tuple[Transport, socket.socket], timeout: float
) -> None:
    transport, peer = pair
    box.register(transport)
    if timeout >= 1:
        # an int timeout, with input that comes in time
        threading.Timer(0.05, peer.sendall, args=(b"late",)).start()
        message = box.receive(timeout=timeout)
        assert isinstance(message, SocketData) and message.data == b"late"
        return
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        box.receive(timeout=timeout)
    # It ran out once: not a second wait of the same length on top (a semantic check
    # with a wide margin, not a speed one).
    assert time.monotonic() - started < timeout + 0.35


def test_a_post_at_the_last_moment_is_returned_not_a_timeout(box: Mailbox) -> None:
    # The wake-up and the deadline meet: the queue is looked at before TimeoutError.
    box.send("in time")
    assert box.receive(timeout=0) == "in time"


def test_the_socket_given_away_while_waiting_is_not_read(
    box: Mailbox, pair: tuple[Transport, socket.socket]
) -> None:
    # Another thread unregisters the socket and posts while receive waits: receive
    # returns the post, and the socket's input stays in the socket for its new owner.
    transport, peer = pair
    box.register(transport)

    def give_away() -> None:
        box.unregister(transport, drop=False)
        peer.sendall(b"for the new owner")
        box.send("moved")

    threading.Timer(0.05, give_away).start()
    assert box.receive(timeout=5) == "moved"
    assert transport.sock.recv(100) == b"for the new owner"


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
@pytest.mark.parametrize("handler_raises", [True, False])
def test_a_signal_during_the_wait(
    box: Mailbox, pair: tuple[Transport, socket.socket], handler_raises: bool
) -> None:
    # A handler that raises ends the wait with its exception; one that returns lets
    # the wait go on to the input that comes after it.
    transport, peer = pair
    box.register(transport)

    class Interrupted(Exception):
        pass

    def handler(signum: int, frame: object) -> None:
        if handler_raises:
            raise Interrupted

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        if handler_raises:
            with pytest.raises(Interrupted):
                box.receive(timeout=5)
        else:
            threading.Timer(0.2, peer.sendall, args=(b"after the signal",)).start()
            message = box.receive(timeout=5)
            assert isinstance(message, SocketData) and message.data == b"after the signal"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_the_fast_path_is_in_place_when_built() -> None:
    # When the C extension imports (and is not switched off), receive uses it.
    try:
        import mint._iospeedups  # noqa: F401
    except ImportError:
        pytest.skip("mint._iospeedups is not built")
    if os.environ.get("MINT_NO_SPEEDUPS", "") not in ("", "0"):
        assert MAILBOX_MODULE._fast_receive is None
    else:
        assert MAILBOX_MODULE._fast_receive is not None


def test_module_receive_is_the_c_entry_when_built() -> None:
    """``mint.receive`` is a C function when built (no Python frame per message), with
    the Python function's name, signature and documentation."""
    import inspect

    assert mint.receive is MAILBOX_MODULE.receive
    params = inspect.signature(mint.receive).parameters
    assert list(params) == ["timeout"] and params["timeout"].default is None
    if MAILBOX_MODULE._c is None:
        assert mint.receive is MAILBOX_MODULE._receive
    else:
        assert type(mint.receive).__name__ == "builtin_function_or_method"
        assert mint.receive.__name__ == "receive"
        assert mint.receive.__doc__ is not None
        assert MAILBOX_MODULE._receive.__doc__ in mint.receive.__doc__


def test_module_receive_on_every_path(pair: tuple[Transport, socket.socket]) -> None:
    """The default mailbox's ``receive`` (in a thread of its own, so its mailbox is new):
    none yet, socket input alone, a posted message first, keywords, a timeout, and a
    socket input that the loop in Python ends (end of stream)."""
    transport, peer = pair
    seen: list[object] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with pytest.raises(TimeoutError):
                mint.receive(0.01)  # no mailbox yet: the Python function makes one
            box = mint.mailbox()
            box.register(transport)
            peer.sendall(b"one")
            seen.append(mint.receive(2))  # one socket's input alone
            box.send("posted")
            peer.sendall(b"two")
            time.sleep(0.05)
            seen.append(mint.receive(2))  # queued first: the loop in Python
            seen.append(mint.receive(timeout=2))  # keywords: the Python function
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                mint.receive(0.05)
            seen.append(time.monotonic() - started >= 0.05)
            peer.close()
            seen.append(mint.receive(2))
            box.close()
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert not thread.is_alive() and not errors, errors
    first, posted, second, waited, closed = seen
    assert isinstance(first, SocketData) and first.data == b"one"
    assert posted == "posted"
    assert isinstance(second, SocketData) and second.data == b"two"
    assert waited is True
    assert isinstance(closed, SocketClosed) and closed.socket is transport.sock


@pytest.mark.parametrize("timeout", [float("nan"), "1", b"1", True, [1]])
def test_a_timeout_that_is_not_a_number_is_a_typed_error(timeout: object) -> None:
    # As recv's: NaN waited for ever in areceive on asyncio's loop and raised a raw
    # ValueError elsewhere; a str raised a raw TypeError.
    box = Mailbox()
    for call in (box.receive, mint.receive):
        with pytest.raises(HTTPError) as info:
            call(timeout)  # type: ignore[arg-type]
        assert info.value.reason == ("invalid_timeout", timeout)

    async def scenario() -> None:
        with pytest.raises(HTTPError) as info:
            await asyncio.wait_for(box.areceive(timeout), 2)  # type: ignore[arg-type]
        assert info.value.reason == ("invalid_timeout", timeout)

    asyncio.run(scenario())
    for ok in (0, 0.0, -1, 1e-9):
        with pytest.raises(TimeoutError):
            box.receive(ok)


def test_a_closed_mailbox_takes_no_connection_and_refuses_a_wait(
    box: Mailbox, pair: tuple[Transport, socket.socket]
) -> None:
    """After ``close``, its epoll is gone: ``register`` (what ``connect``,
    ``controlling_process`` and ``set_mode`` call) and a wait on it raised a raw
    ``ValueError`` ("I/O operation on closed epoll object"); the C path would have
    waited on a descriptor number that may be another file's by then. Now both are
    ``HTTPError(("invalid_mailbox", box))``; what was queued still comes out first, and
    a timeout of about 31 years or more is no deadline for ``areceive`` either (a huge
    int overflowed)."""
    transport, _peer = pair
    box.send("queued")
    box.close()
    assert box.closed
    with pytest.raises(HTTPError) as info:
        box.register(transport)
    assert info.value.reason == ("invalid_mailbox", box)
    assert box.receive(0) == "queued"
    for timeout in (0, 1.0, None):
        with pytest.raises(HTTPError) as info:
            box.receive(timeout)
        assert info.value.reason == ("invalid_mailbox", box)

    async def main() -> None:
        with pytest.raises(HTTPError) as info:
            await box.areceive(1.0)
        assert info.value.reason == ("invalid_mailbox", box)
        fresh = Mailbox()
        try:
            fresh.send("posted")
            assert await fresh.areceive(10**400) == "posted"
            asyncio.get_running_loop().call_later(0.01, fresh.send, "later")
            assert await fresh.areceive(10**400) == "later"
        finally:
            fresh.close()

    asyncio.run(main())


@pytest.mark.parametrize("owned", [False, True])
def test_a_wait_under_way_meets_the_close(
    box: Mailbox, pair: tuple[Transport, socket.socket], owned: bool
) -> None:
    """``close`` woke nobody: a thread in ``receive`` or a task in ``areceive`` waited
    until its deadline, and an untimed one for ever (on descriptors already released).
    Now each is woken and refused, as a wait begun after the close is."""
    transport, _peer = pair
    if owned:
        box.register(transport)
    outcome: list[BaseException | object] = []

    def wait() -> None:
        try:
            outcome.append(box.receive(None))
        except BaseException as exc:  # reported by the test's thread
            outcome.append(exc)

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    time.sleep(0.2)  # (in its poll by now; a later start would be refused anyway)
    assert thread.is_alive() and not outcome
    box.close()
    thread.join(5)
    assert not thread.is_alive(), "a receive under way slept through the close"
    assert isinstance(outcome[0], HTTPError)
    assert outcome[0].reason == ("invalid_mailbox", box)

    async def main(closer: str) -> None:
        other = Mailbox()
        if owned:
            box.unregister(transport, drop=True)
            other.register(transport)
        waiting = asyncio.ensure_future(other.areceive(None))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        if closer == "loop":
            other.close()
        else:
            await asyncio.to_thread(other.close)
        with pytest.raises(HTTPError) as info:
            await asyncio.wait_for(waiting, 5)
        assert info.value.reason == ("invalid_mailbox", other)

    asyncio.run(main("loop"))
    asyncio.run(main("thread"))


def test_waits_racing_the_close_are_refused_and_lose_nothing(box: Mailbox) -> None:
    """Threads waiting while objects are posted and the mailbox closed: each wait ends
    with a posted object or the refusal, and every object posted before the close is
    taken. A thread about to poll the epoll, or polling it again after giving up the
    GIL, as another thread's close released it met a raw ``OSError(EBADF)``; and with
    the descriptor's number taken again meanwhile, a wait on another's epoll."""
    for _ in range(60):
        other = Mailbox()  # (of the fixture's path and selector)
        got: list[object] = []
        errors: list[BaseException] = []

        def wait(
            other: Mailbox = other, got: list[object] = got, errors: list[BaseException] = errors
        ) -> None:
            try:
                while True:
                    got.append(other.receive(None))
            except HTTPError as exc:
                if exc.reason != ("invalid_mailbox", other):
                    errors.append(exc)
            except BaseException as exc:  # reported by the test's thread
                errors.append(exc)

        threads = [threading.Thread(target=wait, daemon=True) for _ in range(3)]
        for thread in threads:
            thread.start()
        for i in range(3):
            other.send(i)
        other.close()
        for thread in threads:
            thread.join(5)
        assert not any(thread.is_alive() for thread in threads), "a wait slept through"
        assert not errors, errors
        assert sorted(got) == [0, 1, 2]  # type: ignore[type-var]


@pytest.mark.parametrize("then", ["nothing", "a_new_mailbox"])
def test_a_close_from_a_signal_handler_ends_the_wait(box: Mailbox, then: str) -> None:
    """A signal handler that closes the mailbox the thread waits on: the Python loop's
    epoll wait, retried after the signal, polled the released descriptor (a raw
    ``OSError(EBADF)``); the C wait polled it again by its number, which a mailbox
    made in the handler had taken (a wait for ever, or to its deadline)."""
    made: list[Mailbox] = []

    def handler(signum: int, frame: object) -> None:
        box.close()
        if then == "a_new_mailbox":
            made.append(Mailbox())

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(HTTPError) as info:
            box.receive(5)
        assert info.value.reason == ("invalid_mailbox", box)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        for mailbox in made:
            mailbox.close()


@pytest.mark.parametrize("entry", ["mint.receive", "python", "the_box"])
def test_a_default_mailbox_closed_under_a_wait_refuses_it(box: Mailbox, entry: str) -> None:
    """The thread's default mailbox closed by another thread while the thread waits on
    it: the wait moved to a new default nobody could reach (for ever, or its whole
    timeout again). It is refused, as any wait under way at a close; the next
    ``mint.receive`` takes a new default."""
    outcome: list[object] = []
    defaults: list[Mailbox] = []
    waiting = threading.Event()
    receive = {
        "mint.receive": mint.receive,
        "python": MAILBOX_MODULE._receive,
        "the_box": lambda timeout: mint.mailbox().receive(timeout),
    }[entry]

    def run() -> None:
        try:
            defaults.append(mint.mailbox())
            waiting.set()
            try:
                outcome.append(receive(5))
            except BaseException as exc:  # reported by the test's thread
                outcome.append(exc)
            mint.mailbox().send("next")
            outcome.append(receive(1))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert waiting.wait(5)
    time.sleep(0.2)  # (in its wait by now)
    defaults[0].close()
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(outcome[0], HTTPError), outcome
    assert outcome[0].reason == ("invalid_mailbox", defaults[0])
    assert outcome[1] == "next"  # a new default's


def test_two_threads_closing_at_once(box: Mailbox) -> None:
    """``close`` walked the sockets as another ``close`` cleared them: a raw
    ``RuntimeError`` (dictionary changed size during iteration)."""
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(40):
            other = Mailbox()
            pairs = [socket.socketpair() for _ in range(150)]
            try:
                for ours, _peer in pairs:
                    ours.setblocking(False)
                    other.register(Transport(ours, tls=False))
                start = threading.Barrier(2)
                errors: list[BaseException] = []

                def close(
                    other: Mailbox = other,
                    errors: list[BaseException] = errors,
                    start: threading.Barrier = start,
                ) -> None:
                    start.wait(5)
                    try:
                        other.close()
                    except BaseException as exc:  # reported by the test's thread
                        errors.append(exc)

                closers = [threading.Thread(target=close, daemon=True) for _ in range(2)]
                for thread in closers:
                    thread.start()
                for thread in closers:
                    thread.join(5)
                assert not errors, errors
            finally:
                for ours, peer in pairs:
                    ours.close()
                    peer.close()
    finally:
        sys.setswitchinterval(switch)


def _run_alone(script: str) -> subprocess.CompletedProcess[str]:
    """``script`` in a Python of its own, bounded (a deadlock or a signal's death is
    its exit status there, not this run's)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_post_after_the_close_is_no_sigpipe() -> None:
    """``close`` shuts the wake-up socket's writing end; a ``send`` after it wrote
    there and got SIGPIPE, which kills a program that restored its default action (as
    command-line tools do). The post is queued and taken, as before."""
    done = _run_alone(
        """
        import signal
        import mint
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        box = mint.Mailbox()
        box.close()
        box.send("late")
        print(box.receive(1))
        """
    )
    assert (done.returncode, done.stdout.strip()) == (0, "late"), done.stderr


def test_a_close_from_a_signal_handler_amid_the_queues_work() -> None:
    """A signal handler runs between two bytecodes of its thread, maybe while that
    thread holds the queue's lock: a ``close`` that took that lock waited for ever."""
    done = _run_alone(
        """
        import signal
        import mint
        for n in range(300):
            box = mint.Mailbox()
            signal.signal(signal.SIGALRM, lambda *_: box.close())
            signal.setitimer(signal.ITIMER_REAL, 0.0005 + (n % 7) * 0.0001)
            try:
                for i in range(200_000):
                    box.send(i)
                    box.receive(0)
                    if box.closed:
                        break
            except mint.HTTPError as exc:
                assert exc.reason == ("invalid_mailbox", box), exc
            signal.setitimer(signal.ITIMER_REAL, 0)
        print("ok")
        """
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr


def test_a_closed_default_mailbox_is_replaced() -> None:
    """``mint.mailbox()`` and ``mint.aio.mailbox()`` hand out a new mailbox once their
    default was closed (``mint.receive`` too, by its C entry and its Python function),
    also when another thread closed it."""
    errors: list[BaseException] = []
    defaults: list[Mailbox] = []
    closed_elsewhere = threading.Event()

    def run() -> None:
        try:
            first = mint.mailbox()
            first.close()
            second = mint.mailbox()
            assert second is not first and not second.closed
            second.send(1)
            assert mint.receive(1) == 1
            defaults.append(second)
            assert closed_elsewhere.wait(10)  # the main thread closed ``second``
            assert second.closed
            with pytest.raises(TimeoutError):
                mint.receive(0.01)  # a new default's timeout, not the closed one's refusal
            third = mint.mailbox()
            assert third is not second and not third.closed
            third.send(3)
            assert mint.receive(timeout=1) == 3
            third.close()
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while not defaults and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert defaults, errors
    defaults[0].close()
    closed_elsewhere.set()
    thread.join(10)
    assert not thread.is_alive() and not errors, errors

    async def main() -> None:
        import mint.aio

        first = mint.aio.mailbox()
        first.close()
        second = mint.aio.mailbox()
        assert second is not first and not second.closed
        second.send("x")
        assert await mint.aio.receive(1) == "x"
        second.close()

    asyncio.run(main())


def test_a_number_another_socket_took_is_not_read_for_the_old_owner(
    box: Mailbox, pair: tuple[Transport, socket.socket]
) -> None:
    # The owner's socket closed behind the mailbox's back, its number taken by a new
    # socket of another mailbox: poll waits on numbers, and the C path read the new
    # socket's bytes for the old owner (and the other mailbox never got them).
    transport, _peer = pair
    box.register(transport)
    number = transport.sock.fileno()
    old = transport.sock
    old.close()
    ours, theirs = socket.socketpair()
    other = Mailbox()
    new = Transport(ours, tls=False)
    try:
        if ours.fileno() != number:
            pytest.skip("the number was not reused")
        other.register(new)
        theirs.sendall(b"for the new one")
        got = []
        with contextlib.suppress(TimeoutError):
            while True:
                got.append(box.receive(0.2))
        assert not any(isinstance(m, SocketData) for m in got), got
        message = other.receive(2)
        assert isinstance(message, SocketData) and message.socket is ours
        assert message.data == b"for the new one"
    finally:
        other.close()
        new.close()
        theirs.close()
