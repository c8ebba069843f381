"""Unit tests of the pure handshake helpers: mint.websocket._handshake."""

from __future__ import annotations

import base64
from typing import cast

import pytest

from mint.errors import _MESSAGES, WebSocketError, reason_tag
from mint.websocket._handshake import (
    accept_for,
    check_http1_upgrade,
    http1_upgrade_headers,
    http2_connect_headers,
    negotiate_extensions,
    new_key,
    normalize_extensions,
    offer_header,
    parse_extensions_header,
)
from mint.websocket.extension import RSV1, RSV3, Extension


class Deflate(Extension):
    """A stand-in with permessage-deflate's name and bit."""

    name = "permessage-deflate"
    rsv_bits = RSV1

    def negotiate(self, params: list[tuple[str, str | None]]) -> Extension:
        allowed = {name for name, _ in self.offer_params()} | {"server_no_context_takeover"}
        for name, _ in params:
            if name not in allowed:
                raise WebSocketError(("extension_not_negotiated", self.name, name))
        return super().negotiate(params)


class Other(Extension):
    name = "x-other"
    rsv_bits = RSV3


class AlsoRsv1(Extension):
    name = "x-also-rsv1"
    rsv_bits = RSV1


# ------------------------------------------------------------------ key and accept


def test_accept_rfc_example() -> None:
    # RFC 6455 1.3.
    assert accept_for("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_new_key() -> None:
    key = new_key(lambda n: bytes(range(n)))
    assert base64.b64decode(key) == bytes(range(16))
    assert len(base64.b64decode(new_key())) == 16
    assert new_key() != new_key()
    with pytest.raises(ValueError):
        new_key(lambda n: b"short")


# ------------------------------------------------------------------ request headers


def test_http1_headers_without_extensions() -> None:
    assert http1_upgrade_headers("k", []) == [
        ("upgrade", "websocket"),
        ("connection", "upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "k"),
    ]


def test_http1_and_http2_headers_with_extensions() -> None:
    exts = normalize_extensions([(Deflate, ["client_max_window_bits"]), Other])
    offer = "permessage-deflate; client_max_window_bits, x-other"
    assert http1_upgrade_headers("k", exts)[-1] == ("sec-websocket-extensions", offer)
    assert http2_connect_headers(exts) == [
        ("sec-websocket-version", "13"),
        ("sec-websocket-extensions", offer),
    ]
    assert http2_connect_headers([]) == [("sec-websocket-version", "13")]


OFFERS = [
    ([], None),
    ([Deflate], "permessage-deflate"),
    (
        [(Deflate, [("client_max_window_bits", 12)])],
        "permessage-deflate; client_max_window_bits=12",
    ),
    (
        [(Deflate, ["server_no_context_takeover", ("client_max_window_bits", "10")], {"level": 1})],
        "permessage-deflate; server_no_context_takeover; client_max_window_bits=10",
    ),
    ([Deflate(["a"]), Other], "permessage-deflate; a, x-other"),
]


@pytest.mark.parametrize(("items", "header"), OFFERS)
def test_offer_header(items: list[object], header: str | None) -> None:
    assert offer_header(normalize_extensions(items)) == header


@pytest.mark.parametrize(
    "item",
    [("p", 'a b"c'), ("b", "1,2"), ("d", ""), ("e", "\xe9"), ("bad name", None), ("p", 12), "p"],
)
def test_offer_refuses_what_is_not_a_token(item: object) -> None:
    # RFC 6455 9.1: a parameter's value is a token, quoted or not. A custom
    # offer_params put any text on the wire (quoted), a raw latin-1 byte included.
    class Offering(Extension):
        name = "x-q"

        def offer_params(self) -> list[tuple[str, str | None]]:
            return [("ok", "1"), item]  # type: ignore[list-item]

    with pytest.raises(WebSocketError) as info:
        offer_header([Offering()])
    assert info.value.reason == ("invalid_extension", item)


def test_offer_renders_token_values_bare() -> None:
    class Offering(Extension):
        name = "x-q"

        def offer_params(self) -> list[tuple[str, str | None]]:
            return [("p", "v1"), ("flag", None)]

    assert offer_header([Offering()]) == "x-q; p=v1; flag"


# ------------------------------------------------------------------ normalize


def test_normalize_shapes() -> None:
    instance = Deflate(["x"])
    exts = normalize_extensions([Deflate, (Deflate, ["a"]), (Deflate, [], {"level": 9}), instance])
    assert [type(e) for e in exts] == [Deflate] * 4
    assert exts[1].params == ["a"]
    assert exts[2].opts == {"level": 9}
    assert exts[3] is instance


@pytest.mark.parametrize(
    "item",
    [
        "permessage-deflate",
        int,
        (Deflate,),
        (Deflate, [], {}, 1),
        ("x", []),
        (Deflate, "notalist"),
        (Deflate, [("a", 1, 2)]),
        None,
    ],
)
def test_normalize_rejects(item: object) -> None:
    with pytest.raises(WebSocketError) as info:
        normalize_extensions([item])
    assert reason_tag(info.value.reason) == "invalid_extension"


def test_normalize_rejects_bad_class_attributes() -> None:
    class NoName(Extension):
        pass

    class BadBits(Extension):
        name = "x-bad"
        rsv_bits = 0x80

    class BadName(Extension):
        name = "bad name"

    for cls in (NoName, BadBits, BadName):
        with pytest.raises(WebSocketError):
            normalize_extensions([cls])


def test_normalize_maps_constructor_type_errors() -> None:
    class Strict(Extension):
        name = "x-strict"

        def __init__(self, params: object = (), opts: object = None) -> None:
            raise TypeError("nope")

    with pytest.raises(WebSocketError) as info:
        normalize_extensions([Strict])
    assert isinstance(info.value.__cause__, TypeError)


# ------------------------------------------------------------------ the 101 answer

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
GOOD = [("upgrade", "websocket"), ("connection", "Upgrade"), ("sec-websocket-accept", ACCEPT)]

UPGRADE_CASES: list[tuple[str, list[tuple[str, str]], object]] = [
    ("good", GOOD, None),
    (
        "case-insensitive tokens, lists",
        [
            ("Upgrade", "WebSocket"),
            ("Connection", "keep-alive, UPGRADE"),
            ("Sec-WebSocket-Accept", f" {ACCEPT} "),
        ],
        None,
    ),
    # API.md: a 101 without Upgrade, Connection or the right Accept is "invalid_nonce";
    # the message says which check failed.
    ("no upgrade", GOOD[1:], ("invalid_nonce", "Upgrade header")),
    ("upgrade h2c", [("upgrade", "h2c"), *GOOD[1:]], ("invalid_nonce", "Upgrade header")),
    # RFC 6455 4.1: the Upgrade value must match "websocket"; one that names another
    # protocol beside it was taken (websockets and wsproto refuse it).
    *(
        (f"upgrade {value!r}", [("upgrade", value), *GOOD[1:]], ("invalid_nonce", "Upgrade header"))
        for value in ("websocket, foo", "foo, websocket", "h2c, websocket", "websocket/13", "")
    ),
    ("two upgrade fields", [GOOD[0], ("upgrade", "h2c"), *GOOD[1:]], ("invalid_nonce", "Upgrade")),
    ("the same twice", [GOOD[0], *GOOD], None),
    # RFC 9110 5.6.1: empty list elements are ignored.
    *(
        (f"upgrade {value!r}", [("upgrade", value), *GOOD[1:]], None)
        for value in ("websocket,", ", websocket", "websocket, ,", " WebSocket ")
    ),
    ("no connection", [GOOD[0], GOOD[2]], ("invalid_nonce", "Connection header")),
    (
        "connection without upgrade",
        [GOOD[0], ("connection", "keep-alive"), GOOD[2]],
        ("invalid_nonce", "Connection header"),
    ),
    ("no accept", GOOD[:2], ("invalid_nonce", "Sec-WebSocket-Accept")),
    (
        "wrong accept",
        [*GOOD[:2], ("sec-websocket-accept", accept_for("other"))],
        ("invalid_nonce", "Sec-WebSocket-Accept"),
    ),
    (
        "two accepts",
        [*GOOD, ("sec-websocket-accept", ACCEPT)],
        ("invalid_nonce", "Sec-WebSocket-Accept"),
    ),
]


@pytest.mark.parametrize(
    ("headers", "failure"), [c[1:] for c in UPGRADE_CASES], ids=[c[0] for c in UPGRADE_CASES]
)
def test_check_http1_upgrade(headers: list[tuple[str, str]], failure: object) -> None:
    if failure is None:
        check_http1_upgrade(101, headers, KEY)
        return
    reason, named = cast(tuple[str, str], failure)
    with pytest.raises(WebSocketError) as info:
        check_http1_upgrade(101, headers, KEY)
    assert info.value.reason == reason
    assert named in str(info.value)


# ------------------------------------------------------------------ Sec-WebSocket-Extensions

PARSE_CASES: list[tuple[list[str], object]] = [
    ([], []),
    (["permessage-deflate"], [("permessage-deflate", [])]),
    (["Permessage-Deflate"], [("permessage-deflate", [])]),
    (
        ["permessage-deflate; client_max_window_bits=10; server_no_context_takeover"],
        [
            (
                "permessage-deflate",
                [("client_max_window_bits", "10"), ("server_no_context_takeover", None)],
            )
        ],
    ),
    (
        ['permessage-deflate ;client_max_window_bits = "10" ;  x', "x-other"],
        [("permessage-deflate", [("client_max_window_bits", "10"), ("x", None)]), ("x-other", [])],
    ),
    (["a, b;p=1", " c "], [("a", []), ("b", [("p", "1")]), ("c", [])]),
    (["a,,b, ,"], [("a", []), ("b", [])]),
    (['a; p="\\1\\0"'], [("a", [("p", "10")])]),
    (["a;P=Value"], [("a", [("p", "Value")])]),
    (["\ta\t;\tp\t"], [("a", [("p", None)])]),
    # malformed
    (["a;"], None),
    (["a; =1"], None),
    (["a; p="], None),
    (['a; p="unterminated'], None),
    (['a; p="not a token"'], None),
    (['a; p=""'], None),
    (["a b"], None),
    (["a; p=1 2"], None),
    (["a/b"], None),
    (['a; p="x\\'], None),
    (["é"], None),
]


@pytest.mark.parametrize(("values", "expected"), PARSE_CASES)
def test_parse_extensions_header(values: list[str], expected: object) -> None:
    if expected is None:
        with pytest.raises(WebSocketError) as info:
            parse_extensions_header(values)
        assert info.value.reason[0] == "invalid_extensions_header"
        assert info.value.reason[1] in values
    else:
        assert parse_extensions_header(values) == expected


# ------------------------------------------------------------------ negotiation


def test_negotiate_in_server_order() -> None:
    offered = normalize_extensions([Deflate, Other])
    got = negotiate_extensions(
        offered,
        [
            ("sec-websocket-extensions", "x-other"),
            ("content-type", "x"),
            ("sec-websocket-extensions", "permessage-deflate; server_no_context_takeover"),
        ],
    )
    assert [e.name for e in got] == ["x-other", "permessage-deflate"]
    assert got[0] is not offered[1]  # initialized copies
    assert got[1].accepted_params == [("server_no_context_takeover", None)]


def test_negotiate_none_accepted() -> None:
    assert negotiate_extensions(normalize_extensions([Deflate]), []) == []


NEGOTIATE_ERRORS: list[tuple[str, list[object], str, object]] = [
    ("not offered", [Deflate], "x-other", ("extension_not_negotiated", "x-other")),
    (
        "nothing offered",
        [],
        "permessage-deflate",
        ("extension_not_negotiated", "permessage-deflate"),
    ),
    (
        "accepted twice",
        [Deflate],
        "permessage-deflate, permessage-deflate",
        ("extension_not_negotiated", "permessage-deflate", "accepted twice"),
    ),
    (
        "refused params",
        [Deflate],
        "permessage-deflate; bogus",
        ("extension_not_negotiated", "permessage-deflate", "bogus"),
    ),
    (
        "same rsv bit",
        [Deflate, AlsoRsv1],
        "permessage-deflate, x-also-rsv1",
        ("extension_not_negotiated", "x-also-rsv1", "RSV bits already claimed"),
    ),
    (
        "malformed",
        [Deflate],
        "permessage-deflate;",
        ("invalid_extensions_header", "permessage-deflate;"),
    ),
]


@pytest.mark.parametrize(
    ("offered", "header", "reason"),
    [c[1:] for c in NEGOTIATE_ERRORS],
    ids=[c[0] for c in NEGOTIATE_ERRORS],
)
def test_negotiate_errors(offered: list[object], header: str, reason: object) -> None:
    with pytest.raises(WebSocketError) as info:
        negotiate_extensions(normalize_extensions(offered), [("sec-websocket-extensions", header)])
    assert info.value.reason == reason
    assert reason_tag(info.value.reason) in _MESSAGES


def test_negotiate_tries_each_offer_of_a_name() -> None:
    # RFC 7692 5.1: offer with a parameter, then without; the answer fits the second.
    first = Deflate([("client_max_window_bits", 10)])
    second = Deflate([])
    got = negotiate_extensions(
        [first, second],
        [("sec-websocket-extensions", "permessage-deflate; server_no_context_takeover")],
    )
    assert len(got) == 1
    got2 = negotiate_extensions(
        [second, first],
        [("sec-websocket-extensions", "permessage-deflate; client_max_window_bits=9")],
    )
    assert got2[0].params == [("client_max_window_bits", 10)]


def test_negotiate_must_return_an_extension() -> None:
    class Bad(Extension):
        name = "x-bad"

        def negotiate(self, params: list[tuple[str, str | None]]) -> Extension:
            return None  # type: ignore[return-value]

    with pytest.raises(WebSocketError) as info:
        negotiate_extensions([Bad()], [("sec-websocket-extensions", "x-bad")])
    assert reason_tag(info.value.reason) == "extension_not_negotiated"


def test_new_refuses_what_is_not_a_connection() -> None:
    # A raw AttributeError before ('NoneType' object has no attribute '_private').
    import mint.websocket
    from mint.errors import HTTPError

    with pytest.raises(HTTPError) as info:
        mint.websocket.new(None, None, 101, [])  # type: ignore[arg-type]
    assert info.value.reason[0] == "invalid_conn"
