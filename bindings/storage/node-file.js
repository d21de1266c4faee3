// 'file' storage (Node): the core's log store over two files through fs,
// synchronous calls so a commit is on disk (fdatasync) before the call that
// made it resolves. A lock file keeps a second process from writing.
import fs from 'node:fs';
import path from 'node:path';
import { FerryError } from '../errors.js';

/** Fills u8 from file descriptor fd at offset off; -> bytes read (fewer at the end of the file). */
export function readAt(fd, u8, off) {
  let got = 0;
  while (got < u8.length) {
    const r = fs.readSync(fd, u8, got, u8.length - got, off + got);
    if (r === 0) break;
    got += r;
  }
  return got;
}

function nodeFile(p) {
  const fd = fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  return {
    read(u8, off) { return readAt(fd, u8, off); },
    write(u8, off) {
      let done = 0;
      while (done < u8.length) done += fs.writeSync(fd, u8, done, u8.length - done, off + done);
    },
    size() { return fs.fstatSync(fd).size; },
    truncate(n) { fs.ftruncateSync(fd, n); },
    sync() { fs.fdatasyncSync(fd); },
    close() { fs.closeSync(fd); },
  };
}

/** Whether process `pid` still runs. */
export function alive(pid) {
  try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; }
}

/** Takes the lock file beside the database, or throws FerryError 'busy'. */
export function acquireLock(lockPath, dbPath) {
  const me = String(process.pid);
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      fs.writeFileSync(lockPath, me, { flag: 'wx' });
      return {
        release() {
          try { if (fs.readFileSync(lockPath, 'utf8') === me) fs.unlinkSync(lockPath); } catch { /* already gone */ }
        },
      };
    } catch (e) {
      if (e.code !== 'EEXIST') throw new FerryError('io', `cannot create lock file ${lockPath}: ${e.message}`, { cause: e });
    }
    let owner = '', age = 0;
    try { owner = fs.readFileSync(lockPath, 'utf8'); age = Date.now() - fs.statSync(lockPath).mtimeMs; } catch { continue; }
    const pid = Number.parseInt(owner, 10);
    if (!pid && age < 2000) throw new FerryError('busy', `${dbPath} is being opened by another process; try again`);
    if (pid && alive(pid)) {
      throw new FerryError('busy', pid === process.pid
        ? `${dbPath} is already open in this process; use the open database or close it first`
        : `${dbPath} is open in process ${pid}; close it there first (or delete ${lockPath} if that process is not ferry)`);
    }
    // The owner died without closing (crash, SIGKILL): its lock is stale.
    try { fs.unlinkSync(lockPath); } catch { /* raced with another opener */ }
  }
  throw new FerryError('busy', `cannot take the lock on ${dbPath}`);
}

export async function openFileStorage(core, name, filePath, opts = {}) {
  if (typeof filePath !== 'string' || !filePath) {
    throw new FerryError('misuse', "storage 'file' needs a path (open({ path: './data/app.db' }))");
  }
  const abs = path.resolve(filePath);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  const lock = acquireLock(`${abs}-lock`, abs);
  try {
    const wrap = opts.wrapFile || ((f) => f);
    const { handle, created, imported } = core.openFiles(abs, wrap(nodeFile(abs), 'main'), wrap(nodeFile(`${abs}-log`), 'log'),
      opts.checkpointBytes || 0, opts.cacheSize || 0, opts.fromFile);
    return { handle, kind: 'file', created, imported, release: () => lock.release() };
  } catch (e) {
    lock.release();
    throw e;
  }
}
