/**
 * graphql-js (17.x) syntax trees converted to the JSON OPA's graphql.* builtins answer: the Go
 * structs of OPA's vendored gqlparser (`internal/gqlparser/ast`) with their Go field names, as
 * `ast.InterfaceToValue` writes them, then pruned as `pruneIrrelevantGraphQLASTNodes` does.
 * Fields filled only by validation (Definition, ObjectDefinition, ...) start as null here, as
 * they do in the parsed document OPA converts before validating.
 */
import type * as G from "graphql";
import { Kind } from "graphql";

/** A gqlparser struct as JSON: Go field name -> value (nulls and empty lists kept until pruned). */
export type GoJson = null | boolean | number | string | GoJson[] | { [k: string]: GoJson };
export type GoObj = { [k: string]: GoJson };

/** gqlparser's ValueKind numbers (ast/value.go). */
export const VALUE_KIND = {
  Variable: 0,
  Int: 1,
  Float: 2,
  String: 3,
  Block: 4,
  Boolean: 5,
  Null: 6,
  Enum: 7,
  List: 8,
  Object: 9,
} as const;

const names = (ns: readonly { name: G.NameNode }[] | undefined): string[] => (ns ?? []).map((n) => n.name.value);

export function typeRef(t: G.TypeNode): GoObj {
  if (t.kind === Kind.NON_NULL_TYPE) return { ...typeRef(t.type), NonNull: true };
  if (t.kind === Kind.LIST_TYPE) return { NamedType: "", Elem: typeRef(t.type), NonNull: false };
  return { NamedType: t.name.value, Elem: null, NonNull: false };
}

function value(v: G.ValueNode): GoObj {
  const out = (Kind: number, Raw: string, Children: GoJson[] = []): GoObj => ({
    Raw,
    Children,
    Kind,
    Comment: null,
    Definition: null,
    VariableDefinition: null,
    ExpectedType: null,
    ExpectedTypeHasDefault: false,
  });
  switch (v.kind) {
    case Kind.VARIABLE:
      return out(VALUE_KIND.Variable, v.name.value);
    case Kind.INT:
      return out(VALUE_KIND.Int, v.value);
    case Kind.FLOAT:
      return out(VALUE_KIND.Float, v.value);
    case Kind.STRING:
      return out(v.block === true ? VALUE_KIND.Block : VALUE_KIND.String, v.value);
    case Kind.BOOLEAN:
      return out(VALUE_KIND.Boolean, v.value ? "true" : "false");
    case Kind.NULL:
      return out(VALUE_KIND.Null, "null");
    case Kind.ENUM:
      return out(VALUE_KIND.Enum, v.value);
    case Kind.LIST:
      return out(
        VALUE_KIND.List,
        "",
        v.values.map((x) => ({ Name: "", Value: value(x), Comment: null })),
      );
    case Kind.OBJECT:
      return out(
        VALUE_KIND.Object,
        "",
        v.fields.map((f) => ({ Name: f.name.value, Value: value(f.value), Comment: null })),
      );
  }
}

const valueOrNull = (v: G.ValueNode | undefined): GoObj | null => (v === undefined ? null : value(v));

const args = (as: readonly G.ArgumentNode[] | undefined): GoObj[] =>
  (as ?? []).map((a) => ({ Name: a.name.value, Value: value(a.value), Comment: null }));

export const directives = (ds: readonly G.DirectiveNode[] | undefined): GoObj[] =>
  (ds ?? []).map((d) => ({
    Name: d.name.value,
    Arguments: args(d.arguments),
    ParentDefinition: null,
    Definition: null,
    Location: "",
  }));

function selections(set: G.SelectionSetNode | undefined): GoObj[] {
  return (set?.selections ?? []).map((s): GoObj => {
    if (s.kind === Kind.FIELD) {
      return {
        Alias: (s.alias ?? s.name).value,
        Name: s.name.value,
        Arguments: args(s.arguments),
        Directives: directives(s.directives),
        SelectionSet: selections(s.selectionSet),
        Comment: null,
        Definition: null,
        ObjectDefinition: null,
      };
    }
    if (s.kind === Kind.FRAGMENT_SPREAD) {
      return {
        Name: s.name.value,
        Directives: directives(s.directives),
        ObjectDefinition: null,
        Definition: null,
        Comment: null,
      };
    }
    return {
      TypeCondition: s.typeCondition?.name.value ?? "",
      Directives: directives(s.directives),
      SelectionSet: selections(s.selectionSet),
      ObjectDefinition: null,
      Comment: null,
    };
  });
}

const variableDefs = (vs: readonly G.VariableDefinitionNode[] | undefined): GoObj[] =>
  (vs ?? []).map((v) => ({
    Variable: v.variable.name.value,
    Type: typeRef(v.type),
    DefaultValue: valueOrNull(v.defaultValue),
    Directives: directives(v.directives),
    Comment: null,
    Definition: null,
    Used: false,
  }));

/** ParseQuery's QueryDocument; the caller has checked every definition is executable. */
export function queryDocument(doc: G.DocumentNode): GoObj {
  const Operations: GoObj[] = [];
  const Fragments: GoObj[] = [];
  for (const d of doc.definitions) {
    if (d.kind === Kind.OPERATION_DEFINITION) {
      Operations.push({
        Operation: d.operation,
        Name: d.name?.value ?? "",
        VariableDefinitions: variableDefs(d.variableDefinitions),
        Directives: directives(d.directives),
        SelectionSet: selections(d.selectionSet),
        Comment: null,
      });
    } else if (d.kind === Kind.FRAGMENT_DEFINITION) {
      Fragments.push({
        Name: d.name.value,
        VariableDefinition: variableDefs(d.variableDefinitions),
        TypeCondition: d.typeCondition.name.value,
        Directives: directives(d.directives),
        SelectionSet: selections(d.selectionSet),
        Definition: null,
        Comment: null,
      });
    }
  }
  return { Operations, Fragments, Comment: null };
}

const description = (d: { readonly description?: G.StringValueNode | undefined }): string => d.description?.value ?? "";

function argumentDefs(as: readonly G.InputValueDefinitionNode[] | undefined): GoObj[] {
  return (as ?? []).map((a) => ({
    Description: description(a),
    Name: a.name.value,
    DefaultValue: valueOrNull(a.defaultValue),
    Type: typeRef(a.type),
    Directives: directives(a.directives),
  }));
}

function fieldDefs(fs: readonly (G.FieldDefinitionNode | G.InputValueDefinitionNode)[] | undefined): GoObj[] {
  return (fs ?? []).map((f) => ({
    Description: description(f),
    Name: f.name.value,
    Arguments: f.kind === Kind.FIELD_DEFINITION ? argumentDefs(f.arguments) : [],
    DefaultValue: f.kind === Kind.INPUT_VALUE_DEFINITION ? valueOrNull(f.defaultValue) : null,
    Type: typeRef(f.type),
    Directives: directives(f.directives),
  }));
}

type TypeNode = G.TypeDefinitionNode | G.TypeExtensionNode;

const KIND_OF: Record<TypeNode["kind"], string> = {
  [Kind.SCALAR_TYPE_DEFINITION]: "SCALAR",
  [Kind.SCALAR_TYPE_EXTENSION]: "SCALAR",
  [Kind.OBJECT_TYPE_DEFINITION]: "OBJECT",
  [Kind.OBJECT_TYPE_EXTENSION]: "OBJECT",
  [Kind.INTERFACE_TYPE_DEFINITION]: "INTERFACE",
  [Kind.INTERFACE_TYPE_EXTENSION]: "INTERFACE",
  [Kind.UNION_TYPE_DEFINITION]: "UNION",
  [Kind.UNION_TYPE_EXTENSION]: "UNION",
  [Kind.ENUM_TYPE_DEFINITION]: "ENUM",
  [Kind.ENUM_TYPE_EXTENSION]: "ENUM",
  [Kind.INPUT_OBJECT_TYPE_DEFINITION]: "INPUT_OBJECT",
  [Kind.INPUT_OBJECT_TYPE_EXTENSION]: "INPUT_OBJECT",
};

function definition(d: TypeNode, builtIn: boolean): GoObj {
  return {
    Kind: KIND_OF[d.kind],
    Description: "description" in d ? description(d) : "",
    Name: d.name.value,
    Directives: directives(d.directives),
    Interfaces: "interfaces" in d ? names(d.interfaces) : [],
    Fields: "fields" in d ? fieldDefs(d.fields) : [],
    Types: "types" in d ? names(d.types) : [],
    EnumValues:
      "values" in d
        ? (d.values ?? []).map((e) => ({
            Description: description(e),
            Name: e.name.value,
            Directives: directives(e.directives),
          }))
        : [],
    BuiltIn: builtIn,
  };
}

const operationTypes = (ops: readonly G.OperationTypeDefinitionNode[] | undefined): GoObj[] =>
  (ops ?? []).map((o) => ({ Operation: o.operation, Type: o.type.name.value }));

/** ParseSchema's SchemaDocument; the caller has checked every definition is a type-system one. */
export function schemaDocument(doc: G.DocumentNode, builtIn = false): GoObj {
  const out = { Schema: [], SchemaExtension: [], Directives: [], Definitions: [], Extensions: [], Comment: null };
  const list = (k: keyof typeof out) => out[k] as unknown as GoObj[];
  for (const d of doc.definitions) {
    switch (d.kind) {
      case Kind.SCHEMA_DEFINITION:
        list("Schema").push({
          Description: description(d),
          Directives: directives(d.directives),
          OperationTypes: operationTypes(d.operationTypes),
        });
        break;
      case Kind.SCHEMA_EXTENSION:
        list("SchemaExtension").push({
          Description: "",
          Directives: directives(d.directives),
          OperationTypes: operationTypes(d.operationTypes),
        });
        break;
      case Kind.DIRECTIVE_DEFINITION:
        list("Directives").push({
          Description: description(d),
          Name: d.name.value,
          Arguments: argumentDefs(d.arguments),
          Locations: d.locations.map((l) => l.value),
          IsRepeatable: d.repeatable,
        });
        break;
      default:
        if (d.kind in KIND_OF) {
          const isExt = d.kind.endsWith("Extension");
          list(isExt ? "Extensions" : "Definitions").push(definition(d as TypeNode, builtIn));
        }
    }
  }
  return out as unknown as GoObj;
}

/**
 * OPA's pruneIrrelevantGraphQLASTNodes: drops `Position`, nulls, and lists or objects that are
 * empty once pruned; strings (even "") and booleans stay. Iterative over an explicit stack would
 * be needed for unbounded depth; callers bound the nesting first (host-graphql.ts).
 */
export function prune(v: GoJson): GoJson {
  if (Array.isArray(v)) {
    const out: GoJson[] = [];
    for (const x of v) {
      if (x === null) continue;
      const p = prune(x);
      if (typeof p === "object" && p !== null && (Array.isArray(p) ? p.length : Object.keys(p).length) === 0) continue;
      out.push(p);
    }
    return out;
  }
  if (v !== null && typeof v === "object") {
    const out: GoObj = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === "Position" || x === null) continue;
      const p = prune(x);
      if (typeof p === "object" && p !== null && (Array.isArray(p) ? p.length : Object.keys(p).length) === 0) continue;
      out[k] = p;
    }
    return out;
  }
  return v;
}
