/**
 * One client connection: bytes in through the framer, requests answered one
 * at a time in arrival order (Bun does not await an async `data` handler, so
 * order is kept here), frames out through the outbox.
 */
import { disconnect, dispatch, refuse } from "../dispatch.ts";
import { defaultMessages } from "../protocol/errors.ts";
import { createFramer, decodeFrame } from "../protocol/framer.ts";
import { ErrorCode, Limits, PushType } from "../protocol/messages.ts";
import type { Ctx, Session } from "../service/context.ts";
import { createOutbox, type NetOutbox } from "./outbox.ts";
import { parseProxyHeader } from "./proxy-protocol.ts";

/** What a connection needs of a Bun socket. */
export interface SocketLike {
  write(data: string | Uint8Array): number;
  end(): void;
  /** Closes at once, without waiting for unsent data (RST). */
  terminate(): void;
  pause(): void;
  resume(): void;
}

export interface NetOptions {
  maxFrame: number;
  maxOutputBytes: number;
  /** Requests per second per connection; the bucket holds one second's worth. */
  rateLimit: number;
  schedule(outbox: NetOutbox): void;
  now(): number;
  /** Takes a place for a client address; false when it has too many connections. */
  admit(address: string): boolean;
  /** Gives the place back when the connection ends. */
  leave(address: string): void;
}

export interface Connection {
  readonly session: Session;
  readonly outbox: NetOutbox;
  /** Time of the last complete frame received (incomplete ones do not count). */
  readonly lastFrameAt: number;
  data(chunk: Uint8Array): void;
  drain(): void;
  /** The socket closed: store what was not delivered and end the login. Resolves when done. */
  closed(): Promise<void>;
  /** Sends an `error` push with a closing code and closes the connection. */
  closeWith(code: ErrorCode, message?: string): void;
  /** Stops taking requests; resolves when the one being answered is done. */
  quiesce(): Promise<void>;
  /** Resolves once the socket closed and the login ended. */
  readonly finished: Promise<void>;
}

// How long a connection closed on purpose may take to write its last frames.
const LINGER_MS = 1000;

// Requests waiting their turn before the socket is paused (backpressure on a
// client that pipelines faster than we answer), and when it is resumed.
const MAX_WAITING = 256;
const RESUME_AT = 64;

/** A request refused for the rate limit: still answered in its turn, so replies keep their order. */
const LIMITED = Symbol("limited");
type Waiting = Record<string, unknown> & { [LIMITED]?: true };

export function createConnection(
  ctx: Ctx,
  id: number,
  peer: string,
  socket: SocketLike,
  opts: NetOptions & {
    /** The peer is a trusted proxy: the stream may start with a PROXY header naming the client. */
    proxied: boolean;
  },
): Connection {
  let lastFrameAt = opts.now();
  let closing = false;
  let accepting = true;
  let paused = false;
  let waiting: Waiting[] = [];
  let tokens = opts.rateLimit;
  let refilledAt = opts.now();
  // Until the PROXY header (if any) has been read: the bytes seen so far.
  let preamble: Uint8Array | null = opts.proxied ? new Uint8Array(0) : null;
  let admitted: string | null = null;
  // The request loop: `busy` while it runs; `running` to wait for it.
  let busy = false;
  let running: Promise<void> | null = null;
  let badFrames: number[] = [];
  let ended: Promise<void> | null = null;
  let linger: ReturnType<typeof setTimeout> | undefined;
  let onFinished!: () => void;
  const finished = new Promise<void>((r) => {
    onFinished = r;
  });

  const outbox = createOutbox(socket, {
    maxBytes: opts.maxOutputBytes,
    onOverflow: () => shut(ErrorCode.slow_consumer, defaultMessages.slow_consumer),
    schedule: opts.schedule,
  });
  const session: Session = {
    id,
    remote: peer,
    user: null,
    ending: false,
    pushedRow: 0,
    out: outbox,
    end: (code, message = defaultMessages[code]) => shut(code, message),
  };

  const push = (code: ErrorCode, message: string) =>
    outbox.send(JSON.stringify({ type: PushType.error, code, message }));

  const badFrame = (reason: string) => {
    const now = opts.now();
    badFrames = badFrames.filter((t) => now - t < Limits.badFrameWindowMs);
    badFrames.push(now);
    if (badFrames.length >= Limits.maxBadFrames)
      shut(ErrorCode.bad_frame, `${reason}; too many bad frames`);
    else push(ErrorCode.bad_frame, reason);
  };

  const run = async () => {
    try {
      await serve();
    } finally {
      busy = false;
    }
    // Requests that arrived while the loop was finishing.
    if (waiting.length > 0 && accepting) kick();
  };
  const serve = async () => {
    while (waiting.length > 0 && accepting) {
      const body = waiting.shift()!;
      if (paused && waiting.length <= RESUME_AT) {
        paused = false;
        socket.resume();
      }
      const outcome = body[LIMITED]
        ? refuse(body, ErrorCode.rate_limited, "too many requests; slow down")
        : await dispatch(ctx, session, body);
      outbox.send(outcome.reply);
      if (outcome.after) {
        await outcome
          .after()
          .catch((err: unknown) => ctx.log.error("follow-up failed", { conn: id, err }));
      }
    }
  };
  const kick = () => {
    if (busy) return;
    busy = true;
    running = run();
  };

  const framer = createFramer(opts.maxFrame, {
    frame(bytes) {
      lastFrameAt = opts.now();
      const decoded = decodeFrame(bytes);
      if (decoded.kind === "blank") return;
      if (decoded.kind === "bad") return badFrame(decoded.reason);
      if (!accepting) return;
      const now = opts.now();
      tokens = Math.min(opts.rateLimit, tokens + ((now - refilledAt) * opts.rateLimit) / 1000);
      refilledAt = now;
      if (tokens >= 1) {
        tokens -= 1;
        waiting.push(decoded.value);
      } else waiting.push({ seq: decoded.value.seq, [LIMITED]: true });
      if (!paused && waiting.length >= MAX_WAITING) {
        paused = true;
        socket.pause();
      }
      kick();
    },
    tooLarge() {
      shut(ErrorCode.frame_too_large, `frame is larger than ${opts.maxFrame} bytes`);
    },
  });

  /**
   * Closes on purpose: the login ends now (what was not sent is stored), the
   * peer gets a last `error` push, and the socket closes once that is written
   * or after LINGER_MS, whichever comes first.
   */
  const shut = (code: ErrorCode, message: string) => {
    if (closing) return;
    closing = true;
    accepting = false;
    waiting = [];
    outbox.flush();
    outbox.seal(JSON.stringify({ type: PushType.error, code, message }), () => socket.end());
    linger = setTimeout(() => socket.terminate(), LINGER_MS);
    void endLogin();
  };

  // The login ends once per connection, when it is closed on purpose or when
  // the socket closes, whichever comes first; both wait for the same end.
  let loginEnded: Promise<void> | null = null;
  const endLogin = () =>
    (loginEnded ??= disconnect(ctx, session).catch((err: unknown) =>
      ctx.log.error("ending the session failed", { conn: id, err }),
    ));

  const admit = (address: string) => {
    if (!opts.admit(address)) {
      shut(ErrorCode.rate_limited, "too many connections from this address");
      return false;
    }
    admitted = address;
    return true;
  };

  /** A trusted proxy's connection: take the client's address from a PROXY header, if one comes. */
  const readPreamble = (chunk: Uint8Array) => {
    const seen = new Uint8Array(preamble!.length + chunk.length);
    seen.set(preamble!);
    seen.set(chunk, preamble!.length);
    const parsed = parseProxyHeader(seen);
    if (parsed.kind === "incomplete") {
      preamble = seen;
      return;
    }
    preamble = null;
    if (parsed.kind === "bad") return shut(ErrorCode.bad_frame, parsed.reason);
    let rest = seen;
    if (parsed.kind === "header") {
      if (parsed.source) session.remote = parsed.source;
      rest = seen.subarray(parsed.length);
    }
    if (admit(session.remote) && rest.length > 0) framer.push(rest);
  };

  const self: Connection = {
    session,
    finished,
    outbox,
    get lastFrameAt() {
      return lastFrameAt;
    },
    data(chunk) {
      if (closing) return;
      if (preamble) return readPreamble(chunk);
      framer.push(chunk);
    },
    drain() {
      outbox.drain();
    },
    closed() {
      ended ??= (async () => {
        closing = true;
        accepting = false;
        waiting = [];
        clearTimeout(linger);
        outbox.close();
        if (admitted !== null) opts.leave(admitted);
        await running;
        await endLogin();
      })().finally(onFinished);
      return ended;
    },
    closeWith(code, message = defaultMessages[code]) {
      shut(code, message);
    },
    async quiesce() {
      accepting = false;
      waiting = [];
      await running;
    },
  };
  if (!preamble) admit(peer);
  return self;
}
