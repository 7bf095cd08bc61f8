/**
 * `arbiter state prune [--database-url URL] [--batch N] [--runs N] [--keep-usage DURATION] [--session-idle DURATION]`
 *
 * Deletes expired approvals and redeemed grants, budget windows (with their usage records) that
 * ended more than --keep-usage ago, and sessions idle for --session-idle; at most --batch rows
 * per table per run, and at most --runs runs (each run is one short statement per table, so the
 * work a single invocation does is bounded). The sidecar runs the same prune on a timer
 * (ARBITER_STATE_PRUNE_INTERVAL_SECONDS). Exit codes: 0 ok, 1 a failure, 2 usage error.
 */
import { parseDuration } from "../audit/prune.ts";
import { parseArgs, runSubcommand, UsageError, withClient, type Parsed } from "../audit/cli.ts";
import { pruneState, type PruneResult } from "./prune.ts";

const USAGE = `usage: arbiter state prune [--database-url URL] [--batch N] [--runs N] [--keep-usage DURATION] [--session-idle DURATION]

  --database-url URL       state database (default: ARBITER_STATE_DATABASE_URL, else ARBITER_DATABASE_URL)
  --batch N                most rows deleted per table per run (default 1000)
  --runs N                 most runs while rows remain (default 1; up to 10000)
  --keep-usage DURATION    keep budget windows this long after they end (default 7d)
  --session-idle DURATION  delete sessions idle this long (default 1h, as the sidecar's idle expiry)
`;

function positive(p: Parsed, name: string, fallback: number, max: number): number {
  const raw = p.flags.get(name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max)
    throw new UsageError(`${name} must be a whole number from 1 to ${max}, got "${raw}"`);
  return Number(raw);
}

function duration(p: Parsed, name: string): number | undefined {
  const raw = p.flags.get(name);
  if (raw === undefined) return undefined;
  const ms = parseDuration(raw);
  if (ms === undefined) throw new UsageError(`${name} must be a duration like 7d, 12h or 90m, got "${raw}"`);
  return ms;
}

async function prune(args: string[]): Promise<number> {
  const p = parseArgs(args, ["--database-url", "--batch", "--runs", "--keep-usage", "--session-idle"], []);
  const url =
    p.flags.get("--database-url") ?? (process.env.ARBITER_STATE_DATABASE_URL || process.env.ARBITER_DATABASE_URL);
  if (!url)
    throw new UsageError("no database: pass --database-url or set ARBITER_STATE_DATABASE_URL or ARBITER_DATABASE_URL");
  const batch = positive(p, "--batch", 1000, 1_000_000);
  const runs = positive(p, "--runs", 1, 10_000);
  const usageRetentionMs = duration(p, "--keep-usage");
  const sessionIdleMs = duration(p, "--session-idle");
  const total = { approvals: 0, grants: 0, usageWindows: 0, usageEvents: 0, sessions: 0 };
  let last: PruneResult | undefined;
  let done = 0;
  await withClient(
    url,
    async (c) => {
      while (done < runs) {
        last = await pruneState(c, {
          nowMs: Date.now(),
          batch,
          ...(usageRetentionMs !== undefined ? { usageRetentionMs } : {}),
          ...(sessionIdleMs !== undefined ? { sessionIdleMs } : {}),
        });
        done++;
        for (const k of Object.keys(total) as Array<keyof typeof total>) total[k] += last[k];
        if (!last.more) break;
      }
    },
    "arbiter-state-cli",
  );
  process.stdout.write(
    `state prune: ${total.approvals} approval(s), ${total.grants} grant(s), ${total.usageWindows} usage window(s), ` +
      `${total.usageEvents} usage record(s), ${total.sessions} session(s) deleted in ${done} run(s)` +
      `${last?.more ? "; more remain (raise --runs or run again)" : ""}\n`,
  );
  return 0;
}

export function runState(args: string[]): Promise<number> {
  return runSubcommand("state", USAGE, { prune }, args);
}
