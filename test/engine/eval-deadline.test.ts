/**
 * The evaluation deadline (issue #12) over real modules: a hand-written OPA-ABI module that loops
 * on one input, honest Rego doing huge work, and the project's compiled policies, all loaded by
 * the real engine host and evaluated through the SDK's `LoadedPolicy`.
 */
import { rm } from "node:fs/promises";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { loadPolicy } from "@open-policy-agent/opa-wasm";
import { engineContract } from "../../src/decision/contract.ts";
import { createEngineHost, EvaluationTimeoutError, type EngineHost } from "../../src/engine/index.ts";
import { hostBuiltins } from "../../src/compiler/index.ts";
import { instrumentDeadline, WasmInstrumentError } from "../../src/engine/wasm-deadline.ts";
import {
  ENTRYPOINTS,
  POLICY_SOURCES,
  compileSources,
  dataFor,
  policyWasm,
  tempDir,
  writeBundleDir,
} from "./fixtures.ts";
import { HEAVY_REGO, LOOP_INPUT_BYTES, LOOPING_MODULE_DECIDE, loopingModuleWasm } from "./hostile-modules.ts";

const logger = pino({ level: "silent" });
const hosts: EngineHost[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function loaded(wasm: Uint8Array, evalTimeoutMs = 100): Promise<{ engine: EngineHost; registry: Registry }> {
  const dir = await tempDir("deadline");
  dirs.push(dir);
  await writeBundleDir(dir, { revision: "r1", wasm });
  const registry = new Registry();
  const engine = createEngineHost({ source: dir, ...engineContract(), watch: false, evalTimeoutMs, logger, registry });
  hosts.push(engine);
  await engine.start();
  return { engine, registry };
}

const smallInput = {
  tenant_id: "t",
  subject: { id: "u", roles: [] },
  action: "read",
  resource: { type: "doc", id: "d" },
  context: {},
};
const loopInput = { ...smallInput, context: { pad: "x".repeat(LOOP_INPUT_BYTES) } };

function timed<T>(fn: () => T): { value?: T; error?: unknown; ms: number } {
  const t0 = performance.now();
  try {
    return { value: fn(), ms: performance.now() - t0 };
  } catch (error) {
    return { error, ms: performance.now() - t0 };
  }
}

async function timeouts(registry: Registry): Promise<number> {
  return (await registry.getSingleMetric("arbiter_evaluation_timeouts_total")!.get()).values[0]?.value ?? 0;
}

describe("evaluation deadline", () => {
  it("abandons a hand-written module's infinite loop at the deadline, then serves again on a fresh instance", async () => {
    const { engine, registry } = await loaded(loopingModuleWasm(), 100);
    expect(engine.status().lastError).toBeUndefined();
    const active = engine.active()!;
    expect(active.evaluate("arbiter/decide", smallInput)).toEqual([{ result: LOOPING_MODULE_DECIDE }]);

    const spin = timed(() => active.evaluate("arbiter/decide", loopInput));
    expect(spin.error).toBeInstanceOf(EvaluationTimeoutError);
    expect((spin.error as EvaluationTimeoutError).reason).toBe("evaluation_timeout");
    expect((spin.error as Error).message).toBe("policy evaluation exceeded its deadline of 100 ms");
    expect(spin.ms).toBeGreaterThanOrEqual(99);
    expect(spin.ms).toBeLessThan(100 + 60);
    expect(await timeouts(registry)).toBe(1);

    // The interrupted instance was replaced: the same snapshot answers normally again, twice.
    expect(active.evaluate("arbiter/decide", smallInput)).toEqual([{ result: LOOPING_MODULE_DECIDE }]);
    expect(timed(() => active.evaluate("arbiter/decide", loopInput)).error).toBeInstanceOf(EvaluationTimeoutError);
    expect(active.evaluate("arbiter/decide", smallInput)).toEqual([{ result: LOOPING_MODULE_DECIDE }]);
    expect(await timeouts(registry)).toBe(2);
  });

  it("honours a configured deadline of 20 ms", async () => {
    const { engine } = await loaded(loopingModuleWasm(), 20);
    const spin = timed(() => engine.active()!.evaluate("arbiter/decide", loopInput));
    expect(spin.error).toBeInstanceOf(EvaluationTimeoutError);
    expect(spin.ms).toBeGreaterThanOrEqual(19);
    expect(spin.ms).toBeLessThan(20 + 50);
  });

  // HEAVY_REGO allocates as it goes (the inner range is built again for every x) and fills the
  // 64 MiB memory cap in ~45 ms warm, ~80-100 ms cold, on the 2026-12 CI machine: the deadline
  // must be well below that, or "out of memory" may come first (a CI flake at 100 ms).
  it("abandons honest Rego doing 10^10 steps (comprehension over two large numbers.range)", async () => {
    const wasm = compileSources({ ...POLICY_SOURCES, "decide.rego": HEAVY_REGO });
    const { engine } = await loaded(wasm, 15);
    const active = engine.active()!;
    expect(active.evaluate("arbiter/decide", smallInput)).toEqual([{ result: { allow: true, reasons: ["light"] } }]);
    const heavy = timed(() => active.evaluate("arbiter/decide", { ...smallInput, context: { heavy: true } }));
    expect(heavy.error).toBeInstanceOf(EvaluationTimeoutError);
    expect(heavy.ms).toBeLessThan(15 + 60);
    expect(active.evaluate("arbiter/decide", smallInput)).toEqual([{ result: { allow: true, reasons: ["light"] } }]);
  });

  it("refuses a bundle whose smoke evaluation runs past the deadline, keeping none active", async () => {
    const loopsOnEverything = compileSources({
      ...POLICY_SOURCES,
      "decide.rego": HEAVY_REGO.replace("input.context.heavy == true", "true"),
    });
    const { engine } = await loaded(loopsOnEverything, 15);
    expect(engine.active()).toBeUndefined();
    expect(engine.status().lastError).toBe(
      "bundle: smoke evaluation of arbiter/decide failed: policy evaluation exceeded its deadline of 15 ms",
    );
  });

  it('a policy that exhausts its memory fails with "out of memory", never a stack overflow', async () => {
    // The runtime's abort used to allocate its message: when the failed allocation left fewer
    // bytes than the message needed, alloc and fatal called each other until the JavaScript stack
    // overflowed (n = 2000 and 3000 did, 1500 did not). The deadline here is far away.
    for (const n of [1500, 2000, 3000]) {
      const wasm = compileSources({
        ...POLICY_SOURCES,
        "decide.rego": HEAVY_REGO.replaceAll("100000", String(n)),
      });
      const { engine } = await loaded(wasm, 10_000);
      const out = timed(() => engine.active()!.evaluate("arbiter/decide", { ...smallInput, context: { heavy: true } }));
      expect(out.error).toBeInstanceOf(Error);
      expect((out.error as Error).message).toMatch(/out of memory$/);
    }
  });

  it("the instrumented compiled policy answers exactly as the uninstrumented one through the SDK", async () => {
    const plain = await loadPolicy(policyWasm(), { initial: 5, maximum: 1024 }, hostBuiltins as never);
    plain.setData(dataFor("m1"));
    const { engine } = await (async () => {
      const dir = await tempDir("deadline-eq");
      dirs.push(dir);
      await writeBundleDir(dir, { revision: "m1", data: dataFor("m1") });
      const e = createEngineHost({ source: dir, ...engineContract(), watch: false, logger, registry: new Registry() });
      hosts.push(e);
      await e.start();
      return { engine: e };
    })();
    const inputs = [
      smallInput,
      { ...smallInput, action: "delete", subject: { id: "a", roles: ["admin"] } },
      { ...smallInput, context: { boom: true } },
      { ...smallInput, approval: { present: true, valid: true, reason: "approval_valid" } },
    ];
    for (const input of inputs) {
      for (const ep of ENTRYPOINTS) {
        let want: unknown;
        try {
          want = plain.evaluate(input, ep);
        } catch (err) {
          want = { error: String(err) };
        }
        let got: unknown;
        try {
          got = engine.active()!.evaluate(ep, input);
        } catch (err) {
          const cause = (err as Error).cause;
          got = { error: cause instanceof Error ? cause.message : String(cause) };
        }
        expect(got).toEqual(want);
      }
    }
  });

  it("refuses a module with an opcode it cannot decode, naming it", () => {
    // (func (result v128) v128.const 0) — SIMD, which no OPA or Arbiter module uses.
    const simd = new Uint8Array([
      0,
      0x61,
      0x73,
      0x6d,
      1,
      0,
      0,
      0,
      1,
      5,
      1,
      0x60,
      0,
      1,
      0x7b,
      3,
      2,
      1,
      0,
      10,
      22,
      1,
      20,
      0,
      0xfd,
      0x0c,
      ...new Array<number>(16).fill(0),
      0x0b,
    ]);
    expect(() => new WebAssembly.Module(simd)).not.toThrow();
    expect(() => instrumentDeadline(simd)).toThrow(WasmInstrumentError);
    expect(() => instrumentDeadline(simd)).toThrow(
      "policy.wasm uses opcode 0xfd, which the deadline instrumentation does not know",
    );
    expect(() => instrumentDeadline(new Uint8Array([1, 2, 3]))).toThrow(
      "policy.wasm is not a WebAssembly version 1 module",
    );
  });
});
