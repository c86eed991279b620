/**
 * Drives programs in real terminals: a private tmux server (its own socket,
 * never the user's default one) with one detached session per program,
 * keys sent as a person types them, and the screen read back with
 * capture-pane and awaited by polling with a deadline (never by sleeping).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const TMUX = Bun.which("tmux");

export interface StartOptions {
  cwd?: string;
  width?: number;
  height?: number;
}

export interface Tmux {
  /** The path of the private server's socket (`tmux -S <socket>`), in a directory of its own. */
  readonly socket: string;
  /** Runs `argv` in a new detached session; the pane stays when it exits (remain-on-exit). */
  start(session: string, argv: string[], opts?: StartOptions): void;
  /** Types `text` literally (no key names), then Enter unless `enter` is false. */
  type(session: string, text: string, enter?: boolean): void;
  /** Presses keys by tmux name: "Enter", "C-u", "Up", ... */
  keys(session: string, ...keys: string[]): void;
  /** The visible screen as plain text, wrapped lines joined, trailing blanks dropped. */
  screen(session: string): string;
  /** Everything the pane showed, scrollback included. */
  transcript(session: string): string;
  /**
   * Polls the screen (or with `history`, the whole transcript) until it matches;
   * returns it, or throws with the screen in the message.
   */
  waitFor(
    session: string,
    pattern: RegExp | ((text: string) => boolean),
    timeoutMs?: number,
    opts?: { history?: boolean },
  ): Promise<string>;
  /** The last non-blank line of the screen (the prompt, on an idle client). */
  lastLine(session: string): string;
  /** The cursor position in the pane. */
  cursor(session: string): { x: number; y: number };
  /** The exit status once the program has exited, else null. */
  exitStatus(session: string): number | null;
  /** Waits for the program in the pane to exit; returns its status. */
  waitForExit(session: string, timeoutMs?: number): Promise<number>;
  /** Every session, dead panes included. */
  sessions(): string[];
  /** Ends a session and what runs in it. */
  killSession(session: string): void;
  /** Kills this private server and everything running in it. */
  kill(): void;
}

const plain = (s: string) =>
  Bun.stripANSI(s)
    .split("\n")
    .map((l) => l.trimEnd())
    .join("\n")
    .trimEnd();

export function createTmux(prefix = "chat-e2e"): Tmux {
  if (!TMUX) throw new Error("tmux is not installed");
  const tmux = TMUX;
  // The socket lives in a directory of our own, removed with it: nothing is left behind.
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const socket = join(dir, "tmux.sock");
  const conf = join(dir, "tmux.conf");
  // A known configuration instead of the user's: no status line, panes kept after exit.
  writeFileSync(
    conf,
    ["set -g remain-on-exit on", "set -g status off", "set -g history-limit 10000", ""].join("\n"),
  );
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? dir,
    LANG: "C.UTF-8",
    TERM: "xterm-256color",
  };

  const run = (args: string[]): string => {
    const p = Bun.spawnSync([tmux, "-S", socket, "-f", conf, ...args], {
      env,
      stdout: "pipe",
      stderr: "pipe",
    });
    if (p.exitCode !== 0) {
      throw new Error(`tmux ${args.join(" ")} failed: ${p.stderr.toString().trim()}`);
    }
    return p.stdout.toString();
  };

  const capture = (session: string, history: boolean) =>
    plain(run(["capture-pane", "-p", "-J", "-t", session, ...(history ? ["-S", "-"] : [])]));

  const screen = (session: string) => capture(session, false);
  const display = (session: string, format: string) =>
    run(["display-message", "-p", "-t", session, format]).trim();

  const exitStatus = (session: string): number | null =>
    display(session, "#{pane_dead}") === "1"
      ? Number(display(session, "#{pane_dead_status}"))
      : null;

  return {
    socket,
    start(session, argv, opts = {}) {
      run([
        "new-session",
        "-d",
        "-s",
        session,
        "-x",
        String(opts.width ?? 120),
        "-y",
        String(opts.height ?? 40),
        ...(opts.cwd ? ["-c", opts.cwd] : []),
        // Several arguments: tmux runs the program itself, no shell and no quoting.
        ...argv,
      ]);
    },
    type(session, text, enter = true) {
      if (text !== "") run(["send-keys", "-t", session, "-l", text]);
      if (enter) run(["send-keys", "-t", session, "Enter"]);
    },
    keys(session, ...keys) {
      run(["send-keys", "-t", session, ...keys]);
    },
    screen,
    transcript: (session) => capture(session, true),
    async waitFor(session, pattern, timeoutMs = 10_000, opts = {}) {
      const deadline = Date.now() + timeoutMs;
      const matches = typeof pattern === "function" ? pattern : (s: string) => pattern.test(s);
      for (;;) {
        const s = capture(session, opts.history ?? false);
        if (matches(s)) return s;
        if (Date.now() > deadline) {
          throw new Error(
            `timed out after ${timeoutMs} ms waiting for ${String(pattern)} in tmux session ${session}; the screen:\n${screen(session)}`,
          );
        }
        await Bun.sleep(50);
      }
    },
    lastLine(session) {
      const lines = screen(session).split("\n");
      return lines[lines.length - 1] ?? "";
    },
    cursor(session) {
      const [x, y] = display(session, "#{cursor_x},#{cursor_y}").split(",").map(Number);
      return { x: x!, y: y! };
    },
    exitStatus,
    async waitForExit(session, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const status = exitStatus(session);
        if (status !== null) return status;
        if (Date.now() > deadline) {
          throw new Error(
            `timed out after ${timeoutMs} ms waiting for the program in tmux session ${session} to exit; the screen:\n${screen(session)}`,
          );
        }
        await Bun.sleep(50);
      }
    },
    sessions() {
      try {
        return run(["list-sessions", "-F", "#{session_name}"]).split("\n").filter(Boolean);
      } catch {
        return []; // no server running: no sessions
      }
    },
    killSession(session) {
      Bun.spawnSync([tmux, "-S", socket, "kill-session", "-t", session], {
        env,
        stdout: "ignore",
        stderr: "ignore",
      });
    },
    kill() {
      Bun.spawnSync([tmux, "-S", socket, "kill-server"], {
        env,
        stdout: "ignore",
        stderr: "ignore",
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
