/**
 * `with` mocks of functions, builtins and rules' documents (OPA's "with keyword" on functions),
 * through the real pipeline: Rego -> IR -> wasm -> @open-policy-agent/opa-wasm. Expected values
 * follow OPA's topdown semantics (a mock holds transitively, a mock function runs with no function
 * mocks in force, the inner of nested mocks wins).
 */
import { describe, expect, it } from "vitest";
import { compile, RegoCompileError } from "../../src/compiler/index.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";

async function evalRego(text: string | string[], entrypoint: string, input?: unknown): Promise<unknown[]> {
  const texts = typeof text === "string" ? [text] : text;
  const sources = texts.map((t, i) => ({ path: `t${i}.rego`, text: t }));
  const { wasm } = compile(sources, { entrypoints: [entrypoint] });
  const policy = await loadCompiledPolicy(wasm);
  return (policy.evaluate(input, entrypoint) as { result: unknown }[]).map((r) => r.result);
}

function compileError(text: string): string {
  try {
    compile([{ path: "t.rego", text }], { entrypoints: ["t/p"] });
  } catch (e) {
    if (e instanceof RegoCompileError) return e.message;
    throw e;
  }
  throw new Error("expected a compile error");
}

describe("with on a builtin", () => {
  it("a value answers every call, its arguments still evaluated", async () => {
    const POLICY = `package t
p := [a, b] if {
  a := count([1, 2, 3]) with count as 7
  b := time.now_ns() with time.now_ns as "then"
}
undefined_arg if count(input.missing) == 7 with count as 7
`;
    expect(await evalRego(POLICY, "t/p")).toEqual([[7, "then"]]);
    expect(await evalRego(POLICY, "t/undefined_arg", { x: 1 })).toEqual([]);
  });

  it("holds through rules and functions the expression evaluates, and only for it", async () => {
    const POLICY = `package t
size(x) := count(x)
n := size(input.xs)
one(_) := 1
p := [n, m, n, k] if {
  m := n with count as one
  k := n
}
`;
    // The twin of n computed 1; the real n (memoized) stays 3 before and after.
    expect(await evalRego(POLICY, "t/p", { xs: [1, 2, 3] })).toEqual([[3, 1, 3, 3]]);
  });

  it("is replaced by another builtin of the same arity", async () => {
    const POLICY = `package t
p := [a, b] if {
  a := upper("Ab") with upper as lower
  b := startswith("abc", "c") with startswith as endswith
}
`;
    expect(await evalRego(POLICY, "t/p")).toEqual([["ab", true]]);
  });

  it("a mock function runs without function mocks but with mocked documents", async () => {
    const POLICY = `package t
limit := 10
capped(x) := min([count(x), limit])
p := [a, b] if {
  a := count([1, 2, 3]) with count as capped with data.t.limit as 2
  b := count([1, 2, 3]) with count as capped
}
`;
    expect(await evalRego(POLICY, "t/p")).toEqual([[2, 3]]);
  });

  it("nested: the inner mock of a target wins, the outer still holds for the others", async () => {
    const POLICY = `package t
two(_) := 2
three(_) := 3
q := [count([]), r, upper("a")]
r := v if v := count([]) with count as three
p := v if v := q with count as two with upper as "UP"
`;
    expect(await evalRego(POLICY, "t/p")).toEqual([[2, 3, "UP"]]);
  });
});

describe("with on a user function", () => {
  it("by a function, a builtin, a rule's value and a local computed at run time", async () => {
    const POLICY = `package t
f(x) := x
g(x) := x * 10
k := 5
p := [a, b, c] if {
  a := f(2) with f as g
  b := f([1, 2]) with f as count
  c := f(0) with f as k
}
q contains v if {
  some x in [1, 2]
  v := wrapper with f as x
}
wrapper := [f(0), inner]
inner := f(9)
`;
    expect(await evalRego(POLICY, "t/p")).toEqual([[20, 2, 5]]);
    expect(await evalRego(POLICY, "t/q")).toEqual([
      [
        [1, 1],
        [2, 2],
      ],
    ]);
  });

  it("run-time values of several nested withs reach the rules below both", async () => {
    const POLICY = `package t
f(_) := 0
g(_) := 0
outer := v if {
  x := input.a
  v := middle with f as x
}
middle := v if {
  y := input.b
  v := [f(1), inner] with g as y
}
inner := [f(1), g(1), count([1])]
`;
    expect(await evalRego(POLICY, "t/outer", { a: "A", b: "B" })).toEqual([["A", ["A", "B", 1]]]);
  });

  it("a replacement that calls the function it replaces reaches the real one", async () => {
    const POLICY = `package t
f(x) := x + 1
g(x) := f(x) * 100
p := v if v := f(1) with f as g
`;
    expect(await evalRego(POLICY, "t/p")).toEqual([200]);
  });
});

describe("edge forms", () => {
  it("under not, every and comprehensions; the later of two mocks of one target wins", async () => {
    const POLICY = `package t
f(x) := x
none if not f(1) with f as false
all_big if every x in [1, 2] { f(x) > 5 } with f as 9
doubled := v if v := [y | some x in [1, 2]; y := f(x)] with f as 0
twice := v if v := f(1) with f as 1 with f as 2
self := v if v := f(3) with f as f
`;
    expect(await evalRego(POLICY, "t/none")).toEqual([true]);
    expect(await evalRego(POLICY, "t/all_big")).toEqual([true]);
    expect(await evalRego(POLICY, "t/doubled")).toEqual([[0, 0]]);
    expect(await evalRego(POLICY, "t/twice")).toEqual([2]);
    expect(await evalRego(POLICY, "t/self")).toEqual([3]);
  });
});

describe("targets through imports", () => {
  it("an alias of input, of a data function and of a package", async () => {
    const LIB = "package lib\nf(x) := x\n";
    const POLICY = `package t
import input.user as u
import data.lib
import data.lib.f as g
p := [a, b, c] if {
  a := u.name with u as {"name": "m"}
  b := lib.f(1) with lib.f as 2
  c := g(1) with g as 3
}
`;
    expect(await evalRego([POLICY, LIB], "t/p", { user: { name: "real" } })).toEqual([["m", 2, 3]]);
  });
});

describe("with on a rule's document", () => {
  it("replaces the rule, the package document holding it, and iteration over it", async () => {
    const LIB = `package lib
a := 1
s contains 1
b := a + 1
`;
    const POLICY = `package t
p := [doc, data.lib.b, xs] if {
  doc := data.lib with data.lib.a as 10 with data.lib.s as ["x"]
  xs := [x | some x in data.lib.s] with data.lib.s as ["y", "z"]
}
`;
    expect(await evalRego([POLICY, LIB], "t/p")).toEqual([[{ a: 10, b: 11, s: ["x"] }, 2, ["y", "z"]]]);
  });
});

describe("twins", () => {
  it("are never memoized and the real rule keeps its cache", () => {
    const POLICY = `package t
n := count(input)
one(_) := 1
p := [n, m] if m := n with count as one
`;
    const { ir } = compile([{ path: "t.rego", text: POLICY }], { entrypoints: ["t/p"] });
    const byName = new Map(ir.funcs.map((f) => [f.name, f.memoize]));
    expect([...byName].filter(([n]) => n.includes("data.t.n")).sort()).toEqual([
      ["g0.data.t.n", true],
      ["g0.data.t.n~with1", false],
    ]);
  });
});

describe("invalid mocks are compile errors", () => {
  const cases: [string, string, string][] = [
    [
      "unknown target",
      "package t\np if {\n  true with nothing as 1\n}\n",
      "t.rego:3:13: with keyword target must reference existing input, data, or a function",
    ],
    [
      "local variable target",
      "package t\np if {\n  x := 1\n  true with x as 2\n}\n",
      "t.rego:4:13: with keyword target must reference existing input, data, or a function",
    ],
    [
      "literal target",
      "package t\np if {\n  true with 1 as 2\n}\n",
      "t.rego:3:13: with keyword target must reference existing input, data, or a function",
    ],
    [
      "internal builtin",
      "package t\np if {\n  1 in [1] with internal.member_2 as true\n}\n",
      't.rego:3:17: with keyword replacing built-in function: replacement of internal function "internal.member_2" invalid',
    ],
    [
      "relation",
      "package t\np if {\n  true with walk as 1\n}\n",
      "t.rego:3:13: with keyword replacing built-in function: target must not be a relation",
    ],
    [
      "arity mismatch",
      "package t\nf(a, b) := 1\np if {\n  count([]) == 1 with count as f\n}\n",
      "t.rego:4:32: count: arity mismatch: with keyword replacing a function of 1 argument by f of 2",
    ],
    [
      "partial replacement of a rule's document",
      'package t\nq := {"a": 1}\np if {\n  q.a == 2 with data.t.q.a as 2\n}\n',
      "t.rego:4:17: with keyword cannot partially replace virtual document(s)",
    ],
    ["all of data", "package t\np if {\n  true with data as {}\n}\n", "t.rego:3:8: unsupported: with on all of data"],
    [
      "missing value",
      "package t\np if {\n  true with count as\n}\n",
      't.rego:4:1: unexpected token "}": expected a term',
    ],
    [
      "mock-only builtin outside any mock",
      "package t\nm(_) := 1\nq := http.send({})\np := [v, q] if v := q with http.send as m\n",
      "t.rego:3:6: unsupported builtin http.send (only replaced by a with mock)",
    ],
    [
      "mock-only builtin as the replacement",
      "package t\np := v if v := time.now_ns() with time.now_ns as opa.runtime\n",
      "t.rego:2:16: unsupported builtin opa.runtime (only replaced by a with mock)",
    ],
  ];
  for (const [note, text, message] of cases) {
    it(note, () => expect(compileError(text)).toBe(message));
  }
});
