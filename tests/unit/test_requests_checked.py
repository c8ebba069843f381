"""Requests both protocols refuse alike, before anything is queued (check_request)."""

from __future__ import annotations

import array
from typing import Any

import pytest

from mint.errors import HTTPError
from mint.http._http1 import Http1Session
from mint.http._http2 import Http2Session
from mint.http._types import EOF, STREAM


def sessions() -> list[Any]:
    h2 = Http2Session(scheme="http", host="example.com", port=80)
    h2.initiate()
    return [Http1Session(scheme="http", host="example.com", port=80), h2]


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "why"),
    [
        # RFC 9112 6.2: the request-smuggling shape; both were sent on HTTP/1.1.
        (
            "POST",
            "/",
            [("content-length", "5"), ("transfer-encoding", "chunked")],
            b"hello",
            "together",
        ),
        (
            "POST",
            "/",
            [("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
            STREAM,
            "together",
        ),
        # HTTP/2 sent a length its body belied (the server reset the stream).
        ("POST", "/", [("content-length", "3")], b"hello", "content-length 3"),
        ("GET", "/", [("content-length", "5")], None, "content-length 5"),
        ("POST", "/", [("content-length", "1, 2")], b"x", "invalid content-length"),
        ("POST", "/", [("content-length", "-1")], b"x", "invalid content-length"),
        # Neither origin-form, absolute-form nor "*": went out as a request line.
        ("GET", "echo", [], None, "the path must start with /"),
        ("GET", "?q", [], None, "the path must start with /"),
        # RFC 9110 5.5: HTTP/2 trimmed it, h11 refused it.
        ("GET", "/", [("x-a", " v ")], None, "whitespace"),
        ("GET", "/", [("x-a", "v\t")], None, "whitespace"),
        # RFC 9110 5.5: controls other than CR, LF and NUL were sent on both.
        ("GET", "/", [("x-a", "a\x01b")], None, "controls"),
        ("GET", "/", [("x-a", "a\x7fb")], None, "controls"),
        ("GET", "/", [("x-a", "a\x1bb")], None, "controls"),
        # RFC 9112 3.2.4: the asterisk-form is OPTIONS' (HTTP/2 servers reset it).
        ("GET", "*", [], None, "OPTIONS only"),
        # RFC 9112 3.2: no fragment in a request target (it went out on both).
        ("GET", "/echo#frag", [], None, "no fragment"),
        # One Host, naming a host: HTTP/2 made the last of two (or an empty one)
        # :authority, unchecked.
        ("GET", "/", [("host", "a.test"), ("Host", "b.test")], None, "more than one host"),
        ("GET", "/", [("host", "a b")], None, "invalid host"),
        # RFC 9110 9.3.6: CONNECT names host:port; on HTTP/2 "/" went out as :authority.
        ("CONNECT", "/", [], None, "CONNECT takes host:port"),
        ("CONNECT", "http://example.com/", [], None, "CONNECT takes host:port"),
        ("CONNECT", "example.com", [], None, "CONNECT takes host:port"),
        ("CONNECT", "user@example.com:443", [], None, "CONNECT takes host:port"),
        ("CONNECT", "example.com:0", [], None, "CONNECT takes host:port"),
        ("CONNECT", "example.com:65536", [], None, "CONNECT takes host:port"),
        # h11 refused over 20 digits and HTTP/2 sent it (nghttp2 reset it from 2**63);
        # int() refused 5000 digits with a raw ValueError.
        ("POST", "/", [("content-length", str(2**63))], STREAM, "over 2**63 - 1"),
        ("POST", "/", [("content-length", "1" * 5000)], STREAM, "invalid content-length"),
    ],
)
def test_refused_on_both_protocols(
    method: str, path: str, headers: list[tuple[str, str]], body: object, why: str
) -> None:
    for session in sessions():
        before = session.data_to_send()
        with pytest.raises(HTTPError) as info:
            session.request(method, path, headers, body)
        assert info.value.reason[0] == "invalid_request"
        assert why in info.value.reason[1]
        assert session.data_to_send() == b"" or before == b""
        assert session.open_request_count() == 0


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [
        ("OPTIONS", "*", [], None),
        ("CONNECT", "example.com:443", [], STREAM),
        ("CONNECT", "[::1]:8443", [], STREAM),
        ("POST", "/", [("content-length", "5")], b"hello"),
        ("POST", "/", [("content-length", "5, 5")], b"hello"),
        ("POST", "/", [("content-length", "2")], STREAM),
        ("GET", "/", [("x-a", "")], None),
        ("GET", "/", [("x-a", "in side")], None),
        ("GET", "/", [("x-a", "tab\tinside")], None),
        ("GET", "/", [("x-a", "caf\xe9")], None),  # obs-text
        ("GET", "/", [("host", "a.test:8080")], None),
    ],
)
def test_accepted_on_both_protocols(
    method: str, path: str, headers: list[tuple[str, str]], body: object
) -> None:
    for session in sessions():
        session.request(method, path, headers, body)
        assert session.open_request_count() == 1


def test_connect_takes_an_authority_on_http1() -> None:
    session = Http1Session(scheme="http", host="proxy.test", port=3128)
    session.request("CONNECT", "example.com:443", [], None)
    assert session.data_to_send().startswith(b"CONNECT example.com:443 HTTP/1.1\r\n")


def test_absolute_form_goes_to_a_proxy_on_http1_only() -> None:
    # RFC 9113 8.3.1: on HTTP/2 the scheme and host go in :scheme and :authority, and
    # :path is the path; Node reset a stream whose :path was a whole URI.
    h1, h2 = sessions()
    h1.request("GET", "http://example.com/x", [], None)
    assert h1.data_to_send().startswith(b"GET http://example.com/x HTTP/1.1\r\n")
    h2.data_to_send()
    with pytest.raises(HTTPError) as info:
        h2.request("GET", "http://example.com/x", [], None)
    assert info.value.reason[0] == "invalid_request"
    assert "HTTP/2 takes a path" in info.value.reason[1]
    assert h2.data_to_send() == b""
    assert h2.open_request_count() == 0


@pytest.mark.parametrize("path", ["echo", "http://example.com/echo", "*", "?q", "example.com:443"])
def test_a_websocket_upgrade_takes_an_origin_form_path_on_both_protocols(path: str) -> None:
    # RFC 6455 4.1 (a resource name) and RFC 8441 4 with RFC 9113 8.3.1 (:path of an
    # extended CONNECT): HTTP/2 sent "echo" and a whole URI as :path, and Node reset the
    # stream while hypercorn answered 403.
    for session, method, body in zip(sessions(), ("GET", "CONNECT"), (None, STREAM), strict=True):
        session.data_to_send()
        with pytest.raises(HTTPError) as info:
            session.request(method, path, [], body, upgrade="websocket")
        assert info.value.reason[0] == "invalid_request"
        assert session.data_to_send() == b""
        assert session.open_request_count() == 0


def streaming(headers: list[tuple[str, str]]) -> list[tuple[Any, Any]]:
    """A streamed POST with ``headers`` on each protocol: (session, ref) pairs, with
    what the request wrote already taken."""
    pairs = []
    for session in sessions():
        ref = session.request("POST", "/", headers, STREAM)
        session.data_to_send()
        pairs.append((session, ref))
    return pairs


def test_a_streamed_body_longer_than_its_content_length_is_refused_and_the_rest_goes() -> None:
    # h2 sent it (the server reset the stream as malformed); h11 refused it only once it
    # had taken it in, and the connection could not write again.
    for session, ref in streaming([("content-length", "5")]):
        session.stream_request_body(ref, b"abc")
        wrote = session.data_to_send()
        with pytest.raises(HTTPError) as info:
            session.stream_request_body(ref, b"def")
        assert info.value.reason == (
            "invalid_request",
            "3 bytes of body where its content-length leaves 2",
        )
        assert session.data_to_send() == b""
        session.stream_request_body(ref, memoryview(b"de"))
        session.stream_request_body(ref, EOF)
        assert b"abc" in wrote and b"de" in session.data_to_send()
        assert session.open_request_count() == 1  # (its answer is still to come)


def test_a_streamed_body_ended_short_of_its_content_length_is_refused_and_can_go_on() -> None:
    # h11 refused the end once it had taken it in: the stream stayed half-ended for good.
    for session, ref in streaming([("content-length", "5")]):
        session.stream_request_body(ref, b"abc")
        session.data_to_send()
        with pytest.raises(HTTPError) as info:
            session.stream_request_body(ref, EOF)
        assert info.value.reason == (
            "invalid_request",
            "the body ends 2 bytes short of its content-length",
        )
        assert session.data_to_send() == b""
        session.stream_request_body(ref, b"de")
        session.stream_request_body(ref, EOF)
        assert b"de" in session.data_to_send()
        with pytest.raises(HTTPError) as info:
            session.stream_request_body(ref, b"x")
        assert info.value.reason == "request_body_not_streaming"


@pytest.mark.parametrize(
    "name",
    ["connection", "Keep-Alive", "transfer-encoding", "upgrade", "te", "content-length", "host"],
)
def test_trailers_that_frame_route_or_belong_to_the_connection_are_refused(name: str) -> None:
    # RFC 9110 6.5.1, RFC 9113 8.2.2: h2 dropped such a field from the block, and a
    # block left empty raised a bare IndexError inside h2, the stream half-ended.
    for session, ref in streaming([]):
        with pytest.raises(HTTPError) as info:
            session.stream_request_body(ref, (EOF, [(name, "x")]))
        assert info.value.reason == (
            "invalid_request",
            f"{name!r} is not allowed in trailing headers",
        )
        assert session.data_to_send() == b""
        session.stream_request_body(ref, (EOF, [("x-checksum", "1")]))
        out = session.data_to_send()
        assert out  # the end went out
        assert isinstance(session, Http2Session) or b"x-checksum: 1\r\n" in out


def test_trailers_after_a_content_length_are_refused_on_http1_before_the_end() -> None:
    # RFC 9112 7.1.2: trailers need a chunked body; h11 refused them once it had taken
    # the end in, and the stream stayed half-ended.
    h1, _ = sessions()
    ref = h1.request("POST", "/", [("content-length", "2")], STREAM)
    h1.stream_request_body(ref, b"ok")
    h1.data_to_send()
    with pytest.raises(HTTPError) as info:
        h1.stream_request_body(ref, (EOF, [("x-sum", "1")]))
    assert info.value.reason == ("invalid_request", "trailers on a body with a content-length")
    h1.stream_request_body(ref, EOF)
    assert h1.data_to_send() == b""  # (the length ends the body: nothing more to write)
    with pytest.raises(HTTPError) as info:
        h1.stream_request_body(ref, EOF)
    assert info.value.reason == "request_body_not_streaming"


def test_an_empty_host_goes_on_http1_and_is_refused_on_http2() -> None:
    # RFC 9112 3.2: HTTP/1.1's for a target with no authority; on HTTP/2 it would be an
    # empty :authority, which the server resets (RFC 9113 8.3.1).
    h1, h2 = sessions()
    h1.request("GET", "/", [("Host", "")], None)
    assert b"\r\nHost: \r\n" in h1.data_to_send()
    h2.data_to_send()
    with pytest.raises(HTTPError) as info:
        h2.request("GET", "/", [("Host", "")], None)
    assert info.value.reason == ("invalid_request", "an empty host: :authority names one")
    assert h2.data_to_send() == b""


@pytest.mark.parametrize(
    "body",
    [
        memoryview(array.array("H", [0x4241, 0x4443])),  # 2 items, 4 bytes
        memoryview(b"ABCD").cast("B", shape=[2, 2]),
        memoryview(b"ABCD").cast("I", shape=[]),  # 0-D
    ],
    ids=["H", "2-D", "0-D"],
)
def test_a_whole_body_is_measured_in_bytes_not_items(body: memoryview) -> None:
    # len() of such a view counts its items: a right content-length (4) was refused, and
    # HTTP/1.1 declared 2 for 4 bytes, which h11 then refused, the connection broken.
    for session in sessions():
        session.request("POST", "/", [("content-length", "4")], body)
        session.data_to_send()
    h1, _ = sessions()
    h1.request("POST", "/", [], body)
    assert h1.data_to_send().endswith(b"\r\ncontent-length: 4\r\n\r\nABCD")
    assert h1.is_open("write")


def test_bodies_and_chunks_may_be_iodata_as_in_mint() -> None:
    # The seed types a body and a chunk as iodata: [frame1, frame2] was refused.
    for session in sessions():
        session.request(
            "POST", "/", [("content-length", "6")], [b"ab", [bytearray(b"c"), 100], b"ef"]
        )
        out = session.data_to_send()
        assert isinstance(session, Http2Session) or out.endswith(b"\r\n\r\nabcdef")
        ref = session.request("POST", "/", [], STREAM)
        session.data_to_send()
        session.stream_request_body(ref, [b"gh", [memoryview(b"ij")]])
        chunk = session.data_to_send()
        assert b"ghij" in chunk
        with pytest.raises(HTTPError) as info:
            session.stream_request_body(ref, [b"ok", "text"])
        assert info.value.reason == (
            "invalid_request",
            "iodata holds bytes, lists and ints 0-255: 'text'",
        )
        assert session.data_to_send() == b""
    # Nested thousands deep is iodata too (a recursion hit Python's limit).
    deep: list[object] = [b"a"]
    for _ in range(10_000):
        deep = [deep, b"b"]
    h1, _ = sessions()
    h1.request("POST", "/", [], deep)
    assert h1.data_to_send().endswith(b"\r\n\r\na" + b"b" * 10_000)
    # A list inside itself is refused, typed (it grew the output for ever).
    looped: list[object] = [b"a"]
    looped.append([b"b", looped])
    with pytest.raises(HTTPError) as info:
        h1.request("POST", "/", [], looped)
    assert info.value.reason == ("invalid_request", "iodata holds a list inside itself")


def _released() -> memoryview:
    view = memoryview(b"abc")
    view.release()
    return view


@pytest.mark.parametrize("body", [_released(), [b"x", _released()]], ids=["bare", "in a list"])
def test_a_released_memoryview_is_refused_typed(body: object) -> None:
    # (a raw ValueError: "operation forbidden on released memoryview object")
    for session in sessions():
        with pytest.raises(HTTPError) as info:
            session.request("POST", "/", [], body)
        assert info.value.reason[0] == "invalid_request"
        assert session.open_request_count() == 0


def test_a_strided_memoryview_in_iodata_is_copied() -> None:
    # bytearray += takes contiguous buffers only: a raw TypeError, where the same view
    # given bare was sent.
    view = memoryview(b"a1b2c3")[::2]
    h1, h2 = sessions()
    h1.request("POST", "/", [("content-length", "4")], [view, b"!"])
    assert h1.data_to_send().endswith(b"\r\n\r\nabc!")
    h2.request("POST", "/", [("content-length", "4")], [view, b"!"])
    assert h2.open_request_count() == 1
