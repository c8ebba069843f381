"""permessage-deflate (RFC 7692) against three independent servers, through the public API.

- websockets (HTTP/1.1, ws and wss): answers ``client_max_window_bits=12`` and
  ``server_max_window_bits=12`` by default, refuses a server window of 8;
- hypercorn (wsproto's extension) over HTTP/1.1 and over HTTP/2 (h2c);
- Node.js ``http2`` + ``ws`` over HTTP/2 (RFC 8441), which accepts what is offered.

Every parameter is exercised against at least one of them. That a server honours a
``*_no_context_takeover`` is seen in the traffic: with ``server_no_context_takeover`` this
client inflates each message with a fresh context (a server that took over its context would
fail it), and with ``client_no_context_takeover`` the server inflates each message alone
(websockets and wsproto drop their context), so a message that referred to an earlier one
would fail there; the request headers the servers recorded show what was offered.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import pytest
from wsclient import Client, open_websocket

import mint
from mint.websocket import Binary, Close, PerMessageDeflate, Ping, Pong, Text
from mint.websocket.permessage_deflate import DeflateAgreement

MB = 1_000_000
# Compressible but not trivially: a few hundred distinct words.
WORDS = [f"word{i:03d}-{'x' * (i % 7)}" for i in range(300)]


def prose(n: int, seed: int = 0) -> str:
    import random

    rng = random.Random(seed)
    out: list[str] = []
    size = 0
    while size < n:
        word = rng.choice(WORDS)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)[:n]


def agreement(client: Client) -> DeflateAgreement:
    [ext] = client.websocket.extensions
    assert isinstance(ext, PerMessageDeflate)
    assert ext.agreement is not None
    return ext.agreement


def send_sized(client: Client, frame: Any) -> int:
    """Send ``frame`` and return the size of its (compressed) frame on the wire."""
    client.websocket, data = mint.websocket.encode(client.websocket, frame)
    client.conn = mint.websocket.stream_request_body(client.conn, client.ref, data)
    return len(data)


def echo(client: Client, frames: list[Any]) -> None:
    for frame in frames:
        client.send(frame)
    assert client.frames(len(frames)) == frames


def probe_takeover(client: Client) -> bool:
    """Send one message three times; whether the repeats referred back to the first.

    The message fits the client's window (zlib's deflate refers back at most
    ``window - 262`` bytes), so with context takeover its repeats shrink to a few bytes.
    """
    bits = agreement(client).client_max_window_bits
    text = Text(prose(min(2000, (1 << max(bits, 9)) - 270), seed=bits))
    sizes = [send_sized(client, text) for _ in range(3)]
    assert client.frames(3) == [text] * 3
    if sizes[1] == sizes[0] == sizes[2]:
        return False
    assert sizes[2] < sizes[0] // 3, sizes
    return True


def offered(headers: Any) -> str:
    return str(headers["Sec-WebSocket-Extensions"])


# ------------------------------------------------------------------ websockets


@pytest.fixture(params=["ws", "wss"])
def deflate_server(request: pytest.FixtureRequest) -> Any:
    name = "ws_server_deflate" if request.param == "ws" else "wss_server_deflate"
    return request.getfixturevalue(name)


@pytest.mark.parametrize("mode", ["active", "passive"])
def test_websockets_default_offer(deflate_server: Any, mode: str) -> None:
    client = open_websocket(deflate_server, "/echo", mode=mode, extensions=[PerMessageDeflate])
    try:
        assert offered(deflate_server.last_request.headers) == (
            "permessage-deflate; client_max_window_bits"
        )
        # websockets' defaults: both windows 12 bits, context takeover both ways.
        assert agreement(client) == DeflateAgreement(12, 12, False, False)
        assert probe_takeover(client)
        text = prose(20_000)
        assert send_sized(client, Text(text)) < len(text) // 2
        assert client.frames() == [Text(text)]
        echo(client, [Binary(b""), Text(""), Binary(os.urandom(300)), Text("✓ unicode")])
        assert [m for _, m in deflate_server.messages][3] == text
        client.send(Close(1000, "done"))
        assert client.frames() == [Close(1000, "done")]
    finally:
        client.close()


def test_websockets_large_messages(deflate_server: Any) -> None:
    client = open_websocket(deflate_server, "/echo", extensions=[PerMessageDeflate])
    try:
        echo(
            client,
            [
                Text(prose(MB, seed=1)),
                Binary(os.urandom(MB)),  # incompressible: deflate's stored blocks
                Binary(bytes(MB)),  # 1 MB of zeros: about 1 KB on the wire
                Text("é" * (MB // 2)),
            ],
        )
    finally:
        client.close()


def test_websockets_many_messages_with_context_takeover(ws_server_deflate: Any) -> None:
    client = open_websocket(ws_server_deflate, "/echo", extensions=[PerMessageDeflate])
    try:
        frames = [Text(f"{prose(200, seed=i % 7)} #{i}") for i in range(500)]
        sizes = [send_sized(client, frame) for frame in frames]
        assert client.frames(len(frames)) == frames
        assert sum(sizes[100:]) < sum(len(f.data) for f in frames[100:]) // 5
    finally:
        client.close()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # Without client_max_window_bits in the offer, the server cannot limit our window.
        (["server_no_context_takeover"], DeflateAgreement(15, 12, False, True)),
        (["client_no_context_takeover"], DeflateAgreement(15, 12, True, False)),
        ([("server_max_window_bits", 9)], DeflateAgreement(15, 9, False, False)),
        ([("server_max_window_bits", 15), "client_max_window_bits"], DeflateAgreement(12, 12)),
        ([("client_max_window_bits", 8)], DeflateAgreement(8, 12)),  # we deflate with 9
        ([("client_max_window_bits", 10)], DeflateAgreement(10, 12)),
        ([("client_max_window_bits", 15)], DeflateAgreement(12, 12)),
        (
            [
                ("client_max_window_bits", 11),
                ("server_max_window_bits", 10),
                "client_no_context_takeover",
                "server_no_context_takeover",
            ],
            DeflateAgreement(11, 10, True, True),
        ),
    ],
)
def test_websockets_parameters(
    ws_server_deflate: Any, params: list[Any], expected: DeflateAgreement
) -> None:
    client = open_websocket(ws_server_deflate, "/echo", extensions=[(PerMessageDeflate, params)])
    try:
        assert agreement(client) == expected
        header = offered(ws_server_deflate.last_request.headers)
        for param in params:
            name = param if isinstance(param, str) else f"{param[0]}={param[1]}"
            assert name in header
        # Repeated messages: with takeover they refer back, without it they must not.
        assert probe_takeover(client) is not expected.client_no_context_takeover
        echo(client, [Binary(os.urandom(70_000)), Text(prose(MB, seed=3))])
    finally:
        client.close()


def test_websockets_declines_a_server_window_of_8(ws_server_deflate: Any) -> None:
    # websockets cannot deflate with 8 bits, so it declines this offer and takes the fallback.
    client = open_websocket(
        ws_server_deflate,
        "/echo",
        extensions=[(PerMessageDeflate, [("server_max_window_bits", 8)]), PerMessageDeflate],
    )
    try:
        assert agreement(client) == DeflateAgreement(12, 12)
        echo(client, [Text("fallback")])
    finally:
        client.close()
    client = open_websocket(
        ws_server_deflate,
        "/echo",
        extensions=[(PerMessageDeflate, [("server_max_window_bits", 8)])],
    )
    try:
        assert client.websocket.extensions == ()
        echo(client, [Text("uncompressed")])
    finally:
        client.close()


def test_websockets_fragmented_compressed_messages(ws_server_deflate: Any) -> None:
    # websockets compresses one message over several frames, RSV1 on the first only.
    client = open_websocket(ws_server_deflate, "/fragmented", extensions=[PerMessageDeflate])
    try:
        frames = client.frames(2)
        assert frames == [Text("fragmented"), Binary(b"\x00\x01\x02\x03")]
        echo(client, [Text("after")])
    finally:
        client.close()


def test_websockets_control_frames_stay_uncompressed(ws_server_deflate: Any) -> None:
    client = open_websocket(ws_server_deflate, "/ping", extensions=[PerMessageDeflate])
    try:
        frames = client.frames(1)
        assert frames == [Ping(b"mint")]
        client.send(Pong(b"mint"))
        assert client.frames() == [Text("pong")]
        client.send(Ping(b"from the client"))
        assert client.frames() == [Pong(b"from the client")]
        client.send(Close(1000, "compression does not touch me"))
        assert client.frames() == [Close(1000, "compression does not touch me")]
    finally:
        client.close()


def test_websockets_without_compression_declines(ws_server: Any) -> None:
    client = open_websocket(ws_server, "/echo", extensions=[PerMessageDeflate])
    try:
        assert client.websocket.extensions == ()
        echo(client, [Text("plain")])
    finally:
        client.close()


def test_websockets_max_message_size_applies_to_inflated_size(ws_server_deflate: Any) -> None:
    client = open_websocket(
        ws_server_deflate, "/echo", extensions=[PerMessageDeflate], max_message_size=100_000
    )
    try:
        echo(client, [Binary(bytes(100_000))])
        client.send(Binary(bytes(100_001)))  # ~100 bytes on the wire, too big inflated
        [error] = client.frames()
        assert isinstance(error, mint.WebSocketError)
        assert error.reason == "payload_too_large" and error.close_code == 1009
    finally:
        client.close()


# ------------------------------------------------------------------ hypercorn (wsproto)

HYPERCORN = [
    pytest.param(("hypercorn_h1", ("http1",)), id="h1"),
    pytest.param(("hypercorn_h2c", ("http2",)), id="h2c"),
]


@pytest.fixture(params=HYPERCORN)
def hypercorn(request: pytest.FixtureRequest) -> tuple[Any, tuple[str, ...]]:
    name, protocols = request.param
    return request.getfixturevalue(name), protocols


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([], DeflateAgreement(15, 15)),  # wsproto answers client_max_window_bits=15
        (["server_no_context_takeover"], DeflateAgreement(15, 15, False, True)),
        (["client_no_context_takeover"], DeflateAgreement(15, 15, True, False)),
        ([("server_max_window_bits", 9)], DeflateAgreement(15, 9)),
        ([("client_max_window_bits", 9)], DeflateAgreement(9, 15)),
        (
            [
                ("client_max_window_bits", 12),
                ("server_max_window_bits", 11),
                "client_no_context_takeover",
                "server_no_context_takeover",
            ],
            DeflateAgreement(12, 11, True, True),
        ),
    ],
)
def test_hypercorn_parameters(
    hypercorn: tuple[Any, tuple[str, ...]], params: list[Any], expected: DeflateAgreement
) -> None:
    peer, protocols = hypercorn
    client = open_websocket(
        peer, "/headers", protocols=protocols, extensions=[(PerMessageDeflate, params)]
    )
    try:
        assert mint.http.protocol(client.conn) == protocols[0]
        assert agreement(client) == expected
        [headers] = client.frames(1)
        sent = dict(json.loads(headers.data))
        assert sent["sec-websocket-extensions"].startswith("permessage-deflate")
        assert probe_takeover(client) is not expected.client_no_context_takeover
        echo(client, [Binary(os.urandom(MB)), Text(prose(MB, seed=5)), Binary(b"")])
        echo(client, [Text(f"{i} {prose(100, seed=i % 3)}") for i in range(200)])
    finally:
        client.close()


# ------------------------------------------------------------------ Node.js http2 + ws


@pytest.mark.node
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([], DeflateAgreement(15, 15)),  # ws does not answer a bare client_max_window_bits
        (["server_no_context_takeover"], DeflateAgreement(15, 15, False, True)),
        (["client_no_context_takeover"], DeflateAgreement(15, 15, True, False)),
        ([("server_max_window_bits", 8)], DeflateAgreement(15, 8)),  # Node deflates with 9
        ([("server_max_window_bits", 12)], DeflateAgreement(15, 12)),
        ([("client_max_window_bits", 8)], DeflateAgreement(8, 15)),
        ([("client_max_window_bits", 13)], DeflateAgreement(13, 15)),
        (
            [
                ("client_max_window_bits", 9),
                ("server_max_window_bits", 9),
                "client_no_context_takeover",
                "server_no_context_takeover",
            ],
            DeflateAgreement(9, 9, True, True),
        ),
    ],
)
def test_node_http2_parameters(
    node_h2c: Any, params: list[Any], expected: DeflateAgreement
) -> None:
    client = open_websocket(
        node_h2c, "/headers", protocols=("http2",), extensions=[(PerMessageDeflate, params)]
    )
    try:
        assert mint.http.protocol(client.conn) == "http2"
        assert agreement(client) == expected
        [headers] = client.frames(1)
        assert json.loads(headers.data)["sec-websocket-extensions"].startswith("permessage-deflate")
        assert probe_takeover(client) is not expected.client_no_context_takeover
        echo(client, [Binary(os.urandom(MB)), Text(prose(MB, seed=7)), Text("")])
        echo(client, [Binary(f"{i} {prose(150, seed=i % 5)}".encode()) for i in range(200)])
    finally:
        client.close()


@pytest.mark.node
def test_node_http2_control_frames_and_close(node_h2c: Any) -> None:
    client = open_websocket(
        node_h2c, "/close", protocols=("http2",), extensions=[PerMessageDeflate]
    )
    try:
        client.send(Ping(b"compressed? never"))
        assert client.frames() == [Pong(b"compressed? never")]
        client.send(Text("bye please"))
        assert client.frames() == [Close(1000, "bye")]
    finally:
        client.close()


# ------------------------------------------------------------------ examples/custom_extension.py


def _load_example() -> Any:
    path = Path(__file__).resolve().parents[2] / "examples" / "custom_extension.py"
    spec = importlib.util.spec_from_file_location("custom_extension", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_custom_extension_example(capsys: pytest.CaptureFixture[str]) -> None:
    example = _load_example()
    stock, toy = example.main()
    messages = [Text("hello, extensions " * 20), Binary(bytes(range(256)) * 8)]
    # A server that does not know x-mint-xor declines it; permessage-deflate goes on alone.
    assert stock["extensions"] == ["permessage-deflate"]
    assert stock["wire_bits"] == [0x40, 0x40] and stock["echoed"] == messages
    # One that does accepts both: XORed, then deflated; RSV2 and RSV1 on the wire.
    assert toy["extensions"] == ["x-mint-xor", "permessage-deflate"]
    assert toy["wire_bits"] == [0x60, 0x60] and toy["echoed"] == messages
    assert toy["xor_state"] == [{"sent": 2, "received": 2}]
    assert "echo intact:     True" in capsys.readouterr().out


def test_custom_extension_negotiation_is_checked() -> None:
    example = _load_example()
    offered = example.XorMask([("key", 42)])
    assert offered.offer_params() == [("key", "42")]
    accepted = offered.negotiate([("key", "42")])
    assert accepted is not offered and accepted.state == {"sent": 0, "received": 0}
    assert offered.negotiate([]).key == 42
    for answer in ([("key", "7")], [("key", "42"), ("key", "42")], [("other", None)]):
        with pytest.raises(mint.WebSocketError) as info:
            offered.negotiate(answer)
        assert info.value.reason[:2] == ("extension_not_negotiated", "x-mint-xor")
    with pytest.raises(mint.WebSocketError):
        example.XorMask([("key", 0)])
