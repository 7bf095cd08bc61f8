/**
 * The term half of the Rego parser: tokens, then terms. Operator precedence follows OPA's
 * parser: `in` < relations (`==` ...) < `|` < `&` < `+ -` < `* / %`. Like OPA, binary operators
 * are parsed greedily across newlines, while references and calls must follow their operand
 * without whitespace (`a[0]`, `f(x)`). Statements, rules and modules are in parser.ts.
 */
import type { Literal, Loc, Term, WithModifier } from "./ast.ts";
import { type Diagnostic, diagnostic } from "./diagnostics.ts";
import { describeToken, type Token } from "./lexer.ts";
import { desugarTemplate, type TemplatePart, walkRelation } from "./parser-template.ts";

export const KEYWORDS = new Set([
  "package",
  "import",
  "as",
  "default",
  "else",
  "if",
  "contains",
  "some",
  "in",
  "every",
  "not",
  "with",
]);

/** Thrown after a diagnostic was recorded: ends the parse of this module. */
export class ParseFailure extends Error {}

const MAX_NESTING = 100;

export const RELATIONS: Record<string, string> = {
  "==": "equal",
  "!=": "neq",
  "<": "lt",
  "<=": "lte",
  ">": "gt",
  ">=": "gte",
};

export abstract class TermParser {
  readonly diagnostics: Diagnostic[] = [];
  #pos = 0;
  #nesting = 0;
  /** Innermost syntactic context: a body (literals end at newlines) or a bracketed group. */
  protected readonly ctx: ("query" | "group")[] = [];
  protected readonly file: string;
  readonly #toks: Token[];

  constructor(file: string, toks: Token[]) {
    this.file = file;
    this.#toks = toks;
  }

  /** Literals separated by `;` or newlines, up to (not including) `close` (parser.ts). */
  abstract query(close: string): Literal[];
  abstract withModifiers(): WithModifier[];

  get tok(): Token {
    return this.#toks[this.#pos]!;
  }
  peek(n = 1): Token {
    return this.#toks[Math.min(this.#pos + n, this.#toks.length - 1)]!;
  }
  next(): Token {
    const t = this.tok;
    if (t.kind !== "eof") this.#pos++;
    return t;
  }
  /** Runs `fn`; when it fails to parse, puts the position, context and diagnostics back. */
  attempt<T>(fn: () => T): T | undefined {
    const [pos, nesting, ctx, diags] = [this.#pos, this.#nesting, this.ctx.length, this.diagnostics.length];
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof ParseFailure)) throw e;
      this.#pos = pos;
      this.#nesting = nesting;
      this.ctx.length = ctx;
      this.diagnostics.length = diags;
      return undefined;
    }
  }
  loc(t: Token = this.tok): Loc {
    return { file: this.file, line: t.line, col: t.col };
  }
  is(text: string, t: Token = this.tok): boolean {
    return (t.kind === "punct" || t.kind === "ident") && t.text === text;
  }
  fail(expected: string, t: Token = this.tok): never {
    const what = t.kind === "eof" ? "end of file" : `token ${describeToken(t)}`;
    this.diagnostics.push(diagnostic(this.file, t.line, t.col, `unexpected ${what}: expected ${expected}`));
    throw new ParseFailure();
  }
  error(loc: Loc, message: string): never {
    this.diagnostics.push(diagnostic(loc.file, loc.line, loc.col, message));
    throw new ParseFailure();
  }
  report(loc: Loc, message: string): void {
    this.diagnostics.push(diagnostic(loc.file, loc.line, loc.col, message));
  }
  expect(text: string, expected = `"${text}"`): Token {
    if (!this.is(text)) this.fail(expected);
    return this.next();
  }
  /** The current token (a keyword) is directly followed by ".": a reference, not the keyword. */
  protected keywordRef(): boolean {
    const next = this.peek();
    return this.tok.kind === "ident" && this.is(".", next) && !next.spaceBefore;
  }

  ident(expected = "a name"): Token {
    if (this.tok.kind !== "ident" || KEYWORDS.has(this.tok.text)) this.fail(expected);
    return this.next();
  }

  protected inGroup<T>(fn: () => T): T {
    this.ctx.push("group");
    try {
      return fn();
    } finally {
      this.ctx.pop();
    }
  }

  termVar(): Term {
    const t = this.ident("a variable");
    return { type: "var", name: t.text, orig: t.text, loc: this.loc(t) };
  }

  /** `with target as value` modifiers after a literal (attached to it; empty list: none). */

  termList(close: string): Term[] {
    const items: Term[] = [];
    while (!this.is(close)) {
      items.push(this.termIn());
      if (!this.is(",")) break;
      this.next();
    }
    return items;
  }

  /**
   * `k, v in xs` after its first term `k` has been parsed (in parentheses or as a literal), then
   * any further `in` (`1, 2 in [2] in [true]` is `(1, 2 in [2]) in [true]`), as OPA parses it.
   */
  memberWithKey(first: Term): Term {
    if (!this.is(",")) return first;
    this.next();
    const v = this.termRelation();
    this.expect("in", `"in"`);
    let t: Term = { type: "call", name: "internal.member_3", args: [first, v, this.termRelation()], loc: first.loc };
    while (this.is("in") && !this.keywordRef()) {
      this.next();
      t = { type: "call", name: "internal.member_2", args: [t, this.termRelation()], loc: t.loc };
    }
    return t;
  }

  termIn(): Term {
    let t = this.termRelation();
    while (this.is("in") && !this.keywordRef()) {
      this.next();
      const rhs = this.termRelation();
      t = { type: "call", name: "internal.member_2", args: [t, rhs], loc: t.loc };
    }
    return t;
  }

  termRelation(noOr = false): Term {
    let t = this.termOr(noOr);
    while (this.tok.kind === "punct" && this.tok.text in RELATIONS) {
      const op = this.next();
      const rhs = this.termOr(noOr);
      t = { type: "call", name: RELATIONS[op.text]!, args: [t, rhs], loc: t.loc };
    }
    return t;
  }

  termOr(noOr: boolean): Term {
    let t = this.termAnd();
    while (!noOr && this.is("|")) {
      this.next();
      t = { type: "call", name: "or", args: [t, this.termAnd()], loc: t.loc };
    }
    return t;
  }

  termAnd(): Term {
    let t = this.termArith();
    while (this.is("&")) {
      this.next();
      t = { type: "call", name: "and", args: [t, this.termArith()], loc: t.loc };
    }
    return t;
  }

  termArith(): Term {
    let t = this.termFactor();
    while (this.is("+") || this.is("-")) {
      if (this.is("-") && this.tok.newlineBefore && this.ctx.at(-1) === "query") {
        // `a\n-1 ...` in a body: a new literal starting with a negative number, or `a - 1`?
        // Refuse rather than guess.
        this.error(
          this.loc(),
          `ambiguous "-" at the start of a line: end the previous line with the operator, or use parentheses`,
        );
      }
      const op = this.next();
      t = { type: "call", name: op.text === "+" ? "plus" : "minus", args: [t, this.termFactor()], loc: t.loc };
    }
    return t;
  }

  termFactor(): Term {
    let t = this.unary();
    while (this.is("*") || this.is("/") || this.is("%")) {
      const op = this.next();
      const name = op.text === "*" ? "mul" : op.text === "/" ? "div" : "rem";
      t = { type: "call", name, args: [t, this.unary()], loc: t.loc };
    }
    return t;
  }

  unary(): Term {
    if (this.is("-")) {
      const minus = this.next();
      if (this.tok.kind === "number" && !this.tok.spaceBefore) {
        this.#checkNumber(`-${this.tok.text}`, this.loc(minus));
        const n = this.next();
        return this.postfix({ type: "number", text: n.text === "0" ? "0" : `-${n.text}`, loc: this.loc(minus) });
      }
      const operand = this.unary();
      return {
        type: "call",
        name: "minus",
        args: [{ type: "number", text: "0", loc: this.loc(minus) }, operand],
        loc: this.loc(minus),
      };
    }
    return this.primary();
  }

  primary(): Term {
    const t = this.tok;
    // Bound the recursion: absurdly nested input must fail as a compile error, not a stack overflow.
    if (++this.#nesting > MAX_NESTING)
      this.error(this.loc(t), `expression nested more than ${MAX_NESTING} levels deep`);
    try {
      return this.#primary(t);
    } finally {
      this.#nesting--;
    }
  }

  /**
   * OPA's numbers are arbitrary precision; the runtime holds f64 and exact 64-bit integers. A
   * literal it cannot hold exactly fails the build rather than silently meaning another number.
   */
  #checkNumber(text: string, loc: Loc): void {
    const why = inexactNumber(text);
    if (why)
      this.report(
        loc,
        `number ${text} ${why}; OPA's numbers are arbitrary precision and Arbiter's runtime cannot hold this one exactly`,
      );
  }

  #primary(t: Token): Term {
    const loc = this.loc(t);
    if (t.kind === "number") {
      this.next();
      this.#checkNumber(t.text, loc);
      return this.postfix({ type: "number", text: t.text, loc });
    }
    if (t.kind === "string") {
      this.next();
      return this.postfix({ type: "string", value: t.text, loc });
    }
    if (t.kind === "tmplStart") return this.postfix(this.#template(loc));
    if (t.kind === "ident") {
      if ((t.text === "true" || t.text === "false") && !this.keywordRef()) {
        this.next();
        return { type: "boolean", value: t.text === "true", loc };
      }
      if (t.text === "null" && !this.keywordRef()) {
        this.next();
        return { type: "null", loc };
      }
      const isCall = this.is("(", this.peek()) && !this.peek().spaceBefore;
      if (KEYWORDS.has(t.text) && !(t.text === "contains" && isCall) && !this.keywordRef()) this.fail("a term");
      this.next();
      // A dotted name directly followed by "(" is a call: regex.match(...), data.lib.f(...).
      let i = 0;
      const parts = [t.text];
      while (this.is(".", this.peek(i)) && this.peek(i + 1).kind === "ident" && !this.peek(i + 1).spaceBefore) i += 2;
      const callTok = this.peek(i);
      if (this.is("(", callTok) && !callTok.spaceBefore) {
        for (let k = 0; k < i; k += 2) {
          this.next();
          parts.push(this.next().text);
        }
        this.next();
        const name = parts.join(".");
        const args = this.inGroup(() => this.termList(")"));
        this.expect(")", `"," or ")"`);
        if (name === "set" && args.length === 0) return this.postfix({ type: "set", items: [], loc });
        if (name === "walk") return this.postfix(walkRelation(args, loc));
        return this.postfix({ type: "call", name, args, loc });
      }
      return this.postfix({ type: "var", name: t.text, orig: t.text, loc });
    }
    if (this.is("(")) {
      this.next();
      const inner = this.inGroup(() => this.memberWithKey(this.termIn()));
      this.expect(")");
      return this.postfix(inner);
    }
    if (this.is("[")) {
      this.next();
      // `[1 | true][0]`, `["a", "b"][i]`: collections and comprehensions take references too.
      return this.postfix(this.inGroup(() => this.#arrayRest(loc)));
    }
    if (this.is("{")) {
      this.next();
      return this.postfix(this.inGroup(() => this.#braceRest(loc)));
    }
    return this.fail("a term");
  }

  /** `$"..."`: the lexer's parts, each `{expr}` a term with optional `with` modifiers. */
  #template(loc: Loc): Term {
    this.next();
    const parts: TemplatePart[] = [];
    while (this.tok.kind !== "tmplEnd") {
      if (this.tok.kind === "string") {
        parts.push(this.next().text);
        continue;
      }
      this.expect("{");
      const term = this.inGroup(() => this.termIn());
      const withs = this.withModifiers();
      this.expect("}");
      parts.push({ term, withs });
    }
    this.next();
    return desugarTemplate(parts, loc);
  }

  #arrayRest(loc: Loc): Term {
    {
      if (this.is("]")) {
        this.next();
        return this.postfix({ type: "array", items: [], loc });
      }
      const first = this.termRelation(true);
      if (this.is("|")) {
        this.next();
        const body = this.query("]");
        this.expect("]");
        return { type: "arrayCompr", head: first, body, loc };
      }
      const items = [this.continueIn(first)];
      while (this.is(",")) {
        this.next();
        if (this.is("]")) break;
        items.push(this.termIn());
      }
      this.expect("]", `"," or "]"`);
      return this.postfix({ type: "array", items, loc });
    }
  }

  #braceRest(loc: Loc): Term {
    {
      if (this.is("}")) {
        this.next();
        return this.postfix({ type: "object", pairs: [], loc });
      }
      const first = this.termRelation(true);
      if (this.is(":")) {
        this.next();
        const v = this.termRelation(true);
        if (this.is("|")) {
          this.next();
          const body = this.query("}");
          this.expect("}");
          return { type: "objectCompr", key: first, value: v, body, loc };
        }
        const pairs: [Term, Term][] = [[first, this.continueIn(v)]];
        while (this.is(",")) {
          this.next();
          if (this.is("}")) break;
          const k = this.termIn();
          this.expect(":");
          pairs.push([k, this.termIn()]);
        }
        this.expect("}", `"," or "}"`);
        return this.postfix({ type: "object", pairs, loc });
      }
      if (this.is("|")) {
        this.next();
        const body = this.query("}");
        this.expect("}");
        return { type: "setCompr", head: first, body, loc };
      }
      const items = [this.continueIn(first)];
      while (this.is(",")) {
        this.next();
        if (this.is("}")) break;
        items.push(this.termIn());
      }
      this.expect("}", `"," or "}"`);
      return this.postfix({ type: "set", items, loc });
    }
  }

  /** After a term parsed without `|` (to detect comprehensions), finish `| ...` and `in`. */
  continueIn(t: Term): Term {
    while (this.is("|")) {
      this.next();
      t = { type: "call", name: "or", args: [t, this.termAnd()], loc: t.loc };
    }
    while (this.tok.kind === "punct" && this.tok.text in RELATIONS) {
      const op = this.next();
      t = { type: "call", name: RELATIONS[op.text]!, args: [t, this.termOr(false)], loc: t.loc };
    }
    while (this.is("in") && !this.keywordRef()) {
      this.next();
      t = { type: "call", name: "internal.member_2", args: [t, this.termRelation()], loc: t.loc };
    }
    return t;
  }

  postfix(head: Term): Term {
    const path: Term[] = [];
    for (;;) {
      if (this.is(".") && !this.tok.spaceBefore) {
        this.next();
        const k = this.tok;
        if (k.kind !== "ident") this.fail('a name after "."');
        this.next();
        path.push({ type: "string", value: k.text, loc: this.loc(k) });
      } else if (this.is("[") && !this.tok.spaceBefore) {
        this.next();
        path.push(this.inGroup(() => this.termIn()));
        this.expect("]");
      } else {
        break;
      }
    }
    if (path.length === 0) return head;
    if (head.type === "ref") return { type: "ref", head: head.head, path: [...head.path, ...path], loc: head.loc };
    return { type: "ref", head, path, loc: head.loc };
  }
}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

/** Why a Rego/JSON number literal cannot be held exactly by the runtime, or undefined when it can. */
export function inexactNumber(text: string): string | undefined {
  if (/^-?\d+$/.test(text)) {
    const v = BigInt(text);
    return v < I64_MIN || v > I64_MAX ? "is an integer beyond 64 bits" : undefined;
  }
  const x = Number(text);
  if (!Number.isFinite(x)) return "is beyond the range of a 64-bit float";
  return undefined;
}
