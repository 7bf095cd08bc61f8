/**
 * strings.render_template (host-template.ts) through the real pipeline: Go text/template's
 * answers on the subset Arbiter renders, and an evaluation error (never another text) beyond it.
 */
import { describe, expect, it } from "vitest";
import { type RegoCase, regoFailures } from "./host-opa-helpers.ts";

const r = (tpl: string, vars: string): string => `strings.render_template(${JSON.stringify(tpl)}, ${vars})`;

describe("strings.render_template", () => {
  it("renders fields, variables, if and range as Go's text/template", async () => {
    const cases: RegoCase[] = [
      [r("{{.test}}", '{"test": "hello world"}'), "hello world"],
      [r("{{.test}}", '{"test": 2023}'), "2023"],
      // Go decodes numbers as float64 and prints them with %v
      [
        r("{{.a}} {{.b}} {{.c}} {{.d}}", '{"a": 1000000, "b": 1.5, "c": 0.00001, "d": 9007199254740993}'),
        "1e+06 1.5 1e-05 9.007199254740992e+15",
      ],
      [
        r("{{range $i, $name := .names}}{{if $i}},{{end}}hello {{$name}}{{end}}", '{"names": ["rohan", "john doe"]}'),
        "hello rohan,hello john doe",
      ],
      [r("{{range $k, $v := .m}}{{$k}}={{$v}};{{end}}", '{"m": {"b": 2, "a": [1, "x"]}}'), "a=[1 x];b=2;"],
      [r("{{range .s}}<{{.}}>{{else}}none{{end}}", '{"s": {"y", "x"}}'), "<x><y>"],
      [r("{{range .s}}<{{.}}>{{else}}none{{end}}", '{"s": []}'), "none"],
      [r("{{range .missing}}x{{else}}none{{end}}", "{}"), "none"],
      [r("{{if .a}}A{{else if .b}}B{{else}}C{{end}}", '{"a": 0, "b": ""}'), "C"],
      [r("{{if .a}}A{{else if .b}}B{{else}}C{{end}}", '{"a": false, "b": {"k": null}}'), "B"],
      [r("{{.}}", '{"k": [true, null, {"z": 1}]}'), "map[k:[true <nil> map[z:1]]]"],
      [r("{{$.a.b}} {{.a.b}}", '{"a": {"b": "x"}}'), "x x"],
      [r("a  {{- .x -}}  b {{/* note */}}c", '{"x": 1}'), "a1b c"],
      // missing keys: Go's "<no value>", which OPA turns into "<undefined>" (in the text too)
      [r("test {{.foo}} {{.bar}} {{.baz}} <no value>", '{"baz": 1}'), "test <undefined> <undefined> 1 <undefined>"],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });

  it("is undefined on Go's template errors and bad operands", async () => {
    const cases: RegoCase[] = [
      [r("{{.a", "{}"), undefined],
      [r("{{if .a}}x", "{}"), undefined],
      [r("{{end}}", "{}"), undefined],
      [r("{{$nope}}", "{}"), undefined],
      [r("{{.a.b}}", '{"a": "s"}'), undefined],
      ["strings.render_template(1, {})", undefined],
      ['strings.render_template("x", [1])', undefined],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });

  it("fails the evaluation beyond the subset rather than render another text", async () => {
    const cases: RegoCase[] = [
      [r('{{printf "%d" .a}}', '{"a": 1}'), Error],
      [r("{{.a | len}}", '{"a": [1]}'), Error],
      [r("{{with .a}}x{{end}}", '{"a": 1}'), Error],
      [r("{{$x := 1}}", "{}"), Error],
      [r("{{range .n}}x{{end}}", '{"n": 3}'), Error],
      [r("{{.a}}", '{"a": null}'), Error],
      [r("{{.a.b}}", "{}"), Error],
      [r("{{/* c */ }}", "{}"), Error],
      [r(`${"{{if .a}}".repeat(150)}x${"{{end}}".repeat(150)}`, '{"a": true}'), Error],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });
});
