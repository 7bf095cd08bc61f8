/**
 * Just enough of the WebAssembly binary format to extend the prebuilt runtime module: read its
 * sections, append types, functions, globals and code, replace the exports and the start
 * function, and write it back. No dependency on binaryen, whose 12 MB loader costs seconds at
 * process start-up (tens of seconds when tsx transforms it).
 */

export const I32 = 0x7f;

/** Opcodes used by the code generator. */
export const Op = {
  unreachable: 0x00,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  return: 0x0f,
  call: 0x10,
  drop: 0x1a,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  globalGet: 0x23,
  globalSet: 0x24,
  i32Load: 0x28,
  i32Store: 0x36,
  i32Const: 0x41,
  i32Eqz: 0x45,
  i32Eq: 0x46,
  i32LtS: 0x48,
  i32GeS: 0x4e,
  i32Add: 0x6a,
  void: 0x40,
} as const;

/** A growable byte buffer with LEB128 helpers. */
export class Bytes {
  #buf = new Uint8Array(256);
  #len = 0;

  get length(): number {
    return this.#len;
  }

  #ensure(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.#len + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.#buf.subarray(0, this.#len));
    this.#buf = nb;
  }

  byte(b: number): this {
    this.#ensure(1);
    this.#buf[this.#len++] = b;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.#ensure(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  u32(v: number): this {
    let x = v >>> 0;
    do {
      let b = x & 0x7f;
      x >>>= 7;
      if (x !== 0) b |= 0x80;
      this.byte(b);
    } while (x !== 0);
    return this;
  }

  s32(v: number): this {
    let x = v | 0;
    for (;;) {
      const b = x & 0x7f;
      x >>= 7;
      if ((x === 0 && (b & 0x40) === 0) || (x === -1 && (b & 0x40) !== 0)) {
        this.byte(b);
        return this;
      }
      this.byte(b | 0x80);
    }
  }

  name(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.u32(b.length).bytes(b);
  }

  /** Appends `inner` prefixed with its length. */
  sized(inner: Bytes): this {
    return this.u32(inner.length).bytes(inner.view());
  }

  view(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }
}

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const b = this.buf[this.pos++]!;
      result |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result >>> 0;
      shift += 7;
    }
  }

  name(): string {
    const n = this.u32();
    const s = new TextDecoder().decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
}

export interface FuncType {
  readonly params: number;
  readonly results: number;
}

/** The runtime module, parsed once per process; `extend` never mutates it. */
export class RuntimeModule {
  readonly #sections = new Map<number, Uint8Array>();
  readonly #order: number[] = [];
  /** Raw entries of the type section (each one complete) and their shapes. */
  readonly types: Uint8Array[] = [];
  readonly typeShapes: FuncType[] = [];
  readonly importedFuncs: string[] = [];
  readonly importedGlobals: number;
  /** Type index per defined function. */
  readonly funcTypes: number[] = [];
  readonly globalCount: number;
  readonly exports = new Map<string, { kind: number; index: number }>();
  readonly codeCount: number;
  readonly codeBody: Uint8Array;

  constructor(bytes: Uint8Array) {
    if (bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
      throw new Error("runtime.wasm is not a wasm module");
    }
    const r = new Reader(bytes);
    r.pos = 8;
    while (r.pos < bytes.length) {
      const id = r.buf[r.pos++]!;
      const size = r.u32();
      if (id !== 0) {
        this.#sections.set(id, bytes.subarray(r.pos, r.pos + size));
        this.#order.push(id);
      }
      r.pos += size;
    }
    // types
    const t = this.#reader(1);
    for (let n = t?.u32() ?? 0; n > 0; n--) {
      const start = t!.pos;
      if (t!.buf[t!.pos++] !== 0x60) throw new Error("runtime.wasm: unsupported type form");
      const params = t!.u32();
      t!.pos += params;
      const results = t!.u32();
      t!.pos += results;
      this.types.push(t!.buf.subarray(start, t!.pos));
      this.typeShapes.push({ params, results });
    }
    // imports
    let importedGlobals = 0;
    const im = this.#reader(2);
    for (let n = im?.u32() ?? 0; n > 0; n--) {
      im!.name();
      const field = im!.name();
      const kind = im!.buf[im!.pos++]!;
      if (kind === 0) {
        this.funcTypes.push(im!.u32());
        this.importedFuncs.push(field);
      } else if (kind === 2) {
        const flags = im!.buf[im!.pos++]!;
        im!.u32();
        if (flags & 1) im!.u32();
      } else if (kind === 3) {
        im!.pos += 2;
        importedGlobals++;
      } else {
        throw new Error(`runtime.wasm: unsupported import kind ${kind}`);
      }
    }
    this.importedGlobals = importedGlobals;
    const f = this.#reader(3);
    for (let n = f?.u32() ?? 0; n > 0; n--) this.funcTypes.push(f!.u32());
    const g = this.#reader(6);
    this.globalCount = importedGlobals + (g?.u32() ?? 0);
    const e = this.#reader(7);
    for (let n = e?.u32() ?? 0; n > 0; n--) {
      const name = e!.name();
      const kind = e!.buf[e!.pos++]!;
      this.exports.set(name, { kind, index: e!.u32() });
    }
    const c = this.#reader(10);
    this.codeCount = c?.u32() ?? 0;
    this.codeBody = c ? c.buf.subarray(c.pos) : new Uint8Array();
    if (this.#sections.has(8)) throw new Error("runtime.wasm: unexpected start section");
  }

  #reader(id: number): Reader | undefined {
    const s = this.#sections.get(id);
    return s ? new Reader(s) : undefined;
  }

  section(id: number): Uint8Array | undefined {
    return this.#sections.get(id);
  }

  get order(): readonly number[] {
    return this.#order;
  }

  /** Index of an exported runtime function. */
  func(name: string): number | undefined {
    const e = this.exports.get(name);
    return e && e.kind === 0 ? e.index : undefined;
  }

  importedFunc(name: string): number | undefined {
    const i = this.importedFuncs.indexOf(name);
    return i < 0 ? undefined : i;
  }

  funcType(index: number): FuncType {
    return this.typeShapes[this.funcTypes[index]!]!;
  }
}

export interface NewFunction {
  readonly params: number;
  readonly results: number;
  readonly locals: number;
  /** Expression bytes without the final `end`. */
  readonly code: Uint8Array;
}

export interface Extension {
  readonly functions: readonly NewFunction[];
  /** Number of new mutable i32 globals (initialized to 0). */
  readonly globals: number;
  /** Exports of the output module; runtime exports not listed here are dropped. */
  readonly exports: ReadonlyMap<string, { kind: number; index: number }>;
  readonly start: number;
}

/** Writes the runtime extended with new functions, globals, exports and a start function. */
export function writeModule(rt: RuntimeModule, ext: Extension): Uint8Array<ArrayBuffer> {
  const typeIndex = new Map<string, number>();
  const newTypes: Uint8Array[] = [];
  rt.types.forEach((t, i) => typeIndex.set(Array.from(t).join(","), i));
  const typeOf = (params: number, results: number): number => {
    const b = new Bytes().byte(0x60).u32(params);
    for (let i = 0; i < params; i++) b.byte(I32);
    b.u32(results);
    for (let i = 0; i < results; i++) b.byte(I32);
    const key = Array.from(b.view()).join(",");
    let idx = typeIndex.get(key);
    if (idx === undefined) {
      idx = rt.types.length + newTypes.length;
      typeIndex.set(key, idx);
      newTypes.push(b.view().slice());
    }
    return idx;
  };
  const fnTypes = ext.functions.map((f) => typeOf(f.params, f.results));

  const out = new Bytes().bytes(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  const section = (id: number, body: Bytes) => out.byte(id).sized(body);
  const order = [...rt.order];
  if (!order.includes(8)) {
    // the start section goes right after exports
    const at = order.indexOf(7) + 1 || order.findIndex((id) => id === 9 || id === 12 || id === 10);
    order.splice(at, 0, 8);
  }
  for (const id of order) {
    const raw = rt.section(id);
    switch (id) {
      case 1: {
        const b = new Bytes().u32(rt.types.length + newTypes.length);
        for (const t of rt.types) b.bytes(t);
        for (const t of newTypes) b.bytes(t);
        section(1, b);
        break;
      }
      case 3: {
        const b = new Bytes().u32(rt.funcTypes.length - rt.importedFuncs.length + fnTypes.length);
        for (const t of rt.funcTypes.slice(rt.importedFuncs.length)) b.u32(t);
        for (const t of fnTypes) b.u32(t);
        section(3, b);
        break;
      }
      case 6: {
        const r = new Reader(raw!);
        const n = r.u32();
        const b = new Bytes().u32(n + ext.globals).bytes(raw!.subarray(r.pos));
        for (let i = 0; i < ext.globals; i++) b.byte(I32).byte(1).byte(Op.i32Const).byte(0).byte(Op.end);
        section(6, b);
        break;
      }
      case 7: {
        const b = new Bytes().u32(ext.exports.size);
        for (const [name, e] of ext.exports) b.name(name).byte(e.kind).u32(e.index);
        section(7, b);
        break;
      }
      case 8:
        section(8, new Bytes().u32(ext.start));
        break;
      case 10: {
        const b = new Bytes().u32(rt.codeCount + ext.functions.length).bytes(rt.codeBody);
        for (const f of ext.functions) {
          const body = new Bytes();
          if (f.locals > 0) body.u32(1).u32(f.locals).byte(I32);
          else body.u32(0);
          body.bytes(f.code).byte(Op.end);
          b.sized(body);
        }
        section(10, b);
        break;
      }
      default:
        section(id, new Bytes().bytes(raw!));
    }
  }
  return out.view().slice();
}
