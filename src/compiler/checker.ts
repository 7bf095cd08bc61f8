/**
 * Name resolution and static checks of one rule clause, in the spirit of OPA's compiler stages
 * (rewriteLocalVars, resolveRefs, checkTypes for arity):
 * - every local variable gets a name unique within the clause (`x#3`), recorded with the depth
 *   of the scope that declares it (0 = the rule body, +1 per comprehension or `every` body), so
 *   the planner can tell a comprehension's own variables from the ones it captures;
 * - bare rule names, import aliases and `data.` references become `data` references;
 * - calls are resolved to builtins or user functions, with arity checks;
 * - `:=` redeclarations and uses before declaration are rejected as OPA rejects them.
 */
import type { Body, CallTarget, Literal, Loc, Module, Rule, Term, WithModifier } from "./ast.ts";
import { builtinArity, OPA_BUILTINS, PLANNER_ONLY_BUILTINS } from "./builtins.ts";
import { checkMockableBuiltin, dottedName } from "./checker-with.ts";
import type { Diagnostic } from "./diagnostics.ts";

/** What the resolver needs to know about the rule tree. */
export interface RuleIndex {
  /** Kind and arity of the rule group at this data path, if any. */
  group(path: readonly string[]): { kind: Rule["kind"]; arity: number } | undefined;
  /** True when `path` (package + name) is the first part of a multi-part rule head. */
  isRefHead(path: readonly string[]): boolean;
}

export interface ResolvedClause {
  readonly args: readonly Term[];
  readonly key: Term | undefined;
  readonly value: Term | undefined;
  readonly body: Body;
  /** Unique local name -> depth of its declaring scope. */
  readonly varDepth: ReadonlyMap<string, number>;
}

export class CheckFailure extends Error {}

class Scope {
  readonly declared = new Map<string, string>();
  readonly used = new Set<string>();
  readonly candidates = new Set<string>();
  constructor(
    readonly parent: Scope | undefined,
    readonly depth: number,
  ) {}
  lookup(name: string): string | undefined {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- walks the scope chain starting here
    for (let s: Scope | undefined = this; s; s = s.parent) {
      const u = s.declared.get(name);
      if (u !== undefined) return u;
    }
    return undefined;
  }
}

export const isWildcard = (name: string): boolean => name.startsWith("_#") || name === "_";

export class ClauseResolver {
  readonly varDepth = new Map<string, number>();
  #counter = 0;
  readonly #module: Module;
  readonly #index: RuleIndex;
  readonly #diags: Diagnostic[];
  readonly #imports: Map<string, readonly string[]>;

  constructor(module: Module, index: RuleIndex, diags: Diagnostic[]) {
    this.#module = module;
    this.#index = index;
    this.#diags = diags;
    this.#imports = new Map(module.imports.map((i) => [i.alias, i.path]));
  }

  #error(loc: Loc, message: string): never {
    this.#diags.push({ file: loc.file, line: loc.line, col: loc.col, message });
    throw new CheckFailure(message);
  }

  #fresh(name: string, scope: Scope): string {
    const unique = `${name}#${++this.#counter}`;
    this.varDepth.set(unique, scope.depth);
    if (name !== "_") scope.declared.set(name, unique);
    return unique;
  }

  resolveClause(args: readonly Term[], key: Term | undefined, value: Term | undefined, body: Body): ResolvedClause {
    // An argument that is a call (a template string, `f($"{x}") if { x = "a" }`) is evaluated, not
    // matched: as in OPA, it is compared with the caller's argument in the body, where the body's
    // ordering puts the comparison after whatever binds its variables.
    const compared: Literal[] = [];
    const patterns = args.map((a, i): Term => {
      if (a.type !== "call") return a;
      const v: Term = { type: "var", name: `__arg${i}__`, orig: `__arg${i}__`, loc: a.loc };
      compared.push({
        kind: "expr",
        negated: false,
        term: { type: "call", name: "eq", args: [v, a], loc: a.loc },
        loc: a.loc,
      });
      return v;
    });
    const scope = new Scope(undefined, 0);
    for (const a of patterns) for (const n of plainVarNames(a)) scope.candidates.add(n);
    const rargs = patterns.map((a) => this.#declarePattern(a, scope, true));
    const rbody = this.#body(compared.length ? [...body, ...compared] : body, scope);
    const rkey = key && this.#term(key, scope);
    const rvalue = value && this.#term(value, scope);
    return { args: rargs, key: rkey, value: rvalue, body: rbody, varDepth: this.varDepth };
  }

  #body(body: Body, scope: Scope): Body {
    for (const lit of body) for (const n of literalVarNames(lit)) scope.candidates.add(n);
    return body.map((lit) => this.#literal(lit, scope));
  }

  /** Declares the variables of an argument / `:=` / `some ... in` pattern. */
  #declarePattern(t: Term, scope: Scope, isArg = false): Term {
    switch (t.type) {
      case "var": {
        if (t.name === "_") return { ...t, name: this.#fresh("_", scope) };
        if (t.name === "input" || t.name === "data") this.#error(t.loc, `cannot assign to ${t.name}`);
        if (!isArg) {
          if (scope.used.has(t.name)) this.#error(t.loc, `var ${t.name} referenced above`);
          if (scope.declared.has(t.name)) this.#error(t.loc, `var ${t.name} assigned above`);
        } else if (scope.declared.has(t.name)) {
          // f(x, x): both arguments must be equal; the second occurrence is a use.
          return { ...t, name: scope.declared.get(t.name)! };
        }
        return { ...t, name: this.#fresh(t.name, scope) };
      }
      case "array":
        return { ...t, items: t.items.map((i) => this.#declarePattern(i, scope, isArg)) };
      case "object":
        return {
          ...t,
          pairs: t.pairs.map(([k, v]) => [this.#term(k, scope), this.#declarePattern(v, scope, isArg)] as const),
        };
      case "null":
      case "boolean":
      case "number":
      case "string":
        return t;
      default:
        if (isArg) return this.#term(t, scope);
        return this.#error(t.loc, `cannot assign to ${describeTerm(t)}`);
    }
  }

  #literal(lit: Literal, scope: Scope): Literal {
    if (!lit.withs) return this.#literalOnly(lit, scope);
    // `with` values are evaluated before the literal, in its scope; targets are paths, not terms.
    const withs = lit.withs.map((w) => this.#with(w, scope));
    return { ...this.#literalOnly(lit, scope), withs };
  }

  /**
   * Resolves a `with` (OPA's validateWith and checkExprWith): the target is `input...`, a `data`
   * path, or a function or builtin to mock; a mock's value may name a function or builtin of the
   * same arity instead of being a value.
   */
  #with(w: WithModifier, scope: Scope): WithModifier {
    const name = dottedName(w.target);
    const head = name?.split(".")[0];
    const bad = () =>
      this.#error(w.target.loc, "with keyword target must reference existing input, data, or a function");
    if (name === undefined || head === undefined || scope.lookup(head) !== undefined) return bad();
    if (head === "input") return { ...w, value: this.#term(w.value, scope) };
    const fn = this.#functionNamed(name, scope, w.target.loc);
    if (!fn) {
      const target = this.#term(w.target, scope);
      if (target.type !== "var" && !(target.type === "ref" && target.head.type === "var")) return bad();
      const root = target.type === "var" ? target : target.head;
      if (root.type !== "var" || (root.name !== "data" && root.name !== "input")) return bad();
      return { ...w, target, value: this.#term(w.value, scope) };
    }
    if (fn.kind === "builtin") checkMockableBuiltin(fn.name, w.target.loc, (l, m) => this.#error(l, m));
    const valueName = dottedName(w.value);
    const valueHead = valueName?.split(".")[0];
    const by =
      valueName !== undefined && valueHead !== undefined && scope.lookup(valueHead) === undefined
        ? this.#functionNamed(valueName, scope, w.value.loc)
        : undefined;
    if (!by) return { ...w, fn, value: this.#term(w.value, scope) };
    const [want, have] = [this.#arity(fn), this.#arity(by)];
    if (want !== have) {
      this.#error(
        w.value.loc,
        `${name}: arity mismatch: with keyword replacing a function of ${want} argument${want === 1 ? "" : "s"} by ${valueName} of ${have}`,
      );
    }
    return { ...w, fn, by };
  }

  #arity(t: CallTarget): number {
    return t.kind === "builtin" ? builtinArity(t.name)! : this.#index.group(t.path)!.arity;
  }

  /** The user function or builtin a name written in a `with` refers to, if it is one. */
  #functionNamed(name: string, scope: Scope, loc: Loc): CallTarget | undefined {
    if (scope.lookup(name.split(".")[0]!) !== undefined) return undefined;
    const parts = name.split(".");
    const imp = this.#imports.get(parts[0]!);
    const path =
      parts[0] === "data"
        ? parts.slice(1)
        : imp && imp[0] === "data"
          ? [...imp.slice(1), ...parts.slice(1)]
          : [...this.#module.pkg, ...parts];
    if (this.#index.group(path)?.kind === "function") return { kind: "function", path };
    if (parts[0] === "data" || imp || this.#index.group(path)) return undefined;
    if (builtinArity(name) !== undefined) return { kind: "builtin", name };
    if (OPA_BUILTINS.has(name)) this.#error(loc, `unsupported builtin ${name}`);
    return undefined;
  }

  #literalOnly(lit: Literal, scope: Scope): Literal {
    switch (lit.kind) {
      case "some": {
        const vars = lit.vars.map((v) => {
          if (v.type !== "var") return this.#error(v.loc, "unsupported: some declaration of a non-variable");
          if (v.name === "_") return { ...v, name: this.#fresh("_", scope) };
          if (scope.declared.has(v.name)) this.#error(v.loc, `var ${v.name} declared above`);
          if (scope.used.has(v.name)) this.#error(v.loc, `var ${v.name} referenced above`);
          return { ...v, name: this.#fresh(v.name, scope) };
        });
        return { ...lit, vars };
      }
      case "someIn": {
        const collection = this.#term(lit.collection, scope);
        const key = lit.key && this.#declareSome(lit.key, scope);
        const value = this.#declareSome(lit.value, scope);
        return { ...lit, key, value, collection };
      }
      case "every": {
        const domain = this.#term(lit.domain, scope);
        const inner = new Scope(scope, scope.depth + 1);
        const key = lit.key && this.#declareSome(lit.key, inner);
        const value = this.#declareSome(lit.value, inner);
        const body = this.#body(lit.body, inner);
        return { ...lit, key, value, domain, body };
      }
      case "expr": {
        let term = lit.term;
        if (term.type === "call" && term.name === "assign") {
          if (lit.negated) this.#error(lit.loc, "cannot negate an assignment");
          const rhs = this.#term(term.args[1]!, scope);
          const lhs = this.#declarePattern(term.args[0]!, scope);
          return { ...lit, term: { ...term, args: [lhs, rhs], target: { kind: "builtin", name: "assign" } } };
        }
        if (term.type === "call" && term.name === "eq") {
          const args = term.args.map((a) => this.#term(a, scope));
          return { ...lit, term: { ...term, args, target: { kind: "builtin", name: "eq" } } };
        }
        // A call with one argument more than its arity binds the last argument to the result;
        // negated too (`not f(x, true)` is `not true = f(x)`), as OPA rewrites it.
        if (term.type === "call") {
          const target = this.#callTarget(term, scope, true);
          const arity = target.kind === "builtin" ? builtinArity(target.name)! : this.#index.group(target.path)!.arity;
          if (term.args.length === arity + 1) {
            const out = term.args[arity]!;
            const call: Term = { ...term, args: term.args.slice(0, arity) };
            term = { type: "call", name: "eq", args: [out, call], loc: term.loc };
            const args = [this.#term(out, scope), this.#term(call, scope)];
            return { ...lit, term: { ...term, args, target: { kind: "builtin", name: "eq" } } };
          }
        }
        return { ...lit, term: this.#term(term, scope) };
      }
    }
  }

  #declareSome(t: Term, scope: Scope): Term {
    switch (t.type) {
      case "var":
        if (t.name === "_") return { ...t, name: this.#fresh("_", scope) };
        // `some x in xs` declares x in this body: an earlier use or declaration of the same
        // name would silently become a different variable, so refuse it as OPA does.
        if (scope.used.has(t.name)) this.#error(t.loc, `var ${t.name} referenced above`);
        if (scope.declared.has(t.name)) this.#error(t.loc, `var ${t.name} declared above`);
        return { ...t, name: this.#fresh(t.name, scope) };
      case "array":
        return { ...t, items: t.items.map((i) => this.#declareSome(i, scope)) };
      case "object":
        return { ...t, pairs: t.pairs.map(([k, v]) => [this.#term(k, scope), this.#declareSome(v, scope)] as const) };
      default:
        return this.#term(t, scope);
    }
  }

  #var(t: Extract<Term, { type: "var" }>, scope: Scope): Term {
    const name = t.name;
    if (name === "_") return { ...t, name: this.#fresh("_", scope) };
    const local = scope.lookup(name);
    if (local !== undefined) return { ...t, name: local };
    if (name === "input" || name === "data") return t;
    const imp = this.#imports.get(name);
    if (imp) {
      const head: Term = { type: "var", name: imp[0]!, orig: imp[0]!, loc: t.loc };
      if (imp.length === 1) return head;
      return {
        type: "ref",
        head,
        path: imp.slice(1).map((s) => ({ type: "string", value: s, loc: t.loc })),
        loc: t.loc,
      };
    }
    const rulePath = [...this.#module.pkg, name];
    if (this.#index.group(rulePath) || this.#index.isRefHead(rulePath)) {
      return {
        type: "ref",
        head: { type: "var", name: "data", orig: "data", loc: t.loc },
        path: rulePath.map((s) => ({ type: "string", value: s, loc: t.loc })),
        loc: t.loc,
      };
    }
    // An implicitly declared local: it belongs to the outermost enclosing body that mentions it.
    let owner = scope;
    for (let s: Scope | undefined = scope; s; s = s.parent) if (s.candidates.has(name)) owner = s;
    owner.used.add(name);
    scope.used.add(name);
    return { ...t, name: this.#fresh(name, owner) };
  }

  #callTarget(t: Extract<Term, { type: "call" }>, scope: Scope, allowExtraArg = false): CallTarget {
    const parts = t.name.split(".");
    const first = parts[0]!;
    let target: CallTarget | undefined;
    if (scope.lookup(first) === undefined) {
      if (first === "data") {
        target = { kind: "function", path: parts.slice(1) };
      } else if (this.#imports.has(first) && this.#imports.get(first)![0] === "data") {
        target = { kind: "function", path: [...this.#imports.get(first)!.slice(1), ...parts.slice(1)] };
      } else if (
        this.#index.group([...this.#module.pkg, ...parts])?.kind === "function" ||
        (parts.length === 1 && this.#index.group([...this.#module.pkg, first]))
      ) {
        // A function of this package, its name possibly in several parts (`a.b.f(x) := ...`).
        target = { kind: "function", path: [...this.#module.pkg, ...parts] };
      } else if (builtinArity(t.name) !== undefined && !PLANNER_ONLY_BUILTINS.has(t.name)) {
        target = { kind: "builtin", name: t.name };
      }
    }
    if (target?.kind === "function") {
      const g = this.#index.group(target.path);
      if (!g) target = undefined;
      else if (g.kind !== "function")
        this.#error(t.loc, `${t.name} is not a function (data.${target.path.join(".")} is a rule)`);
    }
    if (!target) {
      // print statements are erased before (erase-print.ts); what is left uses it as a value.
      if (t.name === "print") return this.#error(t.loc, "print: a void function cannot be used as a value");
      if (OPA_BUILTINS.has(t.name)) return this.#error(t.loc, `unsupported builtin ${t.name}`);
      return this.#error(t.loc, `undefined function ${t.name}`);
    }
    const arity = target.kind === "builtin" ? builtinArity(target.name)! : this.#index.group(target.path)!.arity;
    const n = t.args.length;
    if (n !== arity && !(allowExtraArg && n === arity + 1)) {
      this.#error(t.loc, `${t.name}: arity mismatch: expected ${arity} argument${arity === 1 ? "" : "s"}, got ${n}`);
    }
    return target;
  }

  #term(t: Term, scope: Scope): Term {
    switch (t.type) {
      case "null":
      case "boolean":
      case "number":
      case "string":
        return t;
      case "var":
        return this.#var(t, scope);
      case "ref": {
        const head = this.#term(t.head, scope);
        const path = t.path.map((p) => this.#term(p, scope));
        if (head.type === "ref") return { ...t, head: head.head, path: [...head.path, ...path] };
        return { ...t, head, path };
      }
      case "array":
        return { ...t, items: t.items.map((i) => this.#term(i, scope)) };
      case "set":
        return { ...t, items: t.items.map((i) => this.#term(i, scope)) };
      case "object": {
        const seen = new Set<string>();
        for (const [k] of t.pairs) {
          if (k.type !== "string" && k.type !== "number" && k.type !== "boolean" && k.type !== "null") continue;
          const key =
            k.type === "string"
              ? JSON.stringify(k.value)
              : k.type === "number"
                ? String(Number(k.text))
                : k.type === "null"
                  ? "null"
                  : String(k.value);
          if (seen.has(key)) this.#error(k.loc, `duplicate key ${key} in object`);
          seen.add(key);
        }
        return { ...t, pairs: t.pairs.map(([k, v]) => [this.#term(k, scope), this.#term(v, scope)] as const) };
      }
      case "arrayCompr":
      case "setCompr": {
        const inner = new Scope(scope, scope.depth + 1);
        for (const n of plainVarNames(t.head)) inner.candidates.add(n);
        const body = this.#body(t.body, inner);
        return { ...t, body, head: this.#term(t.head, inner) };
      }
      case "objectCompr": {
        const inner = new Scope(scope, scope.depth + 1);
        for (const n of [...plainVarNames(t.key), ...plainVarNames(t.value)]) inner.candidates.add(n);
        const body = this.#body(t.body, inner);
        return { ...t, body, key: this.#term(t.key, inner), value: this.#term(t.value, inner) };
      }
      case "call": {
        if (t.name === "assign" || t.name === "eq") {
          return this.#error(t.loc, `unsupported: "${t.name === "assign" ? ":=" : "="}" inside an expression`);
        }
        const target = this.#callTarget(t, scope);
        return { ...t, target, args: t.args.map((a) => this.#term(a, scope)) };
      }
    }
  }
}

export function describeTerm(t: Term): string {
  switch (t.type) {
    case "ref":
      return "ref";
    case "call":
      return `call ${t.name}`;
    case "arrayCompr":
    case "setCompr":
    case "objectCompr":
      return "comprehension";
    case "set":
      return "set";
    default:
      return t.type;
  }
}

/** Variable names mentioned in a term outside nested comprehensions. */
export function plainVarNames(t: Term, out: string[] = []): string[] {
  switch (t.type) {
    case "var":
      if (t.name !== "_") out.push(t.name);
      break;
    case "ref":
      plainVarNames(t.head, out);
      for (const p of t.path) plainVarNames(p, out);
      break;
    case "array":
    case "set":
      for (const i of t.items) plainVarNames(i, out);
      break;
    case "object":
      for (const [k, v] of t.pairs) {
        plainVarNames(k, out);
        plainVarNames(v, out);
      }
      break;
    case "call":
      for (const a of t.args) plainVarNames(a, out);
      break;
    default:
      break;
  }
  return out;
}

function literalVarNames(lit: Literal): string[] {
  switch (lit.kind) {
    case "expr":
      // Variables `:=` declares are not candidates: a closure mentioning one before the
      // declaration has its own variable, as in OPA (rewriteLocalVars goes in order).
      if (lit.term.type === "call" && lit.term.name === "assign" && lit.term.args.length === 2) {
        return plainVarNames(lit.term.args[1]!);
      }
      return plainVarNames(lit.term);
    case "some":
      return lit.vars.flatMap((v) => plainVarNames(v));
    case "someIn":
      return [
        ...(lit.key ? plainVarNames(lit.key) : []),
        ...plainVarNames(lit.value),
        ...plainVarNames(lit.collection),
      ];
    case "every":
      return plainVarNames(lit.domain);
  }
}
