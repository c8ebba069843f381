'use strict';
// HTTP/2 WebSocket peer for mint-websocket's integration tests (RFC 8441).
//
// Usage: node server.js [--tls CERTFILE KEYFILE] [--no-connect-protocol]
//
// Listens on 127.0.0.1, port chosen by the OS, and prints one line
// `READY <port>` on stdout once it accepts connections. Stops on SIGTERM,
// SIGINT or when stdin closes (so a dead test runner never leaves it behind).
//
// Paths (extended CONNECT with `:protocol websocket`, RFC 8441 section 4):
//   /echo       echo every message (text stays text, binary stays binary)
//   /greet      send the text "hello" as soon as the stream is open
//   /close      close with 1000 "bye" after the first message
//   /headers    send the request headers as one JSON text message, then echo
//   /forbidden  answer 403 without opening a WebSocket
//   other       404
// Plain requests: GET / answers 200 "hello"; POST /trailers reads the body and answers
// 200 with JSON {"body": <bytes received>, "trailers": {name: value}} (what arrived
// in a trailing HEADERS frame, RFC 9113 8.1); anything else 404.
//
// permessage-deflate (RFC 7692) is accepted when the client offers it, with
// ws's own negotiation code, exactly as ws's WebSocketServer does over HTTP/1.1.

const http2 = require('node:http2');
const fs = require('node:fs');
const path = require('node:path');
const WebSocket = require('ws');

// ws lists only its entry point in "exports"; its negotiation helpers are
// reached by file path (the same files WebSocketServer uses).
const wsLib = path.join(path.dirname(require.resolve('ws')), 'lib');
const extension = require(path.join(wsLib, 'extension.js'));
const PerMessageDeflate = require(path.join(wsLib, 'permessage-deflate.js'));

const MAX_PAYLOAD = 64 * 1024 * 1024;

function parseArgs(argv) {
  const opts = { tls: null, connectProtocol: true };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--tls') {
      opts.tls = { cert: argv[i + 1], key: argv[i + 2] };
      i += 2;
    } else if (argv[i] === '--no-connect-protocol') {
      opts.connectProtocol = false;
    } else {
      throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  return opts;
}

function negotiateDeflate(offerHeader) {
  // Returns [extensions for ws, response header value or null].
  if (offerHeader === undefined) return [{}, null];
  const offers = extension.parse(offerHeader);
  if (!offers[PerMessageDeflate.extensionName]) return [{}, null];
  const pmd = new PerMessageDeflate({ isServer: true, maxPayload: MAX_PAYLOAD });
  pmd.accept(offers[PerMessageDeflate.extensionName]);
  const answer = extension.format({ [PerMessageDeflate.extensionName]: [pmd.params] });
  return [{ [PerMessageDeflate.extensionName]: pmd }, answer];
}

function openWebSocket(stream, headers, extensions) {
  const ws = new WebSocket(null, undefined, { autoPong: true });
  ws._extensions = extensions;
  ws.setSocket(stream, Buffer.alloc(0), { maxPayload: MAX_PAYLOAD });
  ws.on('error', () => {}); // a broken client must not kill the peer
  return ws;
}

function echo(ws) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

function handleConnect(stream, headers) {
  const urlPath = headers[':path'];
  if (headers[':protocol'] !== 'websocket') {
    stream.respond({ ':status': 400 });
    stream.end('expected :protocol websocket\n');
    return;
  }
  if (urlPath === '/forbidden') {
    stream.respond({ ':status': 403, 'content-type': 'text/plain' });
    stream.end('forbidden\n');
    return;
  }
  if (!['/echo', '/greet', '/close', '/headers'].includes(urlPath)) {
    stream.respond({ ':status': 404 });
    stream.end();
    return;
  }
  let extensions;
  let answer;
  try {
    [extensions, answer] = negotiateDeflate(headers['sec-websocket-extensions']);
  } catch (err) {
    stream.respond({ ':status': 400 });
    stream.end('invalid sec-websocket-extensions\n');
    return;
  }
  const responseHeaders = { ':status': 200 };
  if (answer !== null) responseHeaders['sec-websocket-extensions'] = answer;
  stream.respond(responseHeaders);
  const ws = openWebSocket(stream, headers, extensions);
  if (urlPath === '/echo') {
    echo(ws);
  } else if (urlPath === '/greet') {
    ws.send('hello');
    echo(ws);
  } else if (urlPath === '/close') {
    ws.once('message', () => ws.close(1000, 'bye'));
  } else if (urlPath === '/headers') {
    const plain = {};
    for (const [k, v] of Object.entries(headers)) plain[k] = v;
    ws.send(JSON.stringify(plain));
    echo(ws);
  }
}

function handleStream(stream, headers) {
  stream.on('error', () => {});
  // A client may reset a stream in the same write as its HEADERS (a cancelled
  // upgrade): Node then hands out a stream already destroyed, and respond() on it
  // throws ERR_HTTP2_INVALID_STREAM, uncaught, which ended the whole server.
  if (stream.destroyed || stream.closed) return;
  const method = headers[':method'];
  if (method === 'CONNECT') {
    handleConnect(stream, headers);
  } else if (method === 'GET' && headers[':path'] === '/') {
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end('hello');
  } else if (method === 'POST' && headers[':path'] === '/trailers') {
    let body = 0;
    const trailers = {};
    stream.on('data', (chunk) => { body += chunk.length; });
    stream.on('trailers', (fields) => {
      for (const [k, v] of Object.entries(fields)) trailers[k] = v;
    });
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(JSON.stringify({ body, trailers }));
    });
  } else {
    stream.respond({ ':status': 404 });
    stream.end();
  }
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const settings = { enableConnectProtocol: opts.connectProtocol };
  let server;
  if (opts.tls) {
    server = http2.createSecureServer({
      cert: fs.readFileSync(opts.tls.cert),
      key: fs.readFileSync(opts.tls.key),
      allowHTTP1: false,
      settings,
    });
  } else {
    server = http2.createServer({ settings });
  }
  const sessions = new Set();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => {});
  });
  server.on('stream', (stream, headers) => {
    try {
      handleStream(stream, headers);
    } catch (err) {
      // (a stream the client reset meanwhile: not the server's end)
      if (err.code !== 'ERR_HTTP2_INVALID_STREAM') throw err;
    }
  });

  const stop = () => {
    server.close();
    for (const session of sessions) session.destroy();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();

  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`READY ${server.address().port}\n`);
  });
}

main();
