"""Start the Node.js HTTP/2 peer (``node/server.js``), installing its npm packages if needed."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

from .peer import Subprocess

NODE_DIR = Path(__file__).parent / "node"
_install_lock = threading.Lock()


class NodeUnavailable(RuntimeError):
    pass


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise NodeUnavailable("node is not on PATH")
    return node


def ensure_node_modules() -> None:
    """``npm ci`` from the committed package-lock.json when ``node_modules/ws`` is missing."""
    with _install_lock:
        if (NODE_DIR / "node_modules" / "ws" / "package.json").exists():
            return
        npm = shutil.which("npm")
        if npm is None:
            raise NodeUnavailable(
                "npm is not on PATH and tests/servers/node/node_modules is missing"
            )
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"npm ci failed in {NODE_DIR}:\n{result.stdout}\n{result.stderr}")


def start_node(args: list[str], log_path: Path) -> Subprocess:
    node = node_binary()
    ensure_node_modules()
    proc = Subprocess([node, str(NODE_DIR / "server.js"), *args], log_path=log_path, cwd=NODE_DIR)
    try:
        proc.wait_ready()
    except BaseException:
        proc.stop()
        raise
    return proc
