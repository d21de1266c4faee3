#!/usr/bin/env node
// ferry-server: the reference sync server with the demo PWA.
//   ferry-server [--model file.json] [--data dir] [--postgres url] [--blobs files|postgres] [--port n] [--host h] [--static dir]
// Defaults: the demo model (server/demo-model.json), ./.ferry-data, PORT or
// 8080, 127.0.0.1, web/. Sync clients use http://HOST:PORT/sync; the page
// at '/' and the ES module at '/bindings/'. `--static none` serves no files.
// With the demo model it signs the demo users in (server/auth.js: POST
// /auth/sign-in, bearer tokens); with another model every client is anonymous.
import path from 'node:path';
import { parseArgs } from 'node:util';
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

/** The options of argv (util.parseArgs: `--port 80` and `--port=80` alike); throws on a bad one. */
function options(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, data: { type: 'string' }, postgres: { type: 'string' }, blobs: { type: 'string' },
      port: { type: 'string' }, host: { type: 'string' }, static: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  const portText = values.port ?? (process.env.PORT || undefined);
  const opts = {
    model: values.model ? path.resolve(values.model) : path.join(root, 'server', 'demo-model.json'),
    demoModel: !values.model,
    data: path.resolve(values.data ?? '.ferry-data'),
    postgres: values.postgres,
    blobs: values.blobs,
    port: portText === undefined ? 8080 : Number(portText),
    host: values.host ?? (process.env.HOST || '127.0.0.1'),
    static: values.static === 'none' ? null : path.resolve(values.static ?? path.join(root, 'web')),
    help: values.help === true,
  };
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error(`the port must be a number 0-65535 (got ${portText})`);
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
    opts = options(process.argv.slice(2));
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
