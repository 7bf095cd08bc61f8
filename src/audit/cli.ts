/**
 * `arbiter audit verify [--database-url URL] [--since TIME]`
 * `arbiter audit prune --older-than DURATION [--database-url URL] [--dry-run]`
 *
 * Exit codes: 0 ok, 1 a chain break (verify) or a failure, 2 usage error.
 */
import pg from "pg";
import { verifyChains } from "./verify.ts";
import { dropPartitions, parseDuration, partitionsOlderThan } from "./prune.ts";

const USAGE = `usage: arbiter audit verify [--database-url URL] [--since TIME]
       arbiter audit prune --older-than DURATION [--database-url URL] [--dry-run]

  --database-url URL   Postgres URL (default: ARBITER_DATABASE_URL)
  --since TIME         verify from this time: ISO 8601 (2026-01-31T00:00:00Z) or a duration ago (24h, 7d)
  --older-than DURATION  drop daily partitions that ended more than DURATION ago (e.g. 30d)
  --dry-run            list the partitions prune would drop, drop nothing
`;

/** A command-line mistake: exit code 2 with the usage text (shared with `arbiter state`). */
export class UsageError extends Error {}

export interface Parsed {
  flags: Map<string, string>;
  bools: Set<string>;
}

export function parseArgs(args: string[], valued: readonly string[], booleans: readonly string[]): Parsed {
  const flags = new Map<string, string>();
  const bools = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(0, eq) : a;
    if (booleans.includes(name) && eq < 0) {
      bools.add(name);
      continue;
    }
    if (!valued.includes(name)) throw new UsageError(`unknown option "${a}"`);
    const value = eq > 0 ? a.slice(eq + 1) : args[++i];
    if (value === undefined || value === "") throw new UsageError(`${name} needs a value`);
    flags.set(name, value);
  }
  return { flags, bools };
}

function databaseUrl(p: Parsed): string {
  const url = p.flags.get("--database-url") ?? process.env.ARBITER_DATABASE_URL;
  if (!url) throw new UsageError("no database: pass --database-url or set ARBITER_DATABASE_URL");
  return url;
}

/** ISO 8601 timestamp, or a duration meaning that long before now. */
export function parseSince(text: string, nowMs = Date.now()): number {
  const d = parseDuration(text);
  if (d !== undefined) return nowMs - d;
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const t = Date.parse(text);
    if (!Number.isNaN(t)) return t;
  }
  throw new UsageError(`--since must be an ISO 8601 time or a duration like 24h or 7d, got "${text}"`);
}

export async function withClient<T>(
  url: string,
  fn: (c: pg.Client) => Promise<T>,
  applicationName = "arbiter-audit-cli",
): Promise<T> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: 10_000,
    application_name: applicationName,
  });
  client.on("error", () => {
    // The query in progress fails with the same error and is reported there.
  });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function verify(args: string[]): Promise<number> {
  const p = parseArgs(args, ["--database-url", "--since"], []);
  const url = databaseUrl(p);
  const since = p.flags.has("--since") ? parseSince(p.flags.get("--since")!) : undefined;
  const result = await withClient(url, (c) => verifyChains(c, since));
  const out = process.stdout;
  for (const i of result.instances) {
    const range = i.records === 0 ? "no records" : `seq ${i.firstSeq}..${i.lastSeq}`;
    const anchor = i.anchored ? " (anchored: earlier records pruned or before --since)" : "";
    out.write(`instance ${i.instanceId}: ${i.records} records, ${range}${anchor}: ${i.break ? "BROKEN" : "ok"}\n`);
  }
  for (const b of result.breaks) {
    out.write(`BREAK instance=${b.instanceId} seq=${b.seq} decision_id=${b.decisionId} ${b.kind}: ${b.detail}\n`);
  }
  out.write(
    `audit verify: ${result.instances.length} instance(s), ${result.records} record(s), ${result.breaks.length} break(s)\n`,
  );
  if (result.breaks.length > 0) {
    process.stderr.write(
      `audit verify: chain broken at decision_id ${result.breaks[0]!.decisionId} (instance ${result.breaks[0]!.instanceId}, seq ${result.breaks[0]!.seq})\n`,
    );
    return 1;
  }
  return 0;
}

async function prune(args: string[]): Promise<number> {
  const p = parseArgs(args, ["--database-url", "--older-than"], ["--dry-run"]);
  const olderThan = p.flags.get("--older-than");
  if (olderThan === undefined) throw new UsageError("prune needs --older-than DURATION (e.g. 30d)");
  const ms = parseDuration(olderThan);
  if (ms === undefined) throw new UsageError(`--older-than must be a duration like 30d, 12h or 2w, got "${olderThan}"`);
  const url = databaseUrl(p);
  const dry = p.bools.has("--dry-run");
  const names = await withClient(url, async (c) => {
    const old = await partitionsOlderThan(c, Date.now() - ms);
    if (!dry) await dropPartitions(c, old);
    return old;
  });
  for (const n of names) process.stdout.write(`${dry ? "would drop" : "dropped"} ${n}\n`);
  process.stdout.write(
    `audit prune: ${names.length} partition(s) ${dry ? "older than " + olderThan + " (dry run)" : "dropped"}\n`,
  );
  return 0;
}

/**
 * Runs `arbiter <tool> <sub> ...`: usage errors exit 2 with the usage text, other failures 1 with
 * the message. Shared by `arbiter audit` and `arbiter state`.
 */
export async function runSubcommand(
  tool: string,
  usage: string,
  subs: Readonly<Record<string, (args: string[]) => Promise<number>>>,
  args: string[],
): Promise<number> {
  const [sub, ...rest] = args;
  try {
    const run = sub === undefined ? undefined : subs[sub];
    if (run !== undefined && Object.hasOwn(subs, sub!)) return await run(rest);
    if (sub === "-h" || sub === "--help") {
      process.stdout.write(usage);
      return 0;
    }
    throw new UsageError(sub === undefined ? "missing subcommand" : `unknown subcommand "${sub}"`);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`arbiter ${tool}: ${err.message}\n${usage}`);
      return 2;
    }
    process.stderr.write(`arbiter ${tool}: ${(err as Error).message}\n`);
    return 1;
  }
}

export function runAudit(args: string[]): Promise<number> {
  return runSubcommand("audit", USAGE, { verify, prune }, args);
}
