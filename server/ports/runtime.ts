/** Small ports that keep services free of globals, so tests can drive them. */

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export interface PasswordHasher {
  /** Both may throw HasherBusy when too many hashes are waiting. */
  hash(password: string): Promise<string>;
  verify(password: string, hash: string): Promise<boolean>;
}

/** Too many password hashes are already waiting; the caller should come back later. */
export class HasherBusy extends Error {}

/** Generates message ids; see server/service/ids.ts for the layout. */
export interface IdGenerator {
  next(): string;
}

/** What services may log; implemented over consola by the composition root. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}
