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


# What the types promise a caller under --strict: the values an error carries to
# continue with (they were Any, so `return exc.conn` failed --warn-return-any and
# `mint.http.close(exc.websocket)` passed), the fixed strings (a typo in a mode was
# caught only at run time), and the buffers `decode` takes (bytearray was refused).
PROMISES = """
import socket
from typing import Literal, assert_type

import mint
import mint.aio.http
import mint.aio.websocket
import mint.http
import mint.websocket
from mint.http import EOF, STREAM, Conn, Ref, Response
from mint.websocket import WebSocket


def sync(conn: Conn, ref: Ref, ws: WebSocket, buf: bytearray, view: memoryview) -> Conn:
    assert_type(mint.http.protocol(conn), Literal["http1", "http2"])
    conn = mint.http.set_mode(conn, "passive")
    conn, ref = mint.http.request(conn, "POST", "/", [], STREAM)
    conn = mint.http.stream_request_body(conn, ref, [b"frame1", [b"frame2", 13, 10]])
    conn = mint.http.stream_request_body(conn, ref, (EOF, [("x-sum", "1")]))
    conn, ref = mint.websocket.upgrade("wss", conn, "/", [])
    ws, frames = mint.websocket.decode(ws, buf)
    ws, frames = mint.websocket.decode(ws, view)
    message = mint.receive(timeout=1.0)
    if isinstance(message, mint.SocketData | mint.SocketClosed | mint.SocketError):
        assert_type(message.socket, socket.socket)
    try:
        conn, _ = mint.http.recv(conn, 0, 1.0)
    except mint.MintError as exc:
        assert_type(exc.conn, Conn | None)
        assert_type(exc.websocket, WebSocket | None)
        assert_type(exc.responses, list[Response])
        if exc.conn is not None:
            return exc.conn
    return conn


async def aio(conn: Conn) -> Conn:
    conn = await mint.aio.http.connect("https", "example.com", 443, mode="passive")
    assert_type(mint.aio.http.protocol(conn), Literal["http1", "http2"])
    conn, _ = await mint.aio.websocket.upgrade("ws", conn, "/", [])
    return conn
"""

# Each line a mistake the types now catch (the comment is the line's tag).
MISTAKES = """
import mint.aio.http
import mint.http
import mint.websocket
from mint.http import Conn, Ref


async def wrong(conn: Conn, ref: Ref) -> None:
    mint.http.set_mode(conn, "actve")  # M1
    mint.http.connect("ws", "example.com", 80)  # M2
    mint.http.connect("http", "example.com", 80, mode="pasive")  # M3
    mint.websocket.upgrade("https", conn, "/", [])  # M4
    mint.http.is_open(conn, "readwrite")  # M5
    mint.http.stream_request_body(conn, ref, "text")  # M6
    mint.http.request(conn, "POST", "/", [], 42)  # M7
    mint.websocket.new(conn, ref, 101, [], mode="activ")  # M8
    await mint.aio.http.connect("http", "example.com", 80, protocols=("http3",))  # M9
    mint.http.close(mint.MintError("x").websocket)  # M10
"""


def _mypy(tmp_path: Path, name: str, source: str) -> tuple[str, int]:
    snippet = tmp_path / name
    snippet.write_text(textwrap.dedent(source))
    out, err, status = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(snippet)]
    )
    return out + err, status


def test_the_public_types_keep_their_promises(tmp_path: Path) -> None:
    out, status = _mypy(tmp_path, "promises.py", PROMISES)
    assert status == 0, out


def test_the_public_types_catch_the_usual_mistakes(tmp_path: Path) -> None:
    out, _ = _mypy(tmp_path, "mistakes.py", MISTAKES)
    lines = MISTAKES.splitlines()
    flagged = {
        lines[int(line.split(":")[1]) - 1].rsplit("# ", 1)[-1]
        for line in out.splitlines()
        if line.startswith(str(tmp_path)) and ": error:" in line
    }
    assert flagged == {f"M{n}" for n in range(1, 11)}, out


def test_type_hints_resolve_at_run_time() -> None:
    # get_type_hints looks names up in a function's globals: the asyncio C callables
    # have none (NameError "Conn"), and get_socket's `socket` was imported for the
    # checker only.
    import typing

    import mint
    import mint.aio.http
    import mint.aio.websocket
    import mint.http
    import mint.websocket

    checked = 0
    for module in (mint, mint.http, mint.websocket, mint.aio.http, mint.aio.websocket):
        for name in module.__all__:
            value = getattr(module, name)
            if callable(value) and not isinstance(value, type) and name != "Shorthand":
                typing.get_type_hints(value)
                checked += 1
    assert checked > 40
    hints = typing.get_type_hints(mint.aio.websocket.recv)
    assert hints["conn"] is mint.http.Conn
    assert typing.get_type_hints(mint.http.get_socket)["return"].__name__ == "socket"
