"""Requests both protocols refuse alike, before anything is queued (check_request)."""

from __future__ import annotations

from typing import Any

import pytest

from mint.errors import HTTPError
from mint.http._http1 import Http1Session
from mint.http._http2 import Http2Session
from mint.http._types import STREAM


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
        ("GET", "http://example.com/x", [], None),  # absolute-form, to a proxy
        ("POST", "/", [("content-length", "5")], b"hello"),
        ("POST", "/", [("content-length", "5, 5")], b"hello"),
        ("POST", "/", [("content-length", "2")], STREAM),
        ("GET", "/", [("x-a", "")], None),
        ("GET", "/", [("x-a", "in side")], None),
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
