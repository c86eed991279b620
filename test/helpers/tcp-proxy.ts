/**
 * A TCP proxy in front of a real service, for fault tests: `cut()` resets
 * every connection and refuses new ones (the service is down), `hang()` keeps
 * connections but forwards nothing (the service stopped answering), and
 * `restore()` brings it back.
 */
import type { Socket } from "bun";

type Mode = "up" | "cut" | "hang";

interface Pair {
  client: Socket<Pair>;
  upstream: Socket<Pair> | null;
  toUpstream: Uint8Array[];
}

export interface TcpProxy {
  port: number;
  cut(): void;
  hang(): void;
  restore(): void;
  stop(): void;
}

export async function tcpProxy(host: string, port: number): Promise<TcpProxy> {
  let mode: Mode = "up";
  const pairs = new Set<Pair>();

  const server = Bun.listen<Pair>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(client) {
        if (mode === "cut") {
          client.terminate();
          return;
        }
        const pair: Pair = { client, upstream: null, toUpstream: [] };
        client.data = pair;
        pairs.add(pair);
        Bun.connect<Pair>({
          hostname: host,
          port,
          data: pair,
          socket: {
            open(up) {
              pair.upstream = up;
              for (const b of pair.toUpstream) up.write(b);
              pair.toUpstream = [];
            },
            data(_up, chunk) {
              if (mode === "up") pair.client.write(chunk);
            },
            close() {
              pair.client.end();
              pairs.delete(pair);
            },
            error() {},
          },
        }).catch(() => client.terminate());
      },
      data(client, chunk) {
        if (mode !== "up") return;
        const pair = client.data;
        if (pair.upstream) pair.upstream.write(chunk);
        else pair.toUpstream.push(new Uint8Array(chunk));
      },
      close(client) {
        client.data?.upstream?.end();
        if (client.data) pairs.delete(client.data);
      },
      error() {},
    },
  });

  return {
    port: server.port,
    cut() {
      mode = "cut";
      for (const p of pairs) {
        p.client.terminate();
        p.upstream?.terminate();
      }
      pairs.clear();
    },
    hang() {
      mode = "hang";
    },
    restore() {
      mode = "up";
    },
    stop() {
      server.stop(true);
    },
  };
}
