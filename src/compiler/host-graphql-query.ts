/**
 * Query validation for OPA's graphql.* builtins: the gqlparser-shaped query document and the
 * schema validated by host-graphql-schema.ts are turned back into graphql-js syntax, and the
 * query is checked with the graphql-js rules gqlparser ported (gqlparser's validator/rules).
 * The schema is built from the merged, gqlparser-validated definitions with gqlparser's root
 * types and only gqlparser's directives, so graphql-js 17 additions (@oneOf, @defer, @stream)
 * cannot change an answer. Introspection fields (__schema, __type) are refused: the two
 * libraries describe introspection types of different spec editions.
 */
import * as G from "graphql";
import { VALUE_KIND, type GoObj } from "./host-graphql-ast.ts";
import { GraphqlUnsupported } from "./host-graphql-parse.ts";
import { NEWER_DIRECTIVES, type ValidSchema } from "./host-graphql-schema.ts";

const { Kind } = G;

/** gqlparser's rules (validator/rules), by their graphql-js names. */
const RULES = [
  G.FieldsOnCorrectTypeRule,
  G.FragmentsOnCompositeTypesRule,
  G.KnownArgumentNamesRule,
  G.KnownDirectivesRule,
  G.KnownFragmentNamesRule,
  G.KnownOperationTypesRule,
  G.KnownTypeNamesRule,
  G.LoneAnonymousOperationRule,
  G.NoFragmentCyclesRule,
  G.NoUndefinedVariablesRule,
  G.NoUnusedFragmentsRule,
  G.NoUnusedVariablesRule,
  G.OverlappingFieldsCanBeMergedRule,
  G.PossibleFragmentSpreadsRule,
  G.ProvidedRequiredArgumentsRule,
  G.ScalarLeafsRule,
  G.SingleFieldSubscriptionsRule,
  G.UniqueArgumentNamesRule,
  G.UniqueDirectivesPerLocationRule,
  G.UniqueFragmentNamesRule,
  G.UniqueInputFieldNamesRule,
  G.UniqueOperationNamesRule,
  G.UniqueVariableNamesRule,
  G.ValuesOfCorrectTypeRule,
  G.VariablesAreInputTypesRule,
  G.VariablesInAllowedPositionRule,
];

const NAME_RE = /^[_A-Za-z][_0-9A-Za-z]*$/;
const list = (v: unknown): GoObj[] => (Array.isArray(v) ? (v as GoObj[]) : []);
const strs = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);

/** Converts gqlparser-shaped JSON to graphql-js nodes; `fn` names the builtin in refusals. */
class ToGraphql {
  constructor(readonly fn: string) {}

  refuse(what: string): never {
    throw new GraphqlUnsupported(`${this.fn}: Arbiter does not support ${what}`);
  }

  name(v: unknown): G.NameNode {
    if (typeof v !== "string" || !NAME_RE.test(v)) this.refuse(`the GraphQL name ${JSON.stringify(v)}`);
    return { kind: Kind.NAME, value: v };
  }

  directiveName(v: unknown): G.NameNode {
    const n = this.name(v);
    if (NEWER_DIRECTIVES.has(n.value))
      this.refuse(`the directive @${n.value} (graphql-js and OPA's gqlparser differ on it)`);
    return n;
  }

  /** Types named `__...` would resolve to graphql-js's own introspection types, not gqlparser's. */
  named(v: unknown): G.NamedTypeNode {
    const name = this.name(v);
    if (name.value.startsWith("__")) this.refuse(`references to the introspection type ${name.value}`);
    return { kind: Kind.NAMED_TYPE, name };
  }

  type(t: GoObj): G.TypeNode {
    const inner: G.NamedTypeNode | G.ListTypeNode =
      t.Elem !== null && typeof t.Elem === "object"
        ? { kind: Kind.LIST_TYPE, type: this.type(t.Elem as GoObj) }
        : this.named(t.NamedType);
    return t.NonNull === true ? { kind: Kind.NON_NULL_TYPE, type: inner } : inner;
  }

  value(v: GoObj): G.ValueNode {
    const raw = typeof v.Raw === "string" ? v.Raw : "";
    const children = list(v.Children);
    switch (v.Kind) {
      case VALUE_KIND.Variable:
        return { kind: Kind.VARIABLE, name: this.name(raw) };
      case VALUE_KIND.Int:
        if (!/^-?(0|[1-9][0-9]*)$/.test(raw)) this.refuse(`the GraphQL Int value ${JSON.stringify(raw)}`);
        return { kind: Kind.INT, value: raw };
      case VALUE_KIND.Float:
        // Beyond f64 graphql-js reads Infinity where Go's ParseFloat fails: no common answer.
        if (!/^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/.test(raw) || !Number.isFinite(Number(raw)))
          this.refuse(`the GraphQL Float value ${JSON.stringify(raw)}`);
        return { kind: Kind.FLOAT, value: raw };
      case VALUE_KIND.String:
      case VALUE_KIND.Block:
        return { kind: Kind.STRING, value: raw, block: v.Kind === VALUE_KIND.Block };
      case VALUE_KIND.Boolean:
        if (raw !== "true" && raw !== "false") this.refuse(`the GraphQL Boolean value ${JSON.stringify(raw)}`);
        return { kind: Kind.BOOLEAN, value: raw === "true" };
      case VALUE_KIND.Null:
        return { kind: Kind.NULL };
      case VALUE_KIND.Enum:
        return { kind: Kind.ENUM, value: this.name(raw).value };
      case VALUE_KIND.List:
        return { kind: Kind.LIST, values: children.map((c) => this.value(c.Value as GoObj)) };
      case VALUE_KIND.Object:
        return {
          kind: Kind.OBJECT,
          fields: children.map((c) => ({
            kind: Kind.OBJECT_FIELD,
            name: this.name(c.Name),
            value: this.value(c.Value as GoObj),
          })),
        };
      default:
        return this.refuse(`the GraphQL value kind ${JSON.stringify(v.Kind)}`);
    }
  }

  args(as: unknown): G.ArgumentNode[] {
    return list(as).map((a) => ({ kind: Kind.ARGUMENT, name: this.name(a.Name), value: this.value(a.Value as GoObj) }));
  }

  directives(ds: unknown): G.DirectiveNode[] {
    return list(ds).map((d) => ({
      kind: Kind.DIRECTIVE,
      name: this.directiveName(d.Name),
      arguments: this.args(d.Arguments),
    }));
  }

  /** Every selection: OPA reads selections from objects as fields (gqlparser tries Field first). */
  selections(set: unknown): G.SelectionSetNode | undefined {
    const items = list(set);
    if (items.length === 0) return undefined;
    return {
      kind: Kind.SELECTION_SET,
      selections: items.map((s): G.SelectionNode => {
        if ("TypeCondition" in s)
          return {
            kind: Kind.INLINE_FRAGMENT,
            ...(s.TypeCondition === "" ? {} : { typeCondition: this.named(s.TypeCondition) }),
            directives: this.directives(s.Directives),
            selectionSet: this.selections(s.SelectionSet) ?? this.refuse("an inline fragment without selections"),
          };
        if (!("Alias" in s))
          return { kind: Kind.FRAGMENT_SPREAD, name: this.name(s.Name), directives: this.directives(s.Directives) };
        if (s.Name === "__schema" || s.Name === "__type") this.refuse("introspection queries (__schema, __type)");
        const sub = this.selections(s.SelectionSet);
        return {
          kind: Kind.FIELD,
          ...(s.Alias === s.Name ? {} : { alias: this.name(s.Alias) }),
          name: this.name(s.Name),
          arguments: this.args(s.Arguments),
          directives: this.directives(s.Directives),
          ...(sub ? { selectionSet: sub } : {}),
        };
      }),
    };
  }

  query(doc: GoObj): G.DocumentNode {
    const ops = list(doc.Operations).map((o): G.OperationDefinitionNode => ({
      kind: Kind.OPERATION_DEFINITION,
      operation: o.Operation as G.OperationTypeNode,
      ...(o.Name === "" ? {} : { name: this.name(o.Name) }),
      variableDefinitions: list(o.VariableDefinitions).map((v) => ({
        kind: Kind.VARIABLE_DEFINITION,
        variable: { kind: Kind.VARIABLE, name: this.name(v.Variable) },
        type: this.type(v.Type as GoObj),
        ...(v.DefaultValue ? { defaultValue: this.value(v.DefaultValue as GoObj) as G.ConstValueNode } : {}),
        directives: this.directives(v.Directives) as G.ConstDirectiveNode[],
      })),
      directives: this.directives(o.Directives),
      selectionSet: this.selections(o.SelectionSet) ?? this.refuse("an operation without selections"),
    }));
    const frags = list(doc.Fragments).map((f): G.FragmentDefinitionNode => ({
      kind: Kind.FRAGMENT_DEFINITION,
      name: this.name(f.Name),
      typeCondition: this.named(f.TypeCondition),
      directives: this.directives(f.Directives),
      selectionSet: this.selections(f.SelectionSet) ?? this.refuse("a fragment without selections"),
    }));
    return { kind: Kind.DOCUMENT, definitions: [...ops, ...frags] };
  }

  inputValues(as: unknown): G.InputValueDefinitionNode[] {
    return list(as).map((a) => ({
      kind: Kind.INPUT_VALUE_DEFINITION,
      name: this.name(a.Name),
      type: this.type(a.Type as GoObj),
      ...(a.DefaultValue ? { defaultValue: this.value(a.DefaultValue as GoObj) as G.ConstValueNode } : {}),
      directives: this.directives(a.Directives) as G.ConstDirectiveNode[],
    }));
  }

  /** One merged gqlparser Definition as a graphql-js type definition. */
  definition(d: GoObj): G.TypeDefinitionNode {
    const base = { name: this.name(d.Name), directives: this.directives(d.Directives) as G.ConstDirectiveNode[] };
    const fields = () =>
      list(d.Fields).map((f): G.FieldDefinitionNode => ({
        kind: Kind.FIELD_DEFINITION,
        name: this.name(f.Name),
        arguments: this.inputValues(f.Arguments),
        type: this.type(f.Type as GoObj),
        directives: this.directives(f.Directives) as G.ConstDirectiveNode[],
      }));
    const interfaces = () => strs(d.Interfaces).map((i) => this.named(i));
    switch (d.Kind) {
      case "SCALAR":
        return { kind: Kind.SCALAR_TYPE_DEFINITION, ...base };
      case "OBJECT":
        return { kind: Kind.OBJECT_TYPE_DEFINITION, ...base, interfaces: interfaces(), fields: fields() };
      case "INTERFACE":
        return { kind: Kind.INTERFACE_TYPE_DEFINITION, ...base, interfaces: interfaces(), fields: fields() };
      case "UNION":
        return { kind: Kind.UNION_TYPE_DEFINITION, ...base, types: strs(d.Types).map((t) => this.named(t)) };
      case "ENUM":
        return {
          kind: Kind.ENUM_TYPE_DEFINITION,
          ...base,
          values: list(d.EnumValues).map((e) => ({
            kind: Kind.ENUM_VALUE_DEFINITION,
            name: this.name(e.Name),
            directives: [],
          })),
        };
      case "INPUT_OBJECT":
        return { kind: Kind.INPUT_OBJECT_TYPE_DEFINITION, ...base, fields: this.inputValues(list(d.Fields)) };
      default:
        return this.refuse(`the GraphQL type kind ${JSON.stringify(d.Kind)}`);
    }
  }
}

/** A graphql-js schema equal, for query validation, to gqlparser's validated schema. */
function buildSchema(t: ToGraphql, schema: ValidSchema): G.GraphQLSchema {
  const defs: G.DefinitionNode[] = [];
  for (const [name, d] of schema.types) if (!name.startsWith("__")) defs.push(t.definition(d));
  for (const d of schema.directives.values()) {
    defs.push({
      kind: Kind.DIRECTIVE_DEFINITION,
      name: t.directiveName(d.Name),
      arguments: t.inputValues(d.Arguments),
      repeatable: d.IsRepeatable === true,
      locations: strs(d.Locations).map((l) => t.name(l)),
    });
  }
  const ops = (["query", "mutation", "subscription"] as const).flatMap((op) => {
    const type = schema.roots[op];
    return type === undefined
      ? []
      : [{ kind: Kind.OPERATION_TYPE_DEFINITION, operation: op as G.OperationTypeNode, type: t.named(type) }];
  });
  if (ops.length > 0)
    defs.push({ kind: Kind.SCHEMA_DEFINITION, operationTypes: ops as G.OperationTypeDefinitionNode[] });
  const built = G.buildASTSchema(
    { kind: Kind.DOCUMENT, definitions: defs },
    { assumeValid: true, assumeValidSDL: true },
  );
  const config = built.toConfig();
  // buildASTSchema adds graphql-js's specified directives (@oneOf ...); keep only gqlparser's.
  return new G.GraphQLSchema({
    ...config,
    query: schema.roots.query === undefined ? null : config.query,
    mutation: schema.roots.mutation === undefined ? null : config.mutation,
    subscription: schema.roots.subscription === undefined ? null : config.subscription,
    directives: config.directives.filter((d) => schema.directives.has(d.name)),
    assumeValid: true,
  });
}

/** gqlparser's validator.Validate: true when the query passes every rule. */
export function queryIsValid(fn: string, schema: ValidSchema, query: GoObj, fromObject: boolean): boolean {
  const t = new ToGraphql(fn);
  try {
    const doc = t.query(query);
    const errors = G.validate(buildSchema(t, schema), doc, RULES);
    // graphql-js 17 gives up past a work budget (overlapping fields, fragment expansion) and
    // reports that as an error; gqlparser has no budget, so no answer can be given.
    if (errors.some((e) => e.message === "Validation aborted."))
      t.refuse("validating a GraphQL query this large (graphql-js stopped at its work budget)");
    // gqlparser's KnownDirectives reads the misplaced directive's source position, which an AST
    // object does not have (OPA's vendored copy may fail there rather than answer).
    if (fromObject && errors.some((e) => /^Directive ".*" may not be used on /.test(e.message)))
      t.refuse("a misplaced directive in a GraphQL AST object (gqlparser reads its missing position)");
    return errors.length === 0;
  } catch (err) {
    if (err instanceof GraphqlUnsupported) throw err;
    if (err instanceof RangeError) t.refuse("GraphQL documents this deeply nested (stack exhausted)");
    return t.refuse(`this schema and query (graphql-js failed: ${(err as Error)?.message ?? String(err)})`);
  }
}
