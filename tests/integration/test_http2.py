"""``mint.http`` over HTTP/2 against real servers (hypercorn, Node.js) and the fault server."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from conftest_h2 import (
    body,
    connect_h2,
    get,
    h2_fault,  # noqa: F401 - fixture
    of,
    read,
    read_until,
)
from servers.one_shot import OneConnection
from servers.raw import OP_TEXT, drain, frame, handshake_response, read_request, reply

import mint
from mint.http import Data, Done, Error, Headers, Pong, Status

SERVERS = [
    "hypercorn_h2c",
    "hypercorn_tls",
    pytest.param("node_h2c", marks=pytest.mark.node),
    pytest.param("node_h2_tls", marks=pytest.mark.node),
    "fault",
]
MODES = ["passive", "active"]


@pytest.fixture
def peer(request: pytest.FixtureRequest, h2_fault: Any) -> Any:  # noqa: F811
    return h2_fault() if request.param == "fault" else request.getfixturevalue(request.param)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("peer", SERVERS, indirect=True)
def test_get(peer: Any, mode: str) -> None:
    conn = connect_h2(peer, mode)
    try:
        assert mint.http.protocol(conn) == "http2"
        conn, ref = mint.http.request(conn, "GET", "/", [("X-Test", "1")])
        conn, seen = read_until(conn, mode, lambda rs: Done(ref) in rs)
        mine = of(ref, seen)
        assert mine[0] == Status(ref, 200)
        assert isinstance(mine[1], Headers)
        assert all(name == name.lower() for name, _ in mine[1].headers)
        assert body(ref, seen) == b"hello"
        assert mine[-1] == Done(ref)
        assert mint.http.open_request_count(conn) == 0
        assert mint.http.is_open(conn)
    finally:
        mint.http.close(conn)
    assert not mint.http.is_open(conn)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("peer", SERVERS, indirect=True)
def test_many_requests_in_flight(peer: Any, mode: str) -> None:
    conn = connect_h2(peer, mode)
    try:
        refs = []
        for _ in range(20):
            conn, ref = mint.http.request(conn, "GET", "/", [])
            refs.append(ref)
        assert mint.http.open_request_count(conn) == 20
        conn, seen = read_until(conn, mode, lambda rs: all(Done(r) in rs for r in refs))
        for ref in refs:
            assert of(ref, seen)[0] == Status(ref, 200)
            assert body(ref, seen) == b"hello"
        assert mint.http.open_request_count(conn) == 0
    finally:
        mint.http.close(conn)


@pytest.mark.parametrize("peer", SERVERS, indirect=True)
def test_ping(peer: Any) -> None:
    conn = connect_h2(peer, "passive")
    try:
        conn, first = mint.http.ping(conn)
        conn, second = mint.http.ping(conn)
        conn, seen = read_until(conn, "passive", lambda rs: Pong(second) in rs)
        assert seen == [Pong(first), Pong(second)]
    finally:
        mint.http.close(conn)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("peer", ["hypercorn_h2c", "hypercorn_tls"], indirect=True)
def test_big_streamed_body_echoed(peer: Any, mode: str) -> None:
    payload = os.urandom(3 * 2**20)
    conn = connect_h2(peer, mode)
    try:
        conn, ref = mint.http.request(conn, "POST", "/echo-body", [], mint.http.STREAM)
        for i in range(0, len(payload), 100_000):
            conn = mint.http.stream_request_body(conn, ref, payload[i : i + 100_000])
        conn = mint.http.stream_request_body(conn, ref, mint.http.EOF)
        assert mint.http.pending_bytes(conn, ref) > 0  # beyond hypercorn's windows
        conn, seen = read_until(conn, mode, lambda rs: Done(ref) in rs, timeout=60)
        assert body(ref, seen) == payload
        assert mint.http.pending_bytes(conn) == 0
    finally:
        mint.http.close(conn)


def test_tiny_windows_request_body(h2_fault: Any) -> None:  # noqa: F811
    peer = h2_fault(initial_window=512, window_step=300)
    payload = os.urandom(500_000)
    conn = connect_h2(peer, "passive")
    try:
        conn, ref = mint.http.request(conn, "POST", "/sink", [], payload)
        assert mint.http.pending_bytes(conn) == len(payload) - 512
        assert mint.http.send_window(conn, ref) == 0
        conn, seen = read_until(conn, "passive", lambda rs: Done(ref) in rs, timeout=60)
        expected = f"{len(payload)} {hashlib.sha256(payload).hexdigest()}".encode()
        assert body(ref, seen) == expected
    finally:
        mint.http.close(conn)


def test_big_response_is_acknowledged(h2_fault: Any) -> None:  # noqa: F811
    size = 40 * 2**20  # more than the 16 MiB receive windows: the server must get them back
    peer = h2_fault()
    conn = connect_h2(peer, "passive")
    try:
        conn, ref = mint.http.request(conn, "GET", f"/big?size={size}", [])
        received = 0
        done = False
        while not done:
            conn, responses = read(conn, "passive")
            for r in responses:
                if isinstance(r, Data):
                    received += len(r.data)
                done = done or r == Done(ref)
        assert received == size
    finally:
        mint.http.close(conn)


def test_stream_reset_only_fails_its_request(h2_fault: Any) -> None:  # noqa: F811
    peer = h2_fault()
    conn = connect_h2(peer, "passive")
    try:
        conn, held = mint.http.request(conn, "GET", "/hold", [])
        conn, reset = mint.http.request(conn, "GET", "/reset?code=8", [])
        conn, seen = read_until(conn, "passive", lambda rs: any(isinstance(r, Error) for r in rs))
        assert of(reset, seen) == [
            Status(reset, 200),
            Headers(reset, []),
            Data(reset, b"partial"),
            Error(reset, mint.HTTPError(("server_closed_request", "cancel"))),
        ]
        conn, status, got = get(conn, "passive")
        assert (status, got) == (200, b"hello")
        assert mint.http.open_request_count(conn) == 1  # /hold still open
        conn = mint.http.cancel_request(conn, held)
        assert mint.http.open_request_count(conn) == 0
    finally:
        mint.http.close(conn)


def test_a_closed_connection_counts_no_open_request(h2_fault: Any) -> None:  # noqa: F811
    # Nothing more can come for the streams in flight: HTTP/2 counted them for good.
    conn = connect_h2(h2_fault(), "passive")
    conn, _ = mint.http.request(conn, "GET", "/hold", [])
    conn, _ = mint.http.request(conn, "POST", "/sink", [], mint.http.STREAM)
    assert mint.http.open_request_count(conn) == 2
    conn = mint.http.close(conn)
    assert mint.http.open_request_count(conn) == 0


def test_goaway(h2_fault: Any) -> None:  # noqa: F811
    peer = h2_fault()
    conn = connect_h2(peer, "passive")
    try:
        conn, before = mint.http.request(conn, "GET", "/hold", [])  # stream 1
        conn, ref = mint.http.request(conn, "GET", "/goaway", [])  # stream 3: last_stream_id=1
        conn, seen = read_until(conn, "passive", lambda rs: Done(before) in rs)
        assert Error(ref, mint.HTTPError("unprocessed")) in seen
        assert body(before, seen) == b"done"  # stream 1 finished after the GOAWAY
        assert not mint.http.is_open(conn, "write")
        with pytest.raises(mint.HTTPError) as info:
            mint.http.request(conn, "GET", "/", [])
        assert info.value.reason == "closed_for_writing"  # Mint's reason after GOAWAY
        conn = info.value.conn
        conn, rest = read(conn, "passive")  # the server then closes: nothing was pending
        assert rest == []
        assert not mint.http.is_open(conn, "read")
    finally:
        mint.http.close(conn)


def test_vanished_server_keeps_the_responses(h2_fault: Any) -> None:  # noqa: F811
    peer = h2_fault()
    conn = connect_h2(peer, "passive")
    seen: list[Any] = []
    try:
        conn, ref = mint.http.request(conn, "GET", "/vanish", [])
        with pytest.raises(mint.TransportError) as info:
            while True:
                conn, responses = read(conn, "passive")
                seen += responses
        seen += info.value.responses
        assert info.value.reason == "closed"
        assert of(ref, seen) == [
            Status(ref, 200),
            Headers(ref, []),
            Data(ref, b"partial"),
            Error(ref, mint.TransportError("closed")),
        ]
        assert not mint.http.is_open(info.value.conn)
    finally:
        mint.http.close(conn)


@pytest.mark.parametrize("mode", MODES)
def test_a_reset_connection_ends_every_open_request(h2_fault: Any, mode: str) -> None:  # noqa: F811
    # A TCP RST rather than a FIN: each request still open ends all the same, with an
    # Error of its own in the raised error's responses (none may just vanish).
    peer = h2_fault()
    conn = connect_h2(peer, mode)
    seen: list[Any] = []
    try:
        conn, held = mint.http.request(conn, "GET", "/hold", [])
        conn, abort = mint.http.request(conn, "GET", "/abort", [])
        with pytest.raises(mint.TransportError) as info:
            while True:
                conn, responses = read(conn, mode)
                seen += responses
        seen += info.value.responses
        conn = info.value.conn
        for ref in (held, abort):
            ends = [r for r in of(ref, seen) if isinstance(r, Error | Done)]
            assert ends == [Error(ref, mint.TransportError(info.value.reason))], seen
        assert mint.http.open_request_count(conn) == 0
        assert not mint.http.is_open(conn)
    finally:
        mint.http.close(conn)


@pytest.mark.parametrize("mode", MODES)
def test_a_write_the_reset_cuts_short_ends_the_connection(h2_fault: Any, mode: str) -> None:  # noqa: F811
    # The reset is found by a write, not a read: the connection ends as it does for a
    # read (Mint's HTTP/2 marks itself closed when a send fails with :closed). It
    # stayed open before, the socket too, and the open requests never ended.
    peer = h2_fault()
    conn = connect_h2(peer, mode)
    try:
        conn, whole = mint.http.request(conn, "GET", "/", [])
        conn, held = mint.http.request(conn, "GET", "/hold", [])
        conn, abort = mint.http.request(conn, "GET", "/abort", [])
        time.sleep(0.3)  # the answer to "/" and the reset are in, nothing read
        failure = None
        for path in ("/a", "/b", "/c"):
            try:
                conn, _ref = mint.http.request(conn, "GET", path, [])
            except mint.TransportError as exc:
                failure = exc
                break
            time.sleep(0.1)
        assert failure is not None, "no write failed"
        assert failure.reason == "closed"
        conn = failure.conn
        ends = [r for r in failure.responses if isinstance(r, Error | Done)]
        # The answer that arrived whole before the reset comes first, as a read would
        # have delivered it (in the kernel's buffer, or the mailbox's queue); it was
        # replaced by an Error.
        assert ends == [Done(whole), Error(held, failure), Error(abort, failure)], ends
        assert body(whole, failure.responses) == b"hello"
        assert not mint.http.is_open(conn)
        assert not mint.http.is_open(conn, "read")
        assert mint.http.open_request_count(conn) == 0
        with pytest.raises(mint.MintError):
            mint.http.request(conn, "GET", "/again", [])
    finally:
        mint.http.close(conn)


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        # (An ordinary CONNECT was h2's own refusal, half-way through the block; it is
        # a tunnel now, RFC 9113 8.5, sent as :method and :authority.)
        ("GET", "/", [("x-custom", "some-value"), ("bad name", "v")]),
        ("GET", "/", [("x-custom", "some-value"), ("x-bad", "a\r\nb")]),
    ],
    ids=["bad-name", "bad-value"],
)
def test_a_refused_request_leaves_header_compression_in_step(
    h2_fault: Any,  # noqa: F811
    method: str,
    path: str,
    headers: list[tuple[str, str]],
) -> None:
    # h2 checks a header block while it HPACK-encodes it: a block refused half-way
    # had changed the dynamic table already, the next request's indexes meant other
    # fields to the server, and it ended the connection (COMPRESSION_ERROR).
    peer = h2_fault()
    conn = connect_h2(peer, "passive")
    try:
        with pytest.raises(mint.HTTPError) as info:
            mint.http.request(conn, method, path, headers)
        assert info.value.reason[0] == "invalid_request"
        conn = info.value.conn
        assert mint.http.open_request_count(conn) == 0
        for _ in range(2):
            conn, ref = mint.http.request(conn, "GET", "/", [("x-custom", "some-value")])
            conn, seen = read_until(conn, "passive", lambda rs, ref=ref: Done(ref) in rs)
            assert isinstance(of(ref, seen)[0], Status)
        assert mint.http.is_open(conn)
    finally:
        mint.http.close(conn)


@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/short-then-trailers", "InvalidBodyLengthError: Expected 10 bytes, received 5"),
        ("/no-content-with-data?status=204", "InvalidBodyLengthError: Expected 0 bytes"),
        ("/no-content-with-data?status=304", "InvalidBodyLengthError: Expected 0 bytes"),
    ],
    ids=["trailers-end-a-short-body", "204-with-data", "304-with-data"],
)
def test_a_body_its_head_rules_out_is_a_malformed_response(
    h2_fault: Any,  # noqa: F811
    path: str,
    detail: str,
) -> None:
    # RFC 9113 8.1.1: a malformed response is a stream error. Trailers ending a body
    # shorter than its content-length were taken as its end (Done, half a body), and
    # a 204's or 304's DATA was handed out as a body; the connection goes on.
    peer = h2_fault()
    conn = connect_h2(peer, "passive")
    try:
        conn, ref = mint.http.request(conn, "GET", path, [])
        conn, seen = read_until(conn, "passive", lambda rs: any(_ends(ref, r) for r in rs))
        ends = [r for r in of(ref, seen) if isinstance(r, Error | Done)]
        assert len(ends) == 1 and isinstance(ends[0], Error), seen
        assert ends[0].error.reason[0] == "protocol_error"
        assert ends[0].error.reason[1].startswith(detail)
        conn, status, _ = get(conn, "passive")
        assert status == 200
    finally:
        mint.http.close(conn)


def _ends(ref: Any, response: Any) -> bool:
    return isinstance(response, Error | Done) and response.ref == ref


def test_a_stop_after_the_whole_answer_drops_the_rest_of_the_body(h2_fault: Any) -> None:  # noqa: F811
    # RFC 9113 8.1: a complete response, then RST_STREAM(NO_ERROR): the client stops
    # sending, and that is no error. When the answer had ended the stream first (the
    # RFC's own case), the next chunk raised "unknown_request_to_stream".
    peer = h2_fault()
    conn = connect_h2(peer, "passive")
    try:
        conn, ref = mint.http.request(conn, "POST", "/answer-then-stop", [], mint.http.STREAM)
        conn, seen = read_until(conn, "passive", lambda rs: Done(ref) in rs)
        assert body(ref, seen) == b"done"
        with pytest.raises(mint.TransportError) as info:  # the reset read: nothing to say
            _read_more(conn)
        assert info.value.reason == "timeout"
        conn = info.value.conn
        conn = mint.http.stream_request_body(conn, ref, b"more of the body")
        conn = mint.http.stream_request_body(conn, ref, mint.http.EOF)
        assert mint.http.open_request_count(conn) == 0
        conn, status, _ = get(conn, "passive")
        assert status == 200
    finally:
        mint.http.close(conn)


def _read_more(conn: Any) -> None:
    while True:
        conn, responses = mint.http.recv(conn, 0, 0.5)
        assert responses == []


def test_prior_knowledge_to_an_http1_server_fails_at_once(raw_server: Any) -> None:
    # "HTTP/1.1 400" read as a frame header announces 4.7 MB: refused at the header
    # (RFC 9113 4.2), not left to the 30 s connect timeout (a TransportError "timeout").
    server = raw_server(
        reply(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", then_close=False)
    )
    with pytest.raises(mint.HTTPError) as info:
        mint.http.connect(
            "http", "127.0.0.1", server.port, protocols=("http2",), transport_opts={"timeout": 30}
        )
    # Mint's reason: the connection error's code (FRAME_SIZE_ERROR), by name.
    assert info.value.reason[0] == "frame_size_error"
    assert "HTTP/1.x" in info.value.reason[1]


def test_max_concurrent_streams(h2_fault: Any) -> None:  # noqa: F811
    peer = h2_fault(max_concurrent_streams=2)
    conn = connect_h2(peer, "passive")
    try:
        conn, _held = mint.http.request(conn, "GET", "/hold", [])
        conn, b = mint.http.request(conn, "GET", "/", [])
        with pytest.raises(mint.HTTPError) as info:
            mint.http.request(conn, "GET", "/", [])
        assert info.value.reason == "too_many_concurrent_requests"
        conn = info.value.conn
        conn, _ = read_until(conn, "passive", lambda rs: Done(b) in rs)
        conn, status, _ = get(conn, "passive")  # a slot is free again
        assert status == 200
    finally:
        mint.http.close(conn)


def test_late_settings(h2_fault: Any) -> None:  # noqa: F811
    peer = h2_fault(settings_delay=0.3, max_concurrent_streams=1)
    conn = connect_h2(peer, "passive")
    try:
        conn, _ = mint.http.request(conn, "GET", "/hold", [])
        with pytest.raises(mint.HTTPError) as info:  # the server's limit was already known
            mint.http.request(conn, "GET", "/", [])
        assert info.value.reason == "too_many_concurrent_requests"
    finally:
        mint.http.close(conn)


@pytest.mark.parametrize(
    ("protocols", "expected"),
    [(("http1", "http2"), "http2"), (("http2",), "http2"), (("http1",), "http1")],
)
def test_tls_alpn(hypercorn_tls: Any, protocols: tuple[str, ...], expected: str) -> None:
    conn = connect_h2(hypercorn_tls, "passive", protocols=protocols)
    try:
        assert mint.http.protocol(conn) == expected
        conn, status, got = get(conn, "passive")
        assert (status, got) == (200, b"hello")
    finally:
        mint.http.close(conn)


def test_http1_has_no_windows(hypercorn_h1: Any) -> None:
    conn = mint.http.connect("http", hypercorn_h1.host, hypercorn_h1.port, mode="passive")
    try:
        assert mint.http.pending_bytes(conn) == 0
        with pytest.raises(mint.HTTPError) as info:
            mint.http.send_window(conn)
        assert info.value.reason == "unsupported_on_http1"
        conn, ref = mint.http.request(conn, "GET", "/", [])
        with pytest.raises(mint.HTTPError):
            mint.http.cancel_request(conn, ref)
    finally:
        mint.http.close(conn)


@pytest.mark.node
@pytest.mark.parametrize("mode", MODES)
def test_trailing_headers_end_a_streamed_body(node_h2c: Any, mode: str) -> None:
    """``(EOF, trailers)``: a HEADERS frame with END_STREAM after the DATA (RFC 9113 8.1),
    names lower-cased; Node reports what it received as trailers. 200 KiB of body first,
    beyond the default 64 KiB window, so the trailers wait behind queued DATA."""
    import json

    conn = connect_h2(node_h2c, mode)
    try:
        conn, ref = mint.http.request(conn, "POST", "/trailers", [], mint.http.STREAM)
        conn = mint.http.stream_request_body(conn, ref, b"x" * 200_000)
        trailers = [("X-Checksum", "abc"), ("x-count", "2")]
        conn = mint.http.stream_request_body(conn, ref, (mint.http.EOF, trailers))
        conn, seen = read_until(conn, mode, lambda rs: Done(ref) in rs)
        assert Status(ref, 200) in seen
        answer = json.loads(body(ref, seen))
        assert answer == {"body": 200_000, "trailers": {"x-checksum": "abc", "x-count": "2"}}
    finally:
        mint.http.close(conn)


BAD_CHUNKS = ["text", 123, None, (mint.http.EOF,), (mint.http.EOF, [("x-a", 1)])]


@pytest.mark.parametrize("chunk", BAD_CHUNKS, ids=repr)
def test_a_bad_chunk_is_an_invalid_request(hypercorn_h2c: Any, chunk: object) -> None:
    conn = connect_h2(hypercorn_h2c, "passive")
    try:
        conn, ref = mint.http.request(conn, "POST", "/echo-body", [], mint.http.STREAM)
        with pytest.raises(mint.HTTPError) as info:
            mint.http.stream_request_body(conn, ref, chunk)
        assert info.value.reason[0] == "invalid_request"
        conn = mint.http.stream_request_body(conn, ref, b"still fine")
        conn = mint.http.stream_request_body(conn, ref, mint.http.EOF)
        conn, seen = read_until(conn, "passive", lambda rs: Done(ref) in rs)
        assert body(ref, seen) == b"still fine"
    finally:
        mint.http.close(conn)


def test_pseudo_header_trailers_are_refused(hypercorn_h2c: Any) -> None:
    conn = connect_h2(hypercorn_h2c, "passive")
    try:
        conn, ref = mint.http.request(conn, "POST", "/echo-body", [], mint.http.STREAM)
        with pytest.raises(mint.HTTPError) as info:
            mint.http.stream_request_body(conn, ref, (mint.http.EOF, [(":path", "/x")]))
        assert info.value.reason[0] == "invalid_request"
    finally:
        mint.http.close(conn)


def test_a_request_or_ping_on_a_closed_connection_is_httperror_closed(
    hypercorn_h2c: Any,
) -> None:
    conn = mint.http.close(connect_h2(hypercorn_h2c, "passive"))
    for call in (lambda: mint.http.request(conn, "GET", "/", []), lambda: mint.http.ping(conn)):
        with pytest.raises(mint.HTTPError) as info:
            call()
        assert info.value.reason == "closed"


@pytest.mark.parametrize("protocol", ["http1", "http2", "websocket"])
def test_a_message_taken_before_close_is_stale_after_it(
    protocol: str,
    raw_server: Any,
    h2_fault: Any,  # noqa: F811
) -> None:
    # HTTP/2 gave h2's refusal of input after its close as the server's protocol_error;
    # HTTP/1.1 said "closed" again for an end of a connection the caller had closed.
    if protocol == "http2":
        conn = connect_h2(h2_fault(), "active")
    elif protocol == "http1":
        server = raw_server(reply(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"))
        conn = mint.http.connect("http", server.host, server.port, mode="active")
    else:  # an upgraded HTTP/1.1 connection, whose bytes take a path of their own
        go = threading.Event()

        def upgrade_then_a_frame(peer: socket.socket) -> None:
            request = read_request(peer)
            if request:
                peer.sendall(handshake_response(request))
                go.wait(5)
                peer.sendall(frame(OP_TEXT, b"hi"))
                drain(peer)

        server = raw_server(upgrade_then_a_frame)
        conn = mint.http.connect("http", server.host, server.port, mode="active")
    box = mint.mailbox()
    sock = mint.http.get_socket(conn)
    if protocol == "websocket":
        conn, ref = mint.websocket.upgrade("ws", conn, "/", [])
        responses: list[Any] = []
        while Done(ref) not in responses:
            conn, got = mint.websocket.stream(conn, box.receive(5))
            responses += got
        go.set()
        message = box.receive(5)
        assert mint.websocket.stream(conn, message)[1] == [Data(ref, frame(OP_TEXT, b"hi"))]
    else:
        conn, _ref = mint.http.request(conn, "GET", "/", [])
        message = box.receive(5)
    assert isinstance(message, mint.SocketData) and message.socket is sock
    conn = mint.http.close(conn)
    for stale in (message, mint.SocketClosed(sock), mint.SocketError(sock, "closed")):
        assert mint.http.stream(conn, stale) == (conn, [])
    assert mint.http.stream(conn, "another") is mint.UNKNOWN


class Uploads(OneConnection):
    """An h2c server (the h2 library) that takes one streamed-in body and answers its
    length and sha256. ``window``: its SETTINGS_INITIAL_WINDOW_SIZE and connection
    window, given back as it reads (h2's way: once half is used); ``grant``: instead,
    the default 64 KiB, and one WINDOW_UPDATE of ``grant`` bytes (stream and
    connection) once the request's HEADERS came."""

    def __init__(self, *, window: int | None = None, grant: int | None = None) -> None:
        self.window, self.grant = window, grant
        super().__init__()

    def handle(self, sock: socket.socket) -> None:
        sock.settimeout(60)
        server = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        if self.window is not None:
            server.local_settings = h2.settings.Settings(
                client=False,
                initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: self.window},
            )
        server.initiate_connection()
        if self.window is not None:
            server.increment_flow_control_window(self.window - 65_535)
        sock.sendall(server.data_to_send())
        size, digest = 0, hashlib.sha256()
        while data := sock.recv(65536):
            for event in server.receive_data(data):
                if isinstance(event, h2.events.RequestReceived) and self.grant:
                    server.increment_flow_control_window(self.grant, event.stream_id)
                    server.increment_flow_control_window(self.grant)
                elif isinstance(event, h2.events.DataReceived):
                    size += len(event.data)
                    digest.update(event.data)
                    if self.window is not None:
                        server.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                elif isinstance(event, h2.events.StreamEnded):
                    answer = f"{size} {digest.hexdigest()}".encode()
                    server.send_headers(event.stream_id, [(b":status", b"200")])
                    server.send_data(event.stream_id, answer, end_stream=True)
            sock.sendall(server.data_to_send())


@pytest.mark.parametrize(
    ("server", "timeout", "size"),
    [
        # A body its large windows let go while the socket still held part of the last
        # release: taken for a PING flood (the DATA counted as answers owed).
        ({"window": 16 * 2**20}, 1.0, 64 * 2**20),
        # One large WINDOW_UPDATE, read by a recv polled with a timeout of 0: the rest
        # never went, as no wait was left to write it.
        ({"grant": 33 * 2**20}, 0, 32 * 2**20),
    ],
    ids=["large-windows", "polled"],
)
def test_an_upload_the_windows_let_go_goes_whole_under_recv_with_timeouts(
    server: dict[str, int], timeout: float, size: int
) -> None:
    peer = Uploads(**server)
    conn = mint.http.connect("http", "127.0.0.1", peer.port, protocols=("http2",), mode="passive")
    try:
        body = os.urandom(size)
        conn, ref = mint.http.request(conn, "POST", "/up", [], body)
        seen: list[Any] = []
        deadline = time.monotonic() + 60
        while Done(ref) not in seen:
            assert time.monotonic() < deadline, "the upload never ended"
            try:
                conn, got = mint.http.recv(conn, 0, timeout)
            except mint.TransportError as exc:
                assert exc.reason == "timeout", exc
                conn = exc.conn
                time.sleep(0.005)
                continue
            seen += got
        answer = f"{size} {hashlib.sha256(body).hexdigest()}".encode()
        assert of(ref, seen) == [Status(ref, 200), Headers(ref, []), Data(ref, answer), Done(ref)]
    finally:
        mint.http.close(conn)
        peer.stop()


class SlowTLSNoSettings(OneConnection):
    """Takes ``delay`` seconds before its TLS handshake (ALPN h2), then says nothing:
    no SETTINGS. Its ``stop`` ends the hold."""

    def __init__(self, context: Any, delay: float) -> None:
        self.context, self.delay = context, delay
        self.stopping = threading.Event()
        super().__init__()

    def handle(self, sock: socket.socket) -> None:
        time.sleep(self.delay)
        with self.context.wrap_socket(sock, server_side=True) as tls:
            self.stopping.wait(30)
            tls.close()

    def stop(self) -> None:
        self.stopping.set()
        super().stop()


@pytest.mark.parametrize("flavour", ["sync", "aio"])
def test_connect_timeout_bounds_the_whole_connect_of_http2_over_tls(
    tls_ca: Any, flavour: str
) -> None:
    # TCP and TLS shared the timeout; the wait for the server's SETTINGS then had the
    # whole timeout again: a server slow to shake hands and then silent made connect
    # take twice its bound.
    import asyncio

    import mint.aio.http

    peer = SlowTLSNoSettings(tls_ca.server_context(["h2"]), delay=0.8)
    opts = {"timeout": 1.0, "cafile": tls_ca.cafile}
    started = time.monotonic()
    try:
        with pytest.raises(mint.TransportError) as info:
            if flavour == "sync":
                mint.http.connect("https", "localhost", peer.port, transport_opts=opts)
            else:
                asyncio.run(
                    mint.aio.http.connect("https", "localhost", peer.port, transport_opts=opts)
                )
        took = time.monotonic() - started
    finally:
        peer.stop()
    assert info.value.reason == "timeout"
    assert 0.8 <= took < 1.5, took


@pytest.mark.parametrize("timeout", [10**400, 1e308, float("inf")], ids=["10**400", "1e308", "inf"])
def test_a_connect_timeout_of_centuries_is_none(hypercorn_h2c: Any, timeout: float) -> None:
    # (the SETTINGS wait's arithmetic raised a raw OverflowError for 10**400, and the
    # blocking read's for 1e308)
    conn = mint.http.connect(
        "http",
        hypercorn_h2c.host,
        hypercorn_h2c.port,
        protocols=("http2",),
        mode="passive",
        transport_opts={"timeout": timeout},
    )
    assert mint.http.protocol(conn) == "http2"
    mint.http.close(conn)


class BadFirstSettings(OneConnection):
    """Sends an invalid SETTINGS_INITIAL_WINDOW_SIZE (2**31, RFC 9113 6.5.2) as its
    first SETTINGS, and keeps the GOAWAY error codes it is sent."""

    def __init__(self) -> None:
        self.goaways: list[int] = []
        super().__init__()

    def handle(self, sock: socket.socket) -> None:
        from hyperframe.frame import Frame, GoAwayFrame, SettingsFrame

        sock.settimeout(10)
        sock.sendall(SettingsFrame(0, settings={4: 2**31}).serialize())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        data = data[24:]  # (the client's connection preface)
        while len(data) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(data[:9]))
            frame.parse_body(memoryview(data[9 : 9 + length]))
            data = data[9 + length :]
            if isinstance(frame, GoAwayFrame):
                self.goaways.append(frame.error_code)


@pytest.mark.parametrize("flavour", ["sync", "aio"])
def test_a_connect_refusing_the_first_settings_says_why_with_a_goaway(flavour: str) -> None:
    # RFC 9113 5.4.1: a connection error is sent as a GOAWAY before the close; connect
    # raised the right error and closed the socket with h2's GOAWAY unsent.
    import asyncio

    import mint.aio.http

    peer = BadFirstSettings()
    try:
        with pytest.raises(mint.HTTPError) as info:
            if flavour == "sync":
                mint.http.connect("http", peer.host, peer.port, protocols=("http2",))
            else:
                asyncio.run(
                    mint.aio.http.connect("http", peer.host, peer.port, protocols=("http2",))
                )
    finally:
        peer.stop()
    assert info.value.reason[0] == "flow_control_error"
    assert not peer.errors, peer.errors
    assert peer.goaways == [3]  # FLOW_CONTROL_ERROR


class GoawayErrorAndPing(OneConnection):
    """Answers a GET's HEADERS with a GOAWAY whose error code lets the stream finish
    and a PING, in one write; answers the GET once the PING's ack came (``acked``),
    or after 3 s."""

    def __init__(self) -> None:
        self.acked: float | None = None
        super().__init__()

    def handle(self, sock: socket.socket) -> None:
        from hyperframe.frame import GoAwayFrame

        sock.settimeout(10)
        server = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None)
        )
        server.initiate_connection()
        sock.sendall(server.data_to_send())
        get = None
        while get is None:
            for event in server.receive_data(sock.recv(65536)):
                if isinstance(event, h2.events.RequestReceived):
                    get = event.stream_id
        goaway = GoAwayFrame(0, last_stream_id=2**31 - 1, error_code=2)
        server.ping(b"12345678")
        sock.sendall(server.data_to_send() + goaway.serialize())
        sent = time.monotonic()
        sock.settimeout(0.1)
        while self.acked is None and time.monotonic() - sent < 3:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            for event in server.receive_data(data):
                if isinstance(event, h2.events.PingAckReceived):
                    self.acked = time.monotonic() - sent
        server.send_headers(get, [(b":status", b"200")], end_stream=True)
        sock.sendall(server.data_to_send())
        time.sleep(0.5)


@pytest.mark.parametrize("flavour", ["sync", "aio"])
def test_a_read_that_raises_a_goaway_error_still_writes_its_acks(flavour: str) -> None:
    # The read raised server_closed_connection before writing what it queued (the
    # PING's ack): a server that answers once its PING is acked waited, and so did we.
    import asyncio

    import mint.aio.http

    peer = GoawayErrorAndPing()

    async def read_all(http: Any, conn: Any, ref: Any) -> list[Any]:
        told, got = [], []
        while Done(ref) not in got:
            try:
                result = http.recv(conn, 0, 5.0)
                conn, responses = await result if flavour == "aio" else result
                got += responses
            except mint.HTTPError as exc:
                told.append(exc.reason[0])
                conn, got = exc.conn, got + exc.responses
        assert told == ["server_closed_connection"]
        return got

    async def run() -> list[Any]:
        http: Any = mint.aio.http if flavour == "aio" else mint.http
        result = http.connect("http", peer.host, peer.port, protocols=("http2",), mode="passive")
        conn = await result if flavour == "aio" else result
        result = http.request(conn, "GET", "/", [])
        conn, ref = await result if flavour == "aio" else result
        got = await read_all(http, conn, ref)
        result = http.close(conn)
        if flavour == "aio":
            await result
        return got

    try:
        got = asyncio.run(run())
    finally:
        peer.stop()
    assert Done in [type(r) for r in got]
    assert not peer.errors, peer.errors
    assert peer.acked is not None and peer.acked < 1.0, peer.acked
