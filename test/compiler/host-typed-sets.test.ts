/**
 * Sets crossing the JavaScript boundary as sets (HOST_TYPED_JSON builtins, host-typed-json.ts):
 * real compile + evaluate, answers as OPA gives them, and hostile values.
 */
import { describe, expect, it } from "vitest";
import { type RegoCase, regoFailures } from "./host-opa-helpers.ts";
import { compile } from "../../src/compiler/index.ts";
import { parseTypedJson, RegoSet, typedJsonText } from "../../src/compiler/host-typed-json.ts";

describe("sets in arguments of builtins implemented in JavaScript", () => {
  it("answer as OPA, which sees a set as the sorted array of its elements in JSON", async () => {
    const cases: RegoCase[] = [
      ['sprintf("%v|%v|%v", [{3, 1, 2}, set(), {"a": {{"x"}}}])', '{1, 2, 3}|set()|{"a": {{"x"}}}'],
      ['sprintf("%s", {"a"})', undefined], // OPA: the values must be an array
      ['urlquery.encode_object({"a": {"b+1", "a"}, "c": "d"})', "a=a&a=b%2B1&c=d"],
      ['urlquery.encode_object({"a": {1}})', undefined],
      // Go's url.Values.Encode sorts keys by UTF-8 bytes: U+E000 before U+1F600
      ['urlquery.encode_object({"\u{1F600}": "a", "\uE000": "b"})', "%EE%80%80=b&%F0%9F%98%80=a"],
      ['yaml.unmarshal(yaml.marshal({"s": {3, 2, 1}, "n": [{"x"}]}))', { n: [["x"]], s: [1, 2, 3] }],
      ['json.marshal_with_options({"s": {2, 1}}, {})', '{"s":[1,2]}'],
      [
        'object.union_n([{"a": {1}, "b": {"c": {2}}}, {"b": {"d": {3}}}]) == {"a": {1}, "b": {"c": {2}, "d": {3}}}',
        true,
      ],
      ['object.union_n([{"a": {1}}, {"a": {2}}]) == {"a": {2}}', true], // sets do not merge: the right one wins
      ['object.union_n({{"a": 1}})', undefined], // OPA: an array of objects
      ['object.union_n([{"a": 1}, [1]])', undefined],
      [
        'json.unmarshal(base64url.decode(split(io.jwt.encode_sign({"alg": "HS256"}, {"aud": {"saul", "bob"}}, {"kty": "oct", "k": "AyM1"}), ".")[1]))',
        { aud: ["bob", "saul"] },
      ],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });

  it("keep a set in the answer a set (aws sign_req echoes its request)", async () => {
    const req = '{"method": "get", "url": "http://example.com", "body": {"example": {1, 2}}}';
    const cfg = '{"aws_access_key": "A", "aws_secret_access_key": "S", "aws_service": "s3", "aws_region": "us-east-1"}';
    const cases: RegoCase[] = [
      [`providers.aws.sign_req(${req}, ${cfg}, 1451311705000000000).body == {"example": {2, 1}}`, true],
      // the payload hash is of OPA's JSON text of the body, the set as an array
      [
        `providers.aws.sign_req(${req}, ${cfg}, 1451311705000000000).headers["x-amz-content-sha256"] == crypto.sha256(json.marshal({"example": [1, 2]}))`,
        true,
      ],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });

  it("carry deeply nested sets and large sets without loss", async () => {
    let deep = "1";
    for (let i = 0; i < 90; i++) deep = `{${deep}}`;
    const cases: RegoCase[] = [
      [`count([x | walk(${deep}, x)])`, 91],
      [`object.subset({"a": ${deep}}, {"a": ${deep}})`, true],
      ['count(sprintf("%v", [{x | some x in numbers.range(1, 20000)}]))', 128_894],
      ['object.subset({x | some x in numbers.range(1, 20000)}, {19999, 1, "x"})', false],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });

  it("refuse what JavaScript cannot hold rather than answer another value", async () => {
    const cases: RegoCase[] = [
      // non-string object keys are refused at the boundary
      ['sprintf("%v", [{1: "a"}])', Error],
      ["[x | walk({{1: 2}}, x)]", Error],
      // a big integer handed to a JSON implementation is refused; sprintf and walk keep it exact
      ['urlquery.encode_object({"a": [9007199254740993]})', Error],
      ["[p | walk([9007199254740993], [p, 9007199254740993])]", [[0]]],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });
});

describe("typed text", () => {
  it("is the planner's alone: a policy cannot call internal.typed_marshal", () => {
    expect(() =>
      compile([{ path: "t.rego", text: "package t\np := internal.typed_marshal({1})\n" }], { entrypoints: ["t/p"] }),
    ).toThrow("t.rego:2:6: undefined function internal.typed_marshal");
  });

  it("round-trips sets, exact integers and awkward keys", () => {
    const text = '{"__proto__":<1,-9223372036854775808,[<>]>,"k":1.5e+300,"s":"<\\"x>"}';
    const v = parseTypedJson(text);
    expect(Object.keys(v as object)).toEqual(["__proto__", "k", "s"]);
    expect((v as Record<string, unknown>).__proto__).toBeInstanceOf(RegoSet);
    expect(typedJsonText(v)).toBe(text);
  });

  it("refuses malformed text from the runtime", () => {
    for (const bad of ["<1,2", "{1:2}", "[1 2]", "tru", '"x', "1 2", "<".repeat(2000)]) {
      expect(() => parseTypedJson(bad), bad).toThrow(/typed JSON from the runtime/);
    }
  });
});
