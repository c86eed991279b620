/**
 * chatclient [host] [port]: the console client. A terminal gets the
 * interactive client; anything else (a pipe, a file, a test) gets the piped
 * mode that reads one command per line. Only citty and the small client modules
 * are loaded, so starting is quick.
 */
import { defineCommand, renderUsage, runMain } from "citty";
import { version } from "../package.json";
import { EXIT_UNREACHABLE, runPipe } from "./pipe.ts";
import { createStyle, wantColor } from "./style.ts";
import { runTty } from "./tty.ts";

const main = defineCommand({
  meta: {
    name: "chatclient",
    version,
    description: "Console client for the chat server",
  },
  args: {
    host: { type: "positional", description: "server host", default: "127.0.0.1", required: false },
    port: { type: "positional", description: "server port", default: "8000", required: false },
    "keep-going": {
      type: "boolean",
      description:
        "piped mode: run the remaining commands after one fails (the exit code is still 1)",
      default: false,
    },
    color: {
      type: "boolean",
      description: "colours on a terminal",
      negativeDescription: "plain text without colours (so does NO_COLOR=1)",
      default: true,
    },
  },
  async run({ args }) {
    const port = Number(args.port);
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      process.stderr.write(`chatclient: "${args.port}" is not a port number (1 to 65535)\n`);
      process.exitCode = EXIT_UNREACHABLE;
      return;
    }
    const host = args.host;
    const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
    const style = createStyle(wantColor(args.color, Boolean(process.stdout.isTTY), process.env));
    const code = interactive
      ? await runTty({ host, port, style })
      : await runPipe({ host, port, style, keepGoing: args["keep-going"] });
    process.exitCode = code;
    // Everything is closed by now; this only catches a handle that would keep the process alive.
    setTimeout(() => process.exit(code), 1000).unref();
  },
});

const NOTES = `
On a terminal the client is interactive: type help for the commands.
Otherwise it reads one command per line from stdin (# starts a comment), waits
for each reply, prints plain lines (failures on stderr), reads a password left
out of login or register from the next line, and exits 0 when every command
worked, 1 when one failed (stopping there unless --keep-going), 2 when the
server cannot be reached.
`;

await runMain(main, {
  // citty colours its usage text even in a pipe; keep it plain where colours are off.
  async showUsage(cmd, parent) {
    const text = await renderUsage(cmd, parent);
    const color = wantColor(
      !process.argv.includes("--no-color"),
      Boolean(process.stdout.isTTY),
      process.env,
    );
    console.log(color ? text : Bun.stripANSI(text));
    console.log(NOTES.trim());
  },
});
