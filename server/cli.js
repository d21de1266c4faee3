#!/usr/bin/env node
// ferry-server: the reference sync server with the demo PWA.
//   ferry-server [--model file.json] [--data dir] [--postgres url] [--blobs files|postgres] [--port n] [--host h] [--static dir]
// Defaults: the demo model (server/demo-model.json), ./.ferry-data, PORT or
// 8080, 127.0.0.1, web/. Sync clients use http://HOST:PORT/sync; the page
// at '/' and the ES module at '/bindings/'. `--static none` serves no files.
// With the demo model it signs the demo users in (server/auth.js: POST
// /auth/sign-in, bearer tokens); with another model every client is anonymous.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSyncServer } from './index.js';
import { demoAuth } from './auth.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `usage: ferry-server [options]
  --model <file>   the sync model (default: server/demo-model.json)
  --data <dir>     where the server keeps its database and files (default: ./.ferry-data)
  --postgres <url> keep the data in PostgreSQL (postgres://user:password@host:port/db) instead of
                   SQLite under --data; several ferry-server processes may share one database
  --blobs <where>  where the bytes of files go: 'files' (default: a folder under --data) or
                   'postgres' (the --postgres database: processes need no shared folder)
  --port <n>       port (default: PORT or 8080; 0 picks a free one)
  --host <addr>    address to listen on (default: HOST or 127.0.0.1)
  --static <dir>   files served at / (default: web/; 'none' for no files)
  --help`;

function parseArgs(argv) {
  const opts = {
    model: path.join(root, 'server', 'demo-model.json'),
    data: path.resolve('.ferry-data'),
    port: process.env.PORT ? Number(process.env.PORT) : 8080,
    host: process.env.HOST || '127.0.0.1',
    static: path.join(root, 'web'),
    demoModel: true,
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) { value = arg.slice(eq + 1); arg = arg.slice(0, eq); }
    const take = () => {
      if (value !== undefined) return value;
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case '--model': opts.model = path.resolve(take()); opts.demoModel = false; break;
      case '--data': opts.data = path.resolve(take()); break;
      case '--postgres': opts.postgres = take(); break;
      case '--blobs': opts.blobs = take(); break;
      case '--port': opts.port = Number(take()); break;
      case '--host': opts.host = take(); break;
      case '--static': { const v = take(); opts.static = v === 'none' ? null : path.resolve(v); break; }
      case '--help': case '-h': opts.help = true; break;
      default: throw new Error(`unknown option ${arg}`);
    }
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error(`the port must be a number 0-65535 (got ${opts.port})`);
  return opts;
}

/** Demo rows for an empty database (the demo model's entities only). */
async function seedDemo(srv) {
  const has = (name) => Object.hasOwn(srv.model.entities, name) && srv.model.entities[name].sync !== 'never';
  if (has('Region')) {
    await srv.write('Region', [
      { id: 'region-north', name: 'North' }, { id: 'region-south', name: 'South' }, { id: 'region-west', name: 'West' },
    ]);
  }
  if (has('Customer')) {
    await srv.write('Customer', [
      { id: 'cust-ada', name: 'Ada Works', email: 'ada@example.com', credit: '1200.00', active: true, since: '2024-03-01T09:00:00.000Z', region: 'region-north' },
      { id: 'cust-bell', name: 'Bell & Sons', email: 'office@bell.example', credit: '350.50', active: true, since: '2025-06-15T08:30:00.000Z', region: 'region-south' },
      { id: 'cust-cobalt', name: 'Cobalt Heating', email: 'info@cobalt.example', credit: '0.00', active: false, since: '2023-11-20T14:00:00.000Z', region: 'region-west' },
    ]);
  }
  if (has('Visit')) {
    await srv.write('Visit', [
      { id: 'visit-1', note: 'Boiler service, annual check', status: 'planned', customer: 'cust-ada' },
      { id: 'visit-2', note: 'Replaced pressure valve', status: 'done', customer: 'cust-bell' },
      { id: 'visit-3', note: 'Quote for a heat pump', status: 'planned', customer: 'cust-cobalt' },
      { id: 'visit-4', note: 'Old inspection (archived: never sent to devices)', status: 'archived', customer: 'cust-ada' },
    ]);
  }
  if (has('Memo')) {
    await srv.write('Memo', [
      { id: 'memo-ada-1', owner: 'ada', text: 'Ada: bring the spare valve to Bell & Sons' },
      { id: 'memo-ben-1', owner: 'ben', text: 'Ben: ask Cobalt about the heat pump budget' },
    ]);
  }
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`ferry-server: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  if (opts.help) { console.log(USAGE); return; }
  let srv;
  try {
    const auth = opts.demoModel ? demoAuth({ dataDir: opts.data }) : null;
    srv = await createSyncServer({
      model: opts.model, dataDir: opts.data, backend: opts.postgres ? { postgres: opts.postgres } : 'sqlite', blobs: opts.blobs, port: opts.port, host: opts.host, static: opts.static,
      seed: opts.demoModel ? seedDemo : null,
      authenticate: auth?.authenticate ?? null, routes: auth?.routes ?? null,
    });
  } catch (e) {
    if (e.code === 'EADDRINUSE') {
      console.error(`ferry-server: cannot listen on ${opts.host}:${opts.port}: the port is in use (set PORT or --port to another port)`);
    } else {
      console.error(`ferry-server: ${e.code ? `${e.code}: ` : ''}${e.message}`);
    }
    process.exit(1);
  }
  console.log(`ferry demo on ${srv.url}/ (sync: ${srv.url}/sync, model ${srv.model.version}, data in ${opts.data})`);
  if (opts.demoModel) console.log('demo users: ada and ben, password "demo" (the page signs in as ada at first)');
  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    try { await srv.close(); } finally { process.exit(signal === 'SIGINT' ? 130 : 0); }
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main();
