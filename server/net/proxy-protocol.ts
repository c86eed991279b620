import { isIP } from "node:net";

/**
 * PROXY protocol v1 (the text form nginx sends with `proxy_protocol on`):
 * `PROXY TCP4 <src> <dst> <srcport> <dstport>\r\n`, or `PROXY UNKNOWN…\r\n`.
 * Only connections from trusted proxies may send it; for them the header is
 * optional, so direct clients on those addresses keep working.
 */

const SIGNATURE = "PROXY ";
// The longest v1 header is 107 bytes, CRLF included.
const MAX_HEADER = 107;

export type ProxyParse =
  /** More bytes are needed to decide. */
  | { kind: "incomplete" }
  /** The stream does not start with a PROXY header. */
  | { kind: "none" }
  /** A header: the client's address (undefined for UNKNOWN) and the header's length. */
  | { kind: "header"; source: string | undefined; length: number }
  | { kind: "bad"; reason: string };

export function parseProxyHeader(bytes: Uint8Array): ProxyParse {
  const n = Math.min(bytes.length, SIGNATURE.length);
  for (let i = 0; i < n; i++) {
    if (bytes[i] !== SIGNATURE.charCodeAt(i)) return { kind: "none" };
  }
  if (bytes.length < SIGNATURE.length) return { kind: "incomplete" };
  const end = bytes.indexOf(0x0a);
  if (end === -1) {
    return bytes.length >= MAX_HEADER
      ? { kind: "bad", reason: "PROXY header too long" }
      : { kind: "incomplete" };
  }
  if (end + 1 > MAX_HEADER || bytes[end - 1] !== 0x0d)
    return { kind: "bad", reason: "malformed PROXY header" };
  const line = new TextDecoder().decode(bytes.subarray(0, end - 1));
  const parts = line.split(" ");
  if (parts[1] === "UNKNOWN") return { kind: "header", source: undefined, length: end + 1 };
  if (parts.length !== 6 || (parts[1] !== "TCP4" && parts[1] !== "TCP6")) {
    return { kind: "bad", reason: "malformed PROXY header" };
  }
  const [, family, source, destination, sport, dport] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const version = family === "TCP4" ? 4 : 6;
  const port = (p: string) => /^\d{1,5}$/.test(p) && Number(p) <= 65_535;
  if (isIP(source) !== version || isIP(destination) !== version || !port(sport) || !port(dport)) {
    return { kind: "bad", reason: "malformed PROXY header" };
  }
  return { kind: "header", source, length: end + 1 };
}

/** Whether an address may send PROXY headers: exact addresses, IPv4 CIDRs, or "loopback". */
export function trustChecker(list: readonly string[]): (address: string) => boolean {
  const exact = new Set<string>();
  const nets: { base: number; mask: number }[] = [];
  for (const item of list) {
    if (item === "loopback") {
      nets.push({ base: ipv4ToInt("127.0.0.0"), mask: maskOf(8) });
      exact.add("::1");
    } else if (item.includes("/")) {
      const [ip, bits] = item.split("/") as [string, string];
      nets.push({ base: ipv4ToInt(ip) & maskOf(Number(bits)), mask: maskOf(Number(bits)) });
    } else exact.add(item);
  }
  return (address) => {
    const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
    if (exact.has(address) || exact.has(v4)) return true;
    if (isIP(v4) !== 4) return false;
    const n = ipv4ToInt(v4);
    return nets.some((net) => (n & net.mask) >>> 0 === net.base);
  };
}

function ipv4ToInt(ip: string): number {
  return ip.split(".").reduce((acc, o) => ((acc << 8) | Number(o)) >>> 0, 0);
}

function maskOf(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** Validates a --trust-proxy list; returns the problem, or null. */
export function checkTrustList(list: readonly string[]): string | null {
  for (const item of list) {
    if (item === "loopback") continue;
    const [ip, bits, extra] = item.split("/");
    const okIp = ip !== undefined && (isIP(ip) === 4 || (!bits && isIP(ip) === 6));
    const okBits =
      bits === undefined || (/^\d{1,2}$/.test(bits) && Number(bits) <= 32 && isIP(ip ?? "") === 4);
    if (!okIp || !okBits || extra !== undefined)
      return `not an address or IPv4 CIDR: ${JSON.stringify(item)}`;
  }
  return null;
}
