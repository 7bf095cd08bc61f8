/**
 * graph.reachable and graph.reachable_paths (host-graph.ts) through the real pipeline, on
 * graphs of sets and arrays; expectations are OPA's (its conformance suite's reachable cases).
 */
import { describe, expect, it } from "vitest";
import { type RegoCase, regoFailures } from "./host-opa-helpers.ts";

const G1022 =
  '{"one": ["two","five"], "two": ["four"], "three": [""], "four": ["three"], "five": ["seven","six"], "six": ["nine","seven"], "seven": ["eight"], "eight": ["three"], "nine": [""]}';

describe("graph.reachable, graph.reachable_paths", () => {
  it("answer sets as OPA", async () => {
    const cases: RegoCase[] = [
      [
        'graph.reachable({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set(), "e": {"f"}, "f": {"e"}, "x": {"x"}}, {"b", "e"})',
        ["b", "d", "e", "f"],
      ],
      ['graph.reachable({"a": ["b"], "b": ["c"], "c": ["a"]}, ["a"])', ["a", "b", "c"]],
      ['graph.reachable({}, {"a"})', []],
      ['type_name(graph.reachable({"a": []}, ["a"]))', "set"],
      ["graph.reachable(1, [1])", undefined],
      ['graph.reachable({"a": []}, "a")', undefined],
      ['graph.reachable_paths({"a": {"b"}, "b": {"c"}, "c": {"a"}}, {"a"})', [["a", "b", "c"]]],
      [
        'graph.reachable_paths({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set(), "e": {"f"}, "f": {"e"}, "x": {"x"}}, {"b", "e"})',
        [
          ["b", "d"],
          ["e", "f"],
        ],
      ],
      [
        'graph.reachable_paths({"a": ["b", "c"], "b": ["c"], "c": []}, {"a"})',
        [
          ["a", "b", "c"],
          ["a", "c"],
        ],
      ],
      ['graph.reachable_paths({"a": ["b"], "b": ["nonexistent"]}, {"a", "b"})', [["a", "b"], ["b"]]],
      ['graph.reachable_paths({"a": null}, ["a"])', [["a"]]],
      [
        `graph.reachable_paths(${G1022}, {"one"})`,
        [
          ["one", "five", "seven", "eight", "three"],
          ["one", "five", "six"],
          ["one", "five", "six", "nine"],
          ["one", "two", "four", "three"],
        ],
      ],
      ['type_name(graph.reachable_paths({"a": []}, ["a"]))', "set"],
      ['graph.reachable_paths({"a": []}, "a")', undefined],
      // a key that may stand for a non-string key is refused, never matched against another node
      ['graph.reachable({"1": [2]}, [1])', Error],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });
});
