"""The WebSocket frames a caller encodes and decode hands back (Mint's ``frame()``).

Frozen, slotted dataclasses so ``match`` can destructure them; ``"ping"``,
``"pong"`` and ``"close"`` are the shorthands :func:`mint.websocket.encode` accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias


@dataclass(frozen=True, slots=True)
class Text:
    data: str


@dataclass(frozen=True, slots=True)
class Binary:
    data: bytes


@dataclass(frozen=True, slots=True)
class Ping:
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Pong:
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Close:
    code: int | None = None
    reason: str | None = None


Frame: TypeAlias = Text | Binary | Ping | Pong | Close
Shorthand: TypeAlias = Literal["ping", "pong", "close"]
