/** Small TCP facts for tests: a free port, and whether something accepts on one. */

export async function freePort(): Promise<number> {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

export function accepting(port: number, hostname = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    Bun.connect({
      hostname,
      port,
      socket: {
        open(s) {
          s.end();
          resolve(true);
        },
        data() {},
        connectError: () => resolve(false),
      },
    }).catch(() => resolve(false));
  });
}

/** Waits until something accepts on the port, or throws after `ms`. */
export async function untilAccepting(port: number, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await accepting(port))) {
    if (Date.now() > deadline) throw new Error(`${what} did not start accepting on ${port}`);
    await Bun.sleep(20);
  }
}
