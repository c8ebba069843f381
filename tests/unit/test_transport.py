"""The transport's reads: bursts through the scratch buffer come out as independent bytes."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from mint._backend import READ_BURST
from mint._transport import Transport


def _send_in_thread(peer: socket.socket, data: bytes) -> threading.Thread:
    def run() -> None:
        peer.sendall(data)
        peer.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("reader", ["recv", "recv_ready"])
def test_bulk_reads_are_whole_and_never_alias_the_scratch_buffer(
    pair: tuple[Transport, socket.socket], reader: str
) -> None:
    transport, peer = pair
    data = os.urandom(5 * READ_BURST + 12345)
    thread = _send_in_thread(peer, data)
    got: list[bytes] = []
    while True:
        if reader == "recv":
            chunk = transport.recv(0, 5.0)
        else:
            transport._waiter.wait(1, None)  # READ
            maybe = transport.recv_ready()
            assert maybe is not None
            chunk = maybe
        if not chunk:
            break
        assert type(chunk) is bytes
        assert len(chunk) <= READ_BURST + 65536
        got.append(chunk)
    thread.join(5)
    # Every earlier chunk is still what it was: none is a view of the reused buffer.
    assert b"".join(got) == data
    assert any(len(c) > 65536 for c in got)  # the scratch path did run


def test_exact_byte_count_reads_still_return_exactly(
    pair: tuple[Transport, socket.socket],
) -> None:
    transport, peer = pair
    data = os.urandom(3 * READ_BURST)
    thread = _send_in_thread(peer, data)
    first = transport.recv(100_000, 5.0)
    assert first == data[:100_000]
    got = [first]
    while chunk := transport.recv(0, 5.0):
        got.append(chunk)
    assert b"".join(got) == data
    thread.join(5)
