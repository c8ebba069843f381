"""A small test-side client written with the public API only, as a user would write it.

It runs in either mode: ``active`` reads messages from a mailbox and hands them to
``stream`` (skipping ``UNKNOWN``); ``passive`` calls ``recv``. Tests use it to keep
the handshake loop out of every test body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import mint
from mint.http import Data, Done, Headers, Status


@dataclass
class Client:
    conn: Any
    mode: str
    mailbox: mint.Mailbox | None = None
    ref: Any = None
    websocket: Any = None
    early: list[Any] = field(default_factory=list)

    def responses(self, timeout: float = 15.0) -> list[Any]:
        """One step of input: the responses of one message (active) or one read (passive)."""
        if self.mode == "passive":
            self.conn, responses = mint.websocket.recv(self.conn, 0, timeout)
            return list(responses)
        assert self.mailbox is not None
        while True:
            result = mint.websocket.stream(self.conn, self.mailbox.receive(timeout=timeout))
            if result is not mint.UNKNOWN:
                self.conn, responses = result
                return list(responses)

    def send(self, frame: Any) -> None:
        self.websocket, data = mint.websocket.encode(self.websocket, frame)
        self.conn = mint.websocket.stream_request_body(self.conn, self.ref, data)

    def frames(self, count: int = 1, timeout: float = 15.0) -> list[Any]:
        """Read until ``count`` frames (or inline errors) were decoded.

        Frames decoded from the bytes that came with the handshake answer come first:
        a server that speaks right after the 101 may land in the same read.
        """
        out: list[Any] = self.early
        self.early = []
        while len(out) < count:
            for response in self.responses(timeout):
                if isinstance(response, Data) and response.ref == self.ref:
                    self.websocket, frames = mint.websocket.decode(self.websocket, response.data)
                    out += frames
        return out

    def close(self) -> None:
        self.conn = mint.http.close(self.conn)
        if self.mailbox is not None:
            self.mailbox.close()


def connect(
    peer: Any,
    *,
    mode: str = "active",
    protocols: tuple[str, ...] = ("http1",),
    cafile: str | None = None,
    **opts: Any,
) -> Client:
    mailbox = mint.Mailbox() if mode == "active" else None
    transport_opts = dict(opts.pop("transport_opts", {}))
    if cafile or getattr(peer, "cafile", None):
        transport_opts.setdefault("cafile", cafile or peer.cafile)
    conn = mint.http.connect(
        peer.scheme,
        getattr(peer, "server_hostname", None) or peer.host,
        peer.port,
        protocols=protocols,
        mode=mode,
        mailbox=mailbox,
        transport_opts=transport_opts,
        **opts,
    )
    return Client(conn, mode, mailbox)


def handshake(client: Client, timeout: float = 15.0) -> tuple[int, list[tuple[str, str]], bytes]:
    """Collect the upgrade's Status, Headers and early Data up to Done (HTTP/2: the headers)."""
    status, headers, early, done = None, [], b"", False
    http2 = mint.http.protocol(client.conn) == "http2"
    while not done:
        for response in client.responses(timeout):
            match response:
                case Status(ref=r, status=s) if r == client.ref:
                    status = s
                case Headers(ref=r, headers=h) if r == client.ref:
                    headers = h
                case Data(ref=r, data=d) if r == client.ref:
                    early += d
                case Done(ref=r) if r == client.ref:
                    done = True
        if http2 and status is not None and headers and 200 <= status < 300:
            done = True
    assert status is not None
    return status, headers, early


def open_websocket(
    peer: Any,
    path: str,
    *,
    mode: str = "active",
    extensions: Any = (),
    protocols: tuple[str, ...] = ("http1",),
    headers: Any = (),
    **new_opts: Any,
) -> Client:
    """Connect, upgrade, check the answer with ``new`` and decode any early bytes."""
    client = connect(peer, mode=mode, protocols=protocols)
    client.conn, client.ref = mint.websocket.upgrade(
        peer.ws_scheme, client.conn, path, list(headers), extensions=list(extensions)
    )
    status, headers, early = handshake(client)
    client.conn, client.websocket = mint.websocket.new(
        client.conn, client.ref, status, headers, mode=mode, **new_opts
    )
    if early:
        client.websocket, client.early = mint.websocket.decode(client.websocket, early)
    return client
