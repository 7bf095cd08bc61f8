/**
 * GraphQL text parsed with graphql-js for OPA's graphql.* builtins, held to what OPA's
 * gqlparser accepts. A syntax error both parsers report is an OPA builtin error (OpaBuiltinError:
 * undefined, or a failed evaluation with strict builtin errors). Where graphql-js 17 and
 * gqlparser are known or suspected to read the same text differently, the evaluation fails with
 * an error naming the limit (a plain Error) rather than answer for another document:
 * - `\u{...}` and surrogate `\uD800`-`\uDFFF` escapes (graphql-js 17 decodes them, gqlparser
 *   predates them), control characters and U+FEFF (the spec editions disagree);
 * - a number followed by a name or a dot (`1abc`: gqlparser reads two tokens);
 * - enum values named true/false/null (graphql-js refuses them while parsing, gqlparser later);
 * - nesting deeper than MAX_DEPTH or text longer than MAX_CHARS (graphql-js parses and
 *   validates recursively; a hostile query must not exhaust the stack).
 * Descriptions on operations, fragments and variables (new in graphql-js 17) are syntax errors
 * for gqlparser, so they are builtin errors here too.
 */
import { GraphQLError, Kind, Lexer, parse, Source, TokenKind, visit, type DocumentNode } from "graphql";
import { OpaBuiltinError } from "./host-exact-json.ts";

/** Deepest bracket nesting accepted ({, [, ( together). */
export const MAX_DEPTH = 128;
/** Longest GraphQL text accepted, in UTF-16 code units. */
export const MAX_CHARS = 1 << 20;
/** Most tokens accepted (validation work grows with them). */
export const MAX_TOKENS = 100_000;

/** A limit of Arbiter's: fails the evaluation in every mode (never turned into undefined). */
export class GraphqlUnsupported extends Error {
  override readonly name = "GraphqlUnsupported";
}

const unsupported = (name: string, what: string): never => {
  throw new GraphqlUnsupported(`${name}: Arbiter does not support ${what}`);
};

/** Refuses text the two parsers may read differently, before graphql-js sees it. */
function screen(name: string, text: string): void {
  if (text.length > MAX_CHARS) unsupported(name, `GraphQL text longer than ${MAX_CHARS} characters`);
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is looked for
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\ufeff]/.test(text))
    unsupported(name, "control characters or U+FEFF in GraphQL text (graphql-js and OPA's gqlparser differ there)");
  if (/\\u\{|\\u[dD][89a-fA-F]/.test(text))
    unsupported(
      name,
      "\\u{...} or surrogate \\u escapes in GraphQL strings (graphql-js and OPA's gqlparser differ there)",
    );
}

/**
 * Where gqlparser accepts text graphql-js refuses: it compares some keywords by token value
 * alone (a string "on" after `...`, "implements", an operation type in `schema { }`), parses
 * `schema` without braces, takes empty argument and variable lists `()` and allows variables in
 * the directives of variable definitions and input extensions. A syntax error on text with such
 * a token is refused, not answered.
 */
const KEYWORD_STRINGS = new Set(["on", "implements", "query", "mutation", "subscription"]);

interface Scan {
  /** Whether the text has any token (gqlparser accepts a document without definitions). */
  readonly any: boolean;
  /** A token gqlparser may read where graphql-js fails, if any. */
  readonly lenient?: string;
}

/** Scans the tokens (iteratively) for size, nesting depth and the tokens above. */
function scan(name: string, text: string): Scan {
  const lexer = new Lexer(new Source(text));
  let depth = 0;
  let count = 0;
  let lenient: string | undefined;
  for (let tok = lexer.advance(); tok.kind !== TokenKind.EOF; tok = lexer.advance()) {
    if (++count > MAX_TOKENS) unsupported(name, `GraphQL text of more than ${MAX_TOKENS} tokens`);
    const str = tok.kind === TokenKind.STRING || tok.kind === TokenKind.BLOCK_STRING;
    if (str && KEYWORD_STRINGS.has(tok.value)) lenient ??= `the string ${JSON.stringify(tok.value)}`;
    // A schema definition (`extend schema` needs directives or types in both parsers).
    const prev = tok.prev;
    const defStart =
      prev === null ||
      prev.kind === TokenKind.SOF ||
      prev.kind === TokenKind.BRACE_R ||
      prev.kind === TokenKind.STRING ||
      prev.kind === TokenKind.BLOCK_STRING;
    if (tok.kind === TokenKind.NAME && tok.value === "schema" && defStart) lenient ??= 'the name "schema"';
    // gqlparser's argument and variable lists may be empty: `f()`, `@d()`, `query Q()`.
    if (tok.kind === TokenKind.PAREN_R && prev?.kind === TokenKind.PAREN_L) lenient ??= "an empty ()";
    if (tok.kind === TokenKind.BRACE_L || tok.kind === TokenKind.BRACKET_L || tok.kind === TokenKind.PAREN_L) {
      if (++depth > MAX_DEPTH) unsupported(name, `GraphQL nested deeper than ${MAX_DEPTH} levels`);
    } else if (tok.kind === TokenKind.BRACE_R || tok.kind === TokenKind.BRACKET_R || tok.kind === TokenKind.PAREN_R) {
      depth--;
    }
  }
  return { any: count > 0, lenient };
}

/**
 * Whether the token at `pos` sits in the arguments of a directive (`@name(...)`): gqlparser
 * takes variables there on variable definitions and input extensions, while a variable in a
 * default value is a syntax error for both parsers.
 */
function inDirectiveArguments(text: string, pos: number | undefined): boolean {
  if (pos === undefined) return true;
  const lexer = new Lexer(new Source(text));
  const tokens: { kind: string; start: number }[] = [];
  const open: number[] = [];
  for (let tok = lexer.advance(); tok.kind !== TokenKind.EOF && tok.start < pos; tok = lexer.advance()) {
    tokens.push({ kind: tok.kind, start: tok.start });
    if (tok.kind === TokenKind.PAREN_L) open.push(tokens.length - 1);
    else if (tok.kind === TokenKind.PAREN_R) open.pop();
  }
  const paren = open.at(-1);
  return paren !== undefined && paren >= 2 && tokens[paren - 2]!.kind === TokenKind.AT;
}

function syntaxError(name: string, text: string, err: GraphQLError, lenient: string | undefined): never {
  if (/is reserved and cannot be used for an enum value/.test(err.message))
    unsupported(name, "enum values named true, false or null (OPA's gqlparser parses them)");
  // gqlparser ends a number at the first non-digit: `1abc` is the Int 1 and the Name abc.
  if (/^Syntax Error: Invalid number, expected digit but got: "[A-Za-z_.]"/.test(err.message))
    unsupported(name, "a GraphQL number followed by a name or a dot (OPA's gqlparser reads two tokens)");
  if (/^Syntax Error: Unexpected variable /.test(err.message) && inDirectiveArguments(text, err.positions?.[0]))
    unsupported(name, "variables in these GraphQL directive arguments (OPA's gqlparser allows some of them)");
  if (lenient !== undefined)
    unsupported(name, `this GraphQL syntax error near ${lenient} (OPA's gqlparser may accept the text)`);
  const at = err.locations?.[0];
  const msg = err.message.replace(/^Syntax Error: /, "").replace(/\.$/, "");
  throw new OpaBuiltinError(`${name}: ${msg}${at ? ` in GraphQL string at location ${at.line}:${at.column}` : ""}`);
}

/** graphql-js's parse under the screens above; null for a document without definitions. */
function parseText(name: string, text: string): DocumentNode | null {
  screen(name, text);
  let lenient: string | undefined;
  try {
    const scanned = scan(name, text);
    if (!scanned.any) return null;
    lenient = scanned.lenient;
    // gqlparser parses variable definitions on fragments; graphql-js 17 only with this option,
    // which also admits arguments on fragment spreads (refused in parseQueryText).
    return parse(text, { experimentalFragmentArguments: true });
  } catch (err) {
    if (err instanceof GraphQLError) syntaxError(name, text, err, lenient);
    if (err instanceof RangeError) unsupported(name, "GraphQL text this deeply nested (stack exhausted)");
    throw err;
  }
}

const fail = (name: string, d: { loc?: { startToken: { line: number; column: number } } }, what: string): never => {
  const at = d.loc?.startToken;
  throw new OpaBuiltinError(`${name}: ${what}${at ? ` in GraphQL string at location ${at.line}:${at.column}` : ""}`);
};

/** gqlparser's ParseQuery: only operations and fragments, none with a description. */
export function parseQueryText(name: string, text: string): DocumentNode {
  const doc = parseText(name, text);
  if (doc === null) return { kind: Kind.DOCUMENT, definitions: [] };
  for (const d of doc.definitions) {
    if (d.kind !== Kind.OPERATION_DEFINITION && d.kind !== Kind.FRAGMENT_DEFINITION) {
      fail(name, d, "Unexpected type-system definition in a query");
    } else {
      if (d.description) fail(name, d, "Unexpected String");
      for (const v of d.variableDefinitions ?? []) if (v.description) fail(name, v, "Unexpected String");
    }
  }
  // graphql-js 17 accepts `{}` and `...a(x: 1)`; gqlparser does not. visit() is iterative.
  visit(doc, {
    SelectionSet(node) {
      if (node.selections.length === 0) fail(name, node, "expected at least one definition, found }");
    },
    FragmentSpread(node) {
      if (node.arguments && node.arguments.length > 0) fail(name, node, "Expected Name, found (");
    },
  });
  return doc;
}

/** gqlparser's ParseSchema: only type-system definitions and extensions. */
export function parseSchemaText(name: string, text: string): DocumentNode {
  const doc = parseText(name, text);
  if (doc === null) return { kind: Kind.DOCUMENT, definitions: [] };
  for (const d of doc.definitions) {
    if (d.kind === Kind.OPERATION_DEFINITION || d.kind === Kind.FRAGMENT_DEFINITION)
      fail(name, d, "Unexpected executable definition in a schema");
    // gqlparser's interface extensions take no `implements` clause.
    if (d.kind === Kind.INTERFACE_TYPE_EXTENSION && (d.interfaces?.length ?? 0) > 0)
      fail(name, d, 'Unexpected Name "implements"');
  }
  return doc;
}
