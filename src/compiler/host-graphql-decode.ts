/**
 * AST objects given to graphql.parse / is_valid / parse_and_verify / schema_is_valid in place
 * of GraphQL text: OPA marshals them to JSON and unmarshals that into gqlparser's Go structs
 * (objectToQueryDocument / objectToSchemaDocument). This decoder does the same into the JSON
 * shape host-graphql-ast.ts produces: unknown keys are ignored, null leaves the zero value, a
 * value of the wrong JSON type is an unmarshal error (an OPA builtin error), and every selection
 * reads as a Field (gqlparser's UnmarshalSelectionSet tries Field first, which always fits).
 * Refused (Go would do something this decoder does not mirror): keys that match a field only
 * case-insensitively (Go's fallback), non-null validation-only fields (Definition, ...),
 * positions and comments, and missing types or values gqlparser would dereference.
 */
import type { ExactJson } from "./host-exact-json.ts";
import { OpaBuiltinError } from "./host-exact-json.ts";
import type { GoJson, GoObj } from "./host-graphql-ast.ts";
import { GraphqlUnsupported } from "./host-graphql-parse.ts";

type Dec = (v: ExactJson, path: string) => GoJson;
type Spec = Record<string, Dec>;

const typeError = (path: string, want: string): never => {
  throw new OpaBuiltinError(`json: cannot unmarshal into Go struct field ${path} of type ${want}`);
};
const refuse = (path: string, what: string): never => {
  throw new GraphqlUnsupported(`Arbiter does not support ${what} in GraphQL AST objects (at ${path})`);
};

const str: Dec = (v, p) => (v === null ? "" : typeof v === "string" ? v : typeError(p, "string"));
const bool: Dec = (v, p) => (v === null ? false : typeof v === "boolean" ? v : typeError(p, "bool"));
const int: Dec = (v, p) => {
  if (v === null) return 0;
  if (typeof v !== "bigint") return typeError(p, "int");
  if (v < -(1n << 63n) || v >= 1n << 63n) return typeError(p, "int");
  return Number(v);
};
/** A field gqlparser fills only while validating: refused unless absent or null. */
const unset: Dec = (v, p) => (v === null ? null : refuse(p, "validation-filled fields"));

const arrayOf =
  (d: Dec): Dec =>
  (v, p) => {
    if (v === null) return [];
    if (!Array.isArray(v)) return typeError(p, "array");
    return v.map((x, i) => d(x, `${p}[${i}]`));
  };

/** Go's key matching folds case, with U+017F and U+212A folding to s and k as well. */
const fold = (k: string): string =>
  k
    .replace(/\u017f/g, "s")
    .replace(/\u212a/g, "k")
    .toLowerCase();

/** Decoders of pointers gqlparser's validation dereferences: nil there is refused. */
const REQUIRED = new WeakSet<Dec>();

function struct(spec: () => Spec, required = false): Dec {
  const dec: Dec = (v, p) => {
    if (v === null) return required ? refuse(p, "a missing type or value") : null;
    if (typeof v !== "object" || Array.isArray(v) || typeof v === "bigint") return typeError(p, "object");
    const fields = spec();
    const out: GoObj = {};
    for (const [k, d] of Object.entries(fields)) if (!REQUIRED.has(d)) out[k] = d(null, `${p}.${k}`);
    for (const [k, x] of Object.entries(v)) {
      if (Object.hasOwn(fields, k)) out[k] = fields[k]!(x, `${p}.${k}`);
      else if (Object.keys(fields).some((f) => fold(f) === fold(k)))
        refuse(`${p}.${k}`, "keys that differ from gqlparser's field names only in case");
      else if ((k === "Position" || k === "Comment") && x !== null) refuse(`${p}.${k}`, "positions or comments");
    }
    for (const [k, d] of Object.entries(fields))
      if (REQUIRED.has(d) && !(k in out)) refuse(`${p}.${k}`, "a missing type or value");
    if (required && "NamedType" in fields && out.NamedType === "" && out.Elem === null) refuse(p, "an empty type");
    return out;
  };
  if (required) REQUIRED.add(dec);
  return dec;
}

// Every level must name a type or wrap one: gqlparser's Type.Name() dereferences Elem otherwise.
const type: Dec = struct(
  () => ({ NamedType: str, Elem: (v, p) => (v === null ? null : type(v, p)), NonNull: bool }),
  true,
);

const valueSpec = (): Spec => ({
  Raw: str,
  Children: arrayOf(struct(() => ({ Name: str, Value: value }))),
  Kind: int,
  Comment: unset,
  Definition: unset,
  VariableDefinition: unset,
  ExpectedType: unset,
  ExpectedTypeHasDefault: bool,
});
const value: Dec = struct(valueSpec, true);
const optValue: Dec = struct(valueSpec);

const argument = struct(() => ({ Name: str, Value: value, Comment: unset }));
const directive = struct(() => ({
  Name: str,
  Arguments: arrayOf(argument),
  ParentDefinition: unset,
  Definition: unset,
  Location: str,
}));
const directives = arrayOf(directive);

const field: Dec = struct(() => ({
  Alias: str,
  Name: str,
  Arguments: arrayOf(argument),
  Directives: directives,
  SelectionSet: selections,
  Comment: unset,
  Definition: unset,
  ObjectDefinition: unset,
}));
/**
 * gqlparser falls back to FragmentSpread, then InlineFragment, when a selection does not
 * unmarshal as a Field; that fallback is not mirrored, so such a selection is refused.
 */
const selections: Dec = arrayOf((v, p) => {
  try {
    return field(v, p);
  } catch (err) {
    if (err instanceof OpaBuiltinError) refuse(p, "selections that do not unmarshal as a Field");
    throw err;
  }
});

const variable = struct(() => ({
  Variable: str,
  Type: type,
  DefaultValue: optValue,
  Directives: directives,
  Comment: unset,
  Definition: unset,
  Used: bool,
}));

const fragmentVariables = arrayOf(variable);

const queryDoc = struct(() => ({
  Operations: arrayOf(
    struct(() => ({
      Operation: str,
      Name: str,
      VariableDefinitions: arrayOf(variable),
      Directives: directives,
      SelectionSet: selections,
      Comment: unset,
    })),
  ),
  Fragments: arrayOf(
    struct(() => ({
      Name: str,
      VariableDefinition: fragmentVariables,
      TypeCondition: str,
      Directives: directives,
      SelectionSet: selections,
      Definition: unset,
      Comment: unset,
    })),
  ),
  Comment: unset,
}));

const argumentDef = struct(() => ({
  Description: str,
  Name: str,
  DefaultValue: optValue,
  Type: type,
  Directives: directives,
}));
const fieldDef = struct(() => ({
  Description: str,
  Name: str,
  Arguments: arrayOf(argumentDef),
  DefaultValue: optValue,
  Type: type,
  Directives: directives,
}));
const definition = struct(() => ({
  Kind: str,
  Description: str,
  Name: str,
  Directives: directives,
  Interfaces: arrayOf(str),
  Fields: arrayOf(fieldDef),
  Types: arrayOf(str),
  EnumValues: arrayOf(struct(() => ({ Description: str, Name: str, Directives: directives }))),
  BuiltIn: bool,
}));
const schemaDef = struct(() => ({
  Description: str,
  Directives: directives,
  OperationTypes: arrayOf(struct(() => ({ Operation: str, Type: str }))),
}));
const schemaDoc = struct(() => ({
  Schema: arrayOf(schemaDef),
  SchemaExtension: arrayOf(schemaDef),
  Directives: arrayOf(
    struct(() => ({
      Description: str,
      Name: str,
      Arguments: arrayOf(argumentDef),
      Locations: arrayOf(str),
      IsRepeatable: bool,
    })),
  ),
  Definitions: arrayOf(definition),
  Extensions: arrayOf(definition),
  Comment: unset,
}));

/** objectToQueryDocument. */
export const decodeQuery = (v: ExactJson): GoObj => queryDoc(v, "QueryDocument") as GoObj;
/** objectToSchemaDocument. */
export const decodeSchema = (v: ExactJson): GoObj => schemaDoc(v, "SchemaDocument") as GoObj;
