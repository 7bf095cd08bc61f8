import { describe, expect, it } from "vitest";
import { generateWasm } from "../../src/compiler/codegen.ts";
import { load, policyOf, result, rule } from "./backend-helpers.ts";

// allow := input.user == "alice"; user_role := data.roles[input.user]
const policy = policyOf(
  [
    rule("g0.data.t.allow", 6, 5, [
      { op: "const", target: 2, json: '"user"' },
      { op: "dot", target: 3, source: 0, key: 2 },
      { op: "const", target: 4, json: '"alice"' },
      { op: "builtin", target: 5, name: "equal", args: [3, 4] },
    ]),
    rule("g0.data.t.role", 8, 7, [
      { op: "const", target: 2, json: '"roles"' },
      { op: "dot", target: 3, source: 1, key: 2 },
      { op: "const", target: 4, json: '"user"' },
      { op: "dot", target: 5, source: 0, key: 4 },
      { op: "dot", target: 6, source: 3, key: 5 },
      { op: "assignOnce", target: 7, source: 6, message: "conflict" },
    ]),
  ],
  { "t/allow": "g0.data.t.allow", "t/role": "g0.data.t.role" },
);

describe("ABI through @open-policy-agent/opa-wasm", () => {
  it("exposes ABI 1.2, the entrypoints and an empty builtin map", async () => {
    const wasm = generateWasm(policy);
    const mod = await WebAssembly.compile(new Uint8Array(wasm));
    const exports = WebAssembly.Module.exports(mod)
      .map((e) => e.name)
      .sort();
    expect(exports).toEqual([
      "builtins",
      "entrypoints",
      "eval",
      "memory",
      "opa_eval",
      "opa_eval_ctx_get_result",
      "opa_eval_ctx_new",
      "opa_eval_ctx_set_data",
      "opa_eval_ctx_set_entrypoint",
      "opa_eval_ctx_set_input",
      "opa_free",
      "opa_heap_ptr_get",
      "opa_heap_ptr_set",
      "opa_json_dump",
      "opa_json_parse",
      "opa_malloc",
      "opa_value_dump",
      "opa_value_parse",
      "opa_wasm_abi_minor_version",
      "opa_wasm_abi_version",
    ]);
    expect(
      WebAssembly.Module.imports(mod)
        .map((i) => `${i.module}.${i.name}`)
        .sort(),
    ).toEqual([
      "env.memory",
      "env.opa_abort",
      "env.opa_builtin0",
      "env.opa_builtin1",
      "env.opa_builtin2",
      "env.opa_builtin3",
      "env.opa_builtin4",
    ]);
    const p = await load(policy);
    expect(p.minorVersion).toBe(2);
    expect(p.entrypoints).toEqual({ "t/allow": 0, "t/role": 1 });
  });

  it("evaluates by entrypoint name and id, repeatedly, with undefined results as []", async () => {
    const p = await load(policy);
    for (let i = 0; i < 3; i++) {
      expect(p.evaluate({ user: "alice" }, "t/allow")).toEqual([{ result: true }]);
      expect(p.evaluate({ user: "bob" }, 0)).toEqual([{ result: false }]);
      expect(p.evaluate({ name: "alice" })).toEqual([]);
      expect(p.evaluate(undefined)).toEqual([]);
    }
    expect(() => p.evaluate({}, "t/nope")).toThrow("entrypoint t/nope is not valid in this instance");
    expect(() => p.evaluate({}, 7)).toThrow("invalid entrypoint id");
  });

  it("reads data set with setData, and setData replaces it", async () => {
    const p = await load(policy);
    expect(result(p, { user: "alice" }, "t/role")).toBeUndefined();
    p.setData({ roles: { alice: "admin", bob: ["dev", { x: 1.5 }] } });
    expect(result(p, { user: "alice" }, "t/role")).toBe("admin");
    expect(result(p, { user: "bob" }, "t/role")).toEqual(["dev", { x: 1.5 }]);
    expect(result(p, { user: "carol" }, "t/role")).toBeUndefined();
    p.setData({ roles: { carol: null } });
    expect(result(p, { user: "alice" }, "t/role")).toBeUndefined();
    expect(result(p, { user: "carol" }, "t/role")).toBeNull();
  });

  it("works through the slow path (ABI < 1.2 exports)", async () => {
    const p = await load(policy);
    p.minorVersion = 1;
    p.setData({ roles: { alice: "admin" } });
    expect(p.evaluate({ user: "alice" }, "t/role")).toEqual([{ result: "admin" }]);
    expect(p.evaluate({ user: "x" }, "t/role")).toEqual([]);
  });

  it("rejects malformed JSON from the host", async () => {
    const p = await load(policy);
    expect(() => p.setData(new TextEncoder().encode('{"a": [1,}').buffer)).toThrow("failed to parse json value");
    expect(() => p.evaluate(new TextEncoder().encode("{nope").buffer)).toThrow("invalid input: malformed JSON");
  });

  it("rejects invalid IR with a clear error", () => {
    expect(() =>
      generateWasm(policyOf([rule("f", 3, 2, [{ op: "dot", target: 2, source: 0, key: 9 }])], { a: "f" })),
    ).toThrow("function f: local 9 out of range (locals: 3)");
    expect(() => generateWasm(policyOf([], { a: "missing" }))).toThrow("plan a: unknown function missing");
    expect(() =>
      generateWasm(policyOf([rule("f", 3, 2, [{ op: "const", target: 2, json: "{x" }])], { a: "f" })),
    ).toThrow("const is not valid JSON: {x");
    expect(() => generateWasm(policyOf([rule("f", 3, 2, [{ op: "break", index: 1 }])], { a: "f" }))).toThrow(
      "function f: break 1 leaves more blocks than enclose it",
    );
  });
});
