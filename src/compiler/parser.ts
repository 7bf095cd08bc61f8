/**
 * Recursive-descent parser for Rego v1 (the syntax OPA 1.x accepts by default). Operator
 * precedence follows OPA's parser: `in` < relations (`==` ...) < `|` < `&` < `+ -` < `* / %`.
 * Like OPA, binary operators are parsed greedily across newlines, while references and calls
 * must follow their operand without whitespace (`a[0]`, `f(x)`).
 *
 * Constructs that parse but are outside the supported subset (`with`, multi-part rule heads)
 * are recorded as diagnostics and parsing continues, so one run reports all of them.
 */
import type { Body, ElseClause, Import, Literal, Loc, Module, Rule, Term, WithModifier } from "./ast.ts";
import { type Diagnostic, diagnostic, RegoCompileError } from "./diagnostics.ts";
import { describeToken, type Token, tokenize } from "./lexer.ts";

const KEYWORDS = new Set([
  "package", "import", "as", "default", "else", "if", "contains", "some", "in", "every", "not", "with",
]);

class ParseFailure extends Error {}

const MAX_NESTING = 100;

const RELATIONS: Record<string, string> = { "==": "equal", "!=": "neq", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte" };

export interface ParseOptions {
  /**
   * Rego v0 syntax (`opa ... --v0-compatible`, a bundle manifest's `rego_version: 0`): rule
   * bodies without `if` (`allow { ... }`), partial sets without `contains` (`deny[msg] { ... }`).
   * `if`, `contains`, `in` and `every` stay keywords, as with `import future.keywords`.
   */
  readonly v0?: boolean;
}

export function parseModule(file: string, text: string, options: ParseOptions = {}): { module: Module; diagnostics: Diagnostic[] } {
  const p = new Parser(file, tokenize(file, text), options.v0 === true);
  try {
    const module = p.module();
    return { module, diagnostics: p.diagnostics };
  } catch (e) {
    if (e instanceof ParseFailure) throw new RegoCompileError(p.diagnostics);
    throw e;
  }
}

class Parser {
  readonly diagnostics: Diagnostic[] = [];
  #pos = 0;
  #nesting = 0;
  /** Innermost syntactic context: a body (literals end at newlines) or a bracketed group. */
  readonly #ctx: ("query" | "group")[] = [];
  readonly #file: string;
  readonly #toks: Token[];

  readonly #v0: boolean;

  constructor(file: string, toks: Token[], v0 = false) {
    this.#file = file;
    this.#toks = toks;
    this.#v0 = v0;
  }

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
  loc(t: Token = this.tok): Loc {
    return { file: this.#file, line: t.line, col: t.col };
  }
  is(text: string, t: Token = this.tok): boolean {
    return (t.kind === "punct" || t.kind === "ident") && t.text === text;
  }
  fail(expected: string, t: Token = this.tok): never {
    const what = t.kind === "eof" ? "end of file" : `token ${describeToken(t)}`;
    this.diagnostics.push(diagnostic(this.#file, t.line, t.col, `unexpected ${what}: expected ${expected}`));
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
  #keywordRef(): boolean {
    const next = this.peek();
    return this.tok.kind === "ident" && this.is(".", next) && !next.spaceBefore;
  }

  ident(expected = "a name"): Token {
    if (this.tok.kind !== "ident" || KEYWORDS.has(this.tok.text)) this.fail(expected);
    return this.next();
  }

  module(): Module {
    const pkgTok = this.tok;
    if (!this.is("package")) this.fail(`"package"`);
    this.next();
    const pkg = this.dottedPath("a package name");
    if (pkg[0] === "data") pkg.shift();
    if (pkg.length === 0) this.fail("a package name", pkgTok);
    const imports: Import[] = [];
    while (this.is("import") && !this.#keywordRef()) {
      const imp = this.importDecl();
      if (imp) imports.push(imp);
    }
    const rules: Rule[] = [];
    while (this.tok.kind !== "eof") {
      if (this.is("import") && !this.#keywordRef()) this.error(this.loc(), "unexpected token \"import\": imports must come before rules");
      if (this.is("package") && !this.#keywordRef()) this.error(this.loc(), "unexpected token \"package\": one package per file");
      rules.push(this.rule());
    }
    return { file: this.#file, pkg, pkgLoc: this.loc(pkgTok), imports, rules };
  }

  dottedPath(expected: string): string[] {
    const parts = [this.ident(expected).text];
    for (;;) {
      if (this.is(".") && !this.tok.spaceBefore) {
        this.next();
        // After a dot, keywords are plain names (`package foo.if.bar`), as in OPA.
        if (this.tok.kind !== "ident") this.fail(expected);
        parts.push(this.next().text);
      } else if (this.is("[") && !this.tok.spaceBefore && this.peek().kind === "string" && this.is("]", this.peek(2))) {
        this.next();
        parts.push(this.next().text);
        this.next();
      } else {
        return parts;
      }
    }
  }

  importDecl(): Import | undefined {
    this.next();
    const loc = this.loc();
    const path = this.dottedPath("an import path");
    let alias = path[path.length - 1]!;
    if (this.is("as")) {
      this.next();
      alias = this.ident("an import alias").text;
    }
    const root = path[0];
    if (root === "rego" || root === "future") {
      const ok = root === "rego" ? path.length === 2 && path[1] === "v1" : path[1] === "keywords";
      if (!ok) this.report(loc, `unsupported: import ${path.join(".")}`);
      return undefined;
    }
    if (root !== "input" && root !== "data") {
      this.report(loc, `unsupported: import path ${path.join(".")} (must begin with input, data, rego or future)`);
      return undefined;
    }
    if (root === "data" && path.length === 1 && alias === "data") return undefined;
    if (root === "input" && path.length === 1 && alias === "input") return undefined;
    return { path, alias, loc };
  }

  rule(): Rule {
    const loc = this.loc();
    let isDefault = false;
    if (this.is("default") && !this.#keywordRef()) {
      this.next();
      isDefault = true;
    }
    // A keyword directly followed by "." starts a reference (`if.foo := 1`), as in OPA.
    const nameTok = this.#keywordRef() ? this.next() : this.ident("a rule name");
    const name = nameTok.text;
    let kind: Rule["kind"] = "complete";
    let args: Term[] = [];
    let key: Term | undefined;
    let value: Term | undefined;
    // A multi-part head (`a.b.c := x`, `a.b contains x`, `a.b[k] := v`): constant parts after the name.
    const ref: string[] = [];
    for (;;) {
      if (this.is(".") && !this.tok.spaceBefore) {
        this.next();
        if (this.tok.kind !== "ident") this.fail("a name after \".\"");
        ref.push(this.next().text);
      } else if (this.is("[") && !this.tok.spaceBefore && this.peek().kind === "string" && this.is("]", this.peek(2)) &&
        // A constant key as the last part (`p["k"] := v`) stays a partial object entry, as before,
        // so it may sit beside `p[k] := v` rules.
        (this.is(".", this.peek(3)) || this.is("[", this.peek(3)) || this.is("contains", this.peek(3)))) {
        this.next();
        ref.push(this.next().text);
        this.next();
      } else {
        break;
      }
    }
    if (this.is("(") && !this.tok.spaceBefore) {
      if (ref.length > 0) this.error(this.loc(), "unsupported: function with a multi-part name");
      this.next();
      kind = "function";
      args = this.termList(")");
      this.expect(")");
    } else if (this.is("[") && !this.tok.spaceBefore) {
      const bracket = this.next();
      key = this.termIn();
      this.expect("]");
      if ((this.is(".") || this.is("[")) && !this.tok.spaceBefore) {
        this.error(this.loc(bracket), "unsupported: rule head reference with a variable part before its last part");
      }
      if (!this.is(":=") && !this.is("=")) {
        // v0: `deny[msg] { ... }` is a partial set.
        if (!this.#v0) this.error(this.loc(bracket), `unsupported: rule head ${name}[...] without a value (use "contains" for partial sets)`);
        kind = "set";
      } else {
        kind = "object";
      }
    } else if (this.is("contains")) {
      this.next();
      kind = "set";
      key = this.termIn();
    }
    if (kind !== "set" && (this.is(":=") || this.is("="))) {
      this.next();
      value = this.termIn();
    }
    if (isDefault) {
      if (kind === "set" || kind === "object") this.error(loc, "unsupported: default on a partial rule");
      if (value === undefined) this.fail(`":=" after the name of a default rule`);
      if (this.is("if")) this.error(this.loc(), "default rules must not have a body");
      return { loc, name, ...(ref.length > 0 ? { ref } : {}), kind, isDefault, args, key, value, body: [], elses: [] };
    }
    if (kind === "complete" && value === undefined && !this.is("if") && !(this.#v0 && this.is("{"))) {
      if (this.is("{")) this.error(this.loc(), "`if` keyword is required before rule body");
      this.fail(`"if", ":=" or "contains"`);
    }
    let body: Body = [];
    if (this.is("if")) {
      this.next();
      body = this.ruleBody();
    } else if (this.is("{")) {
      if (!this.#v0) this.error(this.loc(), "`if` keyword is required before rule body");
      body = this.ruleBody();
    }
    const elses: ElseClause[] = [];
    while (this.is("else") && !this.#keywordRef()) {
      const elseTok = this.next();
      if (kind === "set" || kind === "object") this.error(this.loc(elseTok), "else keyword cannot be used on partial rules");
      let elseValue: Term | undefined;
      if (this.is(":=") || this.is("=")) {
        this.next();
        elseValue = this.termIn();
      }
      let elseBody: Body = [];
      if (this.is("if")) {
        this.next();
        elseBody = this.ruleBody();
      } else if (this.is("{")) {
        if (!this.#v0) this.error(this.loc(), "`if` keyword is required before rule body");
        elseBody = this.ruleBody();
      }
      elses.push({ value: elseValue, body: elseBody, loc: this.loc(elseTok) });
    }
    if (this.tok.kind !== "eof" && !this.tok.newlineBefore) {
      this.fail("a new line after the rule");
    }
    return { loc, name, ...(ref.length > 0 ? { ref } : {}), kind, isDefault, args, key, value, body, elses };
  }

  ruleBody(): Body {
    if (this.is("{")) {
      this.next();
      const body = this.query("}");
      this.expect("}");
      return body;
    }
    this.#ctx.push("query");
    try {
      return [this.literal()];
    } finally {
      this.#ctx.pop();
    }
  }

  /** Literals separated by `;` or newlines, up to (not including) `close`. */
  query(close: string): Literal[] {
    this.#ctx.push("query");
    try {
      return this.#query(close);
    } finally {
      this.#ctx.pop();
    }
  }

  #inGroup<T>(fn: () => T): T {
    this.#ctx.push("group");
    try {
      return fn();
    } finally {
      this.#ctx.pop();
    }
  }

  #query(close: string): Literal[] {
    const lits: Literal[] = [];
    while (!this.is(close)) {
      if (this.tok.kind === "eof") this.fail(`"${close}"`);
      lits.push(this.literal());
      if (this.is(";")) {
        this.next();
        continue;
      }
      if (this.is(close) || this.tok.newlineBefore) continue;
      this.fail(`";", a new line or "${close}"`);
    }
    if (lits.length === 0) this.fail("a body expression");
    return lits;
  }

  literal(): Literal {
    const loc = this.loc();
    if (this.is("some") && !this.#keywordRef()) {
      this.next();
      const first = this.termRelation();
      const terms = [first];
      while (this.is(",")) {
        this.next();
        terms.push(this.termRelation());
      }
      if (this.is("in")) {
        this.next();
        if (terms.length > 2) this.fail(`"in" after at most two variables`);
        const collection = this.termRelation();
        const lit: Literal =
          terms.length === 2
            ? { kind: "someIn", key: terms[0], value: terms[1]!, collection, loc }
            : { kind: "someIn", key: undefined, value: terms[0]!, collection, loc };
        return withs(lit, this.withModifiers());
      }
      for (const t of terms) if (t.type !== "var") this.error(t.loc, "unsupported: some declaration of a non-variable");
      return { kind: "some", vars: terms, loc };
    }
    if (this.is("every") && !this.#keywordRef()) {
      this.next();
      const first = this.termVar();
      let key: Term | undefined;
      let value = first;
      if (this.is(",")) {
        this.next();
        key = first;
        value = this.termVar();
      }
      this.expect("in");
      const domain = this.termRelation();
      this.expect("{");
      const body = this.query("}");
      this.expect("}");
      return withs({ kind: "every", key, value, domain, body, loc }, this.withModifiers());
    }
    let negated = false;
    if (this.is("not") && !this.#keywordRef()) {
      this.next();
      negated = true;
    }
    let term = this.termIn();
    if (this.is(",") && !negated) {
      // `k, v in xs` as an expression
      this.next();
      const v = this.termRelation();
      this.expect("in", `"in"`);
      const coll = this.termRelation();
      term = { type: "call", name: "internal.member_3", args: [term, v, coll], loc: term.loc };
    }
    if (this.is(":=") || this.is("=")) {
      const op = this.next();
      const rhs = this.termIn();
      term = { type: "call", name: op.text === ":=" ? "assign" : "eq", args: [term, rhs], loc: this.loc(op) };
    }
    return withs({ kind: "expr", negated, term, loc }, this.withModifiers());
  }

  termVar(): Term {
    const t = this.ident("a variable");
    return { type: "var", name: t.text, orig: t.text, loc: this.loc(t) };
  }

  /** `with target as value` modifiers after a literal (attached to it; empty list: none). */
  withModifiers(): WithModifier[] {
    const out: WithModifier[] = [];
    while (this.is("with")) {
      const loc = this.loc();
      this.next();
      const target = this.termRelation();
      this.expect("as");
      const value = this.termRelation();
      out.push({ target, value, loc });
    }
    return out;
  }

  termList(close: string): Term[] {
    const items: Term[] = [];
    while (!this.is(close)) {
      items.push(this.termIn());
      if (!this.is(",")) break;
      this.next();
    }
    return items;
  }

  termIn(): Term {
    let t = this.termRelation();
    while (this.is("in")) {
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
      if (this.is("-") && this.tok.newlineBefore && this.#ctx.at(-1) === "query") {
        // `a\n-1 ...` in a body: a new literal starting with a negative number, or `a - 1`?
        // Refuse rather than guess.
        this.error(this.loc(), `ambiguous "-" at the start of a line: end the previous line with the operator, or use parentheses`);
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
      return { type: "call", name: "minus", args: [{ type: "number", text: "0", loc: this.loc(minus) }, operand], loc: this.loc(minus) };
    }
    return this.primary();
  }

  primary(): Term {
    const t = this.tok;
    // Bound the recursion: absurdly nested input must fail as a compile error, not a stack overflow.
    if (++this.#nesting > MAX_NESTING) this.error(this.loc(t), `expression nested more than ${MAX_NESTING} levels deep`);
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
    if (why) this.report(loc, `number ${text} ${why}; OPA's numbers are arbitrary precision and Arbiter's runtime cannot hold this one exactly`);
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
    if (t.kind === "ident") {
      if ((t.text === "true" || t.text === "false") && !this.#keywordRef()) {
        this.next();
        return { type: "boolean", value: t.text === "true", loc };
      }
      if (t.text === "null" && !this.#keywordRef()) {
        this.next();
        return { type: "null", loc };
      }
      const isCall = this.is("(", this.peek()) && !this.peek().spaceBefore;
      if (KEYWORDS.has(t.text) && !(t.text === "contains" && isCall) && !this.#keywordRef()) this.fail("a term");
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
        const args = this.#inGroup(() => this.termList(")"));
        this.expect(")", `"," or ")"`);
        if (name === "set" && args.length === 0) return this.postfix({ type: "set", items: [], loc });
        return this.postfix({ type: "call", name, args, loc });
      }
      return this.postfix({ type: "var", name: t.text, orig: t.text, loc });
    }
    if (this.is("(")) {
      this.next();
      const inner = this.#inGroup(() => this.termIn());
      this.expect(")");
      return this.postfix(inner);
    }
    if (this.is("[")) {
      this.next();
      return this.#inGroup(() => this.#arrayRest(loc));
    }
    if (this.is("{")) {
      this.next();
      return this.#inGroup(() => this.#braceRest(loc));
    }
    return this.fail("a term");
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
    while (this.is("in")) {
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
        if (k.kind !== "ident") this.fail("a name after \".\"");
        this.next();
        path.push({ type: "string", value: k.text, loc: this.loc(k) });
      } else if (this.is("[") && !this.tok.spaceBefore) {
        this.next();
        path.push(this.#inGroup(() => this.termIn()));
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

function withs(lit: Literal, mods: WithModifier[]): Literal {
  return mods.length === 0 ? lit : { ...lit, withs: mods };
}
