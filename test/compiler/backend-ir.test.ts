import { describe, expect, it } from "vitest";
import type { Func, Stmt } from "../../src/compiler/ir.ts";
import { load, policyOf, result, rule } from "./backend-helpers.ts";

const k = (target: number, value: unknown): Stmt => ({ op: "const", target, json: JSON.stringify(value) });
const dotInput = (target: number, keyLocal: number, key: string): Stmt[] => [
  k(keyLocal, key),
  { op: "dot", target, source: 0, key: keyLocal },
];

/** Compiled policies by IR, so a test evaluating one policy on many inputs compiles it once. */
const compiled = new Map<string, ReturnType<typeof load>>();

async function run(funcs: Func[], input: unknown): Promise<unknown> {
  const policy = policyOf(funcs, { "t/out": funcs[0]!.name });
  const key = JSON.stringify(policy);
  let p = compiled.get(key);
  if (p === undefined) {
    p = load(policy);
    compiled.set(key, p);
  }
  return result(await p, input, "t/out");
}

describe("IR statements", () => {
  it("scan iterates objects in key order, sets in OPA value order, arrays by index", async () => {
    // out := [[k, v] | some k, v in input.c]
    const body: Stmt[] = [
      ...dotInput(2, 3, "c"),
      { op: "makeArray", target: 4, capacity: 0 },
      {
        op: "scan",
        source: 2,
        key: 5,
        value: 6,
        body: [
          { op: "makeArray", target: 7, capacity: 2 },
          { op: "arrayAppend", array: 7, value: 5 },
          { op: "arrayAppend", array: 7, value: 6 },
          { op: "arrayAppend", array: 4, value: 7 },
        ],
      },
      { op: "assign", target: 8, source: 4 },
    ];
    const f = rule("f", 9, 8, body);
    expect(await run([f], { c: { b: 1, a: 2, "": 0, ab: 3, B: 4 } })).toEqual([
      ["", 0],
      ["B", 4],
      ["a", 2],
      ["ab", 3],
      ["b", 1],
    ]);
    expect(await run([f], { c: ["x", "y"] })).toEqual([
      [0, "x"],
      [1, "y"],
    ]);
    expect(await run([f], { c: [] })).toEqual([]);
    // not a collection: the scan fails its block, so out stays undefined
    expect(await run([f], { c: "str" })).toBeUndefined();

    // a set built from input values dumps (and scans) in OPA order
    const setBody: Stmt[] = [
      ...dotInput(2, 3, "c"),
      { op: "makeSet", target: 4 },
      { op: "scan", source: 2, key: 5, value: 6, body: [{ op: "setAdd", set: 4, value: 6 }] },
      { op: "makeArray", target: 7, capacity: 0 },
      { op: "scan", source: 4, key: 5, value: 6, body: [{ op: "arrayAppend", array: 7, value: 5 }] },
      { op: "makeArray", target: 8, capacity: 2 },
      { op: "arrayAppend", array: 8, value: 4 },
      { op: "arrayAppend", array: 8, value: 7 },
    ];
    const sorted = [null, false, true, -1, 2, "a", "b", [1], [1, 2], { a: 1 }, { a: 2 }, { b: 0 }];
    const shuffled = [{ b: 0 }, "b", 2, [1, 2], true, null, { a: 2 }, -1, "a", false, [1], { a: 1 }, 2, "a", 2.0];
    expect(await run([rule("g", 9, 8, setBody)], { c: shuffled })).toEqual([sorted, sorted]);
  });

  it("break leaves the scan and its block; a failure only ends the iteration", async () => {
    // seen := collects elements until the first 2, then break 1
    const body: Stmt[] = [
      ...dotInput(2, 3, "c"),
      { op: "makeArray", target: 4, capacity: 0 },
      k(9, 2),
      {
        op: "block",
        blocks: [
          [
            {
              op: "scan",
              source: 2,
              key: 5,
              value: 6,
              body: [
                { op: "arrayAppend", array: 4, value: 6 },
                { op: "equal", a: 6, b: 9 },
                { op: "break", index: 1 },
              ],
            },
            // only reached when no element was 2
            k(10, "none"),
            { op: "arrayAppend", array: 4, value: 10 },
          ],
        ],
      },
      { op: "assign", target: 8, source: 4 },
    ];
    const f = rule("f", 11, 8, body);
    expect(await run([f], { c: [1, 3, 2, 5] })).toEqual([1, 3, 2]);
    expect(await run([f], { c: [1, 3] })).toEqual([1, 3, "none"]);
  });

  it("block runs every sub-block; not inverts its body", async () => {
    // out := "admin" if input.role == "admin" else "user" if not input.blocked else "blocked"
    const body: Stmt[] = [
      ...dotInput(2, 3, "role"),
      k(4, "admin"),
      {
        op: "block",
        blocks: [
          [
            { op: "equal", a: 2, b: 4 },
            { op: "assignOnce", target: 8, source: 4, message: "conflict" },
          ],
          [
            { op: "isUndefined", source: 8 },
            { op: "not", body: [...dotInput(5, 6, "blocked"), { op: "notFalse", source: 5 }] },
            k(7, "user"),
            { op: "assign", target: 8, source: 7 },
          ],
          [{ op: "isUndefined", source: 8 }, k(7, "blocked"), { op: "assign", target: 8, source: 7 }],
        ],
      },
    ];
    const f = rule("f", 9, 8, body);
    expect(await run([f], { role: "admin", blocked: true })).toBe("admin");
    expect(await run([f], { role: "dev" })).toBe("user");
    expect(await run([f], { role: "dev", blocked: false })).toBe("user");
    expect(await run([f], { role: "dev", blocked: true })).toBe("blocked");
  });

  it("conditions: isKind, isArrayOfLength, len, notEqual, isDefined, reset", async () => {
    const check = (stmts: Stmt[]) => rule("f", 9, 8, [...dotInput(2, 3, "x"), ...stmts, k(8, true)]);
    expect(await run([check([{ op: "isKind", source: 2, kind: "set" }])], { x: [] })).toBeUndefined();
    expect(await run([check([{ op: "isKind", source: 2, kind: "array" }])], { x: [] })).toBe(true);
    expect(await run([check([{ op: "isArrayOfLength", source: 2, length: 2 }])], { x: [1, 2] })).toBe(true);
    expect(await run([check([{ op: "isArrayOfLength", source: 2, length: 2 }])], { x: [1] })).toBeUndefined();
    const lenIs = (n: number) => check([{ op: "len", target: 4, source: 2 }, k(5, n), { op: "equal", a: 4, b: 5 }]);
    expect(await run([lenIs(2)], { x: { a: 1, b: 2 } })).toBe(true);
    expect(await run([lenIs(0)], { x: "ab" })).toBeUndefined();
    expect(await run([check([k(4, 1), { op: "notEqual", a: 2, b: 4 }])], { x: 1.0 })).toBeUndefined();
    expect(await run([check([k(4, 1), { op: "notEqual", a: 2, b: 4 }])], { x: "1" })).toBe(true);
    expect(
      await run(
        [
          check([
            { op: "reset", target: 2 },
            { op: "isDefined", source: 2 },
          ]),
        ],
        { x: 1 },
      ),
    ).toBeUndefined();
    // dot on an array index, an out-of-range index and a set member
    const at = (i: unknown) =>
      rule("f", 9, 5, [...dotInput(2, 3, "x"), k(4, i), { op: "dot", target: 5, source: 2, key: 4 }]);
    expect(await run([at(1)], { x: [5, 6] })).toBe(6);
    expect(await run([at(2)], { x: [5, 6] })).toBeUndefined();
    expect(await run([at(-1)], { x: [5, 6] })).toBeUndefined();
    expect(await run([at(1.5)], { x: [5, 6] })).toBeUndefined();
  });

  it("calls functions with arguments and memoizes zero-argument rules per evaluation", async () => {
    // inc(x) := x + 1 ; out := inc(input.n) + inc(input.n)
    const inc: Func = {
      name: "inc",
      params: 3,
      locals: 5,
      result: 4,
      memoize: false,
      body: [k(3, 1), { op: "builtin", target: 4, name: "plus", args: [2, 3] }],
    };
    const body: Stmt[] = [
      ...dotInput(2, 3, "n"),
      { op: "call", target: 4, func: "inc", args: [0, 1, 2] },
      { op: "call", target: 5, func: "memo", args: [0, 1] },
      { op: "call", target: 6, func: "memo", args: [0, 1] },
      { op: "builtin", target: 7, name: "plus", args: [4, 5] },
      { op: "builtin", target: 8, name: "plus", args: [7, 6] },
    ];
    // memo := input.n * 10
    const memo = rule("memo", 6, 5, [
      ...dotInput(2, 3, "n"),
      k(4, 10),
      { op: "builtin", target: 5, name: "mul", args: [2, 4] },
    ]);
    const p = await load(policyOf([rule("f", 9, 8, body), inc, memo], { "t/out": "f" }));
    expect(result(p, { n: 1 })).toBe(22);
    expect(result(p, { n: 2 })).toBe(43);
    expect(result(p, { n: "x" })).toBeUndefined();
  });

  it("conflicts abort the evaluation with the IR's message", async () => {
    const once = rule("f", 9, 8, [
      ...dotInput(2, 3, "xs"),
      {
        op: "scan",
        source: 2,
        key: 4,
        value: 5,
        body: [{ op: "assignOnce", target: 8, source: 5, message: "complete rules must not produce multiple outputs" }],
      },
    ]);
    const p = await load(policyOf([once], { "t/out": "f" }));
    expect(result(p, { xs: [1, 1.0, 1] })).toBe(1);
    expect(() => p.evaluate({ xs: [1, 2] }, "t/out")).toThrow("complete rules must not produce multiple outputs");
    // the instance keeps working after an abort
    expect(result(p, { xs: [3] })).toBe(3);

    const obj = rule("g", 9, 8, [
      ...dotInput(2, 3, "kv"),
      { op: "makeObject", target: 8 },
      {
        op: "scan",
        source: 2,
        key: 4,
        value: 5,
        body: [
          k(6, 0),
          { op: "dot", target: 6, source: 5, key: 6 },
          k(7, 1),
          { op: "dot", target: 7, source: 5, key: 7 },
          { op: "objectInsertOnce", object: 8, key: 6, value: 7, message: "object keys must be unique" },
        ],
      },
    ]);
    const q = await load(policyOf([obj], { "t/out": "g" }));
    expect(
      result(q, {
        kv: [
          ["b", 1],
          ["a", 2],
          ["b", 1],
        ],
      }),
    ).toEqual({ a: 2, b: 1 });
    expect(() =>
      q.evaluate(
        {
          kv: [
            ["b", 1],
            ["b", 2],
          ],
        },
        "t/out",
      ),
    ).toThrow("object keys must be unique");
  });

  it("objectMerge deep-merges and aborts on a non-object conflict; objectInsert overwrites", async () => {
    const merge = rule("f", 9, 8, [
      ...dotInput(2, 3, "a"),
      ...dotInput(4, 5, "b"),
      { op: "objectMerge", target: 8, a: 2, b: 4, message: "merge conflict" },
      k(6, "z"),
      k(7, 0),
      { op: "objectInsert", object: 8, key: 6, value: 7 },
      k(7, 1),
      { op: "objectInsert", object: 8, key: 6, value: 7 },
    ]);
    const p = await load(policyOf([merge], { "t/out": "f" }));
    expect(result(p, { a: { x: { y: 1 }, s: 1 }, b: { x: { w: 2 }, s: 1 } })).toEqual({
      s: 1,
      x: { w: 2, y: 1 },
      z: 1,
    });
    expect(() => p.evaluate({ a: { x: 1 }, b: { x: 2 } }, "t/out")).toThrow("merge conflict");
  });

  it("dumps strings with escapes and non-ASCII text intact", async () => {
    const echo = rule("f", 5, 4, [...dotInput(2, 3, "s"), { op: "assign", target: 4, source: 2 }]);
    const p = await load(policyOf([echo], { "t/out": "f" }));
    for (const s of ["plain", 'quote" backslash\\ nl\n tab\t', "ctl\u0001\u001f", "émoji 🎉 中文", ""]) {
      expect(result(p, { s })).toBe(s);
    }
    expect(result(p, { s: { 'k"': [1, { é: null }] } })).toEqual({ 'k"': [1, { é: null }] });
  });
});

describe("numbers", () => {
  it("parse and dump round-trip f64 values exactly across magnitudes", async () => {
    const echo = rule("f", 5, 4, [
      k(3, "xs"),
      { op: "dot", target: 2, source: 0, key: 3 },
      { op: "assign", target: 4, source: 2 },
    ]);
    const p = await load(policyOf([echo], { "t/out": "f" }));
    // Deterministic generator (xorshift32), so a failure reproduces.
    let seed = 0x9e3779b9;
    const next = () => {
      seed ^= seed << 13;
      seed >>>= 0;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      seed >>>= 0;
      return seed / 2 ** 32;
    };
    const xs: number[] = [
      0,
      -1,
      1e-320,
      5e-324,
      1.7976931348623157e308,
      2 ** 53,
      2 ** 53 + 2,
      3954479978528120.5,
      0.1,
      123.456,
    ];
    for (let i = 0; i < 6000; i++) {
      const mag = i % 3 === 0 ? 0 : i % 3 === 1 ? Math.floor(next() * 40 - 20) : Math.floor(next() * 600 - 300);
      xs.push((next() - 0.3) * 10 ** mag);
      if (i % 10 === 0) xs.push(Math.floor(next() * 2 ** 53));
    }
    // JavaScript prints integral values from 2^63 to 1e21 as integer digits, which name an
    // integer the f64 is not (OPA would keep that integer exactly): those are refused below.
    const integralBeyondI64 = (x: number) => /^-?\d+$/.test(JSON.stringify(x)) && Math.abs(x) >= 2 ** 63;
    const exact = xs.filter((x) => !integralBeyondI64(x));
    expect(xs.length - exact.length).toBeGreaterThan(0);
    const got = result(p, { xs: exact }) as number[];
    const bad = exact.flatMap((x, i) => (Object.is(got[i], x === 0 ? 0 : x) ? [] : [`${x} -> ${got[i]}`]));
    expect(bad.slice(0, 5)).toEqual([]);
    expect(() => p.evaluate({ xs: [xs.find(integralBeyondI64)] }, "t/out")).toThrow(/beyond the runtime's exact range/);
  });

  it("refuses integers in JSON it cannot hold exactly, and accepts the int64 extremes", async () => {
    const echo = rule("f", 5, 4, [
      k(3, "x"),
      { op: "dot", target: 2, source: 0, key: 3 },
      { op: "assign", target: 4, source: 2 },
    ]);
    const p = await load(policyOf([echo], { "t/out": "f" }));
    const raw = (text: string) => p.evaluate(new TextEncoder().encode(`{"x":${text}}`).buffer as never, "t/out");
    for (const text of [
      "9223372036854775808",
      "-9223372036854775809",
      "28857836529306024611913",
      "123456789012345678901",
      "1e400",
    ]) {
      expect(() => raw(text), text).toThrow(/beyond the runtime's exact range/);
    }
    // 10^20 is an integer an f64 holds exactly.
    expect(raw("100000000000000000000")).toEqual([{ result: 1e20 }]);
    expect(raw("-9223372036854775808")).toEqual([{ result: -9223372036854775808 }]);
  });
});

describe("exact integers beyond 2^53", () => {
  it("add, subtract, multiply, sum and divide evenly without rounding", async () => {
    const ops: Array<[string, string[]]> = [
      ["plus", ["9007199254740993", "2"]],
      ["minus", ["9007199254740993", "-4"]],
      ["mul", ["3000000000", "3000000001"]],
      ["sum", ["[9007199254740993, 1, 1]"]],
      ["div", ["9007199254740994", "2"]],
      ["div", ["18014398509481986", "2"]],
      ["minus", ["9007199254740995", "9007199254740994"]],
      ["plus", ["9223372036854775807", "1"]],
    ];
    const body: Stmt[] = [{ op: "makeArray", target: 2, capacity: ops.length }];
    let next = 3;
    for (const [name, args] of ops) {
      const locals = args.map((a) => {
        const l = next++;
        body.push({ op: "const", target: l, json: a });
        return l;
      });
      const out = next++;
      body.push({ op: "builtin", target: out, name, args: locals }, { op: "arrayAppend", array: 2, value: out });
    }
    const text = next++;
    body.push({ op: "builtin", target: text, name: "json.marshal", args: [2] });
    const p = await load(policyOf([rule("f", next, text, body)], { "t/out": "f" }));
    // The last one overflows i64 and falls back to f64, as documented.
    expect(result(p, {}, "t/out")).toBe(
      "[9007199254740995,9007199254740997,9000000003000000000,9007199254740995,4503599627370497,9007199254740993,1,9223372036854776000]",
    );
  });
});
