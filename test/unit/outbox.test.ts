import { describe, expect, test } from "bun:test";
import {
  createFlusher,
  createOutbox,
  type NetOutbox,
  type Writer,
} from "../../server/net/outbox.ts";
import type { NewOffline } from "../../server/ports/store.ts";

/** How many bytes the fake socket takes of a write of `len` bytes. */
type Take = "full" | number;

class FakeWriter implements Writer {
  calls: Uint8Array[] = [];
  accepted: Uint8Array[] = [];
  kinds: string[] = [];
  /** Consumed front to back; when empty, `fallback` applies. */
  plan: Take[] = [];
  fallback: Take = "full";

  write(data: string | Uint8Array): number {
    this.kinds.push(typeof data === "string" ? "string" : "bytes");
    const b = typeof data === "string" ? Buffer.from(data) : Uint8Array.from(data);
    this.calls.push(b);
    const take = this.plan.length > 0 ? this.plan.shift()! : this.fallback;
    if (take === "full") {
      this.accepted.push(b);
      return b.length;
    }
    if (take < 0) return take;
    const n = Math.min(take, b.length);
    this.accepted.push(b.slice(0, n));
    return n;
  }

  /** Everything the socket took, as one string. */
  get text(): string {
    return Buffer.concat(this.accepted).toString("utf8");
  }

  get bytes(): Buffer {
    return Buffer.concat(this.accepted);
  }
}

function setup(maxBytes = 1000, writer = new FakeWriter()) {
  const scheduled: NetOutbox[] = [];
  let overflows = 0;
  const out = createOutbox(writer, {
    maxBytes,
    onOverflow: () => {
      overflows++;
    },
    schedule: (o) => {
      scheduled.push(o);
    },
  });
  return {
    out,
    writer,
    scheduled,
    get overflows() {
      return overflows;
    },
  };
}

const msg = (n: number, text = `message ${n}`): { json: string; stored: NewOffline } => {
  const json = JSON.stringify({
    type: "message",
    id: String(1000 + n),
    from: { id: 1, name: "a" },
    to: 2,
    text,
    ts: 5,
  });
  return { json, stored: { userId: 2, msgId: String(1000 + n), message: json, ts: 5 } };
};

const byteLen = (s: string) => Buffer.byteLength(s);

/** A promise's state, without waiting for it to settle. */
async function peek<T>(p: Promise<T>): Promise<{ settled: boolean; value?: T }> {
  const marker = Symbol("pending");
  const v = await Promise.race([
    p,
    new Promise<typeof marker>((r) => setImmediate(() => r(marker))),
  ]);
  return v === marker ? { settled: false } : { settled: true, value: v as T };
}

describe("outbox: batching", () => {
  test("frames queued in one tick go out in one write call", () => {
    const s = setup();
    expect(s.out.send('{"a":1}')).toBe(true);
    expect(s.out.send('{"b":"é"}')).toBe(true);
    expect(s.out.send('{"c":"😀"}')).toBe(true);
    expect(s.scheduled.length).toBe(1);
    expect(s.scheduled[0]).toBe(s.out);
    expect(s.writer.calls.length).toBe(0);
    s.out.flush();
    expect(s.writer.calls.length).toBe(1);
    expect(s.writer.text).toBe('{"a":1}\n{"b":"é"}\n{"c":"😀"}\n');
    expect(s.out.queued).toBe(0);
  });

  test("queued counts UTF-8 bytes including the newline", () => {
    const s = setup();
    s.out.send("é😀✓");
    expect(s.out.queued).toBe(2 + 4 + 3 + 1);
  });

  test("after a flush the next send schedules again", () => {
    const s = setup();
    s.out.send("a");
    s.out.flush();
    s.out.send("b");
    s.out.send("c");
    expect(s.scheduled.length).toBe(2);
    s.out.flush();
    expect(s.writer.calls.length).toBe(2);
    expect(s.writer.text).toBe("a\nb\nc\n");
  });

  test("a flush with nothing queued writes nothing", () => {
    const s = setup();
    s.out.flush();
    expect(s.writer.calls.length).toBe(0);
  });
});

describe("outbox: partial writes", () => {
  test("a partial write keeps exactly the rest; drain writes it", () => {
    const s = setup();
    s.writer.plan = [5];
    s.out.send("hello world");
    s.out.send("second");
    s.out.flush();
    expect(s.writer.text).toBe("hello");
    expect(s.out.queued).toBe(byteLen("hello world\nsecond\n") - 5);
    s.out.drain();
    expect(s.writer.text).toBe("hello world\nsecond\n");
    expect(s.out.queued).toBe(0);
  });

  test("while blocked, sends do not schedule and flush does not write", () => {
    const s = setup();
    s.writer.plan = [0];
    s.out.send("one");
    s.out.flush();
    expect(s.writer.calls.length).toBe(1);
    s.out.send("two");
    s.out.send("three");
    expect(s.scheduled.length).toBe(1);
    s.out.flush();
    expect(s.writer.calls.length).toBe(1);
    s.out.drain();
    expect(s.writer.calls.length).toBeGreaterThan(1);
    expect(s.writer.text).toBe("one\ntwo\nthree\n");
  });

  test("a write of 0 bytes keeps everything", () => {
    const s = setup();
    s.writer.plan = [0];
    s.out.send("abc");
    s.out.flush();
    expect(s.out.queued).toBe(4);
    s.out.drain();
    expect(s.writer.text).toBe("abc\n");
  });

  test("a write of -1 (closed socket) keeps everything", () => {
    const s = setup();
    s.writer.plan = [-1];
    const m = msg(1);
    s.out.send(m.json, m.stored);
    s.out.flush();
    expect(s.writer.text).toBe("");
    expect(s.out.queued).toBe(byteLen(m.json) + 1);
    expect(s.out.takeUnsent(false)).toEqual([m.stored]);
    expect(s.out.queued).toBe(0);
  });

  test("a multi-byte character split by a partial write arrives whole", () => {
    const frame = "é✓张😀";
    const total = byteLen(`${frame}\n`);
    for (let cut = 1; cut < total; cut++) {
      const s = setup();
      s.writer.plan = [cut];
      s.out.send(frame);
      s.out.flush();
      s.out.drain();
      expect(s.writer.bytes.equals(Buffer.from(`${frame}\n`))).toBe(true);
    }
  });

  test("every pattern of partial writes delivers the exact byte stream", () => {
    const frames = [
      '{"t":"é"}',
      '{"t":"✓✓"}',
      '{"t":"张三"}',
      '{"t":"😀x😀"}',
      "{}",
      '{"t":"plain ascii text"}',
    ];
    const want = Buffer.from(frames.map((f) => `${f}\n`).join(""));
    for (const a of [1, 2, 3, 5, 7, 11]) {
      for (const b of [0, 1, 2, 4, 9, 13, 100]) {
        const s = setup(1_000_000);
        s.writer.fallback = a;
        s.writer.plan = [b];
        // Frames arrive over several ticks, mixed with partial writes and drains.
        s.out.send(frames[0]!);
        s.out.send(frames[1]!);
        s.out.flush();
        s.out.send(frames[2]!);
        s.out.flush();
        s.out.drain();
        s.out.send(frames[3]!);
        s.out.send(frames[4]!);
        s.out.flush();
        s.out.drain();
        s.out.send(frames[5]!);
        s.out.flush();
        let guard = 0;
        while (s.out.queued > 0 && guard++ < 10_000) s.out.drain();
        const got = s.writer.bytes;
        if (!got.equals(want)) {
          throw new Error(`write sizes ${a}/${b}: got ${JSON.stringify(got.toString())}`);
        }
        expect(s.out.queued).toBe(0);
      }
    }
  });

  test("the rest of a partial frame is written before the frames queued after it", () => {
    const s = setup();
    s.writer.plan = [3, "full"];
    s.out.send("abcdef");
    s.out.flush();
    s.out.send("xyz");
    s.out.drain();
    expect(s.writer.text).toBe("abcdef\nxyz\n");
  });

  test("drain after a partial write of the rest keeps going on later drains", () => {
    const s = setup();
    s.writer.plan = [2, 2, 2];
    s.out.send("0123456789");
    s.out.flush();
    s.out.drain();
    s.out.drain();
    expect(s.writer.text).toBe("012345");
    expect(s.out.queued).toBe(5);
    s.out.drain();
    expect(s.writer.text).toBe("0123456789\n");
    expect(s.out.queued).toBe(0);
  });
});

describe("outbox: overflow", () => {
  test("a large queue that is not blocked is no overflow", () => {
    const s = setup(100);
    for (let i = 0; i < 50; i++) s.out.send("x".repeat(20));
    expect(s.out.queued).toBeGreaterThan(100);
    expect(s.overflows).toBe(0);
    s.out.flush();
    expect(s.overflows).toBe(0);
    expect(s.out.queued).toBe(0);
  });

  test("blocked with a queue at maxBytes is no overflow; one byte more is", () => {
    const s = setup(100);
    s.writer.plan = [0];
    s.out.send("x".repeat(49)); // 50 bytes
    s.out.flush();
    expect(s.overflows).toBe(0);
    s.out.send("y".repeat(49)); // 100 bytes: at the limit
    expect(s.out.queued).toBe(100);
    expect(s.overflows).toBe(0);
    s.out.send(""); // 101 bytes
    expect(s.out.queued).toBe(101);
    expect(s.overflows).toBeGreaterThanOrEqual(1);
  });

  test("a flush that blocks with more than maxBytes queued is an overflow", () => {
    const s = setup(100);
    s.writer.plan = [10];
    s.out.send("x".repeat(200));
    s.out.flush();
    expect(s.out.queued).toBe(191);
    expect(s.overflows).toBe(1);
  });

  test("a flush that blocks with little queued is no overflow", () => {
    const s = setup(100);
    s.writer.plan = [10];
    s.out.send("x".repeat(50));
    s.out.flush();
    expect(s.overflows).toBe(0);
  });

  test("after drain unblocks, a big burst is no overflow until blocked again", () => {
    const s = setup(100);
    s.writer.plan = [0];
    s.out.send("a");
    s.out.flush();
    s.out.drain();
    for (let i = 0; i < 20; i++) s.out.send("z".repeat(20));
    expect(s.overflows).toBe(0);
  });
});

describe("outbox: takeUnsent", () => {
  function queueMixed(s: ReturnType<typeof setup>) {
    const a = msg(1, "first é😀 message that is partly written");
    const b = msg(2);
    const c = msg(3, "张三");
    const reply = '{"type":"reply","seq":1,"ok":true,"data":{}}';
    const presence = '{"type":"presence","user":3,"online":true}';
    s.writer.plan = [20];
    s.out.send(a.json, a.stored);
    s.out.send(presence);
    s.out.send(b.json, b.stored);
    s.out.send(reply);
    s.out.send(c.json, c.stored);
    s.out.flush();
    return { a, b, c, reply, presence };
  }

  test("(false) returns unstarted message frames, keeps the partial one and the others", () => {
    const s = setup(100_000);
    const { a, b, c, reply, presence } = queueMixed(s);
    expect(s.writer.bytes.length).toBe(20);
    const taken = s.out.takeUnsent(false);
    expect(taken).toEqual([b.stored, c.stored]);
    const rest = byteLen(`${a.json}\n${presence}\n${reply}\n`) - 20;
    expect(s.out.queued).toBe(rest);
    s.out.drain();
    expect(s.writer.text).toBe(`${a.json}\n${presence}\n${reply}\n`);
    expect(s.out.queued).toBe(0);
  });

  test("(true) also returns the partially written message frame, which still completes", () => {
    const s = setup(100_000);
    const { a, b, c, reply, presence } = queueMixed(s);
    const taken = s.out.takeUnsent(true);
    expect(taken).toEqual([a.stored, b.stored, c.stored]);
    // The stream must stay whole: the started frame is finished, never cut.
    expect(s.out.queued).toBe(byteLen(`${a.json}\n${presence}\n${reply}\n`) - 20);
    s.out.drain();
    expect(s.writer.text).toBe(`${a.json}\n${presence}\n${reply}\n`);
    expect(s.out.queued).toBe(0);
  });

  test("(false) keeps a partially written non-message frame at the head", () => {
    const s = setup(100_000);
    const m = msg(9);
    s.writer.plan = [4];
    s.out.send('{"type":"reply","seq":2,"ok":true,"data":{}}');
    s.out.send(m.json, m.stored);
    s.out.flush();
    expect(s.out.takeUnsent(true)).toEqual([m.stored]);
    s.out.drain();
    expect(s.writer.text).toBe('{"type":"reply","seq":2,"ok":true,"data":{}}\n');
  });

  test("returns nothing when all was written, and nothing twice", () => {
    const s = setup();
    const m = msg(1);
    s.out.send(m.json, m.stored);
    s.out.flush();
    expect(s.out.takeUnsent(true)).toEqual([]);
    s.writer.plan = [0];
    s.out.send(m.json, m.stored);
    s.out.flush();
    expect(s.out.takeUnsent(false)).toEqual([m.stored]);
    expect(s.out.takeUnsent(false)).toEqual([]);
    expect(s.out.takeUnsent(true)).toEqual([]);
  });

  test("unsent frames before any flush are all returned in order", () => {
    const s = setup();
    const ms = [msg(1), msg(2), msg(3)];
    for (const m of ms) s.out.send(m.json, m.stored);
    expect(s.out.takeUnsent(false)).toEqual(ms.map((m) => m.stored));
    expect(s.out.queued).toBe(0);
    s.out.flush();
    expect(s.writer.text).toBe("");
  });

  test("queued frames stay for takeUnsent after close", () => {
    const s = setup();
    const m = msg(4);
    s.writer.plan = [0];
    s.out.send(m.json, m.stored);
    s.out.flush();
    s.out.close();
    expect(s.out.takeUnsent(true)).toEqual([m.stored]);
  });
});

describe("outbox: writable and close", () => {
  test("writable() is true at once when little is queued", async () => {
    const s = setup(1000);
    s.out.send("x");
    expect(await s.out.writable()).toBe(true);
  });

  test("writable() waits while blocked and resolves true after drain below the low-water mark", async () => {
    const s = setup(1000); // low water: 250
    s.writer.plan = [0];
    s.out.send("x".repeat(600));
    s.out.flush();
    const w = s.out.writable();
    expect((await peek(w)).settled).toBe(false);
    s.writer.plan = [100]; // 501 left: above low water
    s.out.drain();
    expect((await peek(w)).settled).toBe(false);
    s.writer.plan = [260]; // 241 left: below low water, but still blocked
    s.out.drain();
    expect((await peek(w)).settled).toBe(false);
    s.writer.plan = ["full"];
    s.out.drain();
    expect(await peek(w)).toEqual({ settled: true, value: true });
  });

  test("writable() waits while a big unblocked queue is pending, true after the flush", async () => {
    const s = setup(1000);
    s.out.send("x".repeat(600));
    const w = s.out.writable();
    expect((await peek(w)).settled).toBe(false);
    s.out.flush();
    expect(await peek(w)).toEqual({ settled: true, value: true });
  });

  test("writable() resolves false on close", async () => {
    const s = setup(1000);
    s.writer.plan = [0];
    s.out.send("x".repeat(600));
    s.out.flush();
    const w1 = s.out.writable();
    const w2 = s.out.writable();
    s.out.close();
    expect(await w1).toBe(false);
    expect(await w2).toBe(false);
    expect(await s.out.writable()).toBe(false);
  });

  test("writable() resolves once takeUnsent has emptied the queue and it is flushed", async () => {
    // Not blocked, more than the low-water mark queued, then the frames are taken back.
    const s = setup(1000);
    const ms = [msg(1, "x".repeat(300)), msg(2, "y".repeat(300))];
    for (const m of ms) s.out.send(m.json, m.stored);
    const w = s.out.writable();
    expect((await peek(w)).settled).toBe(false);
    expect(s.out.takeUnsent(false)).toEqual(ms.map((m) => m.stored));
    expect(s.out.queued).toBe(0);
    s.out.flush(); // the scheduled flush finds nothing to write
    expect(await peek(w)).toEqual({ settled: true, value: true });
  });

  test("send after close returns false and queues nothing", () => {
    const s = setup();
    s.out.close();
    expect(s.out.closed).toBe(true);
    expect(s.out.send("x")).toBe(false);
    expect(s.out.queued).toBe(0);
    expect(s.scheduled.length).toBe(0);
    s.out.flush();
    expect(s.writer.calls.length).toBe(0);
  });

  test("close stops writing what is queued; close twice is harmless", () => {
    const s = setup();
    s.out.send("a");
    s.out.close();
    s.out.close();
    s.out.flush();
    s.out.drain();
    expect(s.writer.calls.length).toBe(0);
    expect(s.out.queued).toBe(2);
  });

  test("closed is false until close()", () => {
    const s = setup();
    expect(s.out.closed).toBe(false);
    s.out.close();
    expect(s.out.closed).toBe(true);
  });
});

describe("outbox: seal", () => {
  const lastError = '{"type":"error","code":"shutdown","message":"bye"}';

  test("with nothing queued, the last frame is written at once and onEmpty runs once", () => {
    const s = setup();
    let empty = 0;
    s.out.seal(lastError, () => empty++);
    expect(s.writer.text).toBe(`${lastError}\n`);
    expect(empty).toBe(1);
    s.out.flush();
    s.out.drain();
    expect(empty).toBe(1);
  });

  test("after seal: closed, sends fail, writable is false", async () => {
    const s = setup();
    s.out.seal(lastError, () => {});
    expect(s.out.closed).toBe(true);
    expect(s.out.send("late")).toBe(false);
    expect(await s.out.writable()).toBe(false);
    s.out.flush();
    expect(s.writer.text).toBe(`${lastError}\n`);
  });

  test("unstarted frames are taken off: messages kept for takeUnsent, the rest dropped", () => {
    const s = setup();
    const m1 = msg(1);
    const m2 = msg(2, "张三😀");
    s.out.send(m1.json, m1.stored);
    s.out.send('{"type":"presence","user":3,"online":true}');
    s.out.send(m2.json, m2.stored);
    let empty = 0;
    s.out.seal(lastError, () => empty++);
    expect(s.writer.text).toBe(`${lastError}\n`);
    expect(s.out.queued).toBe(0);
    expect(empty).toBe(1);
    expect(s.out.takeUnsent(true)).toEqual([m1.stored, m2.stored]);
    expect(s.out.takeUnsent(true)).toEqual([]);
  });

  test("a frame the socket took in part is finished before the last frame", () => {
    const frameText = "part é😀✓ written";
    for (let cut = 1; cut < byteLen(frameText) + 1; cut++) {
      const s = setup();
      const m = msg(7, frameText);
      const other = msg(8);
      s.writer.plan = [cut];
      s.out.send(m.json, m.stored);
      s.out.send('{"type":"reply","seq":1,"ok":true,"data":{}}');
      s.out.send(other.json, other.stored);
      s.out.flush();
      let empty = 0;
      s.out.seal(lastError, () => empty++);
      expect(empty).toBe(0); // blocked: waits for drain
      s.out.drain();
      expect(s.writer.bytes.equals(Buffer.from(`${m.json}\n${lastError}\n`))).toBe(true);
      expect(empty).toBe(1);
      expect(s.out.queued).toBe(0);
      expect(s.out.takeUnsent(true)).toEqual([other.stored]);
    }
  });

  test("while blocked, onEmpty waits for the drains that write everything", () => {
    const s = setup();
    s.writer.plan = [0];
    s.out.send("abc");
    s.out.flush();
    let empty = 0;
    s.out.seal(lastError, () => empty++);
    expect(s.writer.text).toBe("");
    s.writer.plan = [10];
    s.out.drain();
    expect(empty).toBe(0);
    s.writer.plan = ["full"];
    s.out.drain();
    // "abc" had not been started, so it was dropped; only the last frame goes out.
    expect(s.writer.text).toBe(`${lastError}\n`);
    expect(empty).toBe(1);
  });

  test("pending writable() waiters learn false at seal", async () => {
    const s = setup(1000);
    s.writer.plan = [0];
    s.out.send("x".repeat(600));
    s.out.flush();
    const w = s.out.writable();
    s.out.seal(lastError, () => {});
    expect(await w).toBe(false);
  });

  test("seal twice: the second is ignored", () => {
    const s = setup();
    let a = 0;
    let b = 0;
    s.out.seal(lastError, () => a++);
    s.out.seal('{"type":"error","code":"idle_timeout","message":"x"}', () => b++);
    expect(s.writer.text).toBe(`${lastError}\n`);
    expect([a, b]).toEqual([1, 0]);
  });

  test("seal after close does nothing", () => {
    const s = setup();
    let empty = 0;
    s.out.close();
    s.out.seal(lastError, () => empty++);
    expect(s.writer.calls.length).toBe(0);
    expect(empty).toBe(0);
  });

  test("close before everything was written: onEmpty never runs", () => {
    const s = setup();
    s.writer.plan = [0];
    let empty = 0;
    s.out.seal(lastError, () => empty++);
    s.out.close();
    s.out.drain();
    expect(empty).toBe(0);
  });
});

describe("createFlusher", () => {
  test("flushes every outbox that asked, once, on the next tick", async () => {
    const { schedule } = createFlusher();
    const w1 = new FakeWriter();
    const w2 = new FakeWriter();
    const o1 = createOutbox(w1, { maxBytes: 1000, onOverflow() {}, schedule });
    const o2 = createOutbox(w2, { maxBytes: 1000, onOverflow() {}, schedule });
    o1.send("a");
    o1.send("b");
    o2.send("c");
    expect(w1.calls.length + w2.calls.length).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(w1.calls.length).toBe(1);
    expect(w2.calls.length).toBe(1);
    expect(w1.text).toBe("a\nb\n");
    expect(w2.text).toBe("c\n");
    o1.send("d");
    await new Promise((r) => setImmediate(r));
    expect(w1.text).toBe("a\nb\nd\n");
    expect(w1.calls.length).toBe(2);
  });

  test("flushNow writes at once what waits for the tick, and the tick finds nothing left", async () => {
    const { schedule, flushNow } = createFlusher();
    const w = new FakeWriter();
    const o = createOutbox(w, { maxBytes: 1000, onOverflow() {}, schedule });
    o.send("a");
    flushNow();
    expect(w.text).toBe("a\n");
    await new Promise((r) => setImmediate(r));
    expect(w.calls.length).toBe(1);
  });
});
