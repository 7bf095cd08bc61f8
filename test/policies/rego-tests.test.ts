/**
 * The pack's own Rego tests run through the real CLI (`arbiter test policies`), and the reason
 * codes documented in docs/policies.md are each reached by those tests and by the end-to-end tests.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { startSidecar } from "./harness.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);

/** Codes of the "Every reason code" table; decision-core codes are not the pack's to reach. */
function documentedCodes(): string[] {
  const doc = readFileSync(join(root, "docs/policies.md"), "utf8");
  const table = doc.split("## Every reason code")[1]!.split("\n## ")[0]!;
  const codes = [...table.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]!);
  // Codes Arbiter itself produces rather than the pack's rules (the grant verifier's reasons the
  // pack passes through, the decision core's state reasons): tested in test/trust, test/state
  // and test/decision.
  const fromArbiter = [
    "approvals_unavailable",
    "approval_bad_signature",
    "approval_unknown_key",
    "approval_not_yet_valid",
    "approval_wrong_audience",
    "state_unavailable",
    "usage_stale",
  ];
  return codes.filter((c) => !fromArbiter.includes(c));
}

const read = (dir: string, suffix: string) =>
  readdirSync(join(root, dir))
    .filter((f) => f.endsWith(suffix))
    .map((f) => readFileSync(join(root, dir, f), "utf8"))
    .join("\n");

describe("policy pack tests", () => {
  it("arbiter test policies passes every test", async () => {
    const { stdout } = await run(process.execPath, [join(root, "bin/arbiter.js"), "test", join(root, "policies")], {
      cwd: root,
      timeout: 120_000,
    });
    const m = /^(\d+) passed, (\d+) failed$/m.exec(stdout);
    expect(m, stdout).not.toBeNull();
    expect(Number(m![2])).toBe(0);
    expect(Number(m![1])).toBeGreaterThanOrEqual(100);
  }, 150_000);

  it("documents 34 pack reason codes, each reached by the Rego tests and the end-to-end tests", () => {
    const codes = documentedCodes();
    expect(codes.length).toBe(34);
    const rego = read("policies", "_test.rego");
    const e2e = read("test/policies", ".test.ts");
    expect(codes.filter((c) => !rego.includes(`"${c}"`))).toEqual([]);
    expect(codes.filter((c) => !e2e.includes(`"${c}"`))).toEqual([]);
  });

  it("arbiter build -o bundle.tar.gz policies gives a bundle the sidecar serves", async () => {
    const out = mkdtempSync(join(tmpdir(), "arbiter-build-"));
    try {
      const bundle = join(out, "bundle.tar.gz");
      const { stdout } = await run(process.execPath, [join(root, "bin/arbiter.js"), "build", "-o", bundle, join(root, "policies")], {
        cwd: root,
        timeout: 120_000,
      });
      expect(stdout).toContain("entrypoints: arbiter/decide, arbiter/route, arbiter/guard_memory, arbiter/finalize");
      const sidecar = await startSidecar(bundle);
      try {
        const res = await sidecar.call("Route", { tenantId: "acme", messages: [{ role: "user", content: "my password" }] });
        expect([res.provider, res.reasons]).toEqual(["local", ["sensitivity_keyword"]]);
      } finally {
        await sidecar.close();
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 150_000);
});
