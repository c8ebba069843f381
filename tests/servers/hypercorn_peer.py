"""Start ``hypercorn_main.py`` (hypercorn serving :mod:`asgi_app`) in a subprocess."""

from __future__ import annotations

import sys
from pathlib import Path

from .peer import Subprocess

LAUNCHER = Path(__file__).parent / "hypercorn_main.py"


def start_hypercorn(log_path: Path, *, certfile: str | None = None, keyfile: str | None = None):
    argv = [sys.executable, str(LAUNCHER)]
    if certfile is not None:
        argv += ["--certfile", certfile, "--keyfile", str(keyfile)]
    proc = Subprocess(argv, log_path=log_path, cwd=LAUNCHER.parent)
    try:
        proc.wait_ready()
    except BaseException:
        proc.stop()
        raise
    return proc
