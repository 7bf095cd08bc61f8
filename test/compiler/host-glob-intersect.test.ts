/**
 * regex.globs_match (host-glob-intersect.ts) against the answers of OPA's library
 * (yashtewari/glob-intersection): its own examples, its error texts, its quirks, and the bound
 * that keeps a hostile pair of patterns from holding the event loop.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { globsIntersect, MAX_DEPTH, MAX_STEPS } from "../../src/compiler/host-glob-intersect.ts";
import { type RegoCase, regoFailures } from "./host-opa-helpers.ts";

describe("regex.globs_match", () => {
  it("answers the library's examples", () => {
    const nonEmpty: [string, string[]][] = [
      ["abcd", ["abcd", "....", "[a-d]*"]],
      ["pqrs", [".qrs", "p.rs", "pq.s", "pqr."]],
      [".*", ["asdklfj", "jasdfh"]],
      ["d*", ["[abcd][abcd]", "d[a-z]+", ".....", "[d]*"]],
      ["[a-p]+", ["[p-z]+", "apapapaapapapap", ".*", "abcdefgh*"]],
      ["abcd[a-c]z+", ["abcd[b-d][yz]*", "abcdazzzz", "abcdbzzz", "abcdcz"]],
      [".*\\\\", [".*"]],
      [".a.a", ["b.b.", "c.c."]],
      ["a.a.[0-9]+z", [".b.b2359825792*594823z"]],
    ];
    const empty: [string, string[]][] = [
      ["abcd", ["lsdfhda", "abcdla", "asdlfk", "ksdfj"]],
      ["[a-d]+", ["xyz", "p+", "[e-f]+"]],
      ["[0-9]*", ["[a-z]", "\\*"]],
      ["mamama.*", ["dadada.*", "nanana.*"]],
      [".*mamama", [".*dadada", ".*nanana"]],
      [".xyz.", ["paaap", ".*pqr.*"]],
      ["[a-z]+", ["[0-9]*"]],
    ];
    const wrong: string[] = [];
    for (const [want, table] of [
      [true, nonEmpty],
      [false, empty],
    ] as const)
      for (const [lhs, rhss] of table)
        for (const rhs of rhss) {
          if (globsIntersect(lhs, rhs) !== want) wrong.push(`${lhs} ~ ${rhs}: want ${want}`);
          if (globsIntersect(rhs, lhs) !== want) wrong.push(`${rhs} ~ ${lhs}: want ${want}`);
        }
    expect(wrong).toEqual([]);
  });

  it("keeps the library's quirks: `.` meets an empty set, the empty pattern meets only itself", () => {
    expect(globsIntersect(".", "[]")).toBe(true);
    expect(globsIntersect("a", "[]")).toBe(false);
    expect(globsIntersect("", "")).toBe(true);
    expect(globsIntersect("", "a*")).toBe(false);
    // Simplify: `a*a+` is `a+`, so it needs at least one `a`.
    expect(globsIntersect("a*a+", "a")).toBe(true);
  });

  it("reports bad patterns with the library's text, positions in code points", () => {
    const cases: [string, string][] = [
      ["pqrs]", "input:pqrs], pos:5, set-close ']' with no preceding '['"],
      ["*a", "input:*a, pos:1, flag '*' must be preceded by a non-flag"],
      ["a**", "input:a**, pos:3, flag '*' must be preceded by a non-flag"],
      ["ab\\", "input:ab\\, pos:2, input ends with a \\ (escape) character"],
      ["[ab", "input:[ab, pos:3, found [ without matching ]"],
      ["[-a]", "input:[-a], pos:2, range character '-' must be preceded by a Unicode character"],
      ["[a-]", "input:[a-], pos:3, range character '-' must be followed by a Unicode character"],
      ["[a-]]", "input:[a-]], pos:4, range character '-' cannot be followed by a special symbol"],
      ["[z-a]", "input:[z-a], pos:4, range is out of order: 'a' comes before 'z' in Unicode"],
      ["é]", "input:é], pos:2, set-close ']' with no preceding '['"],
    ];
    for (const [pattern, message] of cases)
      expect(() => globsIntersect(pattern, "a"), pattern).toThrow(`${message}: the input provided is invalid`);
  });

  it("answers OPA's results through a compiled policy; a bad pattern is a builtin error", async () => {
    const cases: RegoCase[] = [
      ['regex.globs_match("a.a.[0-9]+z", ".b.b2359825792*594823z")', true],
      ['regex.globs_match("[a-z]+", "[0-9]*")', false],
      ['regex.globs_match(`[a-z]+\\[[0-9]+\\]`, "foo\\\\[1\\\\]")', true],
      ['regex.globs_match("pqrs]", "[a-b]+")', undefined],
      ['regex.globs_match(1, "a")', undefined],
    ];
    expect(await regoFailures(cases)).toEqual([]);
    expect(await regoFailures([['regex.globs_match("pqrs]", "[a-b]+")', Error]], { strict: true })).toEqual([]);
  });

  it("on any pattern answers a boolean or the library's error, and without flags answers exactly", () => {
    const special = fc.constantFrom("a", "b", ".", "*", "+", "[", "]", "-", "\\", "é");
    const pattern = fc.array(special, { maxLength: 24 }).map((cs) => cs.join(""));
    fc.assert(
      fc.property(pattern, pattern, (x, y) => {
        try {
          expect(typeof globsIntersect(x, y)).toBe("boolean");
        } catch (e) {
          expect((e as Error).message).toMatch(/: the input provided is invalid$|^regex\.globs_match: the patterns /);
        }
      }),
      { numRuns: 3000, seed: 14 },
    );
    // Without `*` and `+` a glob matches strings of one length, position by position: the
    // intersection is non-empty exactly when the lengths agree and every position can match.
    const token = fc.constantFrom("a", "b", "c", ".", "[ab]", "[b-c]", "[]", "\\.", "\\*");
    const fixed = fc.array(token, { maxLength: 8 });
    const chars = (t: string): string[] | "any" =>
      t === "." ? "any" : t === "[ab]" ? ["a", "b"] : t === "[b-c]" ? ["b", "c"] : t === "[]" ? [] : [t.slice(-1)];
    const meets = (t: string, u: string): boolean => {
      const [p, q] = [chars(t), chars(u)];
      if (p === "any" || q === "any") return true; // a dot meets even the empty set, as the library
      return p.some((c) => q.includes(c));
    };
    fc.assert(
      fc.property(fixed, fixed, (x, y) => {
        const want = x.length === y.length && x.every((t, i) => meets(t, y[i]!));
        expect(globsIntersect(x.join(""), y.join(""))).toBe(want);
      }),
      { numRuns: 3000, seed: 14 },
    );
  });

  it("stays polynomial on patterns that make the library's recursion exponential, within its bound", () => {
    // 60 `.*a` against 50 `a`: every way of placing the a's is tried before the answer is false,
    // exponentially many without memoization; with it, 60 x 50 x 50 steps at most.
    const start = performance.now();
    expect(globsIntersect(".*a".repeat(60) + "c", "a".repeat(50) + "c")).toBe(false);
    expect(globsIntersect(".*a".repeat(50) + "c", "a".repeat(60) + "c")).toBe(true);
    expect(performance.now() - start).toBeLessThan(2000);
    // Past either bound the call fails (a limit of Arbiter's), never an answer, and fails fast.
    expect(() => globsIntersect(".*a".repeat(300) + "c", "a".repeat(290) + "c")).toThrow(
      `regex.globs_match: the patterns need more than ${MAX_STEPS} steps`,
    );
    expect(() => globsIntersect(".*a".repeat(3000) + "c", "a".repeat(2900) + "c")).toThrow(
      `regex.globs_match: the patterns nest more than ${MAX_DEPTH} deep`,
    );
    expect(performance.now() - start).toBeLessThan(3000);
  });
});
