#!/usr/bin/env node
// ferry-server: serves the demo PWA (web/) and the ES module on 127.0.0.1.
// The sync endpoint joins it with the sync issue (server/ grows there).
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { staticFiles } from './static.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const port = Number(process.env.PORT || 8080);
const host = process.env.HOST || '127.0.0.1';

const serve = staticFiles({ '/': path.join(root, 'web'), '/bindings/': path.join(root, 'bindings') });
const server = http.createServer((req, res) => serve(req, res, () => {
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
  res.end('not found\n');
}));
server.on('error', (e) => {
  console.error(`ferry-server: cannot listen on ${host}:${port}: ${e.message}${e.code === 'EADDRINUSE' ? ' (set PORT to another port)' : ''}`);
  process.exit(1);
});
server.listen(port, host, () => {
  console.log(`ferry demo on http://${host}:${server.address().port}/`);
});
