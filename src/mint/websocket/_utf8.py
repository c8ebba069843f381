"""Incremental, fail-fast UTF-8 decoding for text messages (RFC 6455 8.1, Autobahn 6.4.*).

A text message may arrive in fragments, and a large frame in many reads; RFC 6455
asks an endpoint to fail the connection as soon as the bytes seen so far can no
longer be the start of valid UTF-8. :func:`decode_part` decodes what is complete,
at C speed, and returns the incomplete tail (at most 3 bytes) to prepend to the next
part, so every byte is decoded exactly once.

``codecs.utf_8_decode(data, "strict", False)`` raises on any invalid byte and leaves
an incomplete tail unconsumed; the one thing it does not flag early is a surrogate
lead ``ED A0..BF`` in that tail (it is only invalid once the third byte arrives),
which is checked here.
"""

from __future__ import annotations

from codecs import utf_8_decode

__all__ = ["decode_part", "is_valid_tail"]


def is_valid_tail(tail: bytes) -> bool:
    """Whether ``tail`` (what ``utf_8_decode(..., False)`` left) can still become valid."""
    # ED A0..ED BF would encode U+D800..U+DFFF, surrogates (RFC 3629 section 3).
    return not (len(tail) >= 2 and tail[0] == 0xED and tail[1] >= 0xA0)


def decode_part(tail: bytes, part: bytes | memoryview) -> tuple[str, bytes]:
    """Decode ``tail + part`` as far as it is complete.

    Args:
        tail: the incomplete sequence left by the previous call (``b""`` at first).
        part: the next bytes of the message.

    Returns:
        ``(text, new_tail)``: the decoded text and the incomplete sequence to keep.

    Raises:
        UnicodeDecodeError: the bytes can no longer be valid UTF-8.
    """
    data = tail + part if tail else part
    text, used = utf_8_decode(data, "strict", False)
    if used == len(data):
        return text, b""
    rest = bytes(data[used:])
    if not is_valid_tail(rest):
        raise UnicodeDecodeError("utf-8", rest, 0, len(rest), "invalid continuation byte")
    return text, rest
