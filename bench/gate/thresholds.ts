/**
 * The latency budgets shared by the k6 scripts and the gate: `k6/thresholds.json`.
 *
 *   { "rate": 200, "duration_s": 20, "warmup_s": 2,
 *     "Decide": { "p95_ms": 5, "p99_ms": 10, "max_error_rate": 0.001 [, "rate": n, "duration_s": n] },
 *     ... one entry per RPC }
 */
import { readFileSync } from "node:fs";

export const RPCS = ["Decide", "Route", "GuardMemory", "Finalize", "RecordUsage", "CreateApproval"] as const;
export type RpcName = (typeof RPCS)[number];

export interface RpcBudget {
  readonly p95Ms: number;
  readonly p99Ms: number;
  readonly maxErrorRate: number;
  /** Offered rate, calls per second. */
  readonly rate: number;
  readonly durationS: number;
}

export interface Thresholds {
  readonly warmupS: number;
  readonly rpcs: Readonly<Record<RpcName, RpcBudget>>;
}

export class ThresholdsError extends Error {
  override name = "ThresholdsError";
}

function num(where: string, v: unknown, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
    throw new ThresholdsError(`${where}: expected a number from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Parses and checks the thresholds document; `file` names it in error messages. */
export function parseThresholds(file: string, text: string): Thresholds {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ThresholdsError(`${file}: not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new ThresholdsError(`${file}: expected an object`);
  }
  const d = doc as Record<string, unknown>;
  const known = new Set<string>(["rate", "duration_s", "warmup_s", ...RPCS]);
  for (const k of Object.keys(d)) {
    if (!known.has(k))
      throw new ThresholdsError(
        `${file}: unknown key "${k}"; expected rate, duration_s, warmup_s or an RPC (${RPCS.join(", ")})`,
      );
  }
  const rate = num(`${file}: rate`, d.rate, 1, 100_000);
  const durationS = num(`${file}: duration_s`, d.duration_s, 0.1, 3600);
  const warmupS = d.warmup_s === undefined ? 0 : num(`${file}: warmup_s`, d.warmup_s, 0, 600);
  const rpcs = {} as Record<RpcName, RpcBudget>;
  for (const rpc of RPCS) {
    const b = d[rpc];
    if (typeof b !== "object" || b === null || Array.isArray(b)) {
      throw new ThresholdsError(`${file}: ${rpc}: expected an object with p95_ms, p99_ms and max_error_rate`);
    }
    const e = b as Record<string, unknown>;
    for (const k of Object.keys(e)) {
      if (!["p95_ms", "p99_ms", "max_error_rate", "rate", "duration_s"].includes(k)) {
        throw new ThresholdsError(`${file}: ${rpc}: unknown key "${k}"`);
      }
    }
    rpcs[rpc] = {
      p95Ms: num(`${file}: ${rpc}.p95_ms`, e.p95_ms, 0, 60_000),
      p99Ms: num(`${file}: ${rpc}.p99_ms`, e.p99_ms, 0, 60_000),
      maxErrorRate: num(`${file}: ${rpc}.max_error_rate`, e.max_error_rate, 0, 1),
      rate: e.rate === undefined ? rate : num(`${file}: ${rpc}.rate`, e.rate, 1, 100_000),
      durationS: e.duration_s === undefined ? durationS : num(`${file}: ${rpc}.duration_s`, e.duration_s, 0.1, 3600),
    };
  }
  return { warmupS, rpcs };
}

export function readThresholds(path: string): Thresholds {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ThresholdsError(`${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseThresholds(path, text);
}

export interface Measured {
  readonly rpc: RpcName;
  readonly count: number;
  readonly errors: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
}

/** One line per broken budget, e.g. `Decide p99: measured 12.345 ms > budget 10 ms`. */
export function violations(m: Measured, b: RpcBudget): string[] {
  const out: string[] = [];
  if (m.count === 0) {
    out.push(`${m.rpc}: no call completed`);
    return out;
  }
  if (m.p95Ms > b.p95Ms) out.push(`${m.rpc} p95: measured ${m.p95Ms.toFixed(3)} ms > budget ${b.p95Ms} ms`);
  if (m.p99Ms > b.p99Ms) out.push(`${m.rpc} p99: measured ${m.p99Ms.toFixed(3)} ms > budget ${b.p99Ms} ms`);
  const rate = m.errors / m.count;
  if (rate > b.maxErrorRate) {
    out.push(`${m.rpc} error rate: measured ${rate.toFixed(4)} (${m.errors}/${m.count}) > budget ${b.maxErrorRate}`);
  }
  return out;
}
