/**
 * The host builtin families imported only when a policy declares one of them (graphql-js, ajv;
 * host-builtins-opa.ts): the stub table names exactly each family's builtins, a module that was
 * instantiated without loading its family fails its evaluation with an error instead of
 * answering, and the policy loaders load what a module declares before its first evaluation.
 */
import { describe, expect, it } from "vitest";
import { compile, hostBuiltins } from "../../src/compiler/index.ts";
import { LAZY_FAMILIES } from "../../src/compiler/host-builtins-opa.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";
import { Deadline, instantiatePolicy } from "../../src/engine/policy-instance.ts";
import { instrumentDeadline } from "../../src/engine/wasm-deadline.ts";
import { createEngineHost } from "../../src/engine/index.ts";
import { tempDir, writeBundleDir } from "../engine/fixtures.ts";
import { rm } from "node:fs/promises";
import { pino } from "pino";
import { Registry } from "prom-client";

function wasmOf(expr: string): Uint8Array {
  const text = `package t\nr := __x if { __x := ${expr} }`;
  return compile([{ path: "t.rego", text }], { entrypoints: ["t/r"] }).wasm;
}

const GRAPHQL = `graphql.schema_is_valid("type Query { a: Int }")`;
const SCHEMA = `json.verify_schema({"type": "string"})`;

describe("lazily loaded host builtin families", () => {
  it("list exactly the builtins their modules implement, and every one is in the host table", async () => {
    for (const family of LAZY_FAMILIES) {
      expect(Object.keys(await family.load()).sort()).toEqual([...family.names].sort());
      for (const name of family.names) expect(typeof hostBuiltins[name]).toBe("function");
    }
  });

  // Runs before the next test loads the graphql family into this file's module graph.
  it("fail the evaluation, not answer, when a module was instantiated without loading its family", async () => {
    const module = await WebAssembly.compile(instrumentDeadline(wasmOf(GRAPHQL)));
    const policy = instantiatePolicy(module, {
      memory: { initial: 5, maximum: 1024 },
      hostBuiltins: hostBuiltins as Record<string, (...args: unknown[]) => unknown>,
      deadline: new Deadline(),
    });
    expect(policy.builtinNames).toContain("graphql.schema_is_valid");
    expect(() => policy.evaluate({}, "t/r")).toThrow(/graphql\.schema_is_valid: its implementation was not loaded/);
  });

  it("are loaded by loadCompiledPolicy for the builtins the module declares", async () => {
    const graphql = await loadCompiledPolicy(wasmOf(GRAPHQL));
    expect(graphql.evaluate({}, "t/r")).toEqual([{ result: true }]);
  });

  it("are loaded by the engine host (load worker, then snapshot) for a bundle that declares them", async () => {
    const dir = await tempDir("lazy");
    try {
      await writeBundleDir(dir, { revision: "s1", data: {}, wasm: wasmOf(SCHEMA), entrypoints: ["t/r"] });
      const engine = createEngineHost({
        source: dir,
        watch: false,
        requiredEntrypoints: ["t/r"],
        logger: pino({ level: "silent" }),
        registry: new Registry(),
      });
      try {
        await engine.start();
        expect(engine.status().lastError).toBeUndefined();
        expect(engine.active()!.evaluate("t/r", {})).toEqual([{ result: [true, null] }]);
      } finally {
        await engine.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
