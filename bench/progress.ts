/**
 * The live progress line on stderr: rewritten in place about once a second on
 * a terminal, printed as plain lines (every `plainEverySec`) otherwise.
 */
export interface Progress {
  stop(): void;
}

export function startProgress(render: () => string, plainEverySec = 2): Progress {
  const tty = process.stderr.isTTY === true;
  const started = performance.now();
  let last = 0;
  // render() is called every second (rates in it are per second), printed less often off a terminal.
  const timer = setInterval(() => {
    const t = (performance.now() - started) / 1000;
    const line = render();
    if (tty) process.stderr.write(`\r\x1b[K${t.toFixed(0).padStart(3)}s ${line}`);
    else if (t - last >= plainEverySec - 0.1) {
      last = t;
      process.stderr.write(`[bench ${t.toFixed(0)}s] ${line}\n`);
    }
  }, 1000);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      if (tty) process.stderr.write("\r\x1b[K");
    },
  };
}

/** A one-off status line (setup steps). */
export function note(text: string): void {
  process.stderr.write(`[bench] ${text}\n`);
}
