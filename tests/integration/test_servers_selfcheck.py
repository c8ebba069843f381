"""The test peers work: each fixture's server checked with third-party clients only.

websockets' sync client for the HTTP/1.1 servers, ``h2`` over a raw socket for RFC 8441
extended CONNECT, ``http.client`` for plain HTTP, raw sockets for the scripted server. Nothing
here uses ``mint``: if these fail, the peer is broken, not the library.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import ssl
import zlib
from collections.abc import Iterator

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest
from servers.raw import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_TEXT,
    close_at_once,
    close_frame,
    frame,
    handshake_response,
    never_answer,
    parse_frames,
    read_request,
    reply,
    upgrade_then,
)
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

TIMEOUT = 30.0  # a loaded CI machine must not fail a handshake
KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3 example
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
MASK = b"\x01\x02\x03\x04"


def client_ssl(peer, alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=peer.cafile)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def ws_connect(peer, path: str, **kwargs):
    if peer.scheme == "https":
        ctx = client_ssl(peer)
        # The websockets sync client reads on one thread while writing on another; over
        # TLS 1.3 the server's post-handshake session tickets then race inside one OpenSSL
        # object and the handshake stalls now and then (both ends blocked in SSL_read).
        # TLS 1.2 has no post-handshake messages. mint is single-threaded and unaffected.
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        kwargs["ssl"] = ctx
        kwargs["server_hostname"] = "localhost"
    return connect(peer.url(path), open_timeout=TIMEOUT, close_timeout=TIMEOUT, **kwargs)


def upgrade_request(peer, path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {peer.host}:{peer.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


@contextlib.contextmanager
def tcp(peer) -> Iterator[socket.socket]:
    with socket.create_connection(peer.address, timeout=TIMEOUT) as sock:
        yield sock


def recv_until(sock: socket.socket, marker: bytes) -> bytes:
    buf = bytearray()
    while marker not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


# -- websockets ---------------------------------------------------------------------------------


@pytest.fixture(params=["ws_server", "ws_server_deflate", "wss_server", "wss_server_deflate"])
def any_ws_server(request):
    return request.getfixturevalue(request.param)


def test_websockets_echo_keeps_text_and_binary(any_ws_server):
    with ws_connect(any_ws_server, "/echo") as ws:
        ws.send("héllo")
        assert ws.recv(TIMEOUT) == "héllo"
        ws.send(b"\x00\xff" * 1000)
        assert ws.recv(TIMEOUT) == b"\x00\xff" * 1000
    assert [m for _, m in any_ws_server.messages] == ["héllo", b"\x00\xff" * 1000]


def test_websockets_greet_fragmented_close_ping(any_ws_server):
    with ws_connect(any_ws_server, "/greet") as ws:
        assert ws.recv(TIMEOUT) == "hello"
    with ws_connect(any_ws_server, "/fragmented") as ws:
        assert list(ws.recv_streaming()) == ["frag", "ment", "ed"]
        assert list(ws.recv_streaming()) == [b"\x00\x01", b"\x02\x03"]
    with ws_connect(any_ws_server, "/fragmented-iter") as ws:
        assert list(ws.recv_streaming()) == ["frag", "ment", "ed", ""]
        assert list(ws.recv_streaming()) == [b"\x00\x01", b"\x02\x03", b""]
    with ws_connect(any_ws_server, "/close") as ws:
        ws.send("first")
        with pytest.raises(ConnectionClosedOK) as info:
            ws.recv(TIMEOUT)
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (1000, "bye")
    with ws_connect(any_ws_server, "/ping") as ws:  # the client answers the ping by itself
        assert ws.recv(TIMEOUT) == "pong"


def test_websockets_forbidden_is_403(any_ws_server):
    with pytest.raises(InvalidStatus) as info:
        ws_connect(any_ws_server, "/forbidden")
    assert info.value.response.status_code == 403


def test_websockets_records_offered_extensions(ws_server, ws_server_deflate):
    for server, negotiated in [(ws_server, False), (ws_server_deflate, True)]:
        with ws_connect(server, "/headers") as ws:
            headers = json.loads(ws.recv(TIMEOUT))
            answer = ws.response.headers.get("Sec-WebSocket-Extensions")
        assert "permessage-deflate" in server.last_request.headers["Sec-WebSocket-Extensions"]
        assert ["Sec-WebSocket-Key", server.last_request.headers["Sec-WebSocket-Key"]] in headers
        assert (answer is not None and "permessage-deflate" in answer) is negotiated


def test_websockets_greeting_arrives_with_the_101(ws_server_deflate, ws_server):
    for server in (ws_server, ws_server_deflate):
        with tcp(server) as sock:
            sock.sendall(upgrade_request(server, "/greet"))
            first = sock.recv(65536)  # one recv: the 101 and the frame left in one send
        head, _, rest = first.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        assert f"Sec-WebSocket-Accept: {ACCEPT}".encode() in head
        assert rest == frame(OP_TEXT, b"hello")


# -- hypercorn ----------------------------------------------------------------------------------


@pytest.fixture(params=["hypercorn_h1", "hypercorn_tls"])
def hypercorn_h1_any(request):
    return request.getfixturevalue(request.param)


def test_hypercorn_websocket_over_http1(hypercorn_h1_any):
    with ws_connect(hypercorn_h1_any, "/echo") as ws:
        ws.send("text")
        assert ws.recv(TIMEOUT) == "text"
        ws.send(b"\x01\x02")
        assert ws.recv(TIMEOUT) == b"\x01\x02"
    with ws_connect(hypercorn_h1_any, "/greet") as ws:
        assert ws.recv(TIMEOUT) == "hello"
    with ws_connect(hypercorn_h1_any, "/headers") as ws:
        names = [name for name, _ in json.loads(ws.recv(TIMEOUT))]
        assert "sec-websocket-extensions" in names
        assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
    with ws_connect(hypercorn_h1_any, "/close") as ws:
        ws.send("first")
        with pytest.raises(ConnectionClosedOK) as info:
            ws.recv(TIMEOUT)
        assert (info.value.rcvd.code, info.value.rcvd.reason) == (1000, "bye")
    with pytest.raises(InvalidStatus) as info:
        ws_connect(hypercorn_h1_any, "/forbidden")
    assert info.value.response.status_code == 403
    assert info.value.response.body == b"forbidden"


def test_hypercorn_plain_http1(hypercorn_h1_any):
    peer = hypercorn_h1_any
    if peer.scheme == "https":
        conn = http.client.HTTPSConnection(
            "localhost", peer.port, timeout=TIMEOUT, context=client_ssl(peer, ["http/1.1"])
        )
    else:
        conn = http.client.HTTPConnection(peer.host, peer.port, timeout=TIMEOUT)
    with contextlib.closing(conn):
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"hello")
        conn.request("POST", "/echo-body", body=b"some body")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"some body")
        conn.request("GET", "/chunked")
        resp = conn.getresponse()
        assert resp.getheader("transfer-encoding") == "chunked"
        assert resp.read() == b"".join(f"chunk-{i}\n".encode() for i in range(5))


# -- HTTP/2 extended CONNECT with h2 ------------------------------------------------------------


class H2Client:
    """Just enough of an HTTP/2 client over ``h2`` to drive RFC 8441 by hand."""

    def __init__(self, peer) -> None:
        sock = socket.create_connection(peer.address, timeout=TIMEOUT)
        if peer.scheme == "https":
            sock = client_ssl(peer, ["h2"]).wrap_socket(sock, server_hostname="localhost")
            assert sock.selected_alpn_protocol() == "h2"
        self.sock = sock
        self.peer = peer
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()
        self.flush()
        self.remote_settings: dict[int, int] = {}
        self.pending: list[h2.events.Event] = []
        self.next_event(h2.events.RemoteSettingsChanged)

    def close(self) -> None:
        self.sock.close()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def next_event(self, kind: type, stream_id: int | None = None) -> h2.events.Event:
        while True:
            for i, event in enumerate(self.pending):
                if isinstance(event, kind) and (
                    stream_id is None or getattr(event, "stream_id", None) == stream_id
                ):
                    return self.pending.pop(i)
            data = self.sock.recv(65536)
            assert data, "connection closed"
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    for code, setting in event.changed_settings.items():
                        self.remote_settings[code] = setting.new_value
                if isinstance(event, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
                self.pending.append(event)
            self.flush()

    @property
    def connect_protocol(self) -> int | None:
        return self.remote_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)

    def request(self, method: str, path: str, extra=(), end_stream=True) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (":method", method),
            (":scheme", self.peer.scheme),
            (":path", path),
            (":authority", f"localhost:{self.peer.port}"),
            *extra,
        ]
        self.conn.send_headers(stream_id, headers, end_stream=end_stream)
        self.flush()
        return stream_id

    def connect_websocket(self, path: str, extensions: str | None = None):
        stream_id = self.send_connect(path, extensions)
        response = self.next_event(h2.events.ResponseReceived, stream_id)
        return stream_id, dict(response.headers)

    def send_connect(self, path: str, extensions: str | None = None) -> int:
        extra = [(":protocol", "websocket"), ("sec-websocket-version", "13")]
        if extensions is not None:
            extra.append(("sec-websocket-extensions", extensions))
        stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (":method", "CONNECT"),
            extra[0],
            (":scheme", self.peer.scheme),
            (":path", path),
            (":authority", f"localhost:{self.peer.port}"),
            *extra[1:],
        ]
        self.conn.send_headers(stream_id, headers, end_stream=False)
        self.flush()
        return stream_id

    def send_frame(self, stream_id: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            room = min(
                self.conn.local_flow_control_window(stream_id), self.conn.max_outbound_frame_size
            )
            if room == 0:
                self.next_event(h2.events.WindowUpdated)
                continue
            self.conn.send_data(stream_id, bytes(view[:room]))
            self.flush()
            view = view[room:]

    def body(self, stream_id: int) -> bytes:
        body = bytearray()
        while True:
            event = self.next_event((h2.events.DataReceived, h2.events.StreamEnded), stream_id)
            if isinstance(event, h2.events.StreamEnded):
                return bytes(body)
            body += event.data

    def ws_frames(self, stream_id: int, count: int):
        buf, frames = b"", []
        while len(frames) < count:
            event = self.next_event(h2.events.DataReceived, stream_id)
            got, buf = parse_frames(buf + event.data)
            frames += got
        return frames


def decode_header_value(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


@contextlib.contextmanager
def h2_client(peer) -> Iterator[H2Client]:
    client = H2Client(peer)
    try:
        yield client
    finally:
        client.close()


def echo_over_h2(client: H2Client, path: str = "/echo", extensions: str | None = None):
    stream_id, headers = client.connect_websocket(path, extensions)
    assert headers[b":status"] == b"200"
    client.send_frame(stream_id, frame(OP_TEXT, b"over h2", mask=MASK))
    client.send_frame(stream_id, frame(OP_BINARY, b"\x00\x01\x02", mask=MASK))
    text, binary = client.ws_frames(stream_id, 2)
    assert (text.opcode, inflate_if_compressed(text)) == (OP_TEXT, b"over h2")
    assert (binary.opcode, inflate_if_compressed(binary)) == (OP_BINARY, b"\x00\x01\x02")
    return stream_id, headers


def inflate_if_compressed(f) -> bytes:
    if not f.rsv & 0x4:
        return f.payload
    return zlib.decompressobj(-15).decompress(f.payload + b"\x00\x00\xff\xff")


@pytest.fixture(params=["hypercorn_h2c", "hypercorn_tls"])
def hypercorn_h2_any(request):
    return request.getfixturevalue(request.param)


def test_hypercorn_extended_connect(hypercorn_h2_any):
    with h2_client(hypercorn_h2_any) as client:
        assert client.connect_protocol == 1
        echo_over_h2(client)
        stream_id, headers = client.connect_websocket("/forbidden")
        assert headers[b":status"] == b"403"
        assert client.body(stream_id) == b"forbidden"
        stream_id = client.request("GET", "/chunked")
        assert client.next_event(h2.events.ResponseReceived, stream_id)
        assert client.body(stream_id).startswith(b"chunk-0\n")
        stream_id = client.request("POST", "/echo-body", end_stream=False)
        client.conn.send_data(stream_id, b"h2 body", end_stream=True)
        client.flush()
        assert client.body(stream_id) == b"h2 body"


def test_hypercorn_extended_connect_close(hypercorn_h2c):
    with h2_client(hypercorn_h2c) as client:
        stream_id, _ = client.connect_websocket("/close")
        client.send_frame(stream_id, frame(OP_TEXT, b"first", mask=MASK))
        (closing,) = client.ws_frames(stream_id, 1)
        assert (closing.opcode, closing.payload) == (OP_CLOSE, close_frame(1000, "bye")[2:])


@pytest.mark.node
@pytest.mark.parametrize("fixture", ["node_h2c", "node_h2_tls"])
def test_node_extended_connect(request, fixture):
    peer = request.getfixturevalue(fixture)
    with h2_client(peer) as client:
        assert client.connect_protocol == 1
        _, headers = echo_over_h2(client)
        assert b"sec-websocket-extensions" not in headers
        _, headers = echo_over_h2(client, extensions="permessage-deflate; client_max_window_bits")
        assert headers[b"sec-websocket-extensions"].startswith(b"permessage-deflate")
        stream_id, _ = client.connect_websocket("/greet")
        (greeting,) = client.ws_frames(stream_id, 1)
        assert (greeting.opcode, greeting.payload) == (OP_TEXT, b"hello")
        stream_id, _ = client.connect_websocket("/close")
        client.send_frame(stream_id, frame(OP_TEXT, b"first", mask=MASK))
        (closing,) = client.ws_frames(stream_id, 1)
        assert (closing.opcode, closing.payload) == (OP_CLOSE, close_frame(1000, "bye")[2:])
        stream_id, headers = client.connect_websocket("/forbidden")
        assert headers[b":status"] == b"403"
        stream_id = client.request("GET", "/")
        assert (
            dict(client.next_event(h2.events.ResponseReceived, stream_id).headers)[b":status"]
            == b"200"
        )
        assert client.body(stream_id) == b"hello"


@pytest.mark.node
def test_node_fragmented_and_large_messages(node_h2c):
    with h2_client(node_h2c) as client:
        stream_id, _ = client.connect_websocket("/echo")
        client.send_frame(stream_id, frame(OP_TEXT, b"frag", fin=False, mask=MASK))
        client.send_frame(stream_id, frame(OP_CONT, b"ment", mask=MASK))
        big = os.urandom(100_000)
        client.send_frame(stream_id, frame(OP_BINARY, big, mask=MASK)[:16_000])
        client.send_frame(stream_id, frame(OP_BINARY, big, mask=MASK)[16_000:])
        text, binary = client.ws_frames(stream_id, 2)
        assert (text.opcode, text.payload) == (OP_TEXT, b"fragment")
        assert (binary.opcode, binary.payload) == (OP_BINARY, big)


@pytest.mark.node
def test_node_without_connect_protocol(node_h2c_no_connect):
    with h2_client(node_h2c_no_connect) as client:
        assert client.connect_protocol in (None, 0)  # Node sends it as 0
        # h2 lets a client send :protocol anyway; Node refuses the stream (RFC 8441 section 3).
        stream_id = client.send_connect("/echo")
        reset = client.next_event(h2.events.StreamReset, stream_id)
        assert reset.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
        stream_id = client.request("GET", "/")
        assert client.body(stream_id) == b"hello"


# -- raw server and closed port -----------------------------------------------------------------


def test_raw_server_scripts(raw_server):
    garbage = raw_server(reply(b"SSH-2.0-nope\r\n"))
    wrong = raw_server(upgrade_then(accept="AAAA", then_close=False))
    truncated = raw_server(upgrade_then(frame(OP_TEXT, b"hello world")[:5]))
    greeting = raw_server(upgrade_then(frame(OP_TEXT, b"hi"), then_close=False))
    closer = raw_server(close_at_once)
    silent = raw_server(never_answer)

    with tcp(garbage) as sock:
        sock.sendall(upgrade_request(garbage, "/"))
        assert recv_until(sock, b"\x00") == b"SSH-2.0-nope\r\n"

    with tcp(wrong) as sock:
        sock.sendall(upgrade_request(wrong, "/"))
        assert b"Sec-WebSocket-Accept: AAAA\r\n" in recv_until(sock, b"\r\n\r\n")

    with tcp(truncated) as sock:
        sock.sendall(upgrade_request(truncated, "/"))
        data = recv_until(sock, b"\x00")  # read to EOF: the server vanished mid-frame
        head, _, rest = data.partition(b"\r\n\r\n")
        assert f"Sec-WebSocket-Accept: {ACCEPT}".encode() in head
        assert rest == frame(OP_TEXT, b"hello world")[:5]

    with tcp(greeting) as sock:
        sock.sendall(upgrade_request(greeting, "/"))
        first = recv_until(sock, frame(OP_TEXT, b"hi"))
        assert first == handshake_response(upgrade_request(greeting, "/")) + frame(OP_TEXT, b"hi")

    with tcp(closer) as sock, contextlib.suppress(ConnectionResetError):
        assert sock.recv(1) == b""

    with tcp(silent) as sock:
        sock.sendall(upgrade_request(silent, "/"))
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recv(1)

    assert (garbage.connections, silent.connections) == (1, 1)


def test_raw_server_with_handler_function(raw_server):
    seen = []

    def handler(conn):
        seen.append(read_request(conn))
        conn.sendall(handshake_response(seen[0]) + frame(OP_BINARY, b"\x07"))

    server = raw_server(handler)
    with tcp(server) as sock:
        sock.sendall(upgrade_request(server, "/x"))
        data = recv_until(sock, b"\x82\x01\x07")
    assert data.endswith(b"\r\n\r\n\x82\x01\x07")
    assert seen[0].startswith(b"GET /x HTTP/1.1\r\n")


@pytest.mark.parametrize(
    ("which", "error"),
    [("good", None), ("other", "certificate verify failed"), ("wrong_host", "Hostname mismatch")],
)
def test_raw_server_tls_certificates(raw_server, tls_ca, which, error):
    server = raw_server(never_answer, tls=which)
    ctx = ssl.create_default_context(cafile=tls_ca.cafile)
    with socket.create_connection(server.address, timeout=TIMEOUT) as sock:
        if error is None:
            with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
                assert tls.version() is not None
        else:
            with pytest.raises(ssl.SSLCertVerificationError, match=error):
                ctx.wrap_socket(sock, server_hostname="localhost")


def test_refused_port(refused_port):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", refused_port), timeout=TIMEOUT)
