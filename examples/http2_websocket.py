"""The seed's "HTTP/2 Support" section as a script: a WebSocket on one HTTP/2 stream.

    python examples/http2_websocket.py localhost 8080            # h2c (prior knowledge)
    python examples/http2_websocket.py localhost 8443 --tls --cafile ca.pem

If the server did not enable extended CONNECT (RFC 8441 SETTINGS_ENABLE_CONNECT_PROTOCOL),
``upgrade`` raises ``WebSocketError("extended_connect_disabled")``; the connection in
``.conn`` still serves ordinary requests, which this script then shows.
"""

from __future__ import annotations

import argparse

import mint
from mint.http import Data, Done, Headers, Status
from mint.websocket import Close, Text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--cafile")
    parser.add_argument("--path", default="/")
    args = parser.parse_args()

    conn = mint.http.connect(
        "https" if args.tls else "http",
        args.host,
        args.port,
        protocols=("http2",),
        mode="passive",
        transport_opts={"cafile": args.cafile} if args.cafile else None,
    )
    assert mint.http.protocol(conn) == "http2"
    try:
        conn, ref = mint.websocket.upgrade("wss" if args.tls else "ws", conn, args.path, [])
    except mint.WebSocketError as error:
        if error.reason != "extended_connect_disabled":
            raise
        print("the server did not enable extended CONNECT; a plain GET still works:")
        assert error.conn is not None  # (upgrade's errors carry the connection)
        conn, ref = mint.http.request(error.conn, "GET", args.path, [])
        done = False
        while not done:
            conn, responses = mint.http.recv(conn, 0, 5)
            for response in responses:
                print("  ", response)
                done = done or response == Done(ref)
        mint.http.close(conn)
        return

    status, headers = None, None
    early = b""  # WebSocket bytes read with the answer: decoded after new()
    while headers is None:  # on HTTP/2 a 2xx answer has no Done: the stream stays open
        conn, responses = mint.websocket.recv(conn, 0, 5)
        for response in responses:
            match response:
                case Status(ref=r, status=s) if r == ref:
                    status = s
                case Headers(ref=r, headers=h) if r == ref:
                    headers = h
                case Data(ref=r, data=d) if r == ref:
                    early += d
    assert status is not None
    conn, websocket = mint.websocket.new(conn, ref, status, headers, mode="passive")
    websocket, frames = mint.websocket.decode(websocket, early)

    websocket, data = mint.websocket.encode(websocket, Text("hello over HTTP/2"))
    conn = mint.websocket.stream_request_body(conn, ref, data)
    while not any(isinstance(f, Text) for f in frames):
        conn, responses = mint.websocket.recv(conn, 0, 5)
        for response in responses:
            if isinstance(response, Data) and response.ref == ref:
                websocket, more = mint.websocket.decode(websocket, response.data)
                frames += more
    print("received:", frames)

    # The Close ends the stream once the server has answered and ended its side;
    # reset the stream if the server never ends it.
    websocket, data = mint.websocket.encode(websocket, Close(1000))
    conn = mint.websocket.stream_request_body(conn, ref, data)
    try:
        while True:
            conn, responses = mint.websocket.recv(conn, 0, 2)
            if any(isinstance(r, Done | mint.http.Error) and r.ref == ref for r in responses):
                break
    except mint.TransportError:
        conn = mint.websocket.cancel(conn, ref)
    mint.http.close(conn)


if __name__ == "__main__":
    main()
