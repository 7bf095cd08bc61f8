/**
 * Lowers the planner's Rego calls (`call` and `builtin` statements carrying a `site`) into plain
 * IR, applying `with` mocks the way OPA's topdown does, but statically:
 *
 * - a call inside a `with` goes to a twin of its function: a copy with memoization off (its
 *   cached value would belong to other documents) and every call in it lowered under the mocks
 *   in force, transitively. One twin exists per function and set of mocks ("context");
 * - a mocked builtin, function or rule is replaced by its replacement: another builtin, another
 *   function (run in a twin without function mocks: OPA evaluates a mock with none in force,
 *   only rules' documents stay replaced), or a value (every call answers it, its arguments
 *   still evaluated);
 * - a value replacement computed at run time (`with f as x`) reaches twins in one extra
 *   parameter: an array of the context's values, in the order of their targets.
 *
 * Functions are lowered from the plans outwards, so the result holds exactly what they reach.
 */
import type { Block, CallSite, Func, Local, Mock, Plan, Stmt } from "./ir.ts";
import { MOCK_ONLY_ARITY } from "./builtins.ts";
import { FnBuilder } from "./planner-context.ts";
import { emitBuiltin } from "./planner-builtin.ts";

/** A replacement in force: a value is a local of the function being lowered or a slot of its parameter. */
type Path = readonly string[] | undefined;
type By =
  | Exclude<Mock["by"], { kind: "value" }>
  | { kind: "local"; local: Local; path: Path }
  | { kind: "slot"; index: number; path: Path };
interface Entry {
  readonly by: By;
  readonly persist: boolean;
}
/** Mocks in force, by target. In a twin's own context, values are slots numbered in target order. */
type Ctx = ReadonlyMap<string, Entry>;

/** The plans' functions and everything they reach, lowered; twins named `<func>~with<n>`. */
export function lowerCalls(
  funcs: ReadonlyMap<string, Func>,
  plans: readonly Plan[],
  report: (loc: CallSite["loc"], message: string) => void,
): Func[] {
  return new Lowering(funcs, report).run(plans);
}

class Lowering {
  readonly #funcs: ReadonlyMap<string, Func>;
  readonly #out = new Map<string, Func>();
  readonly #queue: { func: Func; ctx: Ctx | undefined; name: string }[] = [];
  readonly #ctxIds = new Map<string, number>();

  constructor(
    funcs: ReadonlyMap<string, Func>,
    readonly report: (loc: CallSite["loc"], message: string) => void,
  ) {
    this.#funcs = funcs;
  }

  run(plans: readonly Plan[]): Func[] {
    for (const p of plans) this.#want(p.func, undefined);
    while (this.#queue.length > 0) {
      const { func, ctx, name } = this.#queue.shift()!;
      this.#out.set(name, new FunctionLowering(this, func, ctx, name).lower());
    }
    return [...this.#out.values()];
  }

  /** Name of `func` lowered in `ctx` (undefined: the real function), queued when new. */
  want(func: string, ctx: Ctx | undefined): string {
    return this.#want(func, ctx);
  }

  #want(func: string, ctx: Ctx | undefined): string {
    const f = this.#funcs.get(func);
    let name = func;
    if (ctx) {
      // `~with`: under input/data replacements only; `~with<n>`: under the n-th set of mocks.
      const key = ctxKey(ctx);
      let id = this.#ctxIds.get(key);
      if (id === undefined) this.#ctxIds.set(key, (id = key === "" ? 0 : this.#ctxIds.size + 1));
      name = `${func}~with${id === 0 ? "" : id}`;
    }
    if (f && !this.#out.has(name)) {
      // Reserve the name so a function reached twice is lowered once.
      this.#out.set(name, f);
      this.#queue.push({ func: f, ctx, name });
    }
    return name;
  }
}

function ctxKey(ctx: Ctx): string {
  return [...ctx]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([t, e]) => {
      const by =
        e.by.kind === "builtin"
          ? `b:${e.by.name}`
          : e.by.kind === "func"
            ? `f:${e.by.func}`
            : `v${JSON.stringify(e.by.path ?? [])}`;
      return `${t}=${e.persist ? "p" : ""}${by}`;
    })
    .join(";");
}

/** Targets of the value replacements of a context, in slot order. */
function valueTargets(ctx: Ctx): string[] {
  return [...ctx]
    .filter(([, e]) => e.by.kind === "local" || e.by.kind === "slot")
    .map(([t]) => t)
    .sort();
}

class FunctionLowering {
  readonly #fb: FnBuilder;
  /** The parameter holding this twin's value replacements, if it has any. */
  readonly #mockParam: Local | undefined;
  readonly #params: number;
  readonly #body: Block;
  readonly #result: Local;

  constructor(
    readonly lowering: Lowering,
    readonly func: Func,
    readonly ctx: Ctx | undefined,
    readonly name: string,
  ) {
    const extra = ctx && valueTargets(ctx).length > 0 ? 1 : 0;
    this.#fb = new FnBuilder(0);
    this.#fb.locals = func.locals + extra;
    this.#params = func.params + extra;
    this.#mockParam = extra ? func.params : undefined;
    this.#body = extra ? shiftBlock(func.body, func.params) : func.body;
    this.#result = extra && func.result >= func.params ? func.result + 1 : func.result;
  }

  lower(): Func {
    this.#block(this.#body);
    return {
      name: this.name,
      params: this.#params,
      locals: this.#fb.locals,
      body: this.#fb.body,
      result: this.#result,
      memoize: this.ctx ? false : this.func.memoize,
    };
  }

  #block(b: Block): void {
    for (const s of b) this.#stmt(s);
  }

  #nested(b: Block): Stmt[] {
    return this.#fb.nest(() => this.#block(b));
  }

  #stmt(s: Stmt): void {
    const fb = this.#fb;
    switch (s.op) {
      case "call": {
        const { site, ...plain } = s;
        if (!this.ctx && !site?.under) {
          fb.emit({ ...plain, func: this.lowering.want(s.func, undefined) });
          return;
        }
        const eff = this.#effective(site);
        const mock = eff.get(`f:${s.func}`);
        if (mock) {
          // A document's function calls its rules without a site: `input` and `data` are its arguments.
          const at = { ...(site ?? { under: true, mocks: [], loc: { file: "", line: 0, col: 0 } }) };
          return this.#replace(mock.by, eff, s.args.slice(2), s.target, { ...at, input: s.args[0]!, data: s.args[1]! });
        }
        return this.#call(s.func, eff, s.args, s.target);
      }
      case "builtin": {
        const { site, ...plain } = s;
        if (!site) return fb.emit(plain);
        const mock = this.ctx || site.mocks.length > 0 ? this.#effective(site) : undefined;
        const by = mock?.get(`b:${s.name}`);
        if (by) return this.#replace(by.by, mock!, s.args, s.target, site);
        return this.#builtin(s.name, s.args, s.target, site);
      }
      case "block":
        return fb.emit({ ...s, blocks: s.blocks.map((b) => this.#nested(b)) });
      case "scan":
      case "not":
        return fb.emit({ ...s, body: this.#nested(s.body) });
      default:
        return fb.emit(s);
    }
  }

  /** The mocks in force at a call: this function's context, then the `with`s around the call. */
  #effective(site: CallSite | undefined): Map<string, Entry> {
    const eff = new Map<string, Entry>(this.ctx ?? []);
    for (const m of site?.mocks ?? []) {
      const by: By = m.by.kind === "value" ? { kind: "local", local: m.by.local, path: m.by.path } : m.by;
      eff.set(m.target, { by, persist: m.persist });
    }
    return eff;
  }

  /** target = the replacement applied to `args` (Rego arguments, without input and data). */
  #replace(by: By, eff: Ctx, args: readonly Local[], target: Local, site: CallSite): void {
    const fb = this.#fb;
    switch (by.kind) {
      case "builtin":
        return this.#builtin(by.name, args, target, site);
      case "func": {
        const kept = new Map([...eff].filter(([, e]) => e.persist));
        return this.#call(by.func, kept, [site.input, site.data, ...args], target);
      }
      case "local":
      case "slot": {
        // OPA still evaluates the arguments: an undefined one leaves the call undefined.
        for (const a of args) fb.emit({ op: "isDefined", source: a });
        if (!by.path?.length) {
          if (by.kind === "local") return fb.emit({ op: "assign", target, source: by.local });
          return this.#slot(by.index, target);
        }
        // A rule below a replaced package: its path in the replacement (undefined where absent).
        let cur = by.kind === "local" ? by.local : fb.newLocal();
        if (by.kind === "slot") this.#slot(by.index, cur);
        for (const key of by.path) {
          const [k, next] = [fb.newLocal(), fb.newLocal()];
          fb.emit({ op: "const", target: k, json: JSON.stringify(key) });
          fb.emit({ op: "dot", target: next, source: cur, key: k });
          cur = next;
        }
        return fb.emit({ op: "assign", target, source: cur });
      }
    }
  }

  #builtin(name: string, args: readonly Local[], target: Local, site: CallSite): void {
    if (MOCK_ONLY_ARITY.has(name)) {
      this.lowering.report(site.loc, `unsupported builtin ${name} (only replaced by a with mock)`);
    }
    emitBuiltin(this.#fb, name, args, target);
  }

  #slot(index: number, target: Local): void {
    const idx = this.#fb.newLocal();
    this.#fb.emit({ op: "const", target: idx, json: String(index) });
    this.#fb.emit({ op: "dot", target, source: this.#mockParam!, key: idx });
  }

  /** target = the twin of `func` for the mocks `eff` (values passed in one array). */
  #call(func: string, eff: Ctx, args: readonly Local[], target: Local): void {
    const fb = this.#fb;
    const targets = valueTargets(eff);
    const ctx = new Map<string, Entry>();
    for (const [t, e] of eff) {
      const i = targets.indexOf(t);
      const path = e.by.kind === "local" || e.by.kind === "slot" ? e.by.path : undefined;
      ctx.set(t, i < 0 ? e : { by: { kind: "slot", index: i, path }, persist: e.persist });
    }
    const callArgs = [...args];
    if (targets.length > 0) {
      const own = this.ctx ? valueTargets(this.ctx) : [];
      const same =
        own.length === targets.length && targets.every((t, i) => own[i] === t && eff.get(t)!.by.kind === "slot");
      if (same) {
        callArgs.push(this.#mockParam!);
      } else {
        const arr = fb.newLocal();
        fb.emit({ op: "makeArray", target: arr, capacity: targets.length });
        for (const t of targets) {
          const by = eff.get(t)!.by;
          let v: Local;
          if (by.kind === "local") v = by.local;
          else this.#slot(by.kind === "slot" ? by.index : 0, (v = fb.newLocal()));
          fb.emit({ op: "arrayAppend", array: arr, value: v });
        }
        callArgs.push(arr);
      }
    }
    fb.emit({ op: "call", target, func: this.lowering.want(func, ctx), args: callArgs });
  }
}

const LOCAL_FIELDS = ["target", "source", "key", "value", "a", "b", "object", "array", "set"] as const;

/** The block with every local from `from` on moved up by one (room for a new parameter). */
function shiftBlock(b: Block, from: number): Block {
  const sh = (l: Local) => (l >= from ? l + 1 : l);
  return b.map((s): Stmt => {
    const out: Record<string, unknown> = { ...s };
    for (const f of LOCAL_FIELDS) if (typeof out[f] === "number") out[f] = sh(out[f] as number);
    if ("args" in s) out.args = s.args.map(sh);
    if ("site" in s && s.site) {
      const mocks = s.site.mocks.map((m) =>
        m.by.kind === "value" ? { ...m, by: { ...m.by, local: sh(m.by.local) } } : m,
      );
      out.site = { ...s.site, mocks, input: sh(s.site.input), data: sh(s.site.data) };
    }
    if (s.op === "block") out.blocks = s.blocks.map((x) => shiftBlock(x, from));
    if (s.op === "scan" || s.op === "not") out.body = shiftBlock(s.body, from);
    return out as unknown as Stmt;
  });
}
