import { describe, expect, it } from "vitest";
import type { Stmt } from "../../src/compiler/ir.ts";
import { load, policyOf, result, rule } from "./backend-helpers.ts";

describe("memory discipline", () => {
  it("keeps memory flat over 100,000 evaluations (heap reset on every opa_eval)", async () => {
    // out := {"allow": input.user in data.admins, "n": count(input.items), "tags": {t | some t in input.items}}
    const k = (target: number, v: unknown): Stmt => ({ op: "const", target, json: JSON.stringify(v) });
    const body: Stmt[] = [
      k(2, "user"),
      { op: "dot", target: 3, source: 0, key: 2 },
      k(4, "admins"),
      { op: "dot", target: 5, source: 1, key: 4 },
      { op: "builtin", target: 6, name: "internal.member_2", args: [3, 5] },
      k(7, "items"),
      { op: "dot", target: 8, source: 0, key: 7 },
      { op: "builtin", target: 9, name: "count", args: [8] },
      { op: "makeSet", target: 10 },
      { op: "scan", source: 8, key: 11, value: 12, body: [{ op: "setAdd", set: 10, value: 12 }] },
      { op: "makeObject", target: 13 },
      k(14, "allow"),
      { op: "objectInsert", object: 13, key: 14, value: 6 },
      k(14, "n"),
      { op: "objectInsert", object: 13, key: 14, value: 9 },
      k(14, "tags"),
      { op: "objectInsert", object: 13, key: 14, value: 10 },
    ];
    const p = await load(policyOf([rule("f", 15, 13, body)], { "t/out": "f" }));
    p.setData({ admins: ["alice", "root"] });
    const mem = (p as unknown as { mem: WebAssembly.Memory }).mem;
    const input = (i: number) => ({ user: i % 3 === 0 ? "alice" : `user${i}`, items: ["b", "a", `x${i % 50}`, "a"] });
    for (let i = 0; i < 1000; i++) p.evaluate(input(i), "t/out");
    const pages = mem.buffer.byteLength;
    for (let i = 0; i < 100_000; i++) p.evaluate(input(i), "t/out");
    expect(mem.buffer.byteLength).toBe(pages);
    expect(result(p, input(3), "t/out")).toEqual({ allow: true, n: 4, tags: ["a", "b", "x3"] });
    expect(result(p, input(4), "t/out")).toEqual({ allow: false, n: 4, tags: ["a", "b", "x4"] });
  });

  it("grows memory itself when an evaluation needs more than the initial pages", async () => {
    // out := [x | some x in input.xs] over a 1 MiB input, with 5 initial pages (320 KiB)
    const body: Stmt[] = [
      { op: "const", target: 2, json: '"xs"' },
      { op: "dot", target: 3, source: 0, key: 2 },
      { op: "makeArray", target: 4, capacity: 0 },
      { op: "scan", source: 3, key: 5, value: 6, body: [{ op: "arrayAppend", array: 4, value: 6 }] },
    ];
    const p = await load(policyOf([rule("f", 7, 4, body)], { "t/out": "f" }));
    const xs = Array.from({ length: 100_000 }, (_, i) => `item-${i}`);
    expect(result(p, { xs }, "t/out")).toEqual(xs);
    expect(result(p, { xs: [1] }, "t/out")).toEqual([1]);
  });
});

describe("memory limits", () => {
  it("aborts with 'out of memory' when the memory cannot grow, and recovers on the next evaluation", async () => {
    // out := [concat(delim, input.xs) | some _ in input.xs] with a 1 KiB delimiter: ~40 MB
    const delim = "-".repeat(1024);
    const body: Stmt[] = [
      { op: "const", target: 2, json: '"xs"' },
      { op: "dot", target: 3, source: 0, key: 2 },
      { op: "const", target: 4, json: JSON.stringify(delim) },
      { op: "makeArray", target: 5, capacity: 0 },
      {
        op: "scan",
        source: 3,
        key: 6,
        value: 7,
        body: [
          { op: "builtin", target: 8, name: "concat", args: [4, 3] },
          { op: "arrayAppend", array: 5, value: 8 },
        ],
      },
      { op: "len", target: 9, source: 5 },
    ];
    const p = await load(policyOf([rule("f", 10, 9, body)], { "t/out": "f" }), { initial: 5, maximum: 16 });
    const xs = Array.from({ length: 200 }, (_, i) => `x${i}`);
    expect(() => p.evaluate({ xs }, "t/out")).toThrow("out of memory");
    expect(result(p, { xs: xs.slice(0, 3) }, "t/out")).toBe(3);
  });
});
