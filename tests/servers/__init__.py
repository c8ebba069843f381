"""Real peers for the loopback integration tests, and the helpers that run them.

Every peer listens on 127.0.0.1 on a port the OS picks, and is started and stopped by a fixture
of ``tests/conftest.py``; nothing here waits with a sleep. What each fixture yields is a
:class:`~servers.peer.Peer` (or a subclass): ``host``, ``port``, ``scheme`` (``"http"`` or
``"https"``, what ``mint.http.connect`` takes), ``ws_scheme`` (``"ws"``/``"wss"``), ``cafile``
for TLS, and ``url(path)``.

Modules:

* ``peer``: the :class:`Peer` value and the subprocess runner (readiness line, always stopped).
* ``certs``: trustme CAs and certificates (good, unrelated CA, wrong host name).
* ``ws_server``: a ``websockets`` server in a thread, behaviour chosen by path.
* ``asgi_app`` + ``hypercorn_main``: an ASGI app served by hypercorn in a subprocess.
* ``node/``: a Node.js ``http2`` server with RFC 8441 extended CONNECT and ``ws``.
* ``raw``: a scripted TCP server for broken peers, and the RFC 6455 accept helper.
"""
