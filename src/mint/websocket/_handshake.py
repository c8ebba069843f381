"""Pure helpers for the opening handshake (RFC 6455 4, RFC 8441 4, RFC 6455 9.1).

No I/O: the facade builds the request with these headers, and checks the answer::

    key = new_key()                                        # Sec-WebSocket-Key
    exts = normalize_extensions(extensions)                # what the caller passed
    headers = http1_upgrade_headers(key, exts)             # or http2_connect_headers(exts)
    ...                                                    # send; read Status and Headers
    check_http1_upgrade(status, resp_headers, key)         # HTTP/1.1 only (status is 101)
    accepted = negotiate_extensions(exts, resp_headers)    # initialized, in server order
    websocket = new_websocket(extensions=accepted, ...)
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from mint.errors import WebSocketError
from mint.websocket.extension import _ALL_RSV, Extension, is_token

__all__ = [
    "accept_for",
    "check_http1_upgrade",
    "check_subprotocol",
    "http1_upgrade_headers",
    "http2_connect_headers",
    "negotiate_extensions",
    "new_key",
    "normalize_extensions",
    "offer_header",
    "offered_subprotocols",
    "parse_extensions_header",
]

# RFC 6455 1.3: the GUID the server appends to the key before hashing.
_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# RFC 6455 4.1: the protocol version a client sends.
WEBSOCKET_VERSION = "13"
# RFC 6455 4.1: the key is 16 random bytes, base64-encoded.
_KEY_BYTES = 16


def new_key(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A fresh ``Sec-WebSocket-Key``: 16 random bytes, base64-encoded (RFC 6455 4.1)."""
    raw = random_bytes(_KEY_BYTES)
    if len(raw) != _KEY_BYTES:
        raise ValueError("random_bytes(16) must return 16 bytes")
    return base64.b64encode(raw).decode("ascii")


def accept_for(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server must answer ``key`` with (RFC 6455 4.2.2)."""
    digest = hashlib.sha1((key + _GUID).encode("ascii"), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


# --------------------------------------------------------------------------------------
# the extensions the caller asked for


def normalize_extensions(items: Iterable[object]) -> list[Extension]:
    """Turn the ``extensions=`` items into instances (Mint's shorthand notations).

    Args:
        items: each an :class:`Extension` subclass, ``(cls, params)``,
            ``(cls, params, opts)`` or an instance.

    Raises:
        WebSocketError: ``("invalid_extension", item)`` for anything else, or an
            item whose class has no valid ``name`` or whose params are malformed.
    """
    if isinstance(items, Extension | type | str | bytes) or not isinstance(items, Iterable):
        # extensions=PerMessageDeflate (one class, not in a list), a string...: say so
        # here rather than fail on iterating it.
        raise WebSocketError(("invalid_extension", items))
    result: list[Extension] = []
    for item in items:
        ext: Extension
        if isinstance(item, Extension):
            ext = item
        elif isinstance(item, type) and issubclass(item, Extension):
            ext = _build(item, item, (), None)
        elif (
            isinstance(item, tuple)
            and len(item) in (2, 3)
            and isinstance(item[0], type)
            and issubclass(item[0], Extension)
        ):
            opts = item[2] if len(item) == 3 else None
            ext = _build(item, item[0], item[1], opts)
        else:
            raise WebSocketError(("invalid_extension", item))
        name = getattr(type(ext), "name", None)
        bits = type(ext).rsv_bits
        if not isinstance(name, str) or not is_token(name):
            raise WebSocketError(("invalid_extension", item))
        if not isinstance(bits, int) or isinstance(bits, bool) or bits & ~_ALL_RSV:
            raise WebSocketError(("invalid_extension", item))
        _offer_params(ext, item)  # malformed params fail now, not halfway through a request
        result.append(ext)
    return result


def _build(item: object, cls: type[Extension], params: Any, opts: Any) -> Extension:
    try:
        return cls(params, opts)
    except WebSocketError:
        raise
    except Exception as exc:  # its params refused, or a bug of its __init__
        raise WebSocketError(("invalid_extension", item)) from exc


def _offer_params(ext: Extension, item: object) -> list[Any]:
    """``ext.offer_params()`` as a list; ``("invalid_extension", item)`` when an
    override raises or returns no iterable (its bug: a raw TypeError or whatever it
    raised came out of ``upgrade``, with no ``.conn``)."""
    try:
        return list(ext.offer_params())
    except WebSocketError:
        raise
    except Exception as exc:
        raise WebSocketError(("invalid_extension", item)) from exc


# --------------------------------------------------------------------------------------
# the request


def offer_header(extensions: Sequence[Extension]) -> str | None:
    """The ``Sec-WebSocket-Extensions`` value offering ``extensions`` (``None``: none).

    E.g. ``permessage-deflate; client_max_window_bits=12, x-reverse``.

    Raises:
        WebSocketError: ``("invalid_extension", item)`` for an item of an extension's
            ``offer_params`` that is not a token name with no value or a token value
            (RFC 6455 9.1: a quoted value is a token once unquoted, so quoting is never
            needed). A custom ``offer_params`` put any text on the wire.
    """
    if not extensions:
        return None
    offers = []
    for ext in extensions:
        pieces = [type(ext).name]
        for item in _offer_params(ext, ext):
            if not (type(item) is tuple and len(item) == 2):
                raise WebSocketError(("invalid_extension", item))
            name, value = item
            if not (isinstance(name, str) and is_token(name)) or not (
                value is None or (isinstance(value, str) and is_token(value))
            ):
                raise WebSocketError(("invalid_extension", item))
            pieces.append(name if value is None else f"{name}={value}")
        offers.append("; ".join(pieces))
    return ", ".join(offers)


def http1_upgrade_headers(key: str, extensions: Sequence[Extension]) -> list[tuple[str, str]]:
    """The headers of an HTTP/1.1 upgrade request (RFC 6455 4.1), names lower-case."""
    headers = [
        ("upgrade", "websocket"),
        ("connection", "upgrade"),
        ("sec-websocket-version", WEBSOCKET_VERSION),
        ("sec-websocket-key", key),
    ]
    offer = offer_header(extensions)
    if offer is not None:
        headers.append(("sec-websocket-extensions", offer))
    return headers


def http2_connect_headers(extensions: Sequence[Extension]) -> list[tuple[str, str]]:
    """The regular headers of an RFC 8441 extended CONNECT (no key, no Upgrade)."""
    headers = [("sec-websocket-version", WEBSOCKET_VERSION)]
    offer = offer_header(extensions)
    if offer is not None:
        headers.append(("sec-websocket-extensions", offer))
    return headers


# --------------------------------------------------------------------------------------
# the answer


def _tokens(headers: list[tuple[str, str]], name: str) -> set[str]:
    """The comma-separated, case-insensitive tokens of every ``name`` header (empty
    list elements ignored, as RFC 9110 5.6.1 asks: ``websocket,`` is ``websocket``)."""
    found: set[str] = set()
    for key, value in headers:
        if key.lower() == name:
            found.update(token for item in value.split(",") if (token := item.strip().lower()))
    return found


def check_http1_upgrade(status: int, headers: list[tuple[str, str]], key: str) -> None:
    """Check a 101 answer to an HTTP/1.1 upgrade (RFC 6455 4.1, client steps 2-4).

    Raises:
        WebSocketError: ``"invalid_nonce"`` when ``Upgrade`` is not ``websocket``
            (alone: RFC 6455 4.1 asks for "a case-insensitive match for the value
            websocket", and a 101 that names another protocol switched to something
            else than was asked), ``Connection`` has no ``upgrade`` token, or
            ``Sec-WebSocket-Accept`` is missing or wrong: one reason for "this 101 is
            not an answer to our upgrade", as the contract gives it; the message says
            which check failed.
    """
    upgrade = _tokens(headers, "upgrade")
    if upgrade != {"websocket"}:
        raise _not_ours(
            "its Upgrade header is not websocket" if upgrade else "it has no Upgrade header"
        )
    if "upgrade" not in _tokens(headers, "connection"):
        raise _not_ours("its Connection header has no upgrade token")
    accepts = [v.strip() for k, v in headers if k.lower() == "sec-websocket-accept"]
    if accepts != [accept_for(key)]:
        raise WebSocketError("invalid_nonce")


def offered_subprotocols(headers: list[tuple[str, str]]) -> frozenset[str]:
    """The subprotocols a request's ``Sec-WebSocket-Protocol`` fields offer."""
    return frozenset(
        token.strip()
        for name, value in headers
        if name.lower() == "sec-websocket-protocol"
        for token in value.split(",")
        if token.strip()
    )


def check_subprotocol(headers: list[tuple[str, str]], offered: frozenset[str]) -> None:
    """RFC 6455 4.1: the server's answer names one of the offered subprotocols, or none.

    Raises:
        WebSocketError: ``("subprotocol_not_offered", value)``: the client must fail
            the connection (RFC 6455 4.1, item 6), since the peers would disagree on
            what the messages mean.
    """
    values = [v.strip() for k, v in headers if k.lower() == "sec-websocket-protocol"]
    if not values:
        return
    if len(values) != 1 or values[0] not in offered:
        raise WebSocketError(("subprotocol_not_offered", ", ".join(values)))


def _not_ours(why: str) -> WebSocketError:
    return WebSocketError("invalid_nonce", message=f"the 101 is not a WebSocket upgrade: {why}")


# RFC 7230 3.2.6: tchar, and the characters a quoted-string may hold.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_OWS = " \t"


def parse_extensions_header(values: list[str]) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Parse ``Sec-WebSocket-Extensions`` values (RFC 6455 9.1, RFC 7230 7 lists).

    Several header lines are one comma-separated list; empty list elements are
    skipped (RFC 7230 7). Names are lower-cased; a quoted value is unquoted and must
    then be a token, as RFC 6455 9.1 requires.

    Returns:
        ``[(name, [(param, value or None), ...]), ...]`` in header order.

    Raises:
        WebSocketError: ``("invalid_extensions_header", value)`` for a malformed value.
    """
    result: list[tuple[str, list[tuple[str, str | None]]]] = []
    for value in values:
        try:
            result.extend(_parse_list(value))
        except _Malformed:
            raise WebSocketError(("invalid_extensions_header", value)) from None
    return result


class _Malformed(Exception):
    pass


def _parse_list(text: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    result: list[tuple[str, list[tuple[str, str | None]]]] = []
    i, n = 0, len(text)

    def skip_ows(i: int) -> int:
        while i < n and text[i] in _OWS:
            i += 1
        return i

    def token(i: int) -> tuple[str, int]:
        start = i
        while i < n and text[i] in _TCHAR:
            i += 1
        if i == start:
            raise _Malformed
        return text[start:i], i

    while True:
        i = skip_ows(i)
        if i < n and text[i] == ",":  # an empty list element
            i += 1
            continue
        if i >= n:
            return result
        name, i = token(i)
        params: list[tuple[str, str | None]] = []
        i = skip_ows(i)
        while i < n and text[i] == ";":
            i = skip_ows(i + 1)
            pname, i = token(i)
            i = skip_ows(i)
            pvalue: str | None = None
            if i < n and text[i] == "=":
                i = skip_ows(i + 1)
                if i < n and text[i] == '"':
                    pvalue, i = _quoted(text, i)
                    if not is_token(pvalue):
                        raise _Malformed
                else:
                    pvalue, i = token(i)
                i = skip_ows(i)
            params.append((pname.lower(), pvalue))
        result.append((name.lower(), params))
        if i < n:
            if text[i] != ",":
                raise _Malformed
            i += 1


def _quoted(text: str, i: int) -> tuple[str, int]:
    """A quoted-string starting at ``text[i] == '"'``: its content, and where it ends."""
    out: list[str] = []
    i += 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    raise _Malformed


def negotiate_extensions(
    offered: Sequence[Extension], headers: list[tuple[str, str]]
) -> list[Extension]:
    """Set up the extensions the server accepted (RFC 6455 9.1; Mint's ``init/2``).

    Args:
        offered: the extensions offered, as :func:`normalize_extensions` returned them.
        headers: the response headers (every ``sec-websocket-extensions`` is read).

    Returns:
        The initialized extensions (new instances), in the server's order, which is
        the order they are applied in.

    Raises:
        WebSocketError: ``("extension_not_negotiated", name)`` for an extension that
            was not offered; ``("extension_not_negotiated", name, detail)`` when it is
            accepted twice, its answer is refused by every offer of that name, or it
            claims RSV bits an extension accepted before it claims;
            ``("invalid_extensions_header", value)`` for a malformed header;
            ``("extension_error", name, detail)`` when ``negotiate`` raised anything
            else (chained as the cause).
    """
    values = [v for k, v in headers if k.lower() == "sec-websocket-extensions"]
    accepted: list[Extension] = []
    seen: set[str] = set()
    claimed = 0
    for name, params in parse_extensions_header(values):
        candidates = [e for e in offered if type(e).name.lower() == name]
        if not candidates:
            raise WebSocketError(("extension_not_negotiated", name))
        if name in seen:
            raise WebSocketError(("extension_not_negotiated", name, "accepted twice"))
        seen.add(name)
        # The same extension may be offered several times with different params
        # (RFC 7692 5.1 example); the first offer the answer fits wins.
        first_error: WebSocketError | None = None
        ext: object = None
        for candidate in candidates:
            try:
                ext = candidate.negotiate(params)
                break
            except WebSocketError as exc:
                first_error = first_error or exc
            except Exception as exc:  # the extension's bug: one typed error, chained
                detail = f"{type(exc).__name__}: {exc}"
                raise WebSocketError(("extension_error", name, detail)) from exc
        else:
            assert first_error is not None
            raise first_error
        if not isinstance(ext, Extension):
            raise WebSocketError(
                ("extension_not_negotiated", name, "negotiate() returned no extension")
            )
        bits = type(ext).rsv_bits
        if not isinstance(bits, int) or isinstance(bits, bool) or bits & ~_ALL_RSV:
            # (what normalize_extensions checks of the offered class: a raw TypeError
            # from the claim below, or bits no frame has went on to the codec)
            raise WebSocketError(
                ("extension_not_negotiated", name, f"negotiate() returned RSV bits {bits!r}")
            )
        if bits & claimed:
            raise WebSocketError(("extension_not_negotiated", name, "RSV bits already claimed"))
        claimed |= bits
        accepted.append(ext)
    return accepted
