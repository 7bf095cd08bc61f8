/**
 * Compile errors of the front end (lexer, parser, checker, planner): exact messages and
 * positions, several errors per build, sorted by position. Runs without the code generator.
 */
import { describe, expect, it } from "vitest";
import { planPolicy, RegoCompileError } from "../../src/compiler/index.ts";

function errorOf(text: string | string[], entrypoints: string[] = ["t"]): RegoCompileError {
  const texts = Array.isArray(text) ? text : [text];
  const sources = texts.map((t, i) => ({ path: i === 0 ? "t.rego" : `t${i + 1}.rego`, text: t }));
  try {
    planPolicy(sources, { entrypoints });
  } catch (e) {
    expect(e).toBeInstanceOf(RegoCompileError);
    return e as RegoCompileError;
  }
  throw new Error("expected a compile error");
}

const cases: [note: string, source: string | string[], message: string][] = [
  // ---- syntax --------------------------------------------------------------------------------
  ["missing package", "p := 1\n", 't.rego:1:1: unexpected token "p": expected "package"'],
  ["unclosed array", "package t\np := [1, 2\n", 't.rego:3:1: unexpected end of file: expected "," or "]"'],
  ["missing operand", "package t\np if {\n  x := \n}\n", 't.rego:4:1: unexpected token "}": expected a term'],
  [
    "two expressions on one line",
    "package t\np if { 1 2 }\n",
    't.rego:2:10: unexpected token number 2: expected ";", a new line or "}"',
  ],
  ["unterminated string", 'package t\np := "abc\n', "t.rego:2:6: unterminated string"],
  ["bad escape", 'package t\np := "a\\qb"\n', 't.rego:2:8: invalid escape "\\q" in string'],
  ["stray character", "package t\np := 1 ^ 2\n", 't.rego:2:8: unexpected character "^"'],
  ["v0 rule body without if", "package t\np { true }\n", "t.rego:2:3: `if` keyword is required before rule body"],
  [
    "v0 partial set without contains",
    "package t\np[x] { x := 1 }\n",
    "t.rego:2:6: `if` keyword is required before rule body",
  ],
  [
    "rule without body or value",
    "package t\np\n",
    't.rego:3:1: unexpected end of file: expected "if", ":=" or "contains"',
  ],
  ["keyword as a term", "package t\np := if\n", 't.rego:2:6: unexpected token "if": expected a term'],
  ["default with a body", "package t\ndefault p := 1 if true\n", "t.rego:2:16: default rules must not have a body"],
  [
    "minus at the start of a body line",
    "package t\np if {\n  x := input.a\n  -1 == input.b\n}\n",
    't.rego:4:3: ambiguous "-" at the start of a line: end the previous line with the operator, or use parentheses',
  ],
  ["empty body", "package t\np if {}\n", 't.rego:2:7: unexpected token "}": expected a body expression'],
  // ---- unsupported -------------------------------------------------------------------------------
  [
    "print used as a value",
    'package t\np if {\n  x := print("x")\n}\n',
    "t.rego:3:8: print: a void function cannot be used as a value",
  ],
  ["unterminated template string", 'package t\np := $"a{1}\n', "t.rego:2:6: unterminated template string"],
  [
    "else on a rule head with a variable before its last part",
    "package t\np[x].y := 1 if x := 1\nelse := 2\n",
    "t.rego:3:1: else keyword cannot be used on rules with variables in head",
  ],
  [
    "default on a rule head with a variable",
    "package t\ndefault p[x].y := 1\n",
    "t.rego:2:1: default rules must not have variables in their head",
  ],
  [
    "unknown import root",
    "package t\nimport foo.bar\np := 1\n",
    "t.rego:2:8: unsupported: import path foo.bar (must begin with input, data, rego or future)",
  ],
  ["unknown rego import", "package t\nimport rego.v2\np := 1\n", "t.rego:2:8: unsupported: import rego.v2"],
  [
    "mock-only builtin that no with mock reaches",
    "package t\np := http.send({})\n",
    "t.rego:2:6: unsupported builtin http.send (only replaced by a with mock)",
  ],
  [
    "OPA builtin outside the subset",
    'package t\np := rego.parse_module("a", "b")\n',
    "t.rego:2:6: unsupported builtin rego.parse_module",
  ],
  [
    "an unbound var as an object key inside a ref's composite key",
    "package t\np if input.x[{a: 1}]\n",
    "t.rego:2:15: var a is unsafe",
  ],
  [
    "default on a partial set",
    "package t\ndefault s contains 1\n",
    "t.rego:2:1: unsupported: default on a partial rule",
  ],
  [
    "else on a partial set",
    "package t\ns contains 1 if false else := 2\n",
    "t.rego:2:23: else keyword cannot be used on partial rules",
  ],
  // ---- names and arity -------------------------------------------------------------------------
  ["unknown function", "package t\np if nope(1)\n", "t.rego:2:6: undefined function nope"],
  [
    "unknown function in another package",
    "package t\np if data.lib.f(1)\n",
    "t.rego:2:6: undefined function data.lib.f",
  ],
  [
    "arity mismatch",
    "package t\np := count([1], 2)\n",
    "t.rego:2:6: count: arity mismatch: expected 1 argument, got 2",
  ],
  [
    "arity mismatch of a user function",
    "package t\nf(x) := x\np := f(1, 2)\n",
    "t.rego:3:6: f: arity mismatch: expected 1 argument, got 2",
  ],
  [
    "rule called as a function",
    "package t\nq := 1\np := q(1)\n",
    "t.rego:3:6: q is not a function (data.t.q is a rule)",
  ],
  [
    "function used as a value",
    "package t\nf(x) := x\np := f\n",
    "t.rego:3:6: function data.t.f must be called with arguments",
  ],
  // ---- variables -----------------------------------------------------------------------------------
  ["unsafe variable in a comparison", "package t\np if {\n  x > 1\n}\n", "t.rego:3:3: var x is unsafe"],
  ["unsafe variable in a rule head", "package t\ns contains x if input.a\n", "t.rego:2:12: var x is unsafe"],
  ["unsafe variable under not", "package t\np if {\n  not input.a[i]\n}\n", "t.rego:3:15: var i is unsafe"],
  [
    "unsafe variables on both sides of =",
    "package t\np if {\n  x = y\n}\n",
    "t.rego:3:3: var x is unsafe\nt.rego:3:7: var y is unsafe",
  ],
  ["redeclared variable", "package t\np if {\n  x := 1\n  x := 2\n}\n", "t.rego:4:3: var x assigned above"],
  ["assignment after use", "package t\np if {\n  x == 1\n  x := 1\n}\n", "t.rego:4:3: var x referenced above"],
  [
    "assignment to a function argument",
    "package t\nf(x) := y if {\n  x := 1\n  y := 2\n}\n",
    "t.rego:3:3: var x assigned above",
  ],
  ["assignment to input", "package t\np if {\n  input := 1\n}\n", "t.rego:3:3: cannot assign to input"],
  ["some declared twice", "package t\np if {\n  some x\n  some x\n  x = 1\n}\n", "t.rego:4:8: var x declared above"],
  [
    "some-in over a name assigned above",
    "package t\np if {\n  x := 1\n  some x in input.xs\n}\n",
    "t.rego:4:8: var x declared above",
  ],
  [
    "some-in over a name used above",
    "package t\np if {\n  x > 1\n  some x in input.xs\n}\n",
    "t.rego:4:8: var x referenced above",
  ],
  [
    "duplicate key in an object literal",
    'package t\np := {"a": 1, "b": 2, "a": 3}\n',
    't.rego:2:23: duplicate key "a" in object',
  ],
  [
    "default value must be constant",
    "package t\ndefault p := input.x\n",
    "t.rego:2:14: default rule value must be a constant",
  ],
  // ---- rules ----------------------------------------------------------------------------------------
  ["complete and partial set", "package t\np := 1\np contains 2\n", "t.rego:2:1: conflicting rules data.t.p found"],
  ["rule and function", "package t\nf := 1\nf(x) := x\n", "t.rego:2:1: conflicting rules data.t.f found"],
  [
    "functions of different arity",
    "package t\nf(x) := x\nf(x, y) := x\n",
    "t.rego:2:1: conflicting rules data.t.f found",
  ],
  [
    "rule and package below it",
    ["package t\nsub := 1\n", "package t.sub\nq := 1\n"],
    "t.rego:2:1: conflicting rules data.t.sub found (a package is defined below it)",
  ],
  ["two defaults", "package t\ndefault p := 1\ndefault p := 2\n", "t.rego:3:1: multiple default rules data.t.p found"],
  [
    "recursion between two rules",
    "package t\np if q\nq if p\n",
    "t.rego:2:1: rule data.t.p is recursive: data.t.p -> data.t.q -> data.t.p",
  ],
  [
    "self recursion of a function",
    "package t\nf(x) := f(x)\n",
    "t.rego:2:1: rule data.t.f is recursive: data.t.f -> data.t.f",
  ],
  [
    "recursion through the package document",
    "package t\np := data.t\n",
    "t.rego:2:1: rule data.t.p is recursive: data.t.p -> data.t -> data.t.p",
  ],
];

describe("front-end compile errors", () => {
  for (const [note, source, message] of cases) {
    it(note, () => {
      expect(errorOf(source).message).toBe(message);
    });
  }

  it("reports every error of a file, sorted by position", () => {
    const e = errorOf("package t\nq if bar(1)\np if foo(1)\nr if {\n  y > 1\n}\n");
    expect(e.message).toBe(
      ["t.rego:2:6: undefined function bar", "t.rego:3:6: undefined function foo", "t.rego:5:3: var y is unsafe"].join(
        "\n",
      ),
    );
    expect(e.diagnostics).toEqual([
      { file: "t.rego", line: 2, col: 6, message: "undefined function bar" },
      { file: "t.rego", line: 3, col: 6, message: "undefined function foo" },
      { file: "t.rego", line: 5, col: 3, message: "var y is unsafe" },
    ]);
  });

  it("reports errors of several files, each in its own file, sorted by file", () => {
    const e = errorOf(["package t\ndefault p[x].y := 1\n", "package u\nq := [\n"]);
    expect(e.message).toBe(
      [
        "t.rego:2:1: default rules must not have variables in their head",
        "t2.rego:3:1: unexpected end of file: expected a term",
      ].join("\n"),
    );
  });

  it("refuses absurd nesting with a compile error", () => {
    expect(errorOf(`package t\np := ${"[".repeat(150)}1${"]".repeat(150)}\n`).message).toBe(
      "t.rego:2:106: expression nested more than 100 levels deep",
    );
  });

  it("reports every unsafe variable of a body", () => {
    expect(errorOf("package t\np if {\n  a > b\n}\n").message).toBe(
      "t.rego:3:3: var a is unsafe\nt.rego:3:7: var b is unsafe",
    );
  });

  it("checks rules no entrypoint reaches", () => {
    expect(errorOf("package t\np := 1\nq if nope()\n", ["t/p"]).message).toBe("t.rego:3:6: undefined function nope");
  });

  it("rejects entrypoints that name nothing or a function, without a position", () => {
    expect(errorOf("package t\np := 1\n", ["t/nope"]).message).toBe(
      'entrypoint "t/nope" does not refer to a rule or package',
    );
    expect(errorOf("package t\nf(x) := x\n", ["t/f"]).message).toBe('entrypoint "t/f" refers to a function');
  });

  it("needs an entrypoint when none is given, or when no default package exists", () => {
    const src = [{ path: "t.rego", text: "package t\np := 1\n" }];
    expect(() => planPolicy(src)).toThrow(/^no entrypoint given$/);
    expect(() => planPolicy(src, { entrypoints: [] })).toThrow(/^no entrypoint given$/);
    expect(() => planPolicy(src, { defaultEntrypoints: ["arbiter/decide", "arbiter/route"] })).toThrow(
      /^no entrypoint given and none of the default packages \(arbiter\/decide, arbiter\/route\) is defined$/,
    );
    expect(planPolicy(src, { defaultEntrypoints: ["x/y", "t"] }).plans.map((p) => p.name)).toEqual(["t"]);
  });

  it("rejects two sources with the same path", () => {
    const src = { path: "a.rego", text: "package t\np := 1\n" };
    expect(() => planPolicy([src, src], { entrypoints: ["t/p"] })).toThrow("a.rego:1:1: duplicate module path a.rego");
  });
});
