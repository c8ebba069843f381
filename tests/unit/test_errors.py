"""Errors: every reason raised anywhere in the source has a real message; the hierarchy holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import mint
from mint.errors import _MESSAGES, describe, reason_tag

SRC = Path(mint.__file__).parent
# Reasons appear as Error("reason") or Error(("reason", ...)) in the source.
RAISED = re.compile(r"(?:Error|Failure)\(\s*\(?\s*\"([a-z0-9_]+)\"")


def raised_reasons() -> set[str]:
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        found |= set(RAISED.findall(path.read_text()))
    return found


def test_the_source_raises_reasons() -> None:
    assert {"closed", "invalid_nonce", "payload_too_large"} <= raised_reasons()


@pytest.mark.parametrize("reason", sorted(raised_reasons()))
def test_every_raised_reason_has_a_message(reason: str) -> None:
    assert reason in _MESSAGES, f"add {reason!r} to mint.errors._MESSAGES"
    assert describe(reason) != reason


def test_tagged_reasons_show_their_details() -> None:
    message = describe(("invalid_utf8", b"\xff"))
    assert message.startswith(_MESSAGES["invalid_utf8"])
    assert "\\xff" in message
    assert reason_tag(("invalid_utf8", b"\xff")) == "invalid_utf8"
    assert reason_tag("closed") == "closed"


def test_hierarchy_and_attributes() -> None:
    for cls in (mint.TransportError, mint.HTTPError, mint.WebSocketError, mint.UpgradeFailureError):
        assert issubclass(cls, mint.MintError)
    error = mint.TransportError("closed", conn="c", responses=["r"])
    assert (error.reason, error.conn, error.responses) == ("closed", "c", ["r"])
    assert str(error) == _MESSAGES["closed"]
    failure = mint.UpgradeFailureError(403, [("server", "x")])
    assert failure.reason == ("upgrade_failure", 403)
    assert failure.status_code == 403 and failure.headers == [("server", "x")]
    inline = mint.WebSocketError("payload_too_large", close_code=1009)
    assert inline.close_code == 1009
    assert inline == mint.WebSocketError("payload_too_large", close_code=1009)
    assert inline != mint.WebSocketError("invalid_nonce")
