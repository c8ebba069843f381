"""``mint.aio``: the same functional, process-less API for asyncio programs.

``mint.aio.http`` and ``mint.aio.websocket`` have the names, arguments and results of
``mint.http`` and ``mint.websocket``; what can wait on the network is a coroutine.
Values, errors, ``new``, ``encode`` and ``decode`` are the very same objects. Active
connections deliver to the running loop's mailbox (:func:`mailbox`), fed by the loop::

    conn = await mint.aio.http.connect("http", "localhost", 9000)
    conn, ref = await mint.aio.websocket.upgrade("ws", conn, "/", [])
    conn, responses = await mint.aio.websocket.stream(conn, await mint.aio.receive())

Nothing runs in the background: no task, no thread; the loop reads active sockets
into the mailbox through ``add_reader`` callbacks.
"""

from mint.aio import http, websocket
from mint.aio._mailbox import mailbox, receive

__all__ = ["http", "mailbox", "receive", "websocket"]
