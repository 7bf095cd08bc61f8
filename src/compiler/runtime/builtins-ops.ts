// Operators, aggregates and number builtins (`bi_plus`, `bi_count`, `bi_to_number`, ...).

import { alloc, fatal } from "./memory";
import {
  K_NULL, K_BOOL, K_NUM, K_STR, K_ARR, K_OBJ, K_SET, TRUE_V, FALSE_V, kindOf, lenOf, numOf, strPtr,
  elems, objVals, mkBool, mkNum, mkArray, mkSet, setInsert, setHas, objGet, setCopy, compare,
  equal, mkInt, asInt, intValue, EXACT_F64,
} from "./value";

import {
  scanNumber, lastNumber, lastIsBigInt, lastBigInt, lastInexact, failInexact, toF64,
} from "./json";
import { isNum, isSet, isInt } from "./builtins-common";

// ---- operators --------------------------------------------------------------------------------

/**
 * Decimal-friendly rounding of an arithmetic result. OPA computes non-integer arithmetic with
 * 64-bit-mantissa big.Floats and prints the shortest decimal at that precision, so
 * `0.1 + 0.2 == 0.3` holds there while f64 gives 0.30000000000000004. A result within two f64
 * ulps of a 15-significant-digit decimal is snapped to that decimal, which reproduces OPA on
 * such sums and products (documented approximation: OPA's 64-bit results are not modelled).
 */
export function arith(x: f64): usize {
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
export function pow10(e: i32): f64 {
  return Math.pow(10, <f64>e);
}

/**
 * Exact integer arithmetic when both operands are integers and the f64 result would leave the
 * exactly representable range; op 0 add, 1 subtract, 2 multiply. Returns 0 when not applicable
 * (or on i64 overflow), and the caller falls back to f64.
 */
export function bigIntOp(a: usize, b: usize, r: f64, op: i32): usize {
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
export function runeCount(p: usize, n: u32): u32 {
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

export function isArrOrSet(v: usize): bool {
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

// OPA multiplies integers exactly (big.Int) and other numbers as 64-bit-mantissa big floats.
// Exact i64 products are answered; beyond i64, or with a non-integer, the evaluation fails.
export function bi_product(v: usize): usize {
  if (!isArrOrSet(v)) return 0;
  const n = lenOf(v);
  let ints = true;
  let zero = false;
  for (let i: u32 = 0; i < n; i++) {
    const x = load<u32>(elems(v) + (<usize>i << 2));
    if (!isNum(x)) return 0; // OPA: operand 1 must be an array or set of numbers
    if (!asInt(x)) ints = false;
    else if (intValue() == 0) zero = true;
  }
  if (!ints) fatal("product of numbers that are not all integers: OPA multiplies them as 64-bit-mantissa big floats, which Arbiter does not reproduce; refused rather than answer with another number");
  if (zero) return mkNum(0);
  let p: i64 = 1;
  for (let i: u32 = 0; i < n; i++) {
    asInt(load<u32>(elems(v) + (<usize>i << 2)));
    const y = intValue();
    const r = p * y;
    const over = p == -1 ? y == i64.MIN_VALUE : y == -1 ? p == i64.MIN_VALUE : r / y != p;
    if (over) fatal("product beyond 64-bit integers: OPA's is exact (arbitrary precision), so Arbiter refuses rather than answer with another number");
    p = r;
  }
  return mkInt(p);
}

export function extreme(v: usize, sign: i32): usize {
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
export function sortAddrs(base: usize, n: u32): void {
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
export function hasDotBeforeExp(p: usize, n: usize): bool {
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
