"""The exceptions of mint, and the messages that explain their reasons.

Mint (Elixir) returns ``{:error, conn, reason}``; here the error is raised and the
connection to continue with rides along as ``.conn``. ``reason`` is what code
matches on: a snake_case ``str`` (Mint's atom) or a tuple whose first item is one
(Mint's tagged tuple)::

    MintError                  .reason, .conn, .websocket, .responses
    ├── TransportError         socket and TLS: "closed", "timeout", ("tls_alert", ...)
    ├── HTTPError              HTTP level: ("invalid_response", ...), "closed"
    ├── WebSocketError         WebSocket level, with .close_code for inline decode errors
    └── UpgradeFailureError    the server answered the upgrade with another status

The human-readable message of every reason comes from one table
(``_MESSAGES``), so ``str(error)`` is always an explanation, never a bare atom.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from mint.http._conn import Conn
    from mint.http._types import Response
    from mint.websocket._frame import WebSocket

Reason: TypeAlias = str | tuple[Any, ...]

# RFC 6455 7.4.1: the status codes a failing endpoint sends.
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_INVALID_DATA = 1007
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_INTERNAL_ERROR = 1011

_MESSAGES: dict[str, str] = {
    # transport
    "closed": "the connection is closed",
    "timeout": "the operation timed out",
    "econnrefused": "the connection was refused by the peer",
    "econnreset": "the connection was reset by the peer",
    "ehostunreach": "the host is unreachable",
    "nxdomain": "the host name could not be resolved",
    "tls_alert": "the TLS handshake failed",
    "tls_certificate": "the peer's TLS certificate could not be verified",
    "tls_error": "a TLS error occurred",
    "os_error": "an operating-system error occurred on the socket",
    "tls_unsupported": "TLS is not available in this Python build",
    # http
    "invalid_response": "the server sent an invalid HTTP response",
    "invalid_request": "the request could not be sent as given",
    "request_body_is_streaming": "a request body is still being streamed on this connection",
    "unknown_request_to_stream": "the request reference does not name a streaming request",
    "request_body_not_streaming": "the request was not started with a streamed body",
    # As Mint: a request on a closed connection is HTTPError :closed; after the
    # server's GOAWAY (HTTP/2), :closed_for_writing.
    "closed_for_writing": "the server sent GOAWAY: the connection takes no new requests",
    "invalid_scheme": "the scheme must be 'http' or 'https'",
    "invalid_mode": "the mode must be 'active' or 'passive'",
    "invalid_protocols": "protocols must be drawn from 'http1' and 'http2'",
    "invalid_transport_opts": "a transport option is not of the documented kind",
    "invalid_mailbox": "the mailbox must be an open mint.Mailbox",
    "invalid_conn": "not a connection, or not one of this flavour's (mint.http or mint.aio.http)",
    "invalid_host": "the host must be a non-empty str",
    "invalid_port": "the port must be an int from 1 to 65535",
    "invalid_hostname": "the hostname must be None or a non-empty str",
    "invalid_type": "is_open's type must be 'read', 'write' or 'read_write'",
    "invalid_byte_count": "recv's byte_count must be an int >= 0",
    "invalid_timeout": "a timeout must be None or a number of seconds",
    "not_passive": "recv needs a connection in passive mode",
    "read_under_way": "another task is reading this connection: one reader at a time",
    "not_active": "the connection is not in active mode",
    "unsupported_on_http1": "this operation needs an HTTP/2 connection",
    "protocol_error": "the peer violated the HTTP protocol",
    "unexpected_data": "the server sent data that answers no request",
    "server_closed_request": "the server reset the request's stream (RST_STREAM)",
    "unprocessed": "the server went away (GOAWAY) without processing the request: "
    "safe to retry on another connection",
    "send_queue_full": "the connection's send queue for flow-controlled data is full",
    "too_many_concurrent_requests": "the server's limit of concurrent streams is reached",
    "max_header_list_size_exceeded": "the request's headers exceed the server's "
    "SETTINGS_MAX_HEADER_LIST_SIZE",
    "server_closed_connection": "the server ended the connection with an error (GOAWAY)",
    "frame_size_error": "a frame's size is invalid (HTTP/2 FRAME_SIZE_ERROR)",
    "flow_control_error": "the peer broke HTTP/2 flow control (FLOW_CONTROL_ERROR)",
    # websocket
    "extended_connect_disabled": "the HTTP/2 server did not enable extended CONNECT (RFC 8441)",
    "invalid_nonce": "the server's Sec-WebSocket-Accept does not match the key sent",
    "invalid_status": "new takes the answer's status as an int",
    "invalid_headers": "new takes the answer's headers as (name, value) pairs",
    "invalid_scheme_ws": "the scheme must be 'ws' or 'wss'",
    "subprotocol_not_offered": "the server chose a subprotocol the client did not offer",
    "extension_not_negotiated": "an accepted extension was not offered or not as offered",
    "invalid_extension": "the extension could not be used as given",
    "invalid_extensions_header": "the server's Sec-WebSocket-Extensions header is malformed",
    "extension_error": "a negotiated extension raised an error of its own or gave a wrong result",
    "invalid_utf8": "a text frame or close reason is not valid UTF-8",
    "invalid_close_payload": "the close frame's code or payload is invalid",
    "unsupported_opcode": "the frame's opcode is reserved or unknown",
    "unexpected_continuation": "a continuation frame arrived without a message to continue",
    "incomplete_message": "a new data frame arrived before the fragmented message ended",
    "malformed_reserved": "reserved bits are set that no negotiated extension claims",
    "payload_too_large": "the frame or message exceeds the configured size limit",
    "masked_server_frame": "the server sent a masked frame (RFC 6455 5.1 forbids it)",
    "fragmented_control_frame": "a control frame is fragmented (RFC 6455 5.5 forbids it)",
    "control_frame_too_large": "a control frame's payload exceeds 125 bytes (RFC 6455 5.5)",
    "invalid_frame": "the frame cannot be encoded",
    "invalid_data": "decode takes bytes (a bytes-like object)",
    "invalid_websocket": "not a WebSocket (the value new, encode or decode returned)",
    "invalid_length": "the frame's payload length is not minimally encoded or too large",
    "compression_error": "compressed data could not be decoded (a permessage-deflate "
    "payload, or an HTTP/2 header block)",
    "not_upgraded": "the request reference does not name a WebSocket",
    "invalid_limit": "max_frame_size and max_message_size must be None or an int >= 0",
    "enhance_your_calm": "the peer flooded the connection with frames to answer while "
    "taking none of the answers (RFC 9113 10.5)",
    # upgrade failure
    "upgrade_failure": "the server refused the WebSocket upgrade",
}


def describe(reason: Reason) -> str:
    """Return the message for ``reason``, with the tagged tuple's details appended."""
    if isinstance(reason, tuple):
        tag, details = (reason[0], reason[1:]) if reason else ("", ())
        base = _MESSAGES.get(str(tag), str(tag))
        if details:
            shown = ", ".join(_short(d) for d in details)
            return f"{base} ({shown})"
        return base
    message = _MESSAGES.get(reason)
    if message is None:
        return _errno_message(reason) or reason
    return message


def _errno_message(reason: str) -> str | None:
    """A socket error's reason is its POSIX name, as Mint's atoms (``"emfile"``): the
    system's own message for it."""
    code = getattr(errno, reason.upper(), None) if reason[:1] == "e" else None
    return f"{os.strerror(code)} ({reason})" if isinstance(code, int) else None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def reason_tag(reason: Reason) -> str:
    """The atom part of a reason: the string itself, or a tagged tuple's first item."""
    return str(reason[0]) if isinstance(reason, tuple) else reason


class MintError(Exception):
    """Root of every error mint raises or returns inline.

    Attributes:
        reason: what code matches on (``str`` or tagged ``tuple``).
        conn: the connection to continue with, where the call took one.
        websocket: the WebSocket to continue with, where the call took one.
        responses: responses parsed before the error, which are not lost.
    """

    reason: Reason
    conn: Conn | None
    websocket: WebSocket | None
    responses: list[Response]

    def __init__(
        self,
        reason: Reason,
        *,
        conn: Conn | None = None,
        websocket: WebSocket | None = None,
        responses: list[Response] | None = None,
        message: str | None = None,
    ) -> None:
        # ``message`` replaces the reason's standard text where one reason covers
        # several causes (the text then says which one).
        super().__init__(describe(reason) if message is None else message)
        self.reason = reason
        self.conn = conn
        self.websocket = websocket
        self.responses = responses if responses is not None else []

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason!r})"

    def __eq__(self, other: object) -> bool:
        # Inline decode errors sit in frame lists; comparing them by value keeps
        # ``frames == [Text("a"), WebSocketError(...)]`` assertions meaningful.
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, MintError)
        return self.reason == other.reason

    def __hash__(self) -> int:
        return hash((type(self).__name__, _hashable(self.reason)))


def _hashable(reason: Reason) -> object:
    try:
        hash(reason)
    except TypeError:
        return repr(reason)
    return reason


class TransportError(MintError):
    """A socket or TLS failure: the connection is usually unusable after it."""


class HTTPError(MintError):
    """The HTTP exchange failed: an invalid response, or a request the state forbids."""


class WebSocketError(MintError):
    """A WebSocket-level failure.

    ``close_code`` is set on the errors :func:`mint.websocket.decode` puts inline
    in place of a frame: the RFC 6455 7.4.1 code to fail the connection with.
    """

    close_code: int | None

    def __init__(
        self,
        reason: Reason,
        *,
        close_code: int | None = None,
        conn: Any = None,
        websocket: Any = None,
        responses: list[Any] | None = None,
        message: str | None = None,
    ) -> None:
        super().__init__(
            reason, conn=conn, websocket=websocket, responses=responses, message=message
        )
        self.close_code = close_code


class UpgradeFailureError(MintError):
    """The server answered the upgrade with a status that is not a WebSocket upgrade.

    ``reason == ("upgrade_failure", status_code)``; the answer's status and headers
    are kept so callers can, for example, follow a redirect or read a 401 challenge.
    """

    status_code: int
    headers: list[tuple[str, str]]

    def __init__(
        self,
        status_code: int,
        headers: list[tuple[str, str]],
        *,
        conn: Any = None,
    ) -> None:
        super().__init__(("upgrade_failure", status_code), conn=conn)
        self.status_code = status_code
        self.headers = headers

    def __reduce__(self) -> tuple[Any, ...]:
        # The default rebuilds from ``args`` (the message), which is not this
        # constructor's signature: pickle and copy would fail.
        return (type(self), (self.status_code, self.headers), self.__dict__)
