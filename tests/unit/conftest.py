"""Fixtures shared by the unit tests."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from mint._transport import Transport


@pytest.fixture
def pair() -> Iterator[tuple[Transport, socket.socket]]:
    """A blocking-flavour transport over one end of a socket pair, and the other end."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    transport = Transport(ours, tls=False)
    yield transport, theirs
    transport.close()
    theirs.close()
