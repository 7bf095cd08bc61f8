/**
 * Retention: drops whole daily partitions whose range ended before the cutoff. This is the
 * only deletion path: DROP TABLE on a partition is not a row DELETE, so the append-only
 * trigger does not fire, and the chain verifier treats the oldest remaining record of each
 * instance as its anchor.
 */
import type pg from "pg";
import { SCHEMA_LOCK_KEY, dayOf, listPartitions, partitionDay } from "./schema.ts";

const DURATION_RE = /^(\d+)(s|m|h|d|w)$/;
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses `30d`, `12h`, `90m`, `45s`, `2w` into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = DURATION_RE.exec(text);
  if (!m) return undefined;
  const ms = Number(m[1]) * UNIT_MS[m[2]!]!;
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** Partitions entirely before `cutoffMs` (their upper bound, the next day, is <= cutoff). */
export async function partitionsOlderThan(client: pg.ClientBase, cutoffMs: number): Promise<string[]> {
  // A partition for day d holds [d, d + 1); it is wholly older when d + 1 <= floor(cutoff).
  const cutoffDay = dayOf(cutoffMs);
  return (await listPartitions(client)).filter((name) => {
    const day = partitionDay(name);
    return day !== undefined && day + 1 <= cutoffDay;
  });
}

export async function dropPartitions(client: pg.ClientBase, names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [SCHEMA_LOCK_KEY]);
    for (const name of names) await client.query(`DROP TABLE IF EXISTS ${client.escapeIdentifier(name)}`);
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}
