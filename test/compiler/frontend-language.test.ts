/**
 * Rego language coverage added for OPA compatibility (issue 13), through the real pipeline:
 * Rego -> IR -> wasm -> @open-policy-agent/opa-wasm, compared with what OPA answers.
 */
import { describe, expect, it } from "vitest";
import { compile } from "../../src/compiler/index.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";

async function evalRego(text: string, entrypoint: string, input?: unknown): Promise<unknown[]> {
  const { wasm } = compile([{ path: "t.rego", text }], { entrypoints: [entrypoint] });
  const policy = await loadCompiledPolicy(wasm);
  return (policy.evaluate(input, entrypoint) as { result: unknown }[]).map((r) => r.result);
}

describe("calls with an output argument", () => {
  const POLICY = `package t
void(x) if x == "foo"
double(x) := 2 * x
# \`not f(x, out)\` means \`not out = f(x)\`, as OPA rewrites it
void_good if not void("bar", true)
void_bad if void("bar", true)
not_max if not max([1, 2, 3], input.n)
out := y if double(input.n, y)
`;

  it("a negated call with an extra argument compares the result with it", async () => {
    expect(await evalRego(POLICY, "t/void_good")).toEqual([true]);
    expect(await evalRego(POLICY, "t/void_bad")).toEqual([]);
    expect(await evalRego(POLICY, "t/not_max", { n: 2 })).toEqual([true]);
    expect(await evalRego(POLICY, "t/not_max", { n: 3 })).toEqual([]);
  });

  it("a call with an extra argument binds it to the result", async () => {
    expect(await evalRego(POLICY, "t/out", { n: 4 })).toEqual([8]);
  });

  it("an unbound output under not is unsafe, as in OPA", () => {
    expect(() =>
      compile([{ path: "t.rego", text: "package t\np if not max([1], y)\n" }], { entrypoints: ["t/p"] }),
    ).toThrow(/var y is unsafe/);
  });
});

describe("functions with multi-part names", () => {
  const POLICY = `package t
default p.q.f(_) := 100
p.q.f(x) := x if x == 2
if.g(x) := x + 1
uses := [p.q.f(2), p.q.f(3), if.g(1), data.t.p.q.f(2)]
`;

  it("are called by their full name, with defaults and keyword parts", async () => {
    expect(await evalRego(POLICY, "t/uses")).toEqual([[2, 100, 2, 2]]);
  });

  it("are left out of the package document, as in OPA", async () => {
    expect(await evalRego(POLICY, "t")).toEqual([{ if: {}, p: { q: {} }, uses: [2, 100, 2, 2] }]);
  });
});

describe("membership with a key (`k, v in xs`) inside terms", () => {
  it("parses in parentheses, in collections and call arguments, and chains further `in`", async () => {
    const POLICY = `package t
nested if 1, 2 in [2] in [false, true]
paren if (0, 2 in [2]) in [true]
in_set := {(1, 1 in [2])}
f(x) := x
in_args := f((0, "a" in ["a"]))
non_collection := (1, "foo" in 1)
`;
    expect(await evalRego(POLICY, "t/nested")).toEqual([true]);
    expect(await evalRego(POLICY, "t/paren")).toEqual([true]);
    expect(await evalRego(POLICY, "t/in_set")).toEqual([[false]]);
    expect(await evalRego(POLICY, "t/in_args")).toEqual([true]);
    expect(await evalRego(POLICY, "t/non_collection")).toEqual([false]);
  });
});

describe("keywords as reference names", () => {
  it("a keyword directly followed by `.` starts a reference, also at the start of a line after a rule", async () => {
    const POLICY = `package t
p if {
  in.foo == {"a", "c"}
  with.bar == 1
  if.f(2) == 2
}
in.foo contains "a"
in.foo contains "c" if true
with.bar := 1
default if.f(_) := 0
if.f(x) := x if x > 1
`;
    expect(await evalRego(POLICY, "t/p")).toEqual([true]);
    expect(await evalRego(POLICY, "t/in/foo")).toEqual([["a", "c"]]);
  });
});

describe("unification of two composite terms with variables on both sides", () => {
  const POLICY = `package t
objects := [x, y] if {
  a := input.a
  {"bar": [x], "foo": a} = {"bar": [input.b], "foo": y}
}
arrays := [x, y] if [x, 2] = [1, y]
shape_mismatch if {
  {"a": [x]} = {"b": [1]}
}
size_mismatch if {
  {"a": [x]} = {"a": [1], "b": 2}
}
`;

  it("pairs object values by key and binds each side", async () => {
    expect(await evalRego(POLICY, "t/objects", { a: 1, b: 2 })).toEqual([[2, 1]]);
    expect(await evalRego(POLICY, "t/arrays")).toEqual([[1, 2]]);
  });

  it("is false when the keys differ", async () => {
    expect(await evalRego(POLICY, "t/shape_mismatch")).toEqual([]);
    expect(await evalRego(POLICY, "t/size_mismatch")).toEqual([]);
  });
});

describe("references on collection terms, comprehension bodies, shadowing in comprehensions", () => {
  const POLICY = `package t
first := [1 | true][0]
pick := ["a", "b"][1]
member := {"k": 2}["k"]
pos(x) := o if {x: i | x := ["a", "b"][i]}[x] = o
inner := {x | some x in [1, 2]}
shadow(x) := [x | some x in [7]]
union := s if {
  s := {1} | {2}
}
`;

  it("evaluates as OPA", async () => {
    expect(await evalRego(POLICY, "t/first")).toEqual([1]);
    expect(await evalRego(POLICY, "t/pick")).toEqual(["b"]);
    expect(await evalRego(POLICY, "t/member")).toEqual([2]);
    expect(await evalRego(POLICY, "t/union")).toEqual([[1, 2]]);
    expect(await evalRego(POLICY, "t/inner")).toEqual([[1, 2]]);
  });

  it("a body of braces holding one comprehension is that expression (`if {x: i | ...}`)", async () => {
    const text = `package t
f(x) := true if {x: i | x := ["a", "b"][i]}
p := f(1)
`;
    expect(await evalRego(text, "t/p")).toEqual([true]);
  });

  it(":= inside a comprehension declares its own variable, even where the body has one", async () => {
    const text = `package t
p := [x, ys] if {
  x := 1
  ys := [x | x := 2]
}
`;
    expect(await evalRego(text, "t/p")).toEqual([[1, [2]]]);
  });
});
