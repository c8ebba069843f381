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
    controlling_process,
    get_socket,
    is_open,
    open_request_count,
    pending_bytes,
    protocol,
    send_window,
)
from mint.http._io import (
    cancel_request,
    close,
    connect,
    ping,
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
    "cancel_request",
    "close",
    "connect",
    "controlling_process",
    "get_socket",
    "is_open",
    "open_request_count",
    "pending_bytes",
    "ping",
    "protocol",
    "recv",
    "request",
    "send_window",
    "set_mode",
    "stream",
    "stream_request_body",
]
