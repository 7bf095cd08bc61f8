/**
 * json.verify_schema / json.match_schema (host-jsonschema.ts) through the real pipeline, against
 * the answers of OPA's gojsonschema; what Arbiter cannot reproduce fails the evaluation.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { compile } from "../../src/compiler/index.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";
import { type RegoCase, regoFailures } from "./host-opa-helpers.ts";

/** The evaluation's error message for `r := <expr>` (fails the test when it answers). */
async function errorOf(expr: string, input?: unknown): Promise<string> {
  const text = `package t\nr := __x if { __x := ${expr} }`;
  const { wasm } = compile([{ path: "t.rego", text }], { entrypoints: ["t/r"] });
  const policy = await loadCompiledPolicy(wasm);
  try {
    const rs = policy.evaluate(input, "t/r");
    return `answered ${JSON.stringify(rs)}`;
  } catch (err) {
    return (err as Error).message;
  }
}

const err = (field: string, type: string, desc: string) => ({ desc, error: `${field}: ${desc}`, field, type });
const ID_SCHEMA = '{"properties": {"id": {"type": "integer"}}, "required": ["id"]}';

describe("json.verify_schema", () => {
  it("answers as OPA", async () => {
    const bad = (msg: string) => [false, `jsonschema: ${msg}`];
    const cases: RegoCase[] = [
      ['json.verify_schema(`{"type": "boolean"}`)', [true, null]],
      ['json.verify_schema({"type": "boolean"})', [true, null]],
      ["json.verify_schema(`true`)", [true, null]],
      [
        'json.verify_schema({"type": "unknown_type"})',
        bad(
          "has a primitive type that is NOT VALID -- given: /unknown_type/ Expected valid values are:[array boolean integer number null object string]",
        ),
      ],
      ['json.verify_schema({"type": ["string", "string"]})', bad("string type is duplicated")],
      ['json.verify_schema({"type": 5})', bad("Invalid type. Expected: type, given: string/array of strings")],
      ['json.verify_schema({"title": 5})', bad("Invalid type. Expected: string, given: title")],
      ['json.verify_schema({"required": ["a", "a"]})', bad("required items must be unique")],
      ['json.verify_schema({"required": "a"})', bad("required must be of an array")],
      ['json.verify_schema({"required": [1]})', bad("Invalid type. Expected: string, given: required")],
      ['json.verify_schema({"enum": [1, 1.0]})', bad("enum items must be unique")],
      ['json.verify_schema({"minLength": -1})', bad("minLength must be greater than or equal to 0")],
      ['json.verify_schema({"minLength": 1.5})', bad("minLength must be of an integer")],
      ['json.verify_schema({"minLength": 3, "maxLength": 2})', bad("minLength cannot be greater than maxLength")],
      ['json.verify_schema({"minimum": "1"})', bad("minimum must be of a number")],
      ['json.verify_schema({"uniqueItems": 1})', bad("uniqueItems must be of a boolean")],
      ['json.verify_schema({"properties": {"a": 5}})', bad("Expected: valid schema, given: Invalid JSON")],
      ['json.verify_schema({"properties": 5})', bad("properties must be of type object")],
      [
        'json.verify_schema({"additionalProperties": 5})',
        bad("Invalid type. Expected: boolean/valid schema, given: additionalProperties"),
      ],
      ["json.verify_schema(`5`)", bad("schema is invalid")],
      ["json.verify_schema(`{`)", bad("invalid JSON string")],
      ["json.verify_schema(5)", bad("wrong type, expected string or object")],
      ["json.verify_schema({1, 2})", bad("wrong type, expected string or object")],
      ['json.verify_schema({"exclusiveMinimum": true})', bad("exclusiveMinimum cannot be used without minimum")],
      [
        'json.verify_schema({"exclusiveMaximum": "x"})',
        bad("Invalid type. Expected: boolean/number, given: exclusiveMaximum"),
      ],
      ['json.verify_schema({"allOf": {}})', bad("allOf must be of an array")],
      ['json.verify_schema({"allOf": [5]})', bad("Expected: valid schema, given: Invalid JSON")],
      ['json.verify_schema({"not": 5})', bad("not must be of an object")],
      [
        'json.verify_schema({"propertyNames": 5})',
        bad("Invalid type. Expected: valid schema, given: patternProperties"),
      ],
      ['json.verify_schema({"dependencies": 5})', bad("dependencies must be of type object")],
      ['json.verify_schema({"dependencies": {"a": 5}})', bad("dependency must be of type schema or array of strings")],
      [
        'json.verify_schema({"items": [5]})',
        bad("Invalid type. Expected: valid schema/array of schemas, given: items"),
      ],
      [
        'json.verify_schema({"additionalItems": 5})',
        bad("Invalid type. Expected: boolean/valid schema, given: additionalItems"),
      ],
      ['json.verify_schema({"if": 5})', bad("if must be of an object")],
      // two invalid properties with the same message: whichever Go meets first, the answer is the same
      ['json.verify_schema({"properties": {"a": 1, "b": 2}})', bad("Expected: valid schema, given: Invalid JSON")],
      // unknown keywords are ignored, as gojsonschema does
      ['json.verify_schema({"x-custom": {"$ref": 5}, "default": 1})', [true, null]],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });
});

describe("json.match_schema", () => {
  it("answers as OPA", async () => {
    const cases: RegoCase[] = [
      [`json.match_schema({"id": 5}, ${ID_SCHEMA})`, [true, []]],
      [`json.match_schema(\`{"id": 5}\`, ${ID_SCHEMA})`, [true, []]],
      [`json.match_schema({"id": 5}, \`${ID_SCHEMA}\`)`, [true, []]],
      [
        `json.match_schema({"id": "foo"}, ${ID_SCHEMA})`,
        [false, [err("id", "invalid_type", "Invalid type. Expected: integer, given: string")]],
      ],
      [`json.match_schema({}, ${ID_SCHEMA})`, [false, [err("(root)", "required", "id is required")]]],
      [
        'json.match_schema({"id": 1.5}, {"properties": {"id": {"type": ["integer", "null"]}}})',
        [false, [err("id", "invalid_type", "Invalid type. Expected: [integer,null], given: number")]],
      ],
      [
        'json.match_schema({"a": {"b": [1, "x"]}}, {"properties": {"a": {"properties": {"b": {"items": {"type": "integer"}}}}}})',
        [false, [err("a.b.1", "invalid_type", "Invalid type. Expected: integer, given: string")]],
      ],
      [
        'json.match_schema({"c": "x"}, {"properties": {"c": {"enum": ["a", 1, {"k": "<"}]}}})',
        [false, [err("c", "enum", 'c must be one of the following: "a", 1, {"k":"\\u003c"}')]],
      ],
      // Ajv refuses an empty enum, so the verdict cannot be cross-checked: an error, not OPA's (none)
      ['json.match_schema("1", {"enum": []})', Error],
      ['json.match_schema([1, 2], {"const": [1, 2]})', [true, []]],
      [
        'json.match_schema([2, 1], {"const": [1, 2]})',
        [false, [err("(root)", "const", "(root) does not match: [1,2]")]],
      ],
      [
        'json.match_schema({"a": 1, "z": 2}, {"properties": {"a": {}}, "additionalProperties": false})',
        [false, [err("(root)", "additional_property_not_allowed", "Additional property z is not allowed")]],
      ],
      [
        'json.match_schema({"z": "s"}, {"additionalProperties": {"type": "number"}})',
        [false, [err("z", "invalid_type", "Invalid type. Expected: number, given: string")]],
      ],
      [
        'json.match_schema("3", {"minimum": 5})',
        [false, [err("(root)", "number_gte", "Must be greater than or equal to 5")]],
      ],
      [
        'json.match_schema("3", {"maximum": 2.5})',
        [false, [err("(root)", "number_lte", "Must be less than or equal to 2.5")]],
      ],
      [
        'json.match_schema(`"héé"`, {"minLength": 4, "maxLength": 9})',
        [false, [err("(root)", "string_gte", "String length must be greater than or equal to 4")]],
      ],
      [
        'json.match_schema([1, 2, 1], {"maxItems": 2, "uniqueItems": true})',
        [
          false,
          [
            err("(root)", "array_max_items", "Array must have at most 2 items"),
            err("(root)", "unique", "array items[0,2] must be unique"),
          ],
        ],
      ],
      [
        'json.match_schema({}, {"minProperties": 1, "required": ["a", "b"]})',
        [
          false,
          [
            err("(root)", "array_min_properties", "Must have at least 1 properties"),
            err("(root)", "required", "a is required"),
            err("(root)", "required", "b is required"),
          ],
        ],
      ],
      ["json.match_schema(`1`, `false`)", [false, [err("(root)", "false", "False always fails validation")]]],
      ["json.match_schema(`null`, `true`)", [true, []]],
      // exclusive bounds: draft 6 numbers and draft 4 booleans (the Hybrid draft takes both)
      [
        'json.match_schema("3", {"exclusiveMinimum": 3})',
        [false, [err("(root)", "number_gt", "Must be greater than 3")]],
      ],
      [
        'json.match_schema("5", {"maximum": 5, "exclusiveMaximum": true})',
        [false, [err("(root)", "number_lt", "Must be less than 5")]],
      ],
      ['json.match_schema("5", {"maximum": 5, "exclusiveMaximum": false})', [true, []]],
      // allOf merges its schemas' errors, then adds its own; both come before the type's checks
      [
        'json.match_schema(`"abc"`, {"allOf": [{"minLength": 5}, {"maxLength": 1}, {"type": "string"}]})',
        [
          false,
          [
            err("(root)", "string_gte", "String length must be greater than or equal to 5"),
            err("(root)", "string_lte", "String length must be less than or equal to 1"),
            err("(root)", "number_all_of", "Must validate all the schemas (allOf)"),
          ],
        ],
      ],
      [
        'json.match_schema("1", {"minimum": 5, "allOf": [{"maximum": 0}]})',
        [
          false,
          [
            err("(root)", "number_lte", "Must be less than or equal to 0"),
            err("(root)", "number_all_of", "Must validate all the schemas (allOf)"),
            err("(root)", "number_gte", "Must be greater than or equal to 5"),
          ],
        ],
      ],
      [
        'json.match_schema("1", {"not": {"type": "integer"}})',
        [false, [err("(root)", "number_not", "Must not validate the schema (not)")]],
      ],
      ['json.match_schema(`"a"`, {"not": {"type": "integer"}})', [true, []]],
      // if/then/else, positional items, dependencies, propertyNames
      [
        'json.match_schema("5", {"if": {"minimum": 3}, "then": {"maximum": 4}, "else": {"type": "string"}})',
        [
          false,
          [
            err("(root)", "condition_then", 'Must validate "then" as "if" was valid'),
            err("(root)", "number_lte", "Must be less than or equal to 4"),
          ],
        ],
      ],
      [
        'json.match_schema("1", {"if": {"minimum": 3}, "then": {"maximum": 4}, "else": {"type": "string"}})',
        [
          false,
          [
            err("(root)", "condition_else", 'Must validate "else" as "if" was not valid'),
            err("(root)", "invalid_type", "Invalid type. Expected: string, given: integer"),
          ],
        ],
      ],
      [
        'json.match_schema(`[1, "a", true]`, {"items": [{"type": "integer"}, {"type": "integer"}], "additionalItems": false})',
        [
          false,
          [
            err("1", "invalid_type", "Invalid type. Expected: integer, given: string"),
            err("(root)", "array_no_additional_items", "No additional items allowed on array"),
          ],
        ],
      ],
      [
        'json.match_schema(`[1, "a"]`, {"items": [{}], "additionalItems": {"type": "integer"}})',
        [false, [err("1", "invalid_type", "Invalid type. Expected: integer, given: string")]],
      ],
      [
        'json.match_schema({"a": 1}, {"dependencies": {"a": ["b", "c"]}})',
        [
          false,
          [
            err("(root)", "missing_dependency", "Has a dependency on b"),
            err("(root)", "missing_dependency", "Has a dependency on c"),
          ],
        ],
      ],
      [
        'json.match_schema({"a": 1}, {"dependencies": {"a": {"required": ["z"]}}})',
        [false, [err("(root)", "required", "z is required")]],
      ],
      [
        'json.match_schema({"ab": 1}, {"propertyNames": {"maxLength": 1}})',
        [
          false,
          [
            err("(root)", "invalid_property_name", 'Property name of "ab" does not match'),
            err("(root)", "string_lte", "String length must be less than or equal to 1"),
          ],
        ],
      ],
      // OPA's builtin errors: undefined without strict builtin errors
      ['json.match_schema({"id": "foo"}, {"properties": {"id": {"type": "unknown"}}})', undefined],
      ['json.match_schema("{", {})', undefined],
      ["json.match_schema({1}, {})", undefined],
      ["json.match_schema({}, false)", undefined],
      // the document must be a JSON string, an object or an array, as in OPA
      ['json.match_schema(3, {"minimum": 5})', undefined],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });

  it("fails the evaluation on an invalid schema under strict builtin errors", async () => {
    const cases: RegoCase[] = [
      ['json.match_schema({"id": "foo"}, {"properties": {"id": {"type": "unknown"}}})', Error],
    ];
    expect(await regoFailures(cases, { strict: true })).toEqual([]);
  });
});

describe("json schemas Arbiter cannot reproduce fail the evaluation", () => {
  const cannot = (name: string, why: string) => `${name}: Arbiter cannot reproduce OPA's answer for this call: ${why}`;

  it("refuses $ref without resolving it: nothing is fetched", async () => {
    let hits = 0;
    const server = createServer((_req, res) => {
      hits++;
      res.end('{"type": "string"}');
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/s.json`;
      expect(await errorOf(`json.match_schema({}, {"$ref": "${url}"})`)).toBe(
        cannot("json.match_schema", 'the schema keyword "$ref" is not supported'),
      );
      expect(await errorOf(`json.verify_schema({"properties": {"a": {"$ref": "${url}"}}})`)).toBe(
        cannot("json.verify_schema", 'the schema keyword "$ref" is not supported'),
      );
      expect(hits).toBe(0);
    } finally {
      server.close();
    }
  });

  it("refuses a self-referencing schema", async () => {
    expect(await errorOf('json.match_schema({"a": {}}, {"properties": {"a": {"$ref": "#"}}})')).toBe(
      cannot("json.match_schema", 'the schema keyword "$ref" is not supported'),
    );
  });

  it("refuses keywords outside the mirrored subset", async () => {
    expect(await errorOf('json.match_schema(`"a"`, {"pattern": "^a"})')).toBe(
      cannot("json.match_schema", 'the schema keyword "pattern" is not supported'),
    );
    expect(await errorOf('json.verify_schema({"$schema": "http://json-schema.org/draft-04/schema#"})')).toBe(
      cannot("json.verify_schema", 'the schema keyword "$schema" is not supported'),
    );
  });

  it("refuses answers whose order OPA leaves to Go's map iteration", async () => {
    const schema = '{"properties": {"a": {"type": "string"}, "b": {"type": "string"}}}';
    expect(await errorOf(`json.match_schema({"a": 1, "b": 2}, ${schema})`)).toBe(
      cannot("json.match_schema", "errors from two properties come in an order OPA leaves to chance"),
    );
    expect(await errorOf('json.match_schema({"a": 1, "b": 2}, {"additionalProperties": false})')).toBe(
      cannot("json.match_schema", "errors from two additional properties come in an order OPA leaves to chance"),
    );
    expect(await errorOf('json.match_schema({"a": 1, "b": 1}, {"dependencies": {"a": ["x"], "b": ["y"]}})')).toBe(
      cannot("json.match_schema", "errors from two dependencies come in an order OPA leaves to chance"),
    );
    expect(await errorOf('json.verify_schema({"properties": {"a": 1, "b": {"type": "x"}}})')).toBe(
      cannot("json.verify_schema", "two properties of the schema are invalid and OPA reports either one"),
    );
  });

  it("refuses number literals f64 cannot compare as OPA's exact rationals", async () => {
    expect(
      await errorOf('json.match_schema(`{"a": 1.0000000000000000001}`, {"properties": {"a": {"type": "integer"}}})'),
    ).toBe(cannot("json.match_schema", "the number 1.0000000000000000001 cannot be compared exactly as OPA does"));
    expect(await errorOf('json.verify_schema(`{"maximum": 1e-400}`)')).toBe(
      cannot("json.verify_schema", "the number 1e-400 cannot be compared exactly as OPA does"),
    );
    // digits inside strings are not numbers; short literals are exact enough
    const cases: RegoCase[] = [
      ['json.match_schema(`["12345678901234567890123", 1.5, 2e2, -0, 0.000]`, {"minItems": 1})', [true, []]],
    ];
    expect(await regoFailures(cases)).toEqual([]);
  });

  it("refuses a bound OPA prints in another form", async () => {
    expect(await errorOf('json.match_schema("1", {"minimum": 10000000})')).toBe(
      cannot("json.match_schema", "the bound 10000000 would be printed differently by OPA"),
    );
  });

  it("bounds hostile sizes: deep nesting and huge schemas", async () => {
    let deep = '{"type": "object"}';
    for (let i = 0; i < 80; i++) deep = `{"properties": {"a": ${deep}}}`;
    expect(await errorOf(`json.verify_schema(\`${deep}\`)`)).toBe(
      cannot("json.verify_schema", "the value is nested deeper than 64 levels"),
    );
    const huge = JSON.stringify({ enum: Array.from({ length: 100_001 }, (_, i) => i) });
    expect(await errorOf("json.verify_schema(input)", JSON.parse(huge))).toBe(
      cannot("json.verify_schema", "the value has more than 100000 nodes"),
    );
    const props = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, { type: "integer" }]));
    // a large schema within the bounds is fine
    const rs = await regoFailures([['json.match_schema({"p7": 7}, input)', [true, []]]], {
      input: { properties: props(500) },
    });
    expect(rs).toEqual([]);
    // Ajv's code generator recurses per property: too many fail cleanly, not with a stack overflow
    expect(await errorOf('json.match_schema({"p7": 7}, input)', { properties: props(5000) })).toBe(
      cannot(
        "json.match_schema",
        "Ajv cannot compile the schema to check the verdict (Maximum call stack size exceeded)",
      ),
    );
  });
});
