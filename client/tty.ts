/**
 * The interactive front end: node:readline for line editing, history and tab
 * completion, with incoming events printed above the prompt so the line being
 * typed is never broken (clear the prompt rows, print, redraw the prompt with
 * the cursor where it was).
 */
import * as readline from "node:readline";
import { type Command, parseCommand } from "./commands.ts";
import { complete } from "./complete.ts";
import { createController, type Ui } from "./controller.ts";
import { clean, renderError, renderNotice } from "./render.ts";
import type { Style } from "./style.ts";

export interface TtyOptions {
  host: string;
  port: number;
  style: Style;
}

/** The readline internals used here: present in Bun's node:readline, absent from its types. */
interface RlInternals {
  _writeToOutput(s: string): void;
  history: string[];
  /** The row of the cursor when readline last drew the line; its redraw moves up that many rows first. */
  prevRows?: number;
}

export async function runTty(o: TtyOptions): Promise<number> {
  const { style } = o;
  const input = process.stdin;
  const output = process.stdout;

  // Assigned once the controller exists; the completer only runs after that.
  let controller: ReturnType<typeof createController>;
  const rl = readline.createInterface({
    input,
    output,
    terminal: true,
    historySize: 1000,
    removeHistoryDuplicates: true,
    prompt: "> ",
    completer: (line: string) => {
      const s = controller.session;
      return complete(line, {
        loggedIn: s.me !== null,
        users: [...s.people].filter(([id]) => id !== s.me?.id).map(([, name]) => name),
        groups: [...s.groups.values()].map((g) => g.name),
      });
    },
  });
  const internals = rl as unknown as RlInternals;

  // While a password is typed readline must not echo it; everything it writes is dropped.
  let muted = false;
  const writeToOutput = internals._writeToOutput.bind(rl);
  internals._writeToOutput = (s: string) => {
    if (!muted) writeToOutput(s);
  };

  // Nothing is drawn until the connection is up and the greeting printed.
  let started = false;
  let asking: {
    question: string;
    secret: boolean;
    resolve(answer: string | undefined): void;
  } | null = null;

  const promptText = () => {
    const me = controller.session.me;
    const who = me ? `${clean(me.name)}> ` : "> ";
    return controller.link === "up" ? who : `(reconnecting) ${who}`;
  };

  let closed = false;
  rl.on("close", () => {
    closed = true;
  });

  function printAbove(line: string): void {
    if (closed) {
      output.write(`${line}\n`);
      return;
    }
    if (muted) {
      readline.clearLine(output, 0);
      readline.cursorTo(output, 0);
      output.write(`${line}\n${asking?.question ?? ""}`);
      return;
    }
    clearPrompt();
    output.write(`${line}\n`);
    rl.prompt(true);
  }

  /**
   * Erases the prompt and the typed line, which may wrap over several rows, leaving the
   * cursor where the prompt started, so that the next rl.prompt(true) draws it afresh.
   */
  function clearPrompt(): void {
    const { rows } = rl.getCursorPos();
    readline.moveCursor(output, 0, -rows);
    readline.cursorTo(output, 0);
    readline.clearScreenDown(output);
    // readline's redraw first moves up by the rows of its last drawing: we are already at the
    // top, and left as it was it would go up into (and erase) the lines printed above the prompt.
    internals.prevRows = 0;
  }

  const ui: Ui = {
    interactive: true,
    print: printAbove,
    printError: printAbove,
    ask(question, secret) {
      return new Promise((resolve) => {
        asking = { question, secret, resolve };
        rl.setPrompt(question);
        rl.prompt();
        muted = secret;
      });
    },
    changed() {
      if (asking || !started || closed) return;
      clearPrompt();
      rl.setPrompt(promptText());
      rl.prompt(true);
    },
  };

  controller = createController({ host: o.host, port: o.port, ui, style, waitForLinkMs: 0 });
  const failure = await controller.start();
  if (failure) {
    rl.close();
    process.stderr.write(`${renderError(failure, style)}\n`);
    return 2;
  }
  output.write(
    `${renderNotice(`connected to ${o.host}:${o.port}; type help for the commands`, style)}\n`,
  );
  started = true;
  rl.setPrompt(promptText());
  rl.prompt();

  return new Promise<number>((resolve) => {
    let chain: Promise<unknown> = Promise.resolve();
    let finished = false;

    const finish = async () => {
      if (finished) return;
      finished = true;
      asking?.resolve(undefined);
      await controller.quit();
      // Leave no prompt behind on the last line.
      readline.clearLine(output, 0);
      readline.cursorTo(output, 0);
      rl.close();
      resolve(0);
    };

    const answer = (line: string | undefined) => {
      const a = asking!;
      asking = null;
      if (a.secret) {
        muted = false;
        output.write("\n");
        // A password must not be one arrow key away in the history.
        if (line !== undefined && internals.history[0] === line) internals.history.shift();
      }
      rl.setPrompt(promptText());
      a.resolve(line);
    };

    const execute = async (cmd: Command) => {
      if (cmd.kind === "quit") return finish();
      await controller.run(cmd);
    };

    rl.on("line", (line) => {
      if (asking) return answer(line);
      const parsed = parseCommand(line);
      // Commands run one after another, in the order they were typed.
      chain = chain
        .then(() =>
          parsed.ok ? execute(parsed.command) : ui.printError(renderError(parsed.error, style)),
        )
        .catch((e: unknown) =>
          ui.printError(renderError(`unexpected failure: ${(e as Error).message}`, style)),
        )
        .then(() => {
          if (!finished && !asking) rl.prompt(true);
        });
      rl.prompt();
    });

    rl.on("SIGINT", () => {
      if (asking) {
        output.write(asking.secret ? "^C" : "");
        answer(undefined);
        rl.prompt();
        return;
      }
      if (rl.line !== "") {
        // Ctrl-C drops what was typed, as in a shell; on an empty line it leaves.
        rl.write(null, { ctrl: true, name: "e" });
        rl.write(null, { ctrl: true, name: "u" });
        return;
      }
      void finish();
    });

    rl.on("close", () => void finish());
  });
}
