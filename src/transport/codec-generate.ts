/**
 * Code generation of the specialized codecs (`codec.ts`): one decoder `D<id>` and one encoder
 * `E<id>` function per message type reachable from the root, as JavaScript source compiled with
 * `new Function` together with the shared runtime (`codec-runtime.ts`).
 */
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { EXPLICIT, isStruct } from "./codec-schema.ts";
import { MAX_DEPTH, RUNTIME, SLAB_BYTES, SLAB_MIN_FREE } from "./codec-runtime.ts";

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
  return tagBytes(no, wt)
    .map((b) => `w1(${b});`)
    .join(" ");
}

const WT_VARINT = 0;
const WT_BIT64 = 1;
const WT_LEN = 2;

function scalarWireType(t: ScalarType): number {
  return t === ScalarType.STRING ? WT_LEN : t === ScalarType.DOUBLE ? WT_BIT64 : WT_VARINT;
}

export function generate(root: DescMessage): string {
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
  const lines: string[] = [
    `  if (m === null || typeof m !== "object" || m.$typeName !== ${JSON.stringify(d.typeName)}) throw BAIL;`,
  ];
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
          lines.push(
            `  for (let i = 0; i < v.length; i++) { ${tag} const at = fork(); E${ids.get(f.message)}(v[i]); join(at); }`,
          );
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
            lines.push(
              `  { const a = v; for (let i = 0; i < a.length; i++) { v = a[i]; if (!(${check})) throw BAIL; ${tag} ${write} } }`,
            );
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
