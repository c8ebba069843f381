"""Property tests of a WebSocket over HTTP/2 (hypothesis): ``Http2Session`` against an
``h2`` server connection, in memory.

Two WebSocket streams carry random traffic both ways while the server's bytes reach the
client cut at random places. Most of the DATA and WINDOW_UPDATE frames then go past
``h2`` (``_fast_data``, ``_fast_window_update``, ``_pump_fast``); padded DATA, PINGs and
SETTINGS go through it. Whatever the cuts:

- each stream's bytes arrive whole and in order, both ways, and the client's Close
  ends its stream after them (the server's ``h2`` refuses any DATA beyond its windows
  or after END_STREAM, so a client that overran them or reordered fails here);
- the server's view of our windows is whole again, but for what only ``h2`` read and
  has not given back yet (it gives bytes back at half a window), and never more.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
from h2.settings import SettingCodes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mint.http import STREAM, Data, Headers, Status
from mint.http._http2 import DEFAULT_RECEIVE_WINDOW, Http2Session

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# What the server does, in order: DATA on stream 1 or 3 (size, padding or none), a PING,
# a new INITIAL_WINDOW_SIZE for the client's sends; and what the client streams.
ACTION = st.one_of(
    st.tuples(
        st.just("data"),
        st.sampled_from([1, 3]),
        st.integers(0, 40_000),
        st.one_of(st.none(), st.integers(0, 255)),
    ),
    st.tuples(st.just("ping")),
    st.tuples(st.just("window"), st.integers(1_000, 200_000)),
    st.tuples(st.just("send"), st.sampled_from([1, 3]), st.integers(1, 50_000)),
)


def ws_frame(payload: bytes) -> bytes:
    """A masked binary client frame (RFC 6455 5.2), mask of zeros."""
    n = len(payload)
    head = b"\x82" + (
        bytes([0x80 | n])
        if n < 126
        else bytes([0x80 | 126]) + n.to_bytes(2, "big")
        if n < 1 << 16
        else bytes([0x80 | 127]) + n.to_bytes(8, "big")
    )
    return head + b"\x00\x00\x00\x00" + payload


class World:
    """The client session, the server, and what each side sent on each stream."""

    def __init__(self) -> None:
        self.client = Http2Session(scheme="http", host="example.com", port=80)
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.server = h2.connection.H2Connection(config=config)
        self.server.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                SettingCodes.ENABLE_CONNECT_PROTOCOL: 1,
                SettingCodes.INITIAL_WINDOW_SIZE: 30_000,  # small: the client's sends wait
                SettingCodes.MAX_CONCURRENT_STREAMS: 100,
            },
        )
        self.client.initiate()
        self.server.initiate_connection()
        self.refs: dict[int, Any] = {}
        self.got: dict[Any, list[bytes]] = {}
        self.server_got: dict[int, list[bytes]] = {1: [], 3: []}
        self.via_h2 = 0  # flow-controlled bytes only h2 read (padded DATA)
        self.ended: list[int] = []  # streams the client ended, as the server saw
        self.exchange(None)
        responses = []
        for sid, path in ((1, "/a"), (3, "/b")):
            ref = self.client.request("CONNECT", path, [], STREAM, upgrade="websocket")
            responses += self.exchange(None)
            self.server.send_headers(sid, [(b":status", b"200")])
            self.refs[sid] = ref
            self.got[ref] = []
        responses += self.exchange(None)
        assert [type(r) for r in responses] == [Status, Headers, Status, Headers]

    def exchange(self, cuts: list[int] | None) -> list[Any]:
        """Move bytes both ways until both sides are quiet, the server's cut at ``cuts``
        (fractions of each write, in thousandths) the first time round."""
        responses: list[Any] = []
        for _ in range(1_000):
            out = self.client.data_to_send()
            if out:
                for event in self.server.receive_data(out):
                    if isinstance(event, h2.events.StreamEnded):
                        self.ended.append(event.stream_id)
                    if isinstance(event, h2.events.DataReceived):
                        self.server_got[event.stream_id].append(event.data)
                        self.server.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
            back = self.server.data_to_send()
            if back:
                at = sorted({len(back) * c // 1000 for c in cuts or []} | {0, len(back)})
                cuts = None
                for start, stop in itertools.pairwise(at):
                    responses += self.client.receive_data(back[start:stop])
            if not out and not back:
                for r in responses:
                    if isinstance(r, Data):
                        self.got[r.ref].append(r.data)
                return responses
        raise AssertionError("the pair did not settle")


@SETTINGS
@given(actions=st.lists(ACTION, max_size=25), cuts=st.lists(st.integers(0, 1000), max_size=12))
def test_websocket_streams_over_h2_arrive_whole_and_windows_stay_right(
    actions: list[tuple[Any, ...]], cuts: list[int]
) -> None:
    world = World()
    server, client = world.server, world.client
    sent: dict[int, list[bytes]] = {1: [], 3: []}
    streamed: dict[int, list[bytes]] = {1: [], 3: []}
    for action in actions:
        if action[0] == "data":
            _, sid, size, pad = action
            payload = os.urandom(size)
            room = server.local_flow_control_window(sid)
            if size + (0 if pad is None else pad + 1) > min(room, 2**20):
                continue  # a real server waits for the window: not what is tested here
            server.send_data(sid, payload, pad_length=pad)
            sent[sid].append(payload)
            if pad is not None:
                world.via_h2 += size + pad + 1
        elif action[0] == "ping":
            server.ping(os.urandom(8))
        elif action[0] == "window":
            server.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: action[1]})
        else:
            _, sid, size = action
            frame = ws_frame(os.urandom(size))
            client.stream_request_body(world.refs[sid], frame)
            streamed[sid].append(frame)
        world.exchange(cuts)
    # The client closes both: its Close goes out with END_STREAM (h2's frame), after
    # everything it queued (our frames), once the server's windows open.
    close = b"\x88\x82\x00\x00\x00\x00\x03\xe8"
    for sid in (1, 3):
        client.stream_request_body(world.refs[sid], close)
        streamed[sid].append(close)
        server.increment_flow_control_window(2**20, stream_id=sid)
    server.increment_flow_control_window(2**24)
    world.exchange(None)
    assert sorted(world.ended) == [1, 3]
    for sid in (1, 3):
        assert b"".join(world.got[world.refs[sid]]) == b"".join(sent[sid])
        assert b"".join(world.server_got[sid]) == b"".join(streamed[sid])
        window = server.local_flow_control_window(sid)
        assert DEFAULT_RECEIVE_WINDOW - world.via_h2 <= window <= DEFAULT_RECEIVE_WINDOW
    assert client.pending_bytes() == 0
    assert (
        DEFAULT_RECEIVE_WINDOW - world.via_h2
        <= server.outbound_flow_control_window
        <= DEFAULT_RECEIVE_WINDOW
    )
