/**
 * Logging through consola: human lines by default, JSON lines with --log-json.
 * Errors are printed with their stack; nothing here ever logs a password or a
 * message text (services pass ids and counts, not contents).
 */
import { type ConsolaInstance, createConsola, type LogObject } from "consola";
import type { Logger } from "./ports/runtime.ts";

export const LOG_LEVELS = ["silent", "error", "warn", "info", "debug", "trace"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const numeric: Record<LogLevel, number> = {
  silent: Number.NEGATIVE_INFINITY,
  error: 0,
  warn: 1,
  info: 3,
  debug: 4,
  trace: 5,
};

const plainError = (e: unknown) =>
  e instanceof Error
    ? { name: e.name, message: e.message, stack: e.stack, cause: plainCause(e.cause) }
    : e;
const plainCause = (c: unknown): unknown => (c === undefined ? undefined : plainError(c));

function jsonReporter(o: LogObject) {
  const [msg, fields] = o.args as [unknown, Record<string, unknown> | undefined];
  const out: Record<string, unknown> = {
    ts: o.date.toISOString(),
    level: o.type,
    tag: o.tag || undefined,
    msg,
  };
  if (fields && typeof fields === "object") {
    for (const [k, v] of Object.entries(fields)) out[k] = plainError(v);
  }
  const line = `${JSON.stringify(out)}\n`;
  (o.level <= 1 ? process.stderr : process.stdout).write(line);
}

export function createConsolaLogger(level: LogLevel, json: boolean): ConsolaInstance {
  return createConsola({
    level: numeric[level],
    fancy: false,
    ...(json ? { reporters: [{ log: jsonReporter }] } : {}),
    formatOptions: { date: true, colors: process.stdout.isTTY === true && !process.env.NO_COLOR },
  });
}

/** The services' Logger port over consola; fields are printed after the message. */
export function asLogger(c: ConsolaInstance, json: boolean): Logger {
  const at = (fn: (...a: unknown[]) => void) => (msg: string, fields?: Record<string, unknown>) => {
    if (!fields) return fn(msg);
    if (json) return fn(msg, fields);
    const err = Object.values(fields).find((v) => v instanceof Error) as Error | undefined;
    const rest = Object.entries(fields)
      .filter(([, v]) => !(v instanceof Error))
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    fn(rest ? `${msg} ${rest}` : msg);
    if (err) fn(err.stack ?? String(err));
  };
  return {
    debug: at(c.debug.bind(c)),
    info: at(c.info.bind(c)),
    warn: at(c.warn.bind(c)),
    error: at(c.error.bind(c)),
  };
}
