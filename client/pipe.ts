/**
 * The non-interactive front end, for scripts and tests: one command per input
 * line, each waiting for its reply before the next is read, plain output
 * lines (results and events on stdout, failures on stderr), and an exit code
 * that says whether every command worked.
 */
import * as readline from "node:readline";
import { parseCommand } from "./commands.ts";
import { createController, type Ui } from "./controller.ts";
import { renderError } from "./render.ts";
import type { Style } from "./style.ts";

export interface PipeOptions {
  host: string;
  port: number;
  style: Style;
  /** Run the remaining commands after one fails; the exit code still reports the failure. */
  keepGoing: boolean;
  input?: NodeJS.ReadableStream;
  stdout?: { write(s: string): unknown };
  stderr?: { write(s: string): unknown };
  /** How long a command waits for a dropped connection to come back. */
  waitForLinkMs?: number;
}

/** Exit codes: 0 all commands worked, 1 one failed, 2 the server could not be reached. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_UNREACHABLE = 2;

export async function runPipe(o: PipeOptions): Promise<number> {
  const out = o.stdout ?? process.stdout;
  const err = o.stderr ?? process.stderr;
  const rl = readline.createInterface({
    input: o.input ?? process.stdin,
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  const lines = rl[Symbol.asyncIterator]();
  let lineNo = 0;
  const nextLine = async (): Promise<string | undefined> => {
    const r = await lines.next();
    if (r.done) return undefined;
    lineNo++;
    return r.value;
  };

  const ui: Ui = {
    interactive: false,
    print: (line) => out.write(`${line}\n`),
    printError: (line) => err.write(`${line}\n`),
    // A password left out of a command is read from the next line, as a prompt would.
    ask: () => nextLine(),
    changed() {},
  };
  const controller = createController({
    host: o.host,
    port: o.port,
    ui,
    style: o.style,
    waitForLinkMs: o.waitForLinkMs ?? 30_000,
  });

  const failure = await controller.start();
  if (failure) {
    rl.close();
    err.write(`${renderError(failure, o.style)}\n`);
    return EXIT_UNREACHABLE;
  }

  const stop = () => void controller.quit().then(() => rl.close());
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);

  let failed = false;
  try {
    for (;;) {
      const line = await nextLine();
      if (line === undefined) break;
      const at = lineNo;
      const parsed = parseCommand(line);
      if (parsed.ok && parsed.command.kind === "quit") break;
      if (!parsed.ok) ui.printError(renderError(parsed.error, o.style));
      const ok = parsed.ok && (await controller.run(parsed.command));
      if (controller.link === "closed") break;
      if (ok) continue;
      failed = true;
      if (!o.keepGoing) {
        err.write(`stopped at line ${at}, which failed (--keep-going runs the rest)\n`);
        break;
      }
    }
  } finally {
    process.off("SIGTERM", stop);
    process.off("SIGINT", stop);
    await controller.quit();
    rl.close();
  }
  return failed ? EXIT_FAILED : EXIT_OK;
}
