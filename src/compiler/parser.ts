/**
 * Recursive-descent parser for Rego v1 (the syntax OPA 1.x accepts by default): modules,
 * imports, rules and body literals; terms are parsed by TermParser (parser-terms.ts).
 *
 * Constructs that parse but are outside the supported subset are recorded as diagnostics and
 * parsing continues, so one run reports all of them.
 */
import { type Comment, moduleAnnotations } from "./annotations.ts";
import type { Body, ElseClause, Import, Literal, Module, Rule, Term, WithModifier } from "./ast.ts";
import { type Diagnostic, RegoCompileError } from "./diagnostics.ts";
import { type Token, tokenize } from "./lexer.ts";
import { ParseFailure, TermParser } from "./parser-terms.ts";

export { inexactNumber } from "./parser-terms.ts";

export interface ParseOptions {
  /**
   * Rego v0 syntax (`opa ... --v0-compatible`, a bundle manifest's `rego_version: 0`): rule
   * bodies without `if` (`allow { ... }`), partial sets without `contains` (`deny[msg] { ... }`).
   * `if`, `contains`, `in` and `every` stay keywords, as with `import future.keywords`.
   */
  readonly v0?: boolean;
}

export function parseModule(
  file: string,
  text: string,
  options: ParseOptions = {},
): { module: Module; diagnostics: Diagnostic[] } {
  const comments: Comment[] = [];
  const p = new Parser(file, tokenize(file, text, comments), options.v0 === true);
  try {
    const module = p.module();
    if (!comments.some((c) => c.col === 1 && c.text.trim().startsWith("METADATA")))
      return { module, diagnostics: p.diagnostics };
    const annotations = moduleAnnotations(file, comments, module, p.diagnostics);
    return { module: { ...module, annotations }, diagnostics: p.diagnostics };
  } catch (e) {
    if (e instanceof ParseFailure) throw new RegoCompileError(p.diagnostics);
    throw e;
  }
}

class Parser extends TermParser {
  readonly #v0: boolean;

  constructor(file: string, toks: Token[], v0 = false) {
    super(file, toks);
    this.#v0 = v0;
  }

  module(): Module {
    const pkgTok = this.tok;
    if (!this.is("package")) this.fail(`"package"`);
    this.next();
    const pkg = this.dottedPath("a package name");
    if (pkg[0] === "data") pkg.shift();
    if (pkg.length === 0) this.fail("a package name", pkgTok);
    const imports: Import[] = [];
    while (this.is("import") && !this.keywordRef()) {
      const imp = this.importDecl();
      if (imp) imports.push(imp);
    }
    const rules: Rule[] = [];
    while (this.tok.kind !== "eof") {
      if (this.is("import") && !this.keywordRef())
        this.error(this.loc(), 'unexpected token "import": imports must come before rules');
      if (this.is("package") && !this.keywordRef())
        this.error(this.loc(), 'unexpected token "package": one package per file');
      rules.push(this.rule());
    }
    return { file: this.file, pkg, pkgLoc: this.loc(pkgTok), imports, rules };
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
    if (this.is("default") && !this.keywordRef()) {
      this.next();
      isDefault = true;
    }
    // A keyword directly followed by "." starts a reference (`if.foo := 1`), as in OPA.
    const nameTok = this.keywordRef() ? this.next() : this.ident("a rule name");
    const name = nameTok.text;
    let kind: Rule["kind"] = "complete";
    let args: Term[] = [];
    let key: Term | undefined;
    let value: Term | undefined;
    let dynRef: Term[] | undefined;
    // A multi-part head (`a.b.c := x`, `a.b contains x`, `a.b[k] := v`): constant parts after the name.
    const ref: string[] = [];
    for (;;) {
      if (this.is(".") && !this.tok.spaceBefore) {
        this.next();
        if (this.tok.kind !== "ident") this.fail('a name after "."');
        ref.push(this.next().text);
      } else if (
        this.is("[") &&
        !this.tok.spaceBefore &&
        this.peek().kind === "string" &&
        this.is("]", this.peek(2)) &&
        // A constant key as the last part (`p["k"] := v`) stays a partial object entry, as before,
        // so it may sit beside `p[k] := v` rules.
        (this.is(".", this.peek(3)) ||
          this.is("[", this.peek(3)) ||
          this.is("(", this.peek(3)) ||
          this.is("contains", this.peek(3)))
      ) {
        this.next();
        ref.push(this.next().text);
        this.next();
      } else {
        break;
      }
    }
    if (this.is("(") && !this.tok.spaceBefore) {
      this.next();
      kind = "function";
      args = this.termList(")");
      this.expect(")");
    } else if (this.is("[") && !this.tok.spaceBefore) {
      this.next();
      key = this.termIn();
      this.expect("]");
      if (((this.is(".") || this.is("[")) && !this.tok.spaceBefore) || (this.is("contains") && !this.keywordRef())) {
        // A general reference (`p[x].y := z`, `p[x][y] contains z`): the rule defines entries of
        // a partial object tree below package + name + ref, planned by planner-tree.ts.
        dynRef = [key, ...this.#headRest()];
        key = undefined;
        if (this.is("contains") && !this.keywordRef()) {
          this.next();
          kind = "set";
          key = this.termIn();
        }
      } else if (this.is(":=") || this.is("=")) {
        kind = "object";
      } else {
        // v0: `deny[msg] { ... }` is a partial set; v1: `a[x] if ...` is the single value `true`.
        kind = this.#v0 ? "set" : "object";
      }
    } else if (this.is("contains") && !this.keywordRef()) {
      this.next();
      kind = "set";
      key = this.termIn();
    }
    if (kind !== "set" && (this.is(":=") || this.is("="))) {
      this.next();
      value = this.termIn();
    }
    if (dynRef && isDefault) this.error(loc, "default rules must not have variables in their head");
    if (isDefault) {
      if (kind === "set" || kind === "object") this.error(loc, "unsupported: default on a partial rule");
      if (value === undefined) this.fail(`":=" after the name of a default rule`);
      if (this.is("if") && !this.keywordRef()) this.error(this.loc(), "default rules must not have a body");
      return { loc, name, ...(ref.length > 0 ? { ref } : {}), kind, isDefault, args, key, value, body: [], elses: [] };
    }
    if (
      kind === "complete" &&
      value === undefined &&
      !(this.is("if") && !this.keywordRef()) &&
      !(this.#v0 && this.is("{"))
    ) {
      if (this.is("{")) this.error(this.loc(), "`if` keyword is required before rule body");
      this.fail(`"if", ":=" or "contains"`);
    }
    let body: Body = [];
    if (this.is("if") && !this.keywordRef()) {
      this.next();
      body = this.ruleBody();
    } else if (this.is("{")) {
      if (!this.#v0) this.error(this.loc(), "`if` keyword is required before rule body");
      body = this.ruleBody();
    }
    const elses: ElseClause[] = [];
    while (this.is("else") && !this.keywordRef()) {
      const elseTok = this.next();
      if (kind === "set" || kind === "object")
        this.error(this.loc(elseTok), "else keyword cannot be used on partial rules");
      else if (dynRef) this.error(this.loc(elseTok), "else keyword cannot be used on rules with variables in head");
      let elseValue: Term | undefined;
      if (this.is(":=") || this.is("=")) {
        this.next();
        elseValue = this.termIn();
      }
      let elseBody: Body = [];
      if (this.is("if") && !this.keywordRef()) {
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
    return {
      loc,
      name,
      ...(ref.length > 0 ? { ref } : {}),
      ...(dynRef ? { dynRef } : {}),
      kind,
      isDefault,
      args,
      key,
      value,
      body,
      elses,
    };
  }

  /** The parts of a general rule head reference after its first variable part: `.name` or `[term]`. */
  #headRest(): Term[] {
    const parts: Term[] = [];
    while ((this.is(".") || this.is("[")) && !this.tok.spaceBefore) {
      if (this.next().text === ".") {
        if (this.tok.kind !== "ident") this.fail('a name after "."');
        const t = this.next();
        parts.push({ type: "string", value: t.text, loc: this.loc(t) });
      } else {
        parts.push(this.termIn());
        this.expect("]");
      }
    }
    return parts;
  }

  ruleBody(): Body {
    if (this.is("{")) {
      const body = this.attempt(() => {
        this.next();
        const lits = this.query("}");
        this.expect("}");
        return lits;
      });
      if (body) return body;
      // `if {x: i | ...}` is no body but a comprehension, the body's one expression (as OPA
      // reads it): tried only where a body does not parse, so no valid body changes meaning.
      const lit = this.attempt(() => {
        const one = this.#oneLiteral();
        if (one[0]?.kind !== "expr" || !startsWithComprehension(one[0].term)) this.fail("a body");
        return one;
      });
      if (lit) return lit;
      this.next();
      const lits = this.query("}");
      this.expect("}");
      return lits;
    }
    return this.#oneLiteral();
  }

  #oneLiteral(): Body {
    this.ctx.push("query");
    try {
      return [this.literal()];
    } finally {
      this.ctx.pop();
    }
  }

  /** Literals separated by `;` or newlines, up to (not including) `close`. */
  query(close: string): Literal[] {
    this.ctx.push("query");
    try {
      return this.#query(close);
    } finally {
      this.ctx.pop();
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
    if (this.is("some") && !this.keywordRef()) {
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
    if (this.is("every") && !this.keywordRef()) {
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
    if (this.is("not") && !this.keywordRef()) {
      this.next();
      negated = true;
    }
    let term = this.termIn();
    // `k, v in xs` as an expression
    if (!negated) term = this.memberWithKey(term);
    if (this.is(":=") || this.is("=")) {
      const op = this.next();
      const rhs = this.termIn();
      term = { type: "call", name: op.text === ":=" ? "assign" : "eq", args: [term, rhs], loc: this.loc(op) };
    }
    return withs({ kind: "expr", negated, term, loc }, this.withModifiers());
  }

  withModifiers(): WithModifier[] {
    const out: WithModifier[] = [];
    while (this.is("with") && !this.keywordRef()) {
      const loc = this.loc();
      this.next();
      const target = this.termRelation();
      this.expect("as");
      const value = this.termRelation();
      out.push({ target, value, loc });
    }
    return out;
  }
}

function withs(lit: Literal, mods: WithModifier[]): Literal {
  return mods.length === 0 ? lit : { ...lit, withs: mods };
}

/** `{x | ...}`, `{k: v | ...}[k] = v`: a term whose leftmost part is a set or object comprehension. */
function startsWithComprehension(t: Term): boolean {
  if (t.type === "setCompr" || t.type === "objectCompr") return true;
  if (t.type === "ref") return startsWithComprehension(t.head);
  if (t.type === "call" && (t.name === "eq" || t.name === "assign" || t.name === "equal")) {
    return startsWithComprehension(t.args[0]!);
  }
  return false;
}
