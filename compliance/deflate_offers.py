"""permessage-deflate offers made by the compliance drivers, per Autobahn case.

Autobahn's fuzzingserver decides what to accept: for 12.* and 13.1 it accepts any
permessage-deflate offer; for 13.2-13.7 it answers with ``client_no_context_takeover``
and/or ``client_max_window_bits=9|15``, which it only does when the client's offer
contains ``client_max_window_bits`` (autobahntestsuite/case/case12_x_x.py,
autobahn/websocket/compress_deflate.py ``PerMessageDeflateOffer.parse``).

The offers below are the ones Autobahn's own client uses for the same case groups
(``CLIENT_OFFERS`` of Case13_X_X: ``PerMessageDeflateOffer(requestNoContextTakeover,
requestMaxWindowBits)`` = ``client_no_context_takeover; client_max_window_bits`` plus
``server_no_context_takeover`` / ``server_max_window_bits=N``), except that the default offer
(12.*, 13.1 and every other case) is a plain ``client_max_window_bits`` so that context
takeover is exercised in both directions.

Each offer is a list of params in the form API.md takes for ``(PerMessageDeflate, params)``:
names and ``(name, value)`` pairs.  A case maps to a list of offers (13.7 offers three).
"""

from __future__ import annotations

Param = str | tuple[str, int]
Offer = list[Param]

DEFAULT: list[Offer] = [["client_max_window_bits"]]

_CLIENT = ["client_no_context_takeover", "client_max_window_bits"]

BY_GROUP: dict[str, list[Offer]] = {
    "13.1": DEFAULT,
    "13.2": [[*_CLIENT, "server_no_context_takeover"]],
    "13.3": [[*_CLIENT, ("server_max_window_bits", 9)]],
    "13.4": [[*_CLIENT, ("server_max_window_bits", 15)]],
    "13.5": [[*_CLIENT, "server_no_context_takeover", ("server_max_window_bits", 9)]],
    "13.6": [[*_CLIENT, "server_no_context_takeover", ("server_max_window_bits", 15)]],
    "13.7": [
        [*_CLIENT, "server_no_context_takeover", ("server_max_window_bits", 9)],
        [*_CLIENT, "server_no_context_takeover"],
        list(_CLIENT),
    ],
}


def offers_for(case_id: str | None) -> list[Offer]:
    """The permessage-deflate offers for an Autobahn case id such as ``"13.3.1"``."""
    if case_id:
        group = ".".join(case_id.split(".")[:2])
        if group in BY_GROUP:
            return BY_GROUP[group]
    return DEFAULT


def header_value(offers: list[Offer]) -> str:
    """The Sec-WebSocket-Extensions value for ``offers`` (for logs)."""
    out = []
    for offer in offers:
        parts = ["permessage-deflate"]
        for p in offer:
            parts.append(p if isinstance(p, str) else f"{p[0]}={p[1]}")
        out.append("; ".join(parts))
    return ", ".join(out)
