/**
 * Benchmark users: deterministic names (`<prefix><i>`), registered once per
 * server and reused. Registration and password logins cost an argon2 hash each
 * on the server, so the ids and login tokens are cached in a file under the
 * system temp directory, keyed by host:port:prefix; later runs log in by token.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCode, Limits, RequestType } from "../server/protocol/messages.ts";
import { type Conn, connect, type Endpoint, RequestError } from "./conn.ts";

export interface BenchUser {
  name: string;
  id: number;
  token: string;
}

interface CacheFile {
  version: 1;
  users: Record<string, { id: number; token: string }>;
}

export class UserStore {
  private readonly cache: CacheFile = { version: 1, users: {} };
  private readonly file: string | null;
  private changed = false;

  constructor(
    readonly at: Endpoint,
    readonly prefix: string,
    readonly password: string,
    useCache: boolean,
  ) {
    if (prefix.length === 0 || prefix.length > Limits.nameMax - 6 || /\s/.test(prefix))
      throw new Error(`--prefix must be 1 to ${Limits.nameMax - 6} characters without spaces`);
    this.file = useCache
      ? join(
          tmpdir(),
          `chat-bench-${`${at.host}_${at.port}_${prefix}`.replace(/[^\w.-]/g, "_")}.json`,
        )
      : null;
    if (!this.file) return;
    try {
      const c = JSON.parse(readFileSync(this.file, "utf8")) as CacheFile;
      if (c.version === 1 && c.users) this.cache = c;
    } catch {
      // no cache yet
    }
  }

  /** Whether ids and tokens are kept between runs (a real server; not the relay). */
  get cached(): boolean {
    return this.file !== null;
  }

  name(i: number): string {
    return `${this.prefix}${i}`;
  }

  get(i: number): BenchUser | undefined {
    const name = this.name(i);
    const c = this.cache.users[name];
    return c ? { name, id: c.id, token: c.token } : undefined;
  }

  remember(name: string, id: number, token: string): void {
    this.cache.users[name] = { id, token };
    this.changed = true;
  }

  forget(name: string): void {
    delete this.cache.users[name];
    this.changed = true;
  }

  save(): void {
    if (!this.file || !this.changed) return;
    const tmp = `${this.file}.${process.pid}`;
    writeFileSync(tmp, JSON.stringify(this.cache));
    renameSync(tmp, this.file);
    this.changed = false;
  }

  /**
   * Makes users 0..n-1 exist and have a token: those not cached are registered
   * (name_taken is fine) and logged in by password once, `concurrency` at a
   * time (each costs the server an argon2 hash or two).
   */
  async ensure(n: number, concurrency: number, onProgress?: (done: number, todo: number) => void) {
    await this.checkCache();
    const todo: number[] = [];
    for (let i = 0; i < n; i++) if (!this.get(i)) todo.push(i);
    if (todo.length === 0) return this.list(n);
    let next = 0;
    let done = 0;
    const worker = async (w: number) => {
      let c: Conn | null = null;
      try {
        while (next < todo.length) {
          const i = todo[next++]!;
          // On loopback each worker has its own source address: registrations are
          // throttled per client address.
          if (!c || c.closed) c = await connect(this.at, w, this.sourceFor(w));
          const name = this.name(i);
          await retryRateLimited(async () => {
            try {
              await c!.request(RequestType.register, { name, password: this.password }, 60_000);
            } catch (err) {
              if (!(err instanceof RequestError && err.code === ErrorCode.name_taken)) throw err;
            }
          });
          await this.passwordLogin(c, name);
          await c.request(RequestType.logout, {}, 30_000);
          done++;
          onProgress?.(done, todo.length);
          if (done % 50 === 0) this.save();
        }
      } finally {
        c?.terminate();
      }
    };
    try {
      await Promise.all(
        Array.from({ length: Math.min(concurrency, todo.length) }, (_, w) => worker(w)),
      );
    } finally {
      this.save();
    }
    return this.list(n);
  }

  private checked = false;

  /**
   * One cached token tried against the server: a server that does not know
   * it runs on another database (or another secret), and the whole cache is
   * dropped, rather than have every user fail a login (which the server
   * throttles per address) before registering again.
   */
  private async checkCache(): Promise<void> {
    if (this.checked) return;
    this.checked = true;
    const first = Object.entries(this.cache.users)[0];
    if (!first) return;
    const c = await connect(this.at, -1);
    try {
      await c.request(RequestType.login, { token: first[1].token }, 30_000);
    } catch (err) {
      if (!(err instanceof RequestError && err.code === ErrorCode.bad_credentials)) return;
      process.stderr.write(
        "[bench] the server does not know the cached users (another database?): registering them again\n",
      );
      this.cache.users = {};
      this.changed = true;
    } finally {
      c.terminate();
    }
  }

  private sourceFor(w: number): string | undefined {
    return this.at.host.startsWith("127.") ? `127.0.0.${2 + (w % 250)}` : undefined;
  }

  list(n: number): BenchUser[] {
    return Array.from({ length: n }, (_, i) => {
      const u = this.get(i);
      if (!u) throw new Error(`user ${this.name(i)} is not registered`);
      return u;
    });
  }

  private async passwordLogin(c: Conn, name: string): Promise<Record<string, unknown>> {
    const data = await loginRetrying(c, { name, password: this.password }, 60_000);
    const user = data.user as { id: number };
    this.remember(name, user.id, data.token as string);
    return data;
  }

  /**
   * Logs `u` in on `c`: by token (falling back to the password if the server
   * no longer knows the token), or by password. Returns the login reply data.
   */
  async logIn(c: Conn, u: BenchUser, by: "token" | "password"): Promise<Record<string, unknown>> {
    if (by === "token") {
      try {
        const data = await loginRetrying(c, { token: u.token }, 30_000);
        return data;
      } catch (err) {
        if (!(err instanceof RequestError && err.code === ErrorCode.bad_credentials)) throw err;
        this.forget(u.name);
      }
    }
    let data: Record<string, unknown>;
    try {
      data = await this.passwordLogin(c, u.name);
    } catch (err) {
      // A cache from another database (a server started afresh): the user
      // is not there at all, so register it again (under a new id).
      if (!(err instanceof RequestError && err.code === ErrorCode.bad_credentials)) throw err;
      await retryRateLimited(() =>
        c.request(RequestType.register, { name: u.name, password: this.password }, 60_000),
      );
      data = await this.passwordLogin(c, u.name);
    }
    u.token = data.token as string;
    u.id = (data.user as { id: number }).id;
    return data;
  }
}

/** Runs `op`, again after a pause while the server answers rate_limited (for up to a minute). */
async function retryRateLimited<T>(op: () => Promise<T>): Promise<T> {
  const until = performance.now() + 60_000;
  for (let pause = 500; ; pause = Math.min(pause * 2, 5000)) {
    try {
      return await op();
    } catch (err) {
      const limited = err instanceof RequestError && err.code === ErrorCode.rate_limited;
      if (!limited || performance.now() > until) throw err;
      await Bun.sleep(pause);
    }
  }
}

/**
 * Logs in, retrying `already_online` for a few seconds: a session of the same
 * user that just closed (a previous round or run) may still be ending.
 */
async function loginRetrying(
  c: Conn,
  fields: Record<string, unknown>,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await c.request(RequestType.login, fields, timeoutMs);
    } catch (err) {
      const retry =
        err instanceof RequestError &&
        (err.code === ErrorCode.already_online || err.code === ErrorCode.rate_limited);
      if (!retry || attempt >= 20) throw err;
      await Bun.sleep(250 * Math.min(attempt, 4));
    }
  }
}
