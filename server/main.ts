#!/usr/bin/env bun
/** `chatserver [host] [port] [options]`: the server's command line. */
import { type ArgsDef, defineCommand, runMain } from "citty";
import { version } from "../package.json";
import { startApp } from "./app.ts";
import { ConfigError, describeDb, OPTIONS, resolveConfig } from "./config.ts";
import { asLogger, createConsolaLogger } from "./log.ts";

// Stop must finish inside the protocol's 5 s; this is the last resort.
const HARD_EXIT_MS = 4800;

const flag = (key: keyof typeof OPTIONS, type: "string" | "boolean" = "string") => ({
  type,
  description: `${OPTIONS[key].help} [env ${OPTIONS[key].env}${OPTIONS[key].default !== undefined ? `, default ${OPTIONS[key].default}` : ""}]`,
});

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

// Every option of the configuration table is a flag: one list, no retyping.
const args = {
  host: {
    type: "positional",
    required: false,
    description: `${OPTIONS.host.help} [env CHAT_HOST, default 127.0.0.1]`,
  },
  port: {
    type: "positional",
    required: false,
    description: `${OPTIONS.port.help} [env CHAT_PORT, default 6000]`,
  },
  ...Object.fromEntries(
    (Object.keys(OPTIONS) as (keyof typeof OPTIONS)[])
      .filter((key) => key !== "host" && key !== "port")
      .map((key) => [kebab(key), flag(key, key === "logJson" ? "boolean" : "string")]),
  ),
} satisfies ArgsDef;

const KNOWN_FLAGS = new Set(
  Object.entries(args).flatMap(([k, v]) => (v.type === "positional" ? [] : [k, `no-${k}`])),
);

const main = defineCommand({
  meta: { name: "chatserver", version, description: "Chat server (protocol v1 over TCP)" },
  args,
  async run({ args, rawArgs }) {
    let config: ReturnType<typeof resolveConfig>;
    try {
      checkArgs(rawArgs);
      const raw = Object.fromEntries(
        Object.entries(args).map(([k, v]) => [
          k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()),
          v,
        ]),
      );
      config = resolveConfig(raw, process.env);
    } catch (err) {
      return die(err);
    }
    const consola = createConsolaLogger(config.logLevel, config.logJson);
    const log = asLogger(consola, config.logJson);
    let app: Awaited<ReturnType<typeof startApp>>;
    try {
      app = await startApp(config, { log });
    } catch (err) {
      return die(err);
    }
    log.info(`chatserver ${version} listening on ${app.hostname}:${app.port}`, {
      storage: describeDb(config.db),
      instance: app.ctx.instanceId,
    });
    const stop = (signal: string) => {
      log.info(`${signal}: shutting down`);
      setTimeout(() => {
        log.error("shutdown took too long; exiting");
        process.exit(1);
      }, HARD_EXIT_MS).unref();
      app.stop().then(
        () => {
          log.info("stopped");
          process.exit(0);
        },
        (err: unknown) => {
          log.error("shutdown failed", { err });
          process.exit(1);
        },
      );
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  },
});

/** citty accepts unknown flags and extra positionals silently; a typo should not be ignored. */
function checkArgs(rawArgs: string[]) {
  let positionals = 0;
  for (let i = 0; i < rawArgs.length; i++) {
    const a = rawArgs[i]!;
    if (a.startsWith("--")) {
      const name = a.slice(2).split("=")[0]!;
      if (!KNOWN_FLAGS.has(kebab(name)))
        throw new ConfigError(`unknown option --${name} (see --help)`);
      if (!a.includes("=") && !kebab(name).endsWith("log-json")) i++;
    } else if (a.startsWith("-") && a !== "-") {
      throw new ConfigError(`unknown option ${a} (see --help)`);
    } else if (++positionals > 2) {
      throw new ConfigError(
        `unexpected argument ${JSON.stringify(a)}: give at most a host and a port`,
      );
    }
  }
}

function die(err: unknown): never {
  const msg = err instanceof ConfigError || err instanceof Error ? err.message : String(err);
  process.stderr.write(`chatserver: ${msg.split("\n")[0]}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
}

process.on("unhandledRejection", (err) => {
  process.stderr.write(
    `chatserver: unhandled rejection: ${err instanceof Error ? err.stack : String(err)}\n`,
  );
});

runMain(main);
