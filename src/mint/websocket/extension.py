"""WebSocket extensions (RFC 6455 section 9), as in Mint's ``Mint.WebSocket.Extension``.

An extension is offered in the upgrade request, accepted (or not) by the server in
its ``Sec-WebSocket-Extensions`` answer, and then transforms every data message in
both directions. ``permessage-deflate`` (RFC 7692) is the one everybody uses; this
module is the contract it, and any third-party extension, is written against.

The life of an extension::

    # 1. the caller lists what to offer (a class, (cls, params), (cls, params, opts) or an instance)
    conn, ref = mint.websocket.upgrade("ws", conn, "/", [], extensions=[(MyExtension, ["x"])])
    # 2. offer: each instance's offer_params() is rendered into Sec-WebSocket-Extensions
    # 3. answer: for each extension the server accepted, offered.negotiate(server_params)
    #    returns the *initialized* extension (a new instance, Mint's init/2)
    conn, websocket = mint.websocket.new(conn, ref, status, headers)
    # 4. traffic: encode() calls ext.encode(RawMessage) in negotiated order on every
    #    outgoing data message; decode() reassembles an incoming message and calls
    #    ext.decode(RawMessage, limit) in reverse negotiated order.

Writing one: subclass :class:`Extension`, set the ``name`` token and the RSV bits the
extension uses, and override what you need::

    class Reverse(Extension):
        '''Reverses the bytes of every message (a toy; claims RSV3).'''

        name = "x-reverse"
        rsv_bits = RSV3

        def negotiate(self, params):
            if params:
                raise WebSocketError(("extension_not_negotiated", self.name, "no params expected"))
            return Reverse(self.params, self.opts)

        def encode(self, message):
            return RawMessage(message.opcode, message.rsv | RSV3, message.data[::-1])

        def decode(self, message, limit):
            if limit is not None and len(message.data) > limit:
                raise WebSocketError("payload_too_large", close_code=1009)
            return RawMessage(message.opcode, message.rsv & ~RSV3, message.data[::-1])

The rules the codec relies on:

- ``encode`` runs on every outgoing data message (text and binary, never control
  frames), after the extensions negotiated before it. It sets the RSV bits it uses
  on the message when it transformed it (RFC 6455 5.2), and may leave a message
  untouched (for example a short one not worth compressing).
- ``decode`` runs on a whole, reassembled incoming message: the message's ``rsv`` is
  taken from its first frame. It is called only when the message carries at least
  one of the extension's RSV bits, or for every message if the extension claims no
  RSV bits at all (``rsv_bits = 0``). It must clear the bits it handled; a bit left
  set after every extension ran is a protocol error (``malformed_reserved``).
- ``decode`` must not produce more than ``limit`` bytes (``None``: no limit): raise
  ``WebSocketError("payload_too_large", close_code=1009)`` instead, as soon as it
  knows (stop inflating; do not inflate first and measure afterwards).
- Errors are ``mint.WebSocketError`` with a ``close_code`` (1007 for data that cannot
  be decoded, 1002 for protocol violations, 1009 for too big). Raised in ``decode``
  they are put inline in the frames ``mint.websocket.decode`` returns; raised in
  ``encode`` they propagate to the caller. Never let a library exception (``zlib.error``)
  escape: map it and chain it (``raise WebSocketError(...) from exc``). What escapes
  anyway (an extension's bug), or a result that is not a ``RawMessage`` of bytes,
  becomes ``WebSocketError(("extension_error", name, detail))`` with the bug as its
  cause: inline with close code 1011 (internal error) from ``decode``, so the frames
  before it are still delivered; raised from ``encode`` and from ``new``
  (``negotiate``), with ``.websocket`` or ``.conn`` as any other error there.
- When ``encode`` raises (in any extension of the chain), every extension whose
  ``encode`` ran for that message is told with ``encode_aborted()``: the message is not
  sent, and state an extension keeps across messages must not remember it.
- ``WebSocket`` values are immutable, but an extension may keep mutable state of its
  own (a zlib context) on the instance ``negotiate`` returned: that instance belongs
  to one connection. ``negotiate`` must therefore return a new instance, never
  ``self`` (the offered instance may be reused for other connections).
- Text messages are checked for valid UTF-8 after the extensions decoded them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from mint.errors import WebSocketError

__all__ = ["RSV1", "RSV2", "RSV3", "Extension", "RawMessage"]

# RFC 6455 5.2: the reserved bits, as they sit in the first header byte.
RSV1 = 0x40
RSV2 = 0x20
RSV3 = 0x10
_ALL_RSV = RSV1 | RSV2 | RSV3


@dataclass(frozen=True, slots=True, init=False)
class RawMessage:
    """A whole data message as extensions see it.

    Attributes:
        opcode: 1 for text, 2 for binary.
        rsv: the RSV bits of the message (of its first frame), as in the header
            byte: ``RSV1`` 0x40, ``RSV2`` 0x20, ``RSV3`` 0x10.
        data: the payload, unmasked; for text, UTF-8 bytes (possibly not yet valid
            before the extensions decoded it).
    """

    opcode: int
    rsv: int
    data: bytes

    def __init__(self, opcode: int, rsv: int, data: bytes) -> None:
        # Two are built per message an extension handles (in, out): set through the
        # slot descriptors, at about two thirds of the cost of the frozen dataclass's
        # __init__, which goes through object.__setattr__ per field (as in
        # mint.websocket._frames).
        _set_opcode(self, opcode)
        _set_rsv(self, rsv)
        _set_data(self, data)


_set_opcode = cast(Any, RawMessage.__dict__["opcode"]).__set__
_set_rsv = cast(Any, RawMessage.__dict__["rsv"]).__set__
_set_data = cast(Any, RawMessage.__dict__["data"]).__set__


# RFC 7230 3.2.6: token characters (RFC 6455 9.1 uses them for names and values).
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def is_token(text: str) -> bool:
    """Whether ``text`` is a non-empty RFC 7230 token."""
    return bool(text) and all(c in _TOKEN_CHARS for c in text)


class Extension:
    """Base class of WebSocket extensions (Mint's ``Mint.WebSocket.Extension``).

    Subclasses set :attr:`name` and :attr:`rsv_bits` and override :meth:`negotiate`,
    :meth:`encode` and :meth:`decode` as needed; see the module docstring.

    Attributes:
        name: the extension token, e.g. ``"permessage-deflate"``.
        rsv_bits: the RSV bits it claims, as in the header byte (``RSV1`` 0x40,
            ``RSV2`` 0x20, ``RSV3`` 0x10); ``0`` if it uses none.
        params: what the caller asked to offer: names and ``(name, value)`` pairs.
        opts: local options that are not negotiated (e.g. a compression level).
        accepted_params: the parameters of the server's answer, set on the instance
            :meth:`negotiate` returns by the default implementation.
        state: free for subclasses (Mint's ``state`` field); each connection gets a
            deep copy of the offered instance's (see :meth:`negotiate`).
    """

    name: ClassVar[str]
    rsv_bits: ClassVar[int] = 0

    params: list[str | tuple[str, str | int]]
    opts: dict[str, Any]
    accepted_params: list[tuple[str, str | None]]
    state: Any

    def __init__(
        self,
        params: Sequence[str | tuple[str, str | int]] = (),
        opts: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(params, str | bytes) or not isinstance(params, Sequence):
            raise WebSocketError(("invalid_extension", params))
        self.params = list(params)
        self.opts = dict(opts) if opts is not None else {}
        self.accepted_params = []
        self.state = None

    def offer_params(self) -> list[tuple[str, str | None]]:
        """The parameters to offer in ``Sec-WebSocket-Extensions``.

        The default renders :attr:`params`: a name ``"x"`` becomes ``("x", None)``,
        a pair ``("x", 12)`` becomes ``("x", "12")``. Whatever an override returns, each
        name and value must be a token (RFC 6455 9.1): ``upgrade`` refuses anything else
        with ``("invalid_extension", item)`` before a byte is written.

        Raises:
            WebSocketError: ``("invalid_extension", param)`` for a malformed item.
        """
        rendered: list[tuple[str, str | None]] = []
        for param in self.params:
            if isinstance(param, str) and is_token(param):
                rendered.append((param, None))
            elif (
                isinstance(param, tuple)
                and len(param) == 2
                and isinstance(param[0], str)
                and is_token(param[0])
                and isinstance(param[1], str | int)
                and not isinstance(param[1], bool)
            ):
                rendered.append((param[0], str(param[1])))
            else:
                raise WebSocketError(("invalid_extension", param))
        return rendered

    def negotiate(self, params: list[tuple[str, str | None]]) -> Extension:
        """Validate the server's answer and return the initialized extension (Mint's ``init/2``).

        Args:
            params: the parameters the server answered with, names lower-cased,
                values unquoted (``None`` for a bare name).

        Returns:
            A new instance (never ``self``) ready to encode and decode messages for
            one connection. The default copies ``self`` (its own ``__init__`` and what
            was set on it after, a hook, carry over), with copies of :attr:`params`
            and :attr:`opts` and a deep copy of :attr:`state` (where it refers to the
            offered instance, to the new one), and records ``params`` as
            :attr:`accepted_params`. :attr:`state` is the connection's own so: a
            shallow copy shared what ``__init__`` put there (a counter, a buffer) with
            the offered instance and every other connection negotiated from it. A
            state that cannot be deep-copied (a lock) is shared as it is. Anything
            else kept per connection is an override's to set up.

        Raises:
            WebSocketError: ``("extension_not_negotiated", name, detail)`` when the
                answer is not acceptable.
        """
        accepted = copy.copy(self)
        accepted.params = list(self.params)
        accepted.opts = dict(self.opts)
        try:
            # (the offered instance, where state refers to it, is the accepted one)
            accepted.state = copy.deepcopy(self.state, {id(self): accepted})
        except Exception:  # (deepcopy fails in many ways, pickling's among them)
            pass  # (a lock, a socket, a ctypes pointer: shared, as the caller made it)
        accepted.accepted_params = list(params)
        return accepted

    def encode(self, message: RawMessage) -> RawMessage:
        """Transform an outgoing data message; the default returns it unchanged."""
        return message

    def encode_aborted(self) -> None:
        """The message the last :meth:`encode` call was given will not be sent.

        Called on every extension whose ``encode`` ran for a message (the one that
        failed included) when an extension in the chain raised: the caller goes on with
        the WebSocket the error carries, so an extension that keeps state across
        messages must forget what that call recorded (permessage-deflate starts a new
        compression context: a message the peer never received must not be referred
        back to). The default does nothing.
        """

    def decode(self, message: RawMessage, limit: int | None) -> RawMessage:
        """Transform an incoming data message; the default returns it unchanged.

        Args:
            message: the whole message, with the RSV bits of its first frame.
            limit: the most bytes the result may hold (``None``: unlimited).

        Raises:
            WebSocketError: inline in ``decode``'s result; ``"payload_too_large"``
                (close code 1009) rather than producing more than ``limit`` bytes.
        """
        return message

    def __repr__(self) -> str:
        name = getattr(type(self), "name", "?")
        return f"<{type(self).__name__} {name!r} params={self.params!r}>"
