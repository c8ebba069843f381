"""``mint.http``: Mint.HTTP in Python, a functional, process-less HTTP/1.1 and HTTP/2 client.

Walkthrough (active mode, the thread's mailbox)::

    import mint
    conn = mint.http.connect("http", "localhost", 8080)
    conn, ref = mint.http.request(conn, "GET", "/", [])
    while True:
        conn, responses = mint.http.stream(conn, mint.receive(timeout=5))
        ...  # Status(ref, 200), Headers(ref, [...]), Data(ref, b"..."), Done(ref)
"""

from mint.http._conn import (
    UNKNOWN,
    Conn,
    close,
    connect,
    controlling_process,
    get_socket,
    is_open,
    open_request_count,
    ping,
    protocol,
    recv,
    request,
    set_mode,
    stream,
    stream_request_body,
)
from mint.http._types import EOF, STREAM, Data, Done, Error, Headers, Pong, Ref, Response, Status

__all__ = [
    "EOF",
    "STREAM",
    "UNKNOWN",
    "Conn",
    "Data",
    "Done",
    "Error",
    "Headers",
    "Pong",
    "Ref",
    "Response",
    "Status",
    "close",
    "connect",
    "controlling_process",
    "get_socket",
    "is_open",
    "open_request_count",
    "ping",
    "protocol",
    "recv",
    "request",
    "set_mode",
    "stream",
    "stream_request_body",
]
