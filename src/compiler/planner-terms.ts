/**
 * Planning of terms, references and unification: the half of body planning that turns a term
 * into a local holding its value (calling rules, functions and builtins, walking references,
 * building collections and comprehensions). `BodyPlanner` (planner-body.ts) adds literals.
 */
import type { Body, Loc, Term } from "./ast.ts";
import type { ResolvedClause } from "./checker.ts";
import { COVER_BUILTIN } from "./coverage.ts";
import type { CallSite, Local, Mock, Stmt } from "./ir.ts";
import { type FnBuilder, type K, type KL, MSG_OBJECT_KEYS, type PlannerServices } from "./planner-context.ts";
import {
  groundJson,
  isDefaultValue,
  isGround,
  isJsonConst,
  pairUp,
  patternVars,
  refOutputs,
  scalarJson,
  termVars,
} from "./planner-vars.ts";

export abstract class TermPlanner {
  protected readonly pp: PlannerServices;
  protected readonly fb: FnBuilder;
  protected readonly varDepth: ReadonlyMap<string, number>;
  protected readonly from: string;
  /** Bound locals at the current point of planning. */
  protected env = new Map<string, Local>();
  /** Depth of the body being planned (0 = the rule body). */
  protected scopeDepth = 0;
  /** Locals holding `input` and `data` here: the parameters 0 and 1, or a `with`'s replacements. */
  protected inLocal: Local = 0;
  protected dataLocal: Local = 1;
  /** Inside a `with`: rules and functions are called through their unmemoized twins. */
  protected under = false;
  /** The function mocks of the `with`s being planned, innermost last. */
  protected mocks: readonly Mock[] = [];

  constructor(pp: PlannerServices, fb: FnBuilder, clause: ResolvedClause, from: string) {
    this.pp = pp;
    this.fb = fb;
    this.varDepth = clause.varDepth;
    this.from = from;
  }

  /** With coverage on, marks `loc`'s line reached when the evaluation gets here (coverage.ts). */
  cover(loc: Loc): void {
    const id = this.pp.coverId(loc);
    if (id === undefined) return;
    const arg = this.fb.newLocal();
    this.fb.emit({ op: "const", target: arg, json: String(id) });
    this.fb.emit({ op: "builtin", target: this.fb.newLocal(), name: COVER_BUILTIN, args: [arg] });
  }

  /** Plans a body, calling `k` at each solution (planner-body.ts). */
  abstract planBody(body: Body, k: K): void;

  protected isBound(name: string): boolean {
    return name === "input" || name === "data" || this.env.has(name);
  }

  /** Runs fn with the environment restored afterwards (bindings made inside do not leak). */
  protected scoped<T>(fn: () => T): T {
    const saved = new Map(this.env);
    try {
      return fn();
    } finally {
      this.env = saved;
    }
  }

  checkHeadSafety(terms: readonly (Term | undefined)[], loc: Loc, isDefault = false): void {
    for (const t of terms) {
      if (!t) continue;
      if (isDefault && !isDefaultValue(t)) this.pp.fail(t.loc, "default rule value must be a constant");
      const out = refOutputs(t, (n) => this.isBound(n));
      for (const v of termVars(t, this.scopeDepth, this.varDepth)) {
        if (!this.isBound(v.name) && !out.has(v.name)) this.pp.fail(v.loc ?? loc, `var ${v.orig} is unsafe`);
      }
    }
  }

  planValue(value: Term | undefined, k: KL): void {
    if (!value) {
      const l = this.fb.newLocal();
      this.fb.emit({ op: "const", target: l, json: "true" });
      return k(l);
    }
    this.planTerm(value, k);
  }

  /** Where a Rego call stands, for planner-with.ts to apply the `with` mocks that reach it. */
  protected site(loc: Loc): CallSite {
    return { under: this.under, mocks: this.mocks, input: this.inLocal, data: this.dataLocal, loc };
  }

  // ---- unification ------------------------------------------------------------------------------

  protected unify(a: Term, b: Term, k: K): void {
    const isB = (n: string) => this.isBound(n);
    const unboundA = patternVars(a).some((v) => !isB(v));
    const unboundB = patternVars(b).some((v) => !isB(v));
    const pairs = unboundA && unboundB ? pairUp(a, b) : undefined;
    if (pairs === "mismatch") {
      // Collections of different shapes never unify: the expression is false.
      const f = this.fb.newLocal();
      this.fb.emit({ op: "const", target: f, json: "false" });
      this.fb.emit({ op: "notFalse", source: f });
      return k();
    }
    if (pairs) {
      // Unify the pairs in an order where each has a bound side: [x, y] = [1, x] needs the
      // second pair first.
      const pending = [...pairs];
      const step = (): void => {
        if (pending.length === 0) return k();
        const ready = pending.findIndex(
          ([x, y]) => patternVars(x).every((v) => isB(v)) || patternVars(y).every((v) => isB(v)),
        );
        const [x, y] = pending.splice(ready < 0 ? 0 : ready, 1)[0]!;
        this.unify(x, y, step);
      };
      return step();
    }
    if (unboundA && !unboundB) return this.planTerm(b, (v) => this.unifyLocal(a, v, k));
    if (unboundB && !unboundA) return this.planTerm(a, (v) => this.unifyLocal(b, v, k));
    if (unboundA && unboundB) {
      const v = patternVars(a).find((n) => !isB(n)) ?? "";
      return this.pp.fail(a.loc, `var ${v.replace(/#\d+$/, "")} is unsafe`);
    }
    this.planTerms([a, b], ([x, y]) => {
      this.fb.emit({ op: "equal", a: x!, b: y! });
      k();
    });
  }

  /** Unifies a pattern (vars, arrays, objects, constants) with the value in local `l`. */
  protected unifyLocal(p: Term, l: Local, k: K): void {
    const fb = this.fb;
    if (p.type === "var" && p.name !== "input" && p.name !== "data" && !this.env.has(p.name)) {
      const target = fb.newLocal();
      fb.emit({ op: "assign", target, source: l });
      this.env.set(p.name, target);
      return k();
    }
    const unbound = patternVars(p).some((v) => !this.isBound(v));
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
        this.unifyLocal(p.items[i]!, el, () => step(i + 1));
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
        if (!isGround(key) && termVars(key, 99, new Map()).some((v) => !this.isBound(v.name))) {
          this.pp.fail(key.loc, "unsupported: object pattern with a variable key");
        }
        this.planTerm(key, (kl) => {
          const el = fb.newLocal();
          fb.emit({ op: "dot", target: el, source: l, key: kl });
          this.unifyLocal(val, el, () => step(i + 1));
        });
      };
      return step(0);
    }
    return this.pp.fail(p.loc, "unsupported: unification with this pattern");
  }

  // ---- terms ------------------------------------------------------------------------------------

  planTerm(t: Term, k: KL): void {
    const fb = this.fb;
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
        if (t.name === "input") return k(this.inLocal);
        if (t.name === "data") return this.#planDataRef(t, [], k);
        const l = this.env.get(t.name);
        if (l === undefined) return this.pp.fail(t.loc, `var ${t.orig} is unsafe`);
        return k(l);
      }
      case "ref":
        return this.#planRef(t, k);
      case "array": {
        if (isJsonConst(t)) return this.#const(t, k);
        return this.planTerms(t.items, (ls) => {
          const arr = fb.newLocal();
          fb.emit({ op: "makeArray", target: arr, capacity: ls.length });
          for (const l of ls) fb.emit({ op: "arrayAppend", array: arr, value: l });
          k(arr);
        });
      }
      case "set":
        return this.planTerms(t.items, (ls) => {
          const s = fb.newLocal();
          fb.emit({ op: "makeSet", target: s });
          for (const l of ls) fb.emit({ op: "setAdd", set: s, value: l });
          k(s);
        });
      case "object": {
        if (isJsonConst(t)) return this.#const(t, k);
        return this.planTerms(
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
          this.scoped(() => {
            this.scopeDepth++;
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
                      t.type === "arrayCompr"
                        ? { op: "arrayAppend", array: target, value: hl }
                        : { op: "setAdd", set: target, value: hl },
                    ),
                  );
                }
              });
            } finally {
              this.scopeDepth--;
            }
          }),
        );
        fb.emit({ op: "block", blocks: [blk] });
        return k(target);
      }
      case "call": {
        const target = t.target!;
        return this.planTerms(t.args, (ls) => {
          const out = fb.newLocal();
          if (target.kind === "builtin") {
            this.pp.useBuiltin(target.name);
            fb.emit({ op: "builtin", target: out, name: target.name, args: ls, site: this.site(t.loc) });
          } else {
            const func = this.pp.functionFor(target.path, this.from, t.loc);
            const args = [this.inLocal, this.dataLocal, ...ls];
            fb.emit({ op: "call", target: out, func, args, site: this.site(t.loc) });
          }
          k(out);
        });
      }
    }
  }

  #const(t: Term, k: KL): void {
    const l = this.fb.newLocal();
    this.fb.emit({ op: "const", target: l, json: groundJson(t) });
    k(l);
  }

  /**
   * Plans several terms (call arguments, collection items). A term whose variable is bound by a
   * reference in a later term goes after it: `f(x) == input.xs[x]` iterates first. Evaluation
   * order does not change the result; terms are pure.
   */
  protected planTerms(ts: readonly Term[], k: (ls: Local[]) => void): void {
    const out: Local[] = [];
    const order: number[] = [];
    const bound = new Set<string>();
    const isB = (n: string) => this.isBound(n) || bound.has(n);
    const left = ts.map((_, i) => i);
    while (left.length > 0) {
      let pick = left.findIndex((i) => {
        const own = refOutputs(ts[i]!, isB);
        return termVars(ts[i]!, this.scopeDepth, this.varDepth).every((v) => isB(v.name) || own.has(v.name));
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
    // Below a package, a constant key that is not a string (`data[2]`) names no rule: only base
    // data can hold it, so the package document (which may include this very rule) is not built.
    const next = path[keys.length];
    const children = next && next.type !== "number" && keys.length + 1 < path.length && this.pp.virtualChildren(keys);
    if (children) return this.#planDataDispatch(t, keys, children, next, path.slice(keys.length + 1), k);
    const r = this.pp.resolveData(keys, this.from, t.loc, next?.type === "number");
    // Base data: OPA's storage reads `data.x[2]` as the key "2" of an object too.
    if (r.kind === "base") return this.#walk(this.dataLocal, path, 0, k, true);
    const out = this.fb.newLocal();
    const args = [this.inLocal, this.dataLocal];
    this.fb.emit({ op: "call", target: out, func: r.func, args, site: this.site(t.loc) });
    this.#walk(out, path, r.used, k);
  }

  /**
   * `data.<keys>[next].<rest>` below a package path: OPA's "call dynamic". Instead of building the
   * package's whole document (every rule below it, including, from inside it, the rule asking),
   * the keys of that document are scanned (the rule tree's children and the base data's keys, so
   * the order is the document's) and each is looked up statically: a child by its own plan of
   * `data.<keys>.<child>.<rest>`, any other key in base data. `next` is unified with each key
   * before anything below it is evaluated; a key known beforehand (`data.policies[input.kind].deny`)
   * is looked up directly, so only the matching package's `deny` is evaluated.
   */
  #planDataDispatch(
    t: Term,
    keys: readonly string[],
    children: string[],
    next: Term,
    rest: readonly Term[],
    k: KL,
  ): void {
    const fb = this.fb;
    const constOf = (json: string): Local => {
      const l = fb.newLocal();
      fb.emit({ op: "const", target: l, json });
      return l;
    };
    // The base data at the path (undefined when there is none).
    const base = fb.newLocal();
    const loadBase = (): void => {
      fb.emit({ op: "reset", target: base });
      fb.emit({ op: "block", blocks: [walkConst(fb, this.dataLocal, keys, base, constOf)] });
    };
    const childKey = (c: string): Term[] => [...keys, c].map((value): Term => ({ type: "string", value, loc: t.loc }));
    /** One block per child (its own static plan) and one for base data (looked up there when not yet), for `key`. */
    const dispatch = (key: Local, unify: boolean, baseLoaded: boolean): void => {
      const then = (plan: () => void) => (unify ? this.scoped(() => this.unifyLocal(next, key, plan)) : plan());
      const blocks = children.map((c) =>
        fb.nest(() => {
          fb.emit({ op: "equal", a: key, b: constOf(JSON.stringify(c)) });
          then(() => this.#planDataRef(t, [...childKey(c), ...rest], k));
        }),
      );
      blocks.push(
        fb.nest(() => {
          for (const c of children) fb.emit({ op: "notEqual", a: key, b: constOf(JSON.stringify(c)) });
          if (!baseLoaded) loadBase();
          const v = fb.newLocal();
          fb.emit({ op: "dot", target: v, source: base, key, data: true });
          then(() => this.#walk(v, rest, 0, k, true));
        }),
      );
      fb.emit({ op: "block", blocks });
    };
    // A key known before the lookup (`data.policies[input.kind]`): look only there.
    if (patternVars(next).every((v) => this.isBound(v)))
      return this.planTerm(next, (key) => dispatch(key, false, false));
    // Otherwise scan every key of the document: the children and the base data's keys.
    loadBase();
    const all = fb.newLocal();
    fb.emit({ op: "makeObject", target: all });
    const yes = constOf("true");
    for (const c of children) fb.emit({ op: "objectInsert", object: all, key: constOf(JSON.stringify(c)), value: yes });
    const [bk, bv] = [fb.newLocal(), fb.newLocal()];
    const addBase = fb.nest(() => fb.emit({ op: "objectInsert", object: all, key: bk, value: yes }));
    const scanBase: Stmt[] = [
      { op: "isDefined", source: base },
      { op: "scan", source: base, key: bk, value: bv, body: addBase },
    ];
    fb.emit({ op: "block", blocks: [scanBase] });
    const [key, unused] = [fb.newLocal(), fb.newLocal()];
    const body = fb.nest(() => dispatch(key, true, true));
    fb.emit({ op: "scan", source: all, key, value: unused, body });
  }

  /** Walks path[i..] from the value in local `src`: `dot` for known keys, `scan` for unbound vars. */
  #walk(src: Local, path: readonly Term[], i: number, k: KL, baseData = false): void {
    if (i === path.length) return k(src);
    const fb = this.fb;
    const p = path[i]!;
    if (p.type === "var" && p.name !== "input" && p.name !== "data" && !this.env.has(p.name)) {
      const key = fb.newLocal();
      const val = fb.newLocal();
      const body = fb.nest(() =>
        this.scoped(() => {
          this.env.set(p.name, key);
          this.#walk(val, path, i + 1, k, baseData);
        }),
      );
      fb.emit({ op: "scan", source: src, key, value: val, body });
      return;
    }
    if (patternVars(p).some((v) => !this.isBound(v))) {
      // A composite key with unbound variables (`s[[1, x]]`): unify it with every key, as OPA.
      const key = fb.newLocal();
      const val = fb.newLocal();
      const body = fb.nest(() =>
        this.scoped(() => this.unifyLocal(p, key, () => this.#walk(val, path, i + 1, k, baseData))),
      );
      fb.emit({ op: "scan", source: src, key, value: val, body });
      return;
    }
    this.planTerm(p, (key) => {
      const out = fb.newLocal();
      fb.emit(
        baseData
          ? { op: "dot", target: out, source: src, key, data: true }
          : { op: "dot", target: out, source: src, key },
      );
      this.#walk(out, path, i + 1, k, baseData);
    });
  }
}

/** Statements looking `keys` up in base data from local `src` into `out`, left undefined if absent. */
function walkConst(
  fb: FnBuilder,
  src: Local,
  keys: readonly string[],
  out: Local,
  constOf: (json: string) => Local,
): Stmt[] {
  let cur = src;
  const stmts: Stmt[] = [];
  for (const key of keys) {
    const next = fb.newLocal();
    stmts.push({ op: "dot", target: next, source: cur, key: constOf(JSON.stringify(key)), data: true });
    cur = next;
  }
  stmts.push({ op: "assign", target: out, source: cur });
  return stmts;
}
