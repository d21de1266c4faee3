// `ferry/sw`: ferry's parts for an app's own Workbox service worker (ES
// modules; bundle the worker, e.g. with Vite, and inject the precache
// manifest with workbox-build). workbox-precaching, workbox-routing and
// workbox-strategies are peer dependencies (the app's own copies). Check a
// worker with lib "webworker".
import type { WorkboxPlugin } from 'workbox-core';
import type { PrecacheController, PrecacheEntry } from 'workbox-precaching';
import type { Route } from 'workbox-routing';
import type { Strategy, StrategyHandler, StrategyOptions } from 'workbox-strategies';

/** An injectManifest entry: a URL, or { url, revision, integrity }. */
export type ManifestEntry = string | PrecacheEntry;

/** The prefix of the per-version precache names: 'ferry-precache-<version>'. */
export const PRECACHE_PREFIX: 'ferry-precache-';

/** Workbox's PrecacheController for one version, in a cache of its own. */
export interface VersionedPrecache extends PrecacheController {
  /** manifestVersion() of the entries (16 hex digits). */
  readonly version: string;
  /** PRECACHE_PREFIX + version (or the prefix given). */
  readonly cacheName: string;
}

export interface PrecacheVersionOptions {
  /** Default PRECACHE_PREFIX; every cache with it but this version's is deleted on activate. */
  prefix?: string;
  /** Plugins for the precache's strategy (Workbox's). */
  plugins?: WorkboxPlugin[];
  /** Fetch an entry missing from the cache (default true). */
  fallbackToNetwork?: boolean;
}

/**
 * Precaches the manifest in the cache `<prefix><version>`: entries with
 * `integrity` are checked by the browser at install (a mismatch fails it),
 * entries an older version holds with the same revision are copied rather
 * than downloaded, older versions' caches are deleted on activate. Adds the
 * install and activate listeners; no skipWaiting().
 */
export function precacheVersion(entries: ReadonlyArray<ManifestEntry>, options?: PrecacheVersionOptions): VersionedPrecache;

/** The version of a manifest: a 64-bit hash (16 hex digits) over each entry's URL, revision and integrity. */
export function manifestVersion(entries: ReadonlyArray<ManifestEntry>): string;

export interface ShellNavigationOptions extends StrategyOptions {
  /** How long the network has before the precached page answers (default 3). */
  networkTimeoutSeconds?: number;
}

/** Network first, but the network's page only if it is this version's (its integrity, else the precached copy's SHA-256). */
export class ShellNavigation extends Strategy {
  constructor(options: ShellNavigationOptions & { precache: PrecacheController });
  readonly precache: PrecacheController;
  /** Is `body` the page this version precached for `page` (an absolute URL)? */
  isThisVersion(page: string, body: ArrayBuffer): Promise<boolean>;
  protected _handle(request: Request, handler: StrategyHandler): Promise<Response>;
}

/** The Route for navigations to the precached pages ('/' and '/x/' as their index.html), answered by ShellNavigation. */
export function shellRoute(precache: PrecacheController, options?: ShellNavigationOptions): Route;

/** The precached page URL a navigation to `url` opens, or null. */
export function shellPageOf(precache: PrecacheController, url: URL): string | null;

/** The path db.files.url() gives: …/__ferry/files/<db>/<entity>/<id>/<attribute>. */
export const FILE_ROUTE: RegExp;

/** The Route for file URLs (answered from the device's file store) and the listener for a writer tab's port. */
export function deviceFilesRoute(): Route;

/** The Background Sync tag ferry/pwa's requestBackgroundSync() registers. */
export const SYNC_TAG: 'ferry-sync';

/** Answers the Background Sync event `tag` by asking an open page to run db.sync(). */
export function wakePagesToSync(tag?: string): void;

/** Skips waiting when a page asks (ferry/pwa's applyUpdate(), workbox-window's messageSkipWaiting()); answers version queries. */
export function updateOnRequest(options?: { precache?: PrecacheController }): void;

export interface FerryRoutesOptions {
  /** The precache whose version pwa.version() reports (precacheVersion's). */
  precache?: PrecacheController;
  /** The db.files.url() route (default true). */
  files?: boolean;
  /** The Background Sync tag to answer, or false (default SYNC_TAG). */
  sync?: string | false;
  /** Skip waiting when a page asks, and answer version queries (default true). */
  update?: boolean;
}

/** Registers ferry's parts: the file route (first: call it before your own routes), the update flow, background sync. */
export function ferryRoutes(options?: FerryRoutesOptions): { files: Route | null };
