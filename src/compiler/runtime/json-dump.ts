// Values -> JSON text (for the host, for result sets, and `dumpJsonString` for builtins).

import { alloc, extendLast, fatal } from "./memory";
import {
  K_NULL, K_BOOL, K_NUM, K_STR, K_ARR, K_OBJ, K_SET, kindOf, lenOf, numOf, strPtr, elems, objKeys,
  objVals, mkStr,
} from "./value";
import { dtoa_buffered } from "util/number";

import { failInexact } from "./json-number";

let out: usize = 0;
let outLen: usize = 0;
let outCap: usize = 0;

function ensure(n: usize): void {
  if (outLen + n <= outCap) return;
  let ncap = outCap * 2;
  if (ncap < outLen + n) ncap = outLen + n + 64;
  if (extendLast(out, outCap, ncap)) { outCap = ncap; return; }
  const nb = alloc(ncap);
  memory.copy(nb, out, outLen);
  out = nb;
  outCap = ncap;
}

// @ts-ignore: decorator
@inline function putByte(b: u32): void {
  ensure(1);
  store<u8>(out + outLen, <u8>b);
  outLen++;
}

function putAscii(s: string): void {
  const n = <usize>s.length;
  ensure(n);
  for (let i: usize = 0; i < n; i++) store<u8>(out + outLen + i, <u8>s.charCodeAt(<i32>i));
  outLen += n;
}

function putBytes(p: usize, n: usize): void {
  ensure(n);
  memory.copy(out + outLen, p, n);
  outLen += n;
}

const dbuf: usize = memory.data(80, 8);

/** Writes a number the way OPA prints it: integers without a decimal point. */
function writeInt(v: i64): void {
  ensure(21);
  if (v < 0) { store<u8>(out + outLen, 0x2d); outLen++; }
  const tmp = dbuf + 40;
  let n: usize = 0;
  let u: u64 = v < 0 ? <u64>(-(v + 1)) + 1 : <u64>v;
  do { store<u8>(tmp + n, <u8>(0x30 + <i32>(u % 10))); u /= 10; n++; } while (u > 0);
  for (let i: usize = 0; i < n; i++) store<u8>(out + outLen + i, load<u8>(tmp + n - 1 - i));
  outLen += n;
}

export function writeNumber(x: f64): void {
  // Overflowed arithmetic: OPA's big numbers would print a value; never print another one.
  if (!isFinite(x)) failInexact();
  if (x == 0) { putByte(0x30); return; }
  if (floor(x) == x && abs(x) < 9.0e18) {
    let v = <i64>x;
    ensure(21);
    if (v < 0) { store<u8>(out + outLen, 0x2d); outLen++; v = -v; }
    let tmp = dbuf + 40;
    let n: usize = 0;
    while (v > 0) { store<u8>(tmp + n, <u8>(0x30 + <i32>(v % 10))); v /= 10; n++; }
    for (let i: usize = 0; i < n; i++) store<u8>(out + outLen + i, load<u8>(tmp + n - 1 - i));
    outLen += n;
    return;
  }
  let n = <usize>dtoa_buffered(dbuf, x);
  // AssemblyScript's dtoa prints integral values below 1e21 with a trailing ".0"
  if (n > 2 && load<u16>(dbuf + ((n - 1) << 1)) == 0x30 && load<u16>(dbuf + ((n - 2) << 1)) == 0x2e) n -= 2;
  ensure(n);
  for (let i: usize = 0; i < n; i++) store<u8>(out + outLen + i, <u8>load<u16>(dbuf + (i << 1)));
  outLen += n;
}

const HEX: usize = memory.data<u8>([48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 97, 98, 99, 100, 101, 102]);

function writeStringBytes(p: usize, n: usize): void {
  ensure(n + 2);
  store<u8>(out + outLen, 0x22);
  outLen++;
  let runStart = p;
  const end = p + n;
  let s = p;
  while (s < end) {
    const c = <u32>load<u8>(s);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) { s++; continue; }
    putBytes(runStart, s - runStart);
    if (c == 0x22) putAscii("\\\"");
    else if (c == 0x5c) putAscii("\\\\");
    else if (c == 0x0a) putAscii("\\n");
    else if (c == 0x0d) putAscii("\\r");
    else if (c == 0x09) putAscii("\\t");
    else {
      putAscii("\\u00");
      putByte(load<u8>(HEX + (c >> 4)));
      putByte(load<u8>(HEX + (c & 15)));
    }
    s++;
    runStart = s;
  }
  putBytes(runStart, end - runStart);
  putByte(0x22);
}

function writeValue(v: usize): void {
  switch (kindOf(v)) {
    case K_NULL: putAscii("null"); return;
    case K_BOOL: if (load<u32>(v, 4) != 0) putAscii("true"); else putAscii("false"); return;
    case K_NUM:
      if (load<u32>(v, 4) != 0) {
        const iv = load<i64>(v, 8);
        // Host builtins get arguments through JavaScript's JSON.parse, which rounds beyond 2^53;
        // an integer a double holds exactly (1451311705000000000 ns, say) arrives unchanged.
        // (2^63 is not an i64: a saturating conversion back would make i64 max look exact.)
        const x = <f64>iv;
        if (forHost && (iv > (<i64>1 << 53) || iv < -(<i64>1 << 53)) && !(x < 9223372036854775808.0 && <i64>x == iv)) {
          fatal("an integer beyond 2^53 cannot be passed exactly to a builtin implemented in JavaScript; OPA's numbers are arbitrary precision, so Arbiter refuses rather than answer with another number");
        }
        writeInt(iv);
      } else writeNumber(numOf(v));
      return;
    case K_STR: writeStringBytes(strPtr(v), lenOf(v)); return;
    case K_ARR:
    case K_SET: {
      // A JavaScript builtin would see a set inside its arguments as an array, and could answer
      // with an array where OPA keeps a set: refuse. (A set argument itself is fine: the host
      // builtins treat a set operand as OPA does.)
      if (forHost && hostDepth > 0 && kindOf(v) == K_SET) {
        fatal("a set nested in an argument cannot be passed to a builtin implemented in JavaScript");
      }
      // Typed text (host builtins in HOST_TYPED_JSON): a set is `<...>`, which no JSON text holds.
      const open: u32 = typed && kindOf(v) == K_SET ? 0x3c : 0x5b;
      hostDepth++;
      putByte(open);
      const n = lenOf(v);
      const e = elems(v);
      for (let i: u32 = 0; i < n; i++) {
        if (i > 0) putByte(0x2c);
        writeValue(load<u32>(e + (<usize>i << 2)));
      }
      putByte(open == 0x3c ? 0x3e : 0x5d);
      hostDepth--;
      return;
    }
    case K_OBJ: {
      hostDepth++;
      putByte(0x7b);
      const n = lenOf(v);
      for (let i: u32 = 0; i < n; i++) {
        if (i > 0) putByte(0x2c);
        const k = load<u32>(objKeys(v) + (<usize>i << 2));
        if (kindOf(k) == K_STR) {
          writeStringBytes(strPtr(k), lenOf(k));
        } else {
          // JavaScript would see the key as a string: refuse rather than let a builtin answer
          // for another object.
          if (forHost || typed) fatal("an object with non-string keys cannot be passed to a builtin implemented in JavaScript");
          // Non-string keys become their JSON text, as in OPA.
          const start = outLen;
          writeValue(k);
          const len = outLen - start;
          const tmp = alloc(len);
          memory.copy(tmp, out + start, len);
          outLen = start;
          writeStringBytes(tmp, len);
        }
        putByte(0x3a);
        writeValue(load<u32>(objVals(v) + (<usize>i << 2)));
      }
      putByte(0x7d);
      hostDepth--;
      return;
    }
  }
  putAscii("null");
}

function beginOut(): void {
  outCap = 256;
  out = alloc(outCap);
  outLen = 0;
}

let forHost = false;
/** Writing typed text: sets marked as `<...>` (see dumpTypedString). */
let typed = false;
/** Nesting depth of the value being dumped for the host (0 = the argument itself). */
let hostDepth = 0;

/** Dumps a value as NUL-terminated JSON; returns the text's address. */
export function dumpJson(v: usize): usize {
  beginOut();
  writeValue(v);
  putByte(0);
  return out;
}

/**
 * `opa_json_dump`: the SDK uses it for host builtin arguments (and JSON.parses the text), so
 * integers JavaScript would round are refused here.
 */
export function dumpJsonForHost(v: usize): usize {
  forHost = true;
  hostDepth = 0;
  beginOut();
  writeValue(v);
  putByte(0);
  forHost = false;
  return out;
}

/** Dumps a value as JSON without the NUL; returns the string value. */
export function dumpJsonString(v: usize): usize {
  beginOut();
  writeValue(v);
  return mkStr(out, <u32>outLen);
}

/**
 * Typed text for the host builtins in HOST_TYPED_JSON: JSON where a set is written `<a,b>`
 * (elements in the runtime's order), integers exact (the host parses them as BigInt). Objects
 * with non-string keys are refused, as for any host argument.
 */
export function dumpTypedString(v: usize): usize {
  typed = true;
  beginOut();
  writeValue(v);
  typed = false;
  return mkStr(out, <u32>outLen);
}

/** `[{"result": v}]`, or `[]` when v is undefined (0). */
export function dumpResultSet(v: usize): usize {
  beginOut();
  if (v == 0) {
    putAscii("[]");
  } else {
    putAscii("[{\"result\":");
    writeValue(v);
    putAscii("}]");
  }
  putByte(0);
  return out;
}

/** Writes code point `cp` as UTF-8 at `q`; returns the number of bytes (the parser uses it too). */
export function putUtf8(q: usize, cp: u32): usize {
  if (cp < 0x80) { store<u8>(q, <u8>cp); return 1; }
  if (cp < 0x800) {
    store<u8>(q, <u8>(0xc0 | (cp >> 6)));
    store<u8>(q + 1, <u8>(0x80 | (cp & 0x3f)));
    return 2;
  }
  if (cp < 0x10000) {
    store<u8>(q, <u8>(0xe0 | (cp >> 12)));
    store<u8>(q + 1, <u8>(0x80 | ((cp >> 6) & 0x3f)));
    store<u8>(q + 2, <u8>(0x80 | (cp & 0x3f)));
    return 3;
  }
  store<u8>(q, <u8>(0xf0 | (cp >> 18)));
  store<u8>(q + 1, <u8>(0x80 | ((cp >> 12) & 0x3f)));
  store<u8>(q + 2, <u8>(0x80 | ((cp >> 6) & 0x3f)));
  store<u8>(q + 3, <u8>(0x80 | (cp & 0x3f)));
  return 4;
}
