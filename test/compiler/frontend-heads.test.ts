/**
 * Rule heads, compiled and evaluated for real: general references (OPA v1 `p[x].y := z`,
 * `p[x][y] contains z`, `a[x] if ...`), rules below a partial object, entrypoints below a rule,
 * and default values holding comprehensions. Expected values and errors are OPA's
 * (refheads/test-generic-refs.yaml, defaultkeyword and friends).
 */
import { describe, expect, it } from "vitest";
import { compile, RegoCompileError } from "../../src/compiler/index.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";

async function evalRego(text: string, entrypoint: string, input?: unknown): Promise<unknown[]> {
  const { wasm } = compile([{ path: "t.rego", text }], { entrypoints: [entrypoint] });
  const policy = await loadCompiledPolicy(wasm);
  return (policy.evaluate(input, entrypoint) as { result: unknown }[]).map((r) => r.result);
}

function compileError(text: string, entrypoint: string): string {
  try {
    compile([{ path: "t.rego", text }], { entrypoints: [entrypoint] });
  } catch (e) {
    if (e instanceof RegoCompileError) return e.message;
    throw e;
  }
  throw new Error("compiled");
}

describe("rule heads with a variable before the last part", () => {
  it("build a tree from every binding", async () => {
    const src = 'package t\np[q].r := i if q := ["a", "b", "c"][i]\n';
    expect(await evalRego(src, "t/p")).toEqual([{ a: { r: 0 }, b: { r: 1 }, c: { r: 2 } }]);
  });

  it("without a value, the leaf is true; several variables nest", async () => {
    const src = 'package t\np[q][r] if q := ["a", "b", "c"][r]\n';
    expect(await evalRego(src, "t/p")).toEqual([{ a: { "0": true }, b: { "1": true }, c: { "2": true } }]);
    expect(await evalRego(src, "t/p/b")).toEqual([{ "1": true }]);
    expect(await evalRego(src, "t/p/z")).toEqual([]);
  });

  it("merge with constant rules at other depths and with the package document", async () => {
    const src = `package t
p[q].r.s := i if q := ["a", "b", "c"][i]
p.d.r := 3
p.e := 4
p.a.r.s := 0
`;
    const p = { a: { r: { s: 0 } }, b: { r: { s: 1 } }, c: { r: { s: 2 } }, d: { r: 3 }, e: 4 };
    expect(await evalRego(src, "t/p")).toEqual([p]);
    expect(await evalRego(src, "t")).toEqual([{ p }]);
    expect(await evalRego(src, "t/p/d/r")).toEqual([3]);
  });

  it("collect set leaves from general and constant rules", async () => {
    const src = `package t
p[q].r contains s if {
  x := ["a", "b", "c"]
  q := x[_]
  s := x[_]
  q != s
}
p.b.r contains "foo"
`;
    expect(await evalRego(src, "t/p")).toEqual([
      { a: { r: ["b", "c"] }, b: { r: ["a", "c", "foo"] }, c: { r: ["a", "b"] } },
    ]);
    expect(await evalRego(src, "t/p/b/r")).toEqual([["a", "c", "foo"]]);
  });

  it("take keys from input, other rules and composite values", async () => {
    const src = `package t
a := [x | x := input.x[_]]
b := input.y
p[a[b]].r[s] := i if s := a[i]
o[input.k].v := 1
`;
    expect(await evalRego(src, "t/p", { x: ["foo", "bar"], y: 1 })).toEqual([{ bar: { r: { foo: 0, bar: 1 } } }]);
    // A non-string key is kept as OPA keeps it; JSON output prints it as a string.
    expect(await evalRego(src, "t/o", { k: 7 })).toEqual([{ "7": { v: 1 } }]);
    // Without input the key is undefined: no entry, still an (empty) object.
    expect(await evalRego(src, "t/o")).toEqual([{}]);
  });

  it("a partial object may have rules below it", async () => {
    const src = `package t
p.q contains r if r := ["a", "b"][_]
p[q] := r if {
  q := "foo"
  r := "bar"
}
a[x] if q2[x]
q2[7] := 8
`;
    expect(await evalRego(src, "t/p")).toEqual([{ foo: "bar", q: ["a", "b"] }]);
    expect(await evalRego(src, "t/a")).toEqual([{ "7": true }]);
  });
});

describe("conflicts are evaluation errors (eval_conflict_error)", () => {
  const conflict = async (src: string, ep: string, input?: unknown) => {
    const { wasm } = compile([{ path: "t.rego", text: src }], { entrypoints: [ep] });
    const policy = await loadCompiledPolicy(wasm);
    expect(() => policy.evaluate(input, ep)).toThrow("object keys must be unique");
  };

  it("two bindings of one rule writing different values at one path", async () => {
    await conflict('package t\np[q].r.s := i if q := ["a", "b", "c", "b"][i]\n', "t/p");
  });

  it("two rules writing different values at one path; equal values are fine", async () => {
    await conflict('package t\np[q].r.s := i if q := ["a", "b"][i]\np.a.r := 42\n', "t/p");
    await conflict('package t\np.q.r := 1\np.q[s] := 2 if s := "r"\n', "t/p/q");
    expect(await evalRego('package t\np[q].r := i if q := ["a", "b"][i]\np.a.r := 0\n', "t/p")).toEqual([
      { a: { r: 0 }, b: { r: 1 } },
    ]);
  });

  it("a rule writing inside another rule's value, or a value over a tree", async () => {
    const v = 'p[q].r := v if {\n  q := "q"\n  v := {"s": {"t": 1}}\n}\n';
    await conflict(`package t\n${v}p.q.r.s.t := 1\n`, "t/p");
    await conflict(`package t\n${v}p.q.r.s.u := 42\n`, "t/p");
    await conflict("package t\np[x].y := 1 if x := input.k\np.a := 2\n", "t/p", { k: "a" });
    await conflict('package t\np[x] contains 1 if x := "a"\np.a := 2\n', "t/p");
  });

  it("an entrypoint below the conflict still fails", async () => {
    await conflict('package t\np[q].r.s := i if q := ["a", "b", "a"][i]\n', "t/p/b");
  });
});

describe("entrypoints below a rule", () => {
  it("look the rest of the path up in the rule's value", async () => {
    const src = `package ex
foo[k] := v if some k, v in {"bar": 1, "baz": [2]}
s contains x if x := ["x", "y"][_]
c := {"a": {"b": true}}
`;
    expect(await evalRego(src, "ex/foo/bar")).toEqual([1]);
    expect(await evalRego(src, "ex/foo/nope")).toEqual([]);
    expect(await evalRego(src, "ex/s/x")).toEqual(["x"]);
    expect(await evalRego(src, "ex/c/a/b")).toEqual([true]);
    expect(await evalRego(src, "ex/c/a/b/c")).toEqual([]);
  });

  it("are still refused where no rule or package is", () => {
    expect(compileError("package ex\nc := 1\n", "ex/d/e")).toBe(
      'entrypoint "ex/d/e" does not refer to a rule or package',
    );
  });
});

describe("refused", () => {
  it("a rule and a general rule at the same path", () => {
    expect(compileError('package t\np := 1\np[x].y := 1 if x := "a"\n', "t/p")).toBe(
      "t.rego:2:1: conflicting rules data.t.p found",
    );
  });

  it("a tree that reads itself is recursive", () => {
    expect(compileError('package t\np[x].y := 1 if {\n  x := "a"\n  not p.b\n}\n', "t/p")).toBe(
      "t.rego:2:1: rule data.t.p is recursive: data.t.p -> data.t.p",
    );
  });

  it("an unsafe variable in the head", () => {
    expect(compileError("package t\np[x].y := 1 if true\n", "t/p")).toMatch(/var x is unsafe/);
  });
});

describe("default values", () => {
  const src = `package t
p := 1 if input.one
default p := [x | x := input.a[_]]
default q := {1, {"a": {k | k := input.a[_]}}}
`;

  it("may hold comprehensions, evaluated when no rule applies", async () => {
    expect(await evalRego(src, "t/p", { a: [3, 4] })).toEqual([[3, 4]]);
    expect(await evalRego(src, "t/p", { a: [3, 4], one: true })).toEqual([1]);
    expect(await evalRego(src, "t/q", { a: [3, 3] })).toEqual([[1, { a: [3] }]]);
    // A comprehension over an undefined document is empty, not undefined.
    expect(await evalRego(src, "t/p")).toEqual([[]]);
  });

  it("outside comprehensions, must be constant", () => {
    expect(compileError("package t\ndefault q := [input.x]\n", "t/q")).toBe(
      "t.rego:2:14: default rule value must be a constant",
    );
    expect(compileError("package t\ndefault q := [x | x := y]\n", "t/q")).toBe("t.rego:2:24: var y is unsafe");
  });
});

describe("references with a composite key holding unbound variables", () => {
  const src = `package t
s := {[1, 2], [1, 3], {"foo": "bar"}, {1, 2}, [2, 7], [[1, 1], 4], "x"}
second := [x | s[[1, x]]]
pairs := {[x, y] | s[[x, y]]}
nested := [x | s[[[1, x], 4]]]
objs := [v | s[{"foo": v}]]
keyed := [v | input.o[[v, "k"]]]
`;

  it("unify the pattern with every key of the collection, as OPA", async () => {
    expect(await evalRego(src, "t/second")).toEqual([[2, 3]]);
    expect(await evalRego(src, "t/pairs")).toEqual([
      [
        [1, 2],
        [1, 3],
        [2, 7],
        [[1, 1], 4],
      ],
    ]);
    expect(await evalRego(src, "t/nested")).toEqual([[1]]);
    expect(await evalRego(src, "t/objs")).toEqual([["bar"]]);
    // JSON input has string keys only: an array pattern matches none, and nothing fails.
    expect(await evalRego(src, "t/keyed", { o: { a: 1 } })).toEqual([[]]);
    expect(await evalRego(src, "t/keyed", { o: 7 })).toEqual([[]]);
  });

  it("an unbound variable as an object pattern's key stays unsafe", () => {
    expect(compileError("package t\ns := {1}\np := [v | s[{v: 1}]]\n", "t/p")).toMatch(/var v is unsafe/);
  });
});

describe("a closure before a := declaration of the same name", () => {
  it("has its own variable, as OPA", async () => {
    const src = `package t
xs := {"a", "b", "c"}
p := x if {
  y := {x | xs[x]}
  x := count(y)
}
q := [y, x] if {
  y := [x | x = [1, 3][_]]
  x = 3
}
`;
    expect(await evalRego(src, "t/p")).toEqual([3]);
    // Without a := declaration the outer x is the closure's too, bound first: only 3 matches.
    expect(await evalRego(src, "t/q")).toEqual([[[3], 3]]);
  });

  it("a direct use before the declaration is still an error", () => {
    expect(compileError("package t\np if {\n  x == 1\n  x := 1\n}\n", "t/p")).toBe(
      "t.rego:4:3: var x referenced above",
    );
  });
});

describe("a number key right below a package", () => {
  it("reads base data only, so a rule may read data[2] beside itself", async () => {
    const src = "package t\np := data[2]\nq := data.t[1]\nr := data.nested[2]\n";
    const { wasm } = compile([{ path: "t.rego", text: src }], { entrypoints: ["t/p", "t/q", "t/r"] });
    const policy = await loadCompiledPolicy(wasm);
    policy.setData({ "2": "bar", t: { "1": 1 }, nested: { "2": "baz" } });
    expect(policy.evaluate(undefined, "t/p")).toEqual([{ result: "bar" }]);
    expect(policy.evaluate(undefined, "t/q")).toEqual([{ result: 1 }]);
    expect(policy.evaluate(undefined, "t/r")).toEqual([{ result: "baz" }]);
    policy.setData({});
    expect(policy.evaluate(undefined, "t/p")).toEqual([]);
  });
});
