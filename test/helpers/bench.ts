/** Runs the load generator (`bun bench/main.ts`) as a real subprocess, for the bench tests. */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ROOT } from "./binary.ts";

export interface LatencySummary {
  count: number;
  p50: number;
  max: number;
}

/** One result of `--json`. */
export interface BenchResult {
  scenario: string;
  target: string;
  params: Record<string, string | number | boolean>;
  metrics: Record<string, number | string>;
  latency: Record<string, LatencySummary>;
  notes: string[];
}

export interface BenchRun {
  code: number;
  out: string;
  err: string;
  /** The --json file, parsed (null if the run wrote none). */
  json: unknown;
}

export interface BenchProcess {
  proc: Subprocess;
  /** Resolves once the generator exited. */
  done: Promise<BenchRun>;
}

/** Generators still running, for a test's cleanup to kill. */
export const runningBenches = new Set<Subprocess>();
let runs = 0;

/**
 * Starts `bun bench/main.ts <args…> --json <file> --timeout 120` with `tmp` as
 * its TMPDIR (its user cache and JSON result stay private to the test).
 */
export function startBench(args: string[], tmp: string): BenchProcess {
  const json = join(tmp, `result-${runs++}.json`);
  const proc = Bun.spawn(
    [process.execPath, "bench/main.ts", ...args, "--json", json, "--timeout", "120"],
    {
      cwd: ROOT,
      env: { ...process.env, TMPDIR: tmp, NO_COLOR: "1" },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  runningBenches.add(proc);
  const done = (async () => {
    const [out, err, code] = await Promise.all([
      new Response(proc.stdout).text(),
      new Response(proc.stderr).text(),
      proc.exited,
    ]);
    runningBenches.delete(proc);
    return {
      code,
      out,
      err,
      json: existsSync(json) ? JSON.parse(readFileSync(json, "utf8")) : null,
    };
  })();
  return { proc, done };
}

/** A run that must succeed with one result: its parsed JSON (the output is shown if not). */
export function benchOk(r: BenchRun): BenchResult {
  if (r.code !== 0 || r.json === null)
    throw new Error(`bench exited ${r.code}\nstdout:\n${r.out}\nstderr:\n${r.err}`);
  return r.json as BenchResult;
}
