"""The examples run as scripts against real peers: they are documentation that must not rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest_h2 import h2_fault  # noqa: F401 - fixture

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("passive", [False, True])
def test_echo_client(ws_server: Any, passive: bool) -> None:
    url = f"ws://127.0.0.1:{ws_server.port}/echo"
    out = run(str(EXAMPLES / "echo_client.py"), url, *(["--passive"] if passive else []))
    assert "Text(data='hello world')" in out
    assert "Binary(data=b'\\x00\\x01\\x02')" in out
    assert "server's close: Close(code=1000" in out


def test_echo_client_over_http2(hypercorn_h2c: Any) -> None:
    url = f"ws://127.0.0.1:{hypercorn_h2c.port}/echo"
    out = run(str(EXAMPLES / "echo_client.py"), url, "--http2", "--passive")
    assert "Text(data='hello world')" in out


def test_http2_websocket(hypercorn_h2c: Any) -> None:
    out = run(
        str(EXAMPLES / "http2_websocket.py"),
        "127.0.0.1",
        str(hypercorn_h2c.port),
        "--path",
        "/echo",
    )
    assert "received: [Text(data='hello over HTTP/2')]" in out


@pytest.mark.node
def test_http2_websocket_without_extended_connect(node_h2c_no_connect: Any) -> None:
    out = run(str(EXAMPLES / "http2_websocket.py"), "127.0.0.1", str(node_h2c_no_connect.port))
    assert "did not enable extended CONNECT" in out
    assert "Status(" in out and "status=200" in out


def test_readme_walkthrough_runs_as_written(ws_server: Any) -> None:
    """The README's first example, run as it is printed (only the address and path
    changed to this test's server): documentation that must stay valid Python."""
    import re

    readme = (EXAMPLES.parent / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", readme, re.S)
    assert block is not None
    code = block.group(1)
    assert 'connect("http", "localhost", 9000)' in code
    assert 'upgrade("ws", conn, "/", [])' in code
    code = code.replace('"localhost", 9000', f'"127.0.0.1", {ws_server.port}')
    code = code.replace('upgrade("ws", conn, "/", [])', 'upgrade("ws", conn, "/echo", [])')
    run("-c", code + "\nprint('frames', frames)\n")


def _echo_client() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("echo_client", EXAMPLES / "echo_client.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


def test_echo_client_tells_a_reset_of_its_stream(h2_fault: Any) -> None:  # noqa: F811
    # regress23: an HTTP/2 stream reset comes as Error(ref) in the responses, which the
    # example's loop dropped: it waited out its timeout (and an END_STREAM's Done too).
    import mint
    from mint.websocket import Text

    example = _echo_client()
    peer = h2_fault()
    for passive in (True, False):
        session, _ = example.open_session(
            f"ws://127.0.0.1:{peer.port}/ws-reset", http2=True, passive=passive
        )
        session.send(Text("boom"))
        with pytest.raises(mint.HTTPError) as info:
            session.receive(timeout=3.0)
        assert info.value.reason == ("server_closed_request", "cancel")
        assert session.closed
        mint.http.close(session.conn)


def test_echo_client_hands_out_what_came_before_an_end(h2_fault: Any) -> None:  # noqa: F811
    # matrix15: on HTTP/2 the read that meets a reset also acknowledges the DATA it read,
    # so the end is raised with the last message in its .responses; the example's loop
    # dropped them (HTTP/1.1 returned the message, and raised on the next read).
    import time

    import mint
    from mint.websocket import Text

    example = _echo_client()
    peer = h2_fault()
    url = f"ws://127.0.0.1:{peer.port}/ws-last-words"
    for passive in (True, False):
        session, early = example.open_session(url, http2=True, passive=passive)
        assert early == []
        session.send(Text("last words"))
        time.sleep(0.5)  # the echo and the reset are both there before the read
        assert session.receive() == [Text("last words")]
        with pytest.raises(mint.TransportError) as info:
            session.receive()
        assert info.value.reason == "closed"
        mint.http.close(session.conn)
