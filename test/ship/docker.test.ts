/**
 * deploy/Dockerfile without a docker engine: the stages and hardening the image promises, and every
 * COPY source present in the build context that .dockerignore lets through (the same copy
 * .ci/docker-steps.sh builds from).
 */
import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { copyContext } from "../../deploy/context.mjs";
import { readText } from "./helm-lite.ts";

const repo = resolve(import.meta.dirname, "../..");
const dockerfile = readText(join(repo, "deploy/Dockerfile"));

/** Instructions with continuation lines joined, comments dropped. */
function instructions(text: string): string[] {
  return text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

describe("deploy/Dockerfile", () => {
  const ins = instructions(dockerfile);
  const stages = ins.filter((l) => l.startsWith("FROM "));

  it("builds in stages on node:20-bookworm-slim", () => {
    expect(ins).toContain("ARG NODE_IMAGE=node:20-bookworm-slim");
    expect(stages).toEqual([
      "FROM ${NODE_IMAGE} AS build",
      "FROM ${NODE_IMAGE} AS deps",
      "FROM ${NODE_IMAGE} AS runtime",
    ]);
  });

  it("builds the default bundle with dev dependencies and ships production dependencies only", () => {
    const runs = ins.filter((l) => l.startsWith("RUN "));
    expect(runs.some((l) => /npm ci --no-audit --no-fund$/.test(l))).toBe(true);
    expect(
      runs.some(
        (l) => l.includes("npm run build") && l.includes("node bin/arbiter.js build -o /bundle/bundle.tar.gz policies"),
      ),
    ).toBe(true);
    expect(runs.some((l) => l.includes("npm ci --omit=dev"))).toBe(true);
    expect(ins).toContain("COPY --from=deps /app/node_modules ./node_modules");
    expect(ins).toContain("COPY --from=build /bundle/bundle.tar.gz /opt/arbiter/bundle/bundle.tar.gz");
  });

  it("runs the compiled JavaScript: dist/ from the build stage, no sources and no tsconfig in the runtime", () => {
    const runtime = ins.slice(ins.indexOf("FROM ${NODE_IMAGE} AS runtime"));
    expect(runtime).toContain("COPY --from=build /src/dist ./dist");
    const copies = runtime.filter((l) => l.startsWith("COPY ") && !l.startsWith("COPY --from"));
    expect(copies).toEqual([
      "COPY package.json ./",
      "COPY bin ./bin",
      "COPY deploy/healthcheck.mjs ./deploy/healthcheck.mjs",
    ]);
    // bin/arbiter.js runs dist/ when no src/ is beside it.
    expect(readText(join(repo, "bin/arbiter.js"))).toContain('await import("../dist/src/cli.js")');
  });

  it("runs as uid 10001 with volumes as the only writable paths and a gRPC health check", () => {
    const runtime = ins.slice(ins.indexOf("FROM ${NODE_IMAGE} AS runtime"));
    expect(runtime).toContain("USER 10001:10001");
    expect(runtime.some((l) => l.includes("useradd --system --uid 10001 --gid 10001"))).toBe(true);
    expect(runtime).toContain('VOLUME ["/var/lib/arbiter", "/var/run/arbiter", "/tmp"]');
    const hc = runtime.find((l) => l.startsWith("HEALTHCHECK "));
    expect(hc).toMatch(/CMD \["node", "deploy\/healthcheck\.mjs", "--service", "arbiter\.v1\.PolicyService"\]$/);
    expect(runtime.join("\n")).toMatch(/ARBITER_HEALTH_LISTEN=0\.0\.0\.0:50052/);
    expect(runtime.join("\n")).toMatch(/ARBITER_BUNDLE=\/opt\/arbiter\/bundle\/bundle\.tar\.gz/);
    expect(runtime.at(-2)).toBe('ENTRYPOINT ["node", "bin/arbiter.js"]');
    expect(runtime.at(-1)).toBe('CMD ["serve"]');
  });

  it("finds every COPY source in the .dockerignore-filtered context", () => {
    const dest = mkdtempSync(join(tmpdir(), "arbiter-context-"));
    try {
      copyContext(repo, dest);
      const sources = ins
        .filter((l) => l.startsWith("COPY ") && !l.startsWith("COPY --from"))
        .flatMap((l) => l.split(/\s+/).slice(1, -1))
        .filter((s) => s !== ".");
      expect(sources).toEqual(
        expect.arrayContaining(["package.json", "package-lock.json", "bin", "deploy/healthcheck.mjs"]),
      );
      // `COPY . .` of the build stage compiles these (npm run build).
      for (const p of [
        "src/cli.ts",
        "gen/compiler/runtime.wasm",
        "tsconfig.json",
        "tsconfig.build.json",
        "scripts/build.mjs",
      ])
        expect(existsSync(join(dest, p)), p).toBe(true);
      for (const s of sources) expect(existsSync(join(dest, s)), s).toBe(true);
      for (const absent of ["node_modules", "test", "bench", "helm", ".git", "deploy/Dockerfile"]) {
        expect(existsSync(join(dest, absent)), absent).toBe(false);
      }
      expect(existsSync(join(dest, "policies/data.json"))).toBe(true);
    } finally {
      rmSync(dest, { recursive: true, force: true });
    }
  });
});
