// Benchmark helper for bench/files.mjs: in its own process (so the client's
// CPU and memory are its own), the reference sync server on 127.0.0.1 with a
// model of one file attribute, and beside it a plain `http` server, the
// baseline: PUT /plain/<name> writes the body to a file under the same data
// directory (the same disk) and fsyncs it before it answers; GET
// /plain/<name> streams a file back. No ferry logic on that path: no access
// check, no offsets, no hash.
//
//   node bench/files-server.mjs <dataDir> [<server/index.js>]
//
// (the second argument: another tree's server module, to A/B a server change).
//
// Prints one JSON line { url, plain } and answers IPC messages:
//   { cpu: true }        -> { cpu } this process's CPU time in ms
//   { stat: hash }       -> { stat } the blob store's view of the file
//   { clean: id }        -> { cleaned: true } after deleting Photo `id` (the next devices pull a
//                           tombstone, no file) and removing every blob, partial upload and plain file
// Users are bearer tokens: "Bearer alice" is { id: 'alice' }.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';

export const MODEL = { version: '1', entities: { Photo: { attributes: { caption: 'string', image: 'file' }, sync: 'all' } } };

const [dataDir, serverModule] = process.argv.slice(2);
const { createSyncServer } = await import(serverModule ? pathToFileURL(path.resolve(serverModule)).href : '../server/index.js');
const srv = await createSyncServer({
  model: MODEL, dataDir, log: () => {},
  authenticate: (req) => {
    const token = String(req.headers.authorization || '').replace(/^Bearer /, '');
    return token ? { id: token } : null;
  },
});

const plainDir = path.join(dataDir, 'plain');
fs.mkdirSync(plainDir, { recursive: true });
const NAME = /^\/plain\/([A-Za-z0-9._-]+)$/;

const plain = http.createServer(async (req, res) => {
  const m = NAME.exec(req.url);
  if (!m) { req.resume(); res.writeHead(404).end(); return; }
  const file = path.join(plainDir, m[1]);
  try {
    if (req.method === 'PUT') {
      const fh = await fsp.open(file, 'w');
      let received = 0;
      try {
        for await (const chunk of req) { await fh.write(chunk); received += chunk.length; }
        await fh.sync();
      } finally {
        await fh.close();
      }
      const body = JSON.stringify({ received });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    } else if (req.method === 'GET') {
      const { size } = await fsp.stat(file);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
      await pipeline(fs.createReadStream(file), res);
    } else {
      req.resume();
      res.writeHead(405).end();
    }
  } catch (e) {
    if (!res.headersSent) res.writeHead(500).end(String(e?.message || e));
    else res.destroy(e);
  }
});
await new Promise((resolve) => plain.listen(0, '127.0.0.1', resolve));

process.on('message', async (m) => {
  if (m.cpu) {
    const u = process.cpuUsage();
    process.send({ cpu: (u.user + u.system) / 1000 });
  } else if (m.stat) {
    process.send({ stat: { size: await srv.blobs.size(m.stat) } });
  } else if (m.clean) {
    await srv.remove('Photo', [m.clean]);
    for (const sub of ['files/blobs', 'files/partial', 'plain']) {
      const d = path.join(dataDir, sub);
      for (const name of await fsp.readdir(d)) await fsp.rm(path.join(d, name), { recursive: true, force: true });
    }
    process.send({ cleaned: true });
  }
});
process.on('disconnect', async () => { plain.close(); await srv.close(); process.exit(0); });
process.stdout.write(`${JSON.stringify({ url: srv.url, plain: `http://127.0.0.1:${plain.address().port}` })}\n`);
