"""The contract's loops type-check under ``mypy --strict`` as API.md writes them."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

# API.md's receive loop, sync and asyncio: `stream` returns (conn, responses) or
# mint.UNKNOWN, and `is mint.UNKNOWN` must narrow the union (it did not while UNKNOWN
# was a plain object: "_Unknown" object is not iterable).
LOOPS = """
import mint
import mint.aio
import mint.aio.websocket
import mint.websocket
from mint.http import Data


def loop(conn: mint.http.Conn) -> bytes:
    got = b""
    while True:
        result = mint.websocket.stream(conn, mint.receive())
        if result is mint.UNKNOWN:
            continue
        conn, responses = result
        for response in responses:
            if isinstance(response, Data):
                got += response.data
                return got


async def aloop(conn: mint.http.Conn) -> int:
    result = await mint.aio.websocket.stream(conn, await mint.aio.receive())
    if result is not mint.UNKNOWN:
        conn, responses = result
        return len(responses)
    return 0
"""


def test_the_receive_loop_narrows_on_unknown(tmp_path: Path) -> None:
    snippet = tmp_path / "loop.py"
    snippet.write_text(textwrap.dedent(LOOPS))
    out, err, status = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(snippet)]
    )
    assert status == 0, out + err


def test_unknown_reads_as_itself() -> None:
    # (an Enum member's str() is "_Unknown.UNKNOWN": logs and f-strings changed)
    import mint

    assert str(mint.UNKNOWN) == repr(mint.UNKNOWN) == f"{mint.UNKNOWN}" == "mint.UNKNOWN"
