/**
 * Planner semantics through the real pipeline: Rego -> IR -> wasm -> @open-policy-agent/opa-wasm.
 * Focus on what the front end decides: literal reordering, closures capturing variables bound
 * later, else chains, defaults, functions with several definitions, conflicts, package
 * documents merged with base data, `not`/`every` over iteration, unification patterns.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { compile, planPolicy } from "../../src/compiler/index.ts";
import { loadCompiledPolicy, type LoadedPolicy } from "../../src/engine/load-policy.ts";

const MAIN = `package t
import data.lib.helpers as h
import input.user

# literals are reordered so variables are bound before use, as OPA does
reorder if {
  x > 1
  x = input.n
}
reorder_value := y if {
  y == 3
  y = input.n
}
# a comprehension capturing a variable bound after it
capture := ys if {
  ys := [v | some v in input.xs; v > lim]
  lim = 1
}
chain := "a" if input.n > 10 else := "b" if input.n > 2 else := "c"
dflt := "x" if input.n > 100 else := "y" if input.n > 50
default dflt := "z"
default missing := "fallback"
missing if input.nothing

sign(x) := "neg" if x < 0
sign(x) := "pos" if x > 0
sign(0) := "zero"
signs := [sign(-1), sign(0), sign(5)]
pat(x, x) := "same"
pat(x, y) := "diff" if x != y
pats := [pat(1, 1), pat(1, 2)]
pair([a, b]) := a + b
pairs := pair([2, 3])

no_seven if not input.xs[_] == 7
no_three if not input.xs[_] == 3
positive if { every x in input.xs { every y in [1] { x >= y } } }
all_big if { every x in input.xs { x > 1 } }
every_kv if { every k, v in input.o { startswith(k, "a"); v == 1 } }

destructure := [a, b] if { {"a": a, "b": b} = input.ob }
cross := [a, b] if { [a, 2] = [1, b] }
ordered_pairs := [x, y] if { [x, y] = [1, x] }
setops := {1, 2, 3} - {2} | {9}
by_value := {k: v | some k, v in input.ob; v > 1}
declared if { some i; input.xs[i] == 3; i == 2 }
counted := n if { count(input.xs, n) }
names contains n if { n := input.items[_].name }
roles contains r if { some r in data.roles[input.role] }
members := [s["a"], count(s)]
s contains x if { some x in ["a", "b"] }
keys[k] := v if { some k, v in input.ob }
imported := h.name
user_name := user.name
lib_doc := data.lib
escapes := ["a\\"b\\n\\u00e9", \`raw\\n\`]
arith := [(1 + 2) * 3, -input.n, 7 % 4, 1 / 4, multiline]
multiline := x if {
  x := (10
    - 4) +
    1
}

# conflicts are evaluation errors, never a silent pick
conflict := input.a if input.a
conflict := input.b if input.b
fconflict(x) := 1 if x > 0
fconflict(x) := 2 if x > 1
fconflict_value := fconflict(5)
kconflict[k] := v if { some k, v in input.ob }
kconflict[k] := 0 if { some k, _ in input.ob }
`;

const LIB = `package lib.helpers
name := "helper"
`;

const INPUT = {
  n: 3,
  xs: [1, 2, 3],
  o: { a: 1, ab: 1 },
  ob: { a: 1, b: 2 },
  role: "admin",
  items: [{ name: "i1" }, { name: "i2" }],
  user: { name: "bob" },
  a: 1,
  b: 2,
};
const DATA = { roles: { admin: ["r", "w"] }, lib: { extra: 1, helpers: { base: 2 } } };

const RULES = [
  "reorder",
  "reorder_value",
  "capture",
  "chain",
  "dflt",
  "missing",
  "signs",
  "pats",
  "pairs",
  "no_seven",
  "no_three",
  "positive",
  "all_big",
  "every_kv",
  "destructure",
  "cross",
  "ordered_pairs",
  "setops",
  "by_value",
  "declared",
  "counted",
  "names",
  "roles",
  "members",
  "keys",
  "imported",
  "user_name",
  "lib_doc",
  "escapes",
  "arith",
  "conflict",
  "fconflict_value",
  "kconflict",
];

let policy: LoadedPolicy;
const evalRule = (rule: string, input: unknown = INPUT) => policy.evaluate(input as never, `t/${rule}`);

beforeAll(async () => {
  const r = compile(
    [
      { path: "main.rego", text: MAIN },
      { path: "lib.rego", text: LIB },
    ],
    { entrypoints: RULES.map((r) => `t/${r}`) },
  );
  expect(r.entrypoints).toEqual(RULES.map((r) => `t/${r}`));
  policy = await loadCompiledPolicy(r.wasm, DATA);
});

describe("planner semantics through opa-wasm", () => {
  const want: [string, unknown][] = [
    ["reorder", true],
    ["reorder_value", 3],
    ["capture", [2, 3]],
    ["chain", "b"],
    ["dflt", "z"],
    ["missing", "fallback"],
    ["signs", ["neg", "zero", "pos"]],
    ["pats", ["same", "diff"]],
    ["pairs", 5],
    ["no_seven", true],
    ["positive", true],
    ["every_kv", true],
    ["destructure", [1, 2]],
    ["cross", [1, 2]],
    ["ordered_pairs", [1, 1]],
    ["setops", [1, 3, 9]],
    ["by_value", { b: 2 }],
    ["declared", true],
    ["counted", 3],
    ["names", ["i1", "i2"]],
    ["roles", ["r", "w"]],
    ["members", ["a", 2]],
    ["keys", { a: 1, b: 2 }],
    ["imported", "helper"],
    ["user_name", "bob"],
    ["lib_doc", { extra: 1, helpers: { base: 2, name: "helper" } }],
    ["escapes", ['a"b\né', "raw\\n"]],
    ["arith", [9, -3, 3, 0.25, 7]],
  ];
  for (const [rule, value] of want) {
    it(rule, () => {
      expect(evalRule(rule)).toEqual([{ result: value }]);
    });
  }

  it("undefined results are an empty result set", () => {
    expect(evalRule("no_three")).toEqual([]);
    expect(evalRule("all_big")).toEqual([]);
  });

  it("else chain falls through to its last value and default applies only when all are undefined", () => {
    expect(evalRule("chain", { n: 1 })).toEqual([{ result: "c" }]);
    expect(evalRule("chain", { n: 11 })).toEqual([{ result: "a" }]);
    expect(evalRule("dflt", { n: 60 })).toEqual([{ result: "y" }]);
    expect(evalRule("dflt", { n: 101 })).toEqual([{ result: "x" }]);
  });

  it("every over a non-collection or undefined domain is undefined", () => {
    expect(evalRule("all_big", { xs: 5 })).toEqual([]);
    expect(evalRule("all_big", {})).toEqual([]);
    expect(evalRule("all_big", { xs: [] })).toEqual([{ result: true }]);
  });

  it("conflicting values are evaluation errors with OPA's messages", () => {
    expect(() => evalRule("conflict")).toThrow("complete rules must not produce multiple outputs");
    expect(evalRule("conflict", { a: 1, b: 1 })).toEqual([{ result: 1 }]);
    expect(() => evalRule("fconflict_value")).toThrow("functions must not produce multiple outputs for same inputs");
    expect(() => evalRule("kconflict")).toThrow("object keys must be unique");
    expect(evalRule("kconflict", { ob: { a: 0 } })).toEqual([{ result: { a: 0 } }]);
  });
});

describe("package documents", () => {
  it("an entrypoint naming a package evaluates to its rules merged with base data; functions are excluded", async () => {
    const r = compile(
      [
        {
          path: "a.rego",
          text: 'package arbiter.decide\nallow if input.ok\nreasons contains "r" if not input.ok\nf(x) := x\nlimit := f(3)\n',
        },
        { path: "b.rego", text: "package arbiter.decide.sub\nq := 1\n" },
      ],
      // Only the defaults whose package is defined are compiled: arbiter/route is not.
      { defaultEntrypoints: ["arbiter/decide", "arbiter/route"] },
    );
    expect(r.entrypoints).toEqual(["arbiter/decide"]);
    const p = await loadCompiledPolicy(r.wasm, { arbiter: { decide: { config: { x: 1 }, sub: { base: true } } } });
    expect(p.evaluate({ ok: true } as never, "arbiter/decide")).toEqual([
      { result: { allow: true, config: { x: 1 }, limit: 3, reasons: [], sub: { base: true, q: 1 } } },
    ]);
    expect(p.evaluate({ ok: false } as never, "arbiter/decide")).toEqual([
      { result: { config: { x: 1 }, limit: 3, reasons: ["r"], sub: { base: true, q: 1 } } },
    ]);
  });

  it("iteration over a package document binds rule names", async () => {
    const r = compile(
      [
        { path: "a.rego", text: "package t\np := 1\nq := 2\nnames := {k | data.t.vals[k]}\n" },
        { path: "b.rego", text: "package t.vals\nx := 1\ny := false\n" },
      ],
      { entrypoints: ["t/names"] },
    );
    const p = await loadCompiledPolicy(r.wasm, {});
    // data.t.vals[k] is false for y: the literal fails there, as in OPA.
    expect(p.evaluate(undefined as never, "t/names")).toEqual([{ result: ["x"] }]);
  });
});

describe("IR shape", () => {
  it("zero-argument rules are memoized functions of (input, data); functions take their arguments after", () => {
    const ir = planPolicy([{ path: "a.rego", text: "package t\np := f(1)\nf(x) := x + 1\n" }], {
      entrypoints: ["t/p"],
    });
    const p = ir.funcs.find((f) => f.name.endsWith("data.t.p"))!;
    const f = ir.funcs.find((f) => f.name.endsWith("data.t.f"))!;
    expect([p.params, p.memoize, f.params, f.memoize]).toEqual([2, true, 3, false]);
    expect(ir.plans).toEqual([{ name: "t/p", func: p.name }]);
    expect(ir.hostBuiltins).toEqual([]);
  });

  it("lists the host builtins the policy calls", () => {
    const ir = planPolicy([{ path: "a.rego", text: 'package t\np if regex.match("a", input.s)\nq := count([1])\n' }], {
      entrypoints: ["t/p"],
    });
    expect(ir.hostBuiltins).toEqual(["regex.match"]);
  });
});

describe("argument order", () => {
  it("plans a reference that binds a variable before the argument that uses it", async () => {
    const r = compile(
      [
        {
          path: "a.rego",
          text: "package t\ndouble(x) := x * 2\nhits contains i if { double(i) == input.xs[i] }\neqs contains i if { input.ys[i] == input.xs[i] }\n",
        },
      ],
      { entrypoints: ["t/hits", "t/eqs"] },
    );
    const p = await loadCompiledPolicy(r.wasm, {});
    expect(p.evaluate({ xs: [0, 5, 4, 6], ys: [0, 1, 4] } as never, "t/hits")).toEqual([{ result: [0, 2, 3] }]);
    expect(p.evaluate({ xs: [0, 5, 4, 6], ys: [0, 1, 4] } as never, "t/eqs")).toEqual([{ result: [0, 2] }]);
  });
});
