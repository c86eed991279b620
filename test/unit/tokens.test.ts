import { describe, expect, test } from "bun:test";
import { createTokenSigner, type TokenClaims } from "../../server/tokens.ts";

const SECRET = "0123456789abcdef-test-secret";
const NOW = Date.UTC(2026, 0, 15);
const nowSec = Math.floor(NOW / 1000);
const claims: TokenClaims = { userId: 42, gen: 3, expires: nowSec + 3600 };

const signer = createTokenSigner(SECRET);
const token = signer.sign(claims);

/** Replaces one dot-separated part of a token. */
function withPart(t: string, index: number, value: string) {
  const parts = t.split(".");
  parts[index] = value;
  return parts.join(".");
}

describe("token signer", () => {
  test("sign then verify gives the claims back", () => {
    expect(signer.verify(token, NOW)).toEqual(claims);
  });

  test("tokens are short and plain ASCII", () => {
    const t = signer.sign({ userId: 2 ** 31 - 1, gen: 2 ** 31 - 1, expires: 99_999_999_999 });
    expect(t.length).toBeLessThanOrEqual(512);
    expect(t).toMatch(/^[\x21-\x7e]+$/);
    expect(signer.verify(t, NOW)).toEqual({
      userId: 2 ** 31 - 1,
      gen: 2 ** 31 - 1,
      expires: 99_999_999_999,
    });
  });

  test("round trip across a range of claims", () => {
    for (const c of [
      { userId: 1, gen: 0, expires: nowSec + 1 },
      { userId: 7, gen: 1, expires: nowSec + 30 * 86_400 },
      { userId: 123456, gen: 99, expires: 4_102_444_800 },
    ]) {
      expect(signer.verify(signer.sign(c), NOW)).toEqual(c);
    }
  });

  test("signing is deterministic and depends on every claim", () => {
    expect(signer.sign(claims)).toBe(token);
    const others = [
      signer.sign({ ...claims, userId: 43 }),
      signer.sign({ ...claims, gen: 4 }),
      signer.sign({ ...claims, expires: claims.expires + 1 }),
    ];
    for (const o of others) expect(o.split(".").at(-1)).not.toBe(token.split(".").at(-1));
  });

  test("another instance with the same secret accepts the token", () => {
    expect(createTokenSigner(SECRET).verify(token, NOW)).toEqual(claims);
  });

  test("a wrong secret is rejected", () => {
    expect(createTokenSigner(`${SECRET}x`).verify(token, NOW)).toBeNull();
    expect(createTokenSigner("another-secret-of-16+").verify(token, NOW)).toBeNull();
  });

  test("a tampered user id is rejected", () => {
    const parts = token.split(".");
    expect(signer.verify(withPart(token, 1, "43"), NOW)).toBeNull();
    expect(signer.verify(withPart(token, 1, `0${parts[1]}`), NOW)).toBeNull();
    expect(signer.verify(withPart(token, 1, "1"), NOW)).toBeNull();
  });

  test("a tampered generation is rejected", () => {
    expect(signer.verify(withPart(token, 2, "4"), NOW)).toBeNull();
    expect(signer.verify(withPart(token, 2, "03"), NOW)).toBeNull();
    expect(signer.verify(withPart(token, 2, "0"), NOW)).toBeNull();
  });

  test("a tampered expiry is rejected", () => {
    expect(signer.verify(withPart(token, 3, String(claims.expires + 1)), NOW)).toBeNull();
    expect(signer.verify(withPart(token, 3, "9999999999"), NOW)).toBeNull();
  });

  test("a tampered version is rejected", () => {
    expect(signer.verify(withPart(token, 0, "v2"), NOW)).toBeNull();
    expect(signer.verify(withPart(token, 0, "V1"), NOW)).toBeNull();
  });

  test("every single-character change of the mac is rejected", () => {
    const mac = token.split(".")[4]!;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (let i = 0; i < mac.length; i++) {
      for (const ch of [alphabet[(alphabet.indexOf(mac[i]!) + 1) % 64]!, "A", "_"]) {
        if (ch === mac[i]) continue;
        const forged = withPart(token, 4, mac.slice(0, i) + ch + mac.slice(i + 1));
        if (signer.verify(forged, NOW) !== null)
          throw new Error(`mac changed at ${i} to ${ch} was accepted`);
      }
    }
  });

  test("a mac of the wrong length or alphabet is rejected", () => {
    const mac = token.split(".")[4]!;
    for (const m of [
      mac.slice(0, -1),
      `${mac}A`,
      `${mac.slice(0, -1)}=`,
      `${mac.slice(0, -1)}+`,
      "",
      "x",
    ]) {
      expect(signer.verify(withPart(token, 4, m), NOW)).toBeNull();
    }
    expect(signer.verify(`${token}=`, NOW)).toBeNull();
  });

  test("the mac of one token does not verify another's claims", () => {
    const other = signer.sign({ userId: 1, gen: 0, expires: nowSec + 100 });
    const swapped = withPart(token, 4, other.split(".")[4]!);
    expect(signer.verify(swapped, NOW)).toBeNull();
  });

  test("expired tokens are rejected; the boundary second counts as expired", () => {
    const exp = claims.expires * 1000;
    expect(signer.verify(token, exp - 1)).toEqual(claims);
    expect(signer.verify(token, exp)).toBeNull();
    expect(signer.verify(token, exp + 1)).toBeNull();
    expect(signer.verify(token, exp + 86_400_000 * 365)).toBeNull();
    const old = signer.sign({ ...claims, expires: nowSec - 1 });
    expect(signer.verify(old, NOW)).toBeNull();
    expect(signer.verify(signer.sign({ ...claims, expires: 0 }), NOW)).toBeNull();
  });

  test("garbage, empty and very long strings are rejected without throwing", () => {
    const garbage = [
      "",
      ".",
      "....",
      "v1",
      "v1....",
      "v1.1.1.1",
      "v1.a.b.c.d",
      "v1.1.1.1.",
      " ".repeat(10),
      "\u0000",
      "😀".repeat(50),
      `${token} `,
      ` ${token}`,
      `${token}\n`,
      token.replaceAll(".", ","),
      token.toUpperCase(),
      `v1.-1.3.${claims.expires}.${token.split(".")[4]}`,
      `v1.42.3.${claims.expires}.5.${token.split(".")[4]}`,
      "x".repeat(10_000),
      `${token}${"A".repeat(1_000_000)}`,
      `v1.${"9".repeat(11)}.3.${claims.expires}.${token.split(".")[4]}`,
      `v1.42.3.${"9".repeat(13)}.${token.split(".")[4]}`,
    ];
    for (const g of garbage) {
      let result: TokenClaims | null | undefined;
      expect(() => {
        result = signer.verify(g, NOW);
      }).not.toThrow();
      expect(result).toBeNull();
    }
  });

  test("non-ASCII look-alike digits are rejected", () => {
    expect(signer.verify(withPart(token, 1, "٤٢"), NOW)).toBeNull();
    expect(signer.verify(withPart(token, 1, "４２"), NOW)).toBeNull();
  });

  test("a secret shorter than 16 characters is refused", () => {
    expect(() => createTokenSigner("")).toThrow();
    expect(() => createTokenSigner("short")).toThrow();
    expect(() => createTokenSigner("a".repeat(15))).toThrow();
    expect(() => createTokenSigner("a".repeat(16))).not.toThrow();
  });
});
