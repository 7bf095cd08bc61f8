/**
 * `walk` as OPA's relation (issue 13) through the real pipeline: Rego -> IR -> wasm ->
 * @open-policy-agent/opa-wasm with Arbiter's host builtins, compared with what OPA answers.
 */
import { describe, expect, it } from "vitest";
import { compile } from "../../src/compiler/index.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";

async function evalRego(text: string, entrypoint: string, input?: unknown): Promise<unknown[]> {
  const { wasm } = compile([{ path: "t.rego", text }], { entrypoints: [entrypoint] });
  const policy = await loadCompiledPolicy(wasm);
  return (policy.evaluate(input, entrypoint) as { result: unknown }[]).map((r) => r.result);
}

const INPUT = { b: [1], a: { y: 2, x: 1 } };

describe("walk", () => {
  it("yields every [path, value] pair, root first, depth-first in key order", async () => {
    const policy = "package t\np := [x | walk(input, x)]\n";
    expect(await evalRego(policy, "t/p", INPUT)).toEqual([
      [
        [[], { a: { x: 1, y: 2 }, b: [1] }],
        [["a"], { x: 1, y: 2 }],
        [["a", "x"], 1],
        [["a", "y"], 2],
        [["b"], [1]],
        [["b", 0], 1],
      ],
    ]);
  });

  it("unifies each pair with a partly ground path, with a wildcard path, and as [p, v] := walk(x)", async () => {
    const policy = `package t
under_a := [[k, v] | walk(input, [["a", k], v])]
values := [v | walk(input, [_, v]); is_number(v)]
paths := [p | [p, _] := walk(input)]
`;
    expect(await evalRego(policy, "t/under_a", INPUT)).toEqual([
      [
        ["x", 1],
        ["y", 2],
      ],
    ]);
    expect(await evalRego(policy, "t/values", INPUT)).toEqual([[1, 2, 1]]);
    expect(await evalRego(policy, "t/paths", INPUT)).toEqual([[[], ["a"], ["a", "x"], ["a", "y"], ["b"], ["b", 0]]]);
  });

  it("is undefined when no pair matches", async () => {
    const policy = 'package t\np if walk(input, [["nope"], _])\n';
    expect(await evalRego(policy, "t/p", INPUT)).toEqual([]);
  });

  it("walks a set with each element as its own path key, and keeps sets in paths and values", async () => {
    const policy = `package t
p := [x | walk({2, 1}, x)]
same if [x | walk({"s": {[1]}}, x)] == [[[], {"s": {[1]}}], [["s"], {[1]}], [["s", [1]], [1]], [["s", [1], 0], 1]]
`;
    expect(await evalRego(policy, "t/p")).toEqual([
      [
        [[], [1, 2]],
        [[1], 1],
        [[2], 2],
      ],
    ]);
    expect(await evalRego(policy, "t/same")).toEqual([true]);
  });
});
