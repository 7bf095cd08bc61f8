/**
 * The runtime every generated codec (`codec-generate.ts`) embeds: protobuf-es-compatible wire
 * readers, the Struct/Value/ListValue decoders and encoders, and the slab writer.
 */

/** Message nesting limit, protobuf-es's default `recursionLimit`. */
export const MAX_DEPTH = 100;

/** Entries of the Struct key cache (a power of two). */
export const KEY_CACHE = 1024;
/** Encode slab size; a message that needs more gets its own larger buffer. */
export const SLAB_BYTES = 16 * 1024;
/** Below this much room left, a new slab is started before encoding. */
export const SLAB_MIN_FREE = 1024;

/**
 * Shared by every generated codec (each compiled schema gets its own copy, so V8 specializes it).
 * The readers mirror protobuf-es's BinaryReader (wire/binary-encoding.js and wire/varint.js):
 * the same number of bytes accepted per varint, the same bounds checks, the same skip rules.
 */
export const RUNTIME = String.raw`
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
