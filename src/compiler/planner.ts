/**
 * Plans checked Rego modules into the IR (`ir.ts`): builds the rule tree from the modules,
 * plans what the entrypoints reach (rule groups in planner-rules.ts, bodies in planner-body.ts,
 * terms in planner-terms.ts), checks every other rule too, and refuses recursion.
 */
import type { Loc, Module } from "./ast.ts";
import { CheckFailure, type RuleIndex } from "./checker.ts";
import type { CoverageTable } from "./coverage.ts";
import type { Diagnostic } from "./diagnostics.ts";
import type { Func, Plan, Policy } from "./ir.ts";
import { dataName, FnBuilder, type Group, PlanFailure, type TreeNode } from "./planner-context.ts";
import { planDoc, planGroup, type RuleContext } from "./planner-rules.ts";
import { planTree } from "./planner-tree.ts";
import { lowerCalls } from "./planner-with.ts";

/** Plans modules for the given entrypoints (slash paths). Diagnostics are appended to `diags`. */
export function planModules(
  modules: readonly Module[],
  entrypoints: readonly string[] | undefined,
  diags: Diagnostic[],
  coverage?: CoverageTable,
): Policy {
  return new PolicyPlanner(modules, diags, coverage).plan(entrypoints);
}

class PolicyPlanner implements RuleContext {
  #diags: Diagnostic[];
  readonly #root: TreeNode = { path: [], children: new Map(), isPackage: false };
  readonly #groups: Group[] = [];
  readonly #trees: TreeNode[] = [];
  readonly #funcs = new Map<string, Func>();
  /** Package path + first name of every multi-part rule head (`a` of `a.b.c := 1`). */
  readonly #refHeads = new Set<string>();
  readonly #queue: (() => void)[] = [];
  /** Call graph between rule groups and package documents (by data name) for recursion checks. */
  readonly #edges = new Map<string, Set<string>>();
  readonly #nodeLoc = new Map<string, Loc>();
  readonly #builtinsUsed = new Set<string>();
  readonly #coverage: CoverageTable | undefined;

  constructor(modules: readonly Module[], diags: Diagnostic[], coverage?: CoverageTable) {
    this.#diags = diags;
    this.#coverage = coverage;
    for (const m of modules) {
      const pkgNode = this.#node(m.pkg);
      pkgNode.isPackage = true;
      for (const rule of m.rules) {
        const path = [...m.pkg, rule.name, ...(rule.ref ?? [])];
        if (rule.ref || rule.dynRef) this.#refHeads.add(dataName([...m.pkg, rule.name]));
        const node = this.#node(path);
        if (rule.dynRef) {
          (node.generals ??= []).push({ rule, module: m });
          if (!this.#nodeLoc.has(dataName(path))) this.#nodeLoc.set(dataName(path), rule.loc);
          continue;
        }
        const arity = rule.kind === "function" ? rule.args.length : 0;
        // A partial object may have rules below it: the node becomes a tree (#markTrees).
        if (node.children.size > 0 && rule.kind !== "object") {
          this.#error(rule.loc, `conflicting rules ${dataName(path)} found (a package is defined below it)`);
          continue;
        }
        if (!node.group) {
          node.group = {
            path,
            kind: rule.kind,
            arity,
            rules: [],
            funcName: `g${this.#groups.length}.${dataName(path)}`,
          };
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
    this.#markTrees(this.#root);
  }

  /** Marks the nodes whose document planner-tree.ts builds (the outermost ones own the rest). */
  #markTrees(n: TreeNode): void {
    if (n.generals || (n.group?.kind === "object" && n.children.size > 0)) {
      if (n.group && n.group.kind !== "object") {
        this.#error(n.group.rules[0]!.rule.loc, `conflicting rules ${dataName(n.path)} found`);
        return;
      }
      n.tree = `t${this.#trees.length}.${dataName(n.path)}`;
      this.#trees.push(n);
      return;
    }
    for (const c of n.children.values()) this.#markTrees(c);
  }

  #node(path: readonly string[]): TreeNode {
    let n = this.#root;
    for (let i = 0; i < path.length; i++) {
      let c = n.children.get(path[i]!);
      if (!c) {
        c = { path: path.slice(0, i + 1), children: new Map(), isPackage: false };
        n.children.set(path[i]!, c);
        if (n.group && n.group.kind !== "object") {
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

  get diags(): Diagnostic[] {
    return this.#diags;
  }

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
      const bad = (msg: string) =>
        this.#diags.push({ file: "", line: 0, col: 0, message: `entrypoint "${ep}" ${msg}` });
      const below = this.#belowRule(ep, path);
      if (below) {
        plans.push({ name: ep, func: below });
        continue;
      }
      const node = path.length === 0 ? this.#root : this.#find(path);
      if (!node || (node.children.size === 0 && !node.group && !node.tree)) {
        bad("does not refer to a rule or package");
        continue;
      }
      if (node.tree) {
        plans.push({ name: ep, func: this.ensureTree(node) });
      } else if (node.group) {
        if (node.group.kind === "function") {
          bad("refers to a function");
          continue;
        }
        this.ensureGroup(node.group);
        plans.push({ name: ep, func: node.group.funcName });
      } else {
        plans.push({ name: ep, func: this.ensureDoc(node) });
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
      for (const g of this.#groups) this.ensureGroup(g);
      for (const t of this.#trees) this.ensureTree(t);
      while (this.#queue.length > 0) this.#queue.shift()!();
    } finally {
      this.#diags = real;
    }
    for (const d of unreached) if (!d.message.startsWith("unsupported")) real.push(d);
    this.#checkRecursion();
    const funcs = new Map([...this.#funcs].filter(([name]) => reachable.has(name)));
    const lowered = lowerCalls(funcs, plans, (loc, message) => this.#error(loc, message));
    return { funcs: lowered, plans, hostBuiltins: [] };
  }

  /** Builtin names the plans call (for the host builtin table). */
  get builtinsUsed(): ReadonlySet<string> {
    return this.#builtinsUsed;
  }

  ensureGroup(g: Group): string {
    if (!this.#funcs.has(g.funcName)) {
      // Reserve the name first so recursive references terminate.
      this.#funcs.set(g.funcName, { name: g.funcName, params: 2, locals: 2, body: [], result: 0, memoize: false });
      this.#queue.push(() => {
        try {
          this.#funcs.set(g.funcName, planGroup(this, g));
        } catch (e) {
          if (!(e instanceof PlanFailure) && !(e instanceof CheckFailure)) throw e;
        }
      });
    }
    return g.funcName;
  }

  ensureTree(node: TreeNode): string {
    const name = node.tree!;
    if (!this.#funcs.has(name)) {
      this.#funcs.set(name, { name, params: 2, locals: 2, body: [], result: 0, memoize: true });
      this.#queue.push(() => {
        try {
          this.#funcs.set(name, planTree(this, node, name));
        } catch (e) {
          if (!(e instanceof PlanFailure) && !(e instanceof CheckFailure)) throw e;
        }
      });
    }
    return name;
  }

  /**
   * An entrypoint below a rule's document (`ex/foo/bar` where `ex.foo` is a partial object):
   * a function looking the constant rest of the path up in the rule's value, undefined when it
   * is absent, as OPA's query `data.ex.foo.bar` answers.
   */
  #belowRule(ep: string, path: readonly string[]): string | undefined {
    let n: TreeNode | undefined = this.#root;
    for (let i = 0; i < path.length - 1; i++) {
      n = n.children.get(path[i]!);
      if (!n) return undefined;
      if (!n.tree && (!n.group || n.group.kind === "function")) continue;
      const func = n.tree ? this.ensureTree(n) : this.ensureGroup(n.group!);
      const name = `ep.${ep}`;
      const fb = new FnBuilder(2);
      let cur = fb.newLocal();
      fb.emit({ op: "call", target: cur, func, args: [0, 1] });
      for (const key of path.slice(i + 1)) {
        const [k, next] = [fb.newLocal(), fb.newLocal()];
        fb.emit({ op: "const", target: k, json: JSON.stringify(key) });
        fb.emit({ op: "dot", target: next, source: cur, key: k });
        cur = next;
      }
      this.#funcs.set(name, { name, params: 2, locals: fb.locals, body: fb.body, result: cur, memoize: false });
      return name;
    }
    return undefined;
  }

  ensureDoc(node: TreeNode): string {
    const name = `doc.${dataName(node.path)}`;
    if (!this.#funcs.has(name)) {
      this.#funcs.set(name, { name, params: 2, locals: 2, body: [], result: 0, memoize: true });
      this.#queue.push(() => this.#funcs.set(name, planDoc(this, node, name)));
    }
    return name;
  }

  edge(from: string, to: string): void {
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

  // ---- services for the body planner ----------------------------------------------------------

  report(loc: Loc, message: string): void {
    this.#error(loc, message);
  }

  coverId(loc: Loc): number | undefined {
    return this.#coverage?.id(loc);
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
    this.edge(from, dataName(path));
    return this.ensureGroup(g);
  }

  functionsAt(keys: readonly string[]): { func: string; rel: string[] }[] {
    const out: { func: string; rel: string[] }[] = [];
    const walk = (n: TreeNode, rel: string[]): void => {
      if (n.tree) out.push({ func: this.ensureTree(n), rel });
      else if (n.group) {
        if (n.group.kind !== "function") out.push({ func: this.ensureGroup(n.group), rel });
      } else {
        out.push({ func: this.ensureDoc(n), rel });
        for (const [key, c] of n.children) walk(c, [...rel, key]);
      }
    };
    const node = keys.length === 0 ? this.#root : this.#find(keys);
    if (node) walk(node, []);
    return out;
  }

  virtualChildren(keys: readonly string[]): string[] | undefined {
    let n: TreeNode = this.#root;
    if (n.children.size === 0) return undefined;
    for (const key of keys) {
      const c = n.children.get(key);
      if (!c || c.tree || c.group) return undefined;
      n = c;
    }
    return [...n.children].filter(([, c]) => c.group?.kind !== "function").map(([name]) => name);
  }

  /**
   * Resolves the static prefix of a `data` reference: a rule (call it, then continue with the
   * rest of the path), a virtual node (build its document), or base data (plain lookups).
   * `keys` holds the constant string path elements known statically (up to the first dynamic one).
   * `baseBelowDoc`: the reference continues with a key no rule can have (a number), so where it
   * would build a package document, base data is enough.
   */
  resolveData(
    keys: readonly string[],
    from: string,
    loc: Loc,
    baseBelowDoc = false,
  ): { kind: "rule"; func: string; used: number } | { kind: "doc"; func: string; used: number } | { kind: "base" } {
    let n: TreeNode = this.#root;
    if (n.children.size === 0) return { kind: "base" };
    for (let i = 0; i < keys.length; i++) {
      const c = n.children.get(keys[i]!);
      if (!c) {
        return { kind: "base" };
      }
      n = c;
      if (n.tree) {
        this.edge(from, dataName(n.path));
        return { kind: "rule", func: this.ensureTree(n), used: i + 1 };
      }
      if (n.group) {
        if (n.group.kind === "function") {
          return this.fail(loc, `function ${dataName(n.path)} must be called with arguments`);
        }
        this.edge(from, dataName(n.path));
        return { kind: "rule", func: this.ensureGroup(n.group), used: i + 1 };
      }
    }
    if (baseBelowDoc) return { kind: "base" };
    this.edge(from, dataName(n.path));
    return { kind: "doc", func: this.ensureDoc(n), used: keys.length };
  }
}
