import { describe, expect, it } from "vitest";
import { type BuiltinCase, casesPolicy, failures, load } from "./backend-helpers.ts";

const c = (name: string, args: string[], want: unknown): BuiltinCase => ({ name, args, want });
const U = undefined;

const native: BuiltinCase[] = [
  // arithmetic and number formatting
  c("plus", ["1", "2"], 3), c("plus", ["0.1", "0.2"], 0.3), c("plus", ['"a"', "1"], U),
  c("minus", ["5", "7.5"], -2.5), c("mul", ["3", "1.5"], 4.5), c("div", ["4", "2"], 2), c("div", ["7", "2"], 3.5),
  c("div", ["1", "0"], U), c("rem", ["7", "3"], 1), c("rem", ["-7", "3"], -1), c("rem", ["7.5", "2"], U),
  c("rem", ["7", "0"], U), c("plus", ["1e3", "0"], 1000), c("plus", ["12345678901", "1"], 12345678902),
  c("plus", ["1.5e-7", "0"], 1.5e-7), c("plus", ["-0.5", "0"], -0.5),
  // exact integers beyond 2^53 (compared through their JSON text, which JavaScript would round)
  c("json.marshal", ["[9007199254740993, -9223372036854775807, 12345678901234567]"], "[9007199254740993,-9223372036854775807,12345678901234567]"),
  c("equal", ["9007199254740993", "9007199254740992"], false), c("lt", ["9007199254740992", "9007199254740993"], true),
  c("equal", ["9007199254740992", "9007199254740992.0"], true),
  c("rem", ["9007199254740993", "10"], 3), c("rem", ["1496430000123456789", "1000000000"], 123456789),
  c("to_number", ['"9007199254740993"'], 9007199254740992),
  // time.parse_rfc3339_ns is native and exact to the nanosecond
  // (answers are read through JSON.parse, which rounds both sides alike; the OPA suite's runner
  // compares these exactly as BigInt)
  // eslint-disable-next-line no-loss-of-precision
  c("time.parse_rfc3339_ns", ['"2024-01-02T03:04:05.123456789Z"'], 1704164645123456789),
  c("time.parse_rfc3339_ns", ['"2024-01-02T03:04:05+01:00"'], 1704161045000000000),
  c("time.parse_rfc3339_ns", ['"1969-12-31T23:59:59.5-00:30"'], 1799500000000), c("time.parse_rfc3339_ns", ['"2024-02-29t00:00:00z"'], 1709164800000000000),
  c("time.parse_rfc3339_ns", ['"2024-02-30T00:00:00Z"'], U), c("time.parse_rfc3339_ns", ['"2023-02-29T00:00:00Z"'], U),
  c("time.parse_rfc3339_ns", ['"2024-01-02 03:04:05Z"'], U), c("time.parse_rfc3339_ns", ['"2024-01-02T03:04:05"'], U),
  c("time.parse_rfc3339_ns", ['"2024-01-02T03:04:05.Z"'], U),
  // decimal-friendly results, as OPA's big.Float arithmetic prints them
  c("equal", ["0.30000000000000004", "0.3"], false), c("mul", ["1.1", "3"], 3.3), c("minus", ["0.3", "0.1"], 0.2),
  c("sum", ["[0.1, 0.2, 0.3]"], 0.6), c("minus", ["-0.1", "0.2"], -0.3),
  c("sum", ["[0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]"], 1), c("mul", ["0.07", "100"], 7),
  c("div", ["1", "3"], 0.3333333333333333), c("div", ["2", "3"], 0.6666666666666666), c("mul", ["1e-300", "1e-10"], 1e-310),
  // comparison across types (null < boolean < number < string < array < object < set)
  c("lt", ["1", "2"], true), c("lt", ["null", "false"], true), c("lt", ["true", "0"], true),
  c("lt", ["99", '""'], true), c("lt", ['"a"', '"b"'], true), c("lt", ['"b"', '"ab"'], false),
  c("lt", ['"z"', "[]"], true), c("lt", ["[1,2]", "[1,3]"], true), c("lt", ["[1,2]", "[1]"], false),
  c("lt", ["[9]", "{}"], true), c("lte", ["2", "2.0"], true), c("gt", ['{"a":2}', '{"a":1}'], true),
  c("gte", ['{"a":1}', '{"b":0}'], false), c("equal", ["1", "1.0"], true), c("equal", ['{"a":[1]}', '{"a":[1.0]}'], true),
  c("neq", ["[1]", "[1,1]"], true), c("equal", ['"é"', '"\\u00e9"'], true),
  // membership
  c("internal.member_2", ["2", "[1,2]"], true), c("internal.member_2", ['"x"', '{"x":1}'], false),
  c("internal.member_2", ["1", '{"x":1}'], true), c("internal.member_2", ["1", '"1"'], false),
  c("internal.member_3", ["1", '"b"', '["a","b"]'], true), c("internal.member_3", ['"x"', "1", '{"x":1}'], true),
  c("internal.member_3", ['"x"', "2", '{"x":1}'], false),
  // aggregates
  c("count", ['"héllo"'], 5), c("count", ["[1,2,3]"], 3), c("count", ['{"a":1}'], 1), c("count", ["1"], U),
  c("sum", ["[1,2.5]"], 3.5), c("sum", ["[]"], 0), c("sum", ['[1,"a"]'], U), c("max", ["[1,3,2]"], 3),
  c("max", ["[]"], U), c("min", ['[3,"a",1]'], 1), c("sort", ['[3,"a",null,[1],1]'], [null, 1, 3, "a", [1]]),
  c("sort", ["[5,4,3,2,1,0,9,8,7,6,15,14,13,12,11,10,16,17,20,19,18]"],
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]),
  // numbers
  c("abs", ["-2.5"], 2.5), c("round", ["2.5"], 3), c("round", ["-2.5"], -3), c("round", ["2.4"], 2),
  c("ceil", ["1.2"], 2), c("floor", ["-1.2"], -2), c("to_number", ['"12.5"'], 12.5), c("to_number", ['"-3"'], -3),
  c("to_number", ['"1e2"'], 100), c("to_number", ['"x1"'], U), c("to_number", ["true"], 1), c("to_number", ["null"], 0),
  c("to_number", ['""'], U), c("to_number", ['".5"'], 0.5), c("to_number", ['"5."'], 5), c("to_number", ['"-.5e1"'], -5),
  c("to_number", ['"+7"'], 7), c("to_number", ['"--7"'], U), c("to_number", ['"."'], U), c("to_number", ['" 1"'], U),
  c("to_number", ['"1.e2"'], 100),
  // strings
  c("concat", ['", "', '["a","b","c"]'], "a, b, c"), c("concat", ['"-"', "[]"], ""), c("concat", ['"-"', "[1]"], U),
  c("contains", ['"abcdef"', '"cde"'], true), c("contains", ['"abc"', '""'], true), c("contains", ['"abc"', '"x"'], false),
  c("startswith", ['"abc"', '"ab"'], true), c("startswith", ['"abc"', '"abcd"'], false),
  c("endswith", ['"abc"', '"bc"'], true), c("endswith", ['"abc"', '"a"'], false),
  c("lower", ['"AbC-Ü"'], "abc-ü"), c("upper", ['"abc"'], "ABC"), c("upper", ['"héllo ß ǆ ı ſ"'], "HÉLLO ß Ǆ I S"),
  c("lower", ['"ÀÉÎ ΣΑΣ ДОМ Ǆ"'], "àéî σασ дом ǆ"), c("upper", ['"straße ȿ"'], "STRAßE Ȿ"),
  c("trim", ['"xxhixx"', '"x"'], "hi"), c("trim", ['"éaé"', '"é"'], "a"), c("trim_left", ['"xxhix"', '"x"'], "hix"),
  c("trim_right", ['"xhixx"', '"x"'], "xhi"), c("trim_space", ['" \\t hi \\n"'], "hi"),
  c("trim_prefix", ['"prefix-x"', '"prefix-"'], "x"), c("trim_prefix", ['"x"', '"y"'], "x"),
  c("trim_suffix", ['"a.rego"', '".rego"'], "a"),
  c("split", ['"a,b,,c"', '","'], ["a", "b", "", "c"]), c("split", ['""', '","'], [""]), c("split", ['"añb"', '""'], ["a", "ñ", "b"]),
  c("replace", ['"a-b-c"', '"-"', '"+"'], "a+b+c"), c("replace", ['"ab"', '""', '"."'], ".a.b."),
  c("substring", ['"héllo"', "1", "3"], "éll"), c("substring", ['"hello"', "1", "-1"], "ello"),
  c("substring", ['"hello"', "10", "2"], ""), c("substring", ['"hello"', "-1", "2"], U), c("substring", ['"hello"', "3", "100"], "lo"),
  c("indexof", ['"héllo"', '"l"'], 2), c("indexof", ['"abc"', '"x"'], -1), c("indexof", ['"abc"', '""'], U),
  // objects and arrays
  c("object.get", ['{"a":1}', '"a"', "0"], 1), c("object.get", ['{"a":1}', '"b"', "0"], 0),
  c("object.get", ['{"a":{"b":[5,6]}}', '["a","b",1]', "0"], 6), c("object.get", ['{"a":1}', '["a","b"]', '"d"'], "d"),
  c("object.get", ["[]", '"a"', "0"], U),
  c("object.keys", ['{"b":1,"a":2}'], ["a", "b"]),
  c("object.union", ['{"a":{"x":1,"y":2},"b":1}', '{"a":{"y":3},"c":4}'], { a: { x: 1, y: 3 }, b: 1, c: 4 }),
  c("object.remove", ['{"a":1,"b":2,"c":3}', '["a","c"]'], { b: 2 }), c("object.remove", ['{"a":1}', '{"a":0}'], {}),
  c("array.concat", ["[1]", "[2,3]"], [1, 2, 3]), c("array.slice", ["[1,2,3,4]", "1", "3"], [2, 3]),
  c("array.slice", ["[1,2,3]", "-5", "10"], [1, 2, 3]), c("array.slice", ["[1,2,3]", "2", "1"], []),
  // types
  c("is_string", ['"a"'], true), c("is_string", ["1"], false), c("is_number", ["1"], true), c("is_boolean", ["false"], true),
  c("is_array", ["[]"], true), c("is_object", ["{}"], true), c("is_set", ["[]"], false), c("is_null", ["null"], true),
  c("type_name", ["null"], "null"), c("type_name", ["1.5"], "number"), c("type_name", ['{"a":1}'], "object"),
  // encoding
  c("json.marshal", ['{"b":[1,2.5,"x\\"y"],"a":null}'], '{"a":null,"b":[1,2.5,"x\\"y"]}'),
  c("json.marshal", ["[2.0, 3.50, 1e21, -0, 1.5e-7, 123456789012, 0.1, 1e300, -4.25e-300]"],
    "[2,3.5,1e+21,0,1.5e-7,123456789012,0.1,1e+300,-4.25e-300]"),
  c("json.marshal", ['{"b":{"z":1,"a":2},"a":[]}'], '{"a":[],"b":{"a":2,"z":1}}'),
  c("array.reverse", ['[1,"b",[3]]'], [[3], "b", 1]), c("array.reverse", ['"x"'], U),
  c("strings.reverse", ['"héllo"'], "olléh"), c("object.filter", ['{"a":1,"b":2,"c":3}', '["a","c","z"]'], { a: 1, c: 3 }),
  c("numbers.range", ["1", "4"], [1, 2, 3, 4]), c("numbers.range", ["2", "-1"], [2, 1, 0, -1]), c("numbers.range", ["1", "1.5"], U),
  c("json.unmarshal", ['"{\\"a\\": [1, true]}"'], { a: [1, true] }), c("json.unmarshal", ['"{bad"'], U),
];

const host: BuiltinCase[] = [
  c("regex.match", ['"^a.c$"', '"abc"'], true), c("regex.match", ['"^a.c$"', '"abd"'], false),
  c("regex.match", ['"(?i)^ABC$"', '"abc"'], true), c("regex.match", ['"(?P<x>a+)b"', '"aab"'], true),
  c("regex.match", ['"("', '"x"'], U), c("regex.match", ["1", '"x"'], U),
  // RE2 syntax translated for the JS engine
  c("regex.match", [JSON.stringify("^[[:digit:]]+$"), '"123"'], true), c("regex.match", [JSON.stringify("\\Aabc\\z"), '"abc\\n"'], false),
  c("regex.match", [JSON.stringify("^a(?i:B)c$"), '"aBc"'], true), c("regex.match", [JSON.stringify("^a(?i:B)c$"), '"ABC"'], false),
  c("regex.match", [JSON.stringify("^\\p{Greek}+$"), '"αβγ"'], true), c("regex.match", [JSON.stringify("^a.c$"), '"a\\rc"'], true),
  c("regex.match", [JSON.stringify("^a.c$"), '"a\\nc"'], false), c("regex.match", [JSON.stringify("(?s)^a.c$"), '"a\\nc"'], true),
  c("regex.match", [JSON.stringify("^\\Q.*\\E$"), '".*"'], true), c("regex.match", [JSON.stringify("^\\s$"), '"\u00a0"'], false),
  c("glob.match", ['"*.github.com"', "[]", '"api.github.com"'], true),
  c("glob.match", ['"*.github.com"', "[]", '"a.b.github.com"'], false),
  c("glob.match", ['"**.github.com"', "[]", '"a.b.github.com"'], true),
  c("glob.match", ['"*:read"', '[":"]', '"repo.x:read"'], true),
  c("glob.match", ['"*"', "null", '"a.b"'], true),
  c("glob.match", ['"file-[0-9].{txt,md}"', "[]", '"file-3.md"'], true),
  c("glob.match", ['"file-[!0-9].txt"', "[]", '"file-3.txt"'], false),
  c("glob.match", ['"a?c"', "[]", '"a.c"'], false),
  c("format_int", ["255", "16"], "ff"), c("format_int", ["-5.9", "2"], "-101"), c("format_int", ["1", "3"], U),
  c("strings.replace_n", ['{"a":"1","b":"2"}', '"abcab"'], "12c12"),
  c("crypto.sha256", ['"abc"'], "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
  c("units.parse_bytes", ['"10KB"'], 10000), c("units.parse_bytes", ['"1.5Ki"'], 1536), c("units.parse_bytes", ['"12"'], 12),
  c("units.parse_bytes", ['"1x"'], U),
  c("base64.encode", ['"héllo"'], "aMOpbGxv"), c("base64.decode", ['"aMOpbGxv"'], "héllo"), c("base64.decode", ['"a"'], U),
  c("sprintf", ['"%s has %d items"', '["cart", 3]'], "cart has 3 items"),
  c("sprintf", ['"%v / %v / %.2f"', '["x", 1.5, 3.14159]'], "x / 1.5 / 3.14"),
  c("sprintf", ['"%d%% done, id %03d, %-4s|%5s|%x|%X|%o|%b"', '[50, 7, "ab", "cd", 255, 255, 8, 5]'],
    "50% done, id 007, ab  |   cd|ff|FF|10|101"),
  c("sprintf", ['"%v %v %v %v"', '[["a", 1], {"k": true, "a": null}, true, null]'], '["a", 1] {"a": null, "k": true} true null'),
  c("sprintf", ['"%d %s %t"', '[1.5, 2, true]'], "%!d(float64=1.5) %!s(int=2) %!t(string=true)"),
  c("sprintf", ['"%s %s"', '["a"]'], "a %!s(MISSING)"), c("sprintf", ['"%s"', '["a", 1]'], "a%!(EXTRA int=1)"),
  c("sprintf", ['"%v %v %v %e %g %+d %q %.3s %8.3f"', '[1234567.5, 0.00001, 100000.5, 1.5, 0.5, 3, "q\\"", "abcdef", 3.14159]'],
    '1.2345675e+06 1e-05 100000.5 1.500000e+00 0.5 +3 "q\\"" abc    3.142'),
  c("sprintf", ["1", "[]"], U),
  c("regex.replace", ['"a1b22c"', '"[0-9]+"', '"#"'], "a#b#c"), c("regex.replace", ['"ab"', '"(a)(b)"', '"${2}$1"'], "ba"),
  c("regex.find_n", ['"[0-9]+"', '"a1b22c333"', "2"], ["1", "22"]), c("regex.find_n", ['"[0-9]+"', '"a1b22c333"', "-1"], ["1", "22", "333"]),
  c("regex.is_valid", ['"a("'], false), c("regex.is_valid", ['"a+"'], true),
  c("base64url.encode", ['"a?b"'], "YT9i"), c("base64url.encode", ['"ÿ"'], "w78="), c("base64url.decode", ['"w78"'], "ÿ"),
  c("hex.encode", ['"hi"'], "6869"), c("hex.decode", ['"6869"'], "hi"), c("hex.decode", ['"686"'], U),
  c("urlquery.encode", ['"a b&c=d/é"'], "a+b%26c%3Dd%2F%C3%A9"), c("urlquery.decode", ['"a+b%26c"'], "a b&c"),
  c("crypto.md5", ['"abc"'], "900150983cd24fb0d6963f7d28e17f72"), c("crypto.sha1", ['"abc"'], "a9993e364706816aba3e25717850c26c9cd0d89d"),
  // implemented by the SDK
  c("json.is_valid", ['"{}"'], true), c("regex.split", ['"[,;]"', '"a,b;c"'], ["a", "b", "c"]), c("yaml.unmarshal", ['"a: [1, x]"'], { a: [1, "x"] }),
];

describe("builtins", () => {
  it("native builtins match OPA on a table of cases", async () => {
    const p = await load(casesPolicy(native));
    expect(failures(p, native)).toEqual([]);
  });

  it("host builtins match OPA on a table of cases", async () => {
    const hostNames = [...new Set(host.map((h) => h.name))];
    const p = await load(casesPolicy(host, hostNames));
    expect(failures(p, host)).toEqual([]);
  });

  it("time.now_ns is stable within one evaluation and close to the clock", async () => {
    const p = await load(casesPolicy([c("time.now_ns", [], 0)], ["time.now_ns"]));
    const before = Date.now() * 1e6;
    const [{ result }] = p.evaluate({}, "c0") as [{ result: number }];
    expect(result).toBeGreaterThanOrEqual(before - 1e6);
    expect(result).toBeLessThanOrEqual(Date.now() * 1e6 + 1e6);
  });
});
