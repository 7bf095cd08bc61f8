/**
 * uuid.parse / uuid.rfc4122 (host-uuid.ts) and regex.find_all_string_submatch_n,
 * base64.is_valid, base64url.encode_no_pad, glob.quote_meta (host-regex-more.ts) through the
 * real pipeline, against OPA's answers.
 */
import { describe, expect, it } from "vitest";
import { compile } from "../../src/compiler/index.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";
import { type RegoCase, regoFailures } from "./host-opa-helpers.ts";

describe("uuid.parse, uuid.rfc4122", () => {
  it("parses as google/uuid and OPA", async () => {
    const cases: RegoCase[] = [
      ['uuid.parse("{00000000-0000-4000-8000-000000000000}")', { variant: "RFC4122", version: 4 }],
      ['uuid.parse("6bea8ef2d3d33cd184e09bab06a52ece")', { variant: "RFC4122", version: 3 }],
      ['uuid.parse("00000000-0000-4000-c000-000000000000")', { variant: "Microsoft", version: 4 }],
      [
        'json.marshal(uuid.parse("URN:UUID:000003e8-48b9-21ee-b200-325096b39f47"))',
        '{"clocksequence":12800,"domain":"Person","id":1000,"macvariables":"local:unicast","nodeid":"32-50-96-b3-9f-47","time":1693566990121469600,"variant":"RFC4122","version":2}',
      ],
      ['uuid.parse("00000000-0000-4000-8000-00000000000")', undefined],
      ['uuid.parse("00000000x0000-4000-8000-000000000000")', undefined],
      ["uuid.parse(123)", undefined],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });

  it("gives one UUID per key within an evaluation and new ones in the next", async () => {
    const text =
      'package t\np := {"same": count({uuid.rfc4122("k") | numbers.range(1, 50)[_]}), "a": uuid.rfc4122("a"), "b": uuid.rfc4122("b")}';
    const policy = await loadCompiledPolicy(compile([{ path: "t.rego", text }], { entrypoints: ["t/p"] }).wasm);
    const one = (policy.evaluate(undefined, "t/p") as Array<{ result: { same: number; a: string; b: string } }>)[0]!
      .result;
    await new Promise((r) => setTimeout(r, 1));
    const two = (policy.evaluate(undefined, "t/p") as Array<{ result: { same: number; a: string; b: string } }>)[0]!
      .result;
    expect(one.same).toBe(1);
    expect(one.a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(one.a).not.toBe(one.b);
    expect(two.a).not.toBe(one.a);
  });
});

describe("regex and encoding gaps", () => {
  it("answer as OPA", async () => {
    const cases: RegoCase[] = [
      [
        'regex.find_all_string_submatch_n("a(x*)b", "-axxb-ab-", -1)',
        [
          ["axxb", "xx"],
          ["ab", ""],
        ],
      ],
      [
        'regex.find_all_string_submatch_n("[^aouiye]([aouiye])([^aouiye])?", "somestri", -1)',
        [
          ["som", "o", "m"],
          ["ri", "i", ""],
        ],
      ],
      ['regex.find_all_string_submatch_n("[^aouiye]([aouiye])([^aouiye])?", "somestri", 1)', [["som", "o", "m"]]],
      // Go skips an empty match right after a match (JavaScript's matchAll does not)
      ['regex.find_all_string_submatch_n("a*", "baaac", -1)', [[""], ["aaa"], [""]]],
      ['regex.find_all_string_submatch_n("(", "x", -1)', undefined],
      ['base64.is_valid("aGVsbG8=")', true],
      ['base64.is_valid("aGVsbG8")', false],
      ["base64.is_valid(1)", false],
      ['base64url.encode_no_pad("there")', "dGhlcmU"],
      ['glob.quote_meta("*.git{hub,lab}.com/[a]?\\\\")', "\\*.git\\{hub,lab\\}.com/\\[a\\]\\?\\\\"],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });
});

describe("regex.split and regex.find_n as Go's regexp", () => {
  it("split and replace as Go's regexp: RE2's syntax, Go's empty matches, no JavaScript capture groups", async () => {
    const cases: RegoCase[] = [
      ['regex.split("(,)", "a,b")', ["a", "b"]], // JavaScript's split: ["a", ",", "b"]
      ['regex.split(",", "a,b,")', ["a", "b", ""]],
      ['regex.split("a*", "baaac")', ["b", "c"]],
      ['regex.split("x*", "abc")', ["a", "b", "c"]],
      ['regex.split(",", "")', [""]],
      ['regex.split("", "")', []],
      ['regex.split("[[:digit:]]", "a1b2c")', ["a", "b", "c"]], // a POSIX class: RE2's, not JavaScript's
      ['regex.split("(", "x")', undefined], // not RE2: OPA's error
      ['regex.find_n("a*", "baaac", -1)', ["", "aaa", ""]], // JavaScript's matchAll adds "" at 4
      ['regex.find_n("a*", "baaac", 2)', ["", "aaa"]],
      // regex.replace: Go's matches (JavaScript's replace gave "XbXXcX") and Go's Expand
      ['regex.replace("baaac", "a*", "X")', "XbXcX"],
      ['regex.replace("ab", "(a)(b)", "${2}$1|$1x|$01|$$|$|${x")', "ba|||$|$|${x"],
      ['regex.replace("ab", "(?P<first>a)", "[$first]")', "[a]b"],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });

  it("serves a module built by opa build under OPA's names, not the SDK's split and sprintf", async () => {
    const { builtinImpl } = await import("../../src/engine/policy-instance.ts");
    const { hostBuiltins } = await import("../../src/compiler/index.ts");
    const host = hostBuiltins as Record<string, (...args: unknown[]) => unknown>;
    expect(builtinImpl("regex.split", host)!("(,)", "a,b")).toEqual(["a", "b"]);
    expect(builtinImpl("json.is_valid", host)!(7)).toBe(false); // the SDK's answers undefined
    // sprintf: Go's fmt, where the SDK's sprintf-js printed an object as [object Object]
    const sprintf = builtinImpl("sprintf", host)!;
    expect(sprintf("%v %d %.2f %s", [{ a: 1, b: [1, 2] }, 3, 1.5, "x"])).toBe('{"a": 1, "b": [1, 2]} 3 1.50 x');
    expect(() => sprintf("%d", [Number.MAX_SAFE_INTEGER + 3])).toThrow(/beyond 2\^53/);
  });
});
