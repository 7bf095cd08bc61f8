/**
 * Specialized binary protobuf codecs for the messages of the gRPC hot path.
 *
 * protobuf-es v2 decodes and encodes by walking closures per field, creates every message through
 * `create()`, allocates a `[fieldNo, wireType]` tuple per tag and converts `google.protobuf.Struct`
 * fields through the full Struct/Value/ListValue message form before turning them into JSON. That
 * costs several microseconds per Decide. `codecFor(schema)` instead generates one JavaScript
 * function per message type (with `new Function`, as protobufjs does): a `switch` on the field
 * number with constant property names, object literals of a fixed shape, and Struct fields read
 * straight into `JsonObject` and written straight from it.
 *
 * Semantics are protobuf-es's, on purpose and quirk for quirk, so that swapping codecs changes no
 * observable behaviour (test/transport/codec.test.ts checks this differentially):
 * - Unknown fields are kept in `$unknown` (`{ no, wireType, data }`, `data` a view of the input)
 *   and written back after the known fields, like protobuf-es. Unknown fields inside a Struct,
 *   Value or ListValue are dropped, as protobuf-es drops them when it converts to `JsonObject`.
 * - For a known field the wire type is not checked (protobuf-es reads the field's own type);
 *   repeated numeric fields accept packed and unpacked records.
 * - Last one wins for singular scalars; a singular message or Struct field that occurs twice is
 *   merged; Value kinds merge as the `kind` oneof does.
 * - Bounds are checked against the whole input, not against the enclosing length prefix, as in
 *   protobuf-es; a length prefix never allocates anything before it is checked against the input.
 * - Nesting is limited to {@link MAX_DEPTH} messages (protobuf-es's default recursion limit,
 *   counted the same way: every message, Struct, Value and ListValue is one level).
 * - Strings are validated as UTF-8 where protobuf-es validates them (every proto3 string).
 *
 * Errors: whenever the fast decoder or encoder meets anything it does not expect (malformed input,
 * a value of the wrong JS type, a foreign `$typeName`), the public codec re-runs protobuf-es's
 * `fromBinary` / `toBinary` on the same input, so the error thrown (or, for odd but accepted
 * values, the result) is protobuf-es's own, message included. The fast path is for valid input.
 */
import {
  ScalarType,
  fromBinary,
  toBinary,
  type DescField,
  type DescMessage,
  type MessageShape,
} from "@bufbuild/protobuf";

export interface MessageCodec<M> {
  /**
   * Parses `bytes` (any Uint8Array view, e.g. a Buffer slice); the result equals protobuf-es
   * `fromBinary`'s. Throws protobuf-es's own error for input protobuf-es rejects. `$unknown`
   * entries, when present, are views of `bytes`.
   */
  decode(bytes: Uint8Array): M;
  /**
   * Serializes `msg`: the same bytes as protobuf-es `toBinary`. The result may be a view into a
   * shared 16 KiB slab (like `Buffer.allocUnsafe`'s pool): use its `byteOffset`/`byteLength`,
   * never its whole `.buffer`.
   */
  encode(msg: M): Uint8Array;
  /**
   * `encode` preceded by the 5-byte gRPC length prefix (flag 0, uint32 big-endian length), in
   * one buffer: the same bytes as `encodeFrame(toBinary(schema, msg))` without the second copy.
   */
  encodeFramed(msg: M): Uint8Array;
}

/** Message nesting limit, protobuf-es's default `recursionLimit`. */
export const MAX_DEPTH = 100;

const STRUCT = "google.protobuf.Struct";
const SUPPORTED_SCALARS = new Set<ScalarType>([
  ScalarType.STRING,
  ScalarType.BOOL,
  ScalarType.UINT32,
  ScalarType.INT32,
  ScalarType.DOUBLE,
]);
// DescField.presence values (protobuf-es FeatureSet_FieldPresence).
const EXPLICIT = 1;
const IMPLICIT = 2;

/** The generated codec without fallback: throws its own (less precise) errors. */
export interface RawCodec {
  decode(bytes: Uint8Array): unknown;
  /**
   * Returns undefined when the message holds something only protobuf-es can judge. With
   * `framed`, the bytes are preceded by the 5-byte gRPC message prefix.
   */
  encode(msg: unknown, framed?: boolean): Uint8Array | undefined;
}

const cache = new WeakMap<DescMessage, MessageCodec<never>>();

/**
 * The codec for `schema`, compiled on first use and cached per schema. Schemas with a field kind
 * this compiler does not handle (maps other than Struct, oneofs, 64-bit integers, bytes, floats,
 * closed enums, groups, wrappers, proto2 defaults) get protobuf-es's own `fromBinary`/`toBinary`.
 */
export function codecFor<D extends DescMessage>(schema: D): MessageCodec<MessageShape<D>> {
  const hit = cache.get(schema);
  if (hit !== undefined) return hit as MessageCodec<MessageShape<D>>;
  const raw = compileCodec(schema);
  let codec: MessageCodec<MessageShape<D>>;
  if (raw === undefined) {
    codec = {
      decode: (bytes) => fromBinary(schema, bytes),
      encode: (msg) => toBinary(schema, msg),
      encodeFramed: (msg) => frame(toBinary(schema, msg)),
    };
  } else {
    codec = {
      decode(bytes) {
        try {
          return raw.decode(bytes) as MessageShape<D>;
        } catch {
          // Malformed input: protobuf-es produces the canonical error (and, should the fast
          // decoder ever be stricter than protobuf-es, the canonical result).
          return fromBinary(schema, bytes);
        }
      },
      encode(msg) {
        return raw.encode(msg) ?? toBinary(schema, msg);
      },
      encodeFramed(msg) {
        return raw.encode(msg, true) ?? frame(toBinary(schema, msg));
      },
    };
  }
  cache.set(schema, codec as MessageCodec<never>);
  return codec;
}

function frame(message: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** Why `schema` cannot be compiled, or undefined when it can. */
export function unsupportedReason(schema: DescMessage): string | undefined {
  if (!LITTLE_ENDIAN) return "big-endian platform";
  // Long-standing but undocumented Buffer methods the generated code calls directly.
  const proto = Buffer.prototype as unknown as Record<string, unknown>;
  if (typeof proto.latin1Slice !== "function" || typeof proto.utf8Write !== "function") return "Buffer lacks latin1Slice/utf8Write";
  const seen = new Set<DescMessage>();
  const visit = (d: DescMessage): string | undefined => {
    if (seen.has(d)) return undefined;
    seen.add(d);
    if (d.typeName.startsWith("google.protobuf.")) return `${d.typeName} as a message`;
    if (d.file.edition !== 999 /* EDITION_PROTO3 */) return `${d.typeName} is not proto3`;
    for (const f of d.fields) {
      const why = fieldReason(f);
      if (why !== undefined) return `${d.typeName}.${f.name}: ${why}`;
      if ((f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) && !isStruct(f)) {
        const inner = visit(f.message!);
        if (inner !== undefined) return inner;
      }
    }
    return undefined;
  };
  return visit(schema);
}

function isStruct(f: DescField): boolean {
  return f.fieldKind === "message" && f.message.typeName === STRUCT;
}

function fieldReason(f: DescField): string | undefined {
  if (f.oneof !== undefined) return "oneof";
  if (f.presence !== IMPLICIT && f.presence !== EXPLICIT) return "legacy required";
  switch (f.fieldKind) {
    case "scalar":
      return SUPPORTED_SCALARS.has(f.scalar) ? undefined : `scalar type ${ScalarType[f.scalar]}`;
    case "enum":
      return f.enum.open ? undefined : "closed enum";
    case "message":
      if (f.delimitedEncoding) return "delimited encoding";
      if (f.message.typeName.startsWith("google.protobuf.") && f.message.typeName !== STRUCT) return f.message.typeName;
      return undefined;
    case "list":
      if (f.listKind === "scalar") return SUPPORTED_SCALARS.has(f.scalar) ? undefined : `repeated ${ScalarType[f.scalar]}`;
      if (f.listKind === "enum") return f.enum.open ? undefined : "repeated closed enum";
      if (f.delimitedEncoding) return "delimited encoding";
      return f.message.typeName.startsWith("google.protobuf.") ? `repeated ${f.message.typeName}` : undefined;
    case "map":
      return "map";
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

/**
 * Compiles the codec for `schema` without caching and without the protobuf-es fallback, or
 * returns undefined when the schema is unsupported. Exported for the differential tests, which
 * need to see whether the generated decoder itself throws; servers use {@link codecFor}.
 */
export function compileCodec(schema: DescMessage): RawCodec | undefined {
  if (unsupportedReason(schema) !== undefined) return undefined;
  const src = generate(schema);
  const factory = new Function("TextDecoder", "Buffer", src) as (t: typeof TextDecoder, b: typeof Buffer) => RawCodec;
  return factory(TextDecoder, Buffer);
}

// ---- code generation -------------------------------------------------------------------------

function prop(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`;
}

/** Varint bytes of a tag, as a list of writes. */
function tagBytes(no: number, wt: number): number[] {
  let v = ((no << 3) | wt) >>> 0;
  const out: number[] = [];
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return out;
}

function writeTag(no: number, wt: number): string {
  return tagBytes(no, wt).map((b) => `w1(${b});`).join(" ");
}

const WT_VARINT = 0;
const WT_BIT64 = 1;
const WT_LEN = 2;

function scalarWireType(t: ScalarType): number {
  return t === ScalarType.STRING ? WT_LEN : t === ScalarType.DOUBLE ? WT_BIT64 : WT_VARINT;
}

function generate(root: DescMessage): string {
  const order: DescMessage[] = [];
  const ids = new Map<DescMessage, number>();
  const collect = (d: DescMessage): void => {
    if (ids.has(d)) return;
    ids.set(d, order.length);
    order.push(d);
    for (const f of d.fields) {
      if (f.fieldKind === "message" && !isStruct(f)) collect(f.message);
      if (f.fieldKind === "list" && f.listKind === "message") collect(f.message);
    }
  };
  collect(root);
  const parts: string[] = [RUNTIME];
  for (const d of order) parts.push(genDecoder(d, ids), genEncoder(d, ids));
  parts.push(`
return {
  decode(bytes) {
    buf = bytes; pos = 0; len = bytes.length;
    try { return D${ids.get(root)}(len, 0, undefined); } finally { buf = EMPTY; }
  },
  encode(m, framed) {
    // A getter on the message could call encode again mid-write; that inner call goes to
    // protobuf-es instead of sharing the writer state.
    if (busy) return undefined;
    if (out.length - obase < ${SLAB_MIN_FREE}) newSlab();
    opos = framed ? obase + 5 : obase;
    busy = true;
    try { E${ids.get(root)}(m); } catch (e) { busy = false; opos = obase; return undefined; }
    busy = false;
    if (framed) {
      // gRPC length-prefixed message: uncompressed flag, then the length as uint32 big-endian.
      const l = opos - obase - 5;
      out[obase] = 0; out[obase + 1] = l >>> 24; out[obase + 2] = (l >>> 16) & 0xff; out[obase + 3] = (l >>> 8) & 0xff; out[obase + 4] = l & 0xff;
    }
    // The result is a view of the slab: no copy, and no fresh Uint8Array (over 64 bytes V8 gives
    // one an off-heap backing store, ~300 ns). Like Node's Buffer pool, a slab lives as long as
    // any result cut from it.
    const r = new Uint8Array(out.buffer, out.byteOffset + obase, opos - obase);
    obase = (opos + 7) & ~7;
    if (out.length > ${SLAB_BYTES}) newSlab();
    return r;
  },
};`);
  return parts.join("\n");
}

/** Entries of the Struct key cache (a power of two). */
const KEY_CACHE = 1024;
/** Encode slab size; a message that needs more gets its own larger buffer. */
const SLAB_BYTES = 16 * 1024;
/** Below this much room left, a new slab is started before encoding. */
const SLAB_MIN_FREE = 1024;

function strictStr(f: DescField): string {
  // Every proto3 string validates UTF-8; the lax path exists for completeness.
  return (f as { utf8Validation?: boolean }).utf8Validation === false ? "strLax()" : "str()";
}

function readScalarExpr(t: ScalarType, f: DescField): string {
  switch (t) {
    case ScalarType.STRING:
      return strictStr(f);
    case ScalarType.BOOL:
      return "bool()";
    case ScalarType.UINT32:
      return "u32()";
    case ScalarType.INT32:
      return "(u32() | 0)";
    case ScalarType.DOUBLE:
      return "dbl()";
    default:
      throw new Error(`unsupported scalar ${t}`);
  }
}

function zeroLiteral(f: DescField): string | undefined {
  switch (f.fieldKind) {
    case "scalar":
      if (f.presence === EXPLICIT) return undefined;
      return f.scalar === ScalarType.STRING ? `""` : f.scalar === ScalarType.BOOL ? "false" : "0";
    case "enum":
      return f.presence === EXPLICIT ? undefined : String(f.enum.values[0]!.number);
    case "list":
      return "[]";
    default:
      return undefined;
  }
}

function genDecoder(d: DescMessage, ids: Map<DescMessage, number>): string {
  const id = ids.get(d)!;
  const init = [`$typeName: ${JSON.stringify(d.typeName)}`];
  for (const f of d.fields) {
    const z = zeroLiteral(f);
    if (z !== undefined) init.push(`${JSON.stringify(f.localName)}: ${z}`);
  }
  const cases: string[] = [];
  for (const f of d.fields) {
    const p = prop(f.localName);
    let body: string;
    switch (f.fieldKind) {
      case "scalar":
        body = `m${p} = ${readScalarExpr(f.scalar, f)};`;
        break;
      case "enum":
        body = `m${p} = u32() | 0;`;
        break;
      case "message":
        body = isStruct(f)
          ? `{ const l = u32(); m${p} = S(pos + l, depth, m${p}); }`
          : `{ const l = u32(); m${p} = D${ids.get(f.message)}(pos + l, depth, m${p}); }`;
        break;
      case "list":
        if (f.listKind === "message") {
          body = `{ const l = u32(); m${p}.push(D${ids.get(f.message)}(pos + l, depth, undefined)); }`;
        } else if (f.listKind === "scalar" && f.scalar === ScalarType.STRING) {
          body = `m${p}.push(${strictStr(f)});`;
        } else {
          const rd = f.listKind === "enum" ? "(u32() | 0)" : readScalarExpr(f.scalar, f);
          body = `{ const a = m${p}; if ((t & 7) === 2) { const e = u32() + pos; while (pos < e) a.push(${rd}); } else a.push(${rd}); }`;
        }
        break;
      default:
        throw new Error("unreachable");
    }
    cases.push(`      case ${f.number}: ${body} break;`);
  }
  return `
function D${id}(end, depth, m) {
  if (++depth > ${MAX_DEPTH}) throw new Error(${JSON.stringify(`cannot decode message ${d.typeName} from binary: maximum recursion depth of ${MAX_DEPTH} reached`)});
  if (m === undefined) m = { ${init.join(", ")} };
  while (pos < end) {
    let t = buf[pos];
    if (t >= 8 && t < 0x80 && (t & 7) < 6) pos++; else t = tag();
    switch (t >>> 3) {
${cases.join("\n")}
      default: unk(m, t, depth);
    }
  }
  return m;
}`;
}

function genEncoder(d: DescMessage, ids: Map<DescMessage, number>): string {
  const lines: string[] = [`  if (m === null || typeof m !== "object" || m.$typeName !== ${JSON.stringify(d.typeName)}) throw BAIL;`];
  const sorted = [...d.fields].sort((a, b) => a.number - b.number);
  for (const f of sorted) {
    const p = prop(f.localName);
    const name = JSON.stringify(f.localName);
    const explicit = f.presence === EXPLICIT;
    const present = explicit ? `v !== undefined && hasOwn.call(m, ${name})` : "";
    switch (f.fieldKind) {
      case "scalar":
      case "enum": {
        const t = f.fieldKind === "enum" ? ScalarType.INT32 : f.scalar;
        const [check, nonzero, write] = scalarEncodeParts(t);
        const tag = writeTag(f.number, scalarWireType(t));
        if (explicit) {
          lines.push(`  v = m${p}; if (${present}) { if (!(${check})) throw BAIL; ${tag} ${write} }`);
        } else {
          lines.push(`  v = m${p}; if (!(${check})) throw BAIL; if (${nonzero}) { ${tag} ${write} }`);
        }
        break;
      }
      case "message": {
        const tag = writeTag(f.number, WT_LEN);
        const inner = isStruct(f)
          ? `if (typeof v !== "object" || v === null || Array.isArray(v)) throw BAIL; ${tag} const at = fork(); ES(v); join(at);`
          : `${tag} const at = fork(); E${ids.get(f.message)}(v); join(at);`;
        lines.push(`  v = m${p}; if (${present}) { ${inner} }`);
        break;
      }
      case "list": {
        lines.push(`  v = m${p}; if (!Array.isArray(v)) throw BAIL;`);
        if (f.listKind === "message") {
          const tag = writeTag(f.number, WT_LEN);
          lines.push(`  for (let i = 0; i < v.length; i++) { ${tag} const at = fork(); E${ids.get(f.message)}(v[i]); join(at); }`);
        } else {
          const t = f.listKind === "enum" ? ScalarType.INT32 : f.scalar;
          const [check, , write] = scalarEncodeParts(t);
          if (f.packed && t !== ScalarType.STRING) {
            const tag = writeTag(f.number, WT_LEN);
            lines.push(
              `  if (v.length > 0) { const a = v; ${tag} const at = fork(); for (let i = 0; i < a.length; i++) { v = a[i]; if (!(${check})) throw BAIL; ${write} } join(at); v = a; }`,
            );
          } else {
            const tag = writeTag(f.number, scalarWireType(t));
            lines.push(`  { const a = v; for (let i = 0; i < a.length; i++) { v = a[i]; if (!(${check})) throw BAIL; ${tag} ${write} } }`);
          }
        }
        break;
      }
      default:
        throw new Error("unreachable");
    }
  }
  lines.push(`  v = m.$unknown; if (v !== undefined) wunk(v);`);
  return `
function E${ids.get(d)}(m) {
  let v;
${lines.join("\n")}
}`;
}

/** [type check, implicit-presence test, write] for a scalar held in `v`. */
function scalarEncodeParts(t: ScalarType): [string, string, string] {
  switch (t) {
    case ScalarType.STRING:
      return [`typeof v === "string"`, `v !== ""`, "wstr(v);"];
    case ScalarType.BOOL:
      return [`typeof v === "boolean"`, "v", "w1(v ? 1 : 0);"];
    case ScalarType.UINT32:
      return [`typeof v === "number" && (v >>> 0) === v`, "v !== 0", "wv(v);"];
    case ScalarType.INT32:
      return [`typeof v === "number" && (v | 0) === v`, "v !== 0", "wi32(v);"];
    case ScalarType.DOUBLE:
      // Object.is(v, 0) is protobuf-es's zero test: -0 is written.
      return [`typeof v === "number"`, "(v !== 0 || 1 / v < 0)", "wdbl(v);"];
    default:
      throw new Error(`unsupported scalar ${t}`);
  }
}

/**
 * Shared by every generated codec (each compiled schema gets its own copy, so V8 specializes it).
 * The readers mirror protobuf-es's BinaryReader (wire/binary-encoding.js and wire/varint.js):
 * the same number of bytes accepted per varint, the same bounds checks, the same skip rules.
 */
const RUNTIME = String.raw`
"use strict";
const EMPTY = new Uint8Array(0);
const hasOwn = Object.prototype.hasOwnProperty;
const latin1Slice = Buffer.prototype.latin1Slice;
const fcc = String.fromCharCode;
const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const lax = new TextDecoder("utf-8", { ignoreBOM: true });
const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);
const BAIL = new Error("value for protobuf-es to judge");
let buf = EMPTY, pos = 0, len = 0, lo = 0, hi = 0;

function eof() { return new RangeError("premature EOF"); }

function u32() {
  let b = buf[pos++];
  if (b < 0x80) return b;
  if (b === undefined) throw eof();
  let r = b & 0x7f;
  b = buf[pos++]; r |= (b & 0x7f) << 7;
  if ((b & 0x80) === 0) { if (pos > len) throw eof(); return r; }
  b = buf[pos++]; r |= (b & 0x7f) << 14;
  if ((b & 0x80) === 0) { if (pos > len) throw eof(); return r; }
  b = buf[pos++]; r |= (b & 0x7f) << 21;
  if ((b & 0x80) === 0) { if (pos > len) throw eof(); return r; }
  b = buf[pos++]; r |= (b & 0x0f) << 28;
  for (let n = 5; (b & 0x80) !== 0 && n < 10; n++) b = buf[pos++];
  if ((b & 0x80) !== 0) throw new Error("invalid varint");
  if (pos > len) throw eof();
  return r >>> 0;
}

// varint64read: only whether the value is zero matters here (bool), but the accepted lengths
// and errors are the same.
function v64() {
  let l = 0, h = 0;
  for (let s = 0; s < 28; s += 7) {
    const b = buf[pos++];
    l |= (b & 0x7f) << s;
    if ((b & 0x80) === 0) { if (pos > len) throw eof(); lo = l; hi = h; return; }
  }
  const mid = buf[pos++];
  l |= (mid & 0x0f) << 28;
  h = (mid & 0x70) >> 4;
  if ((mid & 0x80) === 0) { if (pos > len) throw eof(); lo = l; hi = h; return; }
  for (let s = 3; s <= 31; s += 7) {
    const b = buf[pos++];
    h |= (b & 0x7f) << s;
    if ((b & 0x80) === 0) { if (pos > len) throw eof(); lo = l; hi = h; return; }
  }
  throw new Error("invalid varint");
}

function bool() {
  const b = buf[pos];
  if (b < 0x80) { pos++; return b !== 0; }
  v64();
  return lo !== 0 || hi !== 0;
}

function dbl() {
  const p = pos;
  if (p + 8 > len) throw new RangeError("Offset is outside the bounds of the DataView");
  f64b[0] = buf[p]; f64b[1] = buf[p + 1]; f64b[2] = buf[p + 2]; f64b[3] = buf[p + 3];
  f64b[4] = buf[p + 4]; f64b[5] = buf[p + 5]; f64b[6] = buf[p + 6]; f64b[7] = buf[p + 7];
  pos = p + 8;
  return f64[0];
}

function str() {
  const l = u32();
  const s = pos, e = s + l;
  if (e > len) throw eof();
  pos = e;
  return text(s, e, l);
}

// buf[s, e) as a string, UTF-8 validated as protobuf-es does.
function text(s, e, l) {
  const b = buf;
  let any = 0;
  for (let i = s; i < e; i++) any |= b[i];
  if (any >= 0x80) return fatal.decode(b.subarray(s, e));
  // Short ASCII: one allocation, no native call.
  switch (l) {
    case 0: return "";
    case 1: return fcc(b[s]);
    case 2: return fcc(b[s], b[s + 1]);
    case 3: return fcc(b[s], b[s + 1], b[s + 2]);
    case 4: return fcc(b[s], b[s + 1], b[s + 2], b[s + 3]);
    case 5: return fcc(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4]);
    case 6: return fcc(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5]);
    case 7: return fcc(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6]);
    case 8: return fcc(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7]);
    case 9: return fcc(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7], b[s + 8]);
    case 10: return fcc(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7], b[s + 8], b[s + 9]);
    case 11: return fcc(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7], b[s + 8], b[s + 9], b[s + 10]);
    case 12: return fcc(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6], b[s + 7], b[s + 8], b[s + 9], b[s + 10], b[s + 11]);
  }
  return latin1Slice.call(b, s, e);
}

// Struct keys repeat from request to request; a fresh key string costs V8 a string-table lookup
// on every property store. This fixed-size cache (bounded: ${KEY_CACHE} entries, ASCII keys up to
// 32 bytes) hands back the same string object, which V8 has already internalized.
const kcache = new Array(${KEY_CACHE}).fill("");
function key() {
  const l = u32();
  const s = pos, e = s + l;
  if (e > len) throw eof();
  if (l <= 32) {
    let h = l, i = s;
    for (; i < e; i++) {
      const c = buf[i];
      if (c >= 0x80) break;
      h = Math.imul(h ^ c, 0x01000193);
    }
    if (i === e) {
      pos = e;
      const slot = (h ^ (h >>> 13)) & ${KEY_CACHE - 1};
      const k = kcache[slot];
      if (k.length === l) {
        let j = 0;
        while (j < l && k.charCodeAt(j) === buf[s + j]) j++;
        if (j === l) return k;
      }
      const r = text(s, e, l);
      kcache[slot] = r;
      return r;
    }
  }
  pos = e;
  return text(s, e, l);
}

function strLax() {
  const l = u32();
  const s = pos, e = s + l;
  if (e > len) throw eof();
  pos = e;
  return lax.decode(buf.subarray(s, e));
}

function tag() {
  const s = pos;
  const t = u32();
  const n = pos - s;
  if (n > 5 || (n === 5 && buf[pos - 1] > 0x0f)) throw new Error("illegal tag: varint overflows uint32");
  if ((t >>> 3) <= 0 || (t & 7) > 5) throw new Error("illegal tag: field no " + (t >>> 3) + " wire type " + (t & 7));
  return t;
}

function skip(wt, no, limit) {
  switch (wt) {
    case 0:
      while (buf[pos++] & 0x80) {}
      break;
    case 1:
      pos += 8;
      break;
    case 5:
      pos += 4;
      break;
    case 2: {
      const l = u32();
      pos += l;
      break;
    }
    case 3:
      if (limit <= 0) throw new Error("maximum recursion depth reached");
      for (;;) {
        const t = tag();
        if ((t & 7) === 4) {
          if ((t >>> 3) !== no) throw new Error("invalid end group tag");
          break;
        }
        skip(t & 7, t >>> 3, limit - 1);
      }
      break;
    default:
      throw new Error("cant skip wire type " + wt);
  }
  if (pos > len) throw eof();
}

function unk(m, t, depth) {
  const s = pos;
  skip(t & 7, t >>> 3, ${MAX_DEPTH} - depth);
  const u = { no: t >>> 3, wireType: t & 7, data: buf.subarray(s, pos) };
  if (m.$unknown === undefined) m.$unknown = [u]; else m.$unknown.push(u);
}

function nextTag() {
  const t = buf[pos];
  if (t >= 8 && t < 0x80 && (t & 7) < 6) { pos++; return t; }
  return tag();
}

function setKey(o, k, v) {
  if (k === "__proto__") Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  else o[k] = v;
}

// google.protobuf.Struct as JsonObject. o: the object to merge into, or undefined.
function S(end, depth, o) {
  if (++depth > ${MAX_DEPTH}) throw new Error("cannot decode message google.protobuf.Struct from binary: maximum recursion depth of ${MAX_DEPTH} reached");
  if (o === undefined) o = {};
  while (pos < end) {
    const t = nextTag();
    if ((t >>> 3) !== 1) { skip(t & 7, t >>> 3, ${MAX_DEPTH} - depth); continue; }
    const l = u32();
    const ee = pos + l;
    let k = "", v = null;
    while (pos < ee) {
      const t2 = nextTag();
      const n = t2 >>> 3;
      if (n === 1) k = key();
      else if (n === 2) { const l2 = u32(); v = V(pos + l2, depth, v); }
      else skip(t2 & 7, n, ${MAX_DEPTH} - depth);
    }
    setKey(o, k, v);
  }
  return o;
}

// google.protobuf.Value as JsonValue; cur: the value merged into (null when unset).
function V(end, depth, cur) {
  if (++depth > ${MAX_DEPTH}) throw new Error("cannot decode message google.protobuf.Value from binary: maximum recursion depth of ${MAX_DEPTH} reached");
  let v = cur;
  while (pos < end) {
    const t = nextTag();
    switch (t >>> 3) {
      case 1: u32(); v = null; break;
      case 2: v = dbl(); break;
      case 3: v = str(); break;
      case 4: v = bool(); break;
      case 5: { const l = u32(); v = S(pos + l, depth, v !== null && typeof v === "object" && !Array.isArray(v) ? v : undefined); break; }
      case 6: { const l = u32(); v = L(pos + l, depth, Array.isArray(v) ? v : undefined); break; }
      default: skip(t & 7, t >>> 3, ${MAX_DEPTH} - depth);
    }
  }
  return v;
}

// google.protobuf.ListValue as JsonValue[].
function L(end, depth, a) {
  if (++depth > ${MAX_DEPTH}) throw new Error("cannot decode message google.protobuf.ListValue from binary: maximum recursion depth of ${MAX_DEPTH} reached");
  if (a === undefined) a = [];
  while (pos < end) {
    const t = nextTag();
    if ((t >>> 3) === 1) { const l = u32(); a.push(V(pos + l, depth, null)); }
    else skip(t & 7, t >>> 3, ${MAX_DEPTH} - depth);
  }
  return a;
}

// ---- writer ----
// Encoding writes into a slab; each result is a view of its part of the slab. obase: where the
// message being encoded starts; opos: the write position. Positions are absolute in the slab
// (fork/join keep them), so growing copies the message to the same offset in a larger buffer.
let out = Buffer.allocUnsafeSlow(${SLAB_BYTES}), obase = 0, opos = 0, busy = false;

function newSlab() {
  out = Buffer.allocUnsafeSlow(${SLAB_BYTES});
  obase = 0;
}

function grow(n) {
  let size = out.length * 2;
  while (size < opos + n) size *= 2;
  const nb = Buffer.allocUnsafeSlow(size);
  out.copy(nb, obase, obase, opos);
  out = nb;
}

function w1(b) {
  if (opos >= out.length) grow(1);
  out[opos++] = b;
}

function wvRaw(v) {
  while (v > 0x7f) { out[opos++] = (v & 0x7f) | 0x80; v >>>= 7; }
  out[opos++] = v;
}

function wv(v) {
  if (opos + 5 > out.length) grow(5);
  wvRaw(v);
}

function wi32(v) {
  if (v >= 0) { wv(v); return; }
  if (opos + 10 > out.length) grow(10);
  for (let i = 0; i < 9; i++) { out[opos++] = (v & 0x7f) | 0x80; v >>= 7; }
  out[opos++] = 1;
}

function wdbl(v) {
  if (opos + 8 > out.length) grow(8);
  f64[0] = v;
  const p = opos;
  out[p] = f64b[0]; out[p + 1] = f64b[1]; out[p + 2] = f64b[2]; out[p + 3] = f64b[3];
  out[p + 4] = f64b[4]; out[p + 5] = f64b[5]; out[p + 6] = f64b[6]; out[p + 7] = f64b[7];
  opos = p + 8;
}

function vsize(v) {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

function wstr(s) {
  const n = s.length;
  if (opos + n * 3 + 5 > out.length) grow(n * 3 + 5);
  const o = out;
  // Short ASCII: a JS loop beats the native call; longer strings go to Buffer#utf8Write, which
  // writes U+FFFD for lone surrogates exactly as TextEncoder (protobuf-es) does.
  if (n <= 32) {
    let p = opos + 1, i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      o[p++] = c;
    }
    if (i === n) { o[opos] = n; opos = p; return; }
  }
  const guess = vsize(n);
  const w = o.utf8Write(s, opos + guess);
  const need = vsize(w);
  if (need !== guess) o.copyWithin(opos + need, opos + guess, opos + guess + w);
  wvRaw(w);
  opos += w;
}

function fork() {
  if (opos >= out.length) grow(1);
  return opos++;
}

function join(at) {
  const l = opos - at - 1;
  if (l < 0x80) { out[at] = l; return; }
  const sz = vsize(l);
  if (opos + sz > out.length) grow(sz);
  out.copyWithin(at + sz, at + 1, opos);
  opos = at;
  wvRaw(l);
  opos += l;
}

function wunk(u) {
  if (!Array.isArray(u)) throw BAIL;
  for (let i = 0; i < u.length; i++) {
    const x = u[i];
    const no = x.no, wt = x.wireType, data = x.data;
    if (!(data instanceof Uint8Array) || typeof no !== "number" || typeof wt !== "number") throw BAIL;
    const t = ((no << 3) | wt) >>> 0;
    if (!Number.isInteger(no) || !Number.isInteger(wt) || t !== (no << 3 | wt) >>> 0) throw BAIL;
    wv(t);
    if (opos + data.length > out.length) grow(data.length);
    out.set(data, opos);
    opos += data.length;
  }
}

// JsonObject as google.protobuf.Struct (the length-prefixed body).
function ES(o) {
  const keys = Object.keys(o);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    w1(0x0a); const at = fork();
    w1(0x0a); wstr(k);
    w1(0x12); const at2 = fork(); EV(o[k]); join(at2);
    join(at);
  }
}

// JsonValue as google.protobuf.Value (the body). Other JS types give an empty Value, as in protobuf-es.
function EV(v) {
  switch (typeof v) {
    case "number": w1(0x11); wdbl(v); return;
    case "string": w1(0x1a); wstr(v); return;
    case "boolean": w1(0x20); w1(v ? 1 : 0); return;
    case "object": {
      if (v === null) { w1(0x08); w1(0); return; }
      if (Array.isArray(v)) {
        w1(0x32); const at = fork();
        for (let i = 0; i < v.length; i++) { w1(0x0a); const a2 = fork(); EV(v[i]); join(a2); }
        join(at);
        return;
      }
      w1(0x2a); const at = fork(); ES(v); join(at);
      return;
    }
  }
}
`;
