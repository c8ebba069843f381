"""The HTTP/1.1 session against an in-memory h11 server: pipelining, bodies, upgrades, errors."""

from __future__ import annotations

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mint.errors import HTTPError, TransportError
from mint.http._http1 import _TOO_LARGE, Http1Session
from mint.http._types import EOF, STREAM, Data, Done, Error, Headers, Status


class Server:
    """A server-side h11 connection that reads what the session wrote."""

    def __init__(self) -> None:
        self.h11 = h11.Connection(h11.SERVER)

    def read_requests(self, data: bytes) -> list[object]:
        if data:  # b"" would tell h11 the stream ended
            self.h11.receive_data(data)
        events = []
        while True:
            event = self.h11.next_event()
            if event in (h11.NEED_DATA, h11.PAUSED):
                return events
            events.append(event)

    def respond(self, status: int, body: bytes, headers: list[tuple[str, str]] = ()) -> bytes:
        out = self.h11.send(
            h11.Response(status_code=status, headers=[("content-length", str(len(body))), *headers])
        )
        out += self.h11.send(h11.Data(data=body)) if body else b""
        out += self.h11.send(h11.EndOfMessage())
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        return out


def session() -> Http1Session:
    return Http1Session(scheme="http", host="example.com", port=8080)


def test_request_headers_host_user_agent_and_length() -> None:
    s = session()
    s.request("POST", "/p?q=1", [("x-a", "b")], b"body")
    (req, data, _eom) = Server().read_requests(s.data_to_send())
    assert req.method == b"POST" and req.target == b"/p?q=1"
    headers = dict(req.headers)
    assert headers[b"host"] == b"example.com:8080"
    assert headers[b"content-length"] == b"4"
    assert headers[b"x-a"] == b"b"
    assert b"user-agent" in headers
    assert data.data == b"body"


def test_default_port_is_left_out_of_host() -> None:
    s = Http1Session(scheme="https", host="example.com", port=443)
    s.request("GET", "/", [], None)
    (req, _eom) = Server().read_requests(s.data_to_send())
    assert dict(req.headers)[b"host"] == b"example.com"


def test_pipelined_requests_reach_the_server_in_order() -> None:
    s = session()
    for i in range(3):
        s.request("GET", f"/{i}", [], None)
    server = Server()
    targets = []
    events = server.read_requests(s.data_to_send())
    while any(isinstance(e, h11.Request) for e in events):
        targets += [e.target for e in events if isinstance(e, h11.Request)]
        server.respond(200, b"")
        events = server.read_requests(b"")
    assert targets == [b"/0", b"/1", b"/2"]
    assert s.open_request_count() == 3


@pytest.mark.parametrize("body", [None, b"payload"])
def test_pipelined_requests_are_written_once(body: bytes | None) -> None:
    # Each request goes out once, when it is made: reading the answers (which replays
    # the pipelined ones on h11) writes nothing, and a request after them is answered
    # as itself.
    s = session()
    server = Server()
    refs = [s.request("POST", f"/{i}", [], body) for i in range(3)]
    wire = s.data_to_send()
    answers = b""
    seen = []
    events = server.read_requests(wire)
    while events:
        seen += [e.target for e in events if isinstance(e, h11.Request)]
        target = next(e.target for e in events if isinstance(e, h11.Request))
        answers += server.respond(200, target)
        events = server.read_requests(b"")
    assert seen == [b"/0", b"/1", b"/2"]
    got = s.receive_data(answers)
    assert [r.ref for r in got if isinstance(r, Done)] == refs
    assert s.data_to_send() == b""
    ref = s.request("GET", "/after", [], None)
    events = server.read_requests(s.data_to_send())
    assert [e.target for e in events if isinstance(e, h11.Request)] == [b"/after"]
    got = s.receive_data(server.respond(200, b"/after"))
    assert [r for r in got if isinstance(r, Data)] == [Data(ref, b"/after")]
    assert s.data_to_send() == b""


PIPELINED_ANSWERS = (
    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nr0"
    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nr\r\n1\r\n1\r\n0\r\n\r\n"
    b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nr2"
)


@pytest.mark.parametrize("split", range(1, len(PIPELINED_ANSWERS)))
def test_pipelined_responses_split_at_every_byte_boundary(split: int) -> None:
    s = session()
    refs = [s.request("GET", f"/{i}", [], None) for i in range(3)]
    got = s.receive_data(PIPELINED_ANSWERS[:split]) + s.receive_data(PIPELINED_ANSWERS[split:])
    bodies = [b"".join(r.data for r in got if isinstance(r, Data) and r.ref == ref) for ref in refs]
    assert bodies == [b"r0", b"r1", b"r2"]
    assert [r for r in got if isinstance(r, Status)] == [
        Status(refs[0], 200),
        Status(refs[1], 200),
        Status(refs[2], 404),
    ]
    assert [r.ref for r in got if isinstance(r, Done)] == refs
    assert s.open_request_count() == 0
    assert s.is_open("read_write")


def test_streamed_body_is_chunked_and_blocks_other_requests() -> None:
    s = session()
    ref = s.request("POST", "/up", [], STREAM)
    with pytest.raises(HTTPError) as info:
        s.request("GET", "/", [], None)
    assert info.value.reason == "request_body_is_streaming"
    s.stream_request_body(ref, b"abc")
    s.stream_request_body(ref, b"")
    s.stream_request_body(ref, b"def")
    s.stream_request_body(ref, EOF)
    events = Server().read_requests(s.data_to_send())
    assert dict(events[0].headers)[b"transfer-encoding"] == b"chunked"
    assert b"".join(e.data for e in events if isinstance(e, h11.Data)) == b"abcdef"
    assert isinstance(events[-1], h11.EndOfMessage)
    s.request("GET", "/", [], None)  # allowed again


def test_stream_body_of_unknown_or_non_streaming_request() -> None:
    s = session()
    ref = s.request("GET", "/", [], None)
    with pytest.raises(HTTPError) as info:
        s.stream_request_body(ref, b"x")
    assert info.value.reason == "request_body_not_streaming"
    from mint.http._types import Ref

    with pytest.raises(HTTPError) as info:
        s.stream_request_body(Ref(), b"x")
    assert info.value.reason == "unknown_request_to_stream"
    # None is no request either (no upgraded stream's ref is None: it matched that)
    streamed = s.request("POST", "/", [], STREAM)
    with pytest.raises(HTTPError) as info:
        s.stream_request_body(None, b"raw")  # type: ignore[arg-type]
    assert info.value.reason == "unknown_request_to_stream"
    assert b"raw" not in s.data_to_send()
    s.stream_request_body(streamed, EOF)


def test_chunked_response_and_trailers() -> None:
    s = session()
    ref = s.request("GET", "/", [], None)
    wire = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\nx-sum: 5\r\n\r\n"
    )
    got = s.receive_data(wire)
    assert got[0] == Status(ref, 200)
    assert got[1] == Headers(ref, [("transfer-encoding", "chunked")])
    assert b"".join(r.data for r in got if isinstance(r, Data)) == b"abcde"
    assert got[-2] == Headers(ref, [("x-sum", "5")])
    assert got[-1] == Done(ref)


def test_body_until_close_completes_on_connection_lost() -> None:
    s = session()
    ref = s.request("GET", "/", [], None)
    got = s.receive_data(b"HTTP/1.0 200 OK\r\n\r\npartial")
    assert Data(ref, b"partial") in got
    more, clean = s.connection_lost()
    assert clean and more == [Done(ref)]
    assert not s.is_open("read_write")


def test_connection_lost_mid_body_is_unclean() -> None:
    s = session()
    s.request("GET", "/", [], None)
    s.receive_data(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")
    _, clean = s.connection_lost()
    assert not clean


def test_connection_close_fails_pipelined_requests() -> None:
    s = session()
    first = s.request("GET", "/1", [], None)
    second = s.request("GET", "/2", [], None)
    got = s.receive_data(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
    assert Done(first) in got
    errors = [r for r in got if isinstance(r, Error)]
    assert [e.ref for e in errors] == [second]
    assert isinstance(errors[0].error, TransportError)
    assert not s.is_open("write")
    with pytest.raises(HTTPError):
        s.request("GET", "/3", [], None)


@pytest.mark.parametrize(
    "garbage",
    [b"garbage\r\n\r\n", b"HTTP/1.1 abc OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n"],
)
def test_invalid_response_is_http_error(garbage: bytes) -> None:
    s = session()
    s.request("GET", "/", [], None)
    with pytest.raises(HTTPError) as info:
        s.receive_data(garbage)
    assert info.value.reason[0] == "invalid_response"


def test_upgrade_101_hands_out_trailing_bytes_then_raw_data() -> None:
    s = session()
    ref = s.request(
        "GET", "/ws", [("connection", "upgrade"), ("upgrade", "websocket")], None, upgrade="ws"
    )
    got = s.receive_data(
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n"
        b"\x81\x02hi"
    )
    assert got == [
        Status(ref, 101),
        Headers(ref, [("upgrade", "websocket"), ("connection", "upgrade")]),
        Data(ref, b"\x81\x02hi"),
        Done(ref),
    ]
    assert s.receive_data(b"\x81\x01!") == [Data(ref, b"\x81\x01!")]
    s.stream_request_body(ref, b"\x81\x80abcd")
    assert s.data_to_send().endswith(b"\x81\x80abcd")
    assert s.open_request_count() == 0
    with pytest.raises(HTTPError):
        s.request("GET", "/", [], None)


def test_a_101_in_http_1_0_is_an_invalid_response_not_an_upgrade() -> None:
    s = session()
    upgrade = [("connection", "upgrade"), ("upgrade", "websocket")]
    s.request("GET", "/ws", upgrade, None, upgrade="ws")
    with pytest.raises(HTTPError) as info:
        s.receive_data(b"HTTP/1.0 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n\x81\x00")
    assert info.value.reason == (
        "invalid_response",
        "a 101 in HTTP/1.0: switching needs HTTP/1.1",
    )
    assert s.upgraded_ref is None
    assert not s.is_open("write")


def test_upgrade_refused_is_an_ordinary_response() -> None:
    s = session()
    ref = s.request("GET", "/ws", [("connection", "upgrade"), ("upgrade", "websocket")], None)
    got = s.receive_data(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 2\r\n\r\nno")
    assert got[0] == Status(ref, 403)
    assert got[-1] == Done(ref)
    assert s.upgraded_ref is None


def test_informational_response_before_final() -> None:
    s = session()
    ref = s.request("GET", "/", [], None)
    got = s.receive_data(b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 204 No\r\n\r\n")
    assert [r for r in got if isinstance(r, Status)] == [Status(ref, 103), Status(ref, 204)]
    assert got[-1] == Done(ref)


def test_invalid_request_headers_are_http_errors() -> None:
    s = session()
    with pytest.raises(HTTPError) as info:
        s.request("GET", "/", [("bad header", "x")], None)
    assert info.value.reason[0] == "invalid_request"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=50), min_size=1, max_size=5), st.data())
def test_response_bodies_survive_any_split(bodies: list[bytes], data: st.DataObject) -> None:
    wire = b"".join(
        b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(b), b) for b in bodies
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    s = session()
    refs = [s.request("GET", "/", [], None) for _ in bodies]
    got = []
    prev = 0
    for cut in [*cuts, len(wire)]:
        got += s.receive_data(wire[prev:cut])
        prev = cut
    for ref, body in zip(refs, bodies, strict=True):
        assert b"".join(r.data for r in got if isinstance(r, Data) and r.ref == ref) == body
    assert [r.ref for r in got if isinstance(r, Done)] == refs


# -- what the server may not say ------------------------------------------------------------


def test_an_answer_nobody_asked_for_is_unexpected_data() -> None:
    # RFC 9112 6.3: bytes after the last answer are never the next request's answer.
    s = session()
    with pytest.raises(HTTPError) as info:
        s.receive_data(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nEVIL!")
    assert info.value.reason == (
        "unexpected_data",
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nEVIL!",
    )
    assert s.closing
    assert not s.is_open("read_write")
    with pytest.raises(HTTPError) as later:
        s.request("GET", "/2", [], None)
    assert later.value.reason == "closed"


def test_a_second_answer_behind_the_first_is_unexpected_data() -> None:
    s = session()
    ref = s.request("GET", "/1", [], None)
    Server().read_requests(s.data_to_send())
    first = b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ngood"
    extra = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nEVIL!"
    with pytest.raises(HTTPError) as info:
        s.receive_data(first + extra)
    assert info.value.reason == ("unexpected_data", extra)
    assert info.value.responses == [
        Status(ref, 200),
        Headers(ref, [("content-length", "4")]),
        Data(ref, b"good"),
        Done(ref),
    ]
    assert s.closing


def test_a_connection_close_answer_ends_the_session() -> None:
    s = session()
    ref = s.request("GET", "/", [], None)
    Server().read_requests(s.data_to_send())
    got = s.receive_data(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok")
    assert got[-1] == Done(ref)
    assert s.closing  # the facade closes the socket (RFC 9112 9.6)
    assert not s.is_open("write")


def test_a_keep_alive_answer_does_not_end_the_session() -> None:
    s = session()
    ref = s.request("GET", "/", [], None)
    Server().read_requests(s.data_to_send())
    assert s.receive_data(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")[-1] == Done(ref)
    assert not s.closing
    assert s.is_open("read_write")


def test_nothing_is_sent_behind_an_upgrade_waiting_for_its_answer() -> None:
    # RFC 6455 4.1: after a 101 those bytes would be the new protocol's.
    s = session()
    s.request(
        "GET",
        "/ws",
        [("upgrade", "websocket"), ("connection", "upgrade")],
        None,
        upgrade="websocket",
    )
    s.data_to_send()
    with pytest.raises(HTTPError) as info:
        s.request("GET", "/after", [], None)
    assert info.value.reason[0] == "invalid_request"
    assert s.data_to_send() == b""
    assert s.open_request_count() == 1


def test_an_upgrade_may_follow_a_request() -> None:
    s = session()
    s.request("GET", "/", [], None)
    s.request(
        "GET",
        "/ws",
        [("upgrade", "websocket"), ("connection", "upgrade")],
        None,
        upgrade="websocket",
    )
    assert s.open_request_count() == 2


@pytest.mark.parametrize("piece", [8192, 1 << 20])
def test_a_large_head_reads_the_same_however_it_is_split(piece: int) -> None:
    # h11 bounds only an incomplete head: one 64 KiB header passed in one read and
    # failed in 8 KiB pieces. Both pass now.
    s = session()
    ref = s.request("GET", "/", [], None)
    wire = b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * 65536 + b"\r\ncontent-length: 0\r\n\r\n"
    got: list[object] = []
    for at in range(0, len(wire), piece):
        got += s.receive_data(wire[at : at + piece])
    assert got[0] == Status(ref, 200)
    assert got[-1] == Done(ref)


@pytest.mark.parametrize("piece", [65536 + 9, 1 << 20, 4 << 20], ids=["lines", "1MiB", "whole"])
@pytest.mark.parametrize("where", ["head", "trailers"])
def test_a_head_beyond_the_bound_is_refused_however_it_is_split(piece: int, where: str) -> None:
    # 20 headers of 64 KiB: h11 refused them only while the head was incomplete, so
    # the head was taken when one read held it all ("whole").
    s = session()
    s.request("GET", "/", [], None)
    lines = b"".join(b"x-big: " + b"a" * 65536 + b"\r\n" for _ in range(20))
    if where == "head":
        wire = b"HTTP/1.1 200 OK\r\n" + lines + b"content-length: 0\r\n\r\n"
    else:
        wire = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n" + lines + b"\r\n"
    got: list[object] = []
    with pytest.raises(HTTPError) as info:
        for at in range(0, len(wire), piece):
            got += s.receive_data(wire[at : at + piece])
    assert info.value.reason == ("invalid_response", _TOO_LARGE)
    assert not s.is_open("read")
    assert not any(isinstance(r, Done) for r in [*got, *info.value.responses])


def test_a_head_at_the_bound_is_taken() -> None:
    s = session()
    ref = s.request("GET", "/", [], None)
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n"
    filler = (1 << 20) - len(head) - len(b"x: \r\n")
    wire = head + b"x: " + b"a" * filler + b"\r\n\r\n"
    got = s.receive_data(wire)
    assert got[-1] == Done(ref)


def test_a_request_whose_write_failed_is_forgotten() -> None:
    s = session()
    first = s.request("GET", "/1", [], None)
    second = s.request("GET", "/2", [], None)  # pipelined
    s.data_to_send()
    s.abandon(second)
    assert s.open_request_count() == 1
    got = s.receive_data(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    assert got[-1] == Done(first)
    assert s.is_open("write")  # a pipelined one leaves the connection usable
    s.abandon(first)  # none left: a no-op
    lone = session()
    ref = lone.request("GET", "/", [], None)
    lone.abandon(ref)  # h11 saw it go out: the connection cannot go on
    assert not lone.is_open("write")


def test_a_body_answered_early_can_still_be_finished_then_the_connection_goes_on() -> None:
    # RFC 9112 9.3: an early answer on a kept-alive connection (a 200, a 417 to
    # Expect: 100-continue). The body could not be finished (unknown_request_to_stream)
    # and the next request failed with h11's internal state as the reason.
    s = session()
    ref = s.request("POST", "/up", [], STREAM)
    s.stream_request_body(ref, b"abc")
    server = Server()
    server.read_requests(s.data_to_send())
    got = s.receive_data(server.respond(200, b"ok"))
    assert got == [
        Status(ref, 200),
        Headers(ref, [("content-length", "2")]),
        Data(ref, b"ok"),
        Done(ref),
    ]
    assert s.open_request_count() == 0 and not s.closing and s.is_open("read_write")
    with pytest.raises(HTTPError) as info:
        s.request("GET", "/next", [], None)
    assert info.value.reason == "request_body_is_streaming"
    s.stream_request_body(ref, b"def")
    s.stream_request_body(ref, EOF)
    events = server.read_requests(s.data_to_send())
    assert b"".join(e.data for e in events if isinstance(e, h11.Data)) == b"def"
    assert isinstance(events[-1], h11.EndOfMessage)
    server.h11.start_next_cycle()
    with pytest.raises(HTTPError) as info:
        s.stream_request_body(ref, b"late")
    assert info.value.reason == "unknown_request_to_stream"
    ref2 = s.request("GET", "/next", [], None)
    [req, _eom] = server.read_requests(s.data_to_send())
    assert req.target == b"/next"
    assert s.receive_data(server.respond(204, b""))[-1] == Done(ref2)


def test_a_body_answered_early_with_connection_close_ends_the_session() -> None:
    # RFC 9112 9.6: the server closes (a 413 with Connection: close); the socket was
    # left open and is_open said True.
    s = session()
    ref = s.request("POST", "/up", [], STREAM)
    s.stream_request_body(ref, b"abc")
    Server().read_requests(s.data_to_send())
    got = s.receive_data(
        b"HTTP/1.1 413 Too Large\r\nconnection: close\r\ncontent-length: 3\r\n\r\nbig"
    )
    assert got[-1] == Done(ref)
    assert s.closing and not s.is_open("write")


def test_an_answer_with_length_and_chunked_is_read_then_the_session_ends() -> None:
    # RFC 9112 6.3: read as chunked, but a smuggling sign: nothing more is read from
    # this connection, and a request pipelined behind it fails.
    s = session()
    ref = s.request("GET", "/", [], None)
    ref2 = s.request("GET", "/2", [], None)
    got = s.receive_data(
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\ntransfer-encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\n\r\n"
    )
    assert got[2:] == [Data(ref, b"ok"), Done(ref), Error(ref2, TransportError("closed"))]
    assert s.closing


@pytest.mark.parametrize("method", ["get", "Foo", "M-SEARCH"])
def test_the_method_goes_out_as_given(method: str) -> None:
    # RFC 9110 9.1: case-sensitive, and Mint sends it as given; it was upper-cased.
    s = session()
    s.request(method, "/", [], None)
    [req, _eom] = Server().read_requests(s.data_to_send())
    assert req.method == method.encode()


def test_a_close_with_no_request_in_flight_is_an_error_as_in_mint() -> None:
    # Mint's handle_close: {:error, conn, %TransportError{reason: :closed}, []} unless a
    # body delimited by the close ends there; an idle close gave (conn, []).
    s = session()
    ref = s.request("GET", "/", [], None)
    Server().read_requests(s.data_to_send())
    assert s.receive_data(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")[-1] == Done(ref)
    responses, clean = s.connection_lost()
    assert responses == [] and not clean
    assert not s.is_open("read_write")
