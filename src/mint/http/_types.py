"""The values of ``mint.http``: request references, responses, and body markers.

Responses mirror Mint's tagged tuples (``{:status, ref, status}`` becomes
``Status(ref, status)``); they are frozen, slotted dataclasses so ``match``
statements can destructure them.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple, TypeAlias, TypeVar, cast

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

# The fixed strings of the API (Mint's atoms), as the type checker should hold callers
# to them: a typo is then caught before the run's HTTPError("invalid_mode").
Mode: TypeAlias = Literal["active", "passive"]
HTTPScheme: TypeAlias = Literal["http", "https"]
ProtocolName: TypeAlias = Literal["http1", "http2"]
OpenKind: TypeAlias = Literal["read", "write", "read_write"]

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

#: A body or a chunk as Mint takes one: bytes-like, or iodata (a list, nested or not, of
#: bytes-like items and ints 0-255; ``list[Any]`` since a list is invariant: a caller's
#: ``list[bytes]`` is iodata too).
IOData: TypeAlias = bytes | bytearray | memoryview | list[Any]
#: What ``stream_request_body`` takes: body bytes, ``EOF``, or ``(EOF, trailing_headers)``.
Chunk: TypeAlias = IOData | _Marker | tuple[_Marker, list[tuple[str, str]]]


# RFC 9110 5.6.2: a method and a field name are tokens.
_TOKEN: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
# RFC 9110 5.5: a field value is visible characters, spaces and tabs (and obs-text).
# CR, LF and NUL are the dangerous ones (a CR LF would end the field on HTTP/1.1, and an
# HTTP/2 peer treats the request as malformed, RFC 9113 8.2.1); the other controls
# (\x01, DEL) are invalid all the same, and a strict server answers 400.
_VALUE_FORBIDDEN: Final = frozenset(chr(c) for c in (*range(0x20), 0x7F) if c != 0x09)
# RFC 9110 6.5.1: a trailer never carries what frames the message or routes it, nor
# what is the connection's (RFC 9113 8.2.2 and RFC 9112 7.6.1). h2 dropped them from
# the block, and a block left empty crashed inside it, with the stream half-ended.
_NOT_IN_TRAILERS: Final = frozenset(
    (
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "te",
        "content-length",
        "host",
        "trailer",
    )
)


class CheckedRequest(NamedTuple):
    """What :func:`check_request` makes of a request's parts."""

    headers: list[tuple[str, str]]  # (name, value) pairs, checked
    body: IOData | _Marker | None  # iodata joined into bytes; otherwise as given
    length: int | None  # its own Content-Length, if it says one


def check_request(
    method: object,
    path: object,
    headers: object,
    body: IOData | _Marker | None = None,
    *,
    upgrade: str | None = None,
) -> CheckedRequest:
    """The request's parts, checked (``upgrade``: the protocol an Upgrade request or an
    extended CONNECT names, whose path is a path).

    Both protocols check a request here, before anything is queued: HTTP/1.1's h11 would
    refuse most of this, but h2 sends what it is given, and an HTTP/2 server answers a
    malformed request by ending the whole connection (every WebSocket on it included).

    Raises:
        HTTPError: ``("invalid_request", why)``.
    """
    body = iodata(body)
    if type(method) is not str or not method or not _TOKEN.issuperset(method):
        raise HTTPError(("invalid_request", f"the method must be a token: {method!r}"))
    if type(path) is not str or not path or not all("\x21" <= c <= "\x7e" for c in path):
        raise HTTPError(("invalid_request", f"the path must be visible ASCII: {path!r}"))
    if method != "CONNECT" and not (
        path[0] == "/" or path == "*" or _ABSOLUTE_FORM.match(path) is not None
    ):
        # RFC 9112 3.2: origin-form, absolute-form (to a proxy) or "*"; authority-form
        # is CONNECT's. "echo" went out as a request line no server can route (and
        # HTTP/2 servers reset the stream, RFC 9113 8.3.1).
        raise HTTPError(
            ("invalid_request", f"the path must start with / (or be absolute, or *): {path!r}")
        )
    if "#" in path:
        # RFC 9112 3.2 and RFC 9113 8.3.1: a request target has no fragment (RFC 6455
        # 3: nor has a WebSocket URI); "/echo#frag" went out on both protocols.
        raise HTTPError(("invalid_request", f"the path must hold no fragment (#): {path!r}"))
    if upgrade is not None and path[0] != "/":
        # RFC 8441 4 and RFC 9113 8.3.1: an extended CONNECT's :path is origin-form.
        # (h2 sent "echo" as it was, and servers reset the stream or answered 403.)
        raise HTTPError(("invalid_request", f"the path must start with /: {path!r}"))
    if path == "*" and method != "OPTIONS":
        # RFC 9112 3.2.4 and RFC 9113 8.3.1: the asterisk-form is OPTIONS' only.
        raise HTTPError(("invalid_request", f"the path * is for OPTIONS only, not {method}"))
    if method == "CONNECT" and upgrade is None:
        _check_tunnel_target(path)
    pairs = check_fields(headers, "headers")
    _check_host(pairs)
    return CheckedRequest(pairs, body, _check_framing(pairs, body))


def _check_tunnel_target(path: str) -> None:
    """An ordinary CONNECT's target (not an extended CONNECT's, RFC 8441, whose path is
    a path): host and port, nothing else (RFC 9110 9.3.6, RFC 9113 8.5). On HTTP/2 "/"
    went out as :authority, and the server reset the stream."""
    match = _AUTHORITY_FORM.fullmatch(path)
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise HTTPError(("invalid_request", f"CONNECT takes host:port, not {path!r}"))


def _check_host(pairs: list[tuple[str, str]]) -> None:
    """One ``Host`` at most, without whitespace (RFC 9112 3.2): h11 refused two on
    HTTP/1.1, while HTTP/2 made the last one ``:authority`` unchecked. An empty one is
    HTTP/1.1's for a target with no authority; HTTP/2 refuses it (see its ``request``)."""
    hosts = [value for name, value in pairs if name.lower() == "host"]
    if len(hosts) > 1:
        raise HTTPError(("invalid_request", f"more than one host header: {hosts!r}"))
    if hosts and any(c in " \t" for c in hosts[0]):
        raise HTTPError(("invalid_request", f"invalid host header: {hosts[0]!r}"))


# RFC 9112 3.2.3: the authority-form, host ":" port (a bracketed IPv6 literal, or a
# name or IPv4 address: no userinfo, no path).
_AUTHORITY_FORM: Final = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^:/?#@\[\]]+):([0-9]{1,5})")
# RFC 3986 3.1: scheme ":" then "//" authority, the absolute-form's start.
_ABSOLUTE_FORM: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")


# A Content-Length servers can hold: HTTP/2's (nghttp2) is a signed 64-bit integer,
# and reset the stream of a larger one that HTTP/1.1's h11 (20 digits) sent; the
# digits are bounded first (int() refuses a string of over 4300 with a raw ValueError).
_MAX_LENGTH: Final = 2**63 - 1
_MAX_LENGTH_DIGITS: Final = 19


def _check_framing(pairs: list[tuple[str, str]], body: object) -> int | None:
    """A request whose own headers misstate its body: refused on both protocols alike.
    Returns the ``Content-Length`` the headers say, if any.

    ``Content-Length`` beside ``Transfer-Encoding`` is the request-smuggling shape
    RFC 9112 6.2 forbids a sender to make (a hop that reads the length splits the body
    into a second request). A length that does not match a body given whole is refused
    too: h11 catches it on HTTP/1.1 only after writing the head, and h2 sends it, so the
    server resets the stream as malformed (RFC 9113 8.1.1).
    """
    lengths: set[str] = set()
    transfer_coded = False
    for name, value in pairs:
        key = name.lower()
        if key == "content-length":
            lengths.update(part.strip() for part in value.split(","))
        elif key == "transfer-encoding":
            transfer_coded = True
    if not lengths:
        return None
    if transfer_coded:
        raise HTTPError(
            ("invalid_request", "content-length and transfer-encoding together (RFC 9112 6.2)")
        )
    if len(lengths) != 1 or not all(
        v.isascii() and v.isdigit() and len(v) <= _MAX_LENGTH_DIGITS for v in lengths
    ):
        raise HTTPError(("invalid_request", f"invalid content-length: {sorted(lengths)!r}"))
    declared = int(lengths.pop())
    if declared > _MAX_LENGTH:
        raise HTTPError(("invalid_request", f"content-length {declared} is over 2**63 - 1"))
    if body is None or isinstance(body, bytes | bytearray | memoryview):
        actual = 0 if body is None else memoryview(body).nbytes  # (len counts items)
        if declared != actual:
            raise HTTPError(
                ("invalid_request", f"content-length {declared} for a body of {actual} bytes")
            )
    return declared


def body_left(left: int | None, size: int, ending: bool) -> int | None:
    """What a streamed body still owes its own ``Content-Length`` (``left``; None: no
    length) once a chunk of ``size`` bytes (``ending``: the end) goes.

    Checked on both protocols before anything is queued: h2 sent such a body, and the
    server reset the stream as malformed (RFC 9113 8.1.1); h11 refused it only once it
    had taken the chunk in (a chunk too long broke the connection for writing, an end
    too early left the stream half-ended). Refused, nothing changes: the caller may
    still send the rest.

    Raises:
        HTTPError: ``("invalid_request", why)``.
    """
    if left is None:
        return None
    if size > left:
        raise HTTPError(
            ("invalid_request", f"{size} bytes of body where its content-length leaves {left}")
        )
    if ending and size < left:
        raise HTTPError(
            ("invalid_request", f"the body ends {left - size} bytes short of its content-length")
        )
    return left - size


def check_fields(fields: object, what: str) -> list[tuple[str, str]]:
    """``fields`` as a list of ``(name, value)`` str pairs with a token name and a value
    free of control characters (a tab inside aside) and of whitespace around it, else
    ``HTTPError(("invalid_request", why))``."""
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
                (
                    "invalid_request",
                    f"a field value must not hold CR, LF, NUL or other controls: {name!r}",
                )
            )
        if value and (value[0] in " \t" or value[-1] in " \t"):
            # RFC 9110 5.5, RFC 9113 8.2.1: no whitespace around a value. h11 refused it
            # and h2 trimmed it: the same request now fares alike on both.
            raise HTTPError(
                (
                    "invalid_request",
                    f"a field value must not start or end with whitespace: {name!r}",
                )
            )
    return pairs


_T = TypeVar("_T")


def iodata(data: _T) -> _T | bytes:
    """``data`` as Mint takes a body or a chunk, iodata: a list (nested or not) of
    bytes-like items and ints 0-255 is joined into ``bytes``; anything else is returned
    as it is, for the caller's own checks. A seed's ``[frame1, frame2]`` was refused.

    Raises:
        HTTPError: ``("invalid_request", why)`` for a list holding anything else.
    """
    if type(data) is not list:
        if isinstance(data, memoryview):
            try:
                data.nbytes  # noqa: B018 - (what a released view refuses)
            except ValueError:
                raise HTTPError(("invalid_request", "a released memoryview")) from None
        return data
    out = bytearray()
    # (a stack of iterators, not recursion: a list nested thousands deep is iodata too;
    # and the ids of the lists on it: a list inside itself grew the output for ever)
    stack = [(iter(cast(list[Any], data)), id(data))]
    walking = {id(data)}
    while stack:
        for item in stack[-1][0]:
            if isinstance(item, bytes | bytearray):
                out += item
            elif isinstance(item, memoryview):
                # (a strided view takes a copy: += takes contiguous buffers only, and
                # raised a raw TypeError; a released one, a ValueError)
                try:
                    out += item if item.c_contiguous else item.tobytes()
                except ValueError:
                    raise HTTPError(
                        ("invalid_request", "iodata holds a released memoryview")
                    ) from None
            elif type(item) is int and 0 <= item <= 255:
                out.append(item)
            elif type(item) is list:
                if id(item) in walking:
                    raise HTTPError(("invalid_request", "iodata holds a list inside itself"))
                stack.append((iter(item), id(item)))
                walking.add(id(item))
                break
            else:
                raise HTTPError(
                    ("invalid_request", f"iodata holds bytes, lists and ints 0-255: {item!r}")
                )
        else:
            walking.discard(stack.pop()[1])
    return bytes(out)


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
        trailers = check_fields(chunk[1], "trailing headers")
        for name, _ in trailers:
            if name.lower() in _NOT_IN_TRAILERS:
                raise HTTPError(("invalid_request", f"{name!r} is not allowed in trailing headers"))
        return trailers
    raise HTTPError(
        ("invalid_request", "a body chunk must be bytes, EOF or (EOF, trailing_headers)")
    )
