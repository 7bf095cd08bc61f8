/**
 * OPA's graphql.* builtins (host-graphql*.ts) through the real pipeline: compiled Rego, the
 * wasm module and the host. Expected ASTs are OPA's (gqlparser's Go structs, pruned); inputs
 * Arbiter cannot answer exactly must fail the evaluation with an error that says so.
 */
import { describe, expect, it } from "vitest";
import { compile } from "../../src/compiler/index.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";
import { type RegoCase, regoFailures } from "./host-opa-helpers.ts";

const q = (s: string) => JSON.stringify(s);

/** Object keys in Rego's (sorted) order: regoFailures compares JSON texts. */
const canon = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(canon)
    : v !== null && typeof v === "object"
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, canon((v as Record<string, unknown>)[k])]),
        )
      : v;

/** regoFailures with wants in Rego's key order. */
const failures = (cases: RegoCase[], options?: { strict?: boolean; input?: unknown }) =>
  regoFailures(
    cases.map(([e, w]) => [e, canon(w)] as const),
    options,
  );

/** The message an evaluation of `expr` fails with (undefined if it does not fail). */
async function failure(expr: string, input?: unknown, strict = false): Promise<string | undefined> {
  const text = `package t\nr := __x if { __x := ${expr} }`;
  const { wasm } = compile([{ path: "t.rego", text }], { entrypoints: ["t/r"], strictBuiltinErrors: strict });
  const policy = await loadCompiledPolicy(wasm);
  try {
    policy.evaluate(input, "t/r");
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

const SCHEMA = `
  type Query { hero(episode: Episode): Character, search(text: String!): [Result] }
  enum Episode { NEWHOPE EMPIRE }
  interface Character { id: ID!, name: String }
  type Human implements Character { id: ID!, name: String, height: Float }
  type Droid implements Character { id: ID!, name: String, friends: [Character] }
  union Result = Human | Droid
`;

describe("graphql.parse_query, graphql.parse_schema", () => {
  it("answer gqlparser's AST as OPA prunes it", async () => {
    const cases: RegoCase[] = [
      [
        `graphql.parse_query(${q('{ a: b(x: 1, y: 2.5, s: "t", on: true, n: null, e: E, l: [$v], o: {k: """z"""}) }')})`,
        {
          Operations: [
            {
              Name: "",
              Operation: "query",
              SelectionSet: [
                {
                  Alias: "a",
                  Name: "b",
                  Arguments: [
                    { Name: "x", Value: { ExpectedTypeHasDefault: false, Kind: 1, Raw: "1" } },
                    { Name: "y", Value: { ExpectedTypeHasDefault: false, Kind: 2, Raw: "2.5" } },
                    { Name: "s", Value: { ExpectedTypeHasDefault: false, Kind: 3, Raw: "t" } },
                    { Name: "on", Value: { ExpectedTypeHasDefault: false, Kind: 5, Raw: "true" } },
                    { Name: "n", Value: { ExpectedTypeHasDefault: false, Kind: 6, Raw: "null" } },
                    { Name: "e", Value: { ExpectedTypeHasDefault: false, Kind: 7, Raw: "E" } },
                    {
                      Name: "l",
                      Value: {
                        Children: [{ Name: "", Value: { ExpectedTypeHasDefault: false, Kind: 0, Raw: "v" } }],
                        ExpectedTypeHasDefault: false,
                        Kind: 8,
                        Raw: "",
                      },
                    },
                    {
                      Name: "o",
                      Value: {
                        Children: [{ Name: "k", Value: { ExpectedTypeHasDefault: false, Kind: 4, Raw: "z" } }],
                        ExpectedTypeHasDefault: false,
                        Kind: 9,
                        Raw: "",
                      },
                    },
                  ],
                },
              ],
            },
          ],
        },
      ],
      [
        `graphql.parse_query(${q("query Q($v: [Int!]! = [1] @d) @op { ...F ... on T @i { x } ... { y } } fragment F on T { z }")})`,
        {
          Fragments: [{ Name: "F", SelectionSet: [{ Alias: "z", Name: "z" }], TypeCondition: "T" }],
          Operations: [
            {
              Directives: [{ Location: "", Name: "op" }],
              Name: "Q",
              Operation: "query",
              SelectionSet: [
                { Name: "F" },
                {
                  Directives: [{ Location: "", Name: "i" }],
                  SelectionSet: [{ Alias: "x", Name: "x" }],
                  TypeCondition: "T",
                },
                { SelectionSet: [{ Alias: "y", Name: "y" }], TypeCondition: "" },
              ],
              VariableDefinitions: [
                {
                  DefaultValue: {
                    Children: [{ Name: "", Value: { ExpectedTypeHasDefault: false, Kind: 1, Raw: "1" } }],
                    ExpectedTypeHasDefault: false,
                    Kind: 8,
                    Raw: "",
                  },
                  Directives: [{ Location: "", Name: "d" }],
                  Type: { Elem: { NamedType: "Int", NonNull: true }, NamedType: "", NonNull: true },
                  Used: false,
                  Variable: "v",
                },
              ],
            },
          ],
        },
      ],
      // documents without definitions: gqlparser answers an empty document
      [`graphql.parse_query(${q("  # nothing\n")})`, {}],
      [
        `graphql.parse_query(${q('{ a(s: """\r\n  x\r\n    y\r  z""") }')})`,
        {
          Operations: [
            {
              Name: "",
              Operation: "query",
              SelectionSet: [
                {
                  Alias: "a",
                  Arguments: [{ Name: "s", Value: { ExpectedTypeHasDefault: false, Kind: 4, Raw: "x\n  y\nz" } }],
                  Name: "a",
                },
              ],
            },
          ],
        },
      ],
      [`graphql.parse_schema("")`, {}],
      [
        `graphql.parse_schema(${q('"""D""" schema { query: Q } extend schema @x directive @d(a: Int = 1) repeatable on FIELD | QUERY input I { f: [String!] = ["s"] } enum E { A @deprecated } union U = | A | B scalar S')})`,
        {
          Definitions: [
            {
              BuiltIn: false,
              Description: "",
              Fields: [
                {
                  DefaultValue: {
                    Children: [{ Name: "", Value: { ExpectedTypeHasDefault: false, Kind: 3, Raw: "s" } }],
                    ExpectedTypeHasDefault: false,
                    Kind: 8,
                    Raw: "",
                  },
                  Description: "",
                  Name: "f",
                  Type: { Elem: { NamedType: "String", NonNull: true }, NamedType: "", NonNull: false },
                },
              ],
              Kind: "INPUT_OBJECT",
              Name: "I",
            },
            {
              BuiltIn: false,
              Description: "",
              EnumValues: [{ Description: "", Directives: [{ Location: "", Name: "deprecated" }], Name: "A" }],
              Kind: "ENUM",
              Name: "E",
            },
            { BuiltIn: false, Description: "", Kind: "UNION", Name: "U", Types: ["A", "B"] },
            { BuiltIn: false, Description: "", Kind: "SCALAR", Name: "S" },
          ],
          Directives: [
            {
              Arguments: [
                {
                  DefaultValue: { ExpectedTypeHasDefault: false, Kind: 1, Raw: "1" },
                  Description: "",
                  Name: "a",
                  Type: { NamedType: "Int", NonNull: false },
                },
              ],
              Description: "",
              IsRepeatable: true,
              Locations: ["FIELD", "QUERY"],
              Name: "d",
            },
          ],
          Schema: [{ Description: "D", OperationTypes: [{ Operation: "query", Type: "Q" }] }],
          SchemaExtension: [{ Description: "", Directives: [{ Location: "", Name: "x" }] }],
        },
      ],
    ];
    expect(await failures(cases)).toEqual([]);
  });

  it("make gqlparser's syntax errors and wrong operands builtin errors", async () => {
    const cases: RegoCase[] = [
      [`graphql.parse_query("{")`, undefined],
      [`graphql.parse_query("{ a(x: 1.) }")`, undefined], // both lexers want a digit after the dot
      [`graphql.parse_query("{ a {} }")`, undefined], // graphql-js 17 accepts empty selections
      [`graphql.parse_query("{}")`, undefined],
      [`graphql.parse_query(${q('"op" query { a }')})`, undefined], // graphql-js 17 accepts descriptions here
      [`graphql.parse_query("{ ...a(x: 1) }")`, undefined],
      [`graphql.parse_query("type A { a: Int }")`, undefined],
      [`graphql.parse_schema("{ a }")`, undefined],
      [`graphql.parse_schema("type A {}")`, undefined],
      [`graphql.parse_query("query ($a: Int = $b) { a }")`, undefined], // both parsers: no variables in defaults
      [`graphql.parse_schema("extend interface I implements J")`, undefined], // gqlparser: no implements here
      [`graphql.parse_query(5)`, undefined],
      [`graphql.parse_schema({"Definitions": []})`, undefined],
      [`graphql.parse("{ a }", 1)`, undefined],
      [`graphql.is_valid(1, "type Query { a: Int }")`, false],
      [`graphql.is_valid("{", "type Query { a: Int }")`, false],
      [`graphql.schema_is_valid([])`, false],
      [`graphql.parse_and_verify("{", "type Query { a: Int }")`, [false, {}, {}]],
    ];
    expect(await failures(cases)).toEqual([]);
    expect(await failure(`graphql.parse_query("{")`, undefined, true)).toMatch(/^graphql\.parse_query: builtin error/);
  });
});

describe("graphql.is_valid, schema_is_valid, parse, parse_and_verify", () => {
  it("validate as gqlparser", async () => {
    const s = q(SCHEMA);
    const cases: RegoCase[] = [
      [`graphql.schema_is_valid(${s})`, true],
      [`graphql.is_valid("{ hero(episode: EMPIRE) { id ... on Droid { friends { name } } } }", ${s})`, true],
      [`graphql.is_valid("{ hero(episode: JEDI) { id } }", ${s})`, false],
      [`graphql.is_valid("{ hero { id nope } }", ${s})`, false],
      [`graphql.is_valid("{ hero }", ${s})`, false], // ScalarLeafs
      [`graphql.is_valid("{ search { __typename ... on Human { height } } }", ${s})`, false], // text is required
      [`graphql.is_valid(${q('{ search(text: "x") { __typename ... on Human { height } } }')}, ${s})`, true],
      [`graphql.is_valid("query($e: Episode) { hero(episode: $e) { id } }", ${s})`, true],
      [`graphql.is_valid("query($e: Episode, $u: Int) { hero(episode: $e) { id } }", ${s})`, false],
      [`graphql.is_valid("mutation { x }", ${s})`, false],
      [`graphql.is_valid("", ${s})`, true],
      [`graphql.is_valid("{ hero { id id } hero { name } }", ${s})`, true], // fields merge
      [`graphql.is_valid("{ hero { id: name id } }", ${s})`, false], // but not under one name
      // gqlparser turns an extension of an unknown type into its definition
      [`graphql.is_valid("{ a }", "extend type Query { a: Int }")`, true],
      [`graphql.schema_is_valid("type Query { a: Foo }")`, false],
      [`graphql.schema_is_valid("type Query { a: Int } type Query { b: Int }")`, false],
      [`graphql.schema_is_valid("schema { query: Q }")`, false],
      [`graphql.schema_is_valid("interface I { a: Int } type Query implements I { b: Int }")`, false],
      [`graphql.schema_is_valid("type Query { a: Int } enum E { A } extend enum E { B } scalar String")`, false],
      [`graphql.schema_is_valid("type Query { __a: Int }")`, false],
      [`graphql.schema_is_valid("type Query { a: Int @skip(if: true) }")`, false],
      [`graphql.schema_is_valid("type Query { a: Int @deprecated } directive @deprecated on FIELD")`, true],
      [`graphql.parse("{ nope }", ${s})`, undefined],
      [`graphql.parse_and_verify("{ nope }", ${s})`, [false, {}, {}]],
      [
        `graphql.parse("{ a }", "type Query { a: Int }")`,
        [
          { Operations: [{ Name: "", Operation: "query", SelectionSet: [{ Alias: "a", Name: "a" }] }] },
          {
            Definitions: [
              {
                BuiltIn: false,
                Description: "",
                Fields: [{ Description: "", Name: "a", Type: { NamedType: "Int", NonNull: false } }],
                Kind: "OBJECT",
                Name: "Query",
              },
            ],
          },
        ],
      ],
    ];
    expect(await failures(cases)).toEqual([]);
    expect(await failure(`graphql.parse("{ nope }", ${s})`, undefined, true)).toMatch(/^graphql\.parse: builtin error/);
  });

  it("read AST objects as OPA's JSON round trip into gqlparser's structs", async () => {
    const s = `{"Definitions": [{"Kind": "OBJECT", "Name": "Query", "Fields": [{"Name": "a", "Type": {"NamedType": "Int"}}]}]}`;
    const cases: RegoCase[] = [
      [`graphql.is_valid(graphql.parse_query("{ a }"), graphql.parse_schema("type Query { a: Int }"))`, true],
      [`graphql.is_valid("{ a @deprecated }", graphql.parse_schema("type Query { a: Int }"))`, false], // text query
      [
        `graphql.is_valid({"Operations": [{"Operation": "query", "SelectionSet": [{"Alias": "a", "Name": "a"}]}]}, ${s})`,
        true,
      ],
      [
        `graphql.is_valid({"Operations": [{"Operation": "query", "SelectionSet": [{"Alias": "b", "Name": "b"}]}]}, ${s})`,
        false,
      ],
      // unknown keys are ignored; the answer is the struct marshalled back (zero values, pruned)
      [
        `graphql.parse({"Operations": [{"Operation": "query", "SelectionSet": [{"Alias": "a", "Name": "a", "Extra": 1}]}]}, ${s})[0]`,
        { Operations: [{ Name: "", Operation: "query", SelectionSet: [{ Alias: "a", Name: "a" }] }] },
      ],
      // a value of the wrong JSON type is Go's unmarshal error
      [`graphql.schema_is_valid({"Definitions": [{"Kind": 1}]})`, false],
      [`graphql.parse({"Operations": "x"}, ${s})`, undefined],
      [
        `graphql.is_valid({"Operations": [{"Operation": "query", "VariableDefinitions": [{"Variable": "v", "Type": {"NamedType": "Int"}, "DefaultValue": {"Kind": 1.5}}], "SelectionSet": [{"Alias": "a", "Name": "a"}]}]}, ${s})`,
        false,
      ],
    ];
    expect(await failures(cases)).toEqual([]);
    expect(
      await failure(
        `graphql.is_valid({"Operations": [{"Operation": "query", "SelectionSet": [{"alias": "a", "Name": "a"}]}]}, ${s})`,
      ),
    ).toContain(
      "graphql.is_valid: Arbiter does not support keys that differ from gqlparser's field names only in case in GraphQL AST objects (at QueryDocument.Operations[0].SelectionSet[0].alias)",
    );
    expect(
      await failure(
        `graphql.is_valid({"Operations": [{"Operation": "query", "SelectionSet": [{"Alias": 5, "Name": "a"}]}]}, ${s})`,
      ),
    ).toContain("graphql.is_valid: Arbiter does not support selections that do not unmarshal as a Field");
    expect(await failure(`graphql.is_valid(graphql.parse_query("{ a @skip(if: true) @deprecated }"), ${s})`)).toContain(
      "graphql.is_valid: Arbiter does not support a misplaced directive in a GraphQL AST object",
    );
    expect(await failure(`graphql.schema_is_valid({"Definitions": [], 1: "x"})`)).toContain(
      'graphql.schema_is_valid: Arbiter does not support the AST object key "1", which may stand for a non-string key',
    );
    // Go folds U+017F to "s" when it matches keys
    expect(
      await failure(
        `graphql.is_valid({"Operations": [{"Operation": "query", "SelectionSet": [{"Alia\u017f": "a", "Name": "a"}]}]}, ${s})`,
      ),
    ).toContain("keys that differ from gqlparser's field names only in case");
    expect(
      await failure(
        `graphql.schema_is_valid({"Definitions": [{"Kind": "OBJECT", "Name": "Q", "Fields": [{"Name": "a"}]}]})`,
      ),
    ).toContain(
      "graphql.schema_is_valid: Arbiter does not support a missing type or value in GraphQL AST objects (at SchemaDocument.Definitions[0].Fields[0].Type)",
    );
  });
});

describe("graphql.* on input Arbiter cannot answer exactly or hostile input", () => {
  const nested = (n: number) => `{ a ${"{ a ".repeat(n - 1)}${"}".repeat(n)}`;

  it("fails the evaluation with an error naming the limit", async () => {
    expect(await failure("graphql.parse_query(input.q)", { q: nested(129) })).toContain(
      "graphql.parse_query: Arbiter does not support GraphQL nested deeper than 128 levels",
    );
    expect(
      await failure("graphql.is_valid(input.q, input.s)", { q: `{${"[".repeat(5000)}`, s: "type Query { a: Int }" }),
    ).toContain("graphql.is_valid: Arbiter does not support GraphQL nested deeper than 128 levels");
    expect(await failure("graphql.parse_query(input.q)", { q: `{ a(s: "${"x".repeat(1 << 20)}") }` })).toContain(
      "graphql.parse_query: Arbiter does not support GraphQL text longer than 1048576 characters",
    );
    expect(await failure("graphql.parse_query(input.q)", { q: `{ ${"a ".repeat(100_001)}}` })).toContain(
      "graphql.parse_query: Arbiter does not support GraphQL text of more than 100000 tokens",
    );
    expect(await failure("graphql.parse_query(input.q)", { q: '{ a(s: "\\u{1F600}") }' })).toContain(
      "graphql.parse_query: Arbiter does not support \\u{...} or surrogate \\u escapes",
    );
    expect(await failure("graphql.parse_query(input.q)", { q: '{ a(s: "\\uD83D\\uDE00") }' })).toContain(
      "surrogate \\u escapes",
    );
    expect(await failure("graphql.parse_query(input.q)", { q: '{ a(s: "x\u0001") }' })).toContain(
      "graphql.parse_query: Arbiter does not support control characters or U+FEFF in GraphQL text",
    );
    expect(await failure(`graphql.parse_query("{ a(x: [1abc]) }")`)).toContain(
      "graphql.parse_query: Arbiter does not support a GraphQL number followed by a name or a dot",
    );
    expect(await failure(`graphql.parse_schema("enum E { true }")`)).toContain(
      "graphql.parse_schema: Arbiter does not support enum values named true, false or null",
    );
    expect(await failure(`graphql.is_valid("{ __schema { types { name } } }", "type Query { a: Int }")`)).toContain(
      "graphql.is_valid: Arbiter does not support introspection queries (__schema, __type)",
    );
    expect(await failure(`graphql.is_valid("{ a @defer }", "type Query { a: Int }")`)).toContain(
      "graphql.is_valid: Arbiter does not support the directive @defer",
    );
    expect(await failure(`graphql.schema_is_valid("type Query { a: Int } input I @oneOf { a: Int }")`)).toContain(
      "graphql.schema_is_valid: Arbiter does not support the directive @oneOf in GraphQL schemas",
    );
    // syntax errors of graphql-js on text gqlparser may accept are refused, not made undefined
    expect(await failure(`graphql.parse_query(${q('{ ... "on" T { a } }')})`)).toContain(
      'graphql.parse_query: Arbiter does not support this GraphQL syntax error near the string "on"',
    );
    expect(await failure(`graphql.parse_schema("schema @d")`)).toContain(
      'graphql.parse_schema: Arbiter does not support this GraphQL syntax error near the name "schema"',
    );
    expect(await failure(`graphql.parse_query("{ f() }")`)).toContain(
      "graphql.parse_query: Arbiter does not support this GraphQL syntax error near an empty () (OPA's gqlparser may accept the text)",
    );
    expect(await failure(`graphql.parse_query("query ($a: Int @d(x: $b)) { a }")`)).toContain(
      "graphql.parse_query: Arbiter does not support variables in these GraphQL directive arguments",
    );
    // graphql-js 17 stops at a work budget and reports it as an error; gqlparser has none
    expect(
      await failure(`graphql.is_valid(input.q, "type Query { a: Int }")`, { q: `{ ${"a ".repeat(1000)}}` }),
    ).toContain(
      "graphql.is_valid: Arbiter does not support validating a GraphQL query this large (graphql-js stopped at its work budget)",
    );
    expect(await failure(`graphql.is_valid("{ a(x: 1e400) }", "type Query { a(x: Float): Int }")`)).toContain(
      'graphql.is_valid: Arbiter does not support the GraphQL Float value "1e400"',
    );
    // non-strict mode too: an Arbiter limit is never turned into undefined
    expect(await failure("graphql.parse_query(input.q)", { q: nested(129) }, false)).toBeDefined();
  });

  it("answers at the nesting limit without exhausting the stack", async () => {
    const schema = "type Query { a: Query, b: Int }";
    const deep = `{ a ${"{ a ".repeat(126)}{ b }${"}".repeat(127)}`;
    expect(await regoFailures([[`graphql.is_valid(input.q, ${q(schema)})`, true]], { input: { q: deep } })).toEqual([]);
    let obj: unknown = { Alias: "b", Name: "b" };
    for (let i = 0; i < 300; i++) obj = { Alias: "a", Name: "a", SelectionSet: [obj] };
    expect(
      await failure(`graphql.is_valid(input.q, ${q(schema)})`, {
        q: { Operations: [{ Operation: "query", SelectionSet: [obj] }] },
      }),
    ).toContain("graphql.is_valid: Arbiter does not support GraphQL AST objects nested deeper than 512 levels");
  });
});
