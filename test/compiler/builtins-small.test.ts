/**
 * array.flatten, product, regex.template_match and rand.intn through the real pipeline (compile,
 * evaluate through the SDK), against OPA's answers, with hostile operands.
 */
import { describe, expect, it } from "vitest";
import { type RegoCase, regoFailures } from "./host-opa-helpers.ts";

describe("array.flatten", () => {
  it("unpacks array elements one level and keeps everything else as it is", async () => {
    const cases: RegoCase[] = [
      ["array.flatten([])", []],
      ["array.flatten([[1, 2], [3], []])", [1, 2, 3]],
      ['array.flatten([[[1]], "s", {"a": [2]}, [{3}], 4.5, null])', [[1], "s", { a: [2] }, [3], 4.5, null]],
      // a set element is kept, not unpacked (only arrays are)
      ["array.flatten([{1, 2}, [3]]) == [{1, 2}, 3]", true],
      ["array.flatten({[1]})", undefined],
      ["array.flatten(42)", undefined],
      ['array.flatten("[1]")', undefined],
      // large: 200,000 elements from 2,000 arrays, order kept
      ["count(array.flatten([numbers.range(1, 100) | numbers.range(1, 2000)[_]]))", 200_000],
      ["array.flatten([numbers.range(1, 3), numbers.range(7, 9)])", [1, 2, 3, 7, 8, 9]],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });

  it("is an error with strict builtin errors for a non-array", async () => {
    expect(await regoFailures([["array.flatten(42)", Error]], { strict: true })).toEqual([]);
  });
});

describe("product", () => {
  it("multiplies integers exactly and refuses what it cannot answer exactly", async () => {
    const cases: RegoCase[] = [
      ["product([1, 2, 3, 4])", 24],
      ["product({1, 2, 3, 4})", 24],
      ["product([])", 1],
      ["product([-3, 3])", -9],
      ["product([3037000499, 3037000499]) == 9223372030926249001", true], // exact beyond 2^53
      ["product([9223372036854775807, 0, 5])", 0],
      ["product([2.0, 3])", 6],
      ['product([1, "2"])', undefined],
      ["product(5)", undefined],
      ['product({"a": 1})', undefined],
      // beyond i64 or with a non-integer: OPA's answer is not reproduced, the evaluation fails
      ["product([4294967296, 4294967296])", Error],
      ["product([-9223372036854775808, -1])", Error],
      ["product([1.5, 2])", Error],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });
});

describe("regex.template_match", () => {
  it("matches regex parts between delimiters and the rest literally, anchored", async () => {
    const cases: RegoCase[] = [
      ['regex.template_match("urn:foo:{.*}", "urn:foo:bar:baz", "{", "}")', true],
      ['regex.template_match("urn:foo:<.*>", "urn:foo:bar:baz", "<", ">")', true],
      ['regex.template_match("urn:foo.<[0-9]{2}>", "urn:fooX12", "<", ">")', false], // "." is literal
      ['regex.template_match("urn:foo.<[0-9]{2}>", "urn:foo.12", "<", ">")', true],
      ['regex.template_match("a<b>c", "xabcx", "<", ">")', false], // anchored
      ['regex.template_match("<a|b>:<{1,2}>", "b:{1,2}", "<", ">")', undefined], // RE2: nothing to repeat
      ['regex.template_match("x{a{1,2}}", "xaa", "{", "}")', true], // nested delimiters
      // OPA's errors: unbalanced delimiters, a bad regex, delimiters not one byte long
      ['regex.template_match("urn:{.*", "urn:x", "{", "}")', undefined],
      ['regex.template_match("urn:}.*{", "urn:x", "{", "}")', undefined],
      ['regex.template_match("urn:<(>", "urn:x", "<", ">")', undefined],
      ['regex.template_match("urn:<.*>", "urn:x", "<<", ">")', undefined],
      ['regex.template_match("urn:é.*é", "urn:x", "é", "é")', undefined],
      ['regex.template_match("urn:<.*>", 1, "<", ">")', undefined],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });
});

describe("rand.intn", () => {
  it("answers the same draw for the same arguments within one evaluation", async () => {
    const cases: RegoCase[] = [
      ['count({rand.intn("key", 100) | numbers.range(1, 100)[_]})', 1],
      ['rand.intn("key", 100) == rand.intn("key", -100)', true], // OPA's key uses |n|
      ['rand.intn("k", 0)', 0],
      ['count({x | x := rand.intn(sprintf("%d", [i]), 3); numbers.range(1, 300)[i]} - {0, 1, 2})', 0],
      ['rand.intn("k", 1)', 0],
      ['rand.intn("k", 2.5)', undefined],
      ["rand.intn(1, 5)", undefined],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });
});
