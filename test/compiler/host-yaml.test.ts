/**
 * yaml.unmarshal and yaml.is_valid through the real pipeline (compile, evaluate through the SDK)
 * against OPA's answers (sigs.k8s.io/yaml: go-yaml v2 then JSON), and the same builtins as a
 * module built by `opa build` reaches them (by OPA's name, values in and out).
 */
import { describe, expect, it } from "vitest";
import { type RegoCase, regoFailures } from "./host-opa-helpers.ts";
import { builtinImpl } from "../../src/engine/policy-instance.ts";
import { hostBuiltins } from "../../src/compiler/index.ts";

const y = (text: string): string => `yaml.unmarshal(${JSON.stringify(text)})`;

describe("yaml.unmarshal", () => {
  it("reads YAML 1.1 scalars as go-yaml v2 does, where YAML 1.2 reads other values", async () => {
    const cases: RegoCase[] = [
      // 1.1 booleans (1.2 reads all of these as text)
      [y("a: yes\nb: on\nc: y\nd: No\ne: OFF\nf: n"), { a: true, b: true, c: true, d: false, e: false, f: false }],
      // octal with a leading 0 (1.2: 777), Go's 0o, hex, binary, underscores anywhere
      [
        y("a: 0777\nb: 0o17\nc: 0x1F\nd: 0b101\ne: 1_000\nf: -0777\ng: 08"),
        { a: 511, b: 15, c: 31, d: 5, e: 1000, f: -511, g: 8 },
      ],
      // timestamps and base-60 numbers stay text (go-yaml keeps an untyped timestamp as its text)
      [
        y("a: 2001-12-14\nb: 2001-12-14t21:59:43.10-05:00\nc: 190:20:30"),
        { a: "2001-12-14", b: "2001-12-14t21:59:43.10-05:00", c: "190:20:30" },
      ],
      [y("a: 1e3\nb: .5\nc: -1.25\nd: 1.2.3\ne: '0777'"), { a: 1000, b: 0.5, c: -1.25, d: "1.2.3", e: "0777" }],
      [y("a: ~\nb: null\nc:\nd: [1, x, true]"), { a: null, b: null, c: null, d: [1, "x", true] }],
      // keys: integers and booleans become text
      [`${y("1: a\ntrue: b\n-3: c")} == {"1": "a", "true": "b", "-3": "c"}`, true],
      // merge keys, anchors and aliases, duplicate keys (the last one wins)
      [y("base: &b {x: 1}\nc:\n  <<: *b\n  z: 2\nd: 1\nd: 2"), { base: { x: 1 }, c: { x: 1, z: 2 }, d: 2 }],
      // YAML 1.1's best-known surprise, as OPA has it: the key `y` is the boolean true
      [y("x: 1\ny: 2"), { true: 2, x: 1 }],
      [y("a: !!binary aGVsbG8="), { a: "hello" }],
      // only the first document; an empty text is null
      [y("a: 1\n---\nb: 2"), { a: 1 }],
      [y(""), null],
      [y("# only a comment"), null],
      // integers beyond 2^53 come back exactly
      [`${y("a: 9007199254740993")} == {"a": 9007199254740993}`, true],
      [`${y("a: -9223372036854775808")} == {"a": -9223372036854775808}`, true],
      // an integer beyond int64 and uint64 is a float for go-yaml
      [y("a: 99999999999999999999999"), { a: 1e23 }],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });

  it("is undefined where OPA errs (JSON cannot hold the document, or it is not YAML), an error when strict", async () => {
    const errs = [
      "? {x: 1}\n: 1", // a map as a key
      "? [1, 2]\n: 1", // a sequence as a key
      "~: 1", // a null key
      "a: .nan",
      "a: -.inf",
      "[1, 2, 3", // not YAML
      "a: b: c",
      "a: &x [*x]", // an alias to itself
      "18446744073709551615: x", // a uint64 key
      "a: 12345678901234567890\n[1]: x", // OPA errs on the key before Arbiter refuses the value
    ];
    expect(await regoFailures(errs.map((t): RegoCase => [y(t), undefined]))).toEqual([]);
    expect(
      await regoFailures(
        errs.map((t): RegoCase => [y(t), Error]),
        { strict: true },
      ),
    ).toEqual([]);
    expect(await regoFailures([["yaml.unmarshal(42)", undefined]])).toEqual([]);
  });

  it("refuses what it cannot answer as OPA does, failing the evaluation instead of answering otherwise", async () => {
    const cases: RegoCase[] = [
      [y("a: 12345678901234567890"), Error], // a uint64: OPA answers it exactly
      [y("1.5: a"), Error], // OPA prints a float key as a Go float32
      [y("a: !!binary /w=="), Error], // bytes that are not UTF-8
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });

  it("survives a billion-laughs document: an error, not a blown-up heap", async () => {
    const lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 12; i++) {
      const p = String.fromCharCode(96 + i);
      const n = String.fromCharCode(97 + i);
      lines.push(`${n}: &${n} [*${p},*${p},*${p},*${p},*${p},*${p},*${p},*${p},*${p}]`);
    }
    expect(await regoFailures([[y(lines.join("\n")), undefined]])).toEqual([]);
  });
});

describe("yaml.is_valid", () => {
  it("is true exactly where OPA's unmarshal succeeds", async () => {
    const cases: RegoCase[] = [
      ['yaml.is_valid("a: yes")', true],
      ['yaml.is_valid("a: 12345678901234567890")', true], // valid for OPA; only Arbiter cannot answer it
      ['yaml.is_valid("a: .nan")', false],
      ['yaml.is_valid("? [1]\\n: 1")', false],
      ['yaml.is_valid("[1, 2")', false],
      ["yaml.is_valid(1)", false],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });
});

describe("yaml.marshal", () => {
  it("quotes the strings a YAML 1.1 reader takes for something else, so OPA reads its text back", async () => {
    const cases: RegoCase[] = [
      [
        'yaml.marshal({"a": "yes", "b": "2001-12-14", "c": "190:20:30", "d": "0777", "e": "plain"})',
        'a: "yes"\nb: "2001-12-14"\nc: "190:20:30"\nd: "0777"\ne: plain\n',
      ],
      ['yaml.marshal({"n": 1})', '"n": 1\n'],
      [
        'yaml.unmarshal(yaml.marshal({"n": [{"y"}], "on": {1, 2}, "k": ["0777", "y", "~", "", "a\\nb"]})) == json.unmarshal(json.marshal({"n": [{"y"}], "on": {1, 2}, "k": ["0777", "y", "~", "", "a\\nb"]}))',
        true,
      ],
      // go-yaml reads 0o17 and 0X1F as numbers; YAML 1.1 writes them plain: refused, not answered otherwise
      ['yaml.marshal(["0o17"])', Error],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });
});

describe("a module built by opa build", () => {
  it("reaches Arbiter's yaml.unmarshal and yaml.is_valid by OPA's names, not the SDK's YAML 1.2 ones", () => {
    // the engine's host builtins, as it passes them (compiler-bridge.ts)
    const host = hostBuiltins as Record<string, (...args: unknown[]) => unknown>;
    const unmarshal = builtinImpl("yaml.unmarshal", host)!;
    expect(unmarshal("a: yes\nb: 0777")).toEqual({ a: true, b: 511 });
    expect(unmarshal("? {x: 1}\n: 1")).toBeUndefined();
    expect(unmarshal(7)).toBeUndefined();
    expect(() => unmarshal("a: 9007199254740993")).toThrow(/beyond 2\^53/);
    expect(builtinImpl("yaml.is_valid", host)!("a: .nan")).toBe(false);
    expect(builtinImpl("yaml.marshal", host)!({ n: "yes" })).toBe('"n": "yes"\n');
    // without Arbiter's host builtin of the other name, the SDK's is the fallback
    expect(builtinImpl("json.is_valid", {})).toBeTypeOf("function");
  });
});
