/**
 * Load-time instrumentation of a policy module for the evaluation deadline (issue #12): a step
 * counter (a mutable i32 global, "fuel") is decremented at every function entry and every loop
 * head; when it reaches zero the module calls the imported host check
 * `arbiter.deadline_check() -> i32`, which throws (unwinding the evaluation) once the deadline has
 * passed and otherwise returns the next fuel allowance. Whatever built the module (Arbiter's
 * compiler or `opa build`), no evaluation can run on past the deadline by more than one fuel
 * allowance of steps, or one host builtin call.
 *
 * Why instrumentation and not a worker or `vm` timeout: measured in `bench/eval-deadline.ts`, it
 * costs a few percent of an uncached Decide and nothing on a cached one, while a worker round
 * trip or a `vm.Script` timeout (a watchdog thread per call) cost more than the evaluation itself.
 *
 * The rewrite: one import is appended after the existing function imports, so every defined
 * function's index moves up by one; `call`, `return_call`, `ref.func`, exports, the start
 * function and element segments are renumbered. The `name` custom section is dropped (its
 * indices would be stale). Instruction immediates are decoded for the MVP, sign extension,
 * saturating truncation, bulk memory, reference types, tail calls and legacy exceptions; a module
 * using anything else (SIMD, threads) is refused with a message naming the opcode.
 */
import { Bytes } from "./compiler-parts.ts";

/** The host import the instrumented module calls: `(import "arbiter" "deadline_check" (func (result i32)))`. */
export const DEADLINE_IMPORT = { module: "arbiter", name: "deadline_check" } as const;

/** Steps (function entries + loop iterations) between two host checks. */
export const DEFAULT_FUEL_INTERVAL = 10_000;

export class WasmInstrumentError extends Error {
  override readonly name = "WasmInstrumentError";
}

class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    pos = 0,
    readonly end = buf.length,
  ) {
    this.pos = pos;
  }

  byte(): number {
    if (this.pos >= this.end) throw new WasmInstrumentError("policy.wasm is truncated");
    return this.buf[this.pos++]!;
  }

  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      if (shift < 32) result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
      shift += 7;
      if (shift > 35) throw new WasmInstrumentError("policy.wasm has a malformed LEB128 integer");
    }
  }

  /** Skips a signed LEB128 of any width (s32, s33 block types, s64). */
  skipLeb(): void {
    for (let i = 0; ; i++) {
      if ((this.byte() & 0x80) === 0) return;
      if (i > 10) throw new WasmInstrumentError("policy.wasm has a malformed LEB128 integer");
    }
  }

  skip(n: number): void {
    if (this.pos + n > this.end) throw new WasmInstrumentError("policy.wasm is truncated");
    this.pos += n;
  }

  slice(from: number): Uint8Array {
    return this.buf.subarray(from, this.pos);
  }
}

/** Module facts gathered in the first pass. */
interface Shape {
  typeCount: number;
  importedFuncs: number;
  importedGlobals: number;
  definedGlobals: number;
}

/** Canonical section order (custom sections excepted), for inserting a missing one. */
const ORDER: Record<number, number> = {
  1: 1,
  2: 2,
  3: 3,
  4: 4,
  5: 5,
  13: 6,
  6: 7,
  7: 8,
  8: 9,
  9: 10,
  12: 11,
  10: 12,
  11: 13,
};

/**
 * Returns `wasm` with the deadline check woven in. Throws `WasmInstrumentError` for a module it
 * cannot rewrite (not wasm, truncated, an opcode it does not know).
 */
export function instrumentDeadline(wasm: Uint8Array, fuelInterval = DEFAULT_FUEL_INTERVAL): Uint8Array<ArrayBuffer> {
  if (wasm.length < 8 || wasm[0] !== 0 || wasm[1] !== 0x61 || wasm[2] !== 0x73 || wasm[3] !== 0x6d || wasm[4] !== 1) {
    throw new WasmInstrumentError("policy.wasm is not a WebAssembly version 1 module");
  }
  const sections: { id: number; body: Uint8Array; name?: string }[] = [];
  const r = new Reader(wasm, 8);
  while (r.pos < wasm.length) {
    const id = r.byte();
    const size = r.u32();
    const start = r.pos;
    r.skip(size);
    const body = wasm.subarray(start, start + size);
    let name: string | undefined;
    if (id === 0) {
      const nr = new Reader(body);
      const n = nr.u32();
      nr.skip(n);
      name = new TextDecoder().decode(body.subarray(nr.pos - n, nr.pos));
    }
    sections.push({ id, body, name });
  }
  const shape: Shape = { typeCount: 0, importedFuncs: 0, importedGlobals: 0, definedGlobals: 0 };
  for (const s of sections) {
    if (s.id === 1) shape.typeCount = new Reader(s.body).u32();
    if (s.id === 2) countImports(s.body, shape);
    if (s.id === 6) shape.definedGlobals = new Reader(s.body).u32();
  }
  const checkType = shape.typeCount;
  const checkFunc = shape.importedFuncs;
  const fuelGlobal = shape.importedGlobals + shape.definedGlobals;
  const remap = (f: number): number => (f >= checkFunc ? f + 1 : f);
  // global.get $fuel; i32.const 1; i32.sub; global.set $fuel; global.get $fuel; i32.eqz;
  // if; call $check; global.set $fuel; end
  const probe = new Bytes()
    .byte(0x23)
    .u32(fuelGlobal)
    .byte(0x41)
    .s32(1)
    .byte(0x6b)
    .byte(0x24)
    .u32(fuelGlobal)
    .byte(0x23)
    .u32(fuelGlobal)
    .byte(0x45)
    .byte(0x04)
    .byte(0x40)
    .byte(0x10)
    .u32(checkFunc)
    .byte(0x24)
    .u32(fuelGlobal)
    .byte(0x0b)
    .view()
    .slice();

  const replaced = new Map<number, Uint8Array>();
  const present = new Set(sections.map((s) => s.id));
  for (const s of sections) {
    switch (s.id) {
      case 1:
        replaced.set(1, appendToVector(s.body, new Uint8Array([0x60, 0x00, 0x01, 0x7f])));
        break;
      case 2:
        replaced.set(2, appendToVector(s.body, importEntry(checkType)));
        break;
      case 6:
        replaced.set(6, appendToVector(s.body, fuelGlobalEntry(fuelInterval)));
        break;
      case 7:
        replaced.set(7, rewriteExports(s.body, remap));
        break;
      case 8:
        replaced.set(
          8,
          new Bytes()
            .u32(remap(new Reader(s.body).u32()))
            .view()
            .slice(),
        );
        break;
      case 9:
        replaced.set(9, rewriteElements(s.body, remap));
        break;
      case 10:
        replaced.set(10, rewriteCode(s.body, remap, probe));
        break;
    }
  }
  const missing = new Map<number, Uint8Array>();
  if (!present.has(1)) missing.set(1, new Bytes().u32(1).byte(0x60).byte(0).byte(1).byte(0x7f).view().slice());
  if (!present.has(2)) missing.set(2, new Bytes().u32(1).bytes(importEntry(checkType)).view().slice());
  if (!present.has(6)) missing.set(6, new Bytes().u32(1).bytes(fuelGlobalEntry(fuelInterval)).view().slice());

  const out = new Bytes().bytes(wasm.subarray(0, 8));
  const emit = (id: number, body: Uint8Array): void => {
    out.byte(id).u32(body.length).bytes(body);
  };
  const flushMissingBefore = (order: number): void => {
    for (const [id, body] of [...missing].sort(([a], [b]) => ORDER[a]! - ORDER[b]!)) {
      if (ORDER[id]! < order) {
        emit(id, body);
        missing.delete(id);
      }
    }
  };
  for (const s of sections) {
    if (s.id === 0) {
      if (s.name !== "name") emit(0, s.body);
      continue;
    }
    flushMissingBefore(ORDER[s.id] ?? 99);
    emit(s.id, replaced.get(s.id) ?? s.body);
  }
  flushMissingBefore(100);
  return new Uint8Array(out.view());
}

function importEntry(typeIndex: number): Uint8Array {
  return new Bytes().name(DEADLINE_IMPORT.module).name(DEADLINE_IMPORT.name).byte(0x00).u32(typeIndex).view().slice();
}

function fuelGlobalEntry(fuel: number): Uint8Array {
  return new Bytes().byte(0x7f).byte(0x01).byte(0x41).s32(fuel).byte(0x0b).view().slice();
}

/** A vector section with one more entry: new count, the old entries as they were, `entry`. */
function appendToVector(body: Uint8Array, entry: Uint8Array): Uint8Array {
  const r = new Reader(body);
  const count = r.u32();
  return new Bytes()
    .u32(count + 1)
    .bytes(body.subarray(r.pos))
    .bytes(entry)
    .view()
    .slice();
}

function countImports(body: Uint8Array, shape: Shape): void {
  const r = new Reader(body);
  for (let n = r.u32(); n > 0; n--) {
    r.skip(r.u32());
    r.skip(r.u32());
    const kind = r.byte();
    if (kind === 0) {
      r.u32();
      shape.importedFuncs++;
    } else if (kind === 1) {
      r.byte();
      skipLimits(r);
    } else if (kind === 2) {
      skipLimits(r);
    } else if (kind === 3) {
      r.byte();
      r.byte();
      shape.importedGlobals++;
    } else if (kind === 4) {
      r.byte();
      r.u32();
    } else {
      throw new WasmInstrumentError(`policy.wasm has an import of unknown kind ${kind}`);
    }
  }
}

function skipLimits(r: Reader): void {
  const flags = r.byte();
  r.u32();
  if (flags & 1) r.u32();
}

function rewriteExports(body: Uint8Array, remap: (f: number) => number): Uint8Array {
  const r = new Reader(body);
  const out = new Bytes();
  const n = r.u32();
  out.u32(n);
  for (let i = 0; i < n; i++) {
    const len = r.u32();
    out.u32(len).bytes(body.subarray(r.pos, r.pos + len));
    r.skip(len);
    const kind = r.byte();
    const index = r.u32();
    out.byte(kind).u32(kind === 0 ? remap(index) : index);
  }
  return out.view().slice();
}

function rewriteElements(body: Uint8Array, remap: (f: number) => number): Uint8Array {
  const r = new Reader(body);
  const out = new Bytes();
  const n = r.u32();
  out.u32(n);
  for (let i = 0; i < n; i++) {
    const flags = r.u32();
    out.u32(flags);
    if (flags > 7) throw new WasmInstrumentError(`policy.wasm has an element segment with unknown flags ${flags}`);
    const passiveOrDeclarative = (flags & 1) !== 0;
    const explicitTable = (flags & 2) !== 0;
    const usesExpressions = (flags & 4) !== 0;
    if (!passiveOrDeclarative && explicitTable) out.u32(r.u32());
    if (!passiveOrDeclarative) rewriteExpr(r, out, remap, undefined);
    if (passiveOrDeclarative || explicitTable) out.byte(r.byte()); // elemkind or reftype
    const count = r.u32();
    out.u32(count);
    for (let k = 0; k < count; k++) {
      if (usesExpressions) rewriteExpr(r, out, remap, undefined);
      else out.u32(remap(r.u32()));
    }
  }
  return out.view().slice();
}

function rewriteCode(body: Uint8Array, remap: (f: number) => number, probe: Uint8Array): Uint8Array {
  const r = new Reader(body);
  const out = new Bytes();
  const n = r.u32();
  out.u32(n);
  for (let i = 0; i < n; i++) {
    const size = r.u32();
    const end = r.pos + size;
    const fr = new Reader(body, r.pos, end);
    const fn = new Bytes();
    const localStart = fr.pos;
    for (let groups = fr.u32(); groups > 0; groups--) {
      fr.u32();
      fr.byte();
    }
    fn.bytes(fr.slice(localStart));
    fn.bytes(probe);
    rewriteInstructions(fr, fn, remap, probe, end);
    out.u32(fn.length).bytes(fn.view());
    r.pos = end;
  }
  return out.view().slice();
}

/** A constant expression (offsets, global initialisers, element expressions) up to its `end`. */
function rewriteExpr(r: Reader, out: Bytes, remap: (f: number) => number, probe: Uint8Array | undefined): void {
  let depth = 0;
  for (;;) {
    const op = r.buf[r.pos]!;
    if (op === 0x02 || op === 0x03 || op === 0x04) depth++;
    rewriteOne(r, out, remap, probe);
    if (op === 0x0b) {
      if (depth === 0) return;
      depth--;
    }
  }
}

function rewriteInstructions(
  r: Reader,
  out: Bytes,
  remap: (f: number) => number,
  probe: Uint8Array,
  end: number,
): void {
  while (r.pos < end) rewriteOne(r, out, remap, probe);
}

/** Copies one instruction, renumbering function references and probing loop heads. */
function rewriteOne(r: Reader, out: Bytes, remap: (f: number) => number, probe: Uint8Array | undefined): void {
  const start = r.pos;
  const op = r.byte();
  switch (op) {
    case 0x10: // call
    case 0x12: // return_call
    case 0xd2: // ref.func
      out.byte(op).u32(remap(r.u32()));
      return;
    case 0x03: // loop: probe at the head, so every iteration pays one step
      r.skipLeb();
      out.bytes(r.slice(start));
      if (probe) out.bytes(probe);
      return;
    default:
      skipImmediates(r, op);
      out.bytes(r.slice(start));
  }
}

function skipImmediates(r: Reader, op: number): void {
  if (
    (op >= 0x45 && op <= 0xc4) ||
    op === 0x00 ||
    op === 0x01 ||
    op === 0x05 ||
    op === 0x0b ||
    op === 0x0f ||
    op === 0x1a ||
    op === 0x1b ||
    op === 0xd1 ||
    op === 0x19
  )
    return;
  switch (op) {
    case 0x02:
    case 0x04:
    case 0x06: // block, if, try: block type
      r.skipLeb();
      return;
    case 0x07:
    case 0x08:
    case 0x09:
    case 0x18: // catch, throw, rethrow, delegate
    case 0x0c:
    case 0x0d: // br, br_if
    case 0x20:
    case 0x21:
    case 0x22:
    case 0x23:
    case 0x24: // locals, globals
    case 0x25:
    case 0x26: // table.get/set
    case 0x3f:
    case 0x40: // memory.size/grow
      r.u32();
      return;
    case 0x0e: {
      // br_table
      for (let n = r.u32(); n > 0; n--) r.u32();
      r.u32();
      return;
    }
    case 0x11:
    case 0x13: // call_indirect, return_call_indirect
      r.u32();
      r.u32();
      return;
    case 0x1c: // select t*
      r.skip(r.u32());
      return;
    case 0x41:
    case 0x42:
      r.skipLeb();
      return;
    case 0x43:
      r.skip(4);
      return;
    case 0x44:
      r.skip(8);
      return;
    case 0xd0:
      r.byte();
      return;
    case 0xfc: {
      const sub = r.u32();
      if (sub <= 7) return;
      if (sub === 8 || sub === 10 || sub === 12 || sub === 14) {
        r.u32();
        r.u32();
        return;
      }
      if (sub <= 17) {
        r.u32();
        return;
      }
      throw new WasmInstrumentError(
        `policy.wasm uses opcode 0xfc ${sub}, which the deadline instrumentation does not know`,
      );
    }
  }
  if (op >= 0x28 && op <= 0x3e) {
    // loads and stores: memarg (align, with bit 6 a memory index, offset)
    const align = r.u32();
    if (align & 0x40) r.u32();
    r.u32();
    return;
  }
  throw new WasmInstrumentError(
    `policy.wasm uses opcode 0x${op.toString(16).padStart(2, "0")}, which the deadline instrumentation does not know`,
  );
}
