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
import type { Block, Func, Local, Policy, Stmt, ValueKind } from "./ir.ts";
import { Bytes, type NewFunction, Op, RuntimeModule, writeModule } from "./wasm-module.ts";

const RUNTIME_URL = new URL("../../gen/compiler/runtime.wasm", import.meta.url);
let runtime: RuntimeModule | undefined;

function loadRuntime(): RuntimeModule {
  runtime ??= new RuntimeModule(new Uint8Array(readFileSync(RUNTIME_URL)));
  return runtime;
}

/** Value kinds as numbered by the runtime (`value.ts`). */
const KIND_CODE: Record<ValueKind, number> = {
  null: 1, boolean: 2, number: 3, string: 4, array: 5, object: 6, set: 7,
};

/** Runtime exports kept in the output module (the OPA ABI). */
const ABI_EXPORTS = [
  "opa_wasm_abi_version", "opa_wasm_abi_minor_version", "opa_malloc", "opa_free",
  "opa_heap_ptr_get", "opa_heap_ptr_set", "opa_json_parse", "opa_value_parse", "opa_json_dump",
  "opa_value_dump", "memory",
];

/** Error in the IR handed to the code generator (a front-end bug, not a user error). */
export class CodegenError extends Error {
  override name = "CodegenError";
}

/** Generates the wasm module for a policy. Synchronous; throws `CodegenError` on invalid IR. */
export function generateWasm(policy: Policy): Uint8Array {
  const wasm = new Generator(loadRuntime(), policy).run();
  if (!WebAssembly.validate(wasm as Uint8Array<ArrayBuffer>)) throw new CodegenError("generated module failed validation");
  return wasm;
}

interface PendingFunc {
  readonly index: number;
  params: number;
  results: number;
  locals: number;
  code?: Uint8Array;
}

class Generator {
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
      functions: this.#pending.map((f): NewFunction => ({ params: f.params, results: f.results, locals: f.locals, code: f.code! })),
      globals: this.#globals,
      exports,
      start: start.index,
    });
  }

  // ---- helpers used by FuncGen -----------------------------------------------------------------

  runtimeFunc(name: string, params: number): number {
    const index = this.#rt.func(name);
    if (index === undefined) throw new CodegenError(`runtime function ${name} is missing (rebuild with npm run gen:runtime)`);
    if (this.#rt.funcType(index).params !== params) throw new CodegenError(`runtime function ${name} takes ${this.#rt.funcType(index).params} arguments, not ${params}`);
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
    const arity = BUILTIN_ARITY.get(name);
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
      e.op(Op.globalGet).u32(state).op(Op.if).byte(Op.void)
        .op(Op.globalGet).u32(value).op(Op.return)
        .op(Op.end);
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
    e.op(Op.globalGet).u32(this.constGlobal(JSON.stringify("invalid entrypoint id")))
      .op(Op.call).u32(this.runtimeFunc("rt_abort_value", 1)).op(Op.unreachable);
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
      e.op(Op.localGet).u32(input).op(Op.localGet).u32(data)
        .op(Op.call).u32(this.#funcs.get(p.func)!.index).op(Op.localSet).u32(res);
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
    e.op(Op.localGet).u32(3).op(Op.localGet).u32(4).op(Op.localGet).u32(5)
      .op(Op.call).u32(this.runtimeFunc("rt_eval_begin", 3)).op(Op.localSet).u32(INPUT);
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
    const load = (off: number, to: number) => s.op(Op.localGet).u32(0).op(Op.i32Load).u32(2).u32(off).op(Op.localSet).u32(to);
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
    s.op(Op.localGet).u32(6).op(Op.globalGet).u32(this.constGlobal(JSON.stringify("result"))).op(Op.localGet).u32(4)
      .op(Op.call).u32(this.runtimeFunc("rt_object_insert", 3)).op(Op.drop);
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
    e.op(Op.i32Const).s32(total + 4).op(Op.call).u32(this.runtimeFunc("opa_malloc", 1)).op(Op.localSet).u32(0);
    const view = new DataView(all.buffer);
    for (let i = 0; i < total; i += 4) {
      e.op(Op.localGet).u32(0).op(Op.i32Const).s32(view.getInt32(i, true)).op(Op.i32Store).u32(0).u32(i);
    }
    off = 0;
    const parse = this.runtimeFunc("opa_json_parse", 2);
    for (const t of texts) {
      e.op(Op.localGet).u32(0).op(Op.i32Const).s32(off).op(Op.i32Add).op(Op.i32Const).s32(t.bytes.length)
        .op(Op.call).u32(parse).op(Op.globalSet).u32(t.g);
      off += t.bytes.length;
    }
    f.code = e.bytes();
    return f;
  }
}

/** Instruction bytes of one function body. */
class Emitter {
  readonly #b = new Bytes();

  op(code: number): this {
    this.#b.byte(code);
    return this;
  }

  byte(b: number): this {
    this.#b.byte(b);
    return this;
  }

  u32(v: number): this {
    this.#b.u32(v);
    return this;
  }

  s32(v: number): this {
    this.#b.s32(v);
    return this;
  }

  bytes(): Uint8Array {
    return this.#b.view().slice();
  }
}

/** Code generation of one IR function body. */
class FuncGen {
  readonly e = new Emitter();
  readonly #g: Generator;
  readonly #f: Func;
  /** Open wasm blocks; `true` for those that are IR blocks (targets of fail and break). */
  readonly #frames: boolean[] = [];
  #extra = 0;
  readonly #tmp: number;

  constructor(g: Generator, f: Func) {
    this.#g = g;
    this.#f = f;
    this.#tmp = this.#newLocal();
  }

  get extraLocals(): number {
    return this.#extra;
  }

  #newLocal(): number {
    return this.#f.locals + this.#extra++;
  }

  body(): void {
    this.#block(this.#f.body);
  }

  local(l: Local): number {
    if (!Number.isInteger(l) || l < 0 || l >= this.#f.locals) {
      throw new CodegenError(`function ${this.#f.name}: local ${l} out of range (locals: ${this.#f.locals})`);
    }
    return l;
  }

  #open(opcode: number, irBlock: boolean): void {
    this.e.op(opcode).byte(Op.void);
    this.#frames.push(irBlock);
  }

  #close(): void {
    this.e.op(Op.end);
    this.#frames.pop();
  }

  #block(stmts: Block): void {
    this.#open(Op.block, true);
    for (const s of stmts) this.#stmt(s);
    this.#close();
  }

  /** Relative depth of the `index`-th enclosing IR block (0 = innermost). */
  #depth(index: number): number {
    let seen = -1;
    for (let i = this.#frames.length - 1; i >= 0; i--) {
      if (this.#frames[i] && ++seen === index) return this.#frames.length - 1 - i;
    }
    throw new CodegenError(`function ${this.#f.name}: break ${index} leaves more blocks than enclose it`);
  }

  #get(l: Local): this {
    this.e.op(Op.localGet).u32(this.local(l));
    return this;
  }

  #call(name: string, args: readonly Local[]): void {
    for (const a of args) this.#get(a);
    this.e.op(Op.call).u32(this.#g.runtimeFunc(name, args.length));
  }

  /** Fails the enclosing IR block when the i32 on the stack is zero. */
  #requireTop(): void {
    this.e.op(Op.i32Eqz).op(Op.brIf).u32(this.#depth(0));
  }

  /** target = the i32 on the stack, failing (target untouched) when it is 0. */
  #setDefinedTop(target: Local): void {
    const t = this.local(target);
    this.e.op(Op.localTee).u32(this.#tmp).op(Op.i32Eqz).op(Op.brIf).u32(this.#depth(0));
    this.e.op(Op.localGet).u32(this.#tmp).op(Op.localSet).u32(t);
  }

  #abort(message: string): void {
    this.e.op(Op.globalGet).u32(this.#g.constGlobal(JSON.stringify(message)))
      .op(Op.call).u32(this.#g.runtimeFunc("rt_abort_value", 1)).op(Op.unreachable);
  }

  #stmt(s: Stmt): void {
    const e = this.e;
    switch (s.op) {
      case "const":
        e.op(Op.globalGet).u32(this.#g.constGlobal(s.json)).op(Op.localSet).u32(this.local(s.target));
        return;
      case "assign":
        this.#get(s.source);
        e.op(Op.localSet).u32(this.local(s.target));
        return;
      case "assignOnce":
        this.#get(s.source);
        this.#requireTop();
        this.#get(s.target);
        e.op(Op.i32Eqz).op(Op.if).byte(Op.void);
        this.#frames.push(false);
        this.#get(s.source);
        e.op(Op.localSet).u32(this.local(s.target));
        e.op(Op.else);
        this.#call("rt_equal", [s.target, s.source]);
        e.op(Op.i32Eqz).op(Op.if).byte(Op.void);
        this.#frames.push(false);
        this.#abort(s.message);
        this.#close();
        this.#close();
        return;
      case "reset":
        e.op(Op.i32Const).s32(0).op(Op.localSet).u32(this.local(s.target));
        return;
      case "equal":
        this.#call("rt_equal", [s.a, s.b]);
        this.#requireTop();
        return;
      case "notEqual":
        this.#call("rt_not_equal", [s.a, s.b]);
        this.#requireTop();
        return;
      case "isDefined":
        this.#get(s.source);
        this.#requireTop();
        return;
      case "isUndefined":
        this.#get(s.source);
        e.op(Op.brIf).u32(this.#depth(0));
        return;
      case "notFalse":
        this.#call("rt_not_false", [s.source]);
        this.#requireTop();
        return;
      case "isKind": {
        const code = KIND_CODE[s.kind];
        if (code === undefined) throw new CodegenError(`unknown value kind ${String(s.kind)}`);
        this.#get(s.source);
        e.op(Op.i32Const).s32(code).op(Op.call).u32(this.#g.runtimeFunc("rt_is_kind", 2));
        this.#requireTop();
        return;
      }
      case "isArrayOfLength":
        this.#get(s.source);
        e.op(Op.i32Const).s32(s.length).op(Op.call).u32(this.#g.runtimeFunc("rt_is_array_len", 2));
        this.#requireTop();
        return;
      case "dot":
        this.#call(s.data ? "rt_dot_data" : "rt_dot", [s.source, s.key]);
        this.#setDefinedTop(s.target);
        return;
      case "len":
        this.#call("rt_len", [s.source]);
        this.#setDefinedTop(s.target);
        return;
      case "call": {
        const callee = this.#g.funcByName(s.func);
        if (!callee) throw new CodegenError(`function ${this.#f.name}: call to unknown function ${s.func}`);
        if (callee.ir.params !== s.args.length) {
          throw new CodegenError(`function ${this.#f.name}: ${s.func} takes ${callee.ir.params} arguments, got ${s.args.length}`);
        }
        for (const a of s.args) this.#get(a);
        e.op(Op.call).u32(callee.index);
        this.#setDefinedTop(s.target);
        return;
      }
      case "builtin": {
        const b = this.#g.builtin(s.name, s.args.length);
        // An undefined argument makes the builtin call undefined.
        for (const a of s.args) {
          this.#get(a);
          this.#requireTop();
        }
        if (b.hostId !== undefined) e.op(Op.i32Const).s32(b.hostId).op(Op.i32Const).s32(0);
        for (const a of s.args) this.#get(a);
        e.op(Op.call).u32(b.index);
        if (this.#g.strict) {
          // Strict builtin errors: a builtin that fails (returns undefined) aborts the evaluation.
          e.op(Op.localTee).u32(this.#tmp).op(Op.i32Eqz).op(Op.if).byte(Op.void);
          this.#frames.push(false);
          this.#abort(`${s.name}: builtin error (strict builtin errors): the arguments are of the wrong type or out of range`);
          this.#close();
          e.op(Op.localGet).u32(this.#tmp);
        }
        this.#setDefinedTop(s.target);
        return;
      }
      case "makeArray":
        e.op(Op.i32Const).s32(Math.max(0, Math.min(s.capacity | 0, 1 << 16)))
          .op(Op.call).u32(this.#g.runtimeFunc("rt_make_array", 1)).op(Op.localSet).u32(this.local(s.target));
        return;
      case "makeObject":
        e.op(Op.call).u32(this.#g.runtimeFunc("rt_make_object", 0)).op(Op.localSet).u32(this.local(s.target));
        return;
      case "makeSet":
        e.op(Op.call).u32(this.#g.runtimeFunc("rt_make_set", 0)).op(Op.localSet).u32(this.local(s.target));
        return;
      case "arrayAppend":
        this.#call("rt_array_append", [s.array, s.value]);
        this.#requireTop();
        return;
      case "setAdd":
        this.#call("rt_set_add", [s.set, s.value]);
        this.#requireTop();
        return;
      case "objectInsert":
        this.#call("rt_object_insert", [s.object, s.key, s.value]);
        this.#requireTop();
        return;
      case "objectWith":
        this.#call("rt_object_with", [s.object, s.key, s.value]);
        e.op(Op.localSet).u32(this.local(s.target));
        return;
      case "objectInsertOnce":
        this.#call("rt_object_insert_once", [s.object, s.key, s.value]);
        e.op(Op.localTee).u32(this.#tmp);
        this.#requireTop();
        e.op(Op.localGet).u32(this.#tmp).op(Op.i32Const).s32(2).op(Op.i32Eq).op(Op.if).byte(Op.void);
        this.#frames.push(false);
        this.#abort(s.message);
        this.#close();
        return;
      case "objectMerge":
        this.#call("rt_object_merge", [s.a, s.b]);
        e.op(Op.localTee).u32(this.#tmp);
        this.#requireTop();
        e.op(Op.localGet).u32(this.#tmp).op(Op.i32Const).s32(1).op(Op.i32Eq).op(Op.if).byte(Op.void);
        this.#frames.push(false);
        this.#abort(s.message);
        this.#close();
        e.op(Op.localGet).u32(this.#tmp).op(Op.localSet).u32(this.local(s.target));
        return;
      case "block":
        this.#open(Op.block, false);
        for (const b of s.blocks) this.#block(b);
        this.#close();
        return;
      case "scan": {
        const src = this.#newLocal();
        const ctr = this.#newLocal();
        const scanLen = this.#g.runtimeFunc("rt_scan_len", 1);
        this.#get(s.source);
        e.op(Op.localTee).u32(src).op(Op.call).u32(scanLen).op(Op.i32Const).s32(0).op(Op.i32LtS)
          .op(Op.brIf).u32(this.#depth(0));
        e.op(Op.i32Const).s32(0).op(Op.localSet).u32(ctr);
        this.#open(Op.block, false); // exit
        this.#open(Op.loop, false);
        e.op(Op.localGet).u32(ctr).op(Op.localGet).u32(src).op(Op.call).u32(scanLen).op(Op.i32GeS).op(Op.brIf).u32(1);
        e.op(Op.localGet).u32(src).op(Op.localGet).u32(ctr).op(Op.call).u32(this.#g.runtimeFunc("rt_scan_key", 2))
          .op(Op.localSet).u32(this.local(s.key));
        e.op(Op.localGet).u32(src).op(Op.localGet).u32(ctr).op(Op.call).u32(this.#g.runtimeFunc("rt_scan_value", 2))
          .op(Op.localSet).u32(this.local(s.value));
        this.#block(s.body);
        e.op(Op.localGet).u32(ctr).op(Op.i32Const).s32(1).op(Op.i32Add).op(Op.localSet).u32(ctr);
        e.op(Op.br).u32(0);
        this.#close();
        this.#close();
        return;
      }
      case "not": {
        // block $body { body...; br $enclosing } — the body failing lands after the block.
        const enclosingDepth = this.#depth(0);
        this.#open(Op.block, true);
        for (const st of s.body) this.#stmt(st);
        e.op(Op.br).u32(enclosingDepth + 1);
        this.#close();
        return;
      }
      case "break":
        if (!Number.isInteger(s.index) || s.index < 0) {
          throw new CodegenError(`function ${this.#f.name}: break ${s.index} leaves more blocks than enclose it`);
        }
        e.op(Op.br).u32(this.#depth(s.index));
        return;
      default: {
        const op: never = s;
        throw new CodegenError(`unknown IR statement ${JSON.stringify(op)}`);
      }
    }
  }
}
