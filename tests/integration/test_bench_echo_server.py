"""The benchmarks' C echo server (``bench/echo_server.c``) echoes what it is sent, exactly.

Every figure in ``bench/reports`` is a round trip through it, so a server that dropped,
reordered or corrupted bytes (or stalled on a frame split across reads) would make
those figures wrong without failing any benchmark. It streams: a frame's header is
answered as soon as it is parsed and its payload is unmasked read by read, so the
cases that matter are frames split at every byte, frames larger than its 256 KiB read
buffer and its 256 KiB output blocks, and many frames in one read.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers.raw import accept_key

import mint
from mint.http import Data
from mint.websocket import Binary, Close, Ping, Pong, Text

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "bench" / "echo_server.c"


@pytest.fixture(scope="module")
def echo_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no C compiler: the benchmark server cannot be built")
    exe = tmp_path_factory.mktemp("echo") / "echo_server"
    subprocess.run([gcc, "-O3", "-Wall", "-Werror", "-o", str(exe), str(SOURCE)], check=True)
    proc = subprocess.Popen(
        [str(exe), "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY "), line
        yield int(line.split()[1])
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # its end of file stops the server
        try:
            assert proc.wait(timeout=10) == 0
        finally:
            proc.kill()
            assert proc.stdout is not None
            proc.stdout.close()


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        more = sock.recv(min(n, 1 << 20))
        if not more:
            raise ConnectionError(f"server closed with {n} bytes still expected")
        chunks.append(more)
        n -= len(more)
    return b"".join(chunks)


def _raw_upgrade(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key.encode() + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        more = sock.recv(1)
        assert more, "server closed during the handshake"
        head += more
    assert head.startswith(b"HTTP/1.1 101 ")
    assert f"Sec-WebSocket-Accept: {accept_key(key)}".encode() in head
    return sock


def _client_frame(b0: int, payload: bytes, key: bytes | None) -> bytes:
    n = len(payload)
    mask_bit = 0x80 if key is not None else 0
    if n < 126:
        head = struct.pack("!BB", b0, mask_bit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mask_bit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mask_bit | 127, n)
    if key is None:
        return head + payload
    body = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if n < 4096 else _mask(payload, key)
    return head + key + body


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    k = int.from_bytes(key * (n // 4 + 1), "little") & ((1 << (8 * n)) - 1)
    return (int.from_bytes(payload, "little") ^ k).to_bytes(n, "little")


def _server_frame(b0: int, payload: bytes) -> bytes:
    return _client_frame(b0, payload, None)


@pytest.mark.parametrize("size", [0, 1, 7, 125, 126, 65535, 65536, 300_000, 1 << 20])
def test_echo_of_every_length_field(echo_port: int, size: int) -> None:
    sock = _raw_upgrade(echo_port)
    with sock:
        payload = os.urandom(size)
        sock.sendall(_client_frame(0x82, payload, os.urandom(4)))
        expected = _server_frame(0x82, payload)
        assert _recv_exactly(sock, len(expected)) == expected


def test_frames_split_at_every_byte(echo_port: int) -> None:
    """Each byte in a write of its own (and Nagle off): the header is gathered across
    reads and the mask key's offset carries from one read to the next."""
    sock = _raw_upgrade(echo_port)
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        frames = [(0x81, b"hello, world"), (0x82, os.urandom(130)), (0x89, b"pp")]
        wire = b"".join(_client_frame(b0, p, os.urandom(4)) for b0, p in frames)
        for i in range(len(wire)):
            sock.send(wire[i : i + 1])
        expected = b"".join(_server_frame(0x8A if b0 == 0x89 else b0, p) for b0, p in frames)
        assert _recv_exactly(sock, len(expected)) == expected


def test_many_frames_in_one_write_and_a_large_backlog(echo_port: int) -> None:
    """What the pipelined benchmark does: 64 MiB written before anything is read, so the
    answers queue in many output blocks; they come back whole and in order."""
    sock = _raw_upgrade(echo_port)
    with sock:
        payloads = [os.urandom(n) for n in (16, 1 << 20, 3, 200_000)] * 16
        wire = b"".join(_client_frame(0x82, p, os.urandom(4)) for p in payloads)
        sock.sendall(wire)
        expected = b"".join(_server_frame(0x82, p) for p in payloads)
        assert _recv_exactly(sock, len(expected)) == expected


def test_fragments_unmasked_frames_and_control_frames(echo_port: int) -> None:
    sock = _raw_upgrade(echo_port)
    with sock:
        key = os.urandom(4)
        sock.sendall(
            _client_frame(0x01, b"frag", key)  # text, not FIN: echoed as a fragment
            + _client_frame(0x80, b"ment", key)  # continuation, FIN
            + _client_frame(0x8A, b"ignored", key)  # pong: no answer
            + _client_frame(0xC2, b"rsv1", key)  # RSV1 kept
            + _client_frame(0x82, b"unmasked", None)  # echoed as it came
            + _client_frame(0x89, b"are you there", key)  # ping: pong, same payload
        )
        expected = (
            _server_frame(0x01, b"frag")
            + _server_frame(0x80, b"ment")
            + _server_frame(0xC2, b"rsv1")
            + _server_frame(0x82, b"unmasked")
            + _server_frame(0x8A, b"are you there")
        )
        assert _recv_exactly(sock, len(expected)) == expected


def test_close_is_answered_then_the_connection_ends(echo_port: int) -> None:
    sock = _raw_upgrade(echo_port)
    with sock:
        close = struct.pack("!H", 1000) + b"bye"
        sock.sendall(
            _client_frame(0x88, close, os.urandom(4)) + _client_frame(0x82, b"late", os.urandom(4))
        )
        expected = _server_frame(0x88, close)
        assert _recv_exactly(sock, len(expected)) == expected
        assert sock.recv(100) == b"", "nothing after the Close, then end of stream"


def test_oversized_frame_ends_the_connection(echo_port: int) -> None:
    sock = _raw_upgrade(echo_port)
    with sock:
        sock.sendall(struct.pack("!BBQ", 0x82, 0xFF, (16 << 20) + 1) + os.urandom(4))
        assert sock.recv(100) == b""


def test_a_request_without_a_key_gets_400(echo_port: int) -> None:
    with socket.create_connection(("127.0.0.1", echo_port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while more := sock.recv(4096):
            answer += more
        assert answer.startswith(b"HTTP/1.1 400 ")


def test_mint_round_trips_through_it(echo_port: int) -> None:
    """The benchmark's own path: mint's passive client, frames of each kind."""
    conn = mint.http.connect("http", "127.0.0.1", echo_port, mode="passive")
    conn, ref = mint.websocket.upgrade("ws", conn, "/", [])
    responses: list[object] = []
    while not any(isinstance(r, mint.http.Done) for r in responses):
        conn, more = mint.websocket.recv(conn, 0, 5.0)
        responses += more
    status = next(r.status for r in responses if isinstance(r, mint.http.Status))
    headers = next(r.headers for r in responses if isinstance(r, mint.http.Headers))
    conn, ws = mint.websocket.new(conn, ref, status, headers, mode="passive")
    sent = [Text("héllo"), Binary(os.urandom(70_000)), Ping(b"x"), Binary(b""), Close(1000, "done")]
    for frame in sent:
        ws, data = mint.websocket.encode(ws, frame)
        conn = mint.websocket.stream_request_body(conn, ref, data)
    got: list[object] = []
    while len(got) < len(sent):
        conn, responses = mint.websocket.recv(conn, 0, 5.0)
        for r in responses:
            assert isinstance(r, Data)
            ws, frames = mint.websocket.decode(ws, r.data)
            got += frames
    assert got == [Text("héllo"), sent[1], Pong(b"x"), Binary(b""), Close(1000, "done")]
    mint.http.close(conn)
