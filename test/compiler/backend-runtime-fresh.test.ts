import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generateWasm } from "../../src/compiler/codegen.ts";
import { policyOf, rule } from "./backend-helpers.ts";

const root = join(import.meta.dirname, "..", "..");

describe("build outputs", () => {
  it("gen/compiler/runtime.wasm is what `npm run gen:runtime` builds from the sources now", () => {
    const script = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> })
      .scripts["gen:runtime"]!;
    const dir = mkdtempSync(join(tmpdir(), "arbiter-runtime-"));
    try {
      const out = join(dir, "runtime.wasm");
      const args = script
        .split(/\s+/)
        .slice(1)
        .map((a) => (a === "gen/compiler/runtime.wasm" ? out : a));
      expect(args).toContain(out);
      execFileSync(join(root, "node_modules", ".bin", "asc"), args, { cwd: root, stdio: "pipe" });
      const fresh = readFileSync(out);
      const committed = readFileSync(join(root, "gen", "compiler", "runtime.wasm"));
      expect(fresh.equals(committed), "runtime sources changed: run npm run gen:runtime and commit the result").toBe(
        true,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it("generateWasm is deterministic", () => {
    const p = policyOf(
      [
        rule("f", 4, 3, [
          { op: "const", target: 2, json: '"x"' },
          { op: "dot", target: 3, source: 0, key: 2 },
        ]),
      ],
      { "t/f": "f" },
    );
    expect(Buffer.from(generateWasm(p)).equals(Buffer.from(generateWasm(p)))).toBe(true);
  });
});
