"""Unhappy paths over HTTP/1.1: each gives a clear, typed error, never a hang or a raw exception."""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

import pytest
from aio_client import Flavour
from servers.raw import (
    close_at_once,
    drain,
    frame,
    handshake_response,
    never_answer,
    read_request,
    reply,
    upgrade_then,
)
from wsclient import connect, handshake, open_websocket

import mint
from mint.http import Data, Done
from mint.websocket import Text

MODES = ["active", "passive"]


def test_refused_port(refused_port: int) -> None:
    with pytest.raises(mint.TransportError) as info:
        mint.http.connect("http", "127.0.0.1", refused_port)
    assert info.value.reason == "econnrefused"


def test_unresolvable_host() -> None:
    with pytest.raises(mint.TransportError) as info:
        mint.http.connect("http", "no-such-host.invalid", 80, transport_opts={"timeout": 5})
    assert info.value.reason == "nxdomain"


@pytest.mark.parametrize("which", ["other", "wrong_host"])
def test_bad_certificate_is_a_tls_alert(raw_server: Any, tls_ca: Any, which: str) -> None:
    server = raw_server(never_answer, tls=which)
    with pytest.raises(mint.TransportError) as info:
        mint.http.connect(
            "https", "localhost", server.port, transport_opts={"cafile": tls_ca.cafile}
        )
    assert info.value.reason[0] == "tls_alert"
    assert not isinstance(info.value, ssl.SSLError)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_a_name_or_an_address_the_certificate_does_not_hold_fail_alike(
    raw_server: Any, tls_ca: Any, host: str
) -> None:
    # Erlang's ssl says handshake_failure for a host name mismatch; an address's
    # (OpenSSL's verify code 64, not 62) came out as bad_certificate.
    server = raw_server(never_answer, tls="wrong_host")
    with pytest.raises(mint.TransportError) as info:
        mint.http.connect("https", host, server.port, transport_opts={"cafile": tls_ca.cafile})
    assert info.value.reason[:2] == ("tls_alert", "handshake_failure")


def test_verify_false_accepts_an_unknown_ca(raw_server: Any) -> None:
    server = raw_server(never_answer, tls="other")
    conn = mint.http.connect(
        "https", "localhost", server.port, mode="passive", transport_opts={"verify": False}
    )
    assert mint.http.is_open(conn)
    mint.http.close(conn)


def test_ssl_context_is_used(raw_server: Any, tls_ca: Any) -> None:
    server = raw_server(never_answer, tls="good")
    ctx = ssl.create_default_context(cafile=tls_ca.cafile)
    conn = mint.http.connect(
        "https", "localhost", server.port, mode="passive", transport_opts={"ssl_context": ctx}
    )
    assert isinstance(mint.http.get_socket(conn), ssl.SSLSocket)
    mint.http.close(conn)


def test_tls_to_a_plain_server_fails_cleanly(raw_server: Any) -> None:
    def plain_http(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")  # not a TLS record

    server = raw_server(plain_http)
    with pytest.raises(mint.TransportError) as info:
        mint.http.connect("https", "127.0.0.1", server.port, transport_opts={"timeout": 5})
    assert info.value.reason[0] == "tls_alert" or info.value.reason == "closed"


@pytest.mark.parametrize("mode", MODES)
def test_garbage_instead_of_a_101(raw_server: Any, mode: str) -> None:
    server = raw_server(reply(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"))
    client = connect(server, mode=mode)
    try:
        client.conn, client.ref = mint.websocket.upgrade("ws", client.conn, "/", [])
        with pytest.raises(mint.HTTPError) as info:
            handshake(client)
        assert info.value.reason[0] == "invalid_response"
        assert info.value.conn is client.conn
    finally:
        client.close()


@pytest.mark.parametrize(
    ("offer", "answer", "ok"),
    [
        (None, "evil", False),  # nothing offered, one chosen
        ("chat, superchat", "evil", False),  # not among those offered
        ("chat, superchat", "chat, superchat", False),  # the server must choose one
        ("chat, superchat", "superchat", True),
        ("chat", None, True),  # the server may decline them all
    ],
)
def test_the_answers_subprotocol_must_be_one_offered(
    raw_server: Any, offer: str | None, answer: str | None, ok: bool
) -> None:
    # RFC 6455 4.1: a subprotocol not present in the client's handshake fails the
    # WebSocket connection.
    extra = [("Sec-WebSocket-Protocol", answer)] if answer else []
    server = raw_server(upgrade_then(then_close=False, extra_headers=extra))
    client = connect(server, mode="passive")
    try:
        headers = [("sec-websocket-protocol", offer)] if offer else []
        client.conn, client.ref = mint.websocket.upgrade("ws", client.conn, "/", headers)
        status, resp_headers, _ = handshake(client)
        assert status == 101
        if ok:
            mint.websocket.new(client.conn, client.ref, status, resp_headers, mode="passive")
            return
        with pytest.raises(mint.WebSocketError) as info:
            mint.websocket.new(client.conn, client.ref, status, resp_headers, mode="passive")
        assert info.value.reason == ("subprotocol_not_offered", answer)
        assert info.value.conn is client.conn
    finally:
        client.close()


@pytest.mark.parametrize("mode", MODES)
def test_101_with_a_wrong_accept_key(raw_server: Any, mode: str) -> None:
    server = raw_server(upgrade_then(accept="dGhlIHNhbXBsZSBub25jZQ==", then_close=False))
    client = connect(server, mode=mode)
    try:
        client.conn, client.ref = mint.websocket.upgrade("ws", client.conn, "/", [])
        status, headers, _ = handshake(client)
        assert status == 101
        with pytest.raises(mint.WebSocketError) as info:
            mint.websocket.new(client.conn, client.ref, status, headers, mode=mode)
        assert info.value.reason == "invalid_nonce"
        assert info.value.conn is client.conn
    finally:
        client.close()


@pytest.mark.parametrize("flavour", ["sync", "aio"])
@pytest.mark.parametrize("end", ["close_notify", "truncated"])
def test_a_tls_body_delimited_by_the_close_is_whole_only_after_close_notify(
    raw_server: Any, end: str, flavour: str
) -> None:
    # RFC 9112 9.8, RFC 8446 6.1: a TCP end without close_notify is a truncation (an
    # attacker's FIN, or a server that died), not the end of a body the close
    # delimits. The ssl module reads it as the end by default (suppress_ragged_eofs),
    # and mint said Done for a body it could not know was whole.
    body = b"x" * 1000

    def handler(conn: socket.socket) -> None:
        if read_request(conn):
            conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nconnection: close\r\n\r\n" + body)
            if end == "close_notify":
                assert isinstance(conn, ssl.SSLSocket)
                conn.unwrap()

    server = raw_server(handler, tls="good")
    http = Flavour(flavour).http

    async def run() -> list[Any]:
        opts = {"cafile": server.cafile}
        host = server.server_hostname
        conn = await http.connect("https", host, server.port, mode="passive", transport_opts=opts)
        conn, ref = await http.request(conn, "GET", "/", [])
        got: list[Any] = []
        try:
            while Done(ref) not in got:
                conn, responses = await http.recv(conn, 0, 5)
                got += responses
        except mint.TransportError as error:
            assert error.reason == "closed"
            got += [*error.responses, error]
        await http.close(conn)
        return got

    got = asyncio.run(run())
    assert b"".join(r.data for r in got if isinstance(r, Data)) == body
    if end == "close_notify":
        assert isinstance(got[-1], Done)
    else:
        assert isinstance(got[-1], mint.TransportError)
        assert not any(isinstance(r, Done) for r in got)


@pytest.mark.parametrize("version", [b"HTTP/1.0", b"HTTP/2.0"])
@pytest.mark.parametrize("mode", MODES)
def test_a_101_in_another_http_version_is_no_upgrade(
    raw_server: Any, mode: str, version: bytes
) -> None:
    # Switching protocols is HTTP/1.1's (RFC 9110 7.8, RFC 6455 4.2.2): an otherwise
    # correct 101 in HTTP/1.0 is an invalid response, and what follows it no WebSocket.
    def handler(conn: socket.socket) -> None:
        request = read_request(conn)
        if request:
            answer = handshake_response(request).replace(b"HTTP/1.1", version, 1)
            conn.sendall(answer + frame(0x1, b"hi"))
            drain(conn)

    server = raw_server(handler)
    client = connect(server, mode=mode)
    try:
        client.conn, client.ref = mint.websocket.upgrade("ws", client.conn, "/", [])
        with pytest.raises(mint.HTTPError) as info:
            handshake(client)
        assert info.value.reason[0] == "invalid_response"
        assert version.decode() in info.value.reason[1]
        assert info.value.conn is client.conn
        assert not mint.http.is_open(client.conn, "write")
    finally:
        client.close()


@pytest.mark.parametrize("mode", MODES)
def test_peer_vanishes_mid_frame(raw_server: Any, mode: str) -> None:
    whole = frame(0x1, b"complete")
    truncated = frame(0x2, b"x" * 1000)[:300]
    server = raw_server(upgrade_then(whole + truncated, then_close=True))
    client = connect(server, mode=mode)
    try:
        client.conn, client.ref = mint.websocket.upgrade("ws", client.conn, "/", [])
        status, headers, early = handshake(client)
        client.conn, client.websocket = mint.websocket.new(
            client.conn, client.ref, status, headers, mode=mode
        )
        frames: list[Any] = []
        if early:
            client.websocket, frames = mint.websocket.decode(client.websocket, early)
        with pytest.raises(mint.TransportError) as info:
            while True:
                for response in client.responses(timeout=5):
                    if isinstance(response, Data):
                        client.websocket, more = mint.websocket.decode(
                            client.websocket, response.data
                        )
                        frames += more
        assert info.value.reason == "closed"
        # The whole frame is delivered; the truncated one is never invented.
        assert frames == [Text("complete")]
        assert not mint.http.is_open(client.conn)
    finally:
        client.close()


@pytest.mark.parametrize("mode", MODES)
def test_server_closes_before_answering(raw_server: Any, mode: str) -> None:
    server = raw_server(close_at_once)
    client = connect(server, mode=mode)
    try:
        try:
            client.conn, client.ref = mint.websocket.upgrade("ws", client.conn, "/", [])
        except mint.TransportError as exc:  # the write may already see the reset
            assert exc.reason == "closed"
            return
        with pytest.raises(mint.TransportError) as info:
            handshake(client)
        assert info.value.reason == "closed"
    finally:
        client.close()


def test_server_never_answers_passive_recv_times_out(raw_server: Any) -> None:
    server = raw_server(never_answer)
    client = connect(server, mode="passive")
    try:
        client.conn, client.ref = mint.websocket.upgrade("ws", client.conn, "/", [])
        with pytest.raises(mint.TransportError) as info:
            mint.websocket.recv(client.conn, 0, 0.2)
        assert info.value.reason == "timeout"
        assert info.value.conn is client.conn
        assert mint.http.is_open(client.conn)  # a timeout does not close the connection
    finally:
        client.close()


def test_server_never_answers_active_receive_times_out(raw_server: Any) -> None:
    server = raw_server(never_answer)
    client = connect(server, mode="active")
    try:
        client.conn, client.ref = mint.websocket.upgrade("ws", client.conn, "/", [])
        with pytest.raises(TimeoutError):
            assert client.mailbox is not None
            client.mailbox.receive(timeout=0.2)
    finally:
        client.close()


def test_invalid_arguments_are_typed_errors() -> None:
    with pytest.raises(mint.HTTPError) as info:
        mint.http.connect("ftp", "localhost", 21)
    assert info.value.reason == ("invalid_scheme", "ftp")
    with pytest.raises(mint.HTTPError):
        mint.http.connect("http", "localhost", 80, mode="sideways")
    with pytest.raises(mint.HTTPError):
        mint.http.connect("http", "localhost", 80, protocols=("http3",))


def test_upgrade_rejects_bad_scheme(ws_server: Any) -> None:
    client = connect(ws_server)
    try:
        with pytest.raises(mint.WebSocketError) as info:
            mint.websocket.upgrade("http", client.conn, "/", [])
        assert info.value.conn is client.conn
    finally:
        client.close()


def test_send_after_the_peer_vanished(raw_server: Any) -> None:
    server = raw_server(upgrade_then(b"", then_close=True))
    client = open_websocket(server, "/", mode="passive")
    try:
        with pytest.raises(mint.TransportError) as info:
            while True:
                client.responses(timeout=5)
        assert info.value.reason == "closed"
        with pytest.raises(mint.TransportError) as info:
            client.send(Text("too late"))
        assert info.value.reason == "closed"
    finally:
        client.close()


def test_mid_stream_reset_is_closed(raw_server: Any) -> None:
    def reset(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    server = raw_server(reset)
    client = connect(server, mode="passive")
    try:
        client.conn, client.ref = mint.websocket.upgrade("ws", client.conn, "/", [])
        with pytest.raises(mint.TransportError) as info:
            while True:
                client.responses(timeout=5)
        assert info.value.reason == "closed"
    finally:
        client.close()


@pytest.mark.parametrize("mode", ["passive", "active"])
def test_a_server_closing_an_idle_connection_is_transport_error_closed(
    raw_server: Any, mode: str
) -> None:
    # Mint's handle_close: {:error, conn, %TransportError{reason: :closed}, []} when no
    # body runs until the close; the idle close came out as (conn, []).
    import time

    server = raw_server(reply(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"))
    conn = mint.http.connect("http", "127.0.0.1", server.port, mode=mode)
    conn, _ = mint.http.request(conn, "GET", "/", [])
    seen: list[Any] = []
    deadline = time.monotonic() + 10
    with pytest.raises(mint.TransportError) as info:
        while time.monotonic() < deadline:
            if mode == "passive":
                conn, responses = mint.http.recv(conn, 0, 5)
            else:
                result = mint.http.stream(conn, mint.receive(5))
                if result is mint.UNKNOWN:
                    continue
                conn, responses = result
            done = any(type(r).__name__ == "Done" for r in seen)
            assert responses or not done, "the close came out as (conn, []), not as the error"
            seen += responses
    assert info.value.reason == "closed"
    assert info.value.responses == []
    assert [type(r).__name__ for r in seen] == ["Status", "Headers", "Data", "Done"]
    assert not mint.http.is_open(info.value.conn)
    mint.http.close(info.value.conn)


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        ("CONNECT", "example.com:443", []),
        ("GET", "/", [("upgrade", "foo"), ("connection", "upgrade")]),
    ],
    ids=["connect", "upgrade-header"],
)
def test_nothing_is_pipelined_behind_a_request_that_switches_protocols(
    raw_server: Any, method: str, target: str, headers: list[tuple[str, str]]
) -> None:
    # RFC 9110 9.3.6 / 7.8: after a 2xx to CONNECT (a 101 to an Upgrade) the connection
    # is a tunnel (the new protocol): a request pipelined behind it went into it,
    # to the far host behind a proxy, say. Refused, as behind a WebSocket upgrade.
    received: list[bytes] = []

    def handler(conn: socket.socket) -> None:
        conn.settimeout(1.0)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            conn.settimeout(0.3)
            data += conn.recv(65536)  # anything pipelined after it
        except TimeoutError:
            pass
        received.append(data)
        answer = (
            b"HTTP/1.1 200 OK\r\n\r\n"
            if method == "CONNECT"
            else (
                b"HTTP/1.1 101 Switching Protocols\r\nupgrade: foo\r\nconnection: upgrade\r\n\r\n"
            )
        )
        conn.sendall(answer + b"TUNNEL")
        conn.settimeout(2.0)
        try:
            conn.recv(1)
        except TimeoutError:
            pass

    server = raw_server(handler)
    conn = mint.http.connect("http", "127.0.0.1", server.port, mode="passive")
    try:
        conn, ref = mint.http.request(conn, method, target, headers)
        with pytest.raises(mint.HTTPError) as info:
            mint.http.request(conn, "GET", "/pipelined", [])
        assert info.value.reason == (
            "invalid_request",
            "an upgrade request is waiting for its answer",
        )
        conn = info.value.conn
        assert mint.http.open_request_count(conn) == 1
        got = b""
        while b"TUNNEL" not in got:
            conn, responses = mint.http.recv(conn, 0, 5.0)
            got += b"".join(r.data for r in responses if isinstance(r, Data) and r.ref == ref)
        assert received and b"/pipelined" not in received[0]
    finally:
        mint.http.close(conn)
