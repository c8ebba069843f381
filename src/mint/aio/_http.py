"""The ``mint.aio.http`` functions that do I/O: a thin call into a session plus one I/O step.

One source, two flavours: ``scripts/unasync.py`` generates the blocking
``mint/http/_io.py`` from ``mint/aio/_http.py`` (edit that one). The ``Conn`` value
and the functions that never wait live in ``mint/http/_conn.py``, shared by both.

Walkthrough (passive mode)::

    conn = await mint.aio.http.connect("https", "example.com", 443, mode="passive")
    conn, ref = await mint.aio.http.request(conn, "GET", "/", [])
    conn, responses = await mint.aio.http.recv(conn, 0, 5.0)   # [Status(ref, 200), ...]
    conn = await mint.aio.http.close(conn)

Every function takes the connection and returns the one to continue with, as Mint
does; errors are raised with ``.conn`` set to the connection to continue with.

Cancellation loses nothing: input is handed to the session only once it is read,
and responses computed by a call that is then cancelled while it writes (a
WINDOW_UPDATE, a PING ack, queued body bytes) are kept and returned first by the
next ``stream``/``recv`` on the connection. Bytes a cancelled write still owes the
peer are written in order before anything else (see ``mint.aio._transport``).

Backpressure: writing waits for the socket. On HTTP/2, body bytes beyond the peer's
flow-control windows are queued by the session; when more than
``WINDOW_HIGH_WATER`` bytes are queued (``None`` in the blocking flavour, which
leaves draining to the caller's next ``stream``/``recv``), ``stream_request_body``
and ``request`` read the connection, processing WINDOW_UPDATEs, until the queue is
under the mark again; the responses read meanwhile come out of the next
``stream``/``recv`` (an active connection gets an empty ``SocketData`` message for
them).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from mint._backend import ALPN_IDS, make_ssl_context, map_os_error, wait_timeout
from mint.aio._backend import CONNECTION_HIGH_WATER, WINDOW_HIGH_WATER
from mint.aio._mailbox import mailbox as _default_mailbox
from mint.aio._transport import AsyncTransport
from mint.errors import HTTPError, MintError, TransportError
from mint.http._conn import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_SETTINGS_TIMEOUT,
    UNKNOWN,
    Conn,
    _attach,
    _check_address,
    _check_open,
    _check_protocols,
    _check_recv_args,
    _check_transport_opts,
    _make_session,
    _put_on,
    _reset_now,
    _unbracketed,
    _Unknown,
    _watch_from,
    protocol,
)
from mint.http._types import (
    Chunk,
    HTTPScheme,
    IOData,
    Mode,
    ProtocolName,
    Ref,
    Response,
    _Marker,
    new_data,
)
from mint.mailbox import Mailbox, SocketClosed, SocketData, SocketError


def _check_flavour(conn: Conn) -> None:
    """``conn`` is a connection of this flavour (``mint.aio.http`` or ``mint.http``).

    One made by the other flavour went through: the event-loop one's writes, left
    unawaited, sent nothing while the request was counted as made, and the blocking
    one's broke with a raw ``TypeError`` once its bytes were out.

    Raises:
        HTTPError: ``("invalid_conn", why)``.
    """
    if getattr(conn, "_transport", None).__class__ is not AsyncTransport:
        why = f"not a connection of this flavour (blocking, or event loop): {conn!r}"
        raise HTTPError(("invalid_conn", why))


async def _flush(conn: Conn) -> None:
    data = conn._session.data_to_send()
    if data:
        await conn._transport.send(data)


async def _sent_or_abandoned(conn: Conn, ref: Ref) -> None:
    """Write a new request (``ref``); if the socket fails under the write, the request
    was never made: the session forgets it (Mint gives no ref for it either), so it
    is not counted and no ``Error`` comes later for a ref the caller never got."""
    try:
        await _flush(conn)
    except MintError as exc:
        raise _unmade(conn, ref, exc) from exc.__cause__
    except BaseException:
        _forsaken(conn, ref)
        raise


def _forsaken(conn: Conn, ref: Ref) -> None:
    """The call making ``ref`` was cancelled (a timeout, ``task.cancel``; in blocking
    code an interrupt) once its bytes were committed: they go out all the same (the
    transport keeps what a cancelled send holds, as HPACK's table already has them),
    and the server answers a request the caller got no ref for. As :func:`_unmade`
    does for a write timeout: on HTTP/2 the stream is reset (CANCEL) right behind
    its HEADERS, written without waiting (nothing of it is ever reported, and it is
    not counted); on HTTP/1.1, whose next answer would be taken for the next
    request's, the connection ends (its next read says ``"closed"``).

    Left as it was, the stream opened all the same: ``Status``/``Headers`` came for
    a ref nobody held, and ``open_request_count`` stayed one higher for good.
    """
    session = conn._session
    transport = conn._transport
    early = conn._private.pop("early", None)
    if session.protocol == "http2":
        _reset_now(conn, ref)
        if early:
            early = [r for r in early if getattr(r, "ref", None) is not ref]
    else:
        session.abandon(ref)
        if not transport.closed and _held_by_caller(conn):
            # The caller holds a message of the connection: the answers in it come
            # before anything read now (read past it, they were lost, or taken for
            # the wrong requests'). The end waits for it: the connection takes no
            # more requests, and the read of the last message held says the end, as
            # below, after the answers (_process, "ending"). The mailbox reads no more
            # of it meanwhile (what it queued is kept, in order): a message given out
            # later would count as held too. The empty message posted behind its
            # queue says the end if the holder is gone (see _end_when_told).
            session.stop_requests()
            box = conn._mailbox
            assert box is not None  # (_held_by_caller: an active connection's)
            conn._private["ending"] = box.unregister(transport, drop=False)
            conn._private["early"] = early or []
            _bring_out(conn)
            return
        if not transport.closed:
            # Nobody hears of this end now (the call that would have raised it was
            # cancelled): it is told by the next read, with the Errors it made. An
            # active connection's mailbox gets a SocketClosed to bring it out: it had
            # none, and a task waiting on the mailbox for this connection waited for ever.
            # What the server said before comes first, as after a failed write: the
            # whole answer to an earlier request was already read, or in the socket,
            # and came out as its Error("closed").
            said = _last_words(conn)
            responses, _ = _lost(conn, TransportError("closed"))
            conn._private["untold"] = (early or []) + said + responses
            early = None
            box = conn._mailbox if conn._mode == "active" else None
            if box is not None and not box.closed:
                _watch_from(conn, box)  # (a closed connection's untold end: SocketClosed)
    if early or "early_errors" in conn._private:
        conn._private["early"] = early or []  # (the key kept errors are said under)


def _unmade(conn: Conn, ref: Ref, exc: MintError) -> MintError:
    """``request`` raises ``exc`` and the caller gets no ``ref``: what is left of it.

    A write that failed took nothing more: the request is forgotten. One that timed
    out (``send_timeout``) is another matter: the bytes the socket did not take go
    out first at the next write, and the server answered a request nobody waited
    for. On HTTP/2 (whose HPACK state has the headers: they cannot be taken back)
    the stream is reset (CANCEL) right behind them, and the connection stays whole
    for the others. On HTTP/1.1 the request is cut mid-message, and its answer was
    taken for the next request's: the connection ends (as urllib3 and httpcore end
    one after a write timeout).
    """
    session = conn._session
    if exc.reason == "timeout" and session.protocol == "http2":
        session.cancel(ref)
        return exc
    session.abandon(ref)
    if exc.reason == "timeout" and not conn._transport.closed:
        return _failed(conn, exc)
    return exc


async def connect(
    scheme: HTTPScheme,
    host: str,
    port: int,
    *,
    protocols: Sequence[ProtocolName] = ("http1", "http2"),
    mode: Mode = "active",
    transport_opts: dict[str, Any] | None = None,
    hostname: str | None = None,
    mailbox: Mailbox | None = None,
) -> Conn:
    """Open a connection (Mint's ``connect/4``).

    Args:
        scheme: ``"http"`` or ``"https"``.
        host: the address to connect to.
        port: the TCP port.
        protocols: ``"http1"``/``"http2"``. On ``http`` HTTP/2 is used only for
            ``("http2",)`` (prior knowledge); on ``https`` ALPN picks among them.
        mode: ``"active"`` (input arrives as mailbox messages for :func:`stream`)
            or ``"passive"`` (read with :func:`recv`).
        transport_opts: ``timeout`` (connect, seconds), ``ssl_context``, ``cafile``,
            ``verify`` (default ``True``), ``send_timeout`` (seconds a write may wait
            while the socket takes nothing, as ``:gen_tcp``'s option: then
            ``TransportError("timeout")``, and what was left of the write goes out
            first at the next one; default ``None``, as long as it takes).
        hostname: the name for SNI, certificate checks and ``Host``/``:authority``
            when ``host`` is an address.
        mailbox: the mailbox of an active connection (default: ``mint.aio.mailbox()``);
            a passive one is delivered there once :func:`set_mode` makes it active
            (as after ``controlling_process``).

    Raises:
        TransportError: the TCP or TLS connection failed.
        HTTPError: the arguments are invalid or an HTTP/2 server broke the protocol.
    """
    if scheme not in ("http", "https"):
        raise HTTPError(("invalid_scheme", scheme))
    if mode not in ("active", "passive"):
        raise HTTPError(("invalid_mode", mode))
    _check_address(host, port, hostname)
    host = _unbracketed(host)
    hostname = None if hostname is None else _unbracketed(hostname)
    protos = _check_protocols(protocols)
    opts = _check_transport_opts(transport_opts, mailbox)
    # (one of about 31 years or more is none: 10**400 raised OverflowError from the
    # SETTINGS wait's arithmetic)
    timeout = wait_timeout(opts.get("timeout", DEFAULT_CONNECT_TIMEOUT))
    name = hostname or host
    ctx = None
    if scheme == "https":
        ctx = make_ssl_context(
            ssl_context=opts.get("ssl_context"),
            cafile=opts.get("cafile"),
            verify=opts.get("verify", True),
        )
    started = time.monotonic()
    transport = await AsyncTransport.connect(
        scheme,
        host,
        port,
        timeout=timeout,
        ssl_context=ctx,
        server_hostname=name,
        alpn=[ALPN_IDS[p] for p in protos],
    )
    transport.send_timeout = wait_timeout(opts.get("send_timeout"))
    if scheme == "https":
        selected = transport.alpn_protocol()
        if selected == "h2":
            protocol = "http2"
        elif selected == "http/1.1":
            protocol = "http1"
        else:
            protocol = "http1" if "http1" in protos else "http2"
    else:
        protocol = "http2" if protos == ("http2",) else "http1"
    try:
        session = _make_session(protocol, scheme, name, port)
        box = mailbox
        if mode == "active" and box is None:
            # (The default mailbox is made on first use: that can fail too, EMFILE.)
            box = _default_mailbox()
        conn = Conn(transport, session, scheme=scheme, host=name, port=port, mode=mode, mailbox=box)
        if protocol == "http2":
            # (one bound for the whole connect: the SETTINGS wait had a timeout of its
            # own after the TCP and TLS handshakes', and a connect took twice it)
            await _await_settings(
                conn,
                DEFAULT_SETTINGS_TIMEOUT
                if timeout is None
                else timeout - (time.monotonic() - started),
            )
        if box is not None and mode == "active":
            box.register(transport)
    except BaseException:
        transport.close()
        raise
    return conn


async def _await_settings(conn: Conn, timeout: float) -> None:
    """HTTP/2: send the preface and read until the server's SETTINGS are processed.

    Only then does ``upgrade`` know whether extended CONNECT is enabled. Input read
    past the SETTINGS (there should be none for a fresh connection) is kept.
    """
    session = conn._session
    session.initiate()
    await _flush(conn)
    deadline = time.monotonic() + timeout
    while not session.settings_received:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TransportError("timeout")
        data = await conn._transport.recv(0, remaining)
        if not data:
            raise TransportError("closed")
        try:
            responses = session.receive_data(data)
        except MintError:
            # (RFC 9113 5.4.1: the GOAWAY h2 queued goes out before the close; the
            # socket was closed with it unsent)
            conn._transport.send_parting(session.data_to_send())
            raise
        await _flush(conn)
        if responses:
            conn._private.setdefault("early", []).extend(responses)


async def request(
    conn: Conn,
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    body: IOData | _Marker | None = None,
) -> tuple[Conn, Ref]:
    """Send a request (Mint's ``request/5``); ``body=STREAM`` streams it afterwards.

    Raises:
        HTTPError: the connection cannot take it (closed, a body still streaming).
        TransportError: writing failed.
    """
    _check_flavour(conn)
    try:
        _check_open(conn)
        ref = conn._session.request(method, path, headers, body)
        await _sent_or_abandoned(conn, ref)
        if WINDOW_HIGH_WATER is not None and body is not None:
            try:
                await _await_window(conn, ref)
            except MintError as exc:
                raise _unmade(conn, ref, exc) from exc.__cause__
            except BaseException:
                _forsaken(conn, ref)
                raise
    except MintError as exc:
        raise _attach(_cut_short(conn, exc), conn) from exc.__cause__
    return conn, ref


async def stream_request_body(conn: Conn, ref: Ref, chunk: Chunk) -> Conn:
    """Send a chunk of a streamed body, or ``EOF`` to end it.

    Also ``mint.websocket.stream_request_body``: on an upgraded HTTP/1.1 WebSocket
    the encoded frames are written as they are.
    """
    _check_flavour(conn)
    try:
        transport = conn._transport
        if transport.closed:
            raise TransportError("closed")
        session = conn._session
        if ref is session.direct_ref and type(chunk) is bytes and ref is not None:
            # An upgraded HTTP/1.1 connection: the caller's bytes go out as they are.
            # (direct_ref is None on any other: a ref of None is no request of it,
            # and its bytes went out raw, into a chunked body or HTTP/2's frames.)
            if chunk:
                sent = transport.send_now(chunk)
                if sent != len(chunk):  # the socket is full: wait for it
                    await transport.send(memoryview(chunk)[sent:])
            return conn
        session.stream_request_body(ref, chunk)
        await _flush(conn)
        if WINDOW_HIGH_WATER is not None:
            await _await_window(conn, ref)
    except MintError as exc:
        raise _attach(_cut_short(conn, exc), conn) from exc.__cause__
    return conn


def _over_water(conn: Conn, ref: Ref | None) -> bool:
    """Whether a send on ``ref`` waits for the windows: its stream has more than
    ``WINDOW_HIGH_WATER`` bytes queued, or the connection more than
    ``CONNECTION_HIGH_WATER`` (see ``mint.aio._backend``)."""
    session = conn._session
    if conn._transport.closed:
        return False
    mine, everyone = WINDOW_HIGH_WATER, CONNECTION_HIGH_WATER
    if mine is not None and ref is not None and session.pending_bytes(ref) > mine:
        return True
    return everyone is not None and session.pending_bytes(None) > everyone


async def _await_window(conn: Conn, ref: Ref | None) -> None:
    """HTTP/2 backpressure: read until ``ref``'s queue (and the connection's) is under
    its mark (:func:`_over_water`).

    The connection is read here directly (an active one is taken off its mailbox
    meanwhile, with the input the mailbox already holds for it). Responses read
    are kept for the next ``stream``/``recv``; an active connection is put back on
    its mailbox with an empty ``SocketData`` message that brings them out.
    End of stream or a failed read ends the wait: the next read reports it (kept on
    the transport: a TLS end or failure is read off the socket once).

    One task at a time reads here (``window_turn``): two tasks whose sends both
    waited for the windows (two WebSockets of one connection, in active mode, as
    README advises for tasks that share one) both read the socket, one wait
    replaced the other's and both waited for ever; or each kept what it read until
    it ended, and the responses came out of order. The reader hands the turn over
    after a read when another task waits for it: each waits for its own stream,
    and one whose window never opens read for ever while the others, their own
    windows open again, waited in line behind it.
    """
    if conn._session.protocol != "http2":
        return
    waiter = conn._transport._waiter
    while _over_water(conn, ref):
        turn = waiter.window_turn()
        waiter.window_waiters += 1
        try:
            await turn.acquire()
        finally:
            waiter.window_waiters -= 1
        try:
            if not await _read_for_window(conn, ref):
                return
        finally:
            turn.release()


# How often a window wait looks at its queue again without input: a cancel (of its
# stream, or of those that fill the connection) drops the queue, and no read says so.
_WINDOW_RECHECK = 0.1
# How long a window wait gives a caller to stream a message it holds, and how often it
# looks (see _none_held).
_HELD_WAIT = 0.1
_HELD_LOOK = 0.005


async def _none_held(conn: Conn) -> bool:
    """Whether a window wait may read the socket: no caller holds a message of this
    connection that its mailbox gave out and ``stream`` has not taken (what the socket
    says now comes after it). Waits ``_HELD_WAIT`` for one to be streamed (a reader
    task that awaited something between ``areceive`` and ``stream``); False if it is
    not: the wait then ends, and its queue goes out as later reads open the windows.
    (The holder may be the waiting task itself: a longer wait would wait for ever.)

    Read anyway, the bytes came out before the held message's: WebSocket frames out
    of order, or a DATA frame cut in two fed to h2 the wrong way round, which ended
    the connection with our own ``protocol_error``.
    """
    transport = conn._transport
    waiter = transport._waiter
    waited = 0.0
    while _held_by_caller(conn):
        if waited >= _HELD_WAIT:
            return False
        await waiter.pause(_HELD_LOOK)
        waited += _HELD_LOOK
        if transport.closed:
            # (closed meanwhile: the send says so, as a wait that was reading would)
            raise TransportError("closed")
    return not transport.closed


def _held_by_caller(conn: Conn) -> bool:
    """Whether the connection's mailbox gave out a ``SocketData`` of it that ``stream``
    has not taken (see ``Mailbox.handed_out``): nothing of the socket may be read and
    parsed before it."""
    box = conn._mailbox if conn._mode == "active" else None
    return box is not None and box.handed_out(conn._transport) > 0


def _hand_out(conn: Conn, read: list[Response]) -> None:
    """What a window wait read, handed out now: kept for the next ``stream``/``recv``,
    and an active connection's mailbox loop told (an empty ``SocketData`` brings it out).

    A wait for a stream whose window never opens reads on for as long as it is
    allowed: kept to its end, the responses of every other stream (the echoes of
    sends that went through) were held back all that time, and piled up in memory.
    A passive connection's come out of its next ``recv``: kept by the wait while it
    wrote, they came out after what another task's ``recv`` read meanwhile (the
    echoes of one WebSocket out of order, frames cut)."""
    if not read:
        return
    conn._private.setdefault("early", []).extend(read)
    _bring_out(conn)


def _bring_out(conn: Conn) -> None:
    """Post an empty ``SocketData`` to an active connection's mailbox: its ``stream``
    brings out what is kept for the next read (``"early"``), which would otherwise wait
    for the server's next bytes, which may never come. (A mailbox closed meanwhile
    gets nothing: see ``_read_for_window``.)"""
    box = conn._mailbox if conn._mode == "active" else None
    if box is not None and not box.closed and not conn._transport.closed:
        box.send(SocketData(conn._transport.sock, b""))


async def _read_for_window(conn: Conn, ref: Ref | None) -> bool:
    """:func:`_await_window`'s reads, while it holds the turn: until ``ref`` is under
    its mark, or another task waits for the turn. False once the connection ended
    (or its end is kept for the next read)."""
    session = conn._session
    transport = conn._transport
    waiter = transport._waiter
    if not _over_water(conn, ref):
        return not transport.closed
    if not await _none_held(conn):
        return False
    held = _take_held(conn)
    try:
        try:
            for data in held:
                _take_in(conn, data)
            await _flush(conn)
            turns = 0  # (a read at least in each turn: two waits handed it to and fro)
            while _over_water(conn, ref) and not (turns and waiter.window_waiters):
                turns += 1
                if waiter.reading:
                    # Another task's recv reads the connection (not supported, but its
                    # reads process the WINDOW_UPDATEs as well): look again later.
                    await waiter.pause(_WINDOW_RECHECK)
                    continue
                try:
                    data = await transport.recv(0, _WINDOW_RECHECK)
                except TransportError as exc:
                    if exc.reason == "timeout" and not transport.closed:
                        continue  # (the queue may have gone meanwhile: a cancel)
                    if transport.closed or not isinstance(exc.__cause__, OSError):
                        raise
                    # A failed read (a reset, a bad TLS record) ends the wait as the end
                    # does, kept for the next read: raised from this send, it left the
                    # connection open, and the next read said "closed" as well.
                    transport.keep_end(exc.__cause__)
                    return False
                if not data:
                    # For the next read to report: a TLS end (close_notify) is read off
                    # the socket once, and the peer may keep TCP open for a long time.
                    transport.keep_end(b"")
                    return False
                _take_in(conn, data)
                await _flush(conn)
        except MintError as exc:
            # What was read before the error comes first (a connection error's Error
            # for every ref after the Data that came before it), as a recv gives it:
            # kept for the next read, it came out after the Errors, on a connection
            # already closed.
            exc.responses[:0] = conn._private.pop("early", [])
            if session.closing:
                await _end(conn)  # (as _process: the next read says "closed")
            raise
        return not transport.closed
    finally:
        # The connection's mode and mailbox as they are now: a switch to passive,
        # to active or to another mailbox meanwhile left the socket to this wait.
        # A mailbox closed meanwhile takes nothing (``register`` refuses it, and
        # raised over the send's outcome): the connection stays off it (its waits
        # are refused anyway once its queue is empty) until moved to another.
        box = conn._mailbox if conn._mode == "active" else None
        if box is not None and not box.closed and not transport.closed:
            _put_on(conn, box)


async def _process(
    conn: Conn, data: bytes, until: float | None = None
) -> tuple[Conn, list[Response]]:
    session = conn._session
    kept = ending = False
    try:
        responses = session.receive_data(data)
        if "early" in conn._private:
            responses = conn._private.pop("early") + responses
            kept = "early_errors" in conn._private
            ending = "ending" in conn._private
    except MintError as exc:
        # What a window wait read before comes first, as it would have without the error.
        exc.responses[:0] = conn._private.pop("early", [])
        if "ending" in conn._private:
            # (the answer to the cancelled request, say: the end is what is said)
            _say_the_end(conn, exc.responses)
        if session.closing:
            await _end(conn)
        elif session.direct_ref is None:
            # An error that ends nothing (a GOAWAY's that lets streams finish): what
            # the read queued to write (a PING's ack, WINDOW_UPDATEs for the streams
            # that go on) goes all the same; a server waiting for its PING's ack waited.
            with contextlib.suppress(MintError):
                await _answer(conn, until)
        raise _attach(exc, conn) from exc.__cause__
    if kept:
        # An error a window wait kept (_keep_error), said now, with this read's
        # responses, once what the read queued to write has gone as above.
        with contextlib.suppress(MintError):
            await _answer(conn, until)
        _tell_kept(conn, responses)
    if ending:
        _end_when_told(conn, responses, bool(data))
    if session.direct_ref is not None:
        return conn, responses  # upgraded HTTP/1.1: reading never queues bytes to send
    try:
        await _answer(conn, until)
    except MintError as exc:
        # (what was read is the caller's all the same: before the Errors of the end)
        exc.responses = [*responses, *exc.responses]
        raise _attach(_cut_short(conn, exc), conn) from exc.__cause__
    except BaseException:
        # Cancelled while writing (a WINDOW_UPDATE, an ack, queued body bytes): the
        # responses are the caller's all the same, so the next call returns them,
        # ahead of what another task read meanwhile (a send waiting for the windows
        # keeps what it reads there: replacing it lost those). An active connection
        # is told so by an empty message, or they waited for the server's next bytes,
        # which may never come (its Close was among them).
        conn._private["early"] = responses + conn._private.get("early", [])
        _bring_out(conn)
        raise
    if session.closing:
        await _end(conn)
    return conn, responses


# How much a connection may write in answer to what it reads (PING and SETTINGS acks,
# WINDOW_UPDATEs; not the DATA the peer's WINDOW_UPDATEs let go, see _answers_in)
# behind bytes the socket has not taken, before the peer is taken for a flood.
MAX_BACKLOG_GROWTH = 16 * 2**20


async def _answer(conn: Conn, until: float | None = None) -> None:
    """:func:`_flush` after a read: end the connection when a peer that takes none of
    our bytes keeps sending frames that must be answered.

    A write that ran out of ``send_timeout`` keeps its rest for the next (README);
    every read then queued its answers behind it. A peer flooding PINGs (or SETTINGS)
    without reading grew that backlog by about a megabyte a ``recv``, for ever
    (CVE-2019-9512's kind). Once the answers queued behind such a rest pass
    :data:`MAX_BACKLOG_GROWTH` (the transport counts them, ``owed_answers``, and starts
    again whenever the socket has taken everything), the connection ends as nghttp2
    ends a flood: ``("enhance_your_calm", detail)``, RFC 9113 10.5's name for it,
    with every open request's ``Error``. The caller's own writes are not counted:
    their timeouts tell the caller already.

    The write waits no longer than ``until`` (a ``recv``'s deadline), nor than
    ``send_timeout`` lets it: what the socket did not take then goes out as it drains
    (from the loop, or in the blocking flavour while the caller waits for input, or
    with its next send), and the read's responses are returned. A read whose
    WINDOW_UPDATEs let megabytes of a queued body go waited as long as the peer read
    none of them: ``recv(conn, 0, 1.0)`` for ever (no ``send_timeout``), or it raised
    the write's ``"timeout"`` with the responses it had read in ``.responses``, which
    a loop that retries on a timeout dropped.
    """
    data = conn._session.data_to_send()
    if not data:
        return
    transport = conn._transport
    if transport._unsent:
        owed = transport.owed_answers + _answers_in(conn, data)
        if owed > MAX_BACKLOG_GROWTH:
            detail = (
                f"{owed} bytes of answers owed to a peer that takes none of them and keeps "
                "asking for more (PING, SETTINGS)"
            )
            raise _failed(conn, HTTPError(("enhance_your_calm", detail)))
        transport.owed_answers = owed
    try:
        await transport.send(data, until)
    except TransportError as exc:
        if exc.reason != "timeout" or transport.closed:
            raise


def _answers_in(conn: Conn, data: bytes) -> int:
    """The bytes of ``data`` (what a read made to write) that answer the peer: all of
    them on HTTP/1.1; on HTTP/2 every frame but DATA. The DATA frames are a body the
    peer's WINDOW_UPDATEs let go, which it asked for by reading: counted too, a large
    upload to a server with large windows, whose next WINDOW_UPDATE came while the
    socket still held some of the last release, was taken for a PING flood."""
    if conn._session.protocol != "http2":
        return len(data)
    answers = 0
    at, end = 0, len(data)
    while end - at >= 9:  # (frames, whole: RFC 9113 4.1)
        size = 9 + int.from_bytes(data[at : at + 3], "big")
        if data[at + 3]:  # not DATA (type 0)
            answers += size
        at += size
    return answers


async def _end(conn: Conn) -> None:
    """The session is done with the connection for good (``Session.closing``): what it
    still has to say (an HTTP/2 GOAWAY) goes out if the socket takes it, then the
    socket is closed, so the server sees the end now, not when the caller closes."""
    if conn._transport.closed:
        return
    try:
        await _flush(conn)
    except MintError:
        pass  # the peer is gone already: the close is all that is left to do
    _drop_transport(conn)


def _take_in(conn: Conn, data: bytes) -> None:
    """A window wait's read, processed and handed out (:func:`_hand_out`). An error that
    ends nothing (a GOAWAY with an error code that lets the streams finish: Mint's
    ``{:server_closed_connection, code, debug}``) is the next read's to say, as the read
    that meets it in the blocking flavour does, in the order they came; the wait goes
    on. Raised here, a send whose bytes were queued (and went out) said it failed, and
    a request gave no ref for its stream."""
    session = conn._session
    try:
        read = session.receive_data(data)
    except MintError as exc:
        if session.closing or conn._transport.closed:
            raise
        _hand_out(conn, exc.responses)
        _keep_error(conn, exc)
    else:
        _hand_out(conn, read)


def _end_when_told(conn: Conn, responses: list[Response], read: bool) -> None:
    """The end of a connection whose cancelled request waited for the messages the
    caller held (see :func:`_forsaken`): said by the read of the last one, after its
    ``responses`` and the peer's last words, as an end nobody was told of is. A read of
    the empty message posted behind the queue then (not ``read``) with one still held
    says it too, without the last words: the holder is gone (a task cancelled between
    ``areceive`` and ``stream``), and the end waited for ever."""
    if _held_by_caller(conn):
        if read:
            conn._private["early"] = []  # (the next held message's read looks again)
            return
        _say_the_end(conn, responses)
    _say_the_end(conn, [*responses, *_last_words(conn, conn._private["ending"])])


def _say_the_end(conn: Conn, responses: list[Response]) -> NoReturn:
    """End a connection whose end waited (``"ending"``): ``TransportError("closed")``
    with ``responses``, then the Errors of the requests still open."""
    del conn._private["ending"]
    end, _ = _lost(conn, TransportError("closed"))
    raise TransportError("closed", conn=conn, responses=[*responses, *end])


def _keep_error(conn: Conn, exc: MintError) -> None:
    """Keep an error that ends nothing, read where it cannot be said (a window wait),
    for the next read to raise (:func:`_tell_kept`), and have an active connection's
    mailbox bring that read about (nothing may come from the server before long)."""
    conn._private.setdefault("early", [])
    conn._private.setdefault("early_errors", []).append(exc)
    _bring_out(conn)


def _tell_kept(conn: Conn, responses: list[Response]) -> NoReturn:
    """Raise the first error :func:`_keep_error` kept, with this read's ``responses``;
    the next read says the next one."""
    kept: list[MintError] = conn._private["early_errors"]
    told = kept.pop(0)
    if kept:
        conn._private["early"] = []  # (its mailbox message was posted as it was kept)
    else:
        del conn._private["early_errors"]
    told.responses = responses
    raise _attach(told, conn)


def _lost(conn: Conn, failure: MintError | None = None) -> tuple[list[Response], bool]:
    """The connection's end, by a close or by ``failure``: the responses it makes (after
    any a cancelled call left), and whether the close was clean. Errors kept for the
    next read go: the end is what it says."""
    conn._private.pop("early_errors", None)
    responses, clean = conn._session.connection_lost(None if failure is None else failure.reason)
    if "early" in conn._private:
        responses = conn._private.pop("early") + responses
    _drop_transport(conn)
    return responses, clean


def _stale(conn: Conn) -> tuple[Conn, list[Response]]:
    """A message of a connection already closed (by ``close``, or by an end read
    before it), taken from the mailbox before that: it says nothing more. HTTP/2 gave
    h2's own refusal of input after its close as the server's ``protocol_error``, and
    HTTP/1.1 a second ``"closed"`` for an end it had reported, or none when the caller
    closed first. An end nobody was told of yet (:func:`_forsaken`) is told now."""
    untold = conn._private.pop("untold", None)
    if untold is not None:
        raise TransportError("closed", conn=conn, responses=untold)
    return conn, []


def _closed(conn: Conn) -> tuple[Conn, list[Response]]:
    responses, clean = _lost(conn)
    if clean:
        return conn, responses
    raise TransportError("closed", conn=conn, responses=responses)


def _failed(conn: Conn, exc: MintError) -> MintError:
    """The connection failed with ``exc`` (a reset, a TLS alert): as a close, the
    requests still open end (``.responses``, with an ``Error`` each on HTTP/2), and
    ``exc`` gets the connection, for the caller to raise."""
    responses, _ = _lost(conn, exc)
    exc.responses = [*exc.responses, *responses]
    return _attach(exc, conn)


def _read_failed(conn: Conn, exc: TransportError) -> MintError:
    """A passive read failed: unless it only timed out, the connection is lost.

    Returns ``exc`` with the connection attached, for the caller to raise. Also the
    end of the C read's failures (mint.websocket._fastio).
    """
    if exc.reason != "timeout":
        return _failed(conn, exc)
    return _attach(exc, conn)


def _cut_short(conn: Conn, exc: MintError) -> MintError:
    """An HTTP/2 write the peer cut short (``"closed"``: a reset, a pipe closed under
    it) ends the connection as a failed read does: ``is_open`` turns false, and every
    open request's ``Error`` comes in ``.responses`` (Mint's HTTP/2 marks itself closed
    then). It stayed open before: the next write said ``request_body_not_streaming``
    for a Close that never went out. HTTP/1.1 stops taking requests by its session's
    account already; an upgraded connection's reads tell the WebSocket its end."""
    if (
        type(exc) is TransportError
        and exc.reason == "closed"
        and conn._session.protocol == "http2"
        and not conn._transport.closed
    ):
        said = _last_words(conn)
        if said:
            conn._private.setdefault("early", []).extend(said)
        return _failed(conn, exc)
    return exc


def _take_held(conn: Conn) -> list[bytes]:
    """The input read off the socket and not yet processed, taken to be read here: an
    active connection's mailbox queue (the connection is taken off the mailbox), or
    what a passive one holds from its switch to passive."""
    if conn._mode == "active" and conn._mailbox is not None:
        return conn._mailbox.unregister(conn._transport, drop=False)
    held = list(conn._held)
    conn._held.clear()
    return held


def _last_words(conn: Conn, kept: list[bytes] | None = None) -> list[Response]:
    """What the peer said before a write found the connection cut, read without waiting:
    the mailbox's queue (active), bytes held from a switch to passive, and the socket's
    rest. A server may answer in full and then reset; the write that meets the reset
    comes before the read in the caller's loop, and those answers were replaced by
    ``Error(ref, "closed")`` though they had arrived. Read here, they come first (as
    Mint's reads deliver what its mailbox holds after a failed write). Nothing is
    written back: the connection is gone.

    Nothing is read past a message the caller holds (:func:`_held_by_caller`): what
    follows it, parsed first, was taken for its answer (``/b``'s body as ``/a``'s).
    """
    if _held_by_caller(conn):
        return []
    transport = conn._transport
    session = conn._session
    held = [*(kept or ()), *_take_held(conn)]
    said: list[Response] = []
    try:
        for data in held:
            said += session.receive_data(data)
        while data := transport.recv_ready():  # (None: nothing yet; b"": the end)
            said += session.receive_data(data)
    except MintError as exc:
        # The end, or what the peer broke: what came before it stands, the answers
        # the same read parsed before the break too (they were dropped with it).
        said += exc.responses
    return said


def _send_failed(conn: Conn, exc: OSError) -> NoReturn:
    """A send failed (not a wait): the mapped error, with the connection attached, as
    ``stream_request_body`` raises it. The end of the C sends' TLS failures
    (``mint.websocket._fastio``, ``mint.aio._fastio``)."""
    raise _attach(conn._transport.send_failure(exc), conn) from exc


def _drop_transport(conn: Conn) -> None:
    if conn._mailbox is not None:
        conn._mailbox.unregister(conn._transport, drop=True)
    conn._transport.close()


async def stream(conn: Conn, message: object) -> tuple[Conn, list[Response]] | _Unknown:
    """Turn a mailbox message into responses, or :data:`UNKNOWN` if it is not this conn's.

    Also ``mint.websocket.stream`` (raw ``Data`` on an upgraded HTTP/1.1 connection).

    Raises:
        TransportError: the socket closed or failed; ``.responses`` has what came before.
        HTTPError: the server broke HTTP.
    """
    transport = getattr(conn, "_transport", None)
    if type(message) is SocketData and transport is not None and message.socket is transport.sock:
        # The common case, checked first; on an upgraded HTTP/1.1 connection the
        # bytes are the WebSocket's as they came (see recv).
        data = message.data
        if transport.unstreamed and data:
            transport.unstreamed -= 1  # (see Mailbox.handed_out)
        ref = conn._session.direct_ref
        if ref is not None and data and "early" not in conn._private and not transport.closed:
            return conn, [new_data(ref, data)]
        _check_flavour(conn)  # (what _process writes must be this flavour's)
        if transport.closed:
            return _stale(conn)
        return await _process(conn, data)
    # Anything but a connection of this flavour is refused, whatever the message: a
    # stale None or a (conn, ref) pair said UNKNOWN to every message, and the
    # caller's loop waited for ever.
    _check_flavour(conn)
    if not isinstance(message, SocketData | SocketClosed | SocketError):
        return UNKNOWN
    if message.socket is not conn._transport.sock:
        return UNKNOWN
    if conn._transport.closed:
        return _stale(conn)
    if isinstance(message, SocketData):
        if conn._transport.unstreamed and message.data:
            conn._transport.unstreamed -= 1
        return await _process(conn, message.data)
    if isinstance(message, SocketClosed):
        return _closed(conn)
    error = message.error
    if not isinstance(error, MintError):
        # One the caller built (the mailbox posts TransportErrors): an exception as a
        # failed read's, a str as the reason, anything else tagged (a raw
        # AttributeError before).
        if isinstance(error, BaseException):
            error = map_os_error(error)
        else:
            error = TransportError(error if isinstance(error, str) else ("socket_error", error))
    raise _failed(conn, error)


async def recv(
    conn: Conn,
    byte_count: int,
    timeout: float | None,
) -> tuple[Conn, list[Response]]:
    """Read from a passive connection and return the responses (Mint's ``recv/3``).

    Also ``mint.websocket.recv``: on an upgraded HTTP/1.1 connection the bytes come
    out as they were read, as ``Data(ref, bytes)`` for :func:`mint.websocket.decode`.

    Args:
        byte_count: bytes to read; 0 reads whatever is available.
        timeout: seconds to wait (``None``: forever).

    Raises:
        TransportError: ``"timeout"``, or ``"closed"`` with ``.responses``.
        HTTPError: the server broke HTTP (``("invalid_response", ...)``,
            ``("unexpected_data", data)``, ``("protocol_error", ...)``), with
            ``.responses``; ``"not_passive"``; invalid arguments.
    """
    _check_flavour(conn)
    if conn._mode != "passive":
        raise HTTPError("not_passive", conn=conn)
    _check_recv_args(conn, byte_count, timeout)
    timeout = wait_timeout(timeout)
    if conn._held:
        # What the mailbox had queued when the connection went passive: read first,
        # and through the transport, so that an exact byte_count counts it too.
        conn._transport.push_back(b"".join(conn._held))
        conn._held.clear()
    if "early" in conn._private:
        return await _process(conn, b"")
    transport = conn._transport
    if transport.closed:
        raise TransportError("closed", conn=conn, responses=conn._private.pop("untold", []))
    try:
        parts = await transport.recv_parts(byte_count, timeout)
    except TransportError as exc:
        raise _read_failed(conn, exc) from exc.__cause__
    except HTTPError as exc:  # "not_passive": another task made the connection active
        raise _attach(exc, conn) from None
    data = parts[0]
    if not data:
        return _closed(conn)
    session = conn._session
    ref = session.direct_ref
    if ref is not None:
        # An upgraded HTTP/1.1 connection (a WebSocket's hot path): the bytes are
        # the WebSocket's, as they came (a burst as its reads' parts, one Data each:
        # the decoder joins a message once); nothing to parse and nothing to write.
        if len(parts) == 1:
            return conn, [new_data(ref, data)]
        return conn, [new_data(ref, part) for part in parts]
    # A recv with a timeout waits for no write of what the read makes (see _answer):
    # the rest goes out as the socket drains, while the caller waits again.
    until = None if timeout is None else time.monotonic()
    return await _process(conn, data if len(parts) == 1 else b"".join(parts), until)


async def close(conn: Conn) -> Conn:
    """Close the connection; also takes its socket off its mailbox with its queued input."""
    _check_flavour(conn)
    if conn._mailbox is not None:
        conn._mailbox.unregister(conn._transport, drop=True)
    closer = getattr(conn._session, "close", None)
    if closer is not None and not conn._transport.closed:
        # HTTP/2's GOAWAY, without waiting for the socket (see send_parting): a close
        # never waits, so it cannot hang, and nothing can stop it half-way.
        with contextlib.suppress(MintError):
            closer()
            conn._transport.send_parting(conn._session.data_to_send())
    conn._transport.close()
    return conn


def set_mode(conn: Conn, mode: Mode) -> Conn:
    """Switch between active and passive mode, losing no input already read.

    Only for a connection of this flavour (soak15): the blocking one's put an event
    loop's connection on the thread's mailbox, where ``mint.aio.receive`` never saw
    its input.
    """
    _check_flavour(conn)
    if mode not in ("active", "passive"):
        raise HTTPError(("invalid_mode", mode), conn=conn)
    if mode == conn._mode:
        return conn
    if mode == "passive":
        if conn._mailbox is not None:
            conn._held.extend(conn._mailbox.unregister(conn._transport, drop=False))
    else:
        try:
            box = conn._mailbox if conn._mailbox is not None else _default_mailbox()
        except RuntimeError:
            # mint.aio's default mailbox is the running loop's, and none runs (a raw
            # RuntimeError before, regress23): there is no mailbox to deliver to.
            raise HTTPError(("invalid_mailbox", None), conn=conn) from None
        if box.closed:  # refused before the held input moves: it stays here
            raise HTTPError(("invalid_mailbox", box), conn=conn)
        conn._mailbox = box
        for data in conn._held:
            box.post_input(conn._transport, data)
        conn._held.clear()
        _watch_from(conn, box)
    conn._mode = mode
    return conn


async def ping(conn: Conn, payload: bytes | None = None) -> tuple[Conn, Ref]:
    """Send an HTTP/2 PING; its answer arrives as ``Pong(ref)``."""
    _check_flavour(conn)
    if protocol(conn) != "http2":
        raise HTTPError("unsupported_on_http1", conn=conn)
    try:
        ref: Ref = conn._session.ping(payload)
    except MintError as exc:
        raise _attach(exc, conn) from exc.__cause__
    try:
        await _flush(conn)
    except MintError as exc:
        conn._session.forget_ping(ref)  # (the caller gets no ref: no Pong for it)
        raise _attach(_cut_short(conn, exc), conn) from exc.__cause__
    except BaseException:
        conn._session.forget_ping(ref)  # (cancelled: the PING goes out, unanswered for)
        raise
    return conn, ref


async def cancel_request(conn: Conn, ref: Ref) -> Conn:
    """Reset the stream of ``ref`` with RST_STREAM(CANCEL) (HTTP/2; Mint's ``cancel_request``).

    Nothing more is reported for ``ref``; its queued body bytes are dropped and other
    requests on the connection go on. Unknown or finished refs are ignored. This is
    how a WebSocket over HTTP/2 is abandoned when the server does not end its stream
    in the time the caller allows after the close handshake (RFC 8441 5.1).

    Raises:
        HTTPError: ``"unsupported_on_http1"`` (an HTTP/1.1 request is ended by closing
            the connection).
    """
    cancel = getattr(conn._session, "cancel", None)
    if cancel is None:
        raise HTTPError("unsupported_on_http1", conn=conn)
    try:
        cancel(ref)
        if not conn._transport.closed:
            await _flush(conn)
    except MintError as exc:
        raise _attach(_cut_short(conn, exc), conn) from exc.__cause__
    return conn
