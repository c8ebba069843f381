"""mint.aio against real servers: cancellation, timeouts, backpressure, 1,000 connections.

The 1,000-connection test talks to a ``websockets`` asyncio echo server in a subprocess
(its own process, so the client's loop is measured alone); it prints its wall time and
the client process's peak RSS (``pytest -s`` shows them).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import resource
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aio_client import Client, Flavour, connect, run
from conftest_h2 import h2_fault  # noqa: F401 - fixture
from servers.raw import OP_BINARY, OP_TEXT, drain, parse_frames
from test_fast_io import upgraded

import mint
import mint.aio
from mint.aio._backend import WINDOW_HIGH_WATER
from mint.http import Data, Done, Headers, Status
from mint.websocket import Binary, Close, Text

AIO = Flavour("aio")
HOST = "127.0.0.1"


# -- cancellation and timeouts ------------------------------------------------------------------
def test_cancelled_recv_loses_nothing(ws_server: Any) -> None:
    async def scenario() -> None:
        client = await connect(AIO, ws_server, mode="passive")
        try:
            await client.upgrade("/echo")
            for i in range(10):
                waiting = asyncio.ensure_future(mint.aio.websocket.recv(client.conn, 0, None))
                await asyncio.sleep(0)
                await client.send(Text(f"message {i}"))
                await asyncio.sleep(0.001 * (i % 3))  # sometimes before the echo, sometimes after
                waiting.cancel()
                try:
                    client.conn, responses = await waiting
                except asyncio.CancelledError:
                    continue
                for response in responses:  # the recv won the race: keep its frames
                    client.websocket, frames = mint.websocket.decode(
                        client.websocket, response.data
                    )
                    client.early += frames
            frames = await client.frames(10)
            assert frames == [Text(f"message {i}") for i in range(10)]
        finally:
            await client.close()

    run(scenario())


def test_receive_timeout_then_the_message_still_comes(ws_server: Any) -> None:
    async def scenario() -> None:
        client = await connect(AIO, ws_server, mode="active")
        assert client.mailbox is not None
        try:
            await client.upgrade("/echo")
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await client.mailbox.areceive()
            with pytest.raises(TimeoutError):
                await client.mailbox.areceive(timeout=0.05)
            await client.send(Text("late"))
            assert await client.frames() == [Text("late")]
        finally:
            await client.close()

    run(scenario())


async def big_send_half_way(
    client: Client, opened: threading.Event, payload: bytes, scheme: str = "ws"
) -> asyncio.Future[Any]:
    """Upgrade on a raw server that reads nothing yet, start sending ``payload`` as one
    binary frame, and return that send once it waits for the socket to take more."""
    await client.upgrade("/", scheme=scheme)
    opened.set()
    client.websocket, data = mint.websocket.encode(client.websocket, Binary(payload))
    sending = asyncio.ensure_future(
        mint.aio.websocket.stream_request_body(client.conn, client.ref, data)
    )
    while not client.conn._transport._waiter.writing:
        assert not sending.done()
        await asyncio.sleep(0)
    return sending


async def arrived(received: list[Any]) -> None:
    """Give the raw server's script up to 30 s to have parsed what it reads."""
    for _ in range(3000):
        if received:
            return
        await asyncio.sleep(0.01)


def read_into(conn: socket.socket, data: bytearray, size: int) -> None:
    """The raw server's read: ``data`` up to ``size`` bytes (fewer at the end)."""
    while len(data) < size and (more := conn.recv(1 << 20)):
        data += more


def assert_whole(received: list[Any], *expected: tuple[int, bytes]) -> None:
    """The server read exactly these frames, each whole (FIN), and nothing else."""
    frames, rest = received[0]
    assert [(f.fin, f.opcode, f.payload) for f in frames] == [(True, *e) for e in expected]
    assert rest == b""


@pytest.mark.parametrize("mode", ["active", "passive"])
def test_cancelled_big_send_keeps_the_stream_whole(raw_server: Any, mode: str) -> None:
    """A 16 MiB frame's send is cancelled half-way: the rest still goes, then the next frame.

    The server reads nothing until the cancel, so the socket fills and the send must
    wait half-way (with a peer reading as fast as we write, loopback can take all 16
    MiB in one step: the receive buffer grows to 32 MiB here).
    """
    big = os.urandom(16 << 20)
    go, opened = threading.Event(), threading.Event()
    received: list[Any] = []
    expected = (2 + 8 + 4 + len(big)) + (2 + 4 + len(b"after"))  # both frames, masked

    def script(conn: socket.socket) -> None:
        go.wait(30)
        data = bytearray()
        read_into(conn, data, expected)
        received.append(parse_frames(bytes(data)))
        drain(conn)

    server = raw_server(upgraded(script, opened))

    async def scenario() -> None:
        client = await connect(AIO, server, mode=mode)
        try:
            sending = await big_send_half_way(client, opened, big)
            sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending
            go.set()
            await client.send(Text("after"))
            await arrived(received)
        finally:
            await client.close()

    run(scenario())
    assert_whole(received, (OP_BINARY, big), (OP_TEXT, b"after"))


@pytest.mark.parametrize("tls", [None, "good"])
def test_a_failed_background_write_is_what_the_next_send_reports(
    raw_server: Any, tls: str | None
) -> None:
    """The rest of a cancelled send goes out in the background; the peer resets the
    connection before it does. The next send reports the connection closed: over TLS
    it used to report OpenSSL's complaint about a write retried with other bytes,
    ``("tls_alert", "bad_length", ...)``."""
    opened, reset = threading.Event(), threading.Event()

    def script(conn: socket.socket) -> None:  # reads nothing, then resets
        reset.wait(30)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    server = raw_server(upgraded(script, opened), tls=tls)

    async def scenario() -> None:
        client = await connect(AIO, server, mode="passive")
        try:
            big = os.urandom(16 << 20)
            sending = await big_send_half_way(client, opened, big, "wss" if tls else "ws")
            transport = client.conn._transport
            sending.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sending
            assert transport._unsent  # the rest waits for the socket, in the background
            reset.set()
            for _ in range(1000):  # the background write meets the reset
                if not transport._unsent:
                    break
                await asyncio.sleep(0.01)
            assert not transport._unsent
            with pytest.raises(mint.TransportError) as info:
                await client.send(Text("after"))
            assert info.value.reason == "closed"
        finally:
            await client.close()

    run(scenario())


@pytest.mark.parametrize("mode", ["active", "passive"])
def test_a_send_does_not_cut_into_a_send_that_waits(raw_server: Any, mode: str) -> None:
    """One task's 16 MiB frame waits for the socket; the server then reads some, so the
    socket has room before that task is woken; another send now must wait its turn.

    It did not: the send that found the first one under way went to the Python
    ``stream_request_body``, whose first write (``send_now``) did not look whether a
    send was under way, and put its frame into the middle of the big one (the peer
    saw an invalid opcode; with the echo test above, 2 runs in 40).
    """
    big = os.urandom(16 << 20)
    opened, some, read_some, rest = (threading.Event() for _ in range(4))
    received: list[Any] = []
    expected = (2 + 8 + 4 + len(big)) + (2 + 4 + len(b"second"))

    def script(conn: socket.socket) -> None:
        some.wait(30)
        data = bytearray()
        read_into(conn, data, 1 << 20)
        read_some.set()
        rest.wait(30)
        read_into(conn, data, expected)
        received.append(parse_frames(bytes(data)))
        drain(conn)

    server = raw_server(upgraded(script, opened))

    async def scenario() -> None:
        client = await connect(AIO, server, mode=mode)
        try:
            sending = await big_send_half_way(client, opened, big)
            client.websocket, second = mint.websocket.encode(client.websocket, Text("second"))
            some.set()
            assert read_some.wait(30)  # (the loop is held: the first send is not woken)
            time.sleep(0.05)  # (the read's room reaches our side of the socket)
            second_send = asyncio.ensure_future(
                mint.aio.websocket.stream_request_body(client.conn, client.ref, second)
            )
            await asyncio.sleep(0)
            rest.set()
            await asyncio.wait_for(asyncio.gather(sending, second_send), 30)
            await arrived(received)
        finally:
            await client.close()

    run(scenario())
    assert_whole(received, (OP_BINARY, big), (OP_TEXT, b"second"))


@pytest.mark.parametrize("mode", ["active", "passive"])
def test_two_tasks_sending_at_once_take_turns(ws_server: Any, mode: str) -> None:
    """Two tasks write big frames on one connection at once: both arrive whole.

    The second send went straight to the socket while the first waited for it to
    drain: its bytes landed inside the first frame (the server saw garbage) and the
    first writer hung. Sends now take turns (AsyncWaiter.write_turn).
    """

    async def scenario() -> None:
        client = await connect(AIO, ws_server, mode=mode)
        try:
            await client.upgrade("/echo")
            big = [bytes([65 + i]) * (4 * 2**20) for i in range(3)]
            datas = []
            for payload in big:
                client.websocket, data = mint.websocket.encode(client.websocket, Binary(payload))
                datas.append(data)
            conn, ref = client.conn, client.ref
            # The echoes are read meanwhile (one reading task): a server whose replies
            # nobody reads stops reading too, and the sends would wait for ever.
            reading = asyncio.ensure_future(client.frames(3, timeout=30))
            sends = [mint.aio.websocket.stream_request_body(conn, ref, data) for data in datas]
            done = await asyncio.wait_for(asyncio.gather(*sends), 30)
            assert len(done) == 3
            frames = await reading
            assert sorted(frames, key=lambda f: f.data[:1]) == [Binary(p) for p in big]
        finally:
            await client.close()

    run(scenario())


# -- backpressure -------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["active", "passive"])
def test_http2_body_awaits_the_peers_windows(h2_fault: Any, mode: str) -> None:  # noqa: F811
    """Tiny windows: each ``await stream_request_body`` returns with at most the mark queued."""
    peer = h2_fault(initial_window=65_535, window_step=16_384)
    assert WINDOW_HIGH_WATER is not None

    async def scenario() -> None:
        client = await connect(AIO, peer, mode=mode, protocols=("http2",))
        try:
            http = mint.aio.http
            client.conn, ref = await http.request(
                client.conn, "POST", "/sink", [], mint.http.STREAM
            )
            chunks = [os.urandom(1 << 20) for _ in range(6)]
            for chunk in chunks:
                client.conn = await http.stream_request_body(client.conn, ref, chunk)
                assert http.pending_bytes(client.conn) <= WINDOW_HIGH_WATER
            client.conn = await http.stream_request_body(client.conn, ref, mint.http.EOF)
            body, done = b"", False
            while not done:
                for response in await client.responses(timeout=30):
                    match response:
                        case Data(ref=r, data=data) if r == ref:
                            body += data
                        case Done(ref=r) if r == ref:
                            done = True
            payload = b"".join(chunks)
            assert body == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}".encode()
        finally:
            await client.close()

    run(scenario())


# -- 1,000 WebSockets, one loop, one mailbox ----------------------------------------------------
ECHO_SERVER = """
import asyncio, sys
from websockets.asyncio.server import serve

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with serve(echo, "127.0.0.1", 0, compression=None, backlog=4096) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


@dataclass
class EchoServer:
    host: str
    port: int
    scheme: str = "http"


@pytest.fixture
def echo_server_process() -> Iterator[EchoServer]:
    proc = subprocess.Popen(
        [sys.executable, "-c", ECHO_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield EchoServer(HOST, port)
    finally:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()  # the server's stdin read returns: it stops
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _open(server: EchoServer, box: mint.Mailbox, limit: asyncio.Semaphore) -> Any:
    async with limit:
        return await mint.aio.http.connect("http", server.host, server.port, mailbox=box)


def test_thousand_websockets_one_loop(echo_server_process: EchoServer) -> None:
    count = 1000
    _raise_fd_limit(count + 256)

    async def scenario() -> tuple[float, float]:
        started = time.monotonic()
        rss_before = _rss_mib()
        box = mint.aio.mailbox()  # the loop's default mailbox: every connection delivers here
        limit = asyncio.Semaphore(200)  # connects in flight (the server's accept queue)
        conns = await asyncio.gather(
            *(_open(echo_server_process, box, limit) for _ in range(count))
        )
        clients: dict[Any, Client] = {}
        for conn in conns:
            conn, ref = await mint.aio.websocket.upgrade("ws", conn, "/", [])
            client = Client(AIO, conn, "active", box, ref=ref)
            clients[mint.aio.http.get_socket(conn)] = client

        # One consumer: each message goes to its connection's ``stream``.
        upgraded: dict[Any, list[Any]] = {sock: [] for sock in clients}
        pending = set(clients)
        while pending:
            message = await mint.aio.receive(timeout=30)
            client = clients[message.socket]  # type: ignore[attr-defined]
            client.conn, responses = await mint.aio.websocket.stream(client.conn, message)
            upgraded[message.socket] += responses  # type: ignore[attr-defined]
            if any(isinstance(r, Done) for r in responses):
                pending.discard(message.socket)  # type: ignore[attr-defined]
        for sock, client in clients.items():
            status = next(r.status for r in upgraded[sock] if isinstance(r, Status))
            headers = next(r.headers for r in upgraded[sock] if isinstance(r, Headers))
            client.conn, client.websocket = mint.aio.websocket.new(
                client.conn, client.ref, status, headers
            )

        for i, client in enumerate(clients.values()):
            await client.send(Text(f"hello {i}"))
        echoed: dict[Any, list[Any]] = {sock: [] for sock in clients}
        while sum(len(frames) for frames in echoed.values()) < count:
            message = await mint.aio.receive(timeout=30)
            client = clients[message.socket]  # type: ignore[attr-defined]
            client.conn, responses = await mint.aio.websocket.stream(client.conn, message)
            for response in responses:
                client.websocket, frames = mint.aio.websocket.decode(
                    client.websocket, response.data
                )
                echoed[message.socket] += frames  # type: ignore[attr-defined]
        assert [echoed[sock] for sock in clients] == [[Text(f"hello {i}")] for i in range(count)]

        for client in clients.values():
            await client.send(Close(1000, ""))
            client.conn = await mint.aio.http.close(client.conn)
        wall = time.monotonic() - started
        return wall, _rss_mib() - rss_before

    wall, rss_growth = run(scenario(), timeout=120)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\n1,000 WebSockets on one loop: {wall:.2f} s wall, RSS +{rss_growth:.1f} MiB,"
        f" peak RSS of the test process {peak:.1f} MiB"
    )
    assert wall < 60
