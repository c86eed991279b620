/**
 * NDJSON framing at the byte level: a frame may be split over many reads and a
 * read may hold many frames, and a UTF-8 character may be split between reads,
 * so bytes are only decoded once a whole line is here. Memory is bounded by the
 * frame limit: a line that grows past it is reported at once, not buffered.
 */

const LF = 0x0a;
const CR = 0x0d;

export interface FramerSink {
  /** One complete line, without `\n` or a trailing `\r`; never empty. */
  frame(bytes: Uint8Array): void;
  /** The current line passed the limit; the framer discards everything after this. */
  tooLarge(): void;
}

export interface Framer {
  push(chunk: Uint8Array): void;
  /** Bytes of an incomplete line being held. */
  readonly pending: number;
}

/**
 * The framer keeps views into the chunks it is given (no copy) until their
 * line is complete: callers must not reuse a chunk's memory after push()
 * (Bun hands every `data` event a fresh buffer).
 */
export function createFramer(maxFrame: number, sink: FramerSink): Framer {
  return new LineFramer(maxFrame, sink);
}

// A class, not a closure: one framer lives per connection, and shared
// prototype methods keep an idle connection small.
class LineFramer implements Framer {
  private parts: Uint8Array[] | null = null;
  private held = 0;
  private broken = false;

  constructor(
    private readonly maxFrame: number,
    private readonly sink: FramerSink,
  ) {}

  get pending() {
    return this.held;
  }

  push(chunk: Uint8Array): void {
    let start = 0;
    while (!this.broken) {
      const nl = chunk.indexOf(LF, start);
      if (nl === -1) {
        const rest = chunk.length - start;
        // +1: a trailing `\r` may still be followed by the `\n` and is not counted.
        if (this.held + rest > this.maxFrame + 1) {
          this.fail();
          return;
        }
        if (rest > 0) {
          if (!this.parts) this.parts = [];
          this.parts.push(chunk.subarray(start));
          this.held += rest;
        }
        return;
      }
      let line = this.join(chunk.subarray(start, nl));
      start = nl + 1;
      if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, -1);
      if (line.length > this.maxFrame) {
        this.fail();
        return;
      }
      if (line.length > 0) this.sink.frame(line);
    }
  }

  private join(tail: Uint8Array): Uint8Array {
    const parts = this.parts;
    if (!parts) return tail;
    const out = new Uint8Array(this.held + tail.length);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    out.set(tail, at);
    this.parts = null;
    this.held = 0;
    return out;
  }

  private fail() {
    this.broken = true;
    this.parts = null;
    this.held = 0;
    this.sink.tooLarge();
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

export type Decoded =
  | { kind: "object"; value: Record<string, unknown> }
  | { kind: "blank" }
  | { kind: "bad"; reason: string };

/** A frame's bytes as a JSON object, or why they are not one. */
export function decodeFrame(bytes: Uint8Array): Decoded {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return { kind: "bad", reason: "frame is not valid UTF-8" };
  }
  // Whitespace-only lines count as the empty lines the protocol ignores.
  if (text.trim() === "") return { kind: "blank" };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: "bad", reason: "frame is not valid JSON" };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { kind: "bad", reason: "frame is not a JSON object" };
  }
  return { kind: "object", value: value as Record<string, unknown> };
}

export const encodeFrame = (frame: object): string => `${JSON.stringify(frame)}\n`;
