"""mint.http over HTTP/1.1 against hypercorn: requests, bodies, keep-alive, pipelining, modes."""

from __future__ import annotations

from typing import Any

import pytest
from wsclient import connect

import mint
from mint.http import EOF, STREAM, Data, Done, Headers, Status

MODES = ["active", "passive"]


def collect(client: Any, refs: list[Any], timeout: float = 5.0) -> dict[Any, dict[str, Any]]:
    """Read until every ref is Done; return status, headers and body per ref."""
    out: dict[Any, dict[str, Any]] = {ref: {"body": b""} for ref in refs}
    done: set[Any] = set()
    while done != set(refs):
        for response in client.responses(timeout):
            match response:
                case Status(ref=r, status=s):
                    out[r]["status"] = s
                case Headers(ref=r, headers=h):
                    out[r].setdefault("headers", h)
                case Data(ref=r, data=d):
                    out[r]["body"] += d
                case Done(ref=r):
                    done.add(r)
    return out


@pytest.mark.parametrize("mode", MODES)
def test_get_post_and_keep_alive(hypercorn_h1: Any, mode: str) -> None:
    client = connect(hypercorn_h1, mode=mode)
    try:
        assert mint.http.protocol(client.conn) == "http1"
        client.conn, get = mint.http.request(client.conn, "GET", "/", [])
        assert mint.http.open_request_count(client.conn) == 1
        result = collect(client, [get])
        assert result[get]["status"] == 200 and result[get]["body"] == b"hello"
        assert mint.http.open_request_count(client.conn) == 0
        client.conn, post = mint.http.request(client.conn, "POST", "/echo-body", [], b"x" * 5000)
        result = collect(client, [post])
        assert result[post]["body"] == b"x" * 5000
        assert all(name == name.lower() for name, _ in result[post]["headers"])
        assert mint.http.is_open(client.conn)
    finally:
        client.close()


@pytest.mark.parametrize("mode", MODES)
def test_pipelined_requests(hypercorn_h1: Any, mode: str) -> None:
    client = connect(hypercorn_h1, mode=mode)
    try:
        refs = []
        for i in range(5):
            client.conn, ref = mint.http.request(client.conn, "POST", "/echo-body", [], b"%d" % i)
            refs.append(ref)
        assert mint.http.open_request_count(client.conn) == 5
        result = collect(client, refs)
        assert [result[r]["body"] for r in refs] == [b"0", b"1", b"2", b"3", b"4"]
        # Each went out once: the next request is answered as itself (one written
        # twice would be answered twice, and this one would get a stray answer).
        client.conn, ref = mint.http.request(client.conn, "POST", "/echo-body", [], b"after")
        assert collect(client, [ref])[ref]["body"] == b"after"
        assert mint.http.open_request_count(client.conn) == 0
    finally:
        client.close()


def test_streamed_request_body(hypercorn_h1: Any) -> None:
    client = connect(hypercorn_h1, mode="passive")
    try:
        client.conn, ref = mint.http.request(client.conn, "POST", "/echo-body", [], STREAM)
        for chunk in (b"streamed ", b"in ", b"three"):
            client.conn = mint.http.stream_request_body(client.conn, ref, chunk)
        client.conn = mint.http.stream_request_body(client.conn, ref, EOF)
        assert collect(client, [ref])[ref]["body"] == b"streamed in three"
    finally:
        client.close()


def test_chunked_response(hypercorn_h1: Any) -> None:
    client = connect(hypercorn_h1, mode="passive")
    try:
        client.conn, ref = mint.http.request(client.conn, "GET", "/chunked", [])
        body = collect(client, [ref])[ref]["body"]
        assert body == b"".join(b"chunk-%d\n" % i for i in range(5))
    finally:
        client.close()


def test_stream_returns_unknown_for_foreign_messages(hypercorn_h1: Any) -> None:
    a = connect(hypercorn_h1)
    b = connect(hypercorn_h1)
    try:
        b.conn, _ = mint.http.request(b.conn, "GET", "/", [])
        assert b.mailbox is not None
        message = b.mailbox.receive(timeout=5)
        assert mint.http.stream(a.conn, message) is mint.UNKNOWN
        assert mint.http.stream(a.conn, "a posted object") is mint.UNKNOWN
        result = mint.http.stream(b.conn, message)
        assert result is not mint.UNKNOWN
    finally:
        a.close()
        b.close()


def test_switching_modes_loses_no_input(hypercorn_h1: Any) -> None:
    client = connect(hypercorn_h1, mode="active")
    try:
        client.conn, ref = mint.http.request(client.conn, "GET", "/chunked", [])
        assert client.mailbox is not None
        # Read the socket into the mailbox, but do not take the message out.
        first = client.mailbox.receive(timeout=5)
        client.mailbox.send(first)  # pretend it is still queued behind nothing
        client.conn = mint.http.set_mode(client.conn, "passive")
        client.mode = "passive"
        # The queued socket data came back to the connection, in order.
        body = collect(client, [ref])[ref]["body"]
        assert body == b"".join(b"chunk-%d\n" % i for i in range(5))
        client.conn = mint.http.set_mode(client.conn, "active")
        client.mode = "active"
        client.conn = mint.http.controlling_process(client.conn, client.mailbox)
        client.conn, ref2 = mint.http.request(client.conn, "GET", "/", [])
        assert collect(client, [ref2])[ref2]["body"] == b"hello"
    finally:
        client.close()


def test_controlling_process_moves_delivery(hypercorn_h1: Any) -> None:
    client = connect(hypercorn_h1, mode="active")
    other = mint.Mailbox()
    try:
        client.conn = mint.http.controlling_process(client.conn, other)
        client.conn, ref = mint.http.request(client.conn, "GET", "/", [])
        message = other.receive(timeout=5)
        assert isinstance(message, mint.SocketData)
        assert client.mailbox is not None
        with pytest.raises(TimeoutError):
            client.mailbox.receive(timeout=0.05)
        client.conn, responses = mint.http.stream(client.conn, message)
        assert Status(ref, 200) in responses
    finally:
        client.close()
        other.close()


def test_close_drops_queued_messages(hypercorn_h1: Any) -> None:
    client = connect(hypercorn_h1, mode="active")
    try:
        client.conn, _ = mint.http.request(client.conn, "GET", "/", [])
        assert client.mailbox is not None
        message = client.mailbox.receive(timeout=5)
        client.mailbox.send(message)  # still queued when the connection closes
        client.conn = mint.http.close(client.conn)
        assert not mint.http.is_open(client.conn)
        with pytest.raises(TimeoutError):
            client.mailbox.receive(timeout=0.05)
    finally:
        client.close()


def test_recv_on_an_active_connection_is_an_error(hypercorn_h1: Any) -> None:
    client = connect(hypercorn_h1, mode="active")
    try:
        with pytest.raises(mint.HTTPError) as info:
            mint.http.recv(client.conn, 0, 1)
        assert info.value.conn is client.conn
    finally:
        client.close()


def test_default_thread_mailbox_and_receive(hypercorn_h1: Any) -> None:
    conn = mint.http.connect("http", hypercorn_h1.host, hypercorn_h1.port)
    try:
        conn, ref = mint.http.request(conn, "GET", "/", [])
        responses: list[Any] = []
        while Done(ref) not in responses:
            result = mint.http.stream(conn, mint.receive(timeout=5))
            assert result is not mint.UNKNOWN
            conn, more = result
            responses += more
        assert Status(ref, 200) in responses
    finally:
        mint.http.close(conn)


def test_https_request_with_alpn_http1(hypercorn_tls: Any) -> None:
    client = connect(hypercorn_tls, mode="passive", protocols=("http1",))
    try:
        assert mint.http.protocol(client.conn) == "http1"
        client.conn, ref = mint.http.request(client.conn, "GET", "/", [])
        assert collect(client, [ref])[ref]["body"] == b"hello"
    finally:
        client.close()


def test_trailing_headers_end_a_chunked_body(raw_server: Any) -> None:
    """``(EOF, trailers)`` (Mint's ``{:eof, trailing_headers}``): the last chunk, then the
    trailer fields (RFC 9112 7.1.2), as a server reading the raw bytes sees them."""
    seen: list[bytes] = []

    def handler(sock: Any) -> None:
        data = b""
        while not data.endswith(b"0\r\nx-checksum: abc\r\nx-count: 2\r\n\r\n"):
            more = sock.recv(65536)
            if not more:
                break
            data += more
        seen.append(data)
        sock.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    server = raw_server(handler)
    client = connect(server, mode="passive")
    try:
        client.conn, ref = mint.http.request(client.conn, "POST", "/", [], STREAM)
        client.conn = mint.http.stream_request_body(client.conn, ref, b"hello")
        trailers = [("x-checksum", "abc"), ("x-count", "2")]
        client.conn = mint.http.stream_request_body(client.conn, ref, (EOF, trailers))
        # The body is over: nothing more may be streamed on it.
        with pytest.raises(mint.HTTPError) as info:
            mint.http.stream_request_body(client.conn, ref, b"late")
        assert info.value.reason == "request_body_not_streaming"
        assert collect(client, [ref])[ref]["status"] == 204
        head, _, chunked = seen[0].partition(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        assert chunked == b"5\r\nhello\r\n0\r\nx-checksum: abc\r\nx-count: 2\r\n\r\n"
    finally:
        client.close()


BAD_CHUNKS = [
    "text",
    123,
    None,
    [b"a", "b"],  # (iodata holds bytes, lists and ints 0-255)
    (EOF,),
    (EOF, [("x-a", 1)]),
    (EOF, ["x-a"]),
    (EOF, [("", "v")]),
]


@pytest.mark.parametrize("chunk", BAD_CHUNKS, ids=repr)
def test_a_bad_chunk_is_an_invalid_request(hypercorn_h1: Any, chunk: object) -> None:
    """Not bytes, EOF or (EOF, [(str, str)]): a typed error, and the request goes on."""
    client = connect(hypercorn_h1, mode="passive")
    try:
        client.conn, ref = mint.http.request(client.conn, "POST", "/echo-body", [], STREAM)
        with pytest.raises(mint.HTTPError) as info:
            mint.http.stream_request_body(client.conn, ref, chunk)
        assert info.value.reason[0] == "invalid_request"
        assert info.value.conn is client.conn
        client.conn = mint.http.stream_request_body(client.conn, ref, b"still fine")
        client.conn = mint.http.stream_request_body(client.conn, ref, EOF)
        assert collect(client, [ref])[ref]["body"] == b"still fine"
    finally:
        client.close()


def test_trailers_after_a_content_length_are_refused(hypercorn_h1: Any) -> None:
    """Trailers need chunked framing: with a Content-Length they cannot be sent."""
    client = connect(hypercorn_h1, mode="passive")
    try:
        headers = [("content-length", "2")]
        client.conn, ref = mint.http.request(client.conn, "POST", "/echo-body", headers, STREAM)
        client.conn = mint.http.stream_request_body(client.conn, ref, b"ok")
        with pytest.raises(mint.HTTPError) as info:
            mint.http.stream_request_body(client.conn, ref, (EOF, [("x-a", "b")]))
        assert info.value.reason[0] == "invalid_request"
        # Refused before h11 took the end in: the request goes on (it stayed half-ended).
        client.conn = mint.http.stream_request_body(client.conn, ref, EOF)
        assert collect(client, [ref])[ref]["body"] == b"ok"
    finally:
        client.close()


def test_a_streamed_body_against_its_content_length_goes_on_once_refused(
    hypercorn_h1: Any,
) -> None:
    """A chunk past the length, or an end short of it, is refused with nothing written,
    and the caller sends the rest: h11 took the chunk in first, and the connection could
    not write again (or the end, and the stream stayed half-ended)."""
    client = connect(hypercorn_h1, mode="passive")
    try:
        headers = [("content-length", "4")]
        client.conn, ref = mint.http.request(client.conn, "POST", "/echo-body", headers, STREAM)
        client.conn = mint.http.stream_request_body(client.conn, ref, b"ab")
        for chunk in (b"cde", EOF):
            with pytest.raises(mint.HTTPError) as info:
                mint.http.stream_request_body(client.conn, ref, chunk)
            assert info.value.reason[0] == "invalid_request"
        client.conn = mint.http.stream_request_body(client.conn, ref, b"cd")
        client.conn = mint.http.stream_request_body(client.conn, ref, EOF)
        assert collect(client, [ref])[ref]["body"] == b"abcd"
        # ...and the connection carries the next request.
        client.conn, again = mint.http.request(client.conn, "POST", "/echo-body", [], b"next")
        assert collect(client, [again])[again]["body"] == b"next"
    finally:
        client.close()


def test_a_closed_connection_counts_no_open_request(hypercorn_h1: Any) -> None:
    client = connect(hypercorn_h1, mode="passive")
    client.conn, _ = mint.http.request(client.conn, "GET", "/", [])
    assert mint.http.open_request_count(client.conn) == 1
    conn = mint.http.close(client.conn)
    assert mint.http.open_request_count(conn) == 0


def test_a_request_on_a_closed_connection_is_httperror_closed(hypercorn_h1: Any) -> None:
    """As Mint (``{:error, conn, %HTTPError{reason: :closed}}``)."""
    client = connect(hypercorn_h1, mode="passive")
    conn = mint.http.close(client.conn)
    for call in (
        lambda: mint.http.request(conn, "GET", "/", []),
        lambda: mint.websocket.upgrade("ws", conn, "/", []),  # Mint's upgrade is a request
    ):
        with pytest.raises(mint.HTTPError) as info:
            call()
        assert info.value.reason == "closed"
        assert info.value.conn is conn
