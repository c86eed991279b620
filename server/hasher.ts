/**
 * Password hashing with argon2id at OWASP's minimum parameters (19 MiB, two
 * passes, one lane). Bun.password's async functions run on a worker thread, so
 * hashing never blocks the event loop.
 */
import type { PasswordHasher } from "./ports/runtime.ts";

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
