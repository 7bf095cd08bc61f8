/**
 * Template strings (`$"..."`, issue 13) through the real pipeline: Rego -> IR -> wasm ->
 * @open-policy-agent/opa-wasm, compared with what OPA answers for the same policy.
 */
import { describe, expect, it } from "vitest";
import { compile } from "../../src/compiler/index.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";

async function evalRego(text: string, entrypoint: string, input?: unknown): Promise<unknown[]> {
  const { wasm } = compile([{ path: "t.rego", text }], { entrypoints: [entrypoint] });
  const policy = await loadCompiledPolicy(wasm);
  return (policy.evaluate(input, entrypoint) as { result: unknown }[]).map((r) => r.result);
}

describe("template strings", () => {
  it("print strings as-is and other values in Rego notation, as OPA does", async () => {
    const policy = `package t
p := $"{42}, {13.37}, {true}, {"foo"}, {null}, {[1, "a"]}, {{"a": "b"}}, {input.s}"
`;
    expect(await evalRego(policy, "t/p", { s: "x y" })).toEqual([
      `42, 13.37, true, foo, null, [1, "a"], {"a": "b"}, x y`,
    ]);
  });

  it("print an undefined expression as <undefined> and stay defined", async () => {
    const policy = `package t
p := $"a={input.a} b={$"{input.b}!"}"
`;
    expect(await evalRego(policy, "t/p", { b: 1 })).toEqual(["a=<undefined> b=1!"]);
    expect(await evalRego(policy, "t/p", { a: "x" })).toEqual(["a=x b=<undefined>!"]);
  });

  it("decode escapes, \\{ as a literal brace, and keep raw multi-line text", async () => {
    const policy = 'package t\np := $"\\{{1}\\t\\"}"\nq := $`line {1}\n\\{x}`\n';
    expect(await evalRego(policy, "t/p")).toEqual(['{1\t"}']);
    expect(await evalRego(policy, "t/q")).toEqual(["line 1\n{x}"]);
  });

  it("apply a with modifier written inside the expression", async () => {
    const policy = `package t
a := input.a
p := $"foo {a with input as {"a": 42}}"
`;
    expect(await evalRego(policy, "t/p")).toEqual(["foo 42"]);
  });

  it("print sets as OPA does: Rego's order, set() when empty, at any depth", async () => {
    const policy = `package t
p := $"{{1}} {set()} {{"b", "a"}} {[{3, 1}, {"k": {2, 1}}]}"
`;
    expect(await evalRego(policy, "t/p")).toEqual(['{1} set() {"a", "b"} [{1, 3}, {"k": {1, 2}}]']);
  });

  it("refuse an unterminated template string with a diagnostic", () => {
    expect(() => compile([{ path: "t.rego", text: 'package t\np := $"{1}\n' }], { entrypoints: ["t/p"] })).toThrow(
      /unterminated template string/,
    );
  });
});
