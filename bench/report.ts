/**
 * Results: CPU accounting around the measured window, the final table on
 * stdout and the JSON file (`--json`).
 */
import { writeFileSync } from "node:fs";
import { totalCpu } from "./procstat.ts";
import type { Summary } from "./stats.ts";

export interface Metric {
  key: string;
  label: string;
  value: number | string;
  unit?: string;
}

export interface Result {
  scenario: string;
  target: string;
  params: Record<string, string | number | boolean>;
  metrics: Metric[];
  /** Latency distributions in milliseconds, by what they measure. */
  latency: Record<string, Summary>;
  notes: string[];
}

export interface CpuSample {
  wallS: number;
  /** The generator's own CPU seconds (user + system) and share of one core. */
  benchCpuS: number;
  benchCpuPct: number;
  /** The server processes' CPU seconds (utime + stime, all threads), if pids are known. */
  serverCpuS: number;
  serverCpuPct: number;
}

/** Measures wall time and CPU of this process and of `pids` from now until stop(). */
export function cpuMeter(pids: number[]): { stop(): CpuSample } {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const s0 = totalCpu(pids);
  return {
    stop() {
      const wallS = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      const benchCpuS = (c.user + c.system) / 1e6;
      const serverCpuS = pids.length > 0 ? totalCpu(pids) - s0 : Number.NaN;
      return {
        wallS,
        benchCpuS,
        benchCpuPct: (100 * benchCpuS) / wallS,
        serverCpuS,
        serverCpuPct: (100 * serverCpuS) / wallS,
      };
    },
  };
}

export function cpuMetrics(cpu: CpuSample): Metric[] {
  const m: Metric[] = [
    { key: "wallS", label: "measured wall time", value: cpu.wallS, unit: "s" },
    { key: "benchCpuS", label: "generator CPU", value: cpu.benchCpuS, unit: "s" },
    { key: "benchCpuPct", label: "generator CPU (of one core)", value: cpu.benchCpuPct, unit: "%" },
  ];
  if (!Number.isNaN(cpu.serverCpuS)) {
    m.push(
      { key: "serverCpuS", label: "server CPU", value: cpu.serverCpuS, unit: "s" },
      {
        key: "serverCpuPct",
        label: "server CPU (of one core)",
        value: cpu.serverCpuPct,
        unit: "%",
      },
    );
  }
  return m;
}

function fmt(v: number | string): string {
  if (typeof v === "string") return v;
  if (Number.isNaN(v)) return "-";
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString("en-US");
  if (a >= 100) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

export function renderTable(r: Result): string {
  const lines: string[] = [];
  const params = Object.entries(r.params)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  lines.push(`== ${r.scenario} against ${r.target}`, `   ${params}`);
  const width = Math.max(24, ...r.metrics.map((m) => m.label.length));
  for (const m of r.metrics) {
    lines.push(
      `${m.label.padEnd(width)}  ${fmt(m.value).padStart(12)}${m.unit ? ` ${m.unit}` : ""}`,
    );
  }
  const lat = Object.entries(r.latency);
  if (lat.length > 0) {
    const cols = ["p50", "p90", "p99", "p99.9", "max", "mean", "count"];
    const lw = Math.max(width, ...lat.map(([k]) => k.length + 5));
    lines.push(`${"latency (ms)".padEnd(lw)}  ${cols.map((c) => c.padStart(9)).join("")}`);
    for (const [k, s] of lat) {
      const vals = [s.p50, s.p90, s.p99, s.p999, s.max, s.mean].map((v) => fmt(v).padStart(9));
      lines.push(`  ${k.padEnd(lw - 2)}  ${vals.join("")}${fmt(s.count).padStart(11)}`);
    }
  }
  for (const n of r.notes) lines.push(`note: ${n}`);
  return `${lines.join("\n")}\n`;
}

export function writeJson(file: string, results: Result[]): void {
  const out = results.map((r) => ({
    scenario: r.scenario,
    target: r.target,
    params: r.params,
    metrics: Object.fromEntries(r.metrics.map((m) => [m.key, m.value])),
    latency: r.latency,
    notes: r.notes,
  }));
  writeFileSync(file, `${JSON.stringify(out.length === 1 ? out[0] : out, null, 2)}\n`);
}
