/**
 * Issue #15 acceptance: `npm pack` makes a package that installs in an empty project and answers a
 * Decide in-process through `createArbiter` (library mode), with the default policy pack, audit
 * off and then on against a real Postgres (test/support/postgres.ts).
 *
 * The repository's files (tracked and untracked, .gitignore applied) are copied to a temp dir with
 * node_modules linked, so `npm pack` (its `prepare` runs `npm run build`) compiles there and never
 * rewrites this worktree's dist/ under other tests. The empty project installs the tarball with
 * `--prefer-offline`: the tarballs come from the npm cache; `--offline` alone fails here because
 * the cache holds no registry metadata for the dependency ranges (ENOTCACHED).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import pg from "pg";
import { startTestPostgres, type TestPostgres } from "../support/postgres.ts";

const repo = resolve(import.meta.dirname, "../..");
const work = mkdtempSync(join(tmpdir(), "arbiter-pack-"));
const project = join(work, "project");
let tarball = "";
let postgres: TestPostgres | undefined;

/** Runs a command, bounded in time; throws with its output on failure. */
function run(cmd: string, args: string[], cwd: string, timeout: number): string {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: "utf8",
    timeout,
    env: { ...process.env, npm_config_update_notifier: "false" },
  });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")}: status ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const SCRIPT = `
import { createArbiter } from "arbiter";
const options = JSON.parse(process.argv[2]);
const arbiter = await createArbiter({ logLevel: "silent", dataDir: "./.arbiter", ...options });
try {
  const r = await arbiter.decide({ tenantId: "acme", subject: { id: "u1", roles: ["viewer"] }, action: "read", resource: { type: "document", id: "d1" } });
  console.log(JSON.stringify({ ready: arbiter.status().ready, ...r }));
} finally {
  await arbiter.close();
}
`;

beforeAll(async () => {
  const src = join(work, "src");
  const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], {
    cwd: repo,
    encoding: "utf8",
  })
    .split("\0")
    .filter((f) => f !== "" && !f.startsWith("node_modules/"));
  for (const f of files) {
    try {
      mkdirSync(dirname(join(src, f)), { recursive: true });
      cpSync(join(repo, f), join(src, f));
    } catch (err) {
      // A file deleted in the worktree but still in the index.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  symlinkSync(join(repo, "node_modules"), join(src, "node_modules"));
  // `npm pack` runs `prepare` (npm run build) first.
  run("npm", ["pack", "--silent", "--pack-destination", work], src, 240_000);
  tarball = join(
    work,
    readdirSync(work).find((f) => f.endsWith(".tgz"))!,
  );
  mkdirSync(project);
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "empty-project", version: "1.0.0", private: true, type: "module" }),
  );
  writeFileSync(join(project, "decide.mjs"), SCRIPT);
  run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball], project, 240_000);
  postgres = await startTestPostgres();
}, 600_000);

afterAll(async () => {
  await postgres?.stop();
  rmSync(work, { recursive: true, force: true });
});

function decide(options: object): Record<string, unknown> {
  const out = run(process.execPath, ["decide.mjs", JSON.stringify(options)], project, 120_000);
  return JSON.parse(out.trim().split("\n").at(-1)!) as Record<string, unknown>;
}

describe("npm pack -> npm install in an empty project -> createArbiter", () => {
  it("packs the compiled build, its types, the bin and the default pack, and no sources or tests", () => {
    const members = execFileSync("tar", ["-tzf", tarball], { encoding: "utf8" })
      .split("\n")
      .map((m) => m.replace(/^package\//, ""));
    for (const m of [
      "package.json",
      "bin/arbiter.js",
      "dist/src/library/index.js",
      "dist/src/library/index.d.ts",
      "dist/src/cli.js",
      "dist/gen/compiler/runtime.wasm",
      "dist/src/audit/migrations/001_audit_records.sql",
      "policies/data.json",
      "policies/decide.rego",
    ]) {
      expect(members, m).toContain(m);
    }
    expect(members.filter((m) => /^(src|test|bench|gen|deploy|helm)\//.test(m))).toEqual([]);
    expect(members.filter((m) => m.endsWith(".ts") && !m.endsWith(".d.ts"))).toEqual([]);
  });

  it("answers a Decide with the default pack, audit off", () => {
    const r = decide({ audit: false });
    expect(r).toMatchObject({ ready: true, allow: true, reasons: ["role_permitted"], riskTier: 0 });
    expect(r.bundleRevision).toMatch(/^sha256:[0-9a-f]{12}$/);
  }, 150_000);

  it("answers a Decide with audit on, and the decision is in the audit trail", async () => {
    const url = await postgres!.createTestDatabase("arbiter_pack");
    const r = decide({ audit: { databaseUrl: url, durability: "sync" } });
    expect(r).toMatchObject({ ready: true, allow: true });
    const c = new pg.Client(url);
    await c.connect();
    try {
      const rows = await c.query("SELECT rpc, tenant_id, reasons FROM audit_records WHERE decision_id = $1", [
        r.decisionId,
      ]);
      expect(rows.rows).toEqual([{ rpc: "Decide", tenant_id: "acme", reasons: ["role_permitted"] }]);
    } finally {
      await c.end();
    }
  }, 150_000);
});
