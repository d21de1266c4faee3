// HTTP for file transfers (docs/PROTOCOL.md, Files): the same fetch, base
// URL and headers() as sync. Never throws for transport problems: a request
// that reached no server comes back as { status: 0, error }.
import { FerryError } from '../errors.js';
import { isNode as IS_NODE } from '../env.js';


export class FileTransport {
  constructor(opts) {
    this.opts = opts;
    this.base = opts.server.replace(/\/+$/, '');
  }

  async #headers(extra) {
    try {
      return { ...(this.opts.headers ? await this.opts.headers() : {}), ...extra };
    } catch (e) {
      throw new FerryError('sync_auth', `the headers() option failed: ${e?.message || e}`, { cause: e });
    }
  }

  async #fetch(method, hash, { query = '', headers = {}, body, signal, timeout } = {}) {
    const url = `${this.base}/files/${hash}${query}`;
    const timeoutSignal = AbortSignal.timeout(timeout ?? this.opts.fileTimeout ?? 60_000);
    const sig = signal && AbortSignal.any ? AbortSignal.any([signal, timeoutSignal]) : (signal || timeoutSignal);
    try {
      const init = { method, headers: await this.#headers(headers), body, signal: sig, cache: 'no-store' };
      if (body instanceof ReadableStream) init.duplex = 'half';
      return await this.opts.fetch(url, init);
    } catch (e) {
      if (e instanceof FerryError) throw e;
      if (signal?.aborted) throw new FerryError('closed', 'the transfer was stopped: the database is closing');
      return { status: 0, error: `${url}: ${e?.cause?.code || e?.cause?.message || e?.message || e}` };
    }
  }

  static async json(res) {
    try { return await res.json(); } catch { return {}; }
  }

  /** -> { status, complete, received } (received: bytes the server holds of an unfinished upload, or null when it did not say). */
  async head(hash, signal) {
    const res = await this.#fetch('HEAD', hash, { signal });
    if (!res.status) return res;
    const got = res.headers.get('x-ferry-received');
    return { status: res.status, complete: res.status === 200, received: got === null ? null : Number(got) };
  }

  /** PUT bytes at offset. -> { status, body } (body the JSON reply) */
  async put(hash, offset, bytes, signal) {
    // fetch copies a Uint8Array body (the spec takes a copy of the bytes): in
    // Node, where a request body may stream over HTTP/1.1, the chunk goes as a
    // stream of itself instead, so a large file does not leave a copy of
    // every chunk behind for the garbage collector. Browsers stream request
    // bodies only over HTTP/2, so they send the bytes.
    const body = IS_NODE && bytes.length > 0 ? new ReadableStream({ start(c) { c.enqueue(bytes); c.close(); } }) : bytes;
    const res = await this.#fetch('PUT', hash, { query: `?offset=${offset}`, headers: { 'content-type': 'application/octet-stream' }, body, signal });
    if (!res.status) return res;
    return { status: res.status, body: await FileTransport.json(res) };
  }

  /** GET from byte `from` on. -> the Response (status 0 object when unreachable). */
  get(hash, from, signal) {
    return this.#fetch('GET', hash, { headers: from > 0 ? { range: `bytes=${from}-` } : {}, signal, timeout: this.opts.fileTimeout ?? 10 * 60_000 });
  }
}
