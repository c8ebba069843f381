"""WebSocket over HTTP/1.1 against real peers: websockets (ws, wss) and hypercorn, both modes."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import pytest
from aio_client import Flavour
from servers.raw import OP_BINARY, drain, frame, handshake_response, read_request
from wsclient import Client, connect, handshake, open_websocket

import mint
from mint.http import Data, Done
from mint.websocket import Binary, Close, Ping, Pong, Text

MODES = ["active", "passive"]


@pytest.fixture(params=["ws", "wss"])
def ws_peer(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("ws_server" if request.param == "ws" else "wss_server")


def close_handshake(client: Client) -> Close:
    """Client-initiated close: send Close, read the server's, then see the TCP close."""
    client.send(Close(1000, "done"))
    (reply,) = [f for f in client.frames() if isinstance(f, Close)]
    with pytest.raises(mint.TransportError) as info:
        while True:
            client.responses(timeout=5)
    assert info.value.reason == "closed"
    assert not mint.http.is_open(client.conn)
    return reply


@pytest.mark.parametrize("mode", MODES)
def test_echo_text_and_binary(ws_peer: Any, mode: str) -> None:
    client = open_websocket(ws_peer, "/echo", mode=mode)
    try:
        client.send(Text("hello world"))
        assert client.frames() == [Text("hello world")]
        client.send(Binary(b"\x00\xff" * 40_000))
        assert client.frames() == [Binary(b"\x00\xff" * 40_000)]
        client.send(Text("ünïcödé ✓" * 1000))
        assert client.frames() == [Text("ünïcödé ✓" * 1000)]
        assert close_handshake(client) == Close(1000, "done")
    finally:
        client.close()


@pytest.mark.parametrize("mode", MODES)
def test_many_messages_pipelined(ws_server: Any, mode: str) -> None:
    client = open_websocket(ws_server, "/echo", mode=mode)
    try:
        sent = [Text(f"message {i}") for i in range(200)]
        for frame in sent:
            client.send(frame)
        assert client.frames(len(sent)) == sent
    finally:
        client.close()


@pytest.mark.parametrize("mode", MODES)
def test_client_ping_gets_pong(ws_server: Any, mode: str) -> None:
    client = open_websocket(ws_server, "/echo", mode=mode)
    try:
        client.send(Ping(b"are you there"))
        assert client.frames() == [Pong(b"are you there")]
        client.send("ping")
        assert client.frames() == [Pong(b"")]
    finally:
        client.close()


def test_server_ping_answered_by_caller(ws_server: Any) -> None:
    client = open_websocket(ws_server, "/ping")
    try:
        (ping,) = client.frames()
        assert ping == Ping(b"mint")
        client.send(Pong(ping.data))
        assert client.frames() == [Text("pong")]
    finally:
        client.close()


@pytest.mark.parametrize("mode", MODES)
def test_server_initiated_close(ws_peer: Any, mode: str) -> None:
    client = open_websocket(ws_peer, "/close", mode=mode)
    try:
        client.send(Text("first"))
        frames = client.frames()
        while not any(isinstance(f, Close) for f in frames):
            frames += client.frames()
        assert frames[-1] == Close(1000, "bye")
        client.send(Close(1000))
        with pytest.raises(mint.TransportError):
            while True:
                client.responses(timeout=5)
    finally:
        client.close()


@pytest.mark.parametrize("mode", MODES)
def test_fragmented_server_messages(ws_server: Any, mode: str) -> None:
    client = open_websocket(ws_server, "/fragmented", mode=mode)
    try:
        assert client.frames(2) == [Text("fragmented"), Binary(b"\x00\x01\x02\x03")]
    finally:
        client.close()


def test_fragmented_with_empty_final_continuation(ws_server: Any) -> None:
    client = open_websocket(ws_server, "/fragmented-iter")
    try:
        assert client.frames(2) == [Text("fragmented"), Binary(b"\x00\x01\x02\x03")]
    finally:
        client.close()


@pytest.mark.parametrize("mode", MODES)
def test_greeting_in_the_same_read_as_the_101(ws_server: Any, mode: str) -> None:
    client = connect(ws_server, mode=mode)
    try:
        client.conn, client.ref = mint.websocket.upgrade("ws", client.conn, "/greet", [])
        status, headers, early = handshake(client)
        assert status == 101
        assert early, "the greeting should arrive with the 101 as Data(ref, ...)"
        client.conn, client.websocket = mint.websocket.new(
            client.conn, client.ref, status, headers, mode=mode
        )
        client.websocket, frames = mint.websocket.decode(client.websocket, early)
        assert frames == [Text("hello")]
    finally:
        client.close()


@pytest.mark.parametrize("mode", MODES)
def test_forbidden_upgrade_raises_upgrade_failure(ws_peer: Any, mode: str) -> None:
    client = connect(ws_peer, mode=mode)
    try:
        client.conn, client.ref = mint.websocket.upgrade(
            ws_peer.ws_scheme, client.conn, "/forbidden", []
        )
        status, headers, _body = handshake(client)
        assert status == 403
        with pytest.raises(mint.UpgradeFailureError) as info:
            mint.websocket.new(client.conn, client.ref, status, headers, mode=mode)
        assert info.value.status_code == 403
        assert info.value.reason == ("upgrade_failure", 403)
        assert info.value.conn is client.conn
    finally:
        client.close()


def test_upgrade_sends_the_rfc6455_headers(ws_server: Any) -> None:
    client = open_websocket(ws_server, "/echo")
    try:
        headers = {k.lower(): v for k, v in ws_server.last_request.headers.raw_items()}
        assert headers["upgrade"].lower() == "websocket"
        assert "upgrade" in headers["connection"].lower()
        assert headers["sec-websocket-version"] == "13"
        assert len(headers["sec-websocket-key"]) == 24
    finally:
        client.close()


def test_the_callers_copies_of_the_handshake_headers_are_left_out(ws_server: Any) -> None:
    # Sent beside mint's own, the websockets server answered 400 (two versions) or
    # 426; a key of the caller's would not match the accept mint checks.
    given = [
        ("Upgrade", "websocket"),
        ("Connection", "keep-alive, Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("X-Mine", "kept"),
    ]
    client = open_websocket(ws_server, "/echo", headers=given)
    try:
        sent = [(k.lower(), v) for k, v in ws_server.last_request.headers.raw_items()]
        for name in ("upgrade", "connection", "sec-websocket-version", "sec-websocket-key"):
            assert len([v for k, v in sent if k == name]) == 1, name
        assert ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==") not in sent
        assert ("x-mine", "kept") in sent
        client.send(Text("through"))
        assert client.frames() == [Text("through")]
    finally:
        client.close()


def test_each_upgrade_uses_a_fresh_key(ws_server: Any) -> None:
    keys = set()
    for _ in range(3):
        client = open_websocket(ws_server, "/echo")
        keys.add(ws_server.last_request.headers["Sec-WebSocket-Key"])
        client.close()
    assert len(keys) == 3


@pytest.mark.parametrize("mode", MODES)
def test_hypercorn_http1_echo_and_close(hypercorn_h1: Any, mode: str) -> None:
    client = open_websocket(hypercorn_h1, "/echo", mode=mode)
    try:
        client.send(Text("over hypercorn"))
        assert client.frames() == [Text("over hypercorn")]
        client.send(Binary(bytes(range(256)) * 600))
        assert client.frames() == [Binary(bytes(range(256)) * 600)]
        assert close_handshake(client).code == 1000
    finally:
        client.close()


def test_hypercorn_forbidden(hypercorn_h1: Any) -> None:
    client = connect(hypercorn_h1)
    try:
        client.conn, client.ref = mint.websocket.upgrade("ws", client.conn, "/forbidden", [])
        status, headers, _ = handshake(client)
        with pytest.raises(mint.UpgradeFailureError) as info:
            mint.websocket.new(client.conn, client.ref, status, headers)
        assert info.value.status_code == 403
    finally:
        client.close()


def test_frames_decoded_across_many_reads(ws_server: Any) -> None:
    """A 1 MiB message arrives over many socket reads and decodes to one frame."""
    client = open_websocket(ws_server, "/echo", mode="passive")
    try:
        payload = bytes(range(256)) * 4096
        client.send(Binary(payload))
        reads = 0
        frames: list[Any] = []
        while not frames:
            for response in client.responses():
                assert isinstance(response, Data)
                reads += 1
                client.websocket, frames = mint.websocket.decode(client.websocket, response.data)
        assert frames == [Binary(payload)]
        assert reads > 1
    finally:
        client.close()


@pytest.mark.parametrize("flavour", ["sync", "aio"])
def test_a_switch_to_active_after_a_read_inside_a_tls_record_delivers_its_rest(
    raw_server: Any, flavour: str
) -> None:
    # recv(conn, 7) read 7 bytes of a 12 KB record; OpenSSL kept the rest decrypted,
    # which no poll sees. Switched to active mode, the mailbox waited for the server's
    # next bytes (none came: a reply it waits for, say) and the message never came.
    message = frame(OP_BINARY, bytes(range(256)) * 47)
    go = threading.Event()

    def handler(conn: socket.socket) -> None:
        request = read_request(conn)
        if request:
            conn.sendall(handshake_response(request))
            go.wait(10)
            conn.sendall(message)  # one TLS record of its own
            drain(conn)

    server = raw_server(handler, tls="good")
    http, ws = Flavour(flavour).http, Flavour(flavour).websocket

    async def run() -> bytes:
        opts = {"cafile": server.cafile}
        host = server.server_hostname
        conn = await http.connect("https", host, server.port, mode="passive", transport_opts=opts)
        try:
            conn, ref = await ws.upgrade("wss", conn, "/", [])
            got: list[Any] = []
            while Done(ref) not in got:
                conn, responses = await ws.recv(conn, 0, 5)
                got += responses
            go.set()
            conn, responses = await ws.recv(conn, 7, 5)
            data = b"".join(r.data for r in responses)
            assert len(data) == 7
            box = mint.Mailbox()
            conn = http.controlling_process(conn, box)
            conn = http.set_mode(conn, "active")
            while len(data) < len(message):
                conn, responses = await ws.stream(conn, box.receive(5))
                data += b"".join(r.data for r in responses if isinstance(r, Data))
            return data
        finally:
            await http.close(conn)

    assert asyncio.run(run()) == message
