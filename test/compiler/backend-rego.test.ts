import { describe, expect, it } from "vitest";
import { compile } from "../../src/compiler/index.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";

// End to end through the public API: Rego -> front end -> codegen -> SDK with Arbiter's host
// builtins, checking what only the back end decides (host routing, sprintf's Go semantics,
// canonical ordering of sets and objects, abort messages).
const policy = `package t

import rego.v1

tags contains lower(t) if some t in input.tags

msg := sprintf("%s asked for %d tools: %v", [input.user, count(input.tools), input.tools])

risky if {
	some tool in input.tools
	regex.match("^(shell|exec)[-_]", tool)
}

by_len := {count(t): t | some t in input.tools}

allowed_host if glob.match("*.example.com", [], input.host)

digest := crypto.sha256(input.user)

total := sum([c | some c in input.costs])
`;

describe("Rego end to end through loadCompiledPolicy", () => {
  it("routes host builtins (Go-style sprintf included) and dumps sets and objects in OPA order", async () => {
    const { wasm, hostBuiltins } = compile([{ path: "t.rego", text: policy }], { entrypoints: ["t"] });
    expect(hostBuiltins).toEqual(["crypto.sha256", "glob.match", "regex.match", "sprintf"]);
    const p = await loadCompiledPolicy(wasm);
    const input = {
      user: "ana",
      tools: ["shell_run", "search", "fs"],
      tags: ["B", "a", "b"],
      host: "api.example.com",
      costs: [0.1, 0.2],
    };
    const [{ result }] = p.evaluate(input, "t") as [{ result: Record<string, unknown> }];
    expect(result).toEqual({
      allowed_host: true,
      by_len: { "2": "fs", "6": "search", "9": "shell_run" },
      digest: "24d4b96f58da6d4a8512313bbd02a28ebf0ca95dec6e4c86ef78ce7f01e788ac",
      msg: 'ana asked for 3 tools: ["shell_run", "search", "fs"]',
      risky: true,
      tags: ["a", "b"],
      total: 0.3,
    });
  });

  it("surfaces a complete-rule conflict as an Error with OPA's message", async () => {
    const { wasm } = compile(
      [{ path: "c.rego", text: "package c\n\nimport rego.v1\n\nx := 1 if input.a\n\nx := 2 if input.b\n" }],
      { entrypoints: ["c/x"] },
    );
    const p = await loadCompiledPolicy(wasm);
    expect(p.evaluate({ a: true }, "c/x")).toEqual([{ result: 1 }]);
    expect(() => p.evaluate({ a: true, b: true }, "c/x")).toThrow(/complete rules must not produce multiple outputs/);
    expect(p.evaluate({ b: true }, "c/x")).toEqual([{ result: 2 }]);
  });
});
