// Type declarations of `ferry` (bindings/index.js), written by hand from
// bindings/index.js, database.js, shared.js, sync.js and files/api.js; the
// error codes come generated from core/ferry_errors.h (bindings/dist/codes.d.ts).
// They use the DOM's Blob, ReadableStream and fetch types: compile with
// lib "dom" (browsers) or @types/node.
import type { FerryErrorCode, FerryCodes } from '../bindings/dist/codes.js';

export type { FerryErrorCode, FerryCodes };

/** ferry's errors: `code` is stable (one of `codes`), the message is for people. */
export declare class FerryError extends Error {
  constructor(code: FerryErrorCode, message?: string, options?: { cause?: unknown });
  name: 'FerryError';
  code: FerryErrorCode;
}

/** The stable error codes by name: codes.BUSY === 'busy'. */
export declare const codes: FerryCodes;

/** Where a database lives; 'auto' picks OPFS, else IndexedDB (Node: 'file' with a path, else 'memory'). */
export type StorageKind = 'opfs' | 'indexeddb' | 'memory' | 'file';

/** A value that can be bound as a parameter (booleans are stored as 0/1, an ArrayBuffer as a blob). */
export type Value = null | boolean | number | bigint | string | Uint8Array | ArrayBuffer;
/** A value as queries return it (integers beyond 2^53 as bigint, blobs as Uint8Array). */
export type ResultValue = null | number | bigint | string | Uint8Array;
/** Positional (`?`) or named (`:x`, `@x`, `$x`; keys with or without the prefix) parameters. */
export type Params = readonly Value[] | { readonly [name: string]: Value };
/** A query's row: a plain object of column name to value. */
export type Row = Record<string, ResultValue>;

export interface ExecResult {
  changes: number;
  lastInsertRowid: number | bigint;
}

export interface OpenOptions {
  /** 1-128 letters, digits, '_', '.' or '-'; one name is one database. */
  name: string;
  /** Default 'auto'. */
  storage?: 'auto' | StorageKind;
  /** The database file ('file' storage, Node); its files go in `<path>.files/`. */
  path?: string;
  /** The sync endpoint, e.g. 'https://example.com/sync'; without it the database never syncs. */
  server?: string;
  /** Headers of every sync and file request, e.g. async () => ({ authorization: `Bearer ${token}` }); asked before each request. */
  headers?: () => Record<string, string> | Promise<Record<string, string>>;
  /** The fetch to sync with (keeps the database in this window, not in the shared worker). */
  fetch?: typeof fetch;
  /** Milliseconds to wait while another tab, worker or process has the database open for writing; then 'busy'. Default 2000. */
  busyTimeout?: number;
  /** Bytes of database pages kept in memory ('opfs', 'file', 'indexeddb'); the rest is read on demand. Default 4 MiB. */
  cacheSize?: number;
  /** The largest 'indexeddb' database, in bytes, which keeps its whole image in memory; a commit past it fails with 'too_big'. Default and maximum 1 GiB. */
  maxIndexedDBBytes?: number;
  /** In a window, run the database in a dedicated worker shared by all tabs of the origin. Default true. */
  worker?: boolean;
  /** Sync at the first open of a database that never synced. Default true. */
  syncOnOpen?: boolean;
  /**
   * Objects per step of a pull page (parsed and checked, or applied in one
   * transaction; 0: a whole page in one). Queries and writes wait for one
   * step, not a page. Default: steps of about 4 ms, whatever the device's speed.
   */
  pullSlice?: number;
  /** Sync when the browser comes back online with changes pending. Default true. */
  syncOnOnline?: boolean;
  /** Every n-th full sync also verifies (see Database.verify); 0 never. Default 10. */
  verifyEvery?: number;
  /** Bytes of downloaded files kept on the device; past it the least recently used go (pending uploads never). Default: no limit. */
  fileBudget?: number;
  /** Start again, empty, when the storage of a database this page stored is gone (else 'storage_lost'). */
  recreate?: boolean;
  /**
   * The bytes of a SQLite database file (db.export() gives one; any rollback-mode or checkpointed
   * WAL-mode SQLite file will do): a database that does not exist yet starts as a copy of it, taken
   * in one step (a crash leaves it empty, never part of it), under a sync client id of its own;
   * pending changes, pull cursors and everything else come with it. Ignored when the database
   * exists (status().created is then false; deleteDatabase() first to replace one). Bytes that are
   * not a whole SQLite database fail with 'not_a_database' and store nothing. A Blob is read in
   * place in a worker (in a window it goes to the database's worker), else read whole first.
   */
  from?: Uint8Array | ArrayBuffer | Blob;
  /**
   * With a server: a database that is not on this device yet starts as a copy of the server's
   * snapshot of what this user may see (GET <server>/snapshot: one download instead of a pull of
   * every object; the first sync then pulls only what changed since). Offline, from a server
   * without snapshots, or when the download is cut or damaged, it starts empty and pulls.
   * Default false.
   */
  snapshot?: boolean;
  /** Why a snapshot was not used (a cut or damaged download, an HTTP error other than 404, a network failure). */
  onSnapshotError?: (error: Error) => void;
  /** false: this database never moves file bytes to or from the server (the references still sync). Default true. */
  fileTransfers?: boolean;
  /** The IndexedDB factory to use ('indexeddb' storage), e.g. fake-indexeddb's; keeps the database in this window. */
  indexedDB?: object;
  /** Milliseconds one sync request may take. Default 60000. */
  syncTimeout?: number;
  /** Times a sync request that got no reply is tried again. Default 2. */
  syncRetries?: number;
  /** The largest sync reply accepted, in bytes ('sync_too_big' past it). Default 32 MiB. */
  maxReplyBytes?: number;
  /** Milliseconds a tab waits for the tab that holds the database to answer. Default 30000. */
  openTimeout?: number;
  /** Milliseconds one file request may take. Default 60000 (downloads 10 minutes). */
  fileTimeout?: number;
  /** Times a file transfer is tried again before it waits for the next sync. Default 8. */
  fileRetries?: number;
  /** Bytes per upload request. Default 4 MiB. */
  fileChunk?: number;
}

export interface DeleteOptions {
  storage?: 'auto' | StorageKind;
  path?: string;
  busyTimeout?: number;
  indexedDB?: object;
}

/** Which objects a sync pulls (everything when omitted); pending changes are always pushed. */
export interface SyncSelection {
  entities?: readonly string[];
  objects?: readonly { entity: string; id: string }[];
  /** Stops the sync at the next safe point (between requests) with FerryError 'aborted'; pending changes stay pending, only applied pages advance the cursor. */
  signal?: AbortSignal;
}

export interface EntityVerification {
  entity: string;
  ok: boolean;
  repaired: number;
}

export interface SyncResult {
  pushed: number;
  pulled: number;
  removed: number;
  conflicts: number;
  /** Conflicts and rejections of this run (see syncErrors()). */
  errors: number;
  ms: number;
  /** Present when the run also verified (every `verifyEvery`th full sync). */
  verified?: EntityVerification[];
}

export interface VerifyResult {
  /** Every entity held what the server says this user may see. */
  ok: boolean;
  /** Objects pulled again because they differed, were missing or extra. */
  repaired: number;
  entities: EntityVerification[];
  ms: number;
}

/** A conflicting or rejected local change; its local values are kept until retried or discarded. */
export interface ObjectSyncError {
  entity: string;
  id: string;
  kind: 'conflict' | 'rejected';
  op: 'upsert' | 'delete';
  /** The server's reason, e.g. 'forbidden' or 'too_large'. */
  reason: string;
  attrs: string[] | null;
  local: Record<string, unknown> | null;
  server: Record<string, unknown> | null;
  at: number;
}

/** A file transfer that failed for another reason than the network. */
export interface FileSyncError {
  entity: string;
  id: string;
  kind: 'file';
  direction: 'upload' | 'download';
  attribute: string;
  hash: string;
  code: FerryErrorCode;
  reason: string;
  at: number | null;
}

export type SyncError = ObjectSyncError | FileSyncError;

export interface Status {
  /** Objects with changes not on the server yet. */
  pendingChanges: number;
  lastSyncAt: Date | null;
  modelVersion: string | null;
  syncErrors: number;
  clientId: string | null;
  storage: StorageKind | null;
  /** The storage held no database when opened (with `from`: the copy was taken). */
  created: boolean;
  closed: boolean;
  /** In a window: whether this tab holds the database (runs its worker). */
  writer?: boolean;
}

/** A reference to a file's bytes, as a `file` attribute holds it (as JSON text). */
export interface FileRef {
  /** SHA-256, hex. */
  hash: string;
  size: number;
  type: string;
  name: string;
}

/** What db.files.put() takes. */
export type FileData =
  | Uint8Array
  | ArrayBuffer
  | Blob
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array>
  | Iterable<Uint8Array>;

export interface FilesStatus {
  uploads: number;
  downloads: number;
  failed: number;
  active: number;
  bytesDone: number;
  bytesTotal: number;
}

/** db.files: the bytes of `file` attributes, in the device's file store, moved on their own queue. */
export interface Files {
  /** Stores `data` on the device and sets entity.attribute of object `id` (which must exist) to its reference; queues the upload. */
  put(entity: string, id: string, attribute: string, data: FileData, options?: { type?: string; name?: string }): Promise<FileRef>;
  /** The bytes (a Uint8Array in Node, a Blob in browsers); null when the attribute holds no file; 'file_pending' while they are downloaded. */
  get(entity: string, id: string, attribute: string, options?: { stream?: false }): Promise<Uint8Array | Blob | null>;
  get(entity: string, id: string, attribute: string, options: { stream: true }): Promise<ReadableStream<Uint8Array> | null>;
  /** A same-origin URL ferry's service worker answers from this device (works offline, with Range). */
  url(entity: string, id: string, attribute: string): string;
  /** Sets the attribute to null; the bytes go once nothing needs them. */
  remove(entity: string, id: string, attribute: string): Promise<void>;
  status(): FilesStatus;
  /** Resolves when no transfer can move now. */
  flush(): Promise<FilesStatus>;
}

/** 'change': local writes (`changes`) or a sync that changed data (`sync`). */
export interface ChangeEvent {
  changes?: number;
  sync?: boolean;
}

/** 'syncerror': a failed run (`error`), a run with conflicts or rejections, or a file that failed (`file`, `code`). */
export interface SyncErrorEvent {
  error?: FerryError;
  conflicts?: number;
  rejected?: number;
  file?: string;
  code?: FerryErrorCode;
}

/** 'progress': a file transfer moved, failed (`error`: its code) or a file was evicted under the fileBudget. */
export interface FileProgress {
  direction?: 'upload' | 'download' | 'evict';
  hash?: string;
  entity?: string;
  id?: string;
  attribute?: string;
  bytesDone?: number;
  bytesTotal?: number;
  error?: string | Error;
}

/** 'progress' during a sync: objects pushed in this run, or pulled (and removed) for `entity`, once each page is applied. */
export interface SyncProgress {
  sync: 'push' | 'pull';
  /** The entity being pulled; null for a push. */
  entity: string | null;
  done: number;
  /** How many objects the entity has, on a first pull of several pages (the server counts them); else null. */
  total: number | null;
}

/** 'commit': the tables a commit (or the commits of one queued call) changed; null when unknown (treat all as changed). */
export interface CommitEvent {
  tables: string[] | null;
  epoch: string;
  seq: number;
}

/** What db.watch(sql, params) without a callback returns: each result, the newest when the loop is slower than the commits. */
export type LiveQuery<T> = AsyncIterable<T[]>;

/** A live query's callback: rows after each run, or a FerryError (rows undefined) when the query fails. */
export type WatchCallback<T> = (rows: T[] | undefined, error?: FerryError) => void;

export interface SignOutEvent {
  name: string;
}

/** The events of Database.on() and their details. */
export interface DatabaseEvents {
  change: ChangeEvent;
  sync: SyncResult;
  syncerror: SyncErrorEvent;
  progress: FileProgress | SyncProgress;
  signout: SignOutEvent;
  commit: CommitEvent;
}

/** The statements of one transaction (see Database.transaction). */
export interface Transaction {
  exec(sql: string, params?: Params): Promise<ExecResult>;
  query<T extends object = Row>(sql: string, params?: Params): Promise<T[]>;
  /** Nests as a savepoint, rolled back alone when fn throws. */
  transaction<R>(fn: (tx: Transaction) => R | Promise<R>): Promise<R>;
}

/** An open database. Calls run one at a time in the order made; a call that commits resolves once the commit is durable. */
export interface Database {
  readonly name: string;
  readonly files: Files;
  /** Runs one statement (or a script without parameters). */
  exec(sql: string, params?: Params): Promise<ExecResult>;
  query<T extends object = Row>(sql: string, params?: Params): Promise<T[]>;
  /** Runs fn in one transaction: committed when it resolves, rolled back when it throws. Use tx inside, not the database. */
  transaction<R>(fn: (tx: Transaction) => R | Promise<R>): Promise<R>;
  /** Pushes pending changes, then pulls (all, or the selection); overlapping calls share one run. */
  sync(selection?: SyncSelection): Promise<SyncResult>;
  /**
   * A live query: the callback gets the rows now and again after every commit (local, another tab's,
   * a pulled page) that changed a table the query reads, once per commit. Returns unsubscribe().
   */
  watch<T extends object = Row>(sql: string, params: Params | undefined, callback: WatchCallback<T>): () => void;
  watch<T extends object = Row>(sql: string, callback: WatchCallback<T>): () => void;
  /** The async-iterator form: `for await (const rows of db.watch(sql, params))`; breaking the loop unsubscribes. */
  watch<T extends object = Row>(sql: string, params?: Params): LiveQuery<T>;
  /** Syncs, compares per-entity digests with the server's and pulls again every object that differs. */
  verify(): Promise<VerifyResult>;
  syncErrors(): Promise<SyncError[]>;
  /** Queues the object's local values again (they win as the latest write). */
  retrySyncError(entity: string, id: string): Promise<void>;
  retrySyncError(error: { entity: string; id: string }): Promise<void>;
  /** Drops the error; the server's state of the object comes with the next sync. */
  discardSyncError(entity: string, id: string): Promise<void>;
  discardSyncError(error: { entity: string; id: string }): Promise<void>;
  status(): Status;
  /** Adds a listener; returns a function that removes it. */
  on<E extends keyof DatabaseEvents>(event: E, listener: (detail: DatabaseEvents[E]) => void): () => void;
  /** Pushes what is pending, then closes and deletes this database; 'unsynced' when changes would be lost, unless { discard: true }. */
  signOut(options?: { discard?: boolean }): Promise<void>;
  /**
   * The database as of the last commit, as one plain SQLite file that any SQLite opens and
   * open({ from }) takes: a Uint8Array in Node (the database once in memory, filled chunk by
   * chunk), a Blob in browsers (built a few MiB at a time; browsers keep large Blobs on disk).
   * It runs between the calls made before and after it. File bytes (db.files) are not in it.
   */
  export(): Promise<Uint8Array | Blob>;
  /**
   * Closes after the calls already made; later calls fail with 'closed'. An 'opfs' or 'file'
   * database's commit log is folded into its database file first, which is then a plain SQLite
   * file (if that fails, nothing is lost: the log keeps the commits and the next close folds them).
   */
  close(): Promise<void>;
}

/** Opens (or creates) the database `options.name` on the device. */
export declare function open(options: OpenOptions): Promise<Database>;

/** Deletes a closed database and everything it holds from the device ('busy' while it is open anywhere). */
export declare function deleteDatabase(name: string, options?: DeleteOptions): Promise<void>;
