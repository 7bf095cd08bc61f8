/**
 * Code generation of one IR function body into wasm instructions: IR blocks map one to one onto
 * wasm `block`/`br`/`loop`; values are runtime addresses in i32 locals. The module around the
 * bodies (dispatch, ABI exports, constants) is built in codegen.ts.
 */
import type { Block, Func, Local, Stmt, ValueKind } from "./ir.ts";
import { Bytes, Op } from "./wasm-module.ts";

/** Error in the IR handed to the code generator (a front-end bug, not a user error). */
export class CodegenError extends Error {
  override name = "CodegenError";
}

/** Value kinds as numbered by the runtime (`value.ts`). */
const KIND_CODE: Record<ValueKind, number> = {
  null: 1,
  boolean: 2,
  number: 3,
  string: 4,
  array: 5,
  object: 6,
  set: 7,
};

/** What a function body needs of the module generator (implemented by codegen.ts's Generator). */
export interface FuncGenHost {
  /** Strict builtin errors (see Policy.strictBuiltinErrors). */
  readonly strict: boolean;
  runtimeFunc(name: string, params: number): number;
  constGlobal(json: string): number;
  funcByName(name: string): { ir: Func; index: number } | undefined;
  builtin(name: string, argc: number): { index: number; hostId?: number };
}

/** Instruction bytes of one function body. */
export class Emitter {
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
export class FuncGen {
  readonly e = new Emitter();
  readonly #g: FuncGenHost;
  readonly #f: Func;
  /** Open wasm blocks; `true` for those that are IR blocks (targets of fail and break). */
  readonly #frames: boolean[] = [];
  #extra = 0;
  readonly #tmp: number;

  constructor(g: FuncGenHost, f: Func) {
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
    this.e
      .op(Op.globalGet)
      .u32(this.#g.constGlobal(JSON.stringify(message)))
      .op(Op.call)
      .u32(this.#g.runtimeFunc("rt_abort_value", 1))
      .op(Op.unreachable);
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
          throw new CodegenError(
            `function ${this.#f.name}: ${s.func} takes ${callee.ir.params} arguments, got ${s.args.length}`,
          );
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
          this.#abort(
            `${s.name}: builtin error (strict builtin errors): the arguments are of the wrong type or out of range`,
          );
          this.#close();
          e.op(Op.localGet).u32(this.#tmp);
        }
        this.#setDefinedTop(s.target);
        return;
      }
      case "makeArray":
        e.op(Op.i32Const)
          .s32(Math.max(0, Math.min(s.capacity | 0, 1 << 16)))
          .op(Op.call)
          .u32(this.#g.runtimeFunc("rt_make_array", 1))
          .op(Op.localSet)
          .u32(this.local(s.target));
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
        e.op(Op.localTee)
          .u32(src)
          .op(Op.call)
          .u32(scanLen)
          .op(Op.i32Const)
          .s32(0)
          .op(Op.i32LtS)
          .op(Op.brIf)
          .u32(this.#depth(0));
        e.op(Op.i32Const).s32(0).op(Op.localSet).u32(ctr);
        this.#open(Op.block, false); // exit
        this.#open(Op.loop, false);
        e.op(Op.localGet).u32(ctr).op(Op.localGet).u32(src).op(Op.call).u32(scanLen).op(Op.i32GeS).op(Op.brIf).u32(1);
        e.op(Op.localGet)
          .u32(src)
          .op(Op.localGet)
          .u32(ctr)
          .op(Op.call)
          .u32(this.#g.runtimeFunc("rt_scan_key", 2))
          .op(Op.localSet)
          .u32(this.local(s.key));
        e.op(Op.localGet)
          .u32(src)
          .op(Op.localGet)
          .u32(ctr)
          .op(Op.call)
          .u32(this.#g.runtimeFunc("rt_scan_value", 2))
          .op(Op.localSet)
          .u32(this.local(s.value));
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
      case "abort":
        this.#abort(s.message);
        return;
      default: {
        const op: never = s;
        throw new CodegenError(`unknown IR statement ${JSON.stringify(op)}`);
      }
    }
  }
}
