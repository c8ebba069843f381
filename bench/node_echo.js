'use strict';
// Node echo peer for the HTTP/2-vs-HTTP/1.1 WebSocket comparison of bench/run.py.
//
// Usage: node bench/node_echo.js     (needs tests/servers/node/node_modules: `npm ci` there)
// One Node process, one `ws` library, two listeners on 127.0.0.1 (ports chosen by the OS):
//   - h2c (HTTP/2 prior knowledge) with SETTINGS_ENABLE_CONNECT_PROTOCOL: extended CONNECT
//     `:protocol websocket` on any path opens an echo WebSocket (RFC 8441);
//   - HTTP/1.1: ws's WebSocketServer, echo on any path (RFC 6455).
// No permessage-deflate. Prints `READY <h2port> <h1port>`; stops on SIGTERM/SIGINT or stdin end.
const path = require('node:path');
const http2 = require('node:http2');
const nodeModules = path.join(__dirname, '..', 'tests', 'servers', 'node', 'node_modules');
const WebSocket = require(path.join(nodeModules, 'ws'));

const MAX_PAYLOAD = 64 * 1024 * 1024;

function echo(ws) {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

const h2 = http2.createServer({ settings: { enableConnectProtocol: true } });
h2.on('session', (s) => s.on('error', () => {}));
h2.on('stream', (stream, headers) => {
  stream.on('error', () => {});
  if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket') {
    stream.respond({ ':status': 400 });
    stream.end();
    return;
  }
  stream.respond({ ':status': 200 });
  const ws = new WebSocket(null, undefined, {});
  ws._extensions = {};
  ws.setSocket(stream, Buffer.alloc(0), { maxPayload: MAX_PAYLOAD });
  echo(ws);
});

const h1 = new WebSocket.Server({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: MAX_PAYLOAD });
h1.on('connection', echo);

const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();

let ready = 0;
const announce = () => {
  if (++ready === 2) process.stdout.write(`READY ${h2.address().port} ${h1.address().port}\n`);
};
h2.listen(0, '127.0.0.1', announce);
h1.on('listening', announce);
