"""The values of ``mint.http``: request references, responses, and body markers.

Responses mirror Mint's tagged tuples (``{:status, ref, status}`` becomes
``Status(ref, status)``); they are frozen, slotted dataclasses so ``match``
statements can destructure them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias, cast

from mint._speedup import install_constructors
from mint.errors import HTTPError, MintError

_ref_counter = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Ref:
    """An opaque, hashable reference to one request (Mint's ``request_ref``)."""

    id: int = field(default_factory=lambda: next(_ref_counter))

    def __repr__(self) -> str:
        return f"#Ref<{self.id}>"


@dataclass(frozen=True, slots=True)
class Status:
    ref: Ref
    status: int


@dataclass(frozen=True, slots=True)
class Headers:
    ref: Ref
    headers: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Data:
    ref: Ref
    data: bytes


# The hot path builds Data by setting its two slots (a frozen dataclass's __init__
# goes through object.__setattr__ per field, the largest cost of a small read).
_new_object = object.__new__
_set_data_ref = cast(Any, Data.__dict__["ref"]).__set__
_set_data_data = cast(Any, Data.__dict__["data"]).__set__


def _new_data(ref: Ref, data: bytes) -> Data:
    """``Data(ref, data)``, built at a third of the cost (the read hot path's one object)."""
    item = _new_object(Data)
    _set_data_ref(item, ref)
    _set_data_data(item, data)
    return item


@dataclass(frozen=True, slots=True)
class Done:
    ref: Ref


@dataclass(frozen=True, slots=True)
class Error:
    ref: Ref
    error: MintError


@dataclass(frozen=True, slots=True)
class Pong:
    """The answer to an HTTP/2 PING sent with :func:`mint.http.ping`."""

    ref: Ref


Response: TypeAlias = Status | Headers | Data | Done | Error | Pong

#: ``Data(ref, data)`` for the read hot path: the class itself when the C module gives
#: the responses a constructor (one C call), else :func:`_new_data`.
new_data: Callable[[Ref, bytes], Data] = (
    Data if install_constructors(Status, Headers, Data, Done, Error, Pong) else _new_data
)


class _Marker:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"mint.http.{self._name}"

    def __reduce__(self) -> str:
        return self._name


STREAM: Final = _Marker("STREAM")
"""Pass as ``body`` to :func:`mint.http.request` to stream the body afterwards."""

EOF: Final = _Marker("EOF")
"""Pass to :func:`mint.http.stream_request_body` to end a streamed body.

``(EOF, trailing_headers)`` ends it with trailers, as Mint's ``{:eof, trailing_headers}``.
"""


# RFC 9110 5.6.2: a method and a field name are tokens.
_TOKEN: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
# RFC 9110 5.5 and RFC 9113 8.2.1: a field value never holds CR, LF or NUL (a CR LF
# would end the field on HTTP/1.1, and an HTTP/2 peer treats the request as malformed).
_VALUE_FORBIDDEN: Final = frozenset("\r\n\x00")


def check_request(method: object, path: object, headers: object) -> list[tuple[str, str]]:
    """The request's headers as a list of ``(name, value)`` pairs, checked.

    Both protocols check a request here, before anything is queued: HTTP/1.1's h11 would
    refuse most of this, but h2 sends what it is given, and an HTTP/2 server answers a
    malformed request by ending the whole connection (every WebSocket on it included).

    Raises:
        HTTPError: ``("invalid_request", why)``.
    """
    if type(method) is not str or not method or not _TOKEN.issuperset(method):
        raise HTTPError(("invalid_request", f"the method must be a token: {method!r}"))
    if type(path) is not str or not path or not all("\x21" <= c <= "\x7e" for c in path):
        raise HTTPError(("invalid_request", f"the path must be visible ASCII: {path!r}"))
    return check_fields(headers, "headers")


def check_fields(fields: object, what: str) -> list[tuple[str, str]]:
    """``fields`` as a list of ``(name, value)`` str pairs with a token name and a value
    free of CR, LF and NUL, else ``HTTPError(("invalid_request", why))``."""
    try:
        items = None if isinstance(fields, str | bytes | dict) else list(cast("Any", fields))
    except TypeError:
        items = None
    if items is None or not all(type(i) in (tuple, list) and len(i) == 2 for i in items):
        raise HTTPError(("invalid_request", f"{what} must be a list of (name, value) pairs"))
    pairs = [(name, value) for name, value in items]
    for name, value in pairs:
        if type(name) is not str or type(value) is not str:
            raise HTTPError(("invalid_request", f"{what} must be str pairs: {(name, value)!r}"))
        if not name or not _TOKEN.issuperset(name):
            raise HTTPError(("invalid_request", f"a field name must be a token: {name!r}"))
        if not _VALUE_FORBIDDEN.isdisjoint(value):
            raise HTTPError(
                ("invalid_request", f"a field value must not hold CR, LF or NUL: {name!r}")
            )
    return pairs


def body_end(chunk: object) -> list[tuple[str, str]] | None:
    """What ending a streamed body with ``chunk`` sends after it: ``[]`` for ``EOF``, the
    trailing headers for ``(EOF, headers)``; ``None`` when ``chunk`` is body bytes.

    Both protocols check a chunk here, so neither accepts what the other refuses.

    Raises:
        HTTPError: ``("invalid_request", why)`` for anything else, or trailers that
            are not ``(name, value)`` string pairs.
    """
    if chunk is EOF:
        return []
    if isinstance(chunk, bytes | bytearray | memoryview):
        return None
    if type(chunk) is tuple and len(chunk) == 2 and chunk[0] is EOF:
        return check_fields(chunk[1], "trailing headers")
    raise HTTPError(
        ("invalid_request", "a body chunk must be bytes, EOF or (EOF, trailing_headers)")
    )
