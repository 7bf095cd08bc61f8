/**
 * OPA's graphql.* builtins (topdown/graphql.go) on graphql-js 17: parse_query, parse_schema,
 * parse, parse_and_verify, is_valid and schema_is_valid. Answers are gqlparser's Go structs as
 * JSON, pruned as OPA prunes them (host-graphql-ast.ts); schemas are validated by a port of
 * gqlparser's rules (host-graphql-schema.ts) and queries by the graphql-js rules gqlparser ported
 * (host-graphql-query.ts). Query and schema may each be GraphQL text or an AST object
 * (host-graphql-decode.ts), except for parse_query / parse_schema, which take text only.
 *
 * HOST_JSON_IO builtins: arguments arrive as JSON text with exact integers (an AST's `Kind: 7`
 * must be told from `7.5`). OPA's builtin errors (syntax errors, invalid documents, wrong operand
 * types) are OpaBuiltinError: undefined, or with strict builtin errors a failed evaluation.
 * is_valid, schema_is_valid and parse_and_verify answer false / [false, {}, {}] instead, as OPA
 * does. Anything Arbiter cannot answer exactly is a GraphqlUnsupported error that fails the
 * evaluation in every mode (see host-graphql-parse.ts for the list).
 */
import { type ExactJson, exactJsonText, OpaBuiltinError, parseExactJson } from "./host-exact-json.ts";
import { type GoJson, type GoObj, prune, queryDocument, schemaDocument } from "./host-graphql-ast.ts";
import { decodeQuery, decodeSchema } from "./host-graphql-decode.ts";
import { GraphqlUnsupported, MAX_DEPTH, parseQueryText, parseSchemaText } from "./host-graphql-parse.ts";
import { queryIsValid } from "./host-graphql-query.ts";
import { SchemaInvalid, validateSchema } from "./host-graphql-schema.ts";
import type { HostBuiltin } from "./host-types.ts";

const isObject = (v: ExactJson): v is { [k: string]: ExactJson } =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** JSON text writes a non-string key (`{1: x}`) as its text; OPA cannot marshal such an object. */
function nonStringKey(k: string): boolean {
  try {
    return typeof JSON.parse(k) !== "string";
  } catch {
    return false;
  }
}

/** Nesting and keys of an AST object, iteratively: the converters recurse, so objects are bounded too. */
function checkDepth(fn: string, v: ExactJson): void {
  // A text's bracket depth is bounded by MAX_DEPTH; its AST is at most a few levels per bracket.
  const limit = MAX_DEPTH * 4;
  const stack: [ExactJson, number][] = [[v, 0]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    if (d > limit)
      throw new GraphqlUnsupported(
        `${fn}: Arbiter does not support GraphQL AST objects nested deeper than ${limit} levels`,
      );
    if (Array.isArray(x)) for (const y of x) stack.push([y, d + 1]);
    else if (isObject(x)) {
      for (const [k, y] of Object.entries(x)) {
        if (nonStringKey(k))
          throw new GraphqlUnsupported(
            `${fn}: Arbiter does not support the AST object key ${JSON.stringify(k)}, which may stand for a non-string key`,
          );
        stack.push([y, d + 1]);
      }
    }
  }
}

function query(fn: string, v: ExactJson): GoObj {
  if (typeof v === "string") return queryDocument(parseQueryText(fn, v));
  if (isObject(v)) return (checkDepth(fn, v), decodeQuery(v));
  throw new OpaBuiltinError(`${fn}: operand 1 must be one of {string, object}`);
}

function schema(fn: string, v: ExactJson, operand: number): GoObj {
  if (typeof v === "string") return schemaDocument(parseSchemaText(fn, v));
  if (isObject(v)) return (checkDepth(fn, v), decodeSchema(v));
  throw new OpaBuiltinError(`${fn}: operand ${operand} must be one of {string, object}`);
}

/** convertSchema + validateQuery: true when both pass. */
function verify(fn: string, qv: ExactJson, q: GoObj, s: GoObj): boolean {
  let valid;
  try {
    valid = validateSchema(s);
  } catch (err) {
    if (err instanceof SchemaInvalid) return false;
    throw err;
  }
  return queryIsValid(fn, valid, q, typeof qv !== "string");
}

const schemaValid = (s: GoObj): boolean => {
  try {
    validateSchema(s);
    return true;
  } catch (err) {
    if (err instanceof SchemaInvalid) return false;
    throw err;
  }
};

const out = (v: GoJson): ExactJson => prune(v) as ExactJson;

/** A HOST_JSON_IO builtin: OPA's builtin errors become undefined; Arbiter's limits name the builtin. */
function graphqlIo(fn: string, f: (...args: ExactJson[]) => ExactJson): HostBuiltin {
  return (...texts: unknown[]) => {
    if (!texts.every((t) => typeof t === "string")) return undefined;
    try {
      return exactJsonText(f(...(texts as string[]).map(parseExactJson)));
    } catch (err) {
      if (err instanceof OpaBuiltinError) return undefined;
      if (err instanceof GraphqlUnsupported && !err.message.startsWith(`${fn}:`))
        throw new GraphqlUnsupported(`${fn}: ${err.message}`);
      throw err;
    }
  };
}

/** For the builtins that answer false on any failure: OPA's errors become `onError`. */
function orElse<T extends ExactJson>(onError: T, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof OpaBuiltinError) return onError;
    throw err;
  }
}

export const graphqlHostBuiltins: Record<string, HostBuiltin> = {
  "graphql.parse_query": graphqlIo("graphql.parse_query", (q) => {
    if (typeof q !== "string") throw new OpaBuiltinError("graphql.parse_query: operand 1 must be string");
    return out(queryDocument(parseQueryText("graphql.parse_query", q)));
  }),
  "graphql.parse_schema": graphqlIo("graphql.parse_schema", (s) => {
    if (typeof s !== "string") throw new OpaBuiltinError("graphql.parse_schema: operand 1 must be string");
    return out(schemaDocument(parseSchemaText("graphql.parse_schema", s)));
  }),
  "graphql.parse": graphqlIo("graphql.parse", (qv, sv) => {
    const q = query("graphql.parse", qv);
    const s = schema("graphql.parse", sv, 2);
    const qOut = out(q);
    const sOut = out(s);
    if (!verify("graphql.parse", qv, q, s))
      throw new OpaBuiltinError("graphql.parse: the query is not valid for the schema");
    return [qOut, sOut];
  }),
  "graphql.parse_and_verify": graphqlIo("graphql.parse_and_verify", (qv, sv) =>
    orElse<ExactJson>([false, {}, {}], () => {
      const q = query("graphql.parse_and_verify", qv);
      const s = schema("graphql.parse_and_verify", sv, 2);
      const qOut = out(q);
      const sOut = out(s);
      return verify("graphql.parse_and_verify", qv, q, s) ? [true, qOut, sOut] : [false, {}, {}];
    }),
  ),
  "graphql.is_valid": graphqlIo("graphql.is_valid", (qv, sv) =>
    orElse(false, () =>
      verify("graphql.is_valid", qv, query("graphql.is_valid", qv), schema("graphql.is_valid", sv, 2)),
    ),
  ),
  "graphql.schema_is_valid": graphqlIo("graphql.schema_is_valid", (sv) =>
    orElse(false, () => schemaValid(schema("graphql.schema_is_valid", sv, 1))),
  ),
};
