// Type declarations of `ferry/server` (server/index.js, server/auth.js,
// server/model.js), written by hand. Requests are typed by the fields ferry
// reads, so Node's http.IncomingMessage fits without @types/node here.
import type { Database, FerryErrorCode } from './index.js';

export type AttributeType = 'string' | 'integer' | 'decimal' | 'boolean' | 'datetime' | 'binary' | 'file';
export type SyncMode = 'all' | 'nothing-clear' | 'nothing-preserve' | 'never' | { where: string };
export type ConflictPolicy = 'last-write-wins' | 'server-wins' | 'client-wins';

export interface EntityDefinition {
  attributes?: Record<string, AttributeType | { type: AttributeType }>;
  /** Association name to target entity. */
  associations?: Record<string, string | { target: string } | { entity: string }>;
  /** Default 'all'. */
  sync?: SyncMode;
  /** Default 'last-write-wins'. */
  conflict?: ConflictPolicy;
  /** When devices fetch the bytes of file attributes: at sync ('eager', default) or on first db.files.get ('lazy'). */
  files?: 'eager' | 'lazy';
}

/** A sync model: entities with typed attributes, associations, a sync mode and a conflict policy (README, Sync). */
export interface Model {
  /** Change it whenever the model changes. */
  version: string;
  entities: Record<string, EntityDefinition>;
}

/** A model after validation: defaults filled in. */
export interface NormalizedModel {
  version: string;
  entities: Record<string, {
    attributes: Record<string, AttributeType>;
    associations: Record<string, string>;
    sync: SyncMode;
    conflict: ConflictPolicy;
    files?: 'eager' | 'lazy';
  }>;
}

export interface ModelError {
  entity: string;
  rule: string;
  message: string;
}

/** The parts of a request ferry reads (Node's http.IncomingMessage has them). */
export interface ServerRequest {
  method?: string;
  url?: string;
  headers: Record<string, string | string[] | undefined>;
}

/** Whoever authenticate() says made a request (any object; the anonymous default is {}): `$user` in a `where` filter is its `id`, `$user.field` its fields. */
export interface User {
  id?: string | number;
}

export interface AuthorizeRequest<U extends object = User> {
  user: U;
  entity: string;
  id: string;
  op: 'upsert' | 'delete';
  /** The values the mutation writes. */
  values: Record<string, unknown>;
  /** The object's values on the server, null when it has none. */
  current: Record<string, unknown> | null;
}

/** An error a route throws to answer `{ error: code, message }` with `status`. */
export interface HttpError extends Error {
  status: number;
  code: string;
}

export interface RouteContext {
  /** Reads the request body as JSON (400 when it is not, 413 past bodyLimit). */
  json(): Promise<unknown>;
  /** `throw fail(401, 'unauthenticated', '…')`. */
  fail(status: number, code: string, message: string): HttpError;
  server: SyncServer;
}

export interface RouteReply {
  status?: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** 'METHOD /path' (GET, POST, PUT, PATCH, DELETE; an exact path, not under /sync). */
export type Routes = Record<string, (req: ServerRequest, context: RouteContext) => RouteReply | Promise<RouteReply>>;

/** U: the type of the users authenticate() returns. */
export interface SyncServerOptions<U extends object = User> {
  /** The model, or the path of its JSON file; validated ('model_invalid'). */
  model: Model | string;
  /** Folder of the server's database and blobs (created); a fresh temporary one, deleted at close(), when omitted. */
  dataDir?: string;
  /**
   * Where the data lives: 'sqlite' (default, under dataDir, one process) or
   * PostgreSQL (several server processes may share it; needs the npm package pg).
   */
  backend?: 'sqlite' | { postgres: string; max?: number };
  /** Default 0 (any free port). */
  port?: number;
  /** Default '127.0.0.1'. */
  host?: string;
  /** A folder served at '/' (with ferry's modules at '/bindings/'; the app's own service worker is one of its files), or null. */
  static?: string | null;
  /** The user of a request, or null for 401. Default: everyone is anonymous {}. */
  authenticate?: ((req: ServerRequest) => U | null | undefined | false | Promise<U | null | undefined | false>) | null;
  /** Whether the user may make this change (false: rejected 'forbidden'); runs inside the push's transaction. */
  authorize?: ((request: AuthorizeRequest<U>) => boolean | Promise<boolean>) | null;
  /** More JSON routes beside /sync (they do not pass through authenticate). */
  routes?: Routes | null;
  /** Largest request body in bytes (413 past it). Default 16 MiB. */
  bodyLimit?: number;
  /** Largest pull page in objects. Default 5000. */
  pageLimit?: number;
  /** Largest pull page in bytes (one larger object still goes alone). Default 4 MiB. */
  pageBytes?: number;
  /** Run on a new, empty database. */
  seed?: Record<string, Record<string, unknown>[]> | ((server: SyncServer) => void | Promise<void>) | null;
  /** Cross-origin clients allowed: '*', an origin or a list of them; null (default) same origin only. */
  cors?: '*' | string | readonly string[] | null;
  /** Milliseconds after which tombstones and unacknowledged results are purged; 0 keeps everything. Default 90 days. */
  tombstoneHorizon?: number;
  /**
   * Where the bytes of files go: 'files' (default, a folder under dataDir), 'postgres'
   * (the postgres backend's database) or the app's own BlobStore (the app closes it).
   */
  blobs?: 'files' | 'postgres' | BlobStore;
  /** Largest file in bytes the server accepts (413 above it). Default 1 GiB. */
  fileLimit?: number;
  /** Milliseconds after which unreferenced blobs and abandoned uploads are collected. Default 1 day. */
  fileGrace?: number;
  /**
   * GET /sync/snapshot gives a user a ready SQLite file of what they may see, for a new device's
   * first sync (built under dataDir/snapshots by ferry's own client; docs/PROTOCOL.md, Snapshots).
   * false answers it 404. Default true.
   */
  snapshots?: boolean;
  /**
   * Bytes the snapshots of all users may take on disk together (each user's is about twice what
   * they may see: the builder's database and the image). Past it, after a build, the users whose
   * snapshot was asked for longest ago lose theirs; their next download builds it anew. Default 1 GiB.
   */
  snapshotBytes?: number;
  /** Errors and migrations. Default console.error. */
  log?: (message: string) => void;
}

export interface SyncServer {
  /** http://host:port; clients sync against `${url}/sync`. */
  url: string;
  port: number;
  dataDir: string;
  /** The normalized model it serves. */
  model: NormalizedModel;
  /** The server's own ferry database (read it; write through write() and remove()). */
  db: Database;
  /** The blob store that keeps the bytes of files. */
  blobs: BlobStore;
  /** Largest file in bytes accepted; may be changed while the server runs. */
  fileLimit: number;
  /** The Node http.Server. */
  server: { close(callback?: (err?: Error) => void): unknown; address(): unknown };
  /** Server-side upserts: write('Customer', [{ id, name }]). */
  write(entity: string, objects: readonly ({ id: string } & Record<string, unknown>)[], options?: { ts?: number }): Promise<{ version: number }>;
  /** Server-side deletes (tombstones). */
  remove(entity: string, ids: readonly string[], options?: { ts?: number }): Promise<{ version: number }>;
  /** The highest version given to any change so far. */
  version(): Promise<number>;
  /** Purges what is older than the tombstone horizon now. */
  purge(options?: { horizon?: number; now?: number }): Promise<{ purged: number; tombstones: number; files: { blobs: number; partial: number } }>;
  close(): Promise<void>;
}

/** What a blob store refuses an append with. */
export type BlobErrorCode = 'offset_mismatch' | 'too_long' | 'hash_mismatch' | 'cut';
export declare class BlobError extends Error {
  constructor(code: BlobErrorCode, message: string, extra?: { received?: number });
  code: BlobErrorCode;
  /** offset_mismatch: where the upload stands. */
  extra?: { received?: number };
}

/** Bytes of a file as a store reads or is given them. */
export type ByteSource = AsyncIterable<Uint8Array>;

/** Where the server keeps the bytes of files, by SHA-256 (server/README.md, Files). */
export interface BlobStore {
  /** The size of the stored blob, or null when it is not stored whole. */
  size(hash: string): Promise<number | null> | number | null;
  /** Bytes of `uploader`'s partial upload of `hash` (0: none). */
  received(hash: string, uploader: string): Promise<number> | number;
  /** Appends `body` at `offset` to `uploader`'s upload of a `size`-byte file; throws BlobError when it does not fit. */
  append(hash: string, size: number, offset: number, body: ByteSource, uploader: string): Promise<{ received: number; complete: boolean }>;
  /** Bytes start-end (inclusive) of a stored blob. */
  read(hash: string, start: number, end: number): ByteSource | Promise<ByteSource>;
  /** Every stored blob (`at`: ms when stored). */
  list(): AsyncIterable<{ hash: string; at: number }>;
  remove(hash: string): Promise<void> | void;
  /** Deletes partial uploads untouched since `before` (ms); resolves to how many. */
  sweep(before: number): Promise<number> | number;
}

/** The folder blob store (the default): `new FileBlobStore(dir)`. */
export declare const FileBlobStore: { new (dir: string): BlobStore };

/** The PostgreSQL blob store (blobs: 'postgres'), opened on the server's database connection. */
export declare const PostgresBlobStore: { open(db: Database): Promise<BlobStore> };

/** Starts a sync server (docs/PROTOCOL.md under /sync). */
export declare function createSyncServer<U extends object = User>(options: SyncServerOptions<U>): Promise<SyncServer>;

/** Reads and validates a model (an object or a JSON file's path); throws FerryError 'model_invalid' listing every error. */
export declare function loadModel(model: Model | string): NormalizedModel;

/** Validates a parsed model against every rule. */
export declare function validateModel(json: unknown): { ok: boolean; errors: ModelError[]; model: NormalizedModel | null };

/** "Entity: rule: message", one a line. */
export declare function formatErrors(errors: readonly ModelError[]): string;

/** Compiles an entity's `where` filter into a function of the user giving SQL over its columns and the parameters. */
export declare function compileWhere(entity: NormalizedModel['entities'][string], whereText: string): (user: object) => { sql: string; params: unknown[] };

export declare const DEFAULT_BODY_LIMIT: number;
export declare const DEFAULT_PAGE_LIMIT: number;
export declare const DEFAULT_PAGE_BYTES: number;

export interface DemoUser {
  readonly id: string;
  readonly name: string;
}

export interface DemoAuth {
  users: DemoUser[];
  password: string;
  /** A signed token for a demo user. */
  issue(userId: string): Promise<{ token: string; user: DemoUser; expiresAt: string }>;
  /** The user of a request's bearer token, or null. */
  authenticate(req: ServerRequest): Promise<DemoUser | null>;
  /** POST /auth/sign-in and GET /auth/users. */
  routes: Routes;
}

/** The demo's sign-in: demo users, a shared password and HS256 bearer tokens, its key kept in dataDir. */
export declare function demoAuth(options: { dataDir: string; users?: readonly { id: string; name: string }[]; password?: string; ttl?: number }): DemoAuth;
export declare const DEMO_USERS: readonly DemoUser[];
export declare const DEMO_PASSWORD: string;

export type { FerryErrorCode };
