// Builtins implemented natively by the runtime. Each `bi_<name>` (dots become underscores)
// takes value addresses and returns a value address, 0 for "undefined" (OPA's non-strict mode
// turns builtin errors, including type errors, into undefined).

import { alloc } from "./memory";
import {
  K_NULL, K_BOOL, K_NUM, K_STR, K_ARR, K_OBJ, K_SET, TRUE_V, FALSE_V, EMPTY_STR,
  kindOf, lenOf, numOf, strPtr, elems, objKeys, objVals, valAt,
  mkBool, mkNum, mkStr, mkStrCopy, mkStrLit, mkArray, mkObject, mkSet, arrayPush, setInsert,
  setHas, objGet, objInsert, objMerge, objCopy, setCopy, compare, equal, bytesCmp, search,
  mkInt, asInt, intValue, EXACT_F64,
} from "./value";
import { UPPER_RUNS, LOWER_RUNS } from "./case-table";
import { parseJson, dumpJsonString, scanNumber, lastNumber, lastIsBigInt, lastBigInt, lastInexact, failInexact, putUtf8, toF64 } from "./json";

// @ts-ignore: decorator
@inline function isNum(v: usize): bool { return kindOf(v) == K_NUM; }
// @ts-ignore: decorator
@inline function isStr(v: usize): bool { return kindOf(v) == K_STR; }
// @ts-ignore: decorator
@inline function isSet(v: usize): bool { return kindOf(v) == K_SET; }
// @ts-ignore: decorator
@inline function isInt(x: f64): bool { return floor(x) == x && isFinite(x); }

// ---- operators --------------------------------------------------------------------------------

/**
 * Decimal-friendly rounding of an arithmetic result. OPA computes non-integer arithmetic with
 * 64-bit-mantissa big.Floats and prints the shortest decimal at that precision, so
 * `0.1 + 0.2 == 0.3` holds there while f64 gives 0.30000000000000004. A result within two f64
 * ulps of a 15-significant-digit decimal is snapped to that decimal, which reproduces OPA on
 * such sums and products (documented approximation: OPA's 64-bit results are not modelled).
 */
function arith(x: f64): usize {
  if (!isFinite(x) || floor(x) == x) return mkNum(x);
  const ax = abs(x);
  let e = <i32>floor(Math.log10(ax));
  let r = Math.round(ax / pow10(e - 14));
  if (r >= 1e15) {
    // 0.9999999999999999 rounds up to the next power of ten
    r = 1e14;
    e++;
  }
  if (r < 1e14) return mkNum(x);
  const snapped = toF64(<u64>r, e - 14, false);
  const ulp = reinterpret<f64>(reinterpret<u64>(ax) + 1) - ax;
  if (abs(snapped - ax) <= 2 * ulp) return mkNum(x < 0 ? -snapped : snapped);
  return mkNum(x);
}

/** 10^e as f64 (inexact outside the exactly representable range; used only for scaling). */
function pow10(e: i32): f64 {
  return Math.pow(10, <f64>e);
}

/**
 * Exact integer arithmetic when both operands are integers and the f64 result would leave the
 * exactly representable range; op 0 add, 1 subtract, 2 multiply. Returns 0 when not applicable
 * (or on i64 overflow), and the caller falls back to f64.
 */
function bigIntOp(a: usize, b: usize, r: f64, op: i32): usize {
  const flagged = (load<u32>(a, 4) | load<u32>(b, 4)) != 0;
  if (!(flagged || abs(r) > EXACT_F64) || !asInt(a)) return 0;
  const x = intValue();
  if (!asInt(b)) return 0;
  const y = intValue();
  let z: i64;
  if (op == 0) {
    z = x + y;
    if (((x ^ z) & (y ^ z)) < 0) return 0;
  } else if (op == 1) {
    z = x - y;
    if (((x ^ y) & (x ^ z)) < 0) return 0;
  } else {
    if (x == 0 || y == 0) return mkNum(0);
    z = x * y;
    if (z / y != x || (x == -1 && y == i64.MIN_VALUE) || (y == -1 && x == i64.MIN_VALUE)) return 0;
  }
  return mkInt(z);
}

export function bi_plus(a: usize, b: usize): usize {
  if (!isNum(a) || !isNum(b)) return 0;
  const r = numOf(a) + numOf(b);
  const big = bigIntOp(a, b, r, 0);
  return big != 0 ? big : arith(r);
}

export function bi_minus(a: usize, b: usize): usize {
  if (isNum(a) && isNum(b)) {
    const r = numOf(a) - numOf(b);
    const big = bigIntOp(a, b, r, 1);
    return big != 0 ? big : arith(r);
  }
  if (isSet(a) && isSet(b)) {
    const r = mkSet(lenOf(a));
    const n = lenOf(a);
    for (let i: u32 = 0; i < n; i++) {
      const x = load<u32>(elems(a) + (<usize>i << 2));
      if (!setHas(b, x)) setInsert(r, x);
    }
    return r;
  }
  return 0;
}

export function bi_mul(a: usize, b: usize): usize {
  if (!isNum(a) || !isNum(b)) return 0;
  const r = numOf(a) * numOf(b);
  const big = bigIntOp(a, b, r, 2);
  return big != 0 ? big : arith(r);
}

export function bi_div(a: usize, b: usize): usize {
  if (!isNum(a) || !isNum(b) || numOf(b) == 0) return 0;
  if ((load<u32>(a, 4) | load<u32>(b, 4)) != 0 && asInt(a)) {
    // an exact integer beyond 2^53 divided evenly stays exact
    const x = intValue();
    if (asInt(b)) {
      const y = intValue();
      if (y != 0 && !(y == -1 && x == i64.MIN_VALUE) && x % y == 0) return mkInt(x / y);
    }
  }
  return arith(numOf(a) / numOf(b));
}

export function bi_rem(a: usize, b: usize): usize {
  if (!isNum(a) || !isNum(b)) return 0;
  if ((load<u32>(a, 4) | load<u32>(b, 4)) != 0) {
    // an exact integer beyond 2^53: integer remainder in i64
    if (!asInt(a)) return 0;
    const x = intValue();
    if (!asInt(b)) return 0;
    const y = intValue();
    if (y == 0) return 0;
    if (y == -1) return mkNum(0);
    return mkInt(x % y);
  }
  const x = numOf(a);
  const y = numOf(b);
  if (y == 0 || !isInt(x) || !isInt(y)) return 0;
  const r = x % y;
  return mkNum(r == 0 ? 0 : r);
}

export function bi_lt(a: usize, b: usize): usize { return mkBool(compare(a, b) < 0); }
export function bi_lte(a: usize, b: usize): usize { return mkBool(compare(a, b) <= 0); }
export function bi_gt(a: usize, b: usize): usize { return mkBool(compare(a, b) > 0); }
export function bi_gte(a: usize, b: usize): usize { return mkBool(compare(a, b) >= 0); }
export function bi_equal(a: usize, b: usize): usize { return mkBool(equal(a, b)); }
export function bi_neq(a: usize, b: usize): usize { return mkBool(!equal(a, b)); }

export function bi_or(a: usize, b: usize): usize {
  if (!isSet(a) || !isSet(b)) return 0;
  const r = setCopy(a);
  const n = lenOf(b);
  for (let i: u32 = 0; i < n; i++) setInsert(r, load<u32>(elems(b) + (<usize>i << 2)));
  return r;
}

export function bi_and(a: usize, b: usize): usize {
  if (!isSet(a) || !isSet(b)) return 0;
  const r = mkSet(4);
  const n = lenOf(a);
  for (let i: u32 = 0; i < n; i++) {
    const x = load<u32>(elems(a) + (<usize>i << 2));
    if (setHas(b, x)) setInsert(r, x);
  }
  return r;
}

export function bi_internal_member_2(x: usize, coll: usize): usize {
  const k = kindOf(coll);
  if (k == K_SET) return mkBool(setHas(coll, x));
  if (k == K_ARR || k == K_OBJ) {
    const n = lenOf(coll);
    const base = k == K_ARR ? elems(coll) : objVals(coll);
    for (let i: u32 = 0; i < n; i++) {
      if (equal(load<u32>(base + (<usize>i << 2)), x)) return TRUE_V;
    }
  }
  return FALSE_V;
}

export function bi_internal_member_3(key: usize, val: usize, coll: usize): usize {
  const k = kindOf(coll);
  let found: usize = 0;
  if (k == K_OBJ) found = objGet(coll, key);
  else if (k == K_SET) found = setHas(coll, key) ? key : 0;
  else if (k == K_ARR && isNum(key)) {
    const x = numOf(key);
    if (x >= 0 && x < <f64>lenOf(coll) && floor(x) == x) found = load<u32>(elems(coll) + (<usize>(<u32>x) << 2));
  }
  return mkBool(found != 0 && equal(found, val));
}

// ---- aggregates -----------------------------------------------------------------------------

/** Number of code points in UTF-8 text. */
function runeCount(p: usize, n: u32): u32 {
  let c: u32 = 0;
  for (let i: u32 = 0; i < n; i++) if ((load<u8>(p + i) & 0xc0) != 0x80) c++;
  return c;
}

export function bi_count(v: usize): usize {
  const k = kindOf(v);
  if (k == K_STR) return mkNum(<f64>runeCount(strPtr(v), lenOf(v)));
  if (k == K_ARR || k == K_OBJ || k == K_SET) return mkNum(<f64>lenOf(v));
  return 0;
}

function isArrOrSet(v: usize): bool {
  const k = kindOf(v);
  return k == K_ARR || k == K_SET;
}

export function bi_sum(v: usize): usize {
  if (!isArrOrSet(v)) return 0;
  let s: f64 = 0;
  const n = lenOf(v);
  // Integers only and beyond 2^53 somewhere: an exact i64 sum (f64 on overflow).
  let exact = true;
  let big = false;
  let t: i64 = 0;
  for (let i: u32 = 0; i < n && exact; i++) {
    const x = load<u32>(elems(v) + (<usize>i << 2));
    if (!isNum(x) || !asInt(x)) { exact = false; break; }
    const y = intValue();
    const z = t + y;
    if (((t ^ z) & (y ^ z)) < 0) { exact = false; break; }
    t = z;
    if (load<u32>(x, 4) != 0 || abs(<f64>t) > EXACT_F64) big = true;
  }
  if (exact && big) return mkInt(t);
  for (let i: u32 = 0; i < n; i++) {
    const x = load<u32>(elems(v) + (<usize>i << 2));
    if (!isNum(x)) return 0;
    s += numOf(x);
  }
  return arith(s);
}

function extreme(v: usize, sign: i32): usize {
  if (!isArrOrSet(v)) return 0;
  const n = lenOf(v);
  if (n == 0) return 0;
  let best = load<u32>(elems(v));
  for (let i: u32 = 1; i < n; i++) {
    const x = load<u32>(elems(v) + (<usize>i << 2));
    if (compare(x, best) * sign > 0) best = x;
  }
  return best;
}

export function bi_max(v: usize): usize { return extreme(v, 1); }
export function bi_min(v: usize): usize { return extreme(v, -1); }

/** Stable merge sort of `n` value addresses at `base` by `compare`. */
function sortAddrs(base: usize, n: u32): void {
  if (n < 2) return;
  if (n <= 16) {
    for (let i: u32 = 1; i < n; i++) {
      const x = load<u32>(base + (<usize>i << 2));
      let j = <i32>i - 1;
      while (j >= 0 && compare(load<u32>(base + (<usize>j << 2)), x) > 0) {
        store<u32>(base + (<usize>(j + 1) << 2), load<u32>(base + (<usize>j << 2)));
        j--;
      }
      store<u32>(base + (<usize>(j + 1) << 2), x);
    }
    return;
  }
  const h = n >> 1;
  sortAddrs(base, h);
  sortAddrs(base + (<usize>h << 2), n - h);
  const tmp = alloc(<usize>n << 2);
  let i: u32 = 0, j: u32 = h, k: u32 = 0;
  while (i < h && j < n) {
    const a = load<u32>(base + (<usize>i << 2));
    const b = load<u32>(base + (<usize>j << 2));
    if (compare(b, a) < 0) { store<u32>(tmp + (<usize>k << 2), b); j++; }
    else { store<u32>(tmp + (<usize>k << 2), a); i++; }
    k++;
  }
  while (i < h) { store<u32>(tmp + (<usize>k << 2), load<u32>(base + (<usize>i << 2))); i++; k++; }
  while (j < n) { store<u32>(tmp + (<usize>k << 2), load<u32>(base + (<usize>j << 2))); j++; k++; }
  memory.copy(base, tmp, <usize>n << 2);
}

export function bi_sort(v: usize): usize {
  if (!isArrOrSet(v)) return 0;
  const n = lenOf(v);
  const r = mkArray(n);
  memory.copy(elems(r), elems(v), <usize>n << 2);
  store<u32>(r, n, 4);
  if (kindOf(v) == K_ARR) sortAddrs(elems(r), n);
  return r;
}

// ---- numbers ----------------------------------------------------------------------------------

export function bi_abs(v: usize): usize {
  if (!isNum(v)) return 0;
  if (load<u32>(v, 4) != 0) {
    const i = load<i64>(v, 8);
    return i < 0 && i != i64.MIN_VALUE ? mkInt(-i) : v;
  }
  return mkNum(abs(numOf(v)));
}
export function bi_ceil(v: usize): usize { return !isNum(v) ? 0 : (load<u32>(v, 4) != 0 ? v : mkNum(ceil(numOf(v)))); }
export function bi_floor(v: usize): usize { return !isNum(v) ? 0 : (load<u32>(v, 4) != 0 ? v : mkNum(floor(numOf(v)))); }

export function bi_round(v: usize): usize {
  if (!isNum(v)) return 0;
  if (load<u32>(v, 4) != 0) return v;
  const x = numOf(v);
  const t = trunc(x);
  if (abs(x - t) >= 0.5) return mkNum(t + (x < 0 ? -1 : 1));
  return mkNum(t);
}

/** True for "1.e5" (a dot directly before the exponent). */
function hasDotBeforeExp(p: usize, n: usize): bool {
  for (let i: usize = 0; i + 1 < n; i++) {
    if (load<u8>(p + i) == 0x2e && (load<u8>(p + i + 1) | 0x20) == 0x65) return true;
  }
  return false;
}

export function bi_to_number(v: usize): usize {
  const k = kindOf(v);
  if (k == K_NULL) return mkNum(0);
  if (k == K_BOOL) return mkNum(load<u32>(v, 4) != 0 ? 1 : 0);
  if (k == K_NUM) return v;
  if (k != K_STR) return 0;
  // strconv.ParseFloat's decimal forms: an optional sign, and "5." or ".5" besides JSON's.
  let p = strPtr(v);
  let n = <usize>lenOf(v);
  let neg = false;
  if (n > 0 && (load<u8>(p) == 0x2b || load<u8>(p) == 0x2d)) { neg = load<u8>(p) == 0x2d; p++; n--; }
  if (n == 0 || load<u8>(p) == 0x2d || load<u8>(p) == 0x2b) return 0;
  let text = p;
  // The mantissa needs a digit ("." and ".e1" are not numbers).
  let digit = false;
  for (let i: usize = 0; i < n; i++) {
    const c = load<u8>(p + i);
    if ((c | 0x20) == 0x65) break;
    if (c >= 0x30 && c <= 0x39) { digit = true; break; }
  }
  if (!digit) return 0;
  if (load<u8>(p) == 0x2e || (n > 1 && load<u8>(p + n - 1) == 0x2e) || hasDotBeforeExp(p, n)) {
    // Rewrite to JSON form: "0" before a leading dot, "0" after a dot without digits.
    const b = alloc(n + 2);
    let q = b;
    if (load<u8>(p) == 0x2e) store<u8>(q++, 0x30);
    for (let i: usize = 0; i < n; i++) {
      const c = load<u8>(p + i);
      store<u8>(q++, c);
      if (c == 0x2e) {
        const next = i + 1 < n ? load<u8>(p + i + 1) : 0;
        if (next < 0x30 || next > 0x39) store<u8>(q++, 0x30);
      }
    }
    text = b;
    n = q - b;
  }
  const used = scanNumber(text, text + n);
  if (used == 0 || used != n) return 0;
  if (lastInexact) failInexact();
  if (lastIsBigInt) return mkInt(neg ? -lastBigInt : lastBigInt);
  return mkNum(neg ? -lastNumber : lastNumber);
}

// ---- strings ----------------------------------------------------------------------------------

function findBytes(hp: usize, hn: u32, np: usize, nn: u32, from: u32): i32 {
  if (nn == 0) return <i32>from;
  if (nn > hn) return -1;
  const first = load<u8>(np);
  const last = hn - nn;
  for (let i = from; i <= last; i++) {
    if (load<u8>(hp + i) == first && bytesCmp(hp + i, nn, np, nn) == 0) return <i32>i;
  }
  return -1;
}

export function bi_concat(delim: usize, coll: usize): usize {
  if (!isStr(delim) || !isArrOrSet(coll)) return 0;
  const n = lenOf(coll);
  let total: usize = 0;
  for (let i: u32 = 0; i < n; i++) {
    const s = load<u32>(elems(coll) + (<usize>i << 2));
    if (!isStr(s)) return 0;
    total += lenOf(s);
  }
  if (n > 1) total += <usize>lenOf(delim) * (n - 1);
  if (total == 0) return EMPTY_STR;
  const b = alloc(total);
  let q = b;
  for (let i: u32 = 0; i < n; i++) {
    if (i > 0) { memory.copy(q, strPtr(delim), lenOf(delim)); q += lenOf(delim); }
    const s = load<u32>(elems(coll) + (<usize>i << 2));
    memory.copy(q, strPtr(s), lenOf(s));
    q += lenOf(s);
  }
  return mkStr(b, <u32>total);
}

export function bi_contains(s: usize, sub: usize): usize {
  if (!isStr(s) || !isStr(sub)) return 0;
  return mkBool(findBytes(strPtr(s), lenOf(s), strPtr(sub), lenOf(sub), 0) >= 0);
}

export function bi_startswith(s: usize, p: usize): usize {
  if (!isStr(s) || !isStr(p)) return 0;
  const n = lenOf(p);
  return mkBool(n <= lenOf(s) && bytesCmp(strPtr(s), n, strPtr(p), n) == 0);
}

export function bi_endswith(s: usize, p: usize): usize {
  if (!isStr(s) || !isStr(p)) return 0;
  const n = lenOf(p);
  const m = lenOf(s);
  return mkBool(n <= m && bytesCmp(strPtr(s) + m - n, n, strPtr(p), n) == 0);
}

/** Maps a code point above ASCII through a run table of case-table.ts. */
function mapRune(cp: u32, runs: StaticArray<i32>): u32 {
  let lo: i32 = 0;
  let hi: i32 = runs.length / 4 - 1;
  let found: i32 = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (<u32>unchecked(runs[mid << 2]) <= cp) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  if (found < 0) return cp;
  const base = found << 2;
  const first = <u32>unchecked(runs[base]);
  if (cp > <u32>unchecked(runs[base + 1])) return cp;
  if ((cp - first) % <u32>unchecked(runs[base + 3]) != 0) return cp;
  return <u32>(<i32>cp + unchecked(runs[base + 2]));
}

/** Go's strings.ToUpper/ToLower with simple (one-to-one) Unicode case mappings. */
function mapCase(v: usize, upper: bool): usize {
  if (!isStr(v)) return 0;
  const n = lenOf(v);
  const p = strPtr(v);
  let ascii = true;
  for (let i: u32 = 0; i < n; i++) if (load<u8>(p + i) >= 0x80) { ascii = false; break; }
  if (ascii) {
    const b = alloc(n);
    for (let i: u32 = 0; i < n; i++) {
      let c = load<u8>(p + i);
      if (upper) { if (c >= 0x61 && c <= 0x7a) c -= 32; }
      else if (c >= 0x41 && c <= 0x5a) c += 32;
      store<u8>(b + i, c);
    }
    return mkStr(b, n);
  }
  // A mapped code point never needs more than twice its UTF-8 length.
  const b = alloc(<usize>n * 2 + 4);
  let q = b;
  let i: u32 = 0;
  while (i < n) {
    let cp = decodeRune(p + i, n - i);
    i += runeLen;
    if (cp < 0x80) {
      if (upper) { if (cp >= 0x61 && cp <= 0x7a) cp -= 32; }
      else if (cp >= 0x41 && cp <= 0x5a) cp += 32;
    } else {
      cp = mapRune(cp, upper ? UPPER_RUNS : LOWER_RUNS);
    }
    q += putUtf8(q, cp);
  }
  return mkStr(b, <u32>(q - b));
}

export function bi_lower(v: usize): usize { return mapCase(v, false); }
export function bi_upper(v: usize): usize { return mapCase(v, true); }

let runeLen: u32 = 0;

/** Decodes the code point at p (n bytes available); sets runeLen. Invalid bytes -> U+FFFD. */
function decodeRune(p: usize, n: u32): u32 {
  const c = <u32>load<u8>(p);
  if (c < 0x80) { runeLen = 1; return c; }
  if (c >= 0xc0 && c < 0xe0 && n >= 2) { runeLen = 2; return ((c & 0x1f) << 6) | (load<u8>(p + 1) & 0x3f); }
  if (c >= 0xe0 && c < 0xf0 && n >= 3) {
    runeLen = 3;
    return ((c & 0x0f) << 12) | ((<u32>load<u8>(p + 1) & 0x3f) << 6) | (load<u8>(p + 2) & 0x3f);
  }
  if (c >= 0xf0 && n >= 4) {
    runeLen = 4;
    return ((c & 0x07) << 18) | ((<u32>load<u8>(p + 1) & 0x3f) << 12) |
      ((<u32>load<u8>(p + 2) & 0x3f) << 6) | (load<u8>(p + 3) & 0x3f);
  }
  runeLen = 1;
  return 0xfffd;
}

/** Start offset of the last code point of the n bytes at p. */
function lastRuneStart(p: usize, n: u32): u32 {
  let i = n - 1;
  while (i > 0 && (load<u8>(p + i) & 0xc0) == 0x80 && n - i < 4) i--;
  return i;
}

function inCutset(cp: u32, cut: usize): bool {
  const p = strPtr(cut);
  const n = lenOf(cut);
  let i: u32 = 0;
  while (i < n) {
    const c = decodeRune(p + i, n - i);
    if (c == cp) return true;
    i += runeLen;
  }
  return false;
}

function isSpace(cp: u32): bool {
  if (cp == 0x20 || (cp >= 0x09 && cp <= 0x0d)) return true;
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
    cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

/** Trims code points matching (cut != 0: in the cutset; cut == 0: white space). */
function trimImpl(s: usize, cut: usize, left: bool, right: bool): usize {
  const p = strPtr(s);
  let start: u32 = 0;
  let end = lenOf(s);
  if (left) {
    while (start < end) {
      const cp = decodeRune(p + start, end - start);
      if (!(cut != 0 ? inCutset(cp, cut) : isSpace(cp))) break;
      start += runeLen;
    }
  }
  if (right) {
    while (end > start) {
      const i = lastRuneStart(p + start, end - start) + start;
      const cp = decodeRune(p + i, end - i);
      if (!(cut != 0 ? inCutset(cp, cut) : isSpace(cp))) break;
      end = i;
    }
  }
  if (start == 0 && end == lenOf(s)) return s;
  return mkStr(p + start, end - start);
}

export function bi_trim(s: usize, cut: usize): usize {
  if (!isStr(s) || !isStr(cut)) return 0;
  return trimImpl(s, cut, true, true);
}

export function bi_trim_left(s: usize, cut: usize): usize {
  if (!isStr(s) || !isStr(cut)) return 0;
  return trimImpl(s, cut, true, false);
}

export function bi_trim_right(s: usize, cut: usize): usize {
  if (!isStr(s) || !isStr(cut)) return 0;
  return trimImpl(s, cut, false, true);
}

export function bi_trim_space(s: usize): usize {
  if (!isStr(s)) return 0;
  return trimImpl(s, 0, true, true);
}

export function bi_trim_prefix(s: usize, pre: usize): usize {
  if (!isStr(s) || !isStr(pre)) return 0;
  const n = lenOf(pre);
  if (n <= lenOf(s) && bytesCmp(strPtr(s), n, strPtr(pre), n) == 0) return mkStr(strPtr(s) + n, lenOf(s) - n);
  return s;
}

export function bi_trim_suffix(s: usize, suf: usize): usize {
  if (!isStr(s) || !isStr(suf)) return 0;
  const n = lenOf(suf);
  const m = lenOf(s);
  if (n <= m && bytesCmp(strPtr(s) + m - n, n, strPtr(suf), n) == 0) return mkStr(strPtr(s), m - n);
  return s;
}

export function bi_split(s: usize, d: usize): usize {
  if (!isStr(s) || !isStr(d)) return 0;
  const p = strPtr(s);
  const n = lenOf(s);
  const dn = lenOf(d);
  const r = mkArray(4);
  if (dn == 0) {
    let i: u32 = 0;
    while (i < n) {
      decodeRune(p + i, n - i);
      arrayPush(r, mkStr(p + i, runeLen));
      i += runeLen;
    }
    return r;
  }
  let from: u32 = 0;
  while (true) {
    const at = findBytes(p, n, strPtr(d), dn, from);
    if (at < 0) break;
    arrayPush(r, mkStr(p + from, <u32>at - from));
    from = <u32>at + dn;
  }
  arrayPush(r, mkStr(p + from, n - from));
  return r;
}

export function bi_replace(s: usize, old: usize, nw: usize): usize {
  if (!isStr(s) || !isStr(old) || !isStr(nw)) return 0;
  const p = strPtr(s);
  const n = lenOf(s);
  const on = lenOf(old);
  const nn = lenOf(nw);
  // Worst case size: every rune boundary gets `new` (empty `old`), or every match replaced.
  const cap = <usize>n + <usize>(n + 1) * nn;
  const b = alloc(cap);
  let q = b;
  if (on == 0) {
    let i: u32 = 0;
    memory.copy(q, strPtr(nw), nn); q += nn;
    while (i < n) {
      decodeRune(p + i, n - i);
      memory.copy(q, p + i, runeLen); q += runeLen;
      i += runeLen;
      memory.copy(q, strPtr(nw), nn); q += nn;
    }
    return mkStr(b, <u32>(q - b));
  }
  let from: u32 = 0;
  while (true) {
    const at = findBytes(p, n, strPtr(old), on, from);
    if (at < 0) break;
    memory.copy(q, p + from, <u32>at - from); q += <u32>at - from;
    memory.copy(q, strPtr(nw), nn); q += nn;
    from = <u32>at + on;
  }
  memory.copy(q, p + from, n - from); q += n - from;
  return mkStr(b, <u32>(q - b));
}

/** Byte offset of code point index `idx` (clamped to n). */
function runeOffset(p: usize, n: u32, idx: u32): u32 {
  let i: u32 = 0;
  let c: u32 = 0;
  while (i < n && c < idx) {
    decodeRune(p + i, n - i);
    i += runeLen;
    c++;
  }
  return i;
}

export function bi_substring(s: usize, start: usize, len: usize): usize {
  if (!isStr(s) || !isNum(start) || !isNum(len)) return 0;
  const st = numOf(start);
  const ln = numOf(len);
  if (!isInt(st) || !isInt(ln) || st < 0) return 0;
  const p = strPtr(s);
  const n = lenOf(s);
  if (st >= 4294967295) return EMPTY_STR;
  const a = runeOffset(p, n, <u32>st);
  if (a >= n) return EMPTY_STR;
  if (ln < 0) return mkStr(p + a, n - a);
  const b = ln >= 4294967295 ? n : a + runeOffset(p + a, n - a, <u32>ln);
  return mkStr(p + a, b - a);
}

export function bi_indexof(s: usize, sub: usize): usize {
  // OPA: an empty search string is an error ("empty search character"), hence undefined.
  if (!isStr(s) || !isStr(sub) || lenOf(sub) == 0) return 0;
  const at = findBytes(strPtr(s), lenOf(s), strPtr(sub), lenOf(sub), 0);
  if (at < 0) return mkNum(-1);
  return mkNum(<f64>runeCount(strPtr(s), <u32>at));
}

// ---- objects and arrays -------------------------------------------------------------------------

function dotAny(src: usize, key: usize): usize {
  const k = kindOf(src);
  if (k == K_OBJ) return objGet(src, key);
  if (k == K_SET) return setHas(src, key) ? key : 0;
  if (k == K_ARR && isNum(key)) {
    const x = numOf(key);
    if (x >= 0 && x < <f64>lenOf(src) && floor(x) == x) return load<u32>(elems(src) + (<usize>(<u32>x) << 2));
  }
  return 0;
}

export function bi_object_get(obj: usize, key: usize, dflt: usize): usize {
  if (kindOf(obj) != K_OBJ) return 0;
  if (kindOf(key) == K_ARR) {
    let cur = obj;
    const n = lenOf(key);
    for (let i: u32 = 0; i < n; i++) {
      cur = dotAny(cur, load<u32>(elems(key) + (<usize>i << 2)));
      if (cur == 0) return dflt;
    }
    return cur;
  }
  const v = objGet(obj, key);
  return v == 0 ? dflt : v;
}

export function bi_object_keys(obj: usize): usize {
  if (kindOf(obj) != K_OBJ) return 0;
  const n = lenOf(obj);
  const r = mkSet(n);
  memory.copy(elems(r), objKeys(obj), <usize>n << 2);
  store<u32>(r, n, 4);
  return r;
}

export function bi_object_union(a: usize, b: usize): usize {
  if (kindOf(a) != K_OBJ || kindOf(b) != K_OBJ) return 0;
  return objMerge(a, b, true);
}

export function bi_object_remove(obj: usize, keys: usize): usize {
  if (kindOf(obj) != K_OBJ) return 0;
  const kk = kindOf(keys);
  if (kk != K_ARR && kk != K_SET && kk != K_OBJ) return 0;
  const r = mkObject(lenOf(obj));
  const n = lenOf(obj);
  for (let i: u32 = 0; i < n; i++) {
    const k = load<u32>(objKeys(obj) + (<usize>i << 2));
    let drop = false;
    if (kk == K_OBJ) drop = objGet(keys, k) != 0;
    else if (kk == K_SET) drop = setHas(keys, k);
    else {
      const m = lenOf(keys);
      for (let j: u32 = 0; j < m && !drop; j++) drop = equal(load<u32>(elems(keys) + (<usize>j << 2)), k);
    }
    if (!drop) {
      const len = lenOf(r);
      store<u32>(objKeys(r) + (<usize>len << 2), k);
      store<u32>(objVals(r) + (<usize>len << 2), valAt(obj, i));
      store<u32>(r, len + 1, 4);
    }
  }
  return r;
}

export function bi_array_concat(a: usize, b: usize): usize {
  if (kindOf(a) != K_ARR || kindOf(b) != K_ARR) return 0;
  const la = lenOf(a);
  const lb = lenOf(b);
  const r = mkArray(la + lb);
  memory.copy(elems(r), elems(a), <usize>la << 2);
  memory.copy(elems(r) + (<usize>la << 2), elems(b), <usize>lb << 2);
  store<u32>(r, la + lb, 4);
  return r;
}

export function bi_array_slice(a: usize, start: usize, stop: usize): usize {
  if (kindOf(a) != K_ARR || !isNum(start) || !isNum(stop)) return 0;
  let s = numOf(start);
  let e = numOf(stop);
  if (!isInt(s) || !isInt(e)) return 0;
  const n = <f64>lenOf(a);
  if (s < 0) s = 0;
  if (e > n) e = n;
  if (s >= e) return mkArray(0);
  const cnt = <u32>(e - s);
  const r = mkArray(cnt);
  memory.copy(elems(r), elems(a) + (<usize>(<u32>s) << 2), <usize>cnt << 2);
  store<u32>(r, cnt, 4);
  return r;
}

// ---- sets -----------------------------------------------------------------------------------------

export function bi_union(sets: usize): usize {
  if (!isSet(sets)) return 0;
  const r = mkSet(4);
  const n = lenOf(sets);
  for (let i: u32 = 0; i < n; i++) {
    const s = load<u32>(elems(sets) + (<usize>i << 2));
    if (!isSet(s)) return 0;
    const m = lenOf(s);
    for (let j: u32 = 0; j < m; j++) setInsert(r, load<u32>(elems(s) + (<usize>j << 2)));
  }
  return r;
}

export function bi_intersection(sets: usize): usize {
  if (!isSet(sets)) return 0;
  const n = lenOf(sets);
  if (n == 0) return mkSet(0);
  for (let i: u32 = 0; i < n; i++) if (!isSet(load<u32>(elems(sets) + (<usize>i << 2)))) return 0;
  let r = setCopy(load<u32>(elems(sets)));
  for (let i: u32 = 1; i < n; i++) r = bi_and(r, load<u32>(elems(sets) + (<usize>i << 2)));
  return r;
}

// ---- types ------------------------------------------------------------------------------------

export function bi_is_null(v: usize): usize { return mkBool(kindOf(v) == K_NULL); }
export function bi_is_boolean(v: usize): usize { return mkBool(kindOf(v) == K_BOOL); }
export function bi_is_number(v: usize): usize { return mkBool(kindOf(v) == K_NUM); }
export function bi_is_string(v: usize): usize { return mkBool(kindOf(v) == K_STR); }
export function bi_is_array(v: usize): usize { return mkBool(kindOf(v) == K_ARR); }
export function bi_is_object(v: usize): usize { return mkBool(kindOf(v) == K_OBJ); }
export function bi_is_set(v: usize): usize { return mkBool(kindOf(v) == K_SET); }

export function bi_type_name(v: usize): usize {
  switch (kindOf(v)) {
    case K_NULL: return mkStrLit("null");
    case K_BOOL: return mkStrLit("boolean");
    case K_NUM: return mkStrLit("number");
    case K_STR: return mkStrLit("string");
    case K_ARR: return mkStrLit("array");
    case K_OBJ: return mkStrLit("object");
    case K_SET: return mkStrLit("set");
  }
  return 0;
}

// ---- encoding ---------------------------------------------------------------------------------

export function bi_json_marshal(v: usize): usize {
  return dumpJsonString(v);
}

export function bi_json_unmarshal(s: usize): usize {
  if (!isStr(s)) return 0;
  return parseJson(strPtr(s), lenOf(s));
}

// ---- more of the standard library ------------------------------------------------------------

export function bi_array_reverse(a: usize): usize {
  if (kindOf(a) != K_ARR) return 0;
  const n = lenOf(a);
  const r = mkArray(n);
  for (let i: u32 = 0; i < n; i++) store<u32>(elems(r) + (<usize>i << 2), load<u32>(elems(a) + (<usize>(n - 1 - i) << 2)));
  store<u32>(r, n, 4);
  return r;
}

export function bi_strings_reverse(s: usize): usize {
  if (!isStr(s)) return 0;
  const p = strPtr(s);
  const n = lenOf(s);
  const b = alloc(n);
  let i: u32 = 0;
  while (i < n) {
    decodeRune(p + i, n - i);
    memory.copy(b + n - i - runeLen, p + i, runeLen);
    i += runeLen;
  }
  return mkStr(b, n);
}

/** object.filter(obj, keys): the members of obj whose keys are in keys (array, set or object). */
export function bi_object_filter(obj: usize, keys: usize): usize {
  if (kindOf(obj) != K_OBJ) return 0;
  const kk = kindOf(keys);
  if (kk != K_ARR && kk != K_SET && kk != K_OBJ) return 0;
  const r = mkObject(4);
  const n = lenOf(obj);
  for (let i: u32 = 0; i < n; i++) {
    const k = load<u32>(objKeys(obj) + (<usize>i << 2));
    let keep = false;
    if (kk == K_OBJ) keep = objGet(keys, k) != 0;
    else if (kk == K_SET) keep = setHas(keys, k);
    else {
      const m = lenOf(keys);
      for (let j: u32 = 0; j < m && !keep; j++) keep = equal(load<u32>(elems(keys) + (<usize>j << 2)), k);
    }
    if (keep) objInsert(r, k, valAt(obj, i), false);
  }
  return r;
}

/** numbers.range(a, b): the integers from a to b inclusive, descending when b < a. */
export function bi_numbers_range(a: usize, b: usize): usize {
  if (!isNum(a) || !isNum(b)) return 0;
  const x = numOf(a);
  const y = numOf(b);
  if (!isInt(x) || !isInt(y)) return 0;
  const count = abs(y - x) + 1;
  if (count > 10000000) return 0;
  const n = <u32>count;
  const r = mkArray(n);
  const step: f64 = y >= x ? 1 : -1;
  for (let i: u32 = 0; i < n; i++) store<u32>(elems(r) + (<usize>i << 2), mkNum(x + step * <f64>i));
  store<u32>(r, n, 4);
  return r;
}

// ---- time -------------------------------------------------------------------------------------

function digitsAt(p: usize, n: u32): i32 {
  let v: i32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const c = <i32>load<u8>(p + i);
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + c - 0x30;
  }
  return v;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
function daysFromCivil(y: i64, m: i64, d: i64): i64 {
  y -= m <= 2 ? 1 : 0;
  const era = (y >= 0 ? y : y - 399) / 400;
  const yoe = y - era * 400;
  const doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

function daysInMonth(y: i32, m: i32): i32 {
  if (m == 2) return (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : 28;
  return m == 4 || m == 6 || m == 9 || m == 11 ? 30 : 31;
}

/** time.parse_rfc3339_ns, exact to the nanosecond (an i64, as in OPA). */
export function bi_time_parse_rfc3339_ns(s: usize): usize {
  if (!isStr(s)) return 0;
  const p = strPtr(s);
  const n = lenOf(s);
  if (n < 20) return 0;
  const y = digitsAt(p, 4);
  const mo = digitsAt(p + 5, 2);
  const d = digitsAt(p + 8, 2);
  const h = digitsAt(p + 11, 2);
  const mi = digitsAt(p + 14, 2);
  const se = digitsAt(p + 17, 2);
  if (load<u8>(p + 4) != 0x2d || load<u8>(p + 7) != 0x2d || (load<u8>(p + 10) | 0x20) != 0x74 ||
    load<u8>(p + 13) != 0x3a || load<u8>(p + 16) != 0x3a) return 0;
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59) return 0;
  if (d > daysInMonth(y, mo)) return 0;
  let i: u32 = 19;
  let frac: i64 = 0;
  if (i < n && load<u8>(p + i) == 0x2e) {
    i++;
    let digits = 0;
    while (i < n) {
      const c = <i32>load<u8>(p + i);
      if (c < 0x30 || c > 0x39) break;
      if (digits < 9) { frac = frac * 10 + <i64>(c - 0x30); digits++; }
      i++;
    }
    if (digits == 0) return 0;
    while (digits < 9) { frac *= 10; digits++; }
  }
  if (i >= n) return 0;
  let offset: i64 = 0;
  const z = load<u8>(p + i);
  if ((z | 0x20) == 0x7a) {
    i++;
  } else if (z == 0x2b || z == 0x2d) {
    if (i + 6 != n || load<u8>(p + i + 3) != 0x3a) return 0;
    const oh = digitsAt(p + i + 1, 2);
    const om = digitsAt(p + i + 4, 2);
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return 0;
    offset = (<i64>oh * 60 + <i64>om) * 60 * (z == 0x2d ? -1 : 1);
    i += 6;
  } else {
    return 0;
  }
  if (i != n) return 0;
  const secs = daysFromCivil(y, mo, d) * 86400 + <i64>h * 3600 + <i64>mi * 60 + <i64>se - offset;
  // Go's time.Time.UnixNano is undefined outside about 1678..2262; OPA then errors.
  // The exact int64 range: -9223372036854775808 (1677-09-21T00:12:43.145224192Z) to
  // 9223372036854775807 (2262-04-11T23:47:16.854775807Z), computed without overflowing.
  if (secs < -9223372037 || secs > 9223372036) return 0;
  if (secs == -9223372037 && frac < 145224192) return 0;
  if (secs == 9223372036 && frac > 854775807) return 0;
  if (secs < 0) return mkInt((secs + 1) * 1000000000 + (frac - 1000000000));
  return mkInt(secs * 1000000000 + frac);
}
