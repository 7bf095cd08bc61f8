/**
 * Code generation: IR `Policy` -> an OPA wasm ABI 1.2 module.
 *
 * The runtime (`src/compiler/runtime/`, AssemblyScript, built into
 * `gen/compiler/runtime.wasm` by `npm run gen:runtime`) implements values, JSON and the native
 * builtins. This module reads it with binaryen, adds one wasm function per IR function, the
 * entrypoint dispatch (`opa_eval` and the slow-path `eval`), `builtins()`/`entrypoints()`, a start
 * function that materializes every `const` before the SDK records its base heap pointer, and
 * drops the runtime's helper exports.
 */
import { readFileSync } from "node:fs";
import binaryen from "binaryen";
import type { Block, Func, Local, Policy, Stmt, ValueKind } from "./ir.ts";
import { BUILTIN_ARITY, HOST_IMPORT_NAMES, NATIVE_BUILTINS } from "./builtins.ts";

const RUNTIME_URL = new URL("../../gen/compiler/runtime.wasm", import.meta.url);
let runtimeBytes: Uint8Array | undefined;

function loadRuntime(): Uint8Array {
  runtimeBytes ??= new Uint8Array(readFileSync(RUNTIME_URL));
  return runtimeBytes;
}

/** Value kinds as numbered by the runtime (`value.ts`). */
const KIND_CODE: Record<ValueKind, number> = {
  null: 1, boolean: 2, number: 3, string: 4, array: 5, object: 6, set: 7,
};

/** Exports of the module as the SDK sees it; every other runtime export is removed. */
const ABI_EXPORTS = new Set([
  "opa_wasm_abi_version", "opa_wasm_abi_minor_version", "opa_malloc", "opa_free",
  "opa_heap_ptr_get", "opa_heap_ptr_set", "opa_json_parse", "opa_value_parse", "opa_json_dump",
  "opa_value_dump", "memory",
]);

/** Error in the IR handed to the code generator (a front-end bug, not a user error). */
export class CodegenError extends Error {
  override name = "CodegenError";
}

const i32 = binaryen.i32;
const FUNC_PREFIX = "rego:";

/** Generates the wasm module for a policy. Synchronous; throws `CodegenError` on invalid IR. */
export function generateWasm(policy: Policy): Uint8Array {
  const mod = binaryen.readBinary(loadRuntime());
  try {
    mod.setFeatures(binaryen.Features.MVP | binaryen.Features.MutableGlobals |
      binaryen.Features.BulkMemory | binaryen.Features.BulkMemoryOpt | binaryen.Features.SignExt | binaryen.Features.NontrappingFPToInt);
    new Generator(mod, policy).run();
    if (!mod.validate()) throw new CodegenError("generated module failed validation");
    return mod.emitBinary();
  } finally {
    mod.dispose();
  }
}

class Generator {
  readonly #m: binaryen.Module;
  readonly #policy: Policy;
  /** runtime export name -> internal function name */
  readonly #rt = new Map<string, string>();
  readonly #rtParams = new Map<string, number>();
  readonly #funcs = new Map<string, Func>();
  /** const JSON text -> global name */
  readonly #consts = new Map<string, string>();
  readonly #hostIds = new Map<string, number>();
  readonly #hostImports = new Set<number>();
  readonly #memo: string[] = [];
  #labelSeq = 0;

  constructor(m: binaryen.Module, policy: Policy) {
    this.#m = m;
    this.#policy = policy;
  }

  run(): void {
    const m = this.#m;
    const exported: string[] = [];
    for (let i = 0; i < m.getNumExports(); i++) {
      const info = binaryen.getExportInfo(m.getExportByIndex(i));
      exported.push(info.name);
      if (info.kind === binaryen.ExternalFunction) {
        this.#rt.set(info.name, info.value);
        this.#rtParams.set(info.name, binaryen.expandType(binaryen.getFunctionInfo(m.getFunction(info.value)).params).length);
      }
    }
    for (const name of exported) if (!ABI_EXPORTS.has(name)) m.removeExport(name);

    this.#policy.hostBuiltins.forEach((name, id) => {
      if (!this.#hostIds.has(name)) this.#hostIds.set(name, id);
    });
    for (const f of this.#policy.funcs) {
      if (this.#funcs.has(f.name)) throw new CodegenError(`duplicate function ${f.name}`);
      if (f.params < 0 || f.locals < f.params) throw new CodegenError(`function ${f.name}: bad params/locals`);
      this.#funcs.set(f.name, f);
    }
    for (const p of this.#policy.plans) {
      const f = this.#funcs.get(p.func);
      if (!f) throw new CodegenError(`plan ${p.name}: unknown function ${p.func}`);
      if (f.params !== 2) throw new CodegenError(`plan ${p.name}: function ${p.func} must take 2 parameters`);
    }
    for (const f of this.#policy.funcs) this.#genFunc(f);

    const entrypoints: Record<string, number> = {};
    this.#policy.plans.forEach((p, i) => { entrypoints[p.name] = i; });
    const builtins: Record<string, number> = {};
    for (const [name, id] of this.#hostIds) builtins[HOST_IMPORT_NAMES.get(name) ?? name] = id;
    this.#exportValueFn("entrypoints", JSON.stringify(entrypoints));
    this.#exportValueFn("builtins", JSON.stringify(builtins));
    this.#genEval();
    this.#genStart();
    m.runPasses(["remove-unused-module-elements"]);
  }

  // ---- helpers ------------------------------------------------------------------------------

  #rtCall(name: string, args: binaryen.ExpressionRef[], result: binaryen.Type = i32): binaryen.ExpressionRef {
    const internal = this.#rt.get(name);
    if (internal === undefined) throw new CodegenError(`runtime function ${name} is missing (rebuild with npm run gen:runtime)`);
    return this.#m.call(internal, args, result);
  }

  #constGlobal(json: string): string {
    let g = this.#consts.get(json);
    if (g === undefined) {
      try {
        JSON.parse(json);
      } catch {
        throw new CodegenError(`const is not valid JSON: ${json.slice(0, 80)}`);
      }
      g = `const:${this.#consts.size}`;
      this.#m.addGlobal(g, i32, true, this.#m.i32.const(0));
      this.#consts.set(json, g);
    }
    return g;
  }

  #exportValueFn(name: string, json: string): void {
    const g = this.#constGlobal(json);
    this.#m.addFunction(name, binaryen.none, i32, [], this.#m.global.get(g, i32));
    this.#m.addFunctionExport(name, name);
  }

  #label(prefix: string): string {
    return `${prefix}${this.#labelSeq++}`;
  }

  // ---- functions ----------------------------------------------------------------------------

  #genFunc(f: Func): void {
    const m = this.#m;
    const fg = new FuncGen(this, f);
    const body = fg.body();
    const vars: binaryen.Type[] = new Array(f.locals - f.params + fg.extraLocals).fill(i32);
    let result: binaryen.ExpressionRef;
    const get = (l: Local) => m.local.get(l, i32);
    if (f.memoize) {
      if (f.params !== 2) throw new CodegenError(`function ${f.name}: memoize requires 2 parameters`);
      const state = `memo_state:${this.#memo.length}`;
      const value = `memo_value:${this.#memo.length}`;
      this.#memo.push(state);
      m.addGlobal(state, i32, true, m.i32.const(0));
      m.addGlobal(value, i32, true, m.i32.const(0));
      result = m.block(null, [
        m.if(m.global.get(state, i32), m.return(m.global.get(value, i32))),
        body,
        m.global.set(value, get(f.result)),
        m.global.set(state, m.i32.const(1)),
        get(f.result),
      ], i32);
    } else {
      result = m.block(null, [body, get(f.result)], i32);
    }
    m.addFunction(FUNC_PREFIX + f.name, binaryen.createType(new Array(f.params).fill(i32)), i32, vars, result);
  }

  /** Used by FuncGen. */
  callRuntime(name: string, args: binaryen.ExpressionRef[], result: binaryen.Type = i32): binaryen.ExpressionRef {
    return this.#rtCall(name, args, result);
  }

  constRef(json: string): binaryen.ExpressionRef {
    return this.#m.global.get(this.#constGlobal(json), i32);
  }

  newLabel(prefix: string): string {
    return this.#label(prefix);
  }

  get module(): binaryen.Module {
    return this.#m;
  }

  funcByName(name: string): Func | undefined {
    return this.#funcs.get(name);
  }

  /** Expression calling builtin `name`; returns an i32 value address (0 = undefined). */
  builtinCall(name: string, args: binaryen.ExpressionRef[]): binaryen.ExpressionRef {
    const arity = BUILTIN_ARITY.get(name);
    if (arity === undefined) throw new CodegenError(`unknown builtin ${name}`);
    if (arity !== args.length) throw new CodegenError(`builtin ${name} takes ${arity} arguments, got ${args.length}`);
    if (NATIVE_BUILTINS.has(name)) {
      const rtName = "bi_" + name.replace(/\./g, "_");
      if (this.#rtParams.get(rtName) !== args.length) throw new CodegenError(`runtime builtin ${rtName} is missing or has another arity`);
      return this.#rtCall(rtName, args);
    }
    let id = this.#hostIds.get(name);
    if (id === undefined) {
      id = Math.max(-1, ...this.#hostIds.values()) + 1;
      this.#hostIds.set(name, id);
    }
    if (args.length > 4) throw new CodegenError(`host builtin ${name}: at most 4 arguments`);
    const imp = `opa_builtin${args.length}`;
    if (!this.#hostImports.has(args.length)) {
      this.#hostImports.add(args.length);
      this.#m.addFunctionImport(imp, "env", imp, binaryen.createType(new Array(args.length + 2).fill(i32)), i32);
    }
    return this.#m.call(imp, [this.#m.i32.const(id), this.#m.i32.const(0), ...args], i32);
  }

  // ---- entry points -------------------------------------------------------------------------

  /** Resets the memo caches and dispatches on the entrypoint id; leaves the result in local `res`. */
  #dispatch(ep: binaryen.ExpressionRef, input: binaryen.ExpressionRef, data: binaryen.ExpressionRef,
    res: number): binaryen.ExpressionRef[] {
    const m = this.#m;
    const out: binaryen.ExpressionRef[] = this.#memo.map((g) => m.global.set(g, m.i32.const(0)));
    let chain: binaryen.ExpressionRef = m.block(null, [
      this.#rtCall("rt_abort_value", [this.constRef(JSON.stringify("invalid entrypoint id"))], binaryen.none),
      m.unreachable(),
    ]);
    for (let i = this.#policy.plans.length - 1; i >= 0; i--) {
      const plan = this.#policy.plans[i]!;
      chain = m.if(
        m.i32.eq(ep, m.i32.const(i)),
        m.local.set(res, m.call(FUNC_PREFIX + plan.func, [input, data], i32)),
        chain,
      );
    }
    out.push(chain);
    return out;
  }

  #genEval(): void {
    const m = this.#m;
    const get = (i: number) => m.local.get(i, i32);
    // opa_eval(reserved, entrypoint, data, inputAddr, inputLen, heapPtr, format)
    const INPUT = 7;
    const RES = 8;
    m.addFunction("opa_eval", binaryen.createType(new Array(7).fill(i32)), i32, [i32, i32], m.block(null, [
      m.local.set(INPUT, this.#rtCall("rt_eval_begin", [get(3), get(4), get(5)])),
      ...this.#dispatch(get(1), get(INPUT), get(2), RES),
      this.#rtCall("rt_result_set", [get(RES)]),
    ], i32));
    m.addFunctionExport("opa_eval", "opa_eval");

    // Slow path (ABI < 1.2): ctx = [input@0, data@4, entrypoint@8, result@12].
    m.addFunction("opa_eval_ctx_new", binaryen.none, i32, [i32], m.block(null, [
      m.local.set(0, this.#rtCall("opa_malloc", [m.i32.const(16)])),
      m.i32.store(0, 4, get(0), m.i32.const(0)),
      m.i32.store(4, 4, get(0), m.i32.const(0)),
      m.i32.store(8, 4, get(0), m.i32.const(0)),
      m.i32.store(12, 4, get(0), m.i32.const(0)),
      get(0),
    ], i32));
    const setter = (name: string, offset: number) => {
      m.addFunction(name, binaryen.createType([i32, i32]), binaryen.none, [],
        m.i32.store(offset, 4, get(0), get(1)));
      m.addFunctionExport(name, name);
    };
    m.addFunctionExport("opa_eval_ctx_new", "opa_eval_ctx_new");
    setter("opa_eval_ctx_set_input", 0);
    setter("opa_eval_ctx_set_data", 4);
    setter("opa_eval_ctx_set_entrypoint", 8);
    const RES1 = 1;
    const SET = 2;
    m.addFunction("eval", binaryen.createType([i32]), i32, [i32, i32, i32], m.block(null, [
      ...this.#dispatch(m.i32.load(8, 4, get(0)), m.i32.load(0, 4, get(0)), m.i32.load(4, 4, get(0)), RES1),
      // The result set as a value: [] or [{"result": v}].
      m.local.set(SET, this.#rtCall("rt_make_array", [m.i32.const(1)])),
      m.if(get(RES1), m.block(null, [
        m.local.set(3, this.#rtCall("rt_make_object", [])),
        m.drop(this.#rtCall("rt_object_insert", [get(3), this.constRef(JSON.stringify("result")), get(RES1)])),
        m.drop(this.#rtCall("rt_array_append", [get(SET), get(3)])),
      ])),
      m.i32.store(12, 4, get(0), get(SET)),
      m.i32.const(0),
    ], i32));
    m.addFunctionExport("eval", "eval");
    m.addFunction("opa_eval_ctx_get_result", binaryen.createType([i32]), i32, [], m.i32.load(12, 4, get(0)));
    m.addFunctionExport("opa_eval_ctx_get_result", "opa_eval_ctx_get_result");
  }

  /** Start function: runtime init, then every constant parsed into its global. */
  #genStart(): void {
    const m = this.#m;
    const enc = new TextEncoder();
    const texts = [...this.#consts].map(([json, g]) => ({ g, bytes: enc.encode(json) }));
    const total = texts.reduce((n, t) => n + t.bytes.length, 0);
    const BUF = 0;
    const body: binaryen.ExpressionRef[] = [
      ...(this.#rt.has("rt_start") ? [this.#rtCall("rt_start", [], binaryen.none)] : []),
      this.#rtCall("rt_init", [], binaryen.none),
      m.local.set(BUF, this.#rtCall("opa_malloc", [m.i32.const(total)])),
    ];
    const all = new Uint8Array(total + 8);
    let off = 0;
    for (const t of texts) { all.set(t.bytes, off); off += t.bytes.length; }
    const view = new DataView(all.buffer);
    for (let i = 0; i < total; i += 4) {
      const v = view.getInt32(i, true);
      if (i + 4 <= total) {
        body.push(m.i32.store(i, 1, m.local.get(BUF, i32), m.i32.const(v)));
      } else {
        for (let j = i; j < total; j++) body.push(m.i32.store8(j, 1, m.local.get(BUF, i32), m.i32.const(all[j]!)));
      }
    }
    off = 0;
    for (const t of texts) {
      body.push(m.global.set(t.g, this.#rtCall("opa_json_parse", [
        m.i32.add(m.local.get(BUF, i32), m.i32.const(off)), m.i32.const(t.bytes.length)])));
      off += t.bytes.length;
    }
    const start = m.addFunction("start", binaryen.none, binaryen.none, [i32], m.block(null, body));
    m.setStart(start);
  }
}

/** Code generation of one IR function body. */
class FuncGen {
  readonly #g: Generator;
  readonly #f: Func;
  readonly #m: binaryen.Module;
  /** wasm labels of the enclosing IR blocks, innermost last */
  readonly #labels: string[] = [];
  #extra = 0;
  readonly #tmp: number;

  constructor(g: Generator, f: Func) {
    this.#g = g;
    this.#f = f;
    this.#m = g.module;
    this.#tmp = this.#newLocal();
  }

  get extraLocals(): number {
    return this.#extra;
  }

  #newLocal(): number {
    return this.#f.locals + this.#extra++;
  }

  body(): binaryen.ExpressionRef {
    return this.#block(this.#f.body);
  }

  #block(stmts: Block): binaryen.ExpressionRef {
    const label = this.#g.newLabel("B");
    this.#labels.push(label);
    const children = stmts.map((s) => this.#stmt(s));
    this.#labels.pop();
    return this.#m.block(label, children);
  }

  #local(l: Local): number {
    if (!Number.isInteger(l) || l < 0 || l >= this.#f.locals) {
      throw new CodegenError(`function ${this.#f.name}: local ${l} out of range (locals: ${this.#f.locals})`);
    }
    return l;
  }

  #get(l: Local): binaryen.ExpressionRef {
    return this.#m.local.get(this.#local(l), i32);
  }

  #set(l: Local, e: binaryen.ExpressionRef): binaryen.ExpressionRef {
    return this.#m.local.set(this.#local(l), e);
  }

  #fail(): string {
    return this.#labels[this.#labels.length - 1]!;
  }

  /** Fails the enclosing block when `cond` (i32) is zero. */
  #require(cond: binaryen.ExpressionRef): binaryen.ExpressionRef {
    return this.#m.br(this.#fail(), this.#m.i32.eqz(cond));
  }

  /** target = e, failing (target untouched) when e is 0. */
  #setDefined(target: Local, e: binaryen.ExpressionRef): binaryen.ExpressionRef {
    const m = this.#m;
    return m.block(null, [
      m.br(this.#fail(), m.i32.eqz(m.local.tee(this.#tmp, e, i32))),
      this.#set(target, m.local.get(this.#tmp, i32)),
    ]);
  }

  #abort(message: string): binaryen.ExpressionRef {
    const m = this.#m;
    return m.block(null, [
      this.#g.callRuntime("rt_abort_value", [this.#g.constRef(JSON.stringify(message))], binaryen.none),
      m.unreachable(),
    ]);
  }

  #stmt(s: Stmt): binaryen.ExpressionRef {
    const m = this.#m;
    const rt = (name: string, args: binaryen.ExpressionRef[], result: binaryen.Type = i32) =>
      this.#g.callRuntime(name, args, result);
    switch (s.op) {
      case "const":
        return this.#set(s.target, this.#g.constRef(s.json));
      case "assign":
        return this.#set(s.target, this.#get(s.source));
      case "assignOnce":
        return m.block(null, [
          this.#require(this.#get(s.source)),
          m.if(m.i32.eqz(this.#get(s.target)),
            this.#set(s.target, this.#get(s.source)),
            m.if(m.i32.eqz(rt("rt_equal", [this.#get(s.target), this.#get(s.source)])), this.#abort(s.message))),
        ]);
      case "reset":
        return this.#set(s.target, m.i32.const(0));
      case "equal":
        return this.#require(rt("rt_equal", [this.#get(s.a), this.#get(s.b)]));
      case "notEqual":
        return this.#require(rt("rt_not_equal", [this.#get(s.a), this.#get(s.b)]));
      case "isDefined":
        return this.#require(this.#get(s.source));
      case "isUndefined":
        return m.br(this.#fail(), this.#get(s.source));
      case "notFalse":
        return this.#require(rt("rt_not_false", [this.#get(s.source)]));
      case "isKind": {
        const code = KIND_CODE[s.kind];
        if (code === undefined) throw new CodegenError(`unknown value kind ${String(s.kind)}`);
        return this.#require(rt("rt_is_kind", [this.#get(s.source), m.i32.const(code)]));
      }
      case "isArrayOfLength":
        return this.#require(rt("rt_is_array_len", [this.#get(s.source), m.i32.const(s.length)]));
      case "dot":
        return this.#setDefined(s.target, rt("rt_dot", [this.#get(s.source), this.#get(s.key)]));
      case "len":
        return this.#setDefined(s.target, rt("rt_len", [this.#get(s.source)]));
      case "call": {
        const callee = this.#g.funcByName(s.func);
        if (!callee) throw new CodegenError(`function ${this.#f.name}: call to unknown function ${s.func}`);
        if (callee.params !== s.args.length) {
          throw new CodegenError(`function ${this.#f.name}: ${s.func} takes ${callee.params} arguments, got ${s.args.length}`);
        }
        return this.#setDefined(s.target, m.call(FUNC_PREFIX + s.func, s.args.map((a) => this.#get(a)), i32));
      }
      case "builtin": {
        const checks = s.args.map((a) => this.#require(this.#get(a)));
        return m.block(null, [
          ...checks,
          this.#setDefined(s.target, this.#g.builtinCall(s.name, s.args.map((a) => this.#get(a)))),
        ]);
      }
      case "makeArray":
        return this.#set(s.target, rt("rt_make_array", [m.i32.const(Math.max(0, Math.min(s.capacity, 1 << 16)))]));
      case "makeObject":
        return this.#set(s.target, rt("rt_make_object", []));
      case "makeSet":
        return this.#set(s.target, rt("rt_make_set", []));
      case "arrayAppend":
        return this.#require(rt("rt_array_append", [this.#get(s.array), this.#get(s.value)]));
      case "setAdd":
        return this.#require(rt("rt_set_add", [this.#get(s.set), this.#get(s.value)]));
      case "objectInsert":
        return this.#require(rt("rt_object_insert", [this.#get(s.object), this.#get(s.key), this.#get(s.value)]));
      case "objectInsertOnce": {
        const tmp = this.#tmp;
        return m.block(null, [
          m.local.set(tmp, rt("rt_object_insert_once", [this.#get(s.object), this.#get(s.key), this.#get(s.value)])),
          this.#require(m.local.get(tmp, i32)),
          m.if(m.i32.eq(m.local.get(tmp, i32), m.i32.const(2)), this.#abort(s.message)),
        ]);
      }
      case "objectMerge": {
        const tmp = this.#tmp;
        return m.block(null, [
          m.local.set(tmp, rt("rt_object_merge", [this.#get(s.a), this.#get(s.b)])),
          this.#require(m.local.get(tmp, i32)),
          m.if(m.i32.eq(m.local.get(tmp, i32), m.i32.const(1)), this.#abort(s.message)),
          this.#set(s.target, m.local.get(tmp, i32)),
        ]);
      }
      case "block":
        return m.block(null, s.blocks.map((b) => this.#block(b)));
      case "scan": {
        const src = this.#newLocal();
        const ctr = this.#newLocal();
        const exit = this.#g.newLabel("X");
        const loop = this.#g.newLabel("L");
        const get = (l: number) => m.local.get(l, i32);
        const body = this.#block(s.body);
        return m.block(null, [
          m.local.set(src, this.#get(s.source)),
          m.br(this.#fail(), m.i32.lt_s(rt("rt_scan_len", [get(src)]), m.i32.const(0))),
          m.local.set(ctr, m.i32.const(0)),
          m.block(exit, [
            m.loop(loop, m.block(null, [
              m.br(exit, m.i32.ge_s(get(ctr), rt("rt_scan_len", [get(src)]))),
              this.#set(s.key, rt("rt_scan_key", [get(src), get(ctr)])),
              this.#set(s.value, rt("rt_scan_value", [get(src), get(ctr)])),
              body,
              m.local.set(ctr, m.i32.add(get(ctr), m.i32.const(1))),
              m.br(loop),
            ])),
          ]),
        ]);
      }
      case "not": {
        const enclosing = this.#fail();
        const label = this.#g.newLabel("N");
        this.#labels.push(label);
        const children = s.body.map((st) => this.#stmt(st));
        this.#labels.pop();
        return m.block(label, [...children, m.br(enclosing)]);
      }
      case "break": {
        const i = this.#labels.length - 1 - s.index;
        if (!Number.isInteger(s.index) || s.index < 0 || i < 0) {
          throw new CodegenError(`function ${this.#f.name}: break ${s.index} leaves more blocks than enclose it`);
        }
        return m.br(this.#labels[i]!);
      }
      default: {
        const op: never = s;
        throw new CodegenError(`unknown IR statement ${JSON.stringify(op)}`);
      }
    }
  }
}
