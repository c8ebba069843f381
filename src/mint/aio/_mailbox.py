"""The running loop's default mailbox: where ``mint.aio.http.connect`` delivers by default.

``mint.mailbox()`` is per thread; an event loop is the asyncio counterpart of a
thread that owns connections, so ``mint.aio.mailbox()`` is per running loop (and
distinct from the thread's). The loop feeds it: each active socket has a loop
reader that reads and queues what arrives (see :meth:`mint.Mailbox.areceive`).
"""

from __future__ import annotations

import asyncio
import weakref

from mint.mailbox import Mailbox

_boxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Mailbox] = weakref.WeakKeyDictionary()


def mailbox() -> Mailbox:
    """The running event loop's default mailbox (created on first use).

    Raises:
        RuntimeError: no event loop is running in this thread.
    """
    loop = asyncio.get_running_loop()
    box = _boxes.get(loop)
    if box is None or box.closed:
        box = Mailbox()
        _boxes[loop] = box
    return box


async def receive(timeout: float | None = None) -> object:
    """The next message of the running loop's default mailbox (Elixir's ``receive``).

    Raises:
        TimeoutError: nothing arrived within ``timeout`` seconds.
    """
    return await mailbox().areceive(timeout)
