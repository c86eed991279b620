/** Bun.listen handlers: they only move bytes and events into connections. */
import type { Socket, TCPSocketListener, TCPSocketListenOptions } from "bun";
import { ErrorCode, PushType } from "../protocol/messages.ts";
import type { Ctx } from "../service/context.ts";
import { type Connection, createConnection, type NetOptions } from "./connection.ts";
import { createFlusher } from "./outbox.ts";

export interface ListenOptions {
  hostname: string;
  port: number;
  maxFrame: number;
  maxOutputBytes: number;
  idleTimeoutSec: number;
  rateLimit: number;
  maxConnections: number;
  maxPerAddress: number;
  /** Peers whose PROXY protocol headers are believed. */
  trusted(address: string): boolean;
  reusePort?: boolean;
}

export interface Listener {
  readonly hostname: string;
  readonly port: number;
  readonly connections: ReadonlySet<Connection>;
  /** Stops accepting; open connections stay. */
  stopAccepting(): void;
  /** Closes every connection and waits for their logins to end. */
  closeAll(): Promise<void>;
  /** Writes now what the connections would write at the end of this tick. */
  flushOutput(): void;
}

// The socket's data is the connection itself (one object fewer per socket);
// undefined for a connection refused at the door.
type ConnData = Connection | undefined;

export function listen(ctx: Ctx, opts: ListenOptions): Listener {
  const connections = new Set<Connection>();
  let nextId = 1;
  const perAddress = new Map<string, number>();
  const flusher = createFlusher();
  const net: NetOptions = {
    maxFrame: opts.maxFrame,
    maxOutputBytes: opts.maxOutputBytes,
    rateLimit: opts.rateLimit,
    schedule: flusher.schedule,
    now: () => ctx.clock.now(),
    admit(address) {
      const n = perAddress.get(address) ?? 0;
      if (n >= opts.maxPerAddress) return false;
      perAddress.set(address, n + 1);
      return true;
    },
    leave(address) {
      const n = (perAddress.get(address) ?? 1) - 1;
      if (n <= 0) perAddress.delete(address);
      else perAddress.set(address, n);
    },
  };
  // Refused before any state is made for it: a static frame, written once.
  const FULL = `${JSON.stringify({ type: PushType.error, code: ErrorCode.rate_limited, message: "server is full" })}\n`;

  const finish = (conn: Connection) => {
    if (!connections.delete(conn)) return conn.closed();
    ctx.log.debug("disconnected", {
      conn: conn.session.id,
      user: conn.session.user?.id,
      reason: conn.closeReason,
    });
    return conn.closed().catch((err: unknown) => ctx.log.error("disconnect failed", { err }));
  };

  // @types/bun declares reusePort only for connect; Bun.listen honours it.
  const options = {
    hostname: opts.hostname,
    port: opts.port,
    reusePort: opts.reusePort ?? false,
    socket: {
      open(s: Socket<ConnData>) {
        if (connections.size >= opts.maxConnections) {
          s.write(FULL);
          s.end();
          return;
        }
        s.setNoDelay(true);
        const conn = createConnection(ctx, nextId++, s.remoteAddress, s, {
          ...net,
          proxied: opts.trusted(s.remoteAddress),
        });
        s.data = conn;
        connections.add(conn);
        ctx.log.debug("connected", { conn: conn.session.id, remote: s.remoteAddress });
      },
      data(s: Socket<ConnData>, chunk: Buffer) {
        s.data?.data(chunk);
      },
      drain(s: Socket<ConnData>) {
        s.data?.drain();
      },
      close(s: Socket<ConnData>) {
        if (s.data) void finish(s.data);
      },
      end(s: Socket<ConnData>) {
        s.end();
      },
      error(s: Socket<ConnData>, err: Error) {
        ctx.log.debug("socket error", { conn: s.data?.session.id, err: err.message });
      },
    },
  };
  const server: TCPSocketListener<ConnData> = Bun.listen<ConnData>(
    options as TCPSocketListenOptions<ConnData>,
  );

  const sweep = setInterval(
    () => {
      const limit = ctx.clock.now() - opts.idleTimeoutSec * 1000;
      for (const c of connections) if (c.lastFrameAt < limit) c.end("idle_timeout");
    },
    Math.min(1000, opts.idleTimeoutSec * 250),
  );
  sweep.unref();

  return {
    hostname: server.hostname,
    port: server.port,
    connections,
    stopAccepting() {
      clearInterval(sweep);
      server.stop(false);
    },
    async closeAll() {
      clearInterval(sweep);
      const all = [...connections];
      for (const c of all) c.end("shutdown");
      // Each socket closes once its last frame is written (or after a linger);
      // a close event that never comes is not waited for past that.
      await Promise.race([Promise.all(all.map((c) => c.finished)), Bun.sleep(1500)]);
      await Promise.all(all.map(finish));
      server.stop(true);
    },
    flushOutput: flusher.flushNow,
  };
}
