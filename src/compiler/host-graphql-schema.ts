/**
 * OPA's convertSchema for the graphql.* builtins: gqlparser's prelude merged in front of the
 * schema document, then gqlparser's ValidateSchemaDocument (validator/schema.go) ported rule for
 * rule on the gqlparser-shaped JSON — gqlparser is laxer than graphql-js here (it turns an
 * extension of an unknown type into a definition, skips enum-value and schema directives), so
 * graphql-js's own schema validation would give other answers. Answers the merged types, the
 * directives and the root types the query validation (host-graphql-query.ts) builds on.
 */
import { parse } from "graphql";
import { schemaDocument, type GoObj } from "./host-graphql-ast.ts";
import { GraphqlUnsupported } from "./host-graphql-parse.ts";

/** The part of gqlparser's prelude.graphql validation looks at (descriptions left out). */
const PRELUDE = `
scalar Int
scalar Float
scalar String
scalar Boolean
scalar ID
directive @include(if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT
directive @skip(if: Boolean!) on FIELD | FRAGMENT_SPREAD | INLINE_FRAGMENT
directive @deprecated(reason: String = "No longer supported") on FIELD_DEFINITION | ARGUMENT_DEFINITION | INPUT_FIELD_DEFINITION | ENUM_VALUE
directive @specifiedBy(url: String!) on SCALAR
type __Schema { description: String types: [__Type!]! queryType: __Type! mutationType: __Type subscriptionType: __Type directives: [__Directive!]! }
type __Type { kind: __TypeKind! name: String description: String fields(includeDeprecated: Boolean = false): [__Field!] interfaces: [__Type!] possibleTypes: [__Type!] enumValues(includeDeprecated: Boolean = false): [__EnumValue!] inputFields: [__InputValue!] ofType: __Type specifiedBy: String }
type __Field { name: String! description: String args: [__InputValue!]! type: __Type! isDeprecated: Boolean! deprecationReason: String }
type __InputValue { name: String! description: String type: __Type! defaultValue: String }
type __EnumValue { name: String! description: String isDeprecated: Boolean! deprecationReason: String }
enum __TypeKind { SCALAR OBJECT INTERFACE UNION ENUM INPUT_OBJECT LIST NON_NULL }
type __Directive { name: String! description: String locations: [__DirectiveLocation!]! args: [__InputValue!]! isRepeatable: Boolean! }
enum __DirectiveLocation { QUERY MUTATION SUBSCRIPTION FIELD FRAGMENT_DEFINITION FRAGMENT_SPREAD INLINE_FRAGMENT VARIABLE_DEFINITION SCHEMA SCALAR OBJECT FIELD_DEFINITION ARGUMENT_DEFINITION INTERFACE UNION ENUM ENUM_VALUE INPUT_OBJECT INPUT_FIELD_DEFINITION }
`;

let prelude: GoObj | undefined;
const preludeDoc = (): GoObj => (prelude ??= schemaDocument(parse(PRELUDE), true));

/** Directive names whose meaning changed after the gqlparser OPA vendors (graphql-js 17 knows them). */
export const NEWER_DIRECTIVES: ReadonlySet<string> = new Set(["oneOf", "defer", "stream"]);

/** A validated schema: gqlparser's Schema, as far as query validation needs it. */
export interface ValidSchema {
  readonly types: Map<string, GoObj>;
  readonly directives: Map<string, GoObj>;
  readonly roots: { query?: string; mutation?: string; subscription?: string };
}

/** Why a schema is invalid (the caller turns it into false or a builtin error). */
export class SchemaInvalid extends Error {}

const bad = (msg: string): never => {
  throw new SchemaInvalid(msg);
};
const list = (v: unknown): GoObj[] => (Array.isArray(v) ? (v as GoObj[]) : []);
const strs = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);
const str = (v: unknown): string => (typeof v === "string" ? v : "");

/** gqlparser's Type.Name(): the named type under any list wrappers. */
export function typeName(t: GoObj): string {
  let cur: GoObj = t;
  while (cur.Elem !== null && typeof cur.Elem === "object" && str(cur.NamedType) === "") cur = cur.Elem as GoObj;
  return str(cur.NamedType);
}

function isCompatible(t: GoObj, other: GoObj): boolean {
  if (str(t.NamedType) !== str(other.NamedType)) return false;
  const te = t.Elem as GoObj | null;
  const oe = other.Elem as GoObj | null;
  if (te && !oe) return false;
  if (te && !isCompatible(te, oe!)) return false;
  if (other.NonNull === true) return t.NonNull === true;
  return true;
}

function isCovariant(possible: Map<string, GoObj[]>, required: GoObj, actual: GoObj): boolean {
  if (required.NonNull === true && actual.NonNull !== true) return false;
  if (str(required.NamedType) !== "") {
    if (required.NamedType === actual.NamedType) return true;
    return (possible.get(str(required.NamedType)) ?? []).some((pt) => pt.Name === actual.NamedType);
  }
  const re = required.Elem as GoObj | null;
  const ae = actual.Elem as GoObj | null;
  if (re && !ae) return false;
  if (!re || !ae) return false;
  return isCovariant(possible, re, ae);
}

/** Whether OPA's prelude declares these is not known here: refuse rather than guess. */
const newer = (name: string): void => {
  if (NEWER_DIRECTIVES.has(name))
    throw new GraphqlUnsupported(
      `Arbiter does not support the directive @${name} in GraphQL schemas (OPA's gqlparser may not know it)`,
    );
};

const validateName = (name: string): void => {
  if (name.startsWith("__"))
    bad(`Name "${name}" must not begin with "__", which is reserved by GraphQL introspection.`);
};

/** gqlparser's ValidateSchemaDocument on prelude + `doc` (both left unchanged). */
export function validateSchema(doc: GoObj): ValidSchema {
  const merged = structuredClone(preludeDoc());
  for (const k of ["Schema", "SchemaExtension", "Directives", "Definitions", "Extensions"])
    merged[k] = [...list(merged[k]), ...structuredClone(list(doc[k]))];
  const types = new Map<string, GoObj>();
  for (const def of list(merged.Definitions)) {
    if (types.has(str(def.Name))) bad(`Cannot redeclare type ${str(def.Name)}.`);
    types.set(str(def.Name), def);
  }
  const defs = [...list(merged.Definitions)];
  for (const ext of list(merged.Extensions)) {
    let def = types.get(str(ext.Name));
    if (def === undefined) {
      def = { Kind: ext.Kind!, Name: ext.Name!, Description: "", BuiltIn: false };
      types.set(str(ext.Name), def);
      defs.push(def);
    }
    if (def.Kind !== ext.Kind) bad(`Cannot extend type ${str(ext.Name)}: the base type is another kind.`);
    for (const k of ["Directives", "Interfaces", "Fields", "Types", "EnumValues"])
      def[k] = [...list(def[k]), ...list(ext[k])];
  }
  const possible = new Map<string, GoObj[]>();
  const addPossible = (name: string, def: GoObj | undefined) => {
    if (def) possible.set(name, [...(possible.get(name) ?? []), def]);
  };
  for (const def of defs) {
    if (def.Kind === "UNION") for (const t of strs(def.Types)) addPossible(str(def.Name), types.get(t));
    else if (def.Kind === "OBJECT" || def.Kind === "INPUT_OBJECT" || def.Kind === "INTERFACE") {
      for (const i of strs(def.Interfaces)) addPossible(i, def);
      if (def.Kind !== "INTERFACE") addPossible(str(def.Name), def);
    }
  }
  const directives = new Map<string, GoObj>();
  for (const dir of list(merged.Directives)) {
    const name = str(dir.Name);
    newer(name);
    if (directives.has(name)) {
      if (!["include", "skip", "deprecated", "specifiedBy"].includes(name)) bad(`Cannot redeclare directive ${name}.`);
      continue;
    }
    directives.set(name, dir);
  }
  const schemas = list(merged.Schema);
  if (schemas.length > 1) bad("Cannot have multiple schema entry points, consider schema extensions instead.");
  const roots: { query?: string; mutation?: string; subscription?: string } = {};
  for (const s of [...schemas, ...list(merged.SchemaExtension)]) {
    for (const op of list(s.OperationTypes)) {
      if (!types.has(str(op.Type)))
        bad(`Schema root ${str(op.Operation)} refers to a type ${str(op.Type)} that does not exist.`);
      const which = str(op.Operation);
      if (which === "query" || which === "mutation" || which === "subscription") roots[which] = str(op.Type);
    }
  }
  const ctx = { types, directives, possible };
  for (const def of types.values()) validateDefinition(ctx, def);
  for (const dir of directives.values()) {
    validateName(str(dir.Name));
    validateArgs(ctx, list(dir.Arguments), dir);
  }
  if (schemas.length === 0) {
    if (roots.query === undefined && types.has("Query")) roots.query = "Query";
    if (roots.mutation === undefined && types.has("Mutation")) roots.mutation = "Mutation";
    if (roots.subscription === undefined && types.has("Subscription")) roots.subscription = "Subscription";
  }
  return { types, directives, roots };
}

interface Ctx {
  readonly types: Map<string, GoObj>;
  readonly directives: Map<string, GoObj>;
  readonly possible: Map<string, GoObj[]>;
}

function validateTypeRef(ctx: Ctx, t: GoObj): GoObj {
  const def = ctx.types.get(typeName(t));
  return def ?? bad(`Undefined type ${typeName(t)}.`);
}

function validateArgs(ctx: Ctx, args: GoObj[], current: GoObj | null): void {
  for (const arg of args) {
    validateName(str(arg.Name));
    const def = validateTypeRef(ctx, arg.Type as GoObj);
    if (def.Kind !== "SCALAR" && def.Kind !== "ENUM" && def.Kind !== "INPUT_OBJECT")
      bad(`cannot use ${typeName(arg.Type as GoObj)} as argument ${str(arg.Name)}: not a valid input type`);
    validateDirectives(ctx, list(arg.Directives), "ARGUMENT_DEFINITION", current);
  }
}

function validateDirectives(ctx: Ctx, dirs: GoObj[], location: string, current: GoObj | null): void {
  for (const dir of dirs) {
    const name = str(dir.Name);
    newer(name);
    validateName(name);
    if (current !== null && name === current.Name) bad(`Directive ${name} cannot refer to itself.`);
    const def = ctx.directives.get(name) ?? bad(`Undefined directive ${name}.`);
    if (!strs(def.Locations).includes(location)) bad(`Directive ${name} is not applicable on ${location}.`);
  }
}

function validateDefinition(ctx: Ctx, def: GoObj): void {
  const kind = str(def.Kind);
  const fields = list(def.Fields);
  for (const field of fields) {
    validateName(str(field.Name));
    validateTypeRef(ctx, field.Type as GoObj);
    validateArgs(ctx, list(field.Arguments), null);
    validateDirectives(
      ctx,
      list(field.Directives),
      kind === "INPUT_OBJECT" ? "INPUT_FIELD_DEFINITION" : "FIELD_DEFINITION",
      null,
    );
  }
  for (const t of strs(def.Types)) {
    const td = ctx.types.get(t) ?? bad(`Undefined type "${t}".`);
    if (td.Kind !== "OBJECT") bad(`${kind} type "${t}" must be OBJECT.`);
  }
  for (const i of strs(def.Interfaces)) validateImplements(ctx, def, i);
  const fieldKinds = (ok: string[]) => {
    for (const f of fields) {
      const t = ctx.types.get(typeName(f.Type as GoObj));
      if (t && !ok.includes(str(t.Kind))) bad(`${kind} ${str(def.Name)}: field must be one of ${ok.join(", ")}.`);
    }
  };
  if (kind === "OBJECT" || kind === "INTERFACE") {
    if (fields.length === 0) bad(`${kind} ${str(def.Name)}: must define one or more fields.`);
    fieldKinds(["SCALAR", "OBJECT", "INTERFACE", "UNION", "ENUM"]);
  } else if (kind === "ENUM") {
    const values = list(def.EnumValues);
    if (values.length === 0) bad(`${kind} ${str(def.Name)}: must define one or more unique enum values.`);
    for (const v of values) if (["true", "false", "null"].includes(str(v.Name))) bad(`non-enum value ${str(v.Name)}.`);
  } else if (kind === "INPUT_OBJECT") {
    if (fields.length === 0) bad(`${kind} ${str(def.Name)}: must define one or more input fields.`);
    fieldKinds(["SCALAR", "ENUM", "INPUT_OBJECT"]);
  }
  const seen = new Set<string>();
  for (const f of fields) {
    if (seen.has(str(f.Name))) bad(`Field ${str(def.Name)}.${str(f.Name)} can only be defined once.`);
    seen.add(str(f.Name));
  }
  if (def.BuiltIn !== true) validateName(str(def.Name));
  validateDirectives(ctx, list(def.Directives), kind, null);
}

function validateImplements(ctx: Ctx, def: GoObj, intfName: string): void {
  const intf = ctx.types.get(intfName) ?? bad(`Undefined type "${intfName}".`);
  if (intf.Kind !== "INTERFACE") bad(`"${intfName}" is a non interface type ${str(intf.Kind)}.`);
  // Name -> first definition, as gqlparser's ForName; maps keep large types linear.
  const byName = (xs: GoObj[]) => {
    const m = new Map<string, GoObj>();
    for (const x of xs) if (!m.has(str(x.Name))) m.set(str(x.Name), x);
    return m;
  };
  const fields = byName(list(def.Fields));
  for (const required of list(intf.Fields)) {
    const found = fields.get(str(required.Name)) ?? bad(`missing field ${str(required.Name)}`);
    if (!isCovariant(ctx.possible, required.Type as GoObj, found.Type as GoObj)) bad("field type not covariant");
    const foundArgs = byName(list(found.Arguments));
    const requiredArgs = byName(list(required.Arguments));
    for (const ra of list(required.Arguments)) {
      const fa = foundArgs.get(str(ra.Name)) ?? bad(`missing argument ${str(ra.Name)}`);
      if (!isCompatible(ra.Type as GoObj, fa.Type as GoObj)) bad(`argument ${str(ra.Name)} has the wrong type`);
    }
    for (const fa of list(found.Arguments)) {
      const extra = !requiredArgs.has(str(fa.Name));
      if (extra && (fa.Type as GoObj).NonNull === true && fa.DefaultValue === null) bad("extra argument is required");
    }
  }
  for (const transitive of strs(intf.Interfaces)) {
    if (!strs(def.Interfaces).includes(transitive)) bad(`${str(def.Name)} must implement ${transitive}.`);
  }
}
