/**
 * Password hashing with argon2id at OWASP's minimum parameters (19 MiB, two
 * passes, one lane). Bun.password's async functions run on a worker thread, so
 * hashing never blocks the event loop.
 */
import { HasherBusy, type PasswordHasher } from "./ports/runtime.ts";

export const ARGON2 = { algorithm: "argon2id", memoryCost: 19_456, timeCost: 2 } as const;

export function createArgon2Hasher(): PasswordHasher {
  return {
    hash: (password) => Bun.password.hash(password, ARGON2),
    verify: async (password, hash) => {
      try {
        return await Bun.password.verify(password, hash);
      } catch {
        return false; // a hash we cannot read matches nothing
      }
    },
  };
}

/**
 * At most `concurrency` hashes at once, at most `queue` waiting: argon2 costs
 * 19 MiB and tens of milliseconds each, so unbounded concurrent logins could
 * exhaust memory and CPU.
 */
export function boundHasher(
  inner: PasswordHasher,
  concurrency: number,
  queue = 256,
): PasswordHasher {
  let running = 0;
  const waiting: (() => void)[] = [];
  const gate = async <T>(work: () => Promise<T>): Promise<T> => {
    if (running < concurrency) running++;
    else if (waiting.length >= queue) throw new HasherBusy("too many password checks at once");
    // A finishing hash hands its slot straight to the next in line.
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
  return {
    hash: (password) => gate(() => inner.hash(password)),
    verify: (password, hash) => gate(() => inner.verify(password, hash)),
  };
}
