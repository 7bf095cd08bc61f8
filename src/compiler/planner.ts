/**
 * Plans checked Rego modules into the IR (`ir.ts`).
 *
 * Bodies are planned in continuation-passing style, as OPA's planner does: planning a literal
 * takes a continuation that plans the rest of the body inside whatever the literal opened (a
 * `scan` for iteration, nothing for a plain condition). A failing condition abandons the
 * innermost block, which is exactly backtracking to the previous iteration point.
 *
 * Existence checks (`not`, `every`) run the inner plan inside a block and set a flag local from
 * the continuation, then `break` out: a `scan` that found one solution must stop, and a scan's
 * own success says nothing about whether any iteration succeeded.
 */
import type { Body, Literal, Loc, Module, Rule, Term } from "./ast.ts";
import { CheckFailure, ClauseResolver, isWildcard, type ResolvedClause, type RuleIndex } from "./checker.ts";
import type { Diagnostic } from "./diagnostics.ts";
import type { Block, Func, Local, Plan, Policy, Stmt } from "./ir.ts";

const MSG_COMPLETE = "complete rules must not produce multiple outputs";
const MSG_FUNCTION = "functions must not produce multiple outputs for same inputs";
const MSG_OBJECT_KEYS = "object keys must be unique";
const MSG_MERGE = "base data and rules must not define the same document";

class PlanFailure extends Error {}

interface RuleRef {
  readonly rule: Rule;
  readonly module: Module;
}

interface Group {
  readonly path: readonly string[];
  readonly kind: Rule["kind"];
  readonly arity: number;
  readonly rules: RuleRef[];
  readonly funcName: string;
}

interface TreeNode {
  readonly path: readonly string[];
  readonly children: Map<string, TreeNode>;
  group?: Group;
  /** True when a package is declared at exactly this path. */
  isPackage: boolean;
}

const dataName = (path: readonly string[]): string => ["data", ...path].join(".");

/** Plans modules for the given entrypoints (slash paths). Diagnostics are appended to `diags`. */
export function planModules(modules: readonly Module[], entrypoints: readonly string[] | undefined, diags: Diagnostic[]): Policy {
  return new PolicyPlanner(modules, diags).plan(entrypoints);
}

class PolicyPlanner {
  #diags: Diagnostic[];
  readonly #root: TreeNode = { path: [], children: new Map(), isPackage: false };
  readonly #groups: Group[] = [];
  readonly #funcs = new Map<string, Func>();
  /** Functions called inside `with`: they get unmemoized twins (see #makeTwins). */
  readonly #twinsWanted = new Set<string>();
  /** Package path + first name of every multi-part rule head (`a` of `a.b.c := 1`). */
  readonly #refHeads = new Set<string>();
  readonly #queue: (() => void)[] = [];
  /** Call graph between rule groups and package documents (by data name) for recursion checks. */
  readonly #edges = new Map<string, Set<string>>();
  readonly #nodeLoc = new Map<string, Loc>();
  readonly #builtinsUsed = new Set<string>();

  constructor(modules: readonly Module[], diags: Diagnostic[]) {
    this.#diags = diags;
    for (const m of modules) {
      const pkgNode = this.#node(m.pkg);
      pkgNode.isPackage = true;
      for (const rule of m.rules) {
        const path = [...m.pkg, rule.name, ...(rule.ref ?? [])];
        if (rule.ref) this.#refHeads.add(dataName([...m.pkg, rule.name]));
        const node = this.#node(path);
        const arity = rule.kind === "function" ? rule.args.length : 0;
        if (node.children.size > 0) {
          this.#error(rule.loc, `conflicting rules ${dataName(path)} found (a package is defined below it)`);
          continue;
        }
        if (!node.group) {
          node.group = { path, kind: rule.kind, arity, rules: [], funcName: `g${this.#groups.length}.${dataName(path)}` };
          this.#groups.push(node.group);
          this.#nodeLoc.set(dataName(path), rule.loc);
        } else if (node.group.kind !== rule.kind || node.group.arity !== arity) {
          this.#error(node.group.rules[0]!.rule.loc, `conflicting rules ${dataName(path)} found`);
          continue;
        }
        node.group.rules.push({ rule, module: m });
      }
    }
    for (const g of this.#groups) {
      const defaults = g.rules.filter((r) => r.rule.isDefault);
      if (defaults.length > 1) this.#error(defaults[1]!.rule.loc, `multiple default rules ${dataName(g.path)} found`);
    }
  }

  #node(path: readonly string[]): TreeNode {
    let n = this.#root;
    for (let i = 0; i < path.length; i++) {
      let c = n.children.get(path[i]!);
      if (!c) {
        c = { path: path.slice(0, i + 1), children: new Map(), isPackage: false };
        n.children.set(path[i]!, c);
        if (n.group) {
          const loc = n.group.rules[0]!.rule.loc;
          this.#error(loc, `conflicting rules ${dataName(n.path)} found (a package is defined below it)`);
        }
      }
      n = c;
    }
    return n;
  }

  #find(path: readonly string[]): TreeNode | undefined {
    let n: TreeNode | undefined = this.#root;
    for (const p of path) {
      n = n.children.get(p);
      if (!n) return undefined;
    }
    return n;
  }

  readonly index: RuleIndex = {
    group: (path) => {
      const g = this.#find(path)?.group;
      return g && { kind: g.kind, arity: g.arity };
    },
    isRefHead: (path) => this.#refHeads.has(dataName(path)),
  };

  #error(loc: Loc, message: string): void {
    this.#diags.push({ file: loc.file, line: loc.line, col: loc.col, message });
  }

  plan(entrypoints: readonly string[] | undefined): Policy {
    let eps = entrypoints ? [...entrypoints] : undefined;
    if (!eps || eps.length === 0) {
      // Defaults are the caller's (compile's `defaultEntrypoints`): the compiler knows no names.
      eps = [];
      this.#diags.push({ file: "", line: 0, col: 0, message: "no entrypoint given" });
    }
    const plans: Plan[] = [];
    const seen = new Set<string>();
    for (const ep of eps) {
      if (seen.has(ep)) continue;
      seen.add(ep);
      const path = ep.split("/").filter((s) => s !== "");
      if (path[0] === "data") path.shift();
      const node = path.length === 0 ? this.#root : this.#find(path);
      const bad = (msg: string) => this.#diags.push({ file: "", line: 0, col: 0, message: `entrypoint "${ep}" ${msg}` });
      if (!node || (node.children.size === 0 && !node.group)) {
        bad("does not refer to a rule or package");
        continue;
      }
      if (node.group) {
        if (node.group.kind === "function") {
          bad("refers to a function");
          continue;
        }
        this.#ensureGroup(node.group);
        plans.push({ name: ep, func: node.group.funcName });
      } else {
        plans.push({ name: ep, func: this.#ensureDoc(node) });
      }
    }
    while (this.#queue.length > 0) this.#queue.shift()!();
    const reachable = new Set(this.#funcs.keys());
    // Check every rule, reachable or not, as OPA does. In rules no entrypoint reaches, what this
    // compiler does not support (an unsupported builtin or construct OPA itself compiles) does
    // not refuse the build: those rules are simply left out of the module. Real errors still do.
    const real = this.#diags;
    const unreached: Diagnostic[] = [];
    this.#diags = unreached;
    try {
      for (const g of this.#groups) this.#ensureGroup(g);
      while (this.#queue.length > 0) this.#queue.shift()!();
    } finally {
      this.#diags = real;
    }
    for (const d of unreached) if (!d.message.startsWith("unsupported")) real.push(d);
    this.#checkRecursion();
    this.#makeTwins();
    const kept = (name: string) => reachable.has(name.endsWith("~with") ? name.slice(0, -"~with".length) : name);
    return { funcs: [...this.#funcs.values()].filter((f) => kept(f.name)), plans, hostBuiltins: [] };
  }

  /** Name of the unmemoized twin of `func`, called inside `with` (made by #makeTwins). */
  twin(func: string): string {
    this.#twinsWanted.add(func);
    return `${func}~with`;
  }

  /** Clones every wanted function, and everything it calls, without memoization. */
  #makeTwins(): void {
    const work = [...this.#twinsWanted];
    const done = new Set<string>();
    const rename = (b: Block): Block =>
      b.map((s): Stmt => {
        switch (s.op) {
          case "call": {
            // A nested `with` already calls twins.
            const base = s.func.endsWith("~with") ? s.func.slice(0, -"~with".length) : s.func;
            work.push(base);
            return { ...s, func: `${base}~with` };
          }
          case "block":
            return { ...s, blocks: s.blocks.map(rename) };
          case "scan":
          case "not":
            return { ...s, body: rename(s.body) };
          default:
            return s;
        }
      });
    while (work.length > 0) {
      const name = work.pop()!;
      if (done.has(name) || name.endsWith("~with")) continue;
      done.add(name);
      const f = this.#funcs.get(name);
      if (!f) continue;
      this.#funcs.set(`${name}~with`, { ...f, name: `${name}~with`, body: rename(f.body), memoize: false });
    }
  }

  /** Builtin names the plans call (for the host builtin table). */
  get builtinsUsed(): ReadonlySet<string> {
    return this.#builtinsUsed;
  }

  #ensureGroup(g: Group): string {
    if (!this.#funcs.has(g.funcName)) {
      // Reserve the name first so recursive references terminate.
      this.#funcs.set(g.funcName, { name: g.funcName, params: 2, locals: 2, body: [], result: 0, memoize: false });
      this.#queue.push(() => {
        try {
          this.#funcs.set(g.funcName, this.#planGroup(g));
        } catch (e) {
          if (!(e instanceof PlanFailure) && !(e instanceof CheckFailure)) throw e;
        }
      });
    }
    return g.funcName;
  }

  #ensureDoc(node: TreeNode): string {
    const name = `doc.${dataName(node.path)}`;
    if (!this.#funcs.has(name)) {
      this.#funcs.set(name, { name, params: 2, locals: 2, body: [], result: 0, memoize: true });
      this.#queue.push(() => this.#funcs.set(name, this.#planDoc(node, name)));
    }
    return name;
  }

  #edge(from: string, to: string): void {
    let s = this.#edges.get(from);
    if (!s) this.#edges.set(from, (s = new Set()));
    s.add(to);
  }

  #checkRecursion(): void {
    const state = new Map<string, number>();
    const stack: string[] = [];
    const reported = new Set<string>();
    const visit = (n: string) => {
      state.set(n, 1);
      stack.push(n);
      for (const m of this.#edges.get(n) ?? []) {
        const st = state.get(m);
        if (st === 1) {
          const cycle = [...stack.slice(stack.indexOf(m)), m];
          const isRule = (x: string) => this.#nodeLoc.has(x) && this.#find(x.split(".").slice(1))?.group;
          const ruleName = cycle.find(isRule) ?? m;
          const start = cycle.indexOf(ruleName);
          const rotated = [...cycle.slice(start, -1), ...cycle.slice(0, start), ruleName];
          if (!reported.has(ruleName)) {
            reported.add(ruleName);
            const loc = this.#nodeLoc.get(ruleName) ?? { file: "<policy>", line: 0, col: 0 };
            this.#error(loc, `rule ${ruleName} is recursive: ${rotated.join(" -> ")}`);
          }
        } else if (st === undefined) {
          visit(m);
        }
      }
      stack.pop();
      state.set(n, 2);
    };
    for (const n of [...this.#edges.keys()].sort()) if (!state.has(n)) visit(n);
  }

  #planDoc(node: TreeNode, name: string): Func {
    const fb = new FnBuilder(2);
    const from = dataName(node.path);
    const obj = fb.newLocal();
    fb.emit({ op: "makeObject", target: obj });
    for (const [key, child] of [...node.children].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (child.group?.kind === "function") continue;
      const k = fb.newLocal();
      const v = fb.newLocal();
      const func = child.group ? this.#ensureGroup(child.group) : this.#ensureDoc(child);
      this.#edge(from, dataName(child.path));
      fb.emit({
        op: "block",
        blocks: [
          [
            { op: "call", target: v, func, args: [0, 1] },
            { op: "const", target: k, json: JSON.stringify(key) },
            { op: "objectInsert", object: obj, key: k, value: v },
          ],
        ],
      });
    }
    const result = fb.newLocal();
    const base = fb.newLocal();
    const baseStmts: Stmt[] = [{ op: "assign", target: base, source: 1 }];
    for (const p of node.path) {
      const k = fb.newLocal();
      baseStmts.push({ op: "const", target: k, json: JSON.stringify(p) }, { op: "dot", target: base, source: base, key: k });
    }
    baseStmts.push({ op: "objectMerge", target: result, a: base, b: obj, message: MSG_MERGE });
    fb.emit({ op: "block", blocks: [baseStmts] });
    fb.emit({ op: "block", blocks: [[{ op: "isUndefined", source: result }, { op: "assign", target: result, source: obj }]] });
    return { name, params: 2, locals: fb.locals, body: fb.body, result, memoize: true };
  }

  #planGroup(g: Group): Func {
    const params = 2 + g.arity;
    const fb = new FnBuilder(params);
    const result = fb.newLocal();
    const from = dataName(g.path);
    if (g.kind === "set") fb.emit({ op: "makeSet", target: result });
    if (g.kind === "object") fb.emit({ op: "makeObject", target: result });
    const message = g.kind === "function" ? MSG_FUNCTION : MSG_COMPLETE;
    let failed = false;
    let defaultRule: RuleRef | undefined;
    for (const rr of g.rules) {
      if (rr.rule.isDefault) {
        defaultRule = rr;
        continue;
      }
      const clauses = [
        { value: rr.rule.value, body: rr.rule.body, loc: rr.rule.loc },
        ...rr.rule.elses.map((e) => ({ value: e.value, body: e.body, loc: e.loc })),
      ];
      const hasElse = clauses.length > 1;
      const target = hasElse ? fb.newLocal() : result;
      for (let ci = 0; ci < clauses.length; ci++) {
        const c = clauses[ci]!;
        try {
          const resolver = new ClauseResolver(rr.module, this.index, this.#diags);
          const resolved = resolver.resolveClause(rr.rule.args, rr.rule.key, c.value, c.body);
          const bp = new BodyPlanner(this, fb, resolved, from);
          const inner = fb.nest(() => {
            if (ci > 0) fb.emit({ op: "isUndefined", source: target });
            bp.bindArgs(resolved.args, 2, () =>
              bp.planBody(resolved.body, () => {
                bp.checkHeadSafety([resolved.key, resolved.value], c.loc);
                switch (g.kind) {
                  case "set":
                    bp.planTerm(resolved.key!, (v) => fb.emit({ op: "setAdd", set: result, value: v }));
                    break;
                  case "object":
                    bp.planTerm(resolved.key!, (k) =>
                      bp.planTerm(resolved.value!, (v) =>
                        fb.emit({ op: "objectInsertOnce", object: result, key: k, value: v, message: MSG_OBJECT_KEYS }),
                      ),
                    );
                    break;
                  default:
                    bp.planValue(resolved.value, (v) => fb.emit({ op: "assignOnce", target, source: v, message }));
                }
              }),
            );
          });
          fb.emit({ op: "block", blocks: [inner] });
        } catch (e) {
          if (!(e instanceof PlanFailure) && !(e instanceof CheckFailure)) throw e;
          failed = true;
        }
      }
      if (hasElse) {
        fb.emit({
          op: "block",
          blocks: [[{ op: "isDefined", source: target }, { op: "assignOnce", target: result, source: target, message }]],
        });
      }
    }
    if (defaultRule) {
      try {
        const resolver = new ClauseResolver(defaultRule.module, this.index, this.#diags);
        const resolved = resolver.resolveClause(defaultRule.rule.args, undefined, defaultRule.rule.value, []);
        const bp = new BodyPlanner(this, fb, resolved, from);
        const inner = fb.nest(() => {
          fb.emit({ op: "isUndefined", source: result });
          bp.checkHeadSafety([resolved.value], defaultRule.rule.loc, true);
          bp.planValue(resolved.value, (v) => fb.emit({ op: "assign", target: result, source: v }));
        });
        fb.emit({ op: "block", blocks: [inner] });
      } catch (e) {
        if (!(e instanceof PlanFailure) && !(e instanceof CheckFailure)) throw e;
        failed = true;
      }
    }
    if (failed) throw new PlanFailure();
    return { name: g.funcName, params, locals: fb.locals, body: fb.body, result, memoize: g.arity === 0 };
  }

  // ---- services for the body planner ----------------------------------------------------------

  report(loc: Loc, message: string): void {
    this.#error(loc, message);
  }

  fail(loc: Loc, message: string): never {
    this.#error(loc, message);
    throw new PlanFailure(message);
  }

  useBuiltin(name: string): void {
    this.#builtinsUsed.add(name);
  }

  functionFor(path: readonly string[], from: string, loc: Loc): string {
    const g = this.#find(path)?.group;
    if (!g || g.kind !== "function") return this.fail(loc, `undefined function data.${path.join(".")}`);
    this.#edge(from, dataName(path));
    return this.#ensureGroup(g);
  }

  /**
   * Resolves the static prefix of a `data` reference: a rule (call it, then continue with the
   * rest of the path), a virtual node (build its document), or base data (plain lookups).
   * `keys` holds the constant string path elements known statically (up to the first dynamic one).
   */
  resolveData(
    keys: readonly string[],
    from: string,
    loc: Loc,
  ): { kind: "rule"; func: string; used: number } | { kind: "doc"; func: string; used: number } | { kind: "base" } {
    let n: TreeNode = this.#root;
    if (n.children.size === 0) return { kind: "base" };
    for (let i = 0; i < keys.length; i++) {
      const c = n.children.get(keys[i]!);
      if (!c) {
        return { kind: "base" };
      }
      n = c;
      if (n.group) {
        if (n.group.kind === "function") {
          return this.fail(loc, `function ${dataName(n.path)} must be called with arguments`);
        }
        this.#edge(from, dataName(n.path));
        return { kind: "rule", func: this.#ensureGroup(n.group), used: i + 1 };
      }
    }
    this.#edge(from, dataName(n.path));
    return { kind: "doc", func: this.#ensureDoc(n), used: keys.length };
  }
}

// ---- per-function builder ---------------------------------------------------------------------

class FnBuilder {
  locals: number;
  readonly body: Stmt[] = [];
  #cur: Stmt[];
  depth = 0;

  constructor(params: number) {
    this.locals = params;
    this.#cur = this.body;
  }
  newLocal(): Local {
    return this.locals++;
  }
  emit(s: Stmt): void {
    this.#cur.push(s);
  }
  /** Runs `fn` with a fresh current block one level deeper; returns that block. */
  nest(fn: () => void): Stmt[] {
    const saved = this.#cur;
    const blk: Stmt[] = [];
    this.#cur = blk;
    this.depth++;
    try {
      fn();
    } finally {
      this.depth--;
      this.#cur = saved;
    }
    return blk;
  }
}

// ---- bodies ----------------------------------------------------------------------------------------

type K = () => void;
type KL = (l: Local) => void;

class BodyPlanner {
  readonly #pp: PolicyPlanner;
  readonly #fb: FnBuilder;
  readonly #varDepth: ReadonlyMap<string, number>;
  readonly #from: string;
  /** Bound locals at the current point of planning. */
  #env = new Map<string, Local>();
  /** Depth of the body being planned (0 = the rule body). */
  #scopeDepth = 0;
  /** Locals holding `input` and `data` here: the parameters 0 and 1, or a `with`'s replacements. */
  #in: Local = 0;
  #data: Local = 1;
  /** Inside a `with`: rules and functions are called through their unmemoized twins. */
  #under = false;

  constructor(pp: PolicyPlanner, fb: FnBuilder, clause: ResolvedClause, from: string) {
    this.#pp = pp;
    this.#fb = fb;
    this.#varDepth = clause.varDepth;
    this.#from = from;
  }

  #isBound(name: string): boolean {
    return name === "input" || name === "data" || this.#env.has(name);
  }

  /** Runs fn with the environment restored afterwards (bindings made inside do not leak). */
  #scoped<T>(fn: () => T): T {
    const saved = new Map(this.#env);
    try {
      return fn();
    } finally {
      this.#env = saved;
    }
  }

  bindArgs(args: readonly Term[], first: Local, k: K): void {
    const step = (i: number): void => {
      if (i === args.length) return k();
      this.#unifyLocal(args[i]!, first + i, () => step(i + 1));
    };
    step(0);
  }

  checkHeadSafety(terms: readonly (Term | undefined)[], loc: Loc, isDefault = false): void {
    for (const t of terms) {
      if (!t) continue;
      if (isDefault && !isGround(t)) this.#pp.fail(t.loc, "default rule value must be a constant");
      const out = refOutputs(t, (n) => this.#isBound(n));
      for (const v of termVars(t, this.#scopeDepth, this.#varDepth)) {
        if (!this.#isBound(v.name) && !out.has(v.name)) this.#pp.fail(v.loc ?? loc, `var ${v.orig} is unsafe`);
      }
    }
  }

  planValue(value: Term | undefined, k: KL): void {
    if (!value) {
      const l = this.#fb.newLocal();
      this.#fb.emit({ op: "const", target: l, json: "true" });
      return k(l);
    }
    this.planTerm(value, k);
  }

  // ---- ordering (OPA's reorderBodyForSafety) ----------------------------------------------------

  #reorder(body: Body): Literal[] {
    const bound = new Set<string>([...this.#env.keys()]);
    const isBound = (n: string) => n === "input" || n === "data" || bound.has(n);
    const remaining = [...body];
    const ordered: Literal[] = [];
    for (;;) {
      const before = ordered.length;
      for (let i = 0; i < remaining.length; ) {
        const lit = remaining[i]!;
        const { needed, outputs } = this.#analyze(lit, isBound);
        if (needed.every((v) => isBound(v.name))) {
          ordered.push(lit);
          for (const o of outputs) bound.add(o);
          remaining.splice(i, 1);
        } else {
          i++;
        }
      }
      if (remaining.length === 0) return ordered;
      if (ordered.length === before) break;
    }
    const reported = new Set<string>();
    const errors: { loc: Loc; message: string }[] = [];
    for (const lit of remaining) {
      const { needed } = this.#analyze(lit, isBound);
      for (const v of needed) {
        if (isBound(v.name) || reported.has(v.orig)) continue;
        reported.add(v.orig);
        errors.push({ loc: v.loc ?? lit.loc, message: `var ${v.orig} is unsafe` });
      }
    }
    for (const e of errors.slice(1)) this.#pp.report(e.loc, e.message);
    const first = errors[0] ?? { loc: remaining[0]!.loc, message: "body cannot be ordered safely" };
    return this.#pp.fail(first!.loc, first!.message);
  }

  /** Variables a literal needs bound before it can run, and the ones it binds. */
  #analyze(lit: Literal, isBound: (n: string) => boolean): { needed: VarUse[]; outputs: Set<string> } {
    const r = this.#analyzeOnly(lit, isBound);
    // `with` values are evaluated first and bind nothing.
    for (const w of lit.withs ?? []) r.needed.push(...termVars(w.value, this.#scopeDepth, this.#varDepth));
    return r;
  }

  #analyzeOnly(lit: Literal, isBound: (n: string) => boolean): { needed: VarUse[]; outputs: Set<string> } {
    const d = this.#scopeDepth;
    const vd = this.#varDepth;
    switch (lit.kind) {
      case "some":
        return { needed: [], outputs: new Set() };
      case "someIn": {
        const outputs = refOutputs(lit.collection, isBound);
        for (const t of [lit.key, lit.value]) if (t) for (const v of patternVars(t)) outputs.add(v);
        const needed = [lit.key, lit.value, lit.collection].flatMap((t) => (t ? termVars(t, d, vd) : []));
        return { needed: needed.filter((v) => !outputs.has(v.name)), outputs };
      }
      case "every": {
        const needed = [...termVars(lit.domain, d, vd), ...bodyVars(lit.body, d, vd)];
        return { needed, outputs: new Set() };
      }
      case "expr": {
        const t = lit.term;
        const all = termVars(t, d, vd);
        if (lit.negated) {
          return { needed: all.filter((v) => !isWildcard(v.name)), outputs: new Set() };
        }
        const outputs = refOutputs(t, isBound);
        if (t.type === "call" && t.target?.kind === "builtin" && t.target.name === "assign") {
          for (const v of patternVars(t.args[0]!)) outputs.add(v);
        } else if (t.type === "call" && t.target?.kind === "builtin" && t.target.name === "eq") {
          const b = (n: string) => isBound(n) || outputs.has(n);
          for (const v of unifyOutputs(t.args[0]!, t.args[1]!, b, d, vd)) outputs.add(v);
        }
        return { needed: all.filter((v) => !outputs.has(v.name)), outputs };
      }
    }
  }

  // ---- bodies and literals ----------------------------------------------------------------------

  planBody(body: Body, k: K): void {
    const ordered = this.#reorder(body);
    const step = (i: number): void => {
      if (i === ordered.length) return k();
      this.#planLiteral(ordered[i]!, () => step(i + 1));
    };
    step(0);
  }

  /** Plans `inner` in a block; returns a local set (to true) iff the continuation was reached. */
  #exists(inner: (k: K) => void): Local {
    const fb = this.#fb;
    const flag = fb.newLocal();
    fb.emit({ op: "reset", target: flag });
    const outerDepth = fb.depth + 1;
    const blk = fb.nest(() =>
      this.#scoped(() =>
        inner(() => {
          fb.emit({ op: "const", target: flag, json: "true" });
          fb.emit({ op: "break", index: fb.depth - outerDepth });
        }),
      ),
    );
    fb.emit({ op: "block", blocks: [blk] });
    return flag;
  }

  #callee(func: string): string {
    return this.#under ? this.#pp.twin(func) : func;
  }

  /**
   * `lit with target as value ...`: the values are planned first; `input` and base `data` paths
   * are replaced by copies with the values set, and the literal is planned against them, its
   * rule and function calls going to unmemoized twins (a rule's cached value was computed
   * against the real input). The rest of the body sees the real documents again.
   */
  #planWith(lit: Literal, k: K): void {
    const withs = lit.withs!;
    const inner = { ...lit, withs: undefined } as Literal;
    this.#planTerms(withs.map((w) => w.value), (ls) => {
      let nin = this.#in;
      let ndata = this.#data;
      withs.forEach((w, i) => {
        const target = withTarget(w.target);
        if (!target) return this.#pp.fail(w.loc, "unsupported: with on something other than an input or data path (function mocks)");
        if (target.root === "input") {
          nin = target.path.length === 0 ? ls[i]! : this.#upsert(nin, target.path, ls[i]!);
          return;
        }
        if (target.path.length === 0) return this.#pp.fail(w.loc, "unsupported: with on all of data");
        const r = this.#pp.resolveData(target.path, this.#from, w.loc);
        if (r.kind !== "base") {
          return this.#pp.fail(w.loc, `unsupported: with on data.${target.path.join(".")}, a document rules define`);
        }
        ndata = this.#upsert(ndata, target.path, ls[i]!);
      });
      const saved = { in: this.#in, data: this.#data, under: this.#under };
      const enter = () => {
        this.#in = nin;
        this.#data = ndata;
        this.#under = true;
      };
      const leave = () => {
        this.#in = saved.in;
        this.#data = saved.data;
        this.#under = saved.under;
      };
      enter();
      try {
        this.#planLiteral(inner, () => {
          leave();
          try {
            k();
          } finally {
            enter();
          }
        });
      } finally {
        leave();
      }
    });
  }

  /** A copy of `src` with the value at `path` replaced by `value` (objects created as needed). */
  #upsert(src: Local, path: readonly string[], value: Local): Local {
    const fb = this.#fb;
    const along: Local[] = [src];
    for (let i = 0; i < path.length - 1; i++) {
      const next = fb.newLocal();
      const key = fb.newLocal();
      fb.emit({ op: "reset", target: next });
      fb.emit({ op: "block", blocks: [[{ op: "const", target: key, json: JSON.stringify(path[i]) }, { op: "dot", target: next, source: along[i]!, key }]] });
      along.push(next);
    }
    let v = value;
    for (let i = path.length - 1; i >= 0; i--) {
      const key = fb.newLocal();
      const out = fb.newLocal();
      fb.emit({ op: "const", target: key, json: JSON.stringify(path[i]) });
      fb.emit({ op: "objectWith", target: out, object: along[i]!, key, value: v });
      v = out;
    }
    return v;
  }

  #planLiteral(lit: Literal, k: K): void {
    const fb = this.#fb;
    if (lit.withs && lit.withs.length > 0) return this.#planWith(lit, k);
    switch (lit.kind) {
      case "some":
        return k();
      case "someIn":
        return this.planTerm(lit.collection, (coll) => {
          const key = fb.newLocal();
          const val = fb.newLocal();
          const body = fb.nest(() =>
            this.#scoped(() => {
              const bindValue = () => this.#unifyLocal(lit.value, val, k);
              if (lit.key) this.#unifyLocal(lit.key, key, bindValue);
              else bindValue();
            }),
          );
          fb.emit({ op: "scan", source: coll, key, value: val, body });
        });
      case "every":
        return this.planTerm(lit.domain, (dom) => {
          // `every` over a value that is not a collection is undefined, not vacuously true.
          const size = fb.newLocal();
          fb.emit({ op: "len", target: size, source: dom });
          const failed = this.#exists((found) => {
            const key = fb.newLocal();
            const val = fb.newLocal();
            const body = fb.nest(() =>
              this.#scoped(() => {
                const bindValue = () =>
                  this.#unifyLocal(lit.value, val, () => {
                    this.#scopeDepth++;
                    try {
                      const ok = this.#exists((k2) => this.planBody(lit.body, k2));
                      fb.emit({ op: "isUndefined", source: ok });
                    } finally {
                      this.#scopeDepth--;
                    }
                    found();
                  });
                if (lit.key) this.#unifyLocal(lit.key, key, bindValue);
                else bindValue();
              }),
            );
            fb.emit({ op: "scan", source: dom, key, value: val, body });
          });
          fb.emit({ op: "isUndefined", source: failed });
          k();
        });
      case "expr":
        if (lit.negated) {
          const found = this.#exists((k2) => this.#planExpr(lit.term, k2));
          fb.emit({ op: "isUndefined", source: found });
          return k();
        }
        return this.#planExpr(lit.term, k);
    }
  }

  #planExpr(t: Term, k: K): void {
    const fb = this.#fb;
    if (t.type === "call" && t.target?.kind === "builtin") {
      const [a, b] = t.args;
      switch (t.target.name) {
        case "assign":
          return this.planTerm(b!, (v) => this.#unifyLocal(a!, v, k));
        case "eq":
          return this.#unify(a!, b!, k);
        case "equal":
          return this.#planTerms([a!, b!], ([x, y]) => (fb.emit({ op: "equal", a: x!, b: y! }), k()));
        case "neq":
          return this.#planTerms([a!, b!], ([x, y]) => (fb.emit({ op: "notEqual", a: x!, b: y! }), k()));
        default:
          break;
      }
    }
    this.planTerm(t, (v) => {
      fb.emit({ op: "notFalse", source: v });
      k();
    });
  }

  // ---- unification ------------------------------------------------------------------------------

  #unify(a: Term, b: Term, k: K): void {
    const isB = (n: string) => this.#isBound(n);
    const unboundA = patternVars(a).some((v) => !isB(v));
    const unboundB = patternVars(b).some((v) => !isB(v));
    if (a.type === "array" && b.type === "array" && unboundA && unboundB) {
      if (a.items.length !== b.items.length) {
        const f = this.#fb.newLocal();
        this.#fb.emit({ op: "const", target: f, json: "false" });
        this.#fb.emit({ op: "notFalse", source: f });
        return k();
      }
      // Unify the pairs in an order where each has a bound side: [x, y] = [1, x] needs the
      // second pair first.
      const pending = a.items.map((x, i) => [x, b.items[i]!] as const);
      const step = (): void => {
        if (pending.length === 0) return k();
        const ready = pending.findIndex(
          ([x, y]) => patternVars(x).every((v) => isB(v)) || patternVars(y).every((v) => isB(v)),
        );
        const [x, y] = pending.splice(ready < 0 ? 0 : ready, 1)[0]!;
        this.#unify(x, y, step);
      };
      return step();
    }
    if (unboundA && !unboundB) return this.planTerm(b, (v) => this.#unifyLocal(a, v, k));
    if (unboundB && !unboundA) return this.planTerm(a, (v) => this.#unifyLocal(b, v, k));
    if (unboundA && unboundB) {
      const v = patternVars(a).find((n) => !isB(n)) ?? "";
      return this.#pp.fail(a.loc, `var ${v.replace(/#\d+$/, "")} is unsafe`);
    }
    this.#planTerms([a, b], ([x, y]) => {
      this.#fb.emit({ op: "equal", a: x!, b: y! });
      k();
    });
  }

  /** Unifies a pattern (vars, arrays, objects, constants) with the value in local `l`. */
  #unifyLocal(p: Term, l: Local, k: K): void {
    const fb = this.#fb;
    if (p.type === "var" && p.name !== "input" && p.name !== "data" && !this.#env.has(p.name)) {
      const target = fb.newLocal();
      fb.emit({ op: "assign", target, source: l });
      this.#env.set(p.name, target);
      return k();
    }
    const unbound = patternVars(p).some((v) => !this.#isBound(v));
    if (!unbound) {
      return this.planTerm(p, (v) => {
        fb.emit({ op: "equal", a: v, b: l });
        k();
      });
    }
    if (p.type === "array") {
      fb.emit({ op: "isArrayOfLength", source: l, length: p.items.length });
      const step = (i: number): void => {
        if (i === p.items.length) return k();
        const idx = fb.newLocal();
        const el = fb.newLocal();
        fb.emit({ op: "const", target: idx, json: String(i) });
        fb.emit({ op: "dot", target: el, source: l, key: idx });
        this.#unifyLocal(p.items[i]!, el, () => step(i + 1));
      };
      return step(0);
    }
    if (p.type === "object") {
      fb.emit({ op: "isKind", source: l, kind: "object" });
      const n = fb.newLocal();
      const want = fb.newLocal();
      fb.emit({ op: "len", target: n, source: l });
      fb.emit({ op: "const", target: want, json: String(p.pairs.length) });
      fb.emit({ op: "equal", a: n, b: want });
      const step = (i: number): void => {
        if (i === p.pairs.length) return k();
        const [key, val] = p.pairs[i]!;
        if (!isGround(key) && termVars(key, 99, new Map()).some((v) => !this.#isBound(v.name))) {
          this.#pp.fail(key.loc, "unsupported: object pattern with a variable key");
        }
        this.planTerm(key, (kl) => {
          const el = fb.newLocal();
          fb.emit({ op: "dot", target: el, source: l, key: kl });
          this.#unifyLocal(val, el, () => step(i + 1));
        });
      };
      return step(0);
    }
    return this.#pp.fail(p.loc, "unsupported: unification with this pattern");
  }

  // ---- terms ------------------------------------------------------------------------------------

  planTerm(t: Term, k: KL): void {
    const fb = this.#fb;
    switch (t.type) {
      case "null":
      case "boolean":
      case "number":
      case "string": {
        const l = fb.newLocal();
        fb.emit({ op: "const", target: l, json: scalarJson(t) });
        return k(l);
      }
      case "var": {
        if (t.name === "input") return k(this.#in);
        if (t.name === "data") return this.#planDataRef(t, [], k);
        const l = this.#env.get(t.name);
        if (l === undefined) return this.#pp.fail(t.loc, `var ${t.orig} is unsafe`);
        return k(l);
      }
      case "ref":
        return this.#planRef(t, k);
      case "array": {
        if (isJsonConst(t)) return this.#const(t, k);
        return this.#planTerms(t.items, (ls) => {
          const arr = fb.newLocal();
          fb.emit({ op: "makeArray", target: arr, capacity: ls.length });
          for (const l of ls) fb.emit({ op: "arrayAppend", array: arr, value: l });
          k(arr);
        });
      }
      case "set":
        return this.#planTerms(t.items, (ls) => {
          const s = fb.newLocal();
          fb.emit({ op: "makeSet", target: s });
          for (const l of ls) fb.emit({ op: "setAdd", set: s, value: l });
          k(s);
        });
      case "object": {
        if (isJsonConst(t)) return this.#const(t, k);
        return this.#planTerms(
          t.pairs.flatMap(([a, b]) => [a, b]),
          (ls) => {
            const o = fb.newLocal();
            fb.emit({ op: "makeObject", target: o });
            for (let i = 0; i < ls.length; i += 2) {
              fb.emit({ op: "objectInsertOnce", object: o, key: ls[i]!, value: ls[i + 1]!, message: MSG_OBJECT_KEYS });
            }
            k(o);
          },
        );
      }
      case "arrayCompr":
      case "setCompr":
      case "objectCompr": {
        const target = fb.newLocal();
        if (t.type === "arrayCompr") fb.emit({ op: "makeArray", target, capacity: 0 });
        else if (t.type === "setCompr") fb.emit({ op: "makeSet", target });
        else fb.emit({ op: "makeObject", target });
        const blk = fb.nest(() =>
          this.#scoped(() => {
            this.#scopeDepth++;
            try {
              this.planBody(t.body, () => {
                if (t.type === "objectCompr") {
                  this.checkHeadSafety([t.key, t.value], t.loc);
                  this.planTerm(t.key, (kl) =>
                    this.planTerm(t.value, (vl) =>
                      fb.emit({ op: "objectInsertOnce", object: target, key: kl, value: vl, message: MSG_OBJECT_KEYS }),
                    ),
                  );
                } else {
                  this.checkHeadSafety([t.head], t.loc);
                  this.planTerm(t.head, (hl) =>
                    fb.emit(
                      t.type === "arrayCompr" ? { op: "arrayAppend", array: target, value: hl } : { op: "setAdd", set: target, value: hl },
                    ),
                  );
                }
              });
            } finally {
              this.#scopeDepth--;
            }
          }),
        );
        fb.emit({ op: "block", blocks: [blk] });
        return k(target);
      }
      case "call": {
        const target = t.target!;
        return this.#planTerms(t.args, (ls) => {
          const out = fb.newLocal();
          if (target.kind === "builtin") {
            this.#pp.useBuiltin(target.name);
            fb.emit({ op: "builtin", target: out, name: target.name, args: ls });
          } else {
            const func = this.#pp.functionFor(target.path, this.#from, t.loc);
            fb.emit({ op: "call", target: out, func: this.#callee(func), args: [this.#in, this.#data, ...ls] });
          }
          k(out);
        });
      }
    }
  }

  #const(t: Term, k: KL): void {
    const l = this.#fb.newLocal();
    this.#fb.emit({ op: "const", target: l, json: groundJson(t) });
    k(l);
  }

  /**
   * Plans several terms (call arguments, collection items). A term whose variable is bound by a
   * reference in a later term goes after it: `f(x) == input.xs[x]` iterates first. Evaluation
   * order does not change the result; terms are pure.
   */
  #planTerms(ts: readonly Term[], k: (ls: Local[]) => void): void {
    const out: Local[] = [];
    const order: number[] = [];
    const bound = new Set<string>();
    const isB = (n: string) => this.#isBound(n) || bound.has(n);
    const left = ts.map((_, i) => i);
    while (left.length > 0) {
      let pick = left.findIndex((i) => {
        const own = refOutputs(ts[i]!, isB);
        return termVars(ts[i]!, this.#scopeDepth, this.#varDepth).every((v) => isB(v.name) || own.has(v.name));
      });
      if (pick < 0) pick = 0;
      const i = left.splice(pick, 1)[0]!;
      for (const v of refOutputs(ts[i]!, isB)) bound.add(v);
      order.push(i);
    }
    const step = (j: number): void => {
      if (j === order.length) return k(out);
      const i = order[j]!;
      this.planTerm(ts[i]!, (l) => {
        out[i] = l;
        step(j + 1);
      });
    };
    step(0);
  }

  #planRef(t: Extract<Term, { type: "ref" }>, k: KL): void {
    if (t.head.type === "var" && t.head.name === "data") return this.#planDataRef(t, t.path, k);
    this.planTerm(t.head, (h) => this.#walk(h, t.path, 0, k));
  }

  #planDataRef(t: Term, path: readonly Term[], k: KL): void {
    const keys: string[] = [];
    for (const p of path) {
      if (p.type !== "string") break;
      keys.push(p.value);
    }
    const r = this.#pp.resolveData(keys, this.#from, t.loc);
    // Base data: OPA's storage reads `data.x[2]` as the key "2" of an object too.
    if (r.kind === "base") return this.#walk(this.#data, path, 0, k, true);
    const out = this.#fb.newLocal();
    this.#fb.emit({ op: "call", target: out, func: this.#callee(r.func), args: [this.#in, this.#data] });
    this.#walk(out, path, r.used, k);
  }

  /** Walks path[i..] from the value in local `src`: `dot` for known keys, `scan` for unbound vars. */
  #walk(src: Local, path: readonly Term[], i: number, k: KL, baseData = false): void {
    if (i === path.length) return k(src);
    const fb = this.#fb;
    const p = path[i]!;
    if (p.type === "var" && p.name !== "input" && p.name !== "data" && !this.#env.has(p.name)) {
      const key = fb.newLocal();
      const val = fb.newLocal();
      const body = fb.nest(() =>
        this.#scoped(() => {
          this.#env.set(p.name, key);
          this.#walk(val, path, i + 1, k, baseData);
        }),
      );
      fb.emit({ op: "scan", source: src, key, value: val, body });
      return;
    }
    if (patternVars(p).some((v) => !this.#isBound(v))) {
      return this.#pp.fail(p.loc, "unsupported: reference with a composite key containing unbound variables");
    }
    this.planTerm(p, (key) => {
      const out = fb.newLocal();
      fb.emit(baseData ? { op: "dot", target: out, source: src, key, data: true } : { op: "dot", target: out, source: src, key });
      this.#walk(out, path, i + 1, k, baseData);
    });
  }
}

// ---- term helpers ---------------------------------------------------------------------------------

interface VarUse {
  readonly name: string;
  readonly orig: string;
  readonly loc: Loc | undefined;
}

function scalarJson(t: Term): string {
  switch (t.type) {
    case "null":
      return "null";
    case "boolean":
      return String(t.value);
    case "number":
      return t.text;
    case "string":
      return JSON.stringify(t.value);
    default:
      throw new Error(`not a scalar: ${t.type}`);
  }
}

/**
 * Ground: no variables. With `jsonOnly`, also JSON-shaped all the way down (string object
 * keys), so it can be planned as one JSON constant.
 */
function isGround(t: Term, jsonOnly = false): boolean {
  switch (t.type) {
    case "null":
    case "boolean":
    case "number":
    case "string":
      return true;
    case "array":
      return t.items.every((i) => isGround(i, jsonOnly));
    case "object":
      return t.pairs.every(([k, v]) => (jsonOnly ? k.type === "string" : isGround(k)) && isGround(v, jsonOnly));
    default:
      return false;
  }
}

const isJsonConst = (t: Term): boolean => isGround(t, true);

/** Exact JSON text of a ground term (number literals keep their source text). */
/** `input`, `input.a.b`, `data.a.b` (string keys) -> root and path; undefined for anything else. */
function withTarget(t: Term): { root: "input" | "data"; path: string[] } | undefined {
  const head = t.type === "ref" ? t.head : t;
  if (head.type !== "var" || (head.name !== "input" && head.name !== "data")) return undefined;
  const path: string[] = [];
  for (const p of t.type === "ref" ? t.path : []) {
    if (p.type !== "string") return undefined;
    path.push(p.value);
  }
  return { root: head.name, path };
}

function groundJson(t: Term): string {
  switch (t.type) {
    case "array":
      return `[${t.items.map(groundJson).join(",")}]`;
    case "object":
      return `{${t.pairs.map(([k, v]) => `${JSON.stringify((k as { value: string }).value)}:${groundJson(v)}`).join(",")}}`;
    default:
      return scalarJson(t);
  }
}

/** Variables in pattern position: the term itself, or inside arrays / object values. */
function patternVars(t: Term, out: string[] = []): string[] {
  if (t.type === "var" && t.name !== "input" && t.name !== "data") out.push(t.name);
  else if (t.type === "array") for (const i of t.items) patternVars(i, out);
  else if (t.type === "object") for (const [, v] of t.pairs) patternVars(v, out);
  return out;
}

/** Unbound variables a reference iterates over (direct variable path elements), outside closures. */
function refOutputs(t: Term, isBound: (n: string) => boolean, out = new Set<string>()): Set<string> {
  switch (t.type) {
    case "ref":
      refOutputs(t.head, isBound, out);
      for (const p of t.path) {
        if (p.type === "var" && p.name !== "input" && p.name !== "data" && !isBound(p.name)) out.add(p.name);
        else refOutputs(p, isBound, out);
      }
      break;
    case "array":
    case "set":
      for (const i of t.items) refOutputs(i, isBound, out);
      break;
    case "object":
      for (const [a, b] of t.pairs) {
        refOutputs(a, isBound, out);
        refOutputs(b, isBound, out);
      }
      break;
    case "call":
      for (const a of t.args) refOutputs(a, isBound, out);
      break;
    default:
      break;
  }
  return out;
}

function unifyOutputs(
  a: Term,
  b: Term,
  isBound: (n: string) => boolean,
  d: number,
  vd: ReadonlyMap<string, number>,
): Set<string> {
  const out = new Set<string>();
  const bound = (n: string) => isBound(n) || out.has(n);
  const ready = (t: Term) => termVars(t, d, vd).every((v) => bound(v.name));
  const go = (x: Term, y: Term) => {
    if (x.type === "array" && y.type === "array" && x.items.length === y.items.length) {
      // Two passes so that [x, y] = [1, x] style cross references settle.
      for (let pass = 0; pass < 2; pass++) for (let i = 0; i < x.items.length; i++) go(x.items[i]!, y.items[i]!);
      return;
    }
    if (ready(y)) for (const v of patternVars(x)) out.add(v);
    else if (ready(x)) for (const v of patternVars(y)) out.add(v);
  };
  go(a, b);
  return out;
}

/** All variables used in a term, including those captured by closures, declared at depth <= d. */
function termVars(t: Term, d: number, vd: ReadonlyMap<string, number>, out: VarUse[] = []): VarUse[] {
  switch (t.type) {
    case "var":
      if (t.name !== "input" && t.name !== "data" && (vd.get(t.name) ?? 0) <= d) out.push({ name: t.name, orig: t.orig, loc: t.loc });
      break;
    case "ref":
      termVars(t.head, d, vd, out);
      for (const p of t.path) termVars(p, d, vd, out);
      break;
    case "array":
    case "set":
      for (const i of t.items) termVars(i, d, vd, out);
      break;
    case "object":
      for (const [a, b] of t.pairs) {
        termVars(a, d, vd, out);
        termVars(b, d, vd, out);
      }
      break;
    case "call":
      for (const a of t.args) termVars(a, d, vd, out);
      break;
    case "arrayCompr":
    case "setCompr":
      termVars(t.head, d, vd, out);
      out.push(...bodyVars(t.body, d, vd));
      break;
    case "objectCompr":
      termVars(t.key, d, vd, out);
      termVars(t.value, d, vd, out);
      out.push(...bodyVars(t.body, d, vd));
      break;
    default:
      break;
  }
  return out;
}

function bodyVars(body: Body, d: number, vd: ReadonlyMap<string, number>): VarUse[] {
  const out: VarUse[] = [];
  for (const lit of body) {
    for (const w of lit.withs ?? []) termVars(w.value, d, vd, out);
    switch (lit.kind) {
      case "expr":
        termVars(lit.term, d, vd, out);
        break;
      case "some":
        break;
      case "someIn":
        for (const t of [lit.key, lit.value, lit.collection]) if (t) termVars(t, d, vd, out);
        break;
      case "every":
        termVars(lit.domain, d, vd, out);
        out.push(...bodyVars(lit.body, d, vd));
        break;
    }
  }
  return out;
}

export type { Block };
