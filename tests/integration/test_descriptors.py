"""Out of file descriptors (EMFILE): every way in is a typed ``TransportError``, and
nothing is left open behind it.

Each case runs in a child process whose RLIMIT_NOFILE is lowered and whose descriptor
table is then filled: the test process's own limit stays as it is.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import asyncio, importlib, os, resource, socket, sys, threading
    import mint, mint.http, mint.aio.http

    flavour, what = sys.argv[1], sys.argv[2]
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    if flavour == "aio":
        loop = asyncio.new_event_loop()  # its own descriptors first

    def fill(free):
        held = []
        while True:
            try:
                held.append(os.open("/dev/null", os.O_RDONLY))
            except OSError:
                break
        for _ in range(free):
            os.close(held.pop())
        return held

    def attempt(retry=False):
        if what == "mailbox":
            return mint.Mailbox()
        if what == "h2":
            if retry:  # only the import needed descriptors: it works now
                return importlib.import_module("mint.http._http2")
            return mint.http.connect(
                "http", "127.0.0.1", port, protocols=("http2",), mode="passive"
            )
        if flavour == "sync":
            return mint.http.connect("http", "127.0.0.1", port, mode=sys.argv[3])
        return loop.run_until_complete(
            mint.aio.http.connect("http", "127.0.0.1", port, mode=sys.argv[3])
        )

    def sockets():
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
            except FileNotFoundError:  # the listing's own descriptor
                pass
        return count

    outcome = []

    def run():
        # "socket": no descriptor left for the socket; "mailbox": one for the socket,
        # none for the default mailbox this thread (or loop) has not made yet.
        # "h2": one for the socket, none for h2's modules, imported on first use.
        held = fill(0 if what in ("socket", "mailbox") else 1)
        try:
            attempt()
            outcome.append("no error")
        except mint.TransportError as exc:
            outcome.append(repr(exc.reason) + " " + str(exc))
        except BaseException as exc:
            outcome.append("RAW " + type(exc).__name__ + " " + str(exc))
        for fd in held:
            os.close(fd)
        # Nothing left behind: the descriptors are all free again, and the same call
        # works now.
        outcome.append(sockets())
        attempt(retry=True)
        outcome.append("then ok")

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    print(outcome)
    """
)


def run(*args: str) -> list[object]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("flavour", ["sync", "aio"])
@pytest.mark.parametrize("mode", ["active", "passive"])
def test_connect_without_a_descriptor_for_its_socket(flavour: str, mode: str) -> None:
    reason, sockets, then = run(flavour, "socket", mode)
    assert reason.startswith("'emfile' Too many open files"), reason
    # The listener, asyncio's self-pipe (socketpair) where there is a loop: nothing more.
    assert sockets == (3 if flavour == "aio" else 1)
    assert then == "then ok"


@pytest.mark.parametrize("flavour", ["sync", "aio"])
def test_connect_without_a_descriptor_for_its_default_mailbox(flavour: str) -> None:
    # The socket fits; the mailbox the connection would deliver to (made on first
    # use) does not. It raised a raw OSError, and the socket stayed open.
    reason, sockets, then = run(flavour, "connect", "active")
    assert reason.startswith("'emfile'"), reason
    assert sockets == (3 if flavour == "aio" else 1)
    assert then == "then ok"


def test_a_mailbox_without_descriptors() -> None:
    reason, sockets, then = run("sync", "mailbox", "active")
    assert reason.startswith("'emfile'"), reason
    assert sockets == 1
    assert then == "then ok"


def test_the_first_http2_connect_without_descriptors_for_its_modules() -> None:
    # The socket fits; h2's modules, imported at the first HTTP/2 connect, do not: a
    # raw OSError from the import.
    reason, sockets, then = run("sync", "h2", "passive")
    assert reason.startswith("'emfile'"), reason
    assert sockets == 1
    assert then == "then ok"
