/**
 * Code generation: IR `Policy` -> an OPA wasm ABI 1.2 module.
 *
 * The runtime (`src/compiler/runtime/`, AssemblyScript, built into
 * `gen/compiler/runtime.wasm` by `npm run gen:runtime`) implements values, JSON and the native
 * builtins. This module appends to it one wasm function per IR function, the entrypoint
 * dispatch (`opa_eval` and the slow-path `eval`), `builtins()`/`entrypoints()`, and a start
 * function that materializes every `const` before the SDK records its base heap pointer; the
 * runtime's helper exports (`rt_*`, `bi_*`) are dropped. The binary is written directly
 * (wasm-module.ts): IR blocks map one to one onto wasm `block`/`br`/`loop`.
 */
import { readFileSync } from "node:fs";
import { BUILTIN_ARITY, HOST_IMPORT_NAMES, HOST_TYPED_ARGS, NATIVE_BUILTINS } from "./builtins.ts";
import { COVER_BUILTIN } from "./coverage.ts";
import { CodegenError, Emitter, FuncGen, type FuncGenHost } from "./codegen-func.ts";
import type { Func, Policy } from "./ir.ts";
import { type NewFunction, Op, RuntimeModule, writeModule } from "./wasm-module.ts";

const RUNTIME_URL = new URL("../../gen/compiler/runtime.wasm", import.meta.url);
let runtime: RuntimeModule | undefined;

function loadRuntime(): RuntimeModule {
  runtime ??= new RuntimeModule(new Uint8Array(readFileSync(RUNTIME_URL)));
  return runtime;
}

/** Runtime exports kept in the output module (the OPA ABI). */
const ABI_EXPORTS = [
  "opa_wasm_abi_version",
  "opa_wasm_abi_minor_version",
  "opa_malloc",
  "opa_free",
  "opa_heap_ptr_get",
  "opa_heap_ptr_set",
  "opa_json_parse",
  "opa_value_parse",
  "opa_json_dump",
  "opa_value_dump",
  "memory",
];

export { CodegenError } from "./codegen-func.ts";

/** Generates the wasm module for a policy. Synchronous; throws `CodegenError` on invalid IR. */
export function generateWasm(policy: Policy): Uint8Array {
  const wasm = new Generator(loadRuntime(), policy).run();
  if (!WebAssembly.validate(wasm as Uint8Array<ArrayBuffer>))
    throw new CodegenError("generated module failed validation");
  return wasm;
}

interface PendingFunc {
  readonly index: number;
  params: number;
  results: number;
  locals: number;
  code?: Uint8Array;
}

class Generator implements FuncGenHost {
  readonly #rt: RuntimeModule;
  readonly #policy: Policy;
  /** Strict builtin errors (see Policy.strictBuiltinErrors). */
  readonly strict: boolean;
  readonly #funcs = new Map<string, { ir: Func; index: number }>();
  readonly #pending: PendingFunc[] = [];
  /** const JSON text -> global index */
  readonly #consts = new Map<string, number>();
  #globals = 0;
  readonly #hostIds = new Map<string, number>();
  readonly #memo: number[] = [];

  constructor(rt: RuntimeModule, policy: Policy) {
    this.#rt = rt;
    this.#policy = policy;
    this.strict = policy.strictBuiltinErrors === true;
  }

  #newFunc(params: number, results: number): PendingFunc {
    const f: PendingFunc = { index: this.#rt.funcTypes.length + this.#pending.length, params, results, locals: 0 };
    this.#pending.push(f);
    return f;
  }

  #newGlobal(): number {
    return this.#rt.globalCount + this.#globals++;
  }

  run(): Uint8Array {
    const policy = this.#policy;
    policy.hostBuiltins.forEach((name, id) => {
      if (!this.#hostIds.has(name)) this.#hostIds.set(name, id);
    });
    for (const f of policy.funcs) {
      if (this.#funcs.has(f.name)) throw new CodegenError(`duplicate function ${f.name}`);
      if (!Number.isInteger(f.params) || f.params < 0 || !Number.isInteger(f.locals) || f.locals < f.params) {
        throw new CodegenError(`function ${f.name}: bad params/locals`);
      }
      this.#funcs.set(f.name, { ir: f, index: this.#newFunc(f.params, 1).index });
    }
    for (const p of policy.plans) {
      const f = this.#funcs.get(p.func);
      if (!f) throw new CodegenError(`plan ${p.name}: unknown function ${p.func}`);
      if (f.ir.params !== 2) throw new CodegenError(`plan ${p.name}: function ${p.func} must take 2 parameters`);
    }
    for (const f of policy.funcs) this.#genFunc(f);

    const entrypoints: Record<string, number> = {};
    policy.plans.forEach((p, i) => {
      entrypoints[p.name] = i;
    });
    const exports = new Map<string, { kind: number; index: number }>();
    for (const name of ABI_EXPORTS) {
      const e = this.#rt.exports.get(name);
      if (e) exports.set(name, e);
    }
    const fnExport = (name: string, f: PendingFunc) => exports.set(name, { kind: 0, index: f.index });
    fnExport("entrypoints", this.#valueFn(JSON.stringify(entrypoints)));
    this.#genEval(fnExport);
    // builtins() last: generating code may have added host builtins
    const builtins: Record<string, number> = {};
    for (const [name, id] of this.#hostIds) builtins[HOST_IMPORT_NAMES.get(name) ?? name] = id;
    fnExport("builtins", this.#valueFn(JSON.stringify(builtins)));
    const start = this.#genStart();
    return writeModule(this.#rt, {
      functions: this.#pending.map((f): NewFunction => ({
        params: f.params,
        results: f.results,
        locals: f.locals,
        code: f.code!,
      })),
      globals: this.#globals,
      exports,
      start: start.index,
    });
  }

  // ---- helpers used by FuncGen -----------------------------------------------------------------

  runtimeFunc(name: string, params: number): number {
    const index = this.#rt.func(name);
    if (index === undefined)
      throw new CodegenError(`runtime function ${name} is missing (rebuild with npm run gen:runtime)`);
    if (this.#rt.funcType(index).params !== params)
      throw new CodegenError(
        `runtime function ${name} takes ${this.#rt.funcType(index).params} arguments, not ${params}`,
      );
    return index;
  }

  constGlobal(json: string): number {
    let g = this.#consts.get(json);
    if (g === undefined) {
      try {
        JSON.parse(json);
      } catch {
        throw new CodegenError(`const is not valid JSON: ${json.slice(0, 80)}`);
      }
      g = this.#newGlobal();
      this.#consts.set(json, g);
    }
    return g;
  }

  funcByName(name: string): { ir: Func; index: number } | undefined {
    return this.#funcs.get(name);
  }

  /** Function index to call for builtin `name` and whether it is a host builtin (with its id). */
  builtin(name: string, argc: number): { index: number; hostId?: number } {
    // arbiter.cover is no Rego builtin: only coverage-instrumented modules call it (coverage.ts).
    const arity = name === COVER_BUILTIN ? 1 : BUILTIN_ARITY.get(name);
    if (arity === undefined) throw new CodegenError(`unknown builtin ${name}`);
    // HOST_TYPED_ARGS builtins also receive the type name of every argument (see builtins.ts).
    const want = HOST_TYPED_ARGS.has(name) ? arity * 2 : arity;
    if (want !== argc) throw new CodegenError(`builtin ${name} takes ${want} arguments, got ${argc}`);
    if (NATIVE_BUILTINS.has(name)) return { index: this.runtimeFunc("bi_" + name.replace(/\./g, "_"), argc) };
    let id = this.#hostIds.get(name);
    if (id === undefined) {
      id = Math.max(-1, ...this.#hostIds.values()) + 1;
      this.#hostIds.set(name, id);
    }
    if (argc > 4) throw new CodegenError(`host builtin ${name}: at most 4 arguments`);
    const index = this.#rt.importedFunc(`opa_builtin${argc}`);
    if (index === undefined) throw new CodegenError(`runtime.wasm lacks the import opa_builtin${argc}`);
    return { index, hostId: id };
  }

  // ---- functions ----------------------------------------------------------------------------

  #genFunc(f: Func): void {
    const { index } = this.#funcs.get(f.name)!;
    const pending = this.#pending.find((p) => p.index === index)!;
    const fg = new FuncGen(this, f);
    const e = fg.e;
    if (f.memoize) {
      if (f.params !== 2) throw new CodegenError(`function ${f.name}: memoize requires 2 parameters`);
      const state = this.#newGlobal();
      const value = this.#newGlobal();
      this.#memo.push(state);
      e.op(Op.globalGet).u32(state).op(Op.if).byte(Op.void).op(Op.globalGet).u32(value).op(Op.return).op(Op.end);
      fg.body();
      e.op(Op.localGet).u32(fg.local(f.result)).op(Op.globalSet).u32(value);
      e.op(Op.i32Const).s32(1).op(Op.globalSet).u32(state);
    } else {
      fg.body();
    }
    e.op(Op.localGet).u32(fg.local(f.result));
    pending.locals = f.locals - f.params + fg.extraLocals;
    pending.code = e.bytes();
  }

  #valueFn(json: string): PendingFunc {
    const f = this.#newFunc(0, 1);
    f.code = new Emitter().op(Op.globalGet).u32(this.constGlobal(json)).bytes();
    return f;
  }

  #abortInvalidEntrypoint(e: Emitter): void {
    e.op(Op.globalGet)
      .u32(this.constGlobal(JSON.stringify("invalid entrypoint id")))
      .op(Op.call)
      .u32(this.runtimeFunc("rt_abort_value", 1))
      .op(Op.unreachable);
  }

  /**
   * Resets the memo caches and calls the plan function of entrypoint `ep` (a local) with the
   * input and data locals; leaves the result address on the stack.
   */
  #dispatch(e: Emitter, ep: number, input: number, data: number, res: number): void {
    for (const g of this.#memo) e.op(Op.i32Const).s32(0).op(Op.globalSet).u32(g);
    const plans = this.#policy.plans;
    // block $done { block $bad { ...if (ep == i) { res = call; br $done } } abort }
    e.op(Op.block).byte(Op.void);
    e.op(Op.block).byte(Op.void);
    plans.forEach((p, i) => {
      e.op(Op.localGet).u32(ep).op(Op.i32Const).s32(i).op(Op.i32Eq).op(Op.if).byte(Op.void);
      e.op(Op.localGet)
        .u32(input)
        .op(Op.localGet)
        .u32(data)
        .op(Op.call)
        .u32(this.#funcs.get(p.func)!.index)
        .op(Op.localSet)
        .u32(res);
      e.op(Op.br).u32(2).op(Op.end);
    });
    e.op(Op.end);
    this.#abortInvalidEntrypoint(e);
    e.op(Op.end);
    e.op(Op.localGet).u32(res);
  }

  #genEval(fnExport: (name: string, f: PendingFunc) => void): void {
    // opa_eval(reserved, entrypoint, data, inputAddr, inputLen, heapPtr, format)
    const evalFn = this.#newFunc(7, 1);
    const INPUT = 7;
    const RES = 8;
    const e = new Emitter();
    e.op(Op.localGet)
      .u32(3)
      .op(Op.localGet)
      .u32(4)
      .op(Op.localGet)
      .u32(5)
      .op(Op.call)
      .u32(this.runtimeFunc("rt_eval_begin", 3))
      .op(Op.localSet)
      .u32(INPUT);
    e.op(Op.i32Const).s32(0).op(Op.localSet).u32(RES);
    this.#dispatch(e, 1, INPUT, 2, RES);
    e.op(Op.call).u32(this.runtimeFunc("rt_result_set", 1));
    evalFn.locals = 2;
    evalFn.code = e.bytes();
    fnExport("opa_eval", evalFn);

    // Slow path (ABI < 1.2): ctx = [input@0, data@4, entrypoint@8, result@12].
    const ctxNew = this.#newFunc(0, 1);
    ctxNew.locals = 1;
    const c = new Emitter();
    c.op(Op.i32Const).s32(16).op(Op.call).u32(this.runtimeFunc("opa_malloc", 1)).op(Op.localSet).u32(0);
    for (const off of [0, 4, 8, 12]) c.op(Op.localGet).u32(0).op(Op.i32Const).s32(0).op(Op.i32Store).u32(2).u32(off);
    c.op(Op.localGet).u32(0);
    ctxNew.code = c.bytes();
    fnExport("opa_eval_ctx_new", ctxNew);
    const setter = (name: string, off: number) => {
      const f = this.#newFunc(2, 0);
      f.code = new Emitter().op(Op.localGet).u32(0).op(Op.localGet).u32(1).op(Op.i32Store).u32(2).u32(off).bytes();
      fnExport(name, f);
    };
    setter("opa_eval_ctx_set_input", 0);
    setter("opa_eval_ctx_set_data", 4);
    setter("opa_eval_ctx_set_entrypoint", 8);

    const ev = this.#newFunc(1, 1);
    // locals: 1 ep, 2 input, 3 data, 4 res, 5 set, 6 obj
    ev.locals = 6;
    const s = new Emitter();
    const load = (off: number, to: number) =>
      s.op(Op.localGet).u32(0).op(Op.i32Load).u32(2).u32(off).op(Op.localSet).u32(to);
    load(8, 1);
    load(0, 2);
    load(4, 3);
    s.op(Op.i32Const).s32(0).op(Op.localSet).u32(4);
    this.#dispatch(s, 1, 2, 3, 4);
    s.op(Op.drop);
    // the result set as a value: [] or [{"result": v}]
    s.op(Op.i32Const).s32(1).op(Op.call).u32(this.runtimeFunc("rt_make_array", 1)).op(Op.localSet).u32(5);
    s.op(Op.localGet).u32(4).op(Op.if).byte(Op.void);
    s.op(Op.call).u32(this.runtimeFunc("rt_make_object", 0)).op(Op.localSet).u32(6);
    s.op(Op.localGet)
      .u32(6)
      .op(Op.globalGet)
      .u32(this.constGlobal(JSON.stringify("result")))
      .op(Op.localGet)
      .u32(4)
      .op(Op.call)
      .u32(this.runtimeFunc("rt_object_insert", 3))
      .op(Op.drop);
    s.op(Op.localGet).u32(5).op(Op.localGet).u32(6).op(Op.call).u32(this.runtimeFunc("rt_array_append", 2)).op(Op.drop);
    s.op(Op.end);
    s.op(Op.localGet).u32(0).op(Op.localGet).u32(5).op(Op.i32Store).u32(2).u32(12);
    s.op(Op.i32Const).s32(0);
    ev.code = s.bytes();
    fnExport("eval", ev);

    const get = this.#newFunc(1, 1);
    get.code = new Emitter().op(Op.localGet).u32(0).op(Op.i32Load).u32(2).u32(12).bytes();
    fnExport("opa_eval_ctx_get_result", get);
  }

  /** Start function: runtime init, then every constant parsed into its global. */
  #genStart(): PendingFunc {
    const f = this.#newFunc(0, 0);
    f.locals = 1;
    const e = new Emitter();
    const rtStart = this.#rt.func("rt_start");
    if (rtStart !== undefined) e.op(Op.call).u32(rtStart);
    e.op(Op.call).u32(this.runtimeFunc("rt_init", 0));
    const enc = new TextEncoder();
    const texts = [...this.#consts].map(([json, g]) => ({ g, bytes: enc.encode(json) }));
    const total = texts.reduce((n, t) => n + t.bytes.length, 0);
    const all = new Uint8Array(total + 4);
    let off = 0;
    for (const t of texts) {
      all.set(t.bytes, off);
      off += t.bytes.length;
    }
    // Rounded up: the text is written four bytes at a time.
    e.op(Op.i32Const)
      .s32(total + 4)
      .op(Op.call)
      .u32(this.runtimeFunc("opa_malloc", 1))
      .op(Op.localSet)
      .u32(0);
    const view = new DataView(all.buffer);
    for (let i = 0; i < total; i += 4) {
      e.op(Op.localGet).u32(0).op(Op.i32Const).s32(view.getInt32(i, true)).op(Op.i32Store).u32(0).u32(i);
    }
    off = 0;
    const parse = this.runtimeFunc("opa_json_parse", 2);
    for (const t of texts) {
      e.op(Op.localGet)
        .u32(0)
        .op(Op.i32Const)
        .s32(off)
        .op(Op.i32Add)
        .op(Op.i32Const)
        .s32(t.bytes.length)
        .op(Op.call)
        .u32(parse)
        .op(Op.globalSet)
        .u32(t.g);
      off += t.bytes.length;
    }
    f.code = e.bytes();
    return f;
  }
}
