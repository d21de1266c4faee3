// The demo's signed-in user. The reference server's demo sign-in
// (server/auth.js) issues a bearer token for a demo user and password; the
// page keeps { user, name, token, expiresAt } in localStorage, so a reload,
// even offline, stays signed in. Each user has a database of their own
// (field-service-<user>): the server binds a client id to its first user.
//
// This is a demo: the password is the same for every user and shown on the
// page. A real app signs in with its identity provider and keeps the rest.

const KEY = 'ferry-demo-session';
const USERS_KEY = 'ferry-demo-users';
/** The first demo user: a first visit starts signed in as them. */
export const FIRST_USER = { id: 'ada', name: 'Ada Lovelace' };
export const DEMO_PASSWORD = 'demo';

function load(key) {
  try { return JSON.parse(localStorage.getItem(key)) || null; } catch { return null; }
}

export const dbName = (user) => `field-service-${user}`;

export class Session {
  #tokens = new Map();      // user -> { token, expiresAt }: a database syncs as its own user to the end
  #signingIn = new Map();   // user -> the sign-in under way

  constructor() {
    const s = load(KEY);
    this.state = s && typeof s.user === 'string' ? s : { user: FIRST_USER.id, name: FIRST_USER.name };
    if (this.state.token) this.#tokens.set(this.state.user, { token: this.state.token, expiresAt: this.state.expiresAt });
    this.users = load(USERS_KEY) || [FIRST_USER];
  }

  get user() { return this.state.user; }
  get name() { return this.state.name || this.state.user; }

  /** Makes `state` the signed-in user, for this tab and the next start of any tab. */
  save(state) {
    this.state = state;
    if (state.token) this.#tokens.set(state.user, { token: state.token, expiresAt: state.expiresAt });
    localStorage.setItem(KEY, JSON.stringify(state));
  }

  /**
   * The sync headers of `user`'s database: their token, signed in when there
   * is none or it is about to expire. Bound to the user, not to whoever is
   * signed in now: a sign-out pushes the leaving user's changes as that user.
   */
  headersFor(user) {
    return async () => {
      let t = this.#tokens.get(user);
      if (!t || !(Date.parse(t.expiresAt) > Date.now() + 60_000)) {
        if (!this.#signingIn.has(user)) this.#signingIn.set(user, signIn(user).finally(() => this.#signingIn.delete(user)));
        const next = await this.#signingIn.get(user);
        t = { token: next.token, expiresAt: next.expiresAt };
        this.#tokens.set(user, t);
        if (this.state.user === user) this.save(next);
      }
      return { authorization: `Bearer ${t.token}` };
    };
  }

  /** The server refused `user`'s token (expired, or the server has a new key): the next sync signs in again. */
  forgetToken(user) {
    this.#tokens.delete(user);
    if (this.state.user !== user || !this.state.token) return;
    const { token, expiresAt, ...rest } = this.state;
    this.save(rest);
  }

  /** The demo users, from the server (kept for offline starts). */
  async loadUsers() {
    try {
      const res = await fetch('/auth/users', { cache: 'no-store' });
      if (!res.ok) return this.users;
      const { users } = await res.json();
      if (Array.isArray(users) && users.length) {
        this.users = users;
        localStorage.setItem(USERS_KEY, JSON.stringify(users));
      }
    } catch { /* offline: the kept list */ }
    return this.users;
  }
}

/** Signs a demo user in. -> { user, name, token, expiresAt }; throws when refused or offline. */
export async function signIn(user) {
  const res = await fetch('/auth/sign-in', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, password: DEMO_PASSWORD }),
    cache: 'no-store',
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`sign-in as ${user} failed: ${body.message || `HTTP ${res.status}`}`);
  return { user: body.user.id, name: body.user.name, token: body.token, expiresAt: body.expiresAt };
}
