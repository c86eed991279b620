/**
 * One client connection: bytes in through the framer, requests answered one
 * at a time in arrival order (Bun does not await an async `data` handler, so
 * order is kept here), frames out through the outbox.
 */
import { disconnect, dispatch } from "../dispatch.ts";
import { defaultMessages } from "../protocol/errors.ts";
import { createFramer, decodeFrame } from "../protocol/framer.ts";
import { ErrorCode, Limits, PushType } from "../protocol/messages.ts";
import type { Ctx, Session } from "../service/context.ts";
import { createOutbox, type NetOutbox } from "./outbox.ts";

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
  schedule(outbox: NetOutbox): void;
  now(): number;
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

export function createConnection(
  ctx: Ctx,
  id: number,
  remote: string,
  socket: SocketLike,
  opts: NetOptions,
): Connection {
  let lastFrameAt = opts.now();
  let closing = false;
  let accepting = true;
  let paused = false;
  let waiting: Record<string, unknown>[] = [];
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
    remote,
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
    while (waiting.length > 0 && accepting) {
      const body = waiting.shift()!;
      if (paused && waiting.length <= RESUME_AT) {
        paused = false;
        socket.resume();
      }
      const outcome = await dispatch(ctx, session, body);
      outbox.send(outcome.reply);
      if (outcome.after) {
        await outcome
          .after()
          .catch((err: unknown) => ctx.log.error("follow-up failed", { conn: id, err }));
      }
    }
    running = null;
  };

  const framer = createFramer(opts.maxFrame, {
    frame(bytes) {
      lastFrameAt = opts.now();
      const decoded = decodeFrame(bytes);
      if (decoded.kind === "blank") return;
      if (decoded.kind === "bad") return badFrame(decoded.reason);
      if (!accepting) return;
      waiting.push(decoded.value);
      if (!paused && waiting.length >= MAX_WAITING) {
        paused = true;
        socket.pause();
      }
      running ??= run();
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

  const self: Connection = {
    session,
    finished,
    outbox,
    get lastFrameAt() {
      return lastFrameAt;
    },
    data(chunk) {
      if (!closing) framer.push(chunk);
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
  return self;
}
