/**
 * Plans rule bodies into the IR in continuation-passing style, as OPA's planner does: planning a
 * literal takes a continuation that plans the rest of the body inside whatever the literal
 * opened (a `scan` for iteration, nothing for a plain condition). A failing condition abandons
 * the innermost block, which is exactly backtracking to the previous iteration point.
 *
 * Existence checks (`not`, `every`) run the inner plan inside a block and set a flag local from
 * the continuation, then `break` out: a `scan` that found one solution must stop, and a scan's
 * own success says nothing about whether any iteration succeeded.
 */
import type { Body, CallTarget, Literal, Loc, Term, WithModifier } from "./ast.ts";
import { isWildcard } from "./checker.ts";
import type { Local, Mock } from "./ir.ts";
import type { K } from "./planner-context.ts";
import { TermPlanner } from "./planner-terms.ts";
import { bodyVars, patternVars, refOutputs, termVars, unifyOutputs, type VarUse, withTarget } from "./planner-vars.ts";

export class BodyPlanner extends TermPlanner {
  bindArgs(args: readonly Term[], first: Local, k: K): void {
    const step = (i: number): void => {
      if (i === args.length) return k();
      this.unifyLocal(args[i]!, first + i, () => step(i + 1));
    };
    step(0);
  }

  // ---- ordering (OPA's reorderBodyForSafety) ----------------------------------------------------

  #reorder(body: Body): Literal[] {
    const bound = new Set<string>([...this.env.keys()]);
    const isBound = (n: string) => n === "input" || n === "data" || bound.has(n);
    const remaining = [...body];
    const ordered: Literal[] = [];
    for (;;) {
      const before = ordered.length;
      for (let i = 0; i < remaining.length;) {
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
    for (const e of errors.slice(1)) this.pp.report(e.loc, e.message);
    const first = errors[0] ?? { loc: remaining[0]!.loc, message: "body cannot be ordered safely" };
    return this.pp.fail(first!.loc, first!.message);
  }

  /** Variables a literal needs bound before it can run, and the ones it binds. */
  #analyze(lit: Literal, isBound: (n: string) => boolean): { needed: VarUse[]; outputs: Set<string> } {
    const r = this.#analyzeOnly(lit, isBound);
    // `with` values are evaluated first and bind nothing.
    for (const w of lit.withs ?? []) if (!w.by) r.needed.push(...termVars(w.value, this.scopeDepth, this.varDepth));
    return r;
  }

  #analyzeOnly(lit: Literal, isBound: (n: string) => boolean): { needed: VarUse[]; outputs: Set<string> } {
    const d = this.scopeDepth;
    const vd = this.varDepth;
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
      this.cover(ordered[i]!.loc);
      this.#planLiteral(ordered[i]!, () => step(i + 1));
    };
    step(0);
  }

  /** Plans `inner` in a block; returns a local set (to true) iff the continuation was reached. */
  #exists(inner: (k: K) => void): Local {
    const fb = this.fb;
    const flag = fb.newLocal();
    fb.emit({ op: "reset", target: flag });
    const outerDepth = fb.depth + 1;
    const blk = fb.nest(() =>
      this.scoped(() =>
        inner(() => {
          fb.emit({ op: "const", target: flag, json: "true" });
          fb.emit({ op: "break", index: fb.depth - outerDepth });
        }),
      ),
    );
    fb.emit({ op: "block", blocks: [blk] });
    return flag;
  }

  /**
   * `lit with target as value ...`: the values are planned first; `input` and base `data` paths
   * are replaced by copies with the values set, and the literal is planned against them. Mocks of
   * functions, builtins and rules' documents are recorded on the literal's call sites (see
   * planner-with.ts). Its rule and function calls go to unmemoized twins (a rule's cached value
   * was computed against the real input). The rest of the body sees the real documents again.
   */
  #planWith(lit: Literal, k: K): void {
    const withs = lit.withs!;
    const inner = { ...lit, withs: undefined } as Literal;
    const valued = withs.filter((w) => !w.by);
    this.planTerms(
      valued.map((w) => w.value),
      (ls) => {
        let nin = this.inLocal;
        let ndata = this.dataLocal;
        const mocks: Mock[] = [...this.mocks];
        for (const w of withs) {
          const v = w.by ? undefined : ls[valued.indexOf(w)]!;
          if (w.fn) {
            mocks.push({ target: this.#mockTarget(w.fn, w.loc), persist: false, by: this.#mockBy(w, v!) });
            continue;
          }
          const target = withTarget(w.target);
          if (!target)
            return this.pp.fail(w.loc, "with keyword target must reference existing input, data, or a function");
          if (target.root === "input") {
            nin = target.path.length === 0 ? v! : this.#upsert(nin, target.path, v!);
            continue;
          }
          if (target.path.length === 0) return this.pp.fail(w.loc, "unsupported: with on all of data");
          const r = this.pp.resolveData(target.path, this.from, w.loc);
          if (r.kind === "rule" && r.used === target.path.length) {
            mocks.push({ target: `f:${r.func}`, persist: true, by: { kind: "value", local: v! } });
          } else if (r.kind === "rule") {
            return this.pp.fail(w.target.loc, "with keyword cannot partially replace virtual document(s)");
          } else if (r.kind === "doc") {
            // A package's document, as OPA's `with` replaces it whole: every function computing it
            // or a document below it answers the value's part at its path (undefined where the
            // value has none), and base data there is the value.
            for (const { func, rel } of this.pp.functionsAt(target.path))
              mocks.push({ target: `f:${func}`, persist: true, by: { kind: "value", local: v!, path: rel } });
            ndata = this.#upsert(ndata, target.path, v!);
          } else {
            ndata = this.#upsert(ndata, target.path, v!);
          }
        }
        const saved = { in: this.inLocal, data: this.dataLocal, under: this.under, mocks: this.mocks };
        const enter = () => {
          this.inLocal = nin;
          this.dataLocal = ndata;
          this.under = true;
          this.mocks = mocks;
        };
        const leave = () => {
          this.inLocal = saved.in;
          this.dataLocal = saved.data;
          this.under = saved.under;
          this.mocks = saved.mocks;
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
      },
    );
  }

  #mockTarget(fn: CallTarget, loc: Loc): string {
    if (fn.kind === "builtin") return `b:${fn.name}`;
    return `f:${this.pp.functionFor(fn.path, this.from, loc)}`;
  }

  #mockBy(w: WithModifier, value: Local): Mock["by"] {
    if (!w.by) return { kind: "value", local: value };
    if (w.by.kind === "function") return { kind: "func", func: this.pp.functionFor(w.by.path, this.from, w.loc) };
    this.pp.useBuiltin(w.by.name);
    return { kind: "builtin", name: w.by.name };
  }

  /** A copy of `src` with the value at `path` replaced by `value` (objects created as needed). */
  #upsert(src: Local, path: readonly string[], value: Local): Local {
    const fb = this.fb;
    const along: Local[] = [src];
    for (let i = 0; i < path.length - 1; i++) {
      const next = fb.newLocal();
      const key = fb.newLocal();
      fb.emit({ op: "reset", target: next });
      fb.emit({
        op: "block",
        blocks: [
          [
            { op: "const", target: key, json: JSON.stringify(path[i]) },
            { op: "dot", target: next, source: along[i]!, key },
          ],
        ],
      });
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
    const fb = this.fb;
    if (lit.withs && lit.withs.length > 0) return this.#planWith(lit, k);
    switch (lit.kind) {
      case "some":
        return k();
      case "someIn":
        return this.planTerm(lit.collection, (coll) => {
          const key = fb.newLocal();
          const val = fb.newLocal();
          const body = fb.nest(() =>
            this.scoped(() => {
              const bindValue = () => this.unifyLocal(lit.value, val, k);
              if (lit.key) this.unifyLocal(lit.key, key, bindValue);
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
              this.scoped(() => {
                const bindValue = () =>
                  this.unifyLocal(lit.value, val, () => {
                    this.scopeDepth++;
                    try {
                      const ok = this.#exists((k2) => this.planBody(lit.body, k2));
                      fb.emit({ op: "isUndefined", source: ok });
                    } finally {
                      this.scopeDepth--;
                    }
                    found();
                  });
                if (lit.key) this.unifyLocal(lit.key, key, bindValue);
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
    const fb = this.fb;
    if (t.type === "call" && t.target?.kind === "builtin") {
      const [a, b] = t.args;
      switch (t.target.name) {
        case "assign":
          return this.planTerm(b!, (v) => this.unifyLocal(a!, v, k));
        case "eq":
          return this.unify(a!, b!, k);
        case "equal":
          return this.planTerms([a!, b!], ([x, y]) => (fb.emit({ op: "equal", a: x!, b: y! }), k()));
        case "neq":
          return this.planTerms([a!, b!], ([x, y]) => (fb.emit({ op: "notEqual", a: x!, b: y! }), k()));
        default:
          break;
      }
    }
    this.planTerm(t, (v) => {
      fb.emit({ op: "notFalse", source: v });
      k();
    });
  }
}
