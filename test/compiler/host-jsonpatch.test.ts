/** json.patch (host-jsonpatch.ts) through the real pipeline, against OPA's edit-tree answers. */
import { describe, expect, it } from "vitest";
import { compile } from "../../src/compiler/index.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";
import { type RegoCase, regoFailures } from "./host-opa-helpers.ts";

/** The evaluation's error message for `r := <expr>` (fails the test when it answers). */
async function errorOf(expr: string): Promise<string> {
  const text = `package t\nr := __x if { __x := ${expr} }`;
  const { wasm } = compile([{ path: "t.rego", text }], { entrypoints: ["t/r"] });
  const policy = await loadCompiledPolicy(wasm);
  try {
    return `answered ${JSON.stringify(policy.evaluate(undefined, "t/r"))}`;
  } catch (err) {
    return (err as Error).message;
  }
}

describe("json.patch", () => {
  it("applies RFC 6902 operations as OPA", async () => {
    const cases: RegoCase[] = [
      ['json.patch({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}])', { baz: "qux", foo: "bar" }],
      ['json.patch({"foo": [1, 3]}, [{"op": "add", "path": "/foo/1", "value": 2}])', { foo: [1, 2, 3] }],
      ['json.patch({"foo": [1, 2]}, [{"op": "add", "path": "/foo/-", "value": 3}])', { foo: [1, 2, 3] }],
      ['json.patch({"a": 1, "b": 2}, [{"op": "remove", "path": "/a"}])', { b: 2 }],
      ['json.patch([1, 2, 3], [{"op": "remove", "path": "/1"}])', [1, 3]],
      ['json.patch({"a": 1}, [{"op": "replace", "path": "/a", "value": [2]}])', { a: [2] }],
      [
        'json.patch({"a": {"b": 1}, "c": {}}, [{"op": "move", "from": "/a/b", "path": "/c/d"}])',
        { a: {}, c: { d: 1 } },
      ],
      ['json.patch({"a": [1, 2]}, [{"op": "copy", "from": "/a", "path": "/b"}])', { a: [1, 2], b: [1, 2] }],
      [
        'json.patch({"a": {"x": 1, "y": [2]}}, [{"op": "test", "path": "/a", "value": {"y": [2], "x": 1}}])',
        { a: { x: 1, y: [2] } },
      ],
      // the whole document, a scalar document, escapes, array paths
      ['json.patch({"a": 1}, [{"op": "add", "path": "", "value": [1]}])', [1]],
      ['json.patch(5, [{"op": "replace", "path": "", "value": "x"}])', "x"],
      ['json.patch({"a/b": 1, "m~n": 2}, [{"op": "remove", "path": "/a~1b"}, {"op": "remove", "path": "/m~0n"}])', {}],
      ['json.patch({"a": [1]}, [{"op": "add", "path": ["a", 0], "value": 0}])', { a: [0, 1] }],
      ['json.patch({"a": 1}, [{"op": "add", "path": "//b", "value": 2}])', { a: 1, b: 2 }],
      ['json.patch([0], [{"op": "add", "path": "/+1", "value": 1}])', [0, 1]],
      // OPA's edit tree reads the array's original element when it steps into one: after removing
      // [1], stepping into /0 finds [1] again (a naive patch would give [[2, 9]])
      ['json.patch([[1], [2]], [{"op": "remove", "path": "/0"}, {"op": "add", "path": "/0/-", "value": 9}])', [[1, 9]]],
      // failed operations: undefined
      ['json.patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])', undefined],
      ['json.patch([1, 2, 3], [{"op": "add", "path": "1.2", "value": "foo"}])', undefined],
      ['json.patch([1, 2], [{"op": "add", "path": "/01", "value": 0}])', undefined],
      ['json.patch([1, 2], [{"op": "add", "path": "/3", "value": 0}])', undefined],
      ['json.patch([1, 2], [{"op": "remove", "path": "/-"}])', undefined],
      ['json.patch({"q": {}}, [{"op": "add", "path": "/a/b", "value": 1}])', undefined],
      ['json.patch({"a": 1}, [{"op": "remove", "path": "/b"}])', undefined],
      ['json.patch({"a": 1}, [{"op": "remove", "path": "/a"}, {"op": "remove", "path": "/a"}])', undefined],
      ['json.patch({"a": 1}, [{"op": "frob", "path": "/a"}])', undefined],
      ['json.patch({"a": 1}, [{"op": "add", "path": "/b"}])', undefined],
      ['json.patch({"a": 1}, [{"op": "copy", "path": "/b"}])', undefined],
      ['json.patch({"a": 1}, [{"op": "add", "path": null, "value": 1}])', undefined],
      ['json.patch({"a": 1}, ["add"])', undefined],
      ['json.patch({"a": 1}, [{"op": "remove", "path": ""}, {"op": "test", "path": "", "value": null}])', undefined],
      // patches that are not an array: a builtin error (undefined without strict builtin errors)
      ['json.patch({"a": 1}, {"op": "remove", "path": "/a"})', undefined],
      ['json.patch({"a": 1}, {{"op": "remove", "path": "/a"}})', undefined],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });

  it("a failed operation stays undefined under strict builtin errors; a bad operand fails", async () => {
    const cases: RegoCase[] = [
      ['json.patch({"a": 1}, [{"op": "test", "path": "/a", "value": 2}])', undefined],
      ['json.patch({"a": 1}, "x")', Error],
    ];
    expect(await regoFailures(cases, { strict: true })).toEqual([]);
  });

  it("fails the evaluation where Arbiter cannot answer as OPA", async () => {
    expect(await errorOf('json.patch({"a", "b"}, [{"op": "remove", "path": "a"}])')).toBe(
      "json.patch: Arbiter cannot patch a set (the answer would be a set, which the host cannot return)",
    );
    expect(await errorOf('json.patch({"a": 1}, [{"op": "add", "path": [1], "value": 2}])')).toBe(
      "json.patch: Arbiter cannot answer an object with the non-string key 1",
    );
    expect(await errorOf('json.patch({"a": 1}, [{"op": "remove", "path": ""}])')).toBe(
      "json.patch: Arbiter cannot reproduce OPA's answer when the patch removes the whole document",
    );
    // a set nested in an operand never reaches the host
    expect(await errorOf('json.patch({"a": {1}}, [{"op": "remove", "path": "/a"}])')).not.toMatch(/^answered/);
  });
});
