/**
 * Login tokens: `<user>.<gen>.<expires>.<mac>`, where mac is HMAC-SHA256 over
 * the rest with a key every instance shares. `gen` is the user's token
 * generation in the store; `logout {revoke:true}` bumps it, which invalidates
 * every token issued before without keeping a list of them.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export interface TokenClaims {
  userId: number;
  gen: number;
  /** Seconds since the epoch. */
  expires: number;
}

export interface TokenSigner {
  sign(claims: TokenClaims): string;
  /** The claims of a well-formed token with a valid mac that has not expired, else null. */
  verify(token: string, nowMs: number): TokenClaims | null;
}

const SHAPE = /^v1\.(\d{1,10})\.(\d{1,10})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

export function createTokenSigner(secret: string): TokenSigner {
  if (secret.length < 16) throw new Error("the token secret must be at least 16 characters");
  const mac = (body: string) => createHmac("sha256", secret).update(body).digest("base64url");
  return {
    sign({ userId, gen, expires }) {
      const body = `v1.${userId}.${gen}.${expires}`;
      return `${body}.${mac(body)}`;
    },
    verify(token, nowMs) {
      const m = SHAPE.exec(token);
      if (!m) return null;
      const [, user, gen, expires, given] = m as unknown as [
        string,
        string,
        string,
        string,
        string,
      ];
      const expected = Buffer.from(mac(`v1.${user}.${gen}.${expires}`));
      if (!timingSafeEqual(expected, Buffer.from(given))) return null;
      const claims = { userId: Number(user), gen: Number(gen), expires: Number(expires) };
      return claims.expires * 1000 > nowMs ? claims : null;
    },
  };
}
