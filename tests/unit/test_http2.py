"""In-memory pairs: ``Http2Session`` (client) against an ``h2`` server connection."""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Sequence
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest
from h2.connection import ConnectionState
from h2.settings import SettingCodes

import mint.http._http2
from mint.errors import HTTPError, TransportError
from mint.http import EOF, STREAM, Data, Done, Error, Headers, Pong, Status
from mint.http._http2 import (
    DEFAULT_RECEIVE_WINDOW,
    Http2Session,
    _WebSocketScanner,
)


# -- the pair ------------------------------------------------------------------------
class Pair:
    """A client session wired to an ``h2`` server; ``pump`` moves bytes both ways."""

    def __init__(
        self,
        server_settings: dict[Any, int] | None = None,
        *,
        scheme: str = "http",
        host: str = "example.com",
        port: int = 80,
        send_settings: bool = True,
        auto_ack: bool = False,
        **session_opts: Any,
    ) -> None:
        self.client = Http2Session(scheme=scheme, host=host, port=port, **session_opts)
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.server = h2.connection.H2Connection(config=config)
        if server_settings:
            values = {SettingCodes.MAX_CONCURRENT_STREAMS: 100, **server_settings}
            self.server.local_settings = h2.settings.Settings(client=False, initial_values=values)
        self.events: list[h2.events.Event] = []
        self.auto_ack = auto_ack  # the server acknowledges DATA as a real one would
        self.client.initiate()
        if send_settings:
            self.server.initiate_connection()
        self.pump()

    def pump(self, cuts: Sequence[int] = ()) -> list[Any]:
        """Move bytes until both sides are quiet; returns the client's responses.

        ``cuts`` (thousandths of its length) cut the server's first write into reads.
        """
        responses: list[Any] = []
        for _ in range(10_000):
            out = self.client.data_to_send()
            if out:
                events = self.server.receive_data(out)
                self.events += events
                for event in events:
                    if self.auto_ack and isinstance(event, h2.events.DataReceived):
                        length = event.flow_controlled_length
                        self.server.acknowledge_received_data(length, event.stream_id)
            back = self.server.data_to_send()
            if back:
                at = sorted({len(back) * c // 1000 for c in cuts} | {0, len(back)})
                cuts = ()
                for start, stop in itertools.pairwise(at):
                    responses += self.client.receive_data(back[start:stop])
            if not out and not back:
                return responses
        raise AssertionError("the pair did not settle")

    def server_events(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def request_headers(self, stream_id: int) -> list[tuple[bytes, bytes]]:
        (event,) = [
            e for e in self.server_events(h2.events.RequestReceived) if e.stream_id == stream_id
        ]
        return list(event.headers)

    def server_data(self, stream_id: int) -> bytes:
        return b"".join(
            e.data for e in self.server_events(h2.events.DataReceived) if e.stream_id == stream_id
        )

    def respond(
        self, stream_id: int, status: int = 200, body: bytes = b"", *, end: bool = True
    ) -> None:
        self.server.send_headers(stream_id, [(b":status", str(status).encode())])
        if body:
            self.server.send_data(stream_id, body)
        if end:
            self.server.end_stream(stream_id)


def ws_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A masked client frame (RFC 6455 5.2), mask of zeros for readability."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    size = len(payload)
    if size < 126:
        head.append(0x80 | size)
    elif size < 2**16:
        head.append(0x80 | 126)
        head += size.to_bytes(2, "big")
    else:
        head.append(0x80 | 127)
        head += size.to_bytes(8, "big")
    return bytes(head) + b"\x00\x00\x00\x00" + payload


# -- connection setup -----------------------------------------------------------------
def test_initiate_sends_settings_and_a_large_connection_window() -> None:
    pair = Pair()
    (changed,) = pair.server_events(h2.events.RemoteSettingsChanged)
    settings = {k: v.new_value for k, v in changed.changed_settings.items()}
    assert settings[SettingCodes.ENABLE_PUSH] == 0
    assert settings[SettingCodes.INITIAL_WINDOW_SIZE] == DEFAULT_RECEIVE_WINDOW
    (update,) = pair.server_events(h2.events.WindowUpdated)
    assert update.stream_id == 0
    assert pair.server.outbound_flow_control_window == DEFAULT_RECEIVE_WINDOW
    assert pair.client.settings_received


def test_settings_received_only_after_the_servers_settings() -> None:
    pair = Pair(send_settings=False)
    assert not pair.client.settings_received
    pair.server.initiate_connection()
    pair.pump()
    assert pair.client.settings_received


@pytest.mark.parametrize(
    ("settings", "enabled"),
    [
        (None, False),
        ({SettingCodes.ENABLE_CONNECT_PROTOCOL: 0}, False),
        ({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1}, True),
    ],
)
def test_extended_connect_enabled(settings: dict[Any, int] | None, enabled: bool) -> None:
    assert Pair(settings).client.extended_connect_enabled is enabled


def test_extended_connect_enabled_by_late_settings() -> None:
    pair = Pair()
    assert not pair.client.extended_connect_enabled
    pair.server.update_settings({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    pair.pump()
    assert pair.client.extended_connect_enabled


# -- requests -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scheme", "host", "port", "headers", "authority"),
    [
        ("http", "example.com", 80, [], b"example.com"),
        ("https", "example.com", 443, [], b"example.com"),
        ("http", "example.com", 8080, [], b"example.com:8080"),
        ("https", "::1", 8443, [], b"[::1]:8443"),
        ("http", "127.0.0.1", 80, [("Host", "virtual.test")], b"virtual.test"),
    ],
)
def test_request_pseudo_headers(
    scheme: str, host: str, port: int, headers: list[tuple[str, str]], authority: bytes
) -> None:
    pair = Pair(scheme=scheme, host=host, port=port)
    pair.client.request("GET", "/a?b=c", headers, None)
    pair.pump()
    sent = pair.request_headers(1)
    assert sent[:4] == [
        (b":method", b"GET"),
        (b":scheme", scheme.encode()),
        (b":path", b"/a?b=c"),
        (b":authority", authority),
    ]
    assert b"host" not in dict(sent)


def test_request_headers_lower_cased_and_connection_headers_dropped() -> None:
    pair = Pair()
    headers = [
        ("X-Custom", "Value"),
        ("Connection", "keep-alive"),
        ("Keep-Alive", "5"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "foo"),
        ("TE", "gzip"),
        ("User-Agent", "me"),
    ]
    pair.client.request("GET", "/", headers, None)
    pair.pump()
    regular = [(k, v) for k, v in pair.request_headers(1) if not k.startswith(b":")]
    assert regular == [(b"x-custom", b"Value"), (b"user-agent", b"me")]


def test_an_ordinary_connect_is_a_tunnel_to_its_authority() -> None:
    # RFC 9113 8.5: :method and :authority only; with :scheme and :path (as any other
    # request) h2 refused it, typed, and a plain CONNECT could not be made at all.
    pair = Pair()
    ref = pair.client.request("CONNECT", "upstream.test:443", [], STREAM)
    pair.pump()
    pseudo = [(k, v) for k, v in pair.request_headers(1) if k.startswith(b":")]
    assert pseudo == [(b":method", b"CONNECT"), (b":authority", b"upstream.test:443")]
    pair.server.send_headers(1, [(b":status", b"200")])
    pair.server.send_data(1, b"from upstream")
    assert pair.pump() == [Status(ref, 200), Headers(ref, []), Data(ref, b"from upstream")]
    pair.client.stream_request_body(ref, b"to upstream")
    pair.pump()
    assert pair.server_data(1) == b"to upstream"


@pytest.mark.parametrize("te", ["Trailers", "trailers, gzip", "gzip;q=0.5, TRAILERS"])
def test_te_says_trailers_on_http2_as_spelt(te: str) -> None:
    # RFC 9113 8.2.2: "trailers" is all TE may hold; "Trailers" went out as given (a
    # server may compare it exactly), and "trailers, gzip" was dropped whole.
    pair = Pair()
    pair.client.request("GET", "/", [("te", te)], None)
    pair.pump()
    assert (b"te", b"trailers") in pair.request_headers(1)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_final_head_with_end_stream_and_a_content_length_is_no_whole_body(
    method: str,
) -> None:
    # RFC 9113 8.1.1: the head with END_STREAM is the whole response, so content-length 5
    # with no DATA is malformed (a HEAD's answer excepted); h2 counts the length on DATA
    # only, and this was a whole, empty body: Done.
    pair = Pair()
    ref = pair.client.request(method, "/", [], None)
    other = pair.client.request("GET", "/other", [], None)
    pair.pump()
    headers = [(b":status", b"200"), (b"content-length", b"5")]
    pair.server.send_headers(1, headers, end_stream=True)
    pair.respond(3, 200, b"ok")
    responses = pair.client.receive_data(pair.server.data_to_send())
    head = [Status(ref, 200), Headers(ref, [("content-length", "5")])]
    rest = [Status(other, 200), Headers(other, []), Data(other, b"ok"), Done(other)]
    if method == "HEAD":
        assert responses == [*head, Done(ref), *rest]
        return
    # (as any malformed head: the stream's Error in its place)
    [error] = [r for r in responses if isinstance(r, Error)]
    assert responses == [error, *rest]
    assert error.ref == ref
    assert error.error.reason == (
        "protocol_error",
        "InvalidBodyLengthError: Expected 5 bytes, received 0",
    )
    resets = [(sid, payload) for kind, sid, payload in client_frames(pair) if kind == 0x3]
    assert resets == [(1, int(h2.errors.ErrorCodes.PROTOCOL_ERROR).to_bytes(4, "big"))]
    assert pair.client.is_open("read_write")
    assert pair.client.open_request_count() == 0


def test_a_no_error_reset_after_a_body_whole_by_its_content_length_is_done() -> None:
    # No END_STREAM, but the content-length says the body is all there: the answer is
    # whole, and the reset only asks us to stop sending (RFC 9113 8.1).
    pair = Pair()
    ref = pair.client.request("POST", "/", [], STREAM)
    pair.pump()
    pair.server.send_headers(1, [(b":status", b"413"), (b"content-length", b"3")])
    pair.server.send_data(1, b"big")
    pair.server.reset_stream(1, h2.errors.ErrorCodes.NO_ERROR)
    assert pair.pump() == [
        Status(ref, 413),
        Headers(ref, [("content-length", "3")]),
        Data(ref, b"big"),
        Done(ref),
    ]
    pair.client.stream_request_body(ref, b"more")  # (dropped: the server said stop)
    assert pair.pump() == []
    assert pair.server_data(1) == b""


@pytest.mark.parametrize("answered", ["nothing", "the head", "part of the body"])
def test_a_no_error_reset_before_the_answer_is_whole_is_no_done(answered: str) -> None:
    # RFC 9113 8.1: NO_ERROR stops a request *after* a complete answer (END_STREAM).
    # Mint's Done handed a body cut short out as whole, or an answer that never came.
    pair = Pair()
    ref = pair.client.request("POST", "/", [], STREAM)
    pair.pump()
    expected: list[Any] = []
    if answered != "nothing":
        pair.server.send_headers(1, [(b":status", b"200"), (b"content-length", b"10")])
        expected += [Status(ref, 200), Headers(ref, [("content-length", "10")])]
    if answered == "part of the body":
        pair.server.send_data(1, b"abc")
        expected.append(Data(ref, b"abc"))
    pair.server.reset_stream(1, h2.errors.ErrorCodes.NO_ERROR)
    responses = pair.pump()
    assert responses == [
        *expected,
        Error(ref, HTTPError(("server_closed_request", "no_error"))),
    ]
    assert pair.client.open_request_count() == 0
    # What the caller still streams is dropped, as after a complete answer.
    pair.client.stream_request_body(ref, b"more")
    pair.client.stream_request_body(ref, EOF)
    assert pair.pump() == []
    assert pair.server_data(1) == b""


def test_a_no_error_reset_of_an_upgrade_before_its_2xx_is_no_done() -> None:
    pair = Pair({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    ref = pair.client.request("CONNECT", "/", [], STREAM, upgrade="websocket")
    pair.pump()
    pair.server.reset_stream(1, h2.errors.ErrorCodes.NO_ERROR)
    assert pair.pump() == [Error(ref, HTTPError(("server_closed_request", "no_error")))]


def test_get_response_with_trailers() -> None:
    pair = Pair()
    ref = pair.client.request("GET", "/", [], None)
    pair.pump()
    assert pair.server_events(h2.events.StreamEnded)[0].stream_id == 1
    pair.server.send_headers(1, [(b":status", b"200"), (b"Content-Type", b"text/plain")])
    pair.server.send_data(1, b"hello")
    pair.server.send_headers(1, [(b"grpc-status", b"0")], end_stream=True)
    responses = pair.pump()
    assert responses == [
        Status(ref, 200),
        Headers(ref, [("content-type", "text/plain")]),
        Data(ref, b"hello"),
        Headers(ref, [("grpc-status", "0")]),
        Done(ref),
    ]
    assert pair.client.open_request_count() == 0


def test_informational_response_comes_first() -> None:
    pair = Pair()
    ref = pair.client.request("POST", "/", [], b"x")
    pair.pump()
    pair.server.send_headers(1, [(b":status", b"103"), (b"link", b"</a>")])
    pair.respond(1, 204)
    assert pair.pump() == [
        Status(ref, 103),
        Headers(ref, [("link", "</a>")]),
        Status(ref, 204),
        Headers(ref, []),
        Done(ref),
    ]


@pytest.mark.parametrize(
    ("body", "chunks", "expected"),
    [
        (None, [], b""),
        (b"", [], b""),
        (b"abc", [], b"abc"),
        (STREAM, [b"ab", b"", b"cd", EOF], b"abcd"),
        (STREAM, [EOF], b""),
    ],
)
def test_request_bodies(body: Any, chunks: list[Any], expected: bytes) -> None:
    pair = Pair()
    ref = pair.client.request("POST", "/", [], body)
    for chunk in chunks:
        pair.client.stream_request_body(ref, chunk)
    pair.pump()
    assert pair.server_data(1) == expected
    assert [e.stream_id for e in pair.server_events(h2.events.StreamEnded)] == [1]


def test_many_requests_in_flight_answered_out_of_order() -> None:
    pair = Pair()
    refs = [pair.client.request("GET", f"/{i}", [], None) for i in range(5)]
    pair.pump()
    assert pair.client.open_request_count() == 5
    for i in reversed(range(5)):
        pair.respond(2 * i + 1, 200, f"body{i}".encode())
    responses = pair.pump()
    for i, ref in enumerate(refs):
        mine = [r for r in responses if r.ref == ref]
        assert mine == [
            Status(ref, 200),
            Headers(ref, []),
            Data(ref, f"body{i}".encode()),
            Done(ref),
        ]
    assert pair.client.open_request_count() == 0


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("GET", "/", [("x", "\u20ac")], None), "invalid_request"),
        (("GET", "/", [], 42), "invalid_request"),
    ],
)
def test_invalid_requests(args: tuple[Any, ...], reason: str) -> None:
    pair = Pair()
    with pytest.raises(HTTPError) as info:
        pair.client.request(*args)
    assert info.value.reason[0] == reason


@pytest.mark.parametrize(
    ("ref_kind", "chunk", "reason"),
    [
        ("unknown", b"x", "unknown_request_to_stream"),
        ("not_streaming", b"x", "request_body_not_streaming"),
        ("not_streaming", EOF, "request_body_not_streaming"),
    ],
)
def test_stream_request_body_errors(ref_kind: str, chunk: Any, reason: str) -> None:
    from mint.http import Ref

    pair = Pair()
    ref = Ref() if ref_kind == "unknown" else pair.client.request("POST", "/", [], b"x")
    with pytest.raises(HTTPError) as info:
        pair.client.stream_request_body(ref, chunk)
    assert info.value.reason == reason


# -- extended CONNECT ---------------------------------------------------------------
def open_websocket(pair: Pair, status: int = 200, *, stream_id: int = 1) -> Any:
    ref = pair.client.request(
        "CONNECT", "/chat", [("sec-websocket-version", "13")], STREAM, upgrade="websocket"
    )
    pair.pump()
    pair.respond(stream_id, status, end=False)
    return ref, pair.pump()


def ended_behind_the_window(more: dict[Any, int] | None = None) -> tuple[Pair, Any]:
    """A WebSocket the caller ended (EOF after its Close ``ws_frame(8, b"\\x03\\xe8bye")``)
    while the Close waits behind a 4-byte stream window: a stream the session drains."""
    settings = {SettingCodes.ENABLE_CONNECT_PROTOCOL: 1, SettingCodes.INITIAL_WINDOW_SIZE: 4}
    pair = Pair({**settings, **(more or {})})
    ref, _ = open_websocket(pair)
    pair.client.stream_request_body(ref, ws_frame(8, b"\x03\xe8bye"))
    pair.client.stream_request_body(ref, EOF)
    return pair, ref


def send_unchecked_headers(pair: Pair, stream_id: int, headers: Any, **kwargs: Any) -> None:
    """The server sends ``headers`` as given (h2 would refuse or normalize them)."""
    config = pair.server.config
    config.validate_outbound_headers = config.normalize_outbound_headers = False
    try:
        pair.server.send_headers(stream_id, headers, **kwargs)
    finally:
        config.validate_outbound_headers = config.normalize_outbound_headers = True


@pytest.mark.parametrize(
    "lengths", [[("content-length", "1, 1")], [("content-length", "1"), ("Content-Length", "1")]]
)
def test_content_length_goes_once_as_its_number(lengths: list[tuple[str, str]]) -> None:
    # RFC 9110 8.6 (1*DIGIT): a list, or the field twice, went out as given; hypercorn
    # answered GOAWAY(PROTOCOL_ERROR) and Node reset the stream. (h11 sends "1".)
    pair = Pair()
    pair.client.request("POST", "/", lengths, b"a")
    pair.pump()
    fields = [(n, v) for n, v in pair.request_headers(1) if n == b"content-length"]
    assert fields == [(b"content-length", b"1")]
    assert pair.server_data(1) == b"a"


def test_extended_connect_headers_and_open_stream() -> None:
    pair = Pair({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1}, scheme="https", port=443)
    ref, responses = open_websocket(pair)
    assert pair.request_headers(1)[:5] == [
        (b":method", b"CONNECT"),
        (b":protocol", b"websocket"),
        (b":scheme", b"https"),
        (b":path", b"/chat"),
        (b":authority", b"example.com"),
    ]
    assert (b"sec-websocket-version", b"13") in pair.request_headers(1)
    assert responses == [Status(ref, 200), Headers(ref, [])]  # no Done: the stream stays open
    assert pair.client.open_request_count() == 1
    pair.server.send_data(1, b"\x81\x02hi")
    assert pair.pump() == [Data(ref, b"\x81\x02hi")]


@pytest.mark.parametrize(
    ("chunks", "ends"),
    [
        ([ws_frame(1, b"hello")], False),
        ([ws_frame(8, b"\x03\xe8")], True),
        ([ws_frame(1, b"a") + ws_frame(8, b"")], True),
        ([ws_frame(8, b"") + ws_frame(1, b"a")], False),  # Close is not the last frame
        ([ws_frame(2, b"x" * 70_000)], False),
        ([ws_frame(1, b"x" * 300) + ws_frame(8, b"\x03\xe8bye")], True),
    ],
)
def test_close_frame_ends_the_websocket_stream(chunks: list[bytes], ends: bool) -> None:
    # A Close that opens the handshake ends the caller's streaming at once, and the
    # stream once the peer has answered and ended its side (RFC 6455 7.1.1: the
    # server closes first): with RST_STREAM(NO_ERROR), no frame of data after its end.
    pair = Pair({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1}, auto_ack=True)
    ref, _ = open_websocket(pair)
    for chunk in chunks:
        pair.client.stream_request_body(ref, chunk)
    pair.pump()
    assert pair.server_data(1) == b"".join(chunks)
    assert not pair.server_events(h2.events.StreamEnded)
    if ends:
        with pytest.raises(HTTPError) as info:
            pair.client.stream_request_body(ref, ws_frame(1, b"late"))
        assert info.value.reason == "request_body_not_streaming"
    pair.server.send_data(1, b"\x88\x02\x03\xe8")
    assert pair.pump() == [Data(ref, b"\x88\x02\x03\xe8")]
    assert not pair.server_events(h2.events.StreamReset)  # the server has not ended yet
    pair.server.end_stream(1)
    assert pair.pump() == [Done(ref)]
    resets = pair.server_events(h2.events.StreamReset)
    if ends:
        assert [(e.stream_id, e.error_code) for e in resets] == [(1, 0)]
        assert pair.client.open_request_count() == 0
        assert pair.client.pending_bytes() == 0
    else:
        assert not resets  # no Close of ours: the stream is the caller's still
    assert not pair.server_events(h2.events.StreamEnded)


def _client_close(pair: Pair) -> Any:
    ref, _ = open_websocket(pair)
    pair.client.stream_request_body(ref, ws_frame(8, b"\x03\xe8"))
    pair.pump()
    assert not pair.server_events(h2.events.StreamEnded)
    return ref


def test_the_caller_may_end_a_stream_after_its_close() -> None:
    # With RST_STREAM(NO_ERROR), never an empty END_STREAM DATA frame behind the Close
    # (hypercorn 0.18 drops the connection on one: pgjones/hypercorn#329).
    pair = Pair({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    ref = _client_close(pair)
    pair.client.stream_request_body(ref, EOF)
    pair.pump()
    assert [(e.stream_id, e.error_code) for e in pair.server_events(h2.events.StreamReset)] == [
        (1, 0)
    ]
    assert not pair.server_events(h2.events.StreamEnded)
    assert len(pair.server_events(h2.events.DataReceived)) == 1  # the Close alone
    # Over: not counted, not kept (it was, for the connection's life).
    assert pair.client.open_request_count() == 0
    assert ref not in pair.client._refs and not pair.client._streams
    pair.client.stream_request_body(ref, EOF)  # once is enough: tolerated
    with pytest.raises(HTTPError) as info:
        pair.client.stream_request_body(ref, b"more")
    assert info.value.reason == "request_body_not_streaming"


def test_eof_after_a_queued_close_ends_the_stream_once_the_close_is_out() -> None:
    # The Close waits for the window: the stream is over for the caller at once
    # (nothing more reported; counted only until the Close is out: it stayed counted
    # for the connection's life behind a server that never ends its side), the Close
    # still goes out whole, then RST_STREAM(NO_ERROR), never a DATA frame after it.
    pair, ref = ended_behind_the_window()
    close = ws_frame(8, b"\x03\xe8bye")
    assert pair.client.open_request_count() == 1  # it holds one of the server's streams
    assert pair.client.pending_bytes() > 0  # the Close's rest, still to go
    assert pair.client.pending_bytes(ref) == pair.client.pending_bytes()
    pair.client.stream_request_body(ref, EOF)  # again: tolerated
    with pytest.raises(HTTPError) as info:
        pair.client.stream_request_body(ref, b"more")
    assert info.value.reason == "request_body_not_streaming"
    pair.pump()
    pair.server.send_data(1, ws_frame(8, b"\x03\xe8"))  # the server's answer, unheard
    pair.server.increment_flow_control_window(100, stream_id=1)
    assert pair.pump() == []
    assert pair.server_data(1) == close
    assert [(e.stream_id, e.error_code) for e in pair.server_events(h2.events.StreamReset)] == [
        (1, 0)
    ]
    assert not pair.server_events(h2.events.StreamEnded)
    assert pair.client.pending_bytes() == 0
    assert pair.client.open_request_count() == 0
    assert not pair.client._streams and not pair.client._draining


def test_cancel_reaches_a_stream_the_caller_ended_behind_the_window() -> None:
    # Its Close waits behind a window the server never opens, on a server of one
    # stream: cancel was a no-op there (the ref was gone), the bytes stayed counted
    # and the slot taken for the connection's life.
    pair, ref = ended_behind_the_window({SettingCodes.MAX_CONCURRENT_STREAMS: 1})
    pair.pump()
    with pytest.raises(HTTPError) as info:
        pair.client.request("GET", "/", [], None)
    assert info.value.reason == "too_many_concurrent_requests"
    assert pair.client.open_request_count() == 1
    pair.client.cancel(ref)
    assert pair.client.pending_bytes() == 0 and pair.client.pending_bytes(ref) == 0
    assert pair.client.open_request_count() == 0
    assert not pair.client._draining and not pair.client._backlog
    assert pair.pump() == []
    assert [(e.stream_id, e.error_code) for e in pair.server_events(h2.events.StreamReset)] == [
        (1, h2.errors.ErrorCodes.CANCEL)
    ]
    pair.client.stream_request_body(ref, EOF)  # still tolerated
    get = pair.client.request("GET", "/", [], None)  # the slot is free
    pair.server.increment_flow_control_window(100)  # (nothing more of the Close goes)
    pair.pump()
    assert pair.server_data(1) == ws_frame(8, b"\x03\xe8bye")[:4]
    pair.respond(3, 200, b"ok")
    assert pair.pump()[-1] == Done(get)
    pair.client.cancel(ref)  # again: ignored


def test_malformed_trailers_on_a_stream_the_caller_ended_let_its_queue_go() -> None:
    # The client resets the stream (PROTOCOL_ERROR); its queue stayed, counted, and
    # once h2 let the closed stream go every read failed in _pump_all.
    pair, _ = ended_behind_the_window()
    pair.pump()
    send_unchecked_headers(pair, 1, [(b"X-Upper", b"1")], end_stream=True)
    assert pair.pump() == []  # nothing reported for it
    assert pair.client.pending_bytes() == 0 and pair.client.open_request_count() == 0
    assert not pair.client._draining and not pair.client._backlog
    for stream_id in (3, 5, 7):
        get = pair.client.request("GET", "/", [], None)
        pair.pump()
        pair.server.increment_flow_control_window(100)
        pair.respond(stream_id, 200, b"ok")
        assert pair.pump()[-1] == Done(get)


def test_a_stream_still_draining_stays_reachable_once_forgotten_as_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # _ended remembers the last _STOPPED_MEMORY refs: one evicted while its Close
    # still waited was unreachable (pending_bytes 0, cancel a no-op, EOF refused).
    monkeypatch.setattr(mint.http._http2, "_STOPPED_MEMORY", 2)
    pair, ref = ended_behind_the_window()
    for _ in range(3):  # (later streams ended meanwhile)
        mint.http._http2._remember(pair.client._ended, object())
    assert ref not in pair.client._ended
    assert pair.client.pending_bytes(ref) == pair.client.pending_bytes() > 0
    pair.client.stream_request_body(ref, EOF)  # still tolerated
    pair.client.cancel(ref)
    assert pair.client.pending_bytes() == 0 and pair.client.open_request_count() == 0
    pair.pump()
    assert [(e.stream_id, e.error_code) for e in pair.server_events(h2.events.StreamReset)] == [
        (1, h2.errors.ErrorCodes.CANCEL)
    ]


def test_close_lets_go_every_queue() -> None:
    pair, ended = ended_behind_the_window()
    still = pair.client.request("POST", "/", [], STREAM)
    pair.client.stream_request_body(still, b"x" * 100)
    assert pair.client.pending_bytes() > 100
    pair.client.close()
    assert pair.client.pending_bytes() == 0
    assert pair.client.pending_bytes(ended) == 0 and pair.client.pending_bytes(still) == 0
    assert not pair.client._draining and not pair.client._backlog


def test_a_queued_close_the_caller_ended_goes_when_the_server_resets_it() -> None:
    pair, _ = ended_behind_the_window()
    pair.pump()
    pair.server.reset_stream(1, h2.errors.ErrorCodes.CANCEL)
    assert pair.pump() == []  # nothing reported for it
    assert pair.client.pending_bytes() == 0
    assert not pair.client._draining and not pair.client._backlog
    pair.server.increment_flow_control_window(100)  # (nothing left to send on it)
    assert pair.pump() == []


def test_a_close_behind_the_window_still_goes_out_when_the_peer_ends() -> None:
    # The peer ends its side while our Close still waits for window: the Close goes
    # first, with END_STREAM, once the window opens (never a reset over it).
    pair = Pair({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1, SettingCodes.INITIAL_WINDOW_SIZE: 4})
    ref, _ = open_websocket(pair)
    close = ws_frame(8, b"\x03\xe8bye")
    pair.client.stream_request_body(ref, close)
    pair.pump()
    assert pair.server_data(1) == close[:4]
    pair.server.send_data(1, b"\x88\x00", end_stream=True)
    assert pair.pump() == [Data(ref, b"\x88\x00"), Done(ref)]
    pair.server.increment_flow_control_window(100, stream_id=1)
    pair.pump()
    assert pair.server_data(1) == close
    assert pair.server_events(h2.events.StreamEnded)
    assert not pair.server_events(h2.events.StreamReset)
    assert pair.client.open_request_count() == 0
    assert pair.client.pending_bytes() == 0


def test_server_close_then_client_close_finishes_the_stream() -> None:
    pair = Pair({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    ref, _ = open_websocket(pair)
    pair.server.send_data(1, b"\x88\x02\x03\xe8", end_stream=True)
    assert pair.pump() == [Data(ref, b"\x88\x02\x03\xe8"), Done(ref)]
    # Half-closed (remote): still one of the server's streams until ours ends (as Mint counts).
    assert pair.client.open_request_count() == 1
    pair.client.stream_request_body(ref, ws_frame(8, b"\x03\xe8"))
    pair.pump()
    assert pair.server_events(h2.events.StreamEnded)
    assert pair.client.pending_bytes(ref) == 0
    assert pair.client.open_request_count() == 0


def test_a_stream_the_server_ended_counts_while_the_callers_close_waits() -> None:
    # The server's Close and END_STREAM (Done) came while ours waits behind a 4-byte
    # window on a server of one stream: the stream still holds that one slot (RFC
    # 9113 5.1.2), so a new request is refused; the count said 0 beside the refusal.
    settings = {
        SettingCodes.ENABLE_CONNECT_PROTOCOL: 1,
        SettingCodes.INITIAL_WINDOW_SIZE: 4,
        SettingCodes.MAX_CONCURRENT_STREAMS: 1,
    }
    pair = Pair(settings)
    ref, _ = open_websocket(pair)
    pair.client.stream_request_body(ref, ws_frame(8, b"\x03\xe8bye"))
    pair.pump()
    pair.server.send_data(1, b"\x88\x02\x03\xe8", end_stream=True)
    assert pair.pump() == [Data(ref, b"\x88\x02\x03\xe8"), Done(ref)]
    assert pair.client.pending_bytes(ref) > 0
    with pytest.raises(HTTPError) as info:
        pair.client.request("GET", "/", [], None)
    assert info.value.reason == "too_many_concurrent_requests"
    assert pair.client.open_request_count() == 1
    pair.client.cancel(ref)
    assert pair.client.open_request_count() == 0
    pair.client.request("GET", "/", [], None)


def test_connect_refused_with_403_ends_with_done() -> None:
    pair = Pair({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    ref = pair.client.request("CONNECT", "/", [], STREAM, upgrade="websocket")
    pair.pump()
    pair.respond(1, 403, b"no")
    assert pair.pump() == [Status(ref, 403), Headers(ref, []), Data(ref, b"no"), Done(ref)]


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


@pytest.mark.parametrize("seed", range(30))
def test_scanner_finds_the_close_at_any_split(seed: int) -> None:
    rnd = random.Random(seed)
    frames = [
        ws_frame(
            rnd.choice([1, 2, 9, 10]), rnd.randbytes(rnd.choice([0, 5, 125, 126, 300, 70_000]))
        )
        for _ in range(rnd.randint(0, 3))
    ]
    data = b"".join(frames) + ws_frame(8, b"\x03\xe8")
    scanner = _WebSocketScanner()
    parts = chunked(data, [rnd.randint(0, len(data)) for _ in range(rnd.randint(0, 6))])
    results = [scanner.feed(part) for part in parts if part]
    assert results[-1] is True
    assert not any(results[:-1])


# -- flow control ---------------------------------------------------------------------
def test_body_larger_than_the_window_is_queued_and_sent_in_order() -> None:
    pair = Pair({SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    body = os.urandom(5000)
    ref = pair.client.request("POST", "/", [], body)
    pair.pump()
    assert pair.server_data(1) == body[:1000]
    assert pair.client.pending_bytes(ref) == pair.client.pending_bytes() == 4000
    assert pair.client.send_window(ref) == 0
    assert not pair.server_events(h2.events.StreamEnded)
    for _ in range(4):
        pair.server.increment_flow_control_window(1000, stream_id=1)
        pair.pump()
    assert pair.server_data(1) == body
    assert pair.client.pending_bytes() == 0
    assert [e.stream_id for e in pair.server_events(h2.events.StreamEnded)] == [1]


def test_eof_waits_for_the_queued_bytes() -> None:
    pair = Pair({SettingCodes.INITIAL_WINDOW_SIZE: 10})
    ref = pair.client.request("POST", "/", [], STREAM)
    pair.client.stream_request_body(ref, b"0123456789abcdef")
    pair.client.stream_request_body(ref, EOF)
    pair.pump()
    assert pair.server_data(1) == b"0123456789"
    assert not pair.server_events(h2.events.StreamEnded)
    pair.server.increment_flow_control_window(100, stream_id=1)
    pair.pump()
    assert pair.server_data(1) == b"0123456789abcdef"
    assert pair.server_events(h2.events.StreamEnded)


def test_frames_respect_max_frame_size() -> None:
    pair = Pair({SettingCodes.INITIAL_WINDOW_SIZE: 2**20})
    pair.server.increment_flow_control_window(2**20)
    body = os.urandom(100_000)
    pair.client.request("POST", "/", [], body)
    pair.pump()
    sizes = [len(e.data) for e in pair.server_events(h2.events.DataReceived)]
    assert max(sizes) <= 16_384
    assert pair.server_data(1) == body


def test_connection_window_shared_between_streams() -> None:
    pair = Pair({SettingCodes.INITIAL_WINDOW_SIZE: 2**20})  # connection window stays 65,535
    a = pair.client.request("POST", "/a", [], b"a" * 60_000)
    b = pair.client.request("POST", "/b", [], b"b" * 60_000)
    pair.pump()
    assert pair.client.send_window() == 0
    assert pair.client.pending_bytes() == 120_000 - 65_535
    assert (
        pair.client.pending_bytes(a) + pair.client.pending_bytes(b) == pair.client.pending_bytes()
    )
    pair.server.increment_flow_control_window(100_000)
    pair.pump()
    assert pair.server_data(1) == b"a" * 60_000
    assert pair.server_data(3) == b"b" * 60_000
    # Both ended as their turns emptied their queues.
    assert sorted(e.stream_id for e in pair.server_events(h2.events.StreamEnded)) == [1, 3]


@pytest.mark.parametrize("busy_first", [True, False])
def test_streams_waiting_for_the_connection_window_take_turns(busy_first: bool) -> None:
    # A busy stream kept fed must not hold every WINDOW_UPDATE's room: a small body
    # on another stream goes out within a round of turns, whichever id is lower.
    pair = Pair({SettingCodes.INITIAL_WINDOW_SIZE: 2**24})  # the connection's: 65,535
    refs = {}
    for name in ("busy", "small") if busy_first else ("small", "busy"):
        refs[name] = pair.client.request("POST", f"/{name}", [], STREAM)
    busy_id, small_id = (1, 3) if busy_first else (3, 1)
    pair.client.stream_request_body(refs["busy"], os.urandom(200_000))
    pair.pump()
    assert pair.client.send_window() == 0
    pair.client.stream_request_body(refs["small"], b"s" * 16_384)
    steps = 0
    while len(pair.server_data(small_id)) < 16_384:
        pair.client.stream_request_body(refs["busy"], os.urandom(16_384))  # kept fed
        pair.server.increment_flow_control_window(16_384)
        pair.pump()
        steps += 1
        assert steps <= 2, "the small body waited behind the busy stream"
    assert len(pair.server_data(busy_id)) >= 65_535
    # Both go on sharing: with two streams waiting, each gets every other turn.
    before = {sid: len(pair.server_data(sid)) for sid in (busy_id, small_id)}
    pair.client.stream_request_body(refs["small"], b"t" * 100_000)
    for _ in range(4):
        pair.server.increment_flow_control_window(16_384)
        pair.pump()
    sent = {sid: len(pair.server_data(sid)) - before[sid] for sid in (busy_id, small_id)}
    assert sent[busy_id] == sent[small_id] == 2 * 16_384


def test_send_queue_full_queues_nothing() -> None:
    pair = Pair({SettingCodes.INITIAL_WINDOW_SIZE: 100}, max_send_queue=1000)
    ref = pair.client.request("POST", "/", [], STREAM)
    pair.client.stream_request_body(ref, b"x" * 1000)  # 100 sent, 900 queued
    assert pair.client.pending_bytes(ref) == 900
    with pytest.raises(HTTPError) as info:
        pair.client.stream_request_body(ref, b"y" * 101)
    assert info.value.reason == "send_queue_full"
    assert pair.client.pending_bytes(ref) == 900
    pair.client.stream_request_body(ref, b"z" * 100)
    assert pair.client.pending_bytes() == 1000


def test_small_chunks_behind_a_shut_window_hold_about_their_bytes() -> None:
    # Each queued chunk cost some 300 bytes beside its own (a view and a bytes
    # object): 64 MiB of 16 B messages held 1.3 GB. Behind a backlog they are gathered.
    import tracemalloc

    pair = Pair({SettingCodes.INITIAL_WINDOW_SIZE: 0})
    ref = pair.client.request("POST", "/", [], STREAM)
    pair.pump()
    chunks = [os.urandom(16) for _ in range(20_000)]
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for chunk in chunks:
            pair.client.stream_request_body(ref, chunk)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    queued = 16 * len(chunks)
    assert pair.client.pending_bytes(ref) == queued
    assert after - before < 2 * queued, (after - before) / len(chunks)
    # Every byte goes out, in order, as the window opens.
    pair.server.increment_flow_control_window(queued, stream_id=1)
    pair.server.increment_flow_control_window(queued)  # the connection's: 65,535 first
    pair.pump()
    assert pair.server_data(1) == b"".join(chunks)
    assert pair.client.pending_bytes() == 0


def test_a_queued_write_does_not_walk_every_stream() -> None:
    # Each write that had to queue pumped every stream of the connection (O(streams)
    # a write: 790 µs with 1,000 WebSockets behind shut windows). Counted, not timed:
    # how often a write looks at another stream's queue.
    pair = Pair({SettingCodes.INITIAL_WINDOW_SIZE: 0, SettingCodes.MAX_CONCURRENT_STREAMS: 500})
    refs = [pair.client.request("POST", f"/{i}", [], STREAM) for i in range(300)]
    pair.pump()
    for ref in refs:
        pair.client.stream_request_body(ref, b"queued")
    pumped = []
    original = pair.client._pump

    def counting(stream: Any, budget: int | None = None) -> None:
        pumped.append(stream.stream_id)
        original(stream, budget)

    pair.client._pump = counting  # type: ignore[method-assign]
    for ref in refs[:50]:
        pair.client.stream_request_body(ref, b"more")
    assert len(pumped) == 50  # each write pumps its own stream only
    # When the windows open, every stream gets its turn (and only those that wait).
    pumped.clear()
    for i in range(300):
        pair.server.increment_flow_control_window(100, stream_id=2 * i + 1)
    pair.pump()
    assert sorted(set(pumped)) == [2 * i + 1 for i in range(300)]
    for i in range(300):
        assert pair.server_data(2 * i + 1) == (b"queuedmore" if i < 50 else b"queued")
    pumped.clear()
    pair.server.increment_flow_control_window(100)
    pair.pump()
    assert pumped == []  # nothing waits any more


def test_request_body_over_the_queue_bound_is_refused() -> None:
    pair = Pair({SettingCodes.INITIAL_WINDOW_SIZE: 100}, max_send_queue=1000)
    with pytest.raises(HTTPError) as info:
        pair.client.request("POST", "/", [], b"x" * 1101)
    assert info.value.reason == "send_queue_full"
    assert pair.client.open_request_count() == 0
    pair.client.request("POST", "/", [], b"x" * 1100)
    assert pair.client.pending_bytes() == 1000


def test_received_data_is_acknowledged_so_the_server_never_stalls() -> None:
    pair = Pair()
    ref = pair.client.request("GET", "/", [], None)
    pair.pump()
    pair.respond(1, 200, end=False)
    received = pair.pump()
    total = 0
    chunk = b"z" * 16_384
    target = 3 * DEFAULT_RECEIVE_WINDOW // 2  # more than one window's worth
    while total < target:
        window = pair.server.local_flow_control_window(1)
        assert window > 0, "the server's window ran out: data was not acknowledged"
        n = min(window, len(chunk), target - total)
        pair.server.send_data(1, chunk[:n])
        total += n
        if pair.server.local_flow_control_window(1) < 2 * len(chunk):
            received += pair.pump()
    received += pair.pump()
    assert received[:2] == [Status(ref, 200), Headers(ref, [])]
    assert all(isinstance(r, Data) and r.ref == ref for r in received[2:])
    assert sum(len(r.data) for r in received[2:]) == target


# -- errors and connection state ---------------------------------------------------
def test_stream_reset_affects_only_that_stream() -> None:
    pair = Pair()
    a = pair.client.request("GET", "/a", [], None)
    b = pair.client.request("GET", "/b", [], None)
    pair.pump()
    pair.server.reset_stream(1, h2.errors.ErrorCodes.REFUSED_STREAM)
    pair.respond(3, 200, b"ok")
    responses = pair.pump()
    assert responses[0] == Error(a, HTTPError(("server_closed_request", "refused_stream")))
    assert responses[1:] == [Status(b, 200), Headers(b, []), Data(b, b"ok"), Done(b)]
    assert pair.client.open_request_count() == 0


def test_a_body_short_of_its_content_length_fails_only_its_stream() -> None:
    # RFC 9113 8.1.1: a malformed response is a stream error, not the connection's.
    pair = Pair({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    ws, _ = open_websocket(pair)
    get = pair.client.request("GET", "/", [], None)
    pair.pump()
    pair.server.send_headers(3, [(b":status", b"200"), (b"content-length", b"10")])
    pair.server.send_data(3, b"12345")
    wire = pair.server.data_to_send()
    short = frame(0x0, 0x1, 3, b"67")  # END_STREAM at 7 of the 10 bytes announced
    responses = pair.client.receive_data(wire + short)
    assert responses[:3] == [
        Status(get, 200),
        Headers(get, [("content-length", "10")]),
        Data(get, b"12345"),
    ]
    (error,) = responses[3:]
    assert isinstance(error, Error) and error.ref == get
    assert error.error.reason[0] == "protocol_error"
    assert "10" in error.error.reason[1]
    resets = [
        e
        for e in pair.server.receive_data(pair.client.data_to_send())
        if isinstance(e, h2.events.StreamReset)
    ]
    assert [(r.stream_id, r.error_code) for r in resets] == [
        (3, h2.errors.ErrorCodes.PROTOCOL_ERROR)
    ]
    # The connection and the WebSocket on it go on.
    assert pair.client.is_open("read_write")
    assert pair.client.open_request_count() == 1
    pair.server.send_data(1, b"\x81\x02hi")
    assert pair.pump() == [Data(ws, b"\x81\x02hi")]


def test_an_upper_case_header_name_fails_only_its_stream() -> None:
    pair = Pair()
    a = pair.client.request("GET", "/a", [], None)
    b = pair.client.request("GET", "/b", [], None)
    pair.pump()
    send_unchecked_headers(pair, 1, [(b":status", b"200"), (b"X-Upper", b"1")], end_stream=True)
    pair.respond(3, 200, b"ok")
    responses = pair.pump()
    assert responses[0] == Error(
        a, HTTPError(("protocol_error", "Received uppercase header name b'X-Upper'."))
    )
    assert responses[1:] == [Status(b, 200), Headers(b, []), Data(b, b"ok"), Done(b)]
    assert pair.client.is_open("read_write")
    assert pair.client.open_request_count() == 0


def headers_frame(pair: Pair, stream_id: int, headers: Any, *, end_stream: bool) -> bytes:
    """A raw HEADERS frame the server's HPACK encoder made (h2 sends no malformed ones)."""
    block = pair.server.encoder.encode(headers)
    return frame(0x1, 0x4 | (0x1 if end_stream else 0), stream_id, block)


# RFC 9113 8.1 and 6.9: each a stream error of type PROTOCOL_ERROR. h2 (and hyperframe
# under it) raised the connection's: one bad answer failed every stream on it.
MALFORMED_FRAMES: dict[str, tuple[Any, str]] = {
    "trailers without END_STREAM": (
        lambda pair: (
            headers_frame(pair, 1, [(b":status", b"200")], end_stream=False)
            + headers_frame(pair, 1, [(b"x-trailer", b"1")], end_stream=False)
        ),
        "Trailers must have END_STREAM set",
    ),
    "an informational head with END_STREAM": (
        lambda pair: headers_frame(pair, 1, [(b":status", b"103")], end_stream=True),
        "Cannot set END_STREAM on informational responses",
    ),
    "an informational head after the final one": (
        lambda pair: (
            headers_frame(pair, 1, [(b":status", b"200")], end_stream=False)
            + headers_frame(pair, 1, [(b":status", b"103")], end_stream=False)
        ),
        "Informational response after final response",
    ),
    "DATA before any head": (
        lambda pair: frame(0x0, 0x1, 1, b"body"),
        "cannot receive data before headers",
    ),
    "a WINDOW_UPDATE of 0 on the stream": (
        lambda pair: frame(0x8, 0, 1, b"\0\0\0\0"),
        "WINDOW_UPDATE with an increment of 0",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED_FRAMES))
def test_a_malformed_frame_fails_only_its_stream(case: str) -> None:
    wire, detail = MALFORMED_FRAMES[case]
    pair = Pair({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    a = pair.client.request("GET", "/a", [], None)
    ws, _ = open_websocket(pair, stream_id=3)
    b = pair.client.request("GET", "/b", [], None)
    pair.pump()
    responses = pair.client.receive_data(wire(pair))
    assert responses[-1] == Error(a, HTTPError(("protocol_error", detail)))
    head_first = "trailers" in case or "after the final" in case
    assert responses[:-1] == ([Status(a, 200), Headers(a, [])] if head_first else [])
    resets = pair.server.receive_data(pair.client.data_to_send())
    assert [
        (e.stream_id, e.error_code) for e in resets if isinstance(e, h2.events.StreamReset)
    ] == [(1, h2.errors.ErrorCodes.PROTOCOL_ERROR)]
    # The connection, its other request and its WebSocket go on.
    pair.respond(5, 200, b"ok")
    pair.server.send_data(3, b"\x81\x02hi")
    assert pair.pump() == [
        Status(b, 200),
        Headers(b, []),
        Data(b, b"ok"),
        Done(b),
        Data(ws, b"\x81\x02hi"),
    ]
    assert pair.client.is_open("read_write")
    assert pair.client.open_request_count() == 1


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("a WINDOW_UPDATE of 0", h2.errors.ErrorCodes.PROTOCOL_ERROR),
        ("an informational head", h2.errors.ErrorCodes.STREAM_CLOSED),
        ("an informational head with END_STREAM", h2.errors.ErrorCodes.STREAM_CLOSED),
    ],
)
def test_a_malformed_frame_after_the_whole_answer_resets_the_stream_quietly(
    case: str, code: h2.errors.ErrorCodes
) -> None:
    # The answer is whole (Done) while the caller still sends its body: a bad frame
    # then resets the stream, once, and adds no Error after the Done (h2 refused a
    # head on the half-closed stream, and closed it so that no reset went out). A
    # head there is a STREAM_CLOSED error (RFC 9113 5.1), a 0 increment a
    # PROTOCOL_ERROR (6.9).
    pair = Pair()
    ref = pair.client.request("POST", "/", [], STREAM)
    pair.pump()
    pair.respond(1, 200, b"ok")
    assert pair.pump() == [Status(ref, 200), Headers(ref, []), Data(ref, b"ok"), Done(ref)]
    if case == "a WINDOW_UPDATE of 0":
        wire = frame(0x8, 0, 1, b"\0\0\0\0")
    else:
        wire = headers_frame(pair, 1, [(b":status", b"103")], end_stream="END" in case)
    assert pair.client.receive_data(wire) == []
    events = pair.server.receive_data(pair.client.data_to_send())
    resets = [(e.stream_id, e.error_code) for e in events if isinstance(e, h2.events.StreamReset)]
    assert resets == [(1, code)]
    assert pair.client.open_request_count() == 0
    assert pair.client.is_open("read_write")


def test_headers_on_a_stream_the_server_opened_are_the_connections_error() -> None:
    # RFC 9113 5.1.1: an unexpected stream id (even: a server's, and push is off).
    # h2 took it for a request, and the stream was reset as a malformed answer.
    pair = Pair()
    ref = pair.client.request("GET", "/", [], None)
    pair.pump()
    with pytest.raises(HTTPError) as info:
        pair.client.receive_data(headers_frame(pair, 2, [(b":status", b"200")], end_stream=True))
    assert info.value.reason == (
        "protocol_error",
        "HEADERS on stream 2, which a server cannot open",
    )
    assert info.value.responses == [Error(ref, HTTPError(info.value.reason))]
    assert not pair.client.is_open("read_write")


def test_frames_after_a_reset_h2_could_not_send_are_ignored() -> None:
    # A 1xx after the final head: h2 closed the stream as it refused it, and the
    # RST_STREAM we sent for it was not h2's, so the trailers the server had sent
    # behind it were a connection error (GOAWAY STREAM_CLOSED). RFC 9113 5.1: ignored.
    pair = Pair()
    a = pair.client.request("GET", "/a", [], None)
    b = pair.client.request("GET", "/b", [], None)
    pair.pump()
    wire = headers_frame(pair, 1, [(b":status", b"200")], end_stream=False)
    wire += headers_frame(pair, 1, [(b":status", b"100")], end_stream=False)
    wire += headers_frame(pair, 1, [(b"x-trailer", b"1")], end_stream=True)
    responses = pair.client.receive_data(wire)
    assert responses[-1] == Error(
        a, HTTPError(("protocol_error", "Informational response after final response"))
    )
    pair.respond(3, 200, b"ok")
    assert pair.pump() == [Status(b, 200), Headers(b, []), Data(b, b"ok"), Done(b)]
    resets = [(e.stream_id, e.error_code) for e in pair.server_events(h2.events.StreamReset)]
    assert resets == [(1, h2.errors.ErrorCodes.PROTOCOL_ERROR)]
    assert pair.client.is_open("read_write")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_malformed_head_with_end_stream_is_reset_as_malformed(method: str) -> None:
    # h2 checks the head after its END_STREAM closed the stream: the reset was
    # STREAM_CLOSED (a POST still sending) or none at all (a GET). RFC 9113 8.1.1.
    pair = Pair()
    ref = pair.client.request(method, "/", [], STREAM if method == "POST" else None)
    pair.pump()
    headers = [(b":status", b"200"), (b"connection", b"close")]
    send_unchecked_headers(pair, 1, headers, end_stream=True)
    [error] = pair.client.receive_data(pair.server.data_to_send())
    assert isinstance(error, Error) and error.ref == ref
    assert error.error.reason[0] == "protocol_error"
    # (read off the wire: h2's server, its stream closed both ways, reports no reset)
    resets = [(sid, payload) for kind, sid, payload in client_frames(pair) if kind == 0x3]
    assert resets == [(1, int(h2.errors.ErrorCodes.PROTOCOL_ERROR).to_bytes(4, "big"))]
    assert pair.client.open_request_count() == 0


def client_frames(pair: Pair) -> list[tuple[int, int, bytes]]:
    """The frames the client has to send, as (type, stream id, payload)."""
    out = pair.client.data_to_send()
    frames = []
    at = 0
    while at < len(out):
        length = int.from_bytes(out[at : at + 3], "big")
        sid = int.from_bytes(out[at + 5 : at + 9], "big") & 0x7FFF_FFFF
        frames.append((out[at + 3], sid, bytes(out[at + 9 : at + 9 + length])))
        at += 9 + length
    return frames


def test_no_window_update_goes_out_on_a_stream_reset_in_the_same_read() -> None:
    # The WebSocket's DATA went past h2 (its window given back at the read's end),
    # and a bad frame behind it reset the stream: the stream's WINDOW_UPDATE still
    # went out after the RST_STREAM (RFC 9113 5.1). The connection's goes.
    pair, ref = open_fast_websocket()
    wire = frame(0x0, 0, 1, b"\x81\x02hi" * 100) + frame(0x8, 0, 1, b"\0\0\0\0")
    responses = pair.client.receive_data(wire)
    assert responses[0] == Data(ref, b"\x81\x02hi" * 100)
    sent = [(kind, sid) for kind, sid, _ in client_frames(pair)]
    assert (0x3, 1) in sent  # RST_STREAM
    assert (0x8, 1) not in sent and (0x8, 0) in sent  # WINDOW_UPDATE


def test_a_window_update_of_0_on_the_connection_is_the_connections_error() -> None:
    pair = Pair()
    pair.client.request("GET", "/", [], None)
    pair.pump()
    with pytest.raises(HTTPError) as info:
        pair.client.receive_data(frame(0x8, 0, 0, b"\0\0\0\0"))
    assert info.value.reason[0] == "protocol_error"
    assert not pair.client.is_open("read_write")


def test_a_window_update_inside_a_header_block_is_the_connections_error() -> None:
    pair = Pair()
    pair.client.request("GET", "/", [], None)
    pair.pump()
    block = pair.server.encoder.encode([(b":status", b"200")])
    head = frame(0x1, 0x0, 1, block[:1])  # (no END_HEADERS: a CONTINUATION must follow)
    with pytest.raises(HTTPError) as info:
        pair.client.receive_data(head + frame(0x8, 0, 1, b"\0\0\0\0"))
    assert info.value.reason == ("protocol_error", "Invalid frame during header block.")


@pytest.mark.parametrize("stream_id", [0, 1])
def test_a_window_updates_reserved_bit_is_ignored(stream_id: int) -> None:
    # RFC 9113 6.9: the bit "MUST be ignored when receiving"; hyperframe read it into
    # the increment, refused it, and the connection ended.
    pair = Pair()
    ref = pair.client.request("POST", "/", [], STREAM)
    pair.pump()
    h2_conn = pair.client._h2
    holder = h2_conn.streams[1] if stream_id else h2_conn
    window = holder.outbound_flow_control_window
    increment = (1 << 31 | 1000).to_bytes(4, "big")
    assert pair.client.receive_data(frame(0x8, 0, stream_id, increment)) == []
    assert holder.outbound_flow_control_window == window + 1000
    pair.client.stream_request_body(ref, EOF)
    pair.respond(1, 200, b"ok")
    assert pair.pump() == [Status(ref, 200), Headers(ref, []), Data(ref, b"ok"), Done(ref)]


@pytest.mark.parametrize(
    "headers",
    [[(b"x-a", b"1")], [(b"x-a", b"1"), (b":status", b"200")]],
    ids=["without :status", ":status after a header"],
)
def test_a_head_whose_first_header_is_not_its_status_fails_its_stream(headers: Any) -> None:
    # Under python -bb (as the tests run) a bytes name was compared with ":status" and
    # the read raised a BytesWarning out of the session.
    pair = Pair()
    ref = pair.client.request("GET", "/", [], None)
    pair.pump()
    (error,) = pair.client.receive_data(headers_frame(pair, 1, headers, end_stream=True))
    assert isinstance(error, Error) and error.ref == ref
    assert error.error.reason[0] == "protocol_error"
    assert pair.client.is_open("read_write")


@pytest.mark.parametrize("status", [b"abc", b"", b"20a", b"2000", b"-200", b"099", b"20"])
def test_an_invalid_status_fails_only_its_stream(status: bytes) -> None:
    # RFC 9113 8.3.2, RFC 9110 15: three digits. "abc" failed the whole connection
    # (and the stream's DATA then came out with a Done for it on the next read);
    # "2000", "-200" were handed out as statuses.
    pair = Pair()
    a = pair.client.request("GET", "/a", [], None)
    b = pair.client.request("GET", "/b", [], None)
    pair.pump()
    pair.server.config.validate_outbound_headers = False
    pair.server.send_headers(1, [(b":status", status)])
    pair.server.config.validate_outbound_headers = True
    pair.respond(3, 200, b"ok")
    responses = pair.pump()
    assert responses[0] == Error(
        a, HTTPError(("protocol_error", f"invalid :status {status.decode()!r}"))
    )
    assert responses[1:] == [Status(b, 200), Headers(b, []), Data(b, b"ok"), Done(b)]
    assert [e.stream_id for e in pair.server_events(h2.events.StreamReset)] == [1]
    assert pair.client.is_open("read_write")
    assert pair.client.open_request_count() == 0


def test_a_101_on_an_extended_connect_fails_its_stream_not_the_upgrade_after() -> None:
    # RFC 9113 8.6: HTTP/2 has no 101. Handed out as an informational Status(101),
    # a caller called new(101), which raised UpgradeFailureError and forgot the
    # upgrade: the 200 that followed was refused as not_upgraded.
    pair = Pair({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    ref = pair.client.request(
        "CONNECT", "/chat", [("sec-websocket-version", "13")], STREAM, upgrade="websocket"
    )
    other = pair.client.request("GET", "/", [], None)
    pair.pump()
    pair.server.send_headers(1, [(b":status", b"101")])
    pair.respond(3, 200, b"ok")
    responses = pair.pump()
    assert responses[0] == Error(
        ref, HTTPError(("protocol_error", "a 101 (Switching Protocols) in HTTP/2"))
    )
    assert not any(isinstance(r, Status) and r.ref == ref for r in responses)
    assert responses[1:] == [
        Status(other, 200),
        Headers(other, []),
        Data(other, b"ok"),
        Done(other),
    ]
    resets = pair.server_events(h2.events.StreamReset)
    assert [(e.stream_id, e.error_code) for e in resets] == [
        (1, h2.errors.ErrorCodes.PROTOCOL_ERROR)
    ]
    assert pair.client.is_open("read_write")


@pytest.mark.parametrize("status", [b"100", b"200", b"599", b"999"])
def test_a_three_digit_status_is_handed_out(status: bytes) -> None:
    pair = Pair()
    ref = pair.client.request("GET", "/", [], None)
    pair.pump()
    pair.server.send_headers(1, [(b":status", status)])
    if status != b"100":
        pair.server.end_stream(1)
    responses = pair.pump()
    assert responses[0] == Status(ref, int(status))


def test_reset_with_no_error_is_the_end() -> None:
    pair = Pair({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    ws, _ = open_websocket(pair)
    pair.client.stream_request_body(ws, ws_frame(8, b"\x03\xe8"))
    pair.pump()
    pair.server.send_data(1, b"\x88\x02\x03\xe8")
    pair.server.reset_stream(1, h2.errors.ErrorCodes.NO_ERROR)
    assert pair.pump() == [Data(ws, b"\x88\x02\x03\xe8"), Done(ws)]
    assert pair.client.open_request_count() == 0


def test_bytes_after_a_no_error_reset_are_dropped() -> None:
    pair = Pair({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    ws, _ = open_websocket(pair)
    pair.server.send_data(1, b"\x88\x02\x03\xe8")
    pair.server.reset_stream(1, h2.errors.ErrorCodes.NO_ERROR)
    assert pair.pump() == [Data(ws, b"\x88\x02\x03\xe8"), Done(ws)]
    pair.client.stream_request_body(ws, ws_frame(8, b"\x03\xe8"))  # the Close reply
    assert pair.client.pending_bytes() == 0
    assert pair.pump() == []
    assert pair.server_data(1) == b""


def test_reset_websocket_stream_while_a_get_goes_on() -> None:
    pair = Pair({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    ws, _ = open_websocket(pair)
    get = pair.client.request("GET", "/", [], None)
    pair.pump()
    pair.server.reset_stream(1, h2.errors.ErrorCodes.INTERNAL_ERROR)
    assert pair.pump() == [Error(ws, HTTPError(("server_closed_request", "internal_error")))]
    with pytest.raises(HTTPError):
        pair.client.stream_request_body(ws, ws_frame(1, b"x"))
    pair.respond(3, 200, b"fine")
    assert pair.pump()[-1] == Done(get)


def test_cancel_sends_rst_stream_cancel_and_ignores_late_data() -> None:
    pair = Pair({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    ws, _ = open_websocket(pair)
    pair.client.stream_request_body(ws, ws_frame(8, b"\x03\xe8"))
    pair.pump()
    pair.client.cancel(ws)
    pair.server.send_data(1, b"late")  # in flight when the reset was sent
    pair.pump()
    (reset,) = pair.server_events(h2.events.StreamReset)
    assert reset.error_code == h2.errors.ErrorCodes.CANCEL
    assert pair.client.open_request_count() == 0
    pair.client.cancel(ws)  # unknown now: a no-op
    assert pair.pump() == []


def test_goaway_fails_streams_above_last_stream_id_only() -> None:
    pair = Pair()
    first = pair.client.request("GET", "/1", [], None)
    second = pair.client.request("GET", "/2", [], None)
    pair.pump()
    pair.respond(1, 200, end=False)
    pair.server.close_connection(last_stream_id=1)
    # h2 refuses to send after its own GOAWAY; a real server finishes stream 1.
    pair.server.state_machine.state = ConnectionState.SERVER_OPEN
    responses = pair.pump()
    assert responses == [
        Status(first, 200),
        Headers(first, []),
        Error(second, HTTPError("unprocessed")),
    ]
    assert not pair.client.is_open("write")
    assert not pair.client.is_open("read_write")
    assert pair.client.is_open("read")
    with pytest.raises(HTTPError) as info:
        pair.client.request("GET", "/3", [], None)
    assert info.value.reason == "closed_for_writing"  # Mint's reason after GOAWAY
    # Stream 1 still completes after the GOAWAY (RFC 9113 6.8).
    pair.server.send_data(1, b"rest", end_stream=True)
    assert pair.pump() == [Data(first, b"rest"), Done(first)]


def test_max_concurrent_streams() -> None:
    pair = Pair({SettingCodes.MAX_CONCURRENT_STREAMS: 1})
    ref = pair.client.request("GET", "/", [], None)
    with pytest.raises(HTTPError) as info:
        pair.client.request("GET", "/", [], None)
    assert info.value.reason == "too_many_concurrent_requests"
    pair.pump()
    pair.respond(1)
    assert pair.pump()[-1] == Done(ref)
    pair.client.request("GET", "/", [], None)


def test_ping_and_pong() -> None:
    pair = Pair()
    first = pair.client.ping()
    second = pair.client.ping(b"12345678")
    assert pair.pump() == [Pong(first), Pong(second)]
    with pytest.raises(HTTPError):
        pair.client.ping(b"short")


def test_server_ping_is_answered() -> None:
    pair = Pair()
    pair.server.ping(b"abcdefgh")
    assert pair.pump() == []
    (ack,) = pair.server_events(h2.events.PingAckReceived)
    assert ack.ping_data == b"abcdefgh"


@pytest.mark.parametrize(
    ("open_streams", "clean"),
    [(0, True), (1, False), (2, False)],
)
def test_connection_lost(open_streams: int, clean: bool) -> None:
    pair = Pair()
    refs = [pair.client.request("GET", "/", [], None) for _ in range(open_streams)]
    pair.pump()
    responses, was_clean = pair.client.connection_lost()
    assert was_clean is clean
    assert responses == [Error(ref, TransportError("closed")) for ref in refs]
    assert not pair.client.is_open("read")


def test_protocol_error_keeps_the_responses_of_earlier_frames() -> None:
    pair = Pair()
    ref = pair.client.request("GET", "/", [], None)
    pair.pump()
    pair.respond(1, 200, b"body")
    good = pair.server.data_to_send()
    bad = b"\x00\x00\x04\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00"  # RST_STREAM on stream 0
    with pytest.raises(HTTPError) as info:
        pair.client.receive_data(good + bad)
    assert info.value.reason[0] == "protocol_error"
    assert info.value.responses == [
        Status(ref, 200),
        Headers(ref, []),
        Data(ref, b"body"),
        Done(ref),
    ]
    assert not pair.client.is_open("read_write")
    assert isinstance(info.value.__cause__, Exception)


def test_input_split_at_every_byte() -> None:
    pair = Pair()
    ref = pair.client.request("GET", "/", [], None)
    pair.pump()
    pair.respond(1, 200, b"hello world")
    wire = pair.server.data_to_send()
    responses = []
    for i in range(len(wire)):
        responses += pair.client.receive_data(wire[i : i + 1])
    assert responses == [Status(ref, 200), Headers(ref, []), Data(ref, b"hello world"), Done(ref)]


def test_close_sends_goaway() -> None:
    pair = Pair()
    pair.client.close()
    pair.pump()
    assert pair.server_events(h2.events.ConnectionTerminated)
    assert not pair.client.is_open("write")
    with pytest.raises(HTTPError):
        pair.client.request("GET", "/", [], None)


# -- a WebSocket's DATA and WINDOW_UPDATE frames, read and written past h2 ---------------
# (Http2Session._fast_data, _fast_window_update, _pump_fast: the windows are h2's own.)
def open_fast_websocket(
    server_settings: dict[Any, int] | None = None, **pair_opts: Any
) -> tuple[Pair, Any]:
    pair = Pair({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1, **(server_settings or {})}, **pair_opts)
    ref, responses = open_websocket(pair)
    assert responses == [Status(ref, 200), Headers(ref, [])]
    return pair, ref


def frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    """One raw HTTP/2 frame (RFC 9113 4.1)."""
    return (
        len(payload).to_bytes(3, "big")
        + bytes((kind, flags))
        + stream_id.to_bytes(4, "big")
        + payload
    )


def frames_h2_reads(pair: Pair) -> list[bytes]:
    """The frames the client hands to h2 from now on (each call is one frame)."""
    calls: list[bytes] = []
    real = pair.client._h2.receive_data
    pair.client._h2.receive_data = lambda data: calls.append(data) or real(data)  # type: ignore[method-assign]
    return calls


def test_websocket_data_skips_h2_and_gives_the_windows_back_exactly() -> None:
    pair, ref = open_fast_websocket()
    calls = frames_h2_reads(pair)
    received: list[Any] = []
    sent = []
    target = 3 * DEFAULT_RECEIVE_WINDOW // 2  # more than a window: the peer must get it back
    total = 0
    while total < target:
        window = pair.server.local_flow_control_window(1)
        assert window > 0, "the server's window ran out: data was not given back"
        n = min(window, 16_384, target - total)
        chunk = os.urandom(n)
        sent.append(chunk)
        pair.server.send_data(1, chunk)
        total += n
        if pair.server.local_flow_control_window(1) < 2 * 16_384:
            received += pair.pump()
    received += pair.pump()
    assert all(isinstance(r, Data) and r.ref == ref for r in received)
    assert b"".join(r.data for r in received) == b"".join(sent)
    # Every byte given back, no more: the server's windows are whole again.
    assert pair.server.local_flow_control_window(1) == DEFAULT_RECEIVE_WINDOW
    assert pair.server.outbound_flow_control_window == DEFAULT_RECEIVE_WINDOW
    assert calls == [], "a WebSocket's DATA frames went to h2"


@pytest.mark.parametrize("seed", range(3))
def test_websocket_data_split_anywhere_reads_the_same(seed: int) -> None:
    pair, _ = open_fast_websocket({SettingCodes.INITIAL_WINDOW_SIZE: 2**20}, auto_ack=True)
    payloads = [os.urandom(n) for n in (0, 1, 100, 16_384, 5)]
    for p in payloads:
        pair.server.send_data(1, p)
    pair.server.ping(b"12345678")
    pair.server.send_data(1, b"padded", pad_length=7)
    pair.server.send_data(1, b"last", end_stream=True)
    wire = pair.server.data_to_send()
    expected = b"".join(payloads) + b"padded" + b"last"
    rng = random.Random(seed)
    cuts_list = [list(range(1, len(wire)))] + [
        sorted(rng.sample(range(1, len(wire)), k)) for k in (1, 3, 10, 50)
    ]
    for cuts in cuts_list:
        fresh, fref = open_fast_websocket({SettingCodes.INITIAL_WINDOW_SIZE: 2**20})
        responses: list[Any] = []
        for part in chunked(wire, cuts):
            responses += fresh.client.receive_data(part)
        assert b"".join(r.data for r in responses if isinstance(r, Data)) == expected
        assert responses[-1] == Done(fref)
        assert all(r.ref == fref for r in responses)
        # The PING was answered (h2's part) and every DATA byte given back (ours and
        # h2's, padding included): the server's view of its windows is whole again.
        fresh.pump()
        assert fresh.server_events(h2.events.PingAckReceived)


def test_websocket_padded_and_final_data_go_through_h2() -> None:
    pair, ref = open_fast_websocket()
    pair.server.send_data(1, b"abc", pad_length=9)
    pair.server.send_data(1, b"\x88\x00", end_stream=True)
    calls = frames_h2_reads(pair)
    assert pair.pump() == [Data(ref, b"abc"), Data(ref, b"\x88\x00"), Done(ref)]
    assert [bytes(c[3:5]) for c in calls] == [b"\x00\x08", b"\x00\x01"]  # PADDED, END_STREAM


def test_websocket_data_beyond_the_window_is_a_flow_control_error() -> None:
    pair, ref = open_fast_websocket()
    pair.pump()
    big = frame(0x0, 0, 1, b"x" * 2**20)  # our SETTINGS_MAX_FRAME_SIZE
    wire = big * (DEFAULT_RECEIVE_WINDOW // 2**20) + frame(0x0, 0, 1, b"one too many")
    with pytest.raises(HTTPError) as info:
        pair.client.receive_data(wire)
    # Mint's reason: the error code of the GOAWAY, by name.
    assert info.value.reason[0] == "flow_control_error"
    assert "flow-control window" in info.value.reason[1]
    # What came within the window was handed out before the error; the stream failed.
    data = [r for r in info.value.responses if isinstance(r, Data)]
    assert sum(len(r.data) for r in data) == DEFAULT_RECEIVE_WINDOW
    failed = Error(ref, HTTPError(("flow_control_error", info.value.reason[1])))
    assert info.value.responses[-1] == failed
    events = pair.server.receive_data(pair.client.data_to_send())
    (goaway,) = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    assert goaway.error_code == h2.errors.ErrorCodes.FLOW_CONTROL_ERROR
    assert not pair.client.is_open("read")


def header_block_frames(pair: Pair, stream_id: int, headers: Any, *, end_stream: bool) -> bytes:
    """A header block as HEADERS + CONTINUATION frames of 256 KiB, literal strings:
    h2's Huffman encoder takes seconds per 100 KB (quadratic), its decoder milliseconds."""
    block = pair.server.encoder.encode(headers, huffman=False)
    pieces = [block[i : i + 2**18] for i in range(0, len(block), 2**18)]
    out = b""
    for i, piece in enumerate(pieces):
        end_headers = 0x4 if i == len(pieces) - 1 else 0
        kind, flags = (0x1, 0x1 if end_stream else 0) if i == 0 else (0x9, 0)
        out += frame(kind, flags | end_headers, stream_id, piece)
    return out


def test_header_lists_up_to_1_mib_are_read_as_on_http1() -> None:
    # SETTINGS_MAX_HEADER_LIST_SIZE says 1 MiB, HTTP/1.1's bound on a head (h2's own
    # default, 64 KiB, failed the connection on a 70 KB cookie).
    pair = Pair()
    assert pair.server.remote_settings.max_header_list_size == 2**20
    ref = pair.client.request("GET", "/", [], None)
    pair.pump()
    # 32 octets of RFC 7541 4.1 overhead per field: 1 MiB in all for these three.
    big = b"a" * (2**20 - 32 * 2 - len(b":status200x-big") - 2**19)
    head = header_block_frames(pair, 1, [(b":status", b"200"), (b"x-big", big)], end_stream=False)
    trailer = [(b"x-trailer", b"b" * 2**19)]
    got = pair.client.receive_data(head + header_block_frames(pair, 1, trailer, end_stream=True))
    assert got[:2] == [Status(ref, 200), Headers(ref, [("x-big", big.decode())])]
    assert got[2:] == [Headers(ref, [("x-trailer", "b" * 2**19)]), Done(ref)]
    assert pair.client.is_open("read_write")


def test_a_header_list_over_1_mib_is_enhance_your_calm() -> None:
    pair = Pair()
    pair.client.request("GET", "/", [], None)
    pair.pump()
    headers = [(b":status", b"200"), (b"x-big", b"a" * 2**20)]
    with pytest.raises(HTTPError) as info:
        pair.client.receive_data(header_block_frames(pair, 1, headers, end_stream=False))
    assert info.value.reason[0] == "enhance_your_calm"
    assert "1048576" in info.value.reason[1]


def test_a_header_block_is_bounded_while_its_continuations_come() -> None:
    # h2 holds a block's frames until END_HEADERS and bounds only their count (64):
    # 64 CONTINUATIONs of 1 MiB were held, 64 MiB, for a list bound to 1 MiB.
    pair = Pair()
    ref = pair.client.request("GET", "/", [], None)
    pair.pump()
    wire = frame(0x1, 0, 1, b"\x00" * 2**20)  # HEADERS, no END_HEADERS
    for _ in range(4):
        wire += frame(0x9, 0, 1, b"\x00" * 2**20)  # CONTINUATION, no END_HEADERS
    assert pair.client.receive_data(wire) == []  # (5 MiB: the bound)
    with pytest.raises(HTTPError) as info:
        pair.client.receive_data(frame(0x9, 0, 1, b"\x00"))
    assert info.value.reason == (
        "enhance_your_calm",
        f"a header block of more than {5 * 2**20} bytes",
    )
    assert info.value.responses == [
        Error(ref, HTTPError(info.value.reason)),
    ]
    [goaway] = [
        e
        for e in pair.server.receive_data(pair.client.data_to_send())
        if isinstance(e, h2.events.ConnectionTerminated)
    ]
    assert goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert not pair.client.is_open("read")


def test_websocket_data_larger_than_our_max_frame_size_is_refused() -> None:
    pair, ref = open_fast_websocket()
    too_large = frame(0x0, 0, 1, b"x" * (2**20 + 1))  # SETTINGS_MAX_FRAME_SIZE is 2**20
    with pytest.raises(HTTPError) as info:
        pair.client.receive_data(frame(0x0, 0, 1, b"ok") + too_large)
    assert info.value.reason[0] == "frame_size_error"
    assert info.value.responses[0] == Data(ref, b"ok")
    assert not any(isinstance(r, Data) and len(r.data) > 2 for r in info.value.responses)


def test_a_frame_header_over_our_max_frame_size_is_refused_at_once() -> None:
    # RFC 9113 4.2: the header alone says it; waiting for the payload (as h2 would)
    # buffered up to 16 MiB and left the reader waiting.
    pair, ref = open_fast_websocket()
    header = frame(0x0, 0, 1, b"")[3:]  # DATA on stream 1, then a 16 MiB - 1 length
    with pytest.raises(HTTPError) as info:
        pair.client.receive_data(frame(0x0, 0, 1, b"ok") + b"\xff\xff\xff" + header)
    assert info.value.reason[0] == "frame_size_error"
    assert "16777215" in info.value.reason[1]
    assert info.value.responses[0] == Data(ref, b"ok")
    events = pair.server.receive_data(pair.client.data_to_send())
    (goaway,) = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    assert goaway.error_code == h2.errors.ErrorCodes.FRAME_SIZE_ERROR
    assert not pair.client.is_open("read")


def test_an_http1_answer_to_prior_knowledge_is_refused_at_once() -> None:
    pair = Pair(send_settings=False)
    with pytest.raises(HTTPError) as info:
        pair.client.receive_data(b"HTTP/1.1 400 Bad Request\r\n")
    assert info.value.reason[0] == "frame_size_error"
    assert "HTTP/1.x" in info.value.reason[1]


def test_data_after_the_websockets_end_stream_is_refused_by_h2() -> None:
    pair, ref = open_fast_websocket()
    pair.server.send_data(1, b"bye", end_stream=True)
    assert pair.pump() == [Data(ref, b"bye"), Done(ref)]
    # RFC 9113 5.1: DATA on a half-closed (remote) stream is a stream error.
    assert pair.client.receive_data(frame(0x0, 0, 1, b"late")) == []
    (reset,) = pair.server.receive_data(pair.client.data_to_send())
    assert isinstance(reset, h2.events.StreamReset)
    assert reset.error_code == h2.errors.ErrorCodes.STREAM_CLOSED


def test_data_inside_a_header_block_is_a_protocol_error() -> None:
    pair, _ = open_fast_websocket()
    headers = frame(0x1, 0, 1, b"\x88")  # HEADERS without END_HEADERS
    data = frame(0x0, 0, 1, b"\x81\x00")
    with pytest.raises(HTTPError) as info:
        pair.client.receive_data(headers + data)
    assert info.value.reason[0] == "protocol_error"
    assert not any(isinstance(r, Data) for r in info.value.responses)


def test_websocket_with_content_length_is_left_to_h2() -> None:
    pair = Pair({SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})
    ref = pair.client.request("CONNECT", "/chat", [], STREAM, upgrade="websocket")
    pair.pump()
    pair.server.send_headers(1, [(b":status", b"200"), (b"content-length", b"5")])
    pair.server.send_data(1, b"abc")
    wire = pair.server.data_to_send() + frame(0x0, 0x1, 1, b"")  # END_STREAM at 3 of 5
    responses = pair.client.receive_data(wire)
    # h2 counted the bytes: the short body is the stream's error (RFC 9113 8.1.1).
    assert responses[2] == Data(ref, b"abc")
    (error,) = responses[3:]
    assert isinstance(error, Error) and error.ref == ref
    assert error.error.reason[0] == "protocol_error"


def test_websocket_window_updates_overflow_as_h2_says() -> None:
    pair, ref = open_fast_websocket()
    too_much = (2**31 - 1).to_bytes(4, "big")
    with pytest.raises(HTTPError) as info:
        pair.client.receive_data(frame(0x8, 0, 0, too_much))
    assert info.value.reason[0] == "flow_control_error"
    pair, ref = open_fast_websocket()
    responses = pair.client.receive_data(frame(0x8, 0, 1, too_much))  # a stream error
    # Mint's {:flow_control_error, "window size too big"}: the client reset it, not
    # the server (it was ("server_closed_request", ...)).
    assert responses == [Error(ref, HTTPError(("flow_control_error", "window size too big")))]
    assert pair.client.is_open("read_write")


def test_websocket_send_within_the_windows_and_in_order() -> None:
    pair, ref = open_fast_websocket({SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    body = ws_frame(2, os.urandom(70_000))
    close = ws_frame(8, b"\x03\xe8")
    pair.client.stream_request_body(ref, body)
    pair.client.stream_request_body(ref, close)  # ends the stream (RFC 8441 5.1)...
    pair.pump()
    assert pair.server_data(1) == body[:1000]  # the server's h2 checks every window
    pair.server.send_data(1, b"\x88\x02\x03\xe8", end_stream=True)  # ...once the peer's
    pair.pump()  # side ended, after the bytes queued
    assert not pair.server_events(h2.events.StreamEnded)
    assert pair.client.pending_bytes(ref) == len(body) + len(close) - 1000
    for step in (500, 20_000, 2**20):
        pair.server.increment_flow_control_window(step, stream_id=1)
        pair.server.increment_flow_control_window(step)
        pair.pump()
    assert pair.server_data(1) == body + close
    sizes = [len(e.data) for e in pair.server_events(h2.events.DataReceived)]
    assert max(sizes) <= 16_384
    ended = pair.server_events(h2.events.StreamEnded)
    assert [e.stream_id for e in ended] == [1]
    assert pair.client.pending_bytes() == 0


def test_received_data_repr_does_not_hexlify_the_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    import binascii

    pair = Pair()
    ref = pair.client.request("GET", "/", [], None)
    pair.pump()
    pair.respond(1, 200, b"x" * 10_000)

    real = binascii.hexlify

    def refuse(data: bytes, *args: Any) -> bytes:
        if len(data) > 100:  # a header block's few bytes may be, the payload not
            raise AssertionError("h2 hexlified a received DATA frame's payload")
        return real(data, *args)

    monkeypatch.setattr(binascii, "hexlify", refuse)
    assert pair.pump() == [Status(ref, 200), Headers(ref, []), Data(ref, b"x" * 10_000), Done(ref)]


def test_websocket_send_waits_for_the_connection_window() -> None:
    # The stream's window is large; the connection's starts at 65,535 (RFC 9113 6.9.2).
    pair, ref = open_fast_websocket({SettingCodes.INITIAL_WINDOW_SIZE: 2**20})
    body = ws_frame(2, os.urandom(100_000))
    pair.client.stream_request_body(ref, body)
    pair.pump()
    assert pair.server_data(1) == body[:65_535]
    for step in (1, 999, 1000):  # the server's h2 refuses a byte beyond any of them
        pair.server.increment_flow_control_window(step)
        pair.pump()
        assert pair.client.send_window() == 0
    assert pair.server_data(1) == body[: 65_535 + 2000]
    pair.server.increment_flow_control_window(2**20)
    pair.pump()
    assert pair.server_data(1) == body
    assert pair.client.send_window() == 2**20 + 65_535 + 2000 - len(body)


def test_a_request_whose_write_failed_is_forgotten() -> None:
    # The facade abandons a request whose HEADERS the socket would not take: it is
    # not counted, and nothing is reported for it.
    pair = Pair()
    kept = pair.client.request("GET", "/kept", [], None)
    pair.pump()
    lost = pair.client.request("GET", "/lost", [], None)
    pair.client.data_to_send()  # what the failed write took
    pair.client.abandon(lost)
    assert pair.client.open_request_count() == 1
    pair.respond(1, 200, b"ok")
    assert {r.ref for r in pair.pump()} == {kept}


def test_the_method_goes_out_as_given() -> None:
    # RFC 9110 9.1: case-sensitive, and Mint sends it as given; it was upper-cased.
    pair = Pair()
    pair.client.request("get", "/", [], None)
    pair.pump()
    assert pair.request_headers(1)[0] == (b":method", b"get")


def _frame_kinds(wire: bytes) -> list[tuple[int, int]]:
    """(type, stream id) of each frame in ``wire``."""
    out, pos = [], 0
    while pos + 9 <= len(wire):
        size = int.from_bytes(wire[pos : pos + 3], "big")
        out.append((wire[pos + 3], int.from_bytes(wire[pos + 5 : pos + 9], "big") & 0x7FFFFFFF))
        pos += 9 + size
    return out


def test_frames_in_flight_on_a_stream_we_reset_get_no_reset_each() -> None:
    # RFC 9113 5.1: ignored. h2 answered each DATA frame with a RST_STREAM of its own
    # (769 for a stream cancelled with 12 MiB in flight); the window still comes back.
    pair, ref = open_fast_websocket()
    pair.client.cancel(ref)
    first = pair.client.data_to_send()
    assert _frame_kinds(first).count((0x3, 1)) == 1
    late = b"".join(frame(0x0, 0, 1, b"x" * 16_384) for _ in range(20))
    assert pair.client.receive_data(late) == []
    assert (0x3, 1) not in _frame_kinds(pair.client.data_to_send())
    # A stream the server half-closed still gets its one RST_STREAM(STREAM_CLOSED).
    pair, ref = open_fast_websocket()
    pair.server.send_data(1, b"bye", end_stream=True)
    pair.pump()
    pair.client.receive_data(frame(0x0, 0, 1, b"late") * 3)
    assert _frame_kinds(pair.client.data_to_send()).count((0x3, 1)) == 1


def test_a_goaway_with_an_error_is_raised_once_after_its_frames() -> None:
    # Mint's {:server_closed_connection, error_code, debug_data}: the code and debug
    # data were never shown (the read gave [] and only the TCP close was seen).
    pair, ref = open_fast_websocket()
    pair.server.send_data(1, ws_frame(1, b"last words"))
    pair.server.close_connection(
        error_code=h2.errors.ErrorCodes.INTERNAL_ERROR, additional_data=b"oops", last_stream_id=1
    )
    with pytest.raises(HTTPError) as info:
        pair.pump()
    assert info.value.reason == ("server_closed_connection", "internal_error", b"oops")
    assert info.value.responses == [Data(ref, ws_frame(1, b"last words"))]
    assert pair.client.is_open("read") and not pair.client.is_open("write")
    assert pair.client.receive_data(frame(0x0, 0, 1, b"more")) == [Data(ref, b"more")]
    # A GOAWAY with NO_ERROR is no error.
    pair = Pair()
    pair.server.close_connection()
    assert pair.pump() == []


def test_a_header_block_hpack_cannot_decode_is_a_compression_error() -> None:
    # RFC 9113 4.3: COMPRESSION_ERROR, on the GOAWAY too (h2 said PROTOCOL_ERROR).
    pair = Pair()
    pair.client.request("GET", "/", [], None)
    pair.pump()
    with pytest.raises(HTTPError) as info:
        pair.client.receive_data(frame(0x1, 0x4 | 0x1, 1, b"\xfe"))  # index 126: none
    assert info.value.reason[0] == "compression_error"
    events = pair.server.receive_data(pair.client.data_to_send())
    (goaway,) = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    assert goaway.error_code == h2.errors.ErrorCodes.COMPRESSION_ERROR


def test_headers_over_the_servers_max_header_list_size_are_refused() -> None:
    # Mint's {:max_header_list_size_exceeded, size, max}, before anything is sent; the
    # server reset the stream (or, past h2's own bound, ended the connection).
    pair = Pair({SettingCodes.MAX_HEADER_LIST_SIZE: 1000})
    before = pair.client.data_to_send()
    with pytest.raises(HTTPError) as info:
        pair.client.request("GET", "/", [("x-token", "t" * 2000)], None)
    reason = info.value.reason
    assert reason[0] == "max_header_list_size_exceeded" and reason[2] == 1000
    assert reason[1] > 2000
    assert pair.client.data_to_send() == before == b""
    assert pair.client.open_request_count() == 0
    pair.client.request("GET", "/", [("x-token", "t" * 500)], None)
    pair.pump()
    assert pair.server_events(h2.events.RequestReceived)
