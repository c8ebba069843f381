"""The WebSocket frames a caller encodes and decode hands back (Mint's ``frame()``).

Frozen, slotted dataclasses so ``match`` can destructure them; ``"ping"``,
``"pong"`` and ``"close"`` are the shorthands :func:`mint.websocket.encode` accepts.

A caller builds one frame per message it sends, so construction is on the hot
path: each ``__init__`` here sets its slots through the slot descriptors, which
costs half of what the frozen dataclass's generated ``__init__`` does (that one
reaches ``object.__setattr__`` through a closure for every field). With the C
module built, a positional call does not enter ``__init__`` at all: it fills the
slots from C (``_speedups.constructor``, installed by ``mint.websocket._frame``),
210 → 60 ns for ``Binary(data)``; keyword calls, subclasses and a patched
``__init__`` still run the Python one. Everything
else (``fields``, ``replace``, ``==``, ``hash``, ``repr``, ``match``, and
``FrozenInstanceError`` on assignment) is the dataclass's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, cast


@dataclass(frozen=True, slots=True, init=False)
class Text:
    data: str

    def __init__(self, data: str) -> None:
        _set_text_data(self, data)


@dataclass(frozen=True, slots=True, init=False)
class Binary:
    data: bytes

    def __init__(self, data: bytes) -> None:
        _set_binary_data(self, data)


@dataclass(frozen=True, slots=True, init=False)
class Ping:
    data: bytes = b""

    def __init__(self, data: bytes = b"") -> None:
        _set_ping_data(self, data)


@dataclass(frozen=True, slots=True, init=False)
class Pong:
    data: bytes = b""

    def __init__(self, data: bytes = b"") -> None:
        _set_pong_data(self, data)


@dataclass(frozen=True, slots=True, init=False)
class Close:
    code: int | None = None
    reason: str | None = None

    def __init__(self, code: int | None = None, reason: str | None = None) -> None:
        _set_close_code(self, code)
        _set_close_reason(self, reason)


def _setter(cls: type, name: str) -> Any:
    """The slot descriptor's ``__set__``: assigns past the frozen ``__setattr__``."""
    return cast(Any, cls.__dict__[name]).__set__


_set_text_data = _setter(Text, "data")
_set_binary_data = _setter(Binary, "data")
_set_ping_data = _setter(Ping, "data")
_set_pong_data = _setter(Pong, "data")
_set_close_code = _setter(Close, "code")
_set_close_reason = _setter(Close, "reason")


Frame: TypeAlias = Text | Binary | Ping | Pong | Close
Shorthand: TypeAlias = Literal["ping", "pong", "close"]
