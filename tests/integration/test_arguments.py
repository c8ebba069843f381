"""What the documented functions do with arguments they cannot use: a typed error, always.

API.md: "Every exception derives from ``mint.MintError`` and has ``.reason``". These are the
calls an outside audit found failing with a bare Python exception (or, on HTTP/2, sending a
malformed request that made the server end the whole connection), against real peers: the
``websockets`` server over HTTP/1.1, hypercorn over HTTP/1.1 and h2c.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import pytest
from conftest_h2 import connect_h2, open_ws, send, wait_frames

import mint
from mint.http import Done, Status
from mint.websocket import PerMessageDeflate, Text

BAD_REQUESTS: list[tuple[Any, Any, Any]] = [
    ("GE T", "/", []),
    ("", "/", []),
    (5, "/", []),
    ("GET", "/a b", []),
    ("GET", "", []),
    ("GET", "/caf\u00e9", []),
    ("GET", "/", [("x", "a\r\nInjected: 1")]),
    ("GET", "/", [("x", "a\nb")]),
    ("GET", "/", [("x", "a\x00b")]),
    ("GET", "/", [("x y", "1")]),
    ("GET", "/", [("", "1")]),
    ("GET", "/", [("a",)]),
    ("GET", "/", [("a", "b", "c")]),
    ("GET", "/", [(b"x", "1")]),
    ("GET", "/", [("x", 1)]),
    ("GET", "/", {"x": "1"}),
    ("GET", "/", ["ab"]),
    ("GET", "/", "x: 1"),
    ("GET", "/", 5),
]


@pytest.mark.parametrize("protocol", ["http1", "http2"])
@pytest.mark.parametrize(("method", "path", "headers"), BAD_REQUESTS)
def test_a_request_that_cannot_be_sent_is_refused_alike_on_both_protocols(
    hypercorn_h1: Any, hypercorn_h2c: Any, protocol: str, method: Any, path: Any, headers: Any
) -> None:
    peer = hypercorn_h2c if protocol == "http2" else hypercorn_h1
    conn = (
        connect_h2(peer, "passive")
        if protocol == "http2"
        else mint.http.connect("http", peer.host, peer.port, mode="passive")
    )
    try:
        # On HTTP/2 a WebSocket is open on the connection: it must outlive the refusal.
        if protocol == "http2":
            conn, ws = open_ws(conn, "passive")
        with pytest.raises(mint.HTTPError) as info:
            mint.http.request(conn, method, path, headers)
        assert info.value.reason[0] == "invalid_request"
        assert info.value.conn is conn
        if protocol == "http2":
            conn = send(conn, ws, Text("still here"))
            conn = wait_frames(conn, "passive", [ws], 1)
            assert ws.frames == [Text("still here")]
        # The refused request left nothing behind: the next one is answered.
        conn, ref = mint.http.request(conn, "GET", "/", [("x-ok", "1")])
        seen: list[Any] = []
        while Done(ref) not in seen:
            conn, responses = mint.http.recv(conn, 0, 10.0)
            seen += [r for r in responses if getattr(r, "ref", None) == ref]
        assert seen[0] == Status(ref, 200)
    finally:
        mint.http.close(conn)


@pytest.mark.parametrize("headers", [{"x": "1"}, ["ab"], [("x", "a\r\nb")], None])
def test_upgrade_checks_its_headers(ws_server: Any, headers: Any) -> None:
    conn = mint.http.connect("http", "127.0.0.1", ws_server.port, mode="passive")
    try:
        with pytest.raises(mint.HTTPError) as info:
            mint.websocket.upgrade("ws", conn, "/", headers)
        assert info.value.reason[0] == "invalid_request"
        assert info.value.conn is conn
        assert mint.http.open_request_count(conn) == 0
    finally:
        mint.http.close(conn)


@pytest.mark.parametrize(
    "extensions", [PerMessageDeflate, PerMessageDeflate(), "permessage-deflate", 5]
)
def test_upgrade_wants_a_list_of_extensions(ws_server: Any, extensions: Any) -> None:
    conn = mint.http.connect("http", "127.0.0.1", ws_server.port, mode="passive")
    try:
        with pytest.raises(mint.WebSocketError) as info:
            mint.websocket.upgrade("ws", conn, "/", [], extensions=extensions)
        assert info.value.reason == ("invalid_extension", extensions)
        assert info.value.conn is conn
    finally:
        mint.http.close(conn)


def bad_transport_opts(tmp_path: Path) -> list[tuple[Any, Any]]:
    unreadable = tmp_path / "missing.pem"
    return [
        ([("timeout", 1)], None),
        ({"timeout": "x"}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"ssl_context": "nope"}, "ssl_context"),
        ({"cafile": str(unreadable)}, "cafile"),
        ({"cafile": 5}, "cafile"),
        ({"verify": "no"}, "verify"),
        ({"timout": 5}, "timout"),  # misspelt: the bound meant would be missing
        ({"cacertfile": "/etc/ssl/certs/ca-certificates.crt"}, "cacertfile"),  # Mint's name
    ]


@pytest.mark.parametrize("case", range(10))
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_connect_checks_its_transport_opts_before_connecting(
    tmp_path: Path, case: int, scheme: str
) -> None:
    opts, key = bad_transport_opts(tmp_path)[case]
    # Nothing listens on the port: only a check made before connecting can answer.
    with pytest.raises(mint.HTTPError) as info:
        mint.http.connect(scheme, "127.0.0.1", 9, transport_opts=opts)
    assert info.value.reason[:2] == ("invalid_transport_opts", key)


def test_a_usable_cafile_and_context_still_connect(wss_server: Any, tls_ca: Any) -> None:
    context = ssl.create_default_context(cafile=os.fspath(tls_ca.cafile))
    for opts in (
        {"cafile": tls_ca.cafile},
        {"cafile": Path(tls_ca.cafile)},
        {"ssl_context": context},
    ):
        conn = mint.http.connect(
            "https", "127.0.0.1", wss_server.port, transport_opts=opts, hostname="localhost"
        )
        assert mint.http.is_open(conn)
        mint.http.close(conn)


def test_a_mailbox_must_be_a_mailbox(ws_server: Any) -> None:
    with pytest.raises(mint.HTTPError) as info:
        mint.http.connect("http", "127.0.0.1", ws_server.port, mailbox="x")  # type: ignore[arg-type]
    assert info.value.reason == ("invalid_mailbox", "x")
    conn = mint.http.connect("http", "127.0.0.1", ws_server.port)
    try:
        with pytest.raises(mint.HTTPError) as info:
            mint.http.controlling_process(conn, "x")  # type: ignore[arg-type]
        assert info.value.reason == ("invalid_mailbox", "x")
        assert info.value.conn is conn
        # API.md names the argument: controlling_process(conn, mailbox).
        box = mint.Mailbox()
        assert mint.http.controlling_process(conn, mailbox=box) is conn
    finally:
        mint.http.close(conn)


def test_is_open_knows_three_types(ws_server: Any) -> None:
    conn = mint.http.connect("http", "127.0.0.1", ws_server.port, mode="passive")
    try:
        assert [mint.http.is_open(conn, t) for t in ("read", "write", "read_write")] == [True] * 3
        assert mint.http.is_open(conn, type="read")
        with pytest.raises(mint.HTTPError) as info:
            mint.http.is_open(conn, "bogus")
        assert info.value.reason == ("invalid_type", "bogus")
    finally:
        mint.http.close(conn)


@pytest.mark.parametrize(
    ("byte_count", "timeout", "reason"),
    [
        ("1", 1.0, ("invalid_byte_count", "1")),
        (-1, 1.0, ("invalid_byte_count", -1)),
        (1.5, 1.0, ("invalid_byte_count", 1.5)),
        (True, 1.0, ("invalid_byte_count", True)),
        (0, "1", ("invalid_timeout", "1")),
        (0, True, ("invalid_timeout", True)),
        (0, [1], ("invalid_timeout", [1])),
    ],
)
@pytest.mark.parametrize("recv", [mint.http.recv, mint.websocket.recv])
def test_recv_checks_its_arguments(
    ws_server: Any, recv: Any, byte_count: Any, timeout: Any, reason: Any
) -> None:
    conn = mint.http.connect("http", "127.0.0.1", ws_server.port, mode="passive")
    try:
        with pytest.raises(mint.HTTPError) as info:
            recv(conn, byte_count, timeout)
        assert info.value.reason == reason
        assert info.value.conn is conn
        nan = float("nan")
        with pytest.raises(mint.HTTPError) as info:
            recv(conn, 0, nan)
        assert info.value.reason[0] == "invalid_timeout"
        assert mint.http.is_open(conn)
    finally:
        mint.http.close(conn)


@pytest.mark.parametrize("protocols", ["http2", (), ("http3",), ("http1", "spdy")])
def test_connect_checks_its_protocols(protocols: Any) -> None:
    # A bare string is refused as given, not read as its letters.
    with pytest.raises(mint.HTTPError) as info:
        mint.http.connect("http", "127.0.0.1", 9, protocols=protocols)
    assert info.value.reason == ("invalid_protocols", protocols)
