/**
 * The release workflows users run on GitHub (they cannot run here): valid YAML, every action
 * pinned to an exact version, least-privilege permissions, and the steps the README promises.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import YAML from "yaml";

const dir = join(import.meta.dirname, "../../.github/workflows");
type Step = { uses?: string; run?: string; with?: Record<string, unknown> };
type Job = { permissions?: Record<string, string>; steps: Step[]; services?: Record<string, unknown> };
type Workflow = { permissions?: unknown; jobs: Record<string, Job> };
const load = (f: string): Workflow =>
  YAML.parse(readFileSync(join(dir, f), "utf8"), { strict: true, uniqueKeys: true }) as Workflow;

describe(".github/workflows", () => {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".yml"))
    .sort();

  it("has ci and release", () => expect(files).toEqual(["ci.yml", "release.yml"]));

  it.each(files)("%s: actions pinned to an exact version, permissions least-privilege", (f) => {
    const wf = load(f);
    expect(wf.permissions, "top-level permissions must be set").toBeDefined();
    expect(JSON.stringify(wf)).not.toMatch(/write-all/);
    for (const [name, job] of Object.entries(wf.jobs)) {
      for (const step of job.steps) {
        if (step.uses === undefined) continue;
        expect(step.uses, `${f} ${name}`).toMatch(/^[\w.-]+\/[\w.-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})$/);
      }
      for (const [scope, level] of Object.entries(job.permissions ?? {})) {
        if (level === "write") expect(["packages"], `${f} ${name}: ${scope}: write`).toContain(scope);
      }
    }
  });

  it("ci runs the README's checks against a Postgres service container, k6 and helm", () => {
    const wf = load("ci.yml");
    const runs = Object.values(wf.jobs).flatMap((j) => j.steps.map((s) => s.run ?? s.uses ?? ""));
    for (const cmd of [
      "npm ci --no-audit --no-fund",
      "npm run typecheck",
      "npm test",
      "node bin/arbiter.js test policies",
    ])
      expect(runs).toContain(cmd);
    expect(runs.some((r) => r.includes("bench:gate -- --k6"))).toBe(true);
    expect(runs.some((r) => r.includes("helm lint --strict"))).toBe(true);
    expect(wf.jobs.test!.services).toHaveProperty("postgres");
  });

  it("release pushes a multi-arch image with provenance and SBOM, and the chart as an OCI artifact", () => {
    const wf = load("release.yml");
    const build = wf.jobs.image!.steps.find((s) => s.uses?.startsWith("docker/build-push-action@"))!;
    expect(build.with).toMatchObject({
      platforms: "linux/amd64,linux/arm64",
      push: true,
      provenance: "mode=max",
      sbom: true,
      file: "deploy/Dockerfile",
    });
    expect(wf.jobs.chart!.steps.some((s) => s.run?.includes("helm push") && s.run.includes("oci://"))).toBe(true);
  });
});
