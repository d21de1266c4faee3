// Type declarations of `ferry/pwa` (bindings/pwa.js), written by hand: the
// page side of ferry's parts of the app's service worker (`ferry/sw`).

export interface PwaEventMap {
  /** The first version is installed and controls the page: it now loads offline. */
  offlineready: CustomEvent<undefined>;
  /** A new version is installed and waiting; nothing changes until applyUpdate(). */
  updateavailable: CustomEvent<{ registration: ServiceWorkerRegistration | null }>;
  /** Another tab applied an update; this page reloads too unless a listener calls preventDefault(). */
  updated: CustomEvent<undefined>;
  /** The worker's Background Sync event ran the sync callback. */
  backgroundsync: CustomEvent<{ ok: boolean; error?: string }>;
  /** Registration failed; the app keeps working online. */
  error: CustomEvent<{ error: unknown }>;
}

export interface ServiceWorkerOptions {
  /** The service worker script's URL (the app's worker, built with ferry/sw's parts). Default '/sw.js'. */
  url?: string;
  /** Default '/'. */
  scope?: string;
  /** Run by the worker's Background Sync event, e.g. () => db.sync(). */
  sync?: (() => Promise<unknown>) | null;
  /** How often to ask the server for a new version (also when back online). Default one hour; 0 only when back online. */
  checkEveryMs?: number;
}

/** The service worker's controller for this page. */
export interface Pwa extends EventTarget {
  /** The browser has service workers. */
  readonly supported: boolean;
  /** Resolves to the registration, or null (no service workers, or registration failed). */
  readonly ready: Promise<ServiceWorkerRegistration | null>;
  registration: ServiceWorkerRegistration | null;
  updateAvailable: boolean;
  offlineReady: boolean;
  error: unknown;
  /** Background Sync events this page answered. */
  backgroundSyncs: number;
  /** A service worker controls this page. */
  readonly controlled: boolean;
  /** Asks the server for a new version now; true when one is waiting. */
  checkForUpdate(): Promise<boolean>;
  /** Lets the waiting version take over, then reloads the page; resolves (false) only when no update waits. */
  applyUpdate(): Promise<false>;
  /** Arms the Background Sync event; true if the browser has it. */
  requestBackgroundSync(): Promise<boolean>;
  /** The controlling worker's version, or null. */
  version(): Promise<{ version: string; cache: string; files: number } | null>;
  addEventListener<K extends keyof PwaEventMap>(type: K, listener: (this: Pwa, event: PwaEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof PwaEventMap>(type: K, listener: (this: Pwa, event: PwaEventMap[K]) => void, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | EventListenerOptions): void;
}

/** Registers ferry's service worker; never throws (without service workers the app has no offline shell). */
export declare function registerServiceWorker(options?: ServiceWorkerOptions): Pwa;
