/**
 * json.remove / json.filter / json.marshal_with_options (host-json.ts) and net.cidr_merge /
 * net.cidr_expand (host-net.ts) through the real pipeline, against OPA's answers.
 */
import { describe, expect, it } from "vitest";
import { type RegoCase, regoFailures } from "./host-opa-helpers.ts";

describe("json.remove, json.filter, json.marshal_with_options", () => {
  it("answer as OPA", async () => {
    const cases: RegoCase[] = [
      ['json.remove({"a": {"b": {"c": 7, "d": 8}}, "e": 9}, {"a/b/c", "e"})', { a: { b: { d: 8 } } }],
      // a shorter path wins over a longer one under it, in either order
      ['json.remove({"a": {"b": 7}, "c": 1}, ["a/b", "a"])', { c: 1 }],
      // array indexes shift left; "~1" is "/"
      ['json.remove({"a": [{"b": 7, "c": 8}, {"d": 9}], "x/y": 1}, {"a/0/b", "a/1", "x~1y"})', { a: [{ c: 8 }] }],
      ['json.remove({"a": 1}, [["a"]])', {}],
      ['json.remove("x", ["a"])', undefined],
      ['json.remove({"a": 1}, [1])', undefined],
      ['json.filter({"a": {"b": {"c": 7, "d": 8}}, "e": 9}, {"a/b/c", "e"})', { a: { b: { c: 7 } }, e: 9 }],
      ['json.filter({"a": [{"b": 7, "c": 8}, {"d": 9}, 3]}, ["a/0/b", "/a/1"])', { a: [{ b: 7 }, { d: 9 }] }],
      ['json.filter({"a": 7}, set())', {}],
      ['json.filter([1], ["0"])', undefined],
      [
        'json.marshal_with_options({"b": [1, {}], "a": "<&>"}, {"indent": "  ", "prefix": "> "})',
        '> {\n>   "a": "\\u003c\\u0026\\u003e",\n>   "b": [\n>     1,\n>     {}\n>   ]\n> }',
      ],
      ['json.marshal_with_options([1, "x"], {"pretty": false, "indent": "x"})', '[1,"x"]'],
      // keys in Go's order (UTF-8 bytes): U+E000 before U+1F600, which UTF-16 order would swap
      ['json.marshal_with_options({"\u{1F600}": 2, "\uE000": 1}, {"pretty": false})', '{"\uE000":1,"\u{1F600}":2}'],
      ['json.marshal_with_options([1], {"pretty": true})', "[\n\t1\n]"],
      ['json.marshal_with_options([], {"colour": true})', undefined],
      // exponent-form numbers are refused, never printed differently from OPA
      ["json.marshal_with_options([1e300], {})", Error],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });
});

describe("net.cidr_merge, net.cidr_expand", () => {
  it("answer sets as OPA", async () => {
    const cases: RegoCase[] = [
      ['net.cidr_merge(["192.0.2.112/30", "192.0.2.116/31", "192.0.2.118/31"])', ["192.0.2.112/29"]],
      ['net.cidr_merge(["192.0.2.112/31", "192.0.2.116/31", "192.0.2.118/31"])', ["192.0.2.112/31", "192.0.2.116/30"]],
      // a bare IPv4 address takes its classful mask and prints unmasked when nothing merges
      ['net.cidr_merge(["10.1.2.3"])', ["10.1.2.3/8"]],
      ['net.cidr_merge(["192.0.128.0", "192.0.129.0"])', ["192.0.128.0/23"]],
      [
        'net.cidr_merge({"fe80::/120", "192.0.2.0/24", "192.0.3.0/24", "2001:db8::1/128"})',
        ["192.0.2.0/23", "2001:db8::1/128", "fe80::/120"],
      ],
      ['net.cidr_merge(["2001:db8::/65", "2001:db8:0:0:8000::/65"])', ["2001:db8::/64"]],
      ['net.cidr_merge(["::/0", "1.2.3.4/32"])', ["::/0"]],
      ["net.cidr_merge([])", []],
      ['net.cidr_merge(["2001:db8::1"])', undefined],
      ['net.cidr_merge(["foo"])', undefined],
      ["net.cidr_merge([1])", undefined],
      ['type_name(net.cidr_merge(["1.2.3.0/24"]))', "set"],
      ['net.cidr_expand("192.168.1.1/30")', ["192.168.1.0", "192.168.1.1", "192.168.1.2", "192.168.1.3"]],
      ['net.cidr_expand("2001:db8::/127")', ["2001:db8::", "2001:db8::1"]],
      ['type_name(net.cidr_expand("10.0.0.0/32"))', "set"],
      ['net.cidr_expand("192.168.1.1/33")', undefined],
      // beyond Arbiter's bound: an error, never a partial set
      ['net.cidr_expand("10.0.0.0/8")', Error],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });

  it("net.cidr_contains_matches indexes arrays by position, sets by element, objects by key", async () => {
    const cases: RegoCase[] = [
      ['net.cidr_contains_matches("1.1.1.0/24", "1.1.1.1")', [["1.1.1.0/24", "1.1.1.1"]]],
      [
        'net.cidr_contains_matches(["1.1.2.0/24", "1.1.1.0/24"], ["1.1.1.1", "1.1.2.1"])',
        [
          [0, 1],
          [1, 0],
        ],
      ],
      [
        'net.cidr_contains_matches({"1.1.1.0/24", "1.1.2.0/24"}, {"1.1.1.1", "1.1.2.1"})',
        [
          ["1.1.1.0/24", "1.1.1.1"],
          ["1.1.2.0/24", "1.1.2.1"],
        ],
      ],
      [
        'net.cidr_contains_matches({["1.1.1.0/24", "bar"]}, {["1.1.1.1", "baz"]})',
        [
          [
            ["1.1.1.0/24", "bar"],
            ["1.1.1.1", "baz"],
          ],
        ],
      ],
      [
        'net.cidr_contains_matches({"k1": "1.1.1.1/24", "k2": ["1.1.1.2/24", 1]}, "1.1.1.128")',
        [
          ["k1", "1.1.1.128"],
          ["k2", "1.1.1.128"],
        ],
      ],
      ['type_name(net.cidr_contains_matches("1.1.1.0/24", "1.1.1.1"))', "set"],
      ['net.cidr_contains_matches(["1.1.1.0/24"], ["1.1.1.1", []])', undefined],
      ['net.cidr_contains_matches(["1.1.1.0/24"], ["x"])', undefined],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });

  it("a bare IPv6 address is an error under strict builtin errors", async () => {
    expect(await regoFailures([['net.cidr_merge(["2001:db8::1"])', Error]], { strict: true })).toEqual([]);
  });
});
