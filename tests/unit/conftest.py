"""Fixtures shared by the unit tests."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mint._backend import BaseTransport
from mint._transport import Transport
from mint.aio._transport import AsyncTransport


def _socket_pair(
    flavour: Callable[..., BaseTransport],
) -> Iterator[tuple[Any, socket.socket]]:
    """A transport of ``flavour`` over one end of a socket pair, and the other end."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    transport = flavour(ours, tls=False)
    yield transport, theirs
    transport.close()
    theirs.close()


@pytest.fixture
def pair() -> Iterator[tuple[Transport, socket.socket]]:
    """A blocking-flavour transport over one end of a socket pair, and the other end."""
    yield from _socket_pair(Transport)


@pytest.fixture
def async_pair() -> Iterator[tuple[AsyncTransport, socket.socket]]:
    """The same with the asyncio flavour (its waits need a running loop)."""
    yield from _socket_pair(AsyncTransport)
