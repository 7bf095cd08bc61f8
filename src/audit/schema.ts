/**
 * Schema management: versioned SQL migrations run under a Postgres advisory lock, and the daily
 * range partitions of `audit_records`.
 */
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type pg from "pg";

/** Advisory lock key shared by migrations and partition DDL ("arbiter!" as a 64-bit int). */
export const SCHEMA_LOCK_KEY = "7021781838048780577";
const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));
const MIGRATION_RE = /^(\d{3})_([a-z0-9_]+)\.sql$/;
export const PARTITION_PREFIX = "audit_records_p";
const PARTITION_RE = /^audit_records_p(\d{4})(\d{2})(\d{2})$/;
const DAY_MS = 86_400_000;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".sql")).sort();
  const out: Migration[] = [];
  for (const f of files) {
    const m = MIGRATION_RE.exec(f);
    if (!m) throw new Error(`audit migration file name "${f}" does not match NNN_name.sql`);
    const version = Number(m[1]);
    if (out.length > 0 && out[out.length - 1]!.version === version) {
      throw new Error(`audit migrations: version ${version} appears twice`);
    }
    out.push({ version, name: m[2]!, sql: await readFile(`${dir}/${f}`, "utf8") });
  }
  return out;
}

/**
 * Applies pending migrations, each in its own transaction, under a session advisory lock so
 * several instances starting together apply each one exactly once. Returns the versions applied.
 */
export async function runMigrations(client: pg.ClientBase, migrations?: Migration[]): Promise<number[]> {
  const list = migrations ?? (await loadMigrations());
  await client.query("SELECT pg_advisory_lock($1::bigint)", [SCHEMA_LOCK_KEY]);
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS arbiter_schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = new Set(
      (await client.query<{ version: number }>("SELECT version FROM arbiter_schema_migrations")).rows.map(
        (r) => r.version,
      ),
    );
    const applied: number[] = [];
    for (const m of list) {
      if (done.has(m.version)) continue;
      await client.query("BEGIN");
      try {
        await client.query(m.sql);
        await client.query("INSERT INTO arbiter_schema_migrations (version, name) VALUES ($1, $2)", [
          m.version,
          m.name,
        ]);
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw new Error(
          `audit migration ${String(m.version).padStart(3, "0")}_${m.name} failed: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
      applied.push(m.version);
    }
    return applied;
  } finally {
    await client.query("SELECT pg_advisory_unlock($1::bigint)", [SCHEMA_LOCK_KEY]).catch(() => undefined);
  }
}

/** UTC day number (days since the epoch) of a timestamp. */
export function dayOf(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

function isoDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

export function partitionName(day: number): string {
  return PARTITION_PREFIX + isoDay(day).replaceAll("-", "");
}

/** Parses a partition name back to its UTC day, or undefined for names not made here. */
export function partitionDay(name: string): number | undefined {
  const m = PARTITION_RE.exec(name);
  if (!m) return undefined;
  return dayOf(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
}

/** Creates the daily partitions for the given UTC days (those missing), under the schema lock. */
export async function ensurePartitions(client: pg.ClientBase, days: Iterable<number>): Promise<string[]> {
  const wanted = [...new Set(days)].sort((a, b) => a - b);
  if (wanted.length === 0) return [];
  const existing = new Set(await listPartitions(client));
  const missing = wanted.filter((d) => !existing.has(partitionName(d)));
  if (missing.length === 0) return [];
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [SCHEMA_LOCK_KEY]);
    for (const d of missing) {
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${partitionName(d)} PARTITION OF audit_records
           FOR VALUES FROM ('${isoDay(d)} 00:00:00+00') TO ('${isoDay(d + 1)} 00:00:00+00')`,
      );
    }
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
  return missing.map(partitionName);
}

/** Partitions created ahead: yesterday (clock skew) through `aheadDays` from today. */
export function partitionWindow(nowMs: number, aheadDays: number): number[] {
  const today = dayOf(nowMs);
  const out: number[] = [];
  for (let d = today - 1; d <= today + aheadDays; d++) out.push(d);
  return out;
}

export async function listPartitions(client: pg.ClientBase): Promise<string[]> {
  const r = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i
       JOIN pg_class c ON c.oid = i.inhrelid
       JOIN pg_class p ON p.oid = i.inhparent
      WHERE p.relname = 'audit_records' AND p.relnamespace = to_regnamespace(current_schema())::oid
      ORDER BY c.relname`,
  );
  return r.rows.map((x) => x.name);
}
