'use strict';
// Node echo peer over TLS (wss) for the wss section of bench/run.py.
//
// Usage: node bench/node_tls_echo.js CERTFILE KEYFILE   (needs tests/servers/node/node_modules)
// One `ws` WebSocketServer on an `https` server on 127.0.0.1 (port chosen by the OS), echo on
// any path, no permessage-deflate. Prints `READY <port>`; stops on SIGTERM/SIGINT or stdin end.
const fs = require('node:fs');
const https = require('node:https');
const path = require('node:path');
const nodeModules = path.join(__dirname, '..', 'tests', 'servers', 'node', 'node_modules');
const WebSocket = require(path.join(nodeModules, 'ws'));

const [certfile, keyfile] = process.argv.slice(2);
const server = https.createServer({ cert: fs.readFileSync(certfile), key: fs.readFileSync(keyfile) });
const wss = new WebSocket.Server({ server, perMessageDeflate: false, maxPayload: 64 * 1024 * 1024 });
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
server.on('tlsClientError', () => {});

const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();

server.listen(0, '127.0.0.1', () => process.stdout.write(`READY ${server.address().port}\n`));
