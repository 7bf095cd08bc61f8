/** object.subset (host-subset.ts) through the real pipeline, against OPA's answers. */
import { describe, expect, it } from "vitest";
import { type RegoCase, regoFailures } from "./host-opa-helpers.ts";

describe("object.subset", () => {
  it("answers as OPA", async () => {
    const cases: RegoCase[] = [
      ['object.subset({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": 2}})', true],
      ['object.subset({"a": 1, "b": {"c": 2}}, {"b": {"c": 3}})', false],
      ['object.subset({"a": [1, 2, 3, 4]}, {"a": [2, 3]})', true],
      ['object.subset({"a": [1, 2, 3, 4]}, {"a": [2, 4]})', false],
      ["object.subset({1, 2, 3}, {1, 3})", true],
      ["object.subset({1, 2, 3}, {4})", false],
      ["object.subset([1, 2, 3], [1, 2])", true],
      ["object.subset([1, 2, 3], [3, 2])", false],
      // a set under an array: order-free; an empty set is never found in an empty array (OPA's loop)
      ["object.subset([3, 1, 2], {2, 3})", true],
      ["object.subset([], set())", false],
      ["object.subset([1, 1], {1, 2})", true],
      ["object.subset({1}, [1])", undefined],
      ['object.subset({"a": 1}, [1])', undefined],
      // nested sets: element by element, no recursion into the elements (OPA's setSubset)
      ['object.subset({"a": {1, 2}}, {"a": {1}})', true],
      ['object.subset({"a": {1, 2}}, {"a": {3}})', false],
      ['object.subset({1, {"a", "b"}}, {{"a", "b"}})', true],
      ['object.subset({1, {"a", "b"}}, {{"a"}})', false],
      // a set against an array nested in objects is not a subset (only equal values or same kinds recurse)
      ['object.subset({"a": [1, 2]}, {"a": {1}})', false],
      ['object.subset({"a": {"b": {"c": {1, 2, 3}}}}, {"a": {"b": {"c": {3}}}})', true],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });
});
