/**
 * One client connection: bytes in through the framer, requests answered one
 * at a time in arrival order (Bun does not await an async `data` handler, so
 * order is kept here), frames out through the outbox.
 */
import { disconnect, dispatch, type Outcome, refuse } from "../dispatch.ts";
import { defaultMessages } from "../protocol/errors.ts";
import { createFramer, decodeFrame, type Framer, type FramerSink } from "../protocol/framer.ts";
import { ErrorCode, Limits, PushType, RequestType, type UserRef } from "../protocol/messages.ts";
import type { Ctx, Session } from "../service/context.ts";
import { createOutbox, type NetOutbox, type OutboxOptions } from "./outbox.ts";
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

/** A connection is also its session; `end(code)` closes it on purpose. */
export interface Connection extends Pick<Session, "end"> {
  readonly session: Session;
  readonly outbox: NetOutbox;
  /** Time of the last complete frame received (incomplete ones do not count). */
  readonly lastFrameAt: number;
  data(chunk: Uint8Array): void;
  drain(): void;
  /** The socket closed: store what was not delivered and end the login. Resolves when done. */
  closed(): Promise<void>;
  /** Stops taking requests; resolves when the one being answered is done. */
  quiesce(): Promise<void>;
  /** Resolves once the socket closed and the login ended. */
  readonly finished: Promise<void>;
  /** Why the server closed it (an error code), or "peer" when the client hung up. */
  readonly closeReason: string;
}

// How long a connection closed on purpose may take to write its last frames.
const LINGER_MS = 1000;

// Requests waiting their turn before the socket is paused (backpressure on a
// client that pipelines faster than we answer), and when it is resumed.
const MAX_WAITING = 256;
const RESUME_AT = 64;

// Shared empty values for idle connections, replaced on first use.
const NO_REQUESTS: never[] = [];
const NO_SLOTS: never[] = [];

// Requests that may run side by side on one connection, and how many at once.
const PIPELINED: ReadonlySet<unknown> = new Set([RequestType.chat, RequestType.groupChat]);
const MAX_PIPELINED = 64;

interface Slot {
  outcome: Outcome | null;
}
// The preamble of a proxied connection before its first bytes (shared: empty).
const NOTHING_YET = new Uint8Array(0);

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
  const conn = new ClientConnection(ctx, id, peer, socket, opts, opts.proxied);
  if (!opts.proxied) conn.admit(peer);
  return conn;
}

/**
 * A class, not a closure: thousands of these live at once, and with shared
 * prototype methods an idle connection costs a few small objects. It is also
 * the session the services see, and the framer's and outbox's owner.
 */
class ClientConnection implements Connection, Session, FramerSink, OutboxOptions {
  remote: string;
  user: UserRef | null = null;
  ending = false;
  pushedRow = 0;
  readonly out: NetOutbox;
  lastFrameAt: number;

  private readonly framer: Framer;
  private closing = false;
  private accepting = true;
  private paused = false;
  private waiting: Waiting[] = NO_REQUESTS;
  private tokens: number;
  private refilledAt: number;
  // Until the PROXY header (if any) has been read: the bytes seen so far.
  private preamble: Uint8Array | null;
  private admitted: string | null = null;
  // The request loop: `busy` while it runs; `running` to wait for it.
  private busy = false;
  private running: Promise<void> | null = null;
  private badFrames: number[] | null = null;
  // Delivery order of pipelined chats (see Session.ticket).
  private ticketsIssued = 0;
  private nextTurn = 0;
  private doneEarly: Set<number> | null = null;
  private turnWaiting: Map<number, () => void> | null = null;
  // Answers of pipelined requests, in request order, and who waits for one to leave.
  private inTurn: Slot[] = NO_SLOTS;
  private turnWaiters: (() => void)[] | null = null;
  private ended: Promise<void> | null = null;
  private loginEnded: Promise<void> | null = null;
  private linger: ReturnType<typeof setTimeout> | undefined;
  private whenFinished: { promise: Promise<void>; resolve: () => void } | null = null;
  closeReason = "peer";
  private isFinished = false;

  constructor(
    private readonly ctx: Ctx,
    readonly id: number,
    peer: string,
    private readonly socket: SocketLike,
    private readonly opts: NetOptions,
    proxied: boolean,
  ) {
    this.remote = peer;
    this.lastFrameAt = opts.now();
    this.refilledAt = this.lastFrameAt;
    this.tokens = opts.rateLimit;
    this.preamble = proxied ? NOTHING_YET : null;
    this.framer = createFramer(opts.maxFrame, this);
    this.out = createOutbox(socket, this);
  }

  get session(): Session {
    return this;
  }

  get outbox(): NetOutbox {
    return this.out;
  }

  // --- OutboxOptions: the outbox asks its owner ------------------------------
  get maxBytes() {
    return this.opts.maxOutputBytes;
  }

  onOverflow() {
    this.shut(ErrorCode.slow_consumer, defaultMessages.slow_consumer);
  }

  schedule(outbox: NetOutbox) {
    this.opts.schedule(outbox);
  }

  // --- FramerSink --------------------------------------------------------------
  frame(bytes: Uint8Array) {
    const now = this.opts.now();
    this.lastFrameAt = now;
    const decoded = decodeFrame(bytes);
    if (decoded.kind === "blank") return;
    if (decoded.kind === "bad") return this.badFrame(decoded.reason);
    if (!this.accepting) return;
    const rate = this.opts.rateLimit;
    this.tokens = Math.min(rate, this.tokens + ((now - this.refilledAt) * rate) / 1000);
    this.refilledAt = now;
    if (this.waiting === NO_REQUESTS) this.waiting = [];
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.waiting.push(decoded.value);
    } else this.waiting.push({ seq: decoded.value.seq, [LIMITED]: true });
    if (!this.paused && this.waiting.length >= MAX_WAITING) {
      this.paused = true;
      this.socket.pause();
    }
    this.kick();
  }

  tooLarge() {
    this.shut(ErrorCode.frame_too_large, `frame is larger than ${this.opts.maxFrame} bytes`);
  }

  // --- Connection --------------------------------------------------------------
  data(chunk: Uint8Array) {
    if (this.closing) return;
    if (this.preamble) return this.readPreamble(chunk);
    this.framer.push(chunk);
  }

  drain() {
    this.out.drain();
  }

  closed(): Promise<void> {
    this.ended ??= (async () => {
      this.closing = true;
      this.accepting = false;
      this.waiting = NO_REQUESTS;
      clearTimeout(this.linger);
      this.out.close();
      if (this.admitted !== null) this.opts.leave(this.admitted);
      await this.running;
      await this.endLogin();
    })().finally(() => {
      this.isFinished = true;
      this.whenFinished?.resolve();
    });
    return this.ended;
  }

  get finished(): Promise<void> {
    if (this.isFinished) return Promise.resolve();
    if (!this.whenFinished) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.whenFinished = { promise, resolve };
    }
    return this.whenFinished.promise;
  }

  end(code: ErrorCode, message: string = defaultMessages[code]) {
    this.shut(code, message);
  }

  async quiesce() {
    this.accepting = false;
    this.waiting = NO_REQUESTS;
    await this.running;
  }

  ticket(): number {
    return this.ticketsIssued++;
  }

  turn(ticket: number): Promise<void> {
    if (ticket <= this.nextTurn) return Promise.resolve();
    return new Promise((resolve) => {
      if (!this.turnWaiting) this.turnWaiting = new Map();
      this.turnWaiting.set(ticket, resolve);
    });
  }

  done(ticket: number): void {
    if (ticket < this.nextTurn || this.doneEarly?.has(ticket)) return;
    if (ticket > this.nextTurn) {
      if (!this.doneEarly) this.doneEarly = new Set();
      this.doneEarly.add(ticket);
      return;
    }
    this.nextTurn++;
    while (this.doneEarly?.delete(this.nextTurn)) this.nextTurn++;
    const next = this.turnWaiting?.get(this.nextTurn);
    if (next) {
      this.turnWaiting!.delete(this.nextTurn);
      next();
    }
  }

  /** Takes a place for the client's address, or refuses the connection. */
  admit(address: string): boolean {
    if (!this.opts.admit(address)) {
      this.shut(ErrorCode.rate_limited, "too many connections from this address");
      return false;
    }
    this.admitted = address;
    return true;
  }

  // --- inside ------------------------------------------------------------------
  private badFrame(reason: string) {
    const now = this.opts.now();
    const recent = (this.badFrames ?? []).filter((t) => now - t < Limits.badFrameWindowMs);
    recent.push(now);
    this.badFrames = recent;
    if (recent.length >= Limits.maxBadFrames)
      this.shut(ErrorCode.bad_frame, `${reason}; too many bad frames`);
    else
      this.out.send(
        JSON.stringify({ type: PushType.error, code: ErrorCode.bad_frame, message: reason }),
      );
  }

  private kick() {
    if (this.busy) return;
    this.busy = true;
    this.running = this.run();
  }

  private async run() {
    try {
      await this.serve();
    } finally {
      this.busy = false;
      // An idle connection keeps neither the loop's promise nor its queue.
      this.running = null;
      if (this.waiting.length === 0) this.waiting = NO_REQUESTS;
    }
    // Requests that arrived while the loop was finishing.
    if (this.waiting.length > 0 && this.accepting) this.kick();
  }

  private async serve() {
    while (this.waiting.length > 0 && this.accepting) {
      const body = this.waiting.shift()!;
      if (this.paused && this.waiting.length <= RESUME_AT) {
        this.paused = false;
        this.socket.resume();
      }
      if (body[LIMITED]) {
        this.answerInTurn(refuse(body, ErrorCode.rate_limited, "too many requests; slow down"));
      } else if (PIPELINED.has(body.type)) {
        // Chats run side by side (a cross-instance one waits for its
        // confirmation); their replies still leave in request order.
        while (this.inTurn.length >= MAX_PIPELINED) await this.turnTaken();
        this.answerInTurn(dispatch(this.ctx, this, body));
      } else {
        // Anything else waits for the chats before it and holds back those
        // after it, so it sees (and leaves) the session as a client expects.
        while (this.inTurn.length > 0) await this.turnTaken();
        const outcome = await dispatch(this.ctx, this, body);
        this.out.send(outcome.reply);
        if (outcome.after) {
          await outcome
            .after()
            .catch((err: unknown) =>
              this.ctx.log.error("follow-up failed", { conn: this.id, err }),
            );
        }
      }
    }
    while (this.inTurn.length > 0) await this.turnTaken();
  }

  /** Queues an answer that may still be coming; replies are sent in the order queued. */
  private answerInTurn(outcome: Outcome | Promise<Outcome>) {
    const slot: Slot = { outcome: null };
    if (this.inTurn === NO_SLOTS) this.inTurn = [];
    this.inTurn.push(slot);
    if ("reply" in outcome) {
      slot.outcome = outcome;
      this.sendInTurn();
    } else {
      outcome.then((o) => {
        slot.outcome = o;
        this.sendInTurn();
      });
    }
  }

  private sendInTurn() {
    const slots = this.inTurn;
    let sent = 0;
    while (sent < slots.length && slots[sent]!.outcome)
      this.out.send(slots[sent++]!.outcome!.reply);
    if (sent === 0) return;
    this.inTurn = sent === slots.length ? NO_SLOTS : slots.slice(sent);
    const waiters = this.turnWaiters;
    this.turnWaiters = null;
    if (waiters) for (const w of waiters) w();
  }

  /** Resolves when at least one answer in the queue has been sent. */
  private turnTaken(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.turnWaiters) this.turnWaiters = [];
      this.turnWaiters.push(resolve);
    });
  }

  /**
   * Closes on purpose: the login ends now (what was not sent is stored), the
   * peer gets a last `error` push, and the socket closes once that is written
   * or after LINGER_MS, whichever comes first.
   */
  private shut(code: ErrorCode, message: string) {
    if (this.closing) return;
    this.closing = true;
    this.closeReason = code;
    this.accepting = false;
    this.waiting = NO_REQUESTS;
    this.out.flush();
    const socket = this.socket;
    this.out.seal(JSON.stringify({ type: PushType.error, code, message }), () => socket.end());
    this.linger = setTimeout(() => socket.terminate(), LINGER_MS);
    void this.endLogin();
  }

  // The login ends once per connection, when it is closed on purpose or when
  // the socket closes, whichever comes first; both wait for the same end.
  private endLogin() {
    this.loginEnded ??= disconnect(this.ctx, this).catch((err: unknown) =>
      this.ctx.log.error("ending the session failed", { conn: this.id, err }),
    );
    return this.loginEnded;
  }

  /** A trusted proxy's connection: take the client's address from a PROXY header, if one comes. */
  private readPreamble(chunk: Uint8Array) {
    const before = this.preamble!;
    const seen = new Uint8Array(before.length + chunk.length);
    seen.set(before);
    seen.set(chunk, before.length);
    const parsed = parseProxyHeader(seen);
    if (parsed.kind === "incomplete") {
      this.preamble = seen;
      return;
    }
    this.preamble = null;
    if (parsed.kind === "bad") return this.shut(ErrorCode.bad_frame, parsed.reason);
    let rest = seen;
    if (parsed.kind === "header") {
      if (parsed.source) this.remote = parsed.source;
      rest = seen.subarray(parsed.length);
    }
    if (this.admit(this.remote) && rest.length > 0) this.framer.push(rest);
  }
}
