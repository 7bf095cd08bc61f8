// JSON text <-> values. Parsing is zero-copy for strings without escapes (the string points
// into the source text, which the SDK keeps alive for as long as the value is used).
import { alloc } from "./memory";
import {
  NULL_V, TRUE_V, FALSE_V, mkNum, mkInt, mkStr, mkArray, mkObject, mkSet, arrayPush, objInsert, setInsert,
} from "./value";

import {
  scanNumber, lastNumber, lastIsBigInt, lastBigInt, lastInexact, failInexact,
} from "./json-number";

export { scanNumber, lastNumber, lastIsBigInt, lastBigInt, lastInexact, failInexact, toF64 } from "./json-number";
export { dumpJson, dumpJsonForHost, dumpJsonString, dumpTypedString, dumpResultSet, putUtf8 } from "./json-dump";
import { putUtf8 } from "./json-dump";

let pp: usize = 0;
let pend: usize = 0;
let perr: bool = false;
let depth: i32 = 0;
/** Parsing typed text (parseTyped): `<...>` is a set. */
let typedIn = false;

const MAX_DEPTH: i32 = 1000;

// @ts-ignore: decorator
@inline function isWs(c: u32): bool {
  return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09;
}

function skipWs(): void {
  while (pp < pend && isWs(load<u8>(pp))) pp++;
}

/** Parses `len` bytes of JSON text at `p`; returns 0 when malformed. */
export function parseJson(p: usize, len: usize): usize {
  typedIn = false;
  return parseText(p, len);
}

/** Parses typed text (dumpTypedString's format, a host builtin's answer); 0 when malformed. */
export function parseTyped(p: usize, len: usize): usize {
  typedIn = true;
  const v = parseText(p, len);
  typedIn = false;
  return v;
}

function parseText(p: usize, len: usize): usize {
  pp = p;
  pend = p + len;
  perr = false;
  depth = 0;
  skipWs();
  const v = parseValue();
  if (perr || v == 0) return 0;
  skipWs();
  if (pp != pend) return 0;
  return v;
}

function matchWord(w: u64, n: usize): bool {
  // w holds the expected bytes little endian
  if (pp + n > pend) return false;
  for (let i: usize = 0; i < n; i++) {
    if (<u64>load<u8>(pp + i) != ((w >> (i << 3)) & 0xff)) return false;
  }
  pp += n;
  return true;
}

function parseValue(): usize {
  if (pp >= pend) { perr = true; return 0; }
  const c = <u32>load<u8>(pp);
  if (c == 0x22) return parseString();
  if (c == 0x7b) return parseObject();
  if (c == 0x5b) return parseArray();
  if (c == 0x3c && typedIn) return parseSet();
  if (c == 0x74) { if (matchWord(0x65757274, 4)) return TRUE_V; perr = true; return 0; }
  if (c == 0x66) { if (matchWord(0x65736c6166, 5)) return FALSE_V; perr = true; return 0; }
  if (c == 0x6e) { if (matchWord(0x6c6c756e, 4)) return NULL_V; perr = true; return 0; }
  if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return parseNumber();
  perr = true;
  return 0;
}

function parseArray(): usize {
  if (++depth > MAX_DEPTH) { perr = true; return 0; }
  pp++;
  const arr = mkArray(8);
  skipWs();
  if (pp < pend && load<u8>(pp) == 0x5d) { pp++; depth--; return arr; }
  while (true) {
    skipWs();
    const v = parseValue();
    if (v == 0) { perr = true; return 0; }
    arrayPush(arr, v);
    skipWs();
    if (pp >= pend) { perr = true; return 0; }
    const c = load<u8>(pp++);
    if (c == 0x5d) break;
    if (c != 0x2c) { perr = true; return 0; }
  }
  depth--;
  return arr;
}

function parseSet(): usize {
  if (++depth > MAX_DEPTH) { perr = true; return 0; }
  pp++;
  const set = mkSet(8);
  skipWs();
  if (pp < pend && load<u8>(pp) == 0x3e) { pp++; depth--; return set; }
  while (true) {
    skipWs();
    const v = parseValue();
    if (v == 0) { perr = true; return 0; }
    setInsert(set, v);
    skipWs();
    if (pp >= pend) { perr = true; return 0; }
    const c = load<u8>(pp++);
    if (c == 0x3e) break;
    if (c != 0x2c) { perr = true; return 0; }
  }
  depth--;
  return set;
}

function parseObject(): usize {
  if (++depth > MAX_DEPTH) { perr = true; return 0; }
  pp++;
  const obj = mkObject(8);
  skipWs();
  if (pp < pend && load<u8>(pp) == 0x7d) { pp++; depth--; return obj; }
  while (true) {
    skipWs();
    if (pp >= pend || load<u8>(pp) != 0x22) { perr = true; return 0; }
    const k = parseString();
    if (k == 0) { perr = true; return 0; }
    skipWs();
    if (pp >= pend || load<u8>(pp) != 0x3a) { perr = true; return 0; }
    pp++;
    skipWs();
    const v = parseValue();
    if (v == 0) { perr = true; return 0; }
    objInsert(obj, k, v, false);
    skipWs();
    if (pp >= pend) { perr = true; return 0; }
    const c = load<u8>(pp++);
    if (c == 0x7d) break;
    if (c != 0x2c) { perr = true; return 0; }
  }
  depth--;
  return obj;
}

function hex4(p: usize): i32 {
  let r: i32 = 0;
  for (let i: usize = 0; i < 4; i++) {
    const c = <i32>load<u8>(p + i);
    let d: i32;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
    else return -1;
    r = (r << 4) | d;
  }
  return r;
}

function parseString(): usize {
  pp++;
  const start = pp;
  let escaped = false;
  while (true) {
    if (pp >= pend) { perr = true; return 0; }
    const c = load<u8>(pp);
    if (c == 0x22) break;
    if (c < 0x20) { perr = true; return 0; }
    if (c == 0x5c) { escaped = true; pp += 2; continue; }
    pp++;
  }
  if (pp > pend) { perr = true; return 0; }
  const end = pp;
  pp++;
  if (!escaped) return mkStr(start, <u32>(end - start));
  const buf = alloc(end - start);
  let q = buf;
  let s = start;
  while (s < end) {
    const c = load<u8>(s);
    if (c != 0x5c) { store<u8>(q++, c); s++; continue; }
    const e = load<u8>(s + 1);
    s += 2;
    switch (e) {
      case 0x22: store<u8>(q++, 0x22); break;
      case 0x5c: store<u8>(q++, 0x5c); break;
      case 0x2f: store<u8>(q++, 0x2f); break;
      case 0x62: store<u8>(q++, 0x08); break;
      case 0x66: store<u8>(q++, 0x0c); break;
      case 0x6e: store<u8>(q++, 0x0a); break;
      case 0x72: store<u8>(q++, 0x0d); break;
      case 0x74: store<u8>(q++, 0x09); break;
      case 0x75: {
        if (s + 4 > end) { perr = true; return 0; }
        let cp = hex4(s);
        if (cp < 0) { perr = true; return 0; }
        s += 4;
        if (cp >= 0xd800 && cp < 0xdc00) {
          if (s + 6 <= end && load<u8>(s) == 0x5c && load<u8>(s + 1) == 0x75) {
            const lo = hex4(s + 2);
            if (lo >= 0xdc00 && lo < 0xe000) {
              cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
              s += 6;
            } else cp = 0xfffd;
          } else cp = 0xfffd;
        } else if (cp >= 0xdc00 && cp < 0xe000) cp = 0xfffd;
        q += putUtf8(q, <u32>cp);
        break;
      }
      default: perr = true; return 0;
    }
  }
  return mkStr(buf, <u32>(q - buf));
}

function parseNumber(): usize {
  const n = scanNumber(pp, pend);
  if (n == 0) { perr = true; return 0; }
  pp += n;
  if (lastInexact) failInexact();
  return lastIsBigInt ? mkInt(lastBigInt) : mkNum(lastNumber);
}
