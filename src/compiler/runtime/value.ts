// Value representation. Every value is a small header in linear memory; a value's address is
// what the generated code passes around (0 = undefined).
//
//   null    [kind]
//   boolean [kind, b:u32@4]
//   number  [kind, big:u32@4, f64@8]      (OPA's arbitrary precision is modelled as f64;
//                                          big = 1: an exact integer beyond 2^53 as i64@8)
//   string  [kind, len:u32@4, ptr:u32@8]  (UTF-8 bytes, often pointing into the JSON text)
//   array   [kind, len@4, cap@8, elems@12]
//   object  [kind, len@4, cap@8, keys@12, vals@16]  keys sorted by `compare`
//   set     [kind, len@4, cap@8, elems@12]          elements sorted by `compare`
//
// Objects and sets are kept sorted, so lookups are binary searches and iteration and dumps
// follow OPA's canonical order without a sort at the end.

import { alloc, extendLast, fatal } from "./memory";

export const K_NULL: u32 = 1;
export const K_BOOL: u32 = 2;
export const K_NUM: u32 = 3;
export const K_STR: u32 = 4;
export const K_ARR: u32 = 5;
export const K_OBJ: u32 = 6;
export const K_SET: u32 = 7;

export const NULL_V: usize = memory.data<u32>([1, 0]);
export const FALSE_V: usize = memory.data<u32>([2, 0]);
export const TRUE_V: usize = memory.data<u32>([2, 1]);
export const EMPTY_STR: usize = memory.data<u32>([4, 0, 0, 0]);

const SMALL_INTS: i32 = 1024;
const smallInts: usize = memory.data(SMALL_INTS * 16, 8);

export function initValues(): void {
  for (let i = 0; i < SMALL_INTS; i++) {
    const p = smallInts + (<usize>i << 4);
    store<u32>(p, K_NUM);
    store<f64>(p, <f64>i, 8);
  }
}

// @ts-ignore: decorator
@inline export function kindOf(v: usize): u32 {
  return load<u8>(v);
}

// @ts-ignore: decorator
@inline export function lenOf(v: usize): u32 {
  return load<u32>(v, 4);
}

// @ts-ignore: decorator
@inline export function numOf(v: usize): f64 {
  return load<u32>(v, 4) != 0 ? <f64>load<i64>(v, 8) : load<f64>(v, 8);
}

/** 2^53: integers up to this magnitude are exact in f64. */
export const EXACT_F64: f64 = 9007199254740992;

/** An exact integer: a plain number when f64 holds it exactly, else the i64 form. */
export function mkInt(i: i64): usize {
  if (i >= -9007199254740992 && i <= 9007199254740992) return mkNum(<f64>i);
  const p = alloc(16);
  store<u32>(p, K_NUM);
  store<u32>(p, 1, 4);
  store<i64>(p, i, 8);
  return p;
}

let intOut: i64 = 0;

/** True when the number is an integer that i64 holds (result in `intValue()`). */
export function asInt(v: usize): bool {
  if (load<u32>(v, 4) != 0) { intOut = load<i64>(v, 8); return true; }
  const x = load<f64>(v, 8);
  if (floor(x) != x || !(abs(x) < 9.2e18)) return false;
  intOut = <i64>x;
  return true;
}

export function intValue(): i64 {
  return intOut;
}

/** Numeric order, exact when both are integers. */
export function numCompare(a: usize, b: usize): i32 {
  if ((load<u32>(a, 4) | load<u32>(b, 4)) != 0 && asInt(a)) {
    const x = intOut;
    if (asInt(b)) {
      const y = intOut;
      return x < y ? -1 : (x > y ? 1 : 0);
    }
  }
  const x = numOf(a);
  const y = numOf(b);
  return x < y ? -1 : (x > y ? 1 : 0);
}

// @ts-ignore: decorator
@inline export function strPtr(v: usize): usize {
  return load<u32>(v, 8);
}

// @ts-ignore: decorator
@inline export function elems(v: usize): usize {
  return load<u32>(v, 12);
}

// @ts-ignore: decorator
@inline export function objKeys(v: usize): usize {
  return load<u32>(v, 12);
}

// @ts-ignore: decorator
@inline export function objVals(v: usize): usize {
  return load<u32>(v, 16);
}

// @ts-ignore: decorator
@inline export function elemAt(arr: usize, i: u32): usize {
  return load<u32>(<usize>load<u32>(arr, 12) + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline export function valAt(obj: usize, i: u32): usize {
  return load<u32>(<usize>load<u32>(obj, 16) + (<usize>i << 2));
}

export function mkBool(b: bool): usize {
  return b ? TRUE_V : FALSE_V;
}

export function mkNum(x: f64): usize {
  if (x >= 0 && x < <f64>SMALL_INTS) {
    const i = <i32>x;
    if (<f64>i == x && !(x == 0 && 1 / x < 0)) return smallInts + (<usize>i << 4);
  }
  const p = alloc(16);
  store<u32>(p, K_NUM);
  store<u32>(p, 0, 4);
  store<f64>(p, x, 8);
  return p;
}

export function mkStr(ptr: usize, len: u32): usize {
  if (len == 0) return EMPTY_STR;
  const p = alloc(12);
  store<u32>(p, K_STR);
  store<u32>(p, len, 4);
  store<u32>(p, ptr, 8);
  return p;
}

/** A string value with a fresh copy of `len` bytes. */
export function mkStrCopy(src: usize, len: u32): usize {
  if (len == 0) return EMPTY_STR;
  const b = alloc(len);
  memory.copy(b, src, len);
  return mkStr(b, len);
}

/** A string value from an ASCII AssemblyScript literal. */
export function mkStrLit(s: string): usize {
  const n = s.length;
  const b = alloc(<usize>n);
  for (let i = 0; i < n; i++) store<u8>(b + i, <u8>s.charCodeAt(i));
  return mkStr(b, n);
}

export function mkArray(cap: u32): usize {
  if (cap < 4) cap = 4;
  const p = alloc(16 + (<usize>cap << 2));
  store<u32>(p, K_ARR);
  store<u32>(p, 0, 4);
  store<u32>(p, cap, 8);
  store<u32>(p, p + 16, 12);
  return p;
}

export function mkObject(cap: u32): usize {
  if (cap < 4) cap = 4;
  const p = alloc(24 + (<usize>cap << 3));
  store<u32>(p, K_OBJ);
  store<u32>(p, 0, 4);
  store<u32>(p, cap, 8);
  store<u32>(p, p + 24, 12);
  store<u32>(p, p + 24 + (<usize>cap << 2), 16);
  return p;
}

export function mkSet(cap: u32): usize {
  if (cap < 4) cap = 4;
  const p = alloc(16 + (<usize>cap << 2));
  store<u32>(p, K_SET);
  store<u32>(p, 0, 4);
  store<u32>(p, cap, 8);
  store<u32>(p, p + 16, 12);
  return p;
}

/** Grows the element buffer at offset 12 (arrays and sets) to hold one more element. */
function growElems(v: usize): void {
  const len = lenOf(v);
  const cap = load<u32>(v, 8);
  if (len < cap) return;
  const ncap = cap * 2;
  const old = elems(v);
  if (extendLast(old, <usize>cap << 2, <usize>ncap << 2)) {
    store<u32>(v, ncap, 8);
    return;
  }
  const nb = alloc(<usize>ncap << 2);
  memory.copy(nb, old, <usize>len << 2);
  store<u32>(v, ncap, 8);
  store<u32>(v, nb, 12);
}

export function arrayPush(arr: usize, x: usize): void {
  growElems(arr);
  const len = lenOf(arr);
  store<u32>(elems(arr) + (<usize>len << 2), x);
  store<u32>(arr, len + 1, 4);
}

// ---- ordering -----------------------------------------------------------------------------

export function bytesCmp(pa: usize, la: u32, pb: usize, lb: u32): i32 {
  const n = la < lb ? la : lb;
  let i: u32 = 0;
  while (i + 8 <= n) {
    const x = load<u64>(pa + i);
    const y = load<u64>(pb + i);
    if (x != y) break;
    i += 8;
  }
  while (i < n) {
    const x = load<u8>(pa + i);
    const y = load<u8>(pb + i);
    if (x != y) return x < y ? -1 : 1;
    i++;
  }
  return la == lb ? 0 : (la < lb ? -1 : 1);
}

export function strCmp(a: usize, b: usize): i32 {
  return bytesCmp(strPtr(a), lenOf(a), strPtr(b), lenOf(b));
}

export function strEq(a: usize, b: usize): bool {
  const n = lenOf(a);
  if (n != lenOf(b)) return false;
  return bytesCmp(strPtr(a), n, strPtr(b), n) == 0;
}

/** OPA's total order: null < booleans < numbers < strings < arrays < objects < sets. */
export function compare(a: usize, b: usize): i32 {
  if (a == b) return 0;
  const ka = kindOf(a);
  const kb = kindOf(b);
  if (ka != kb) return ka < kb ? -1 : 1;
  switch (ka) {
    case K_NULL:
      return 0;
    case K_BOOL: {
      const x = load<u32>(a, 4);
      const y = load<u32>(b, 4);
      return x == y ? 0 : (x < y ? -1 : 1);
    }
    case K_NUM:
      return numCompare(a, b);
    case K_STR:
      return strCmp(a, b);
    case K_ARR:
    case K_SET: {
      const la = lenOf(a);
      const lb = lenOf(b);
      const n = la < lb ? la : lb;
      const ea = elems(a);
      const eb = elems(b);
      for (let i: u32 = 0; i < n; i++) {
        const c = compare(load<u32>(ea + (<usize>i << 2)), load<u32>(eb + (<usize>i << 2)));
        if (c != 0) return c;
      }
      return la == lb ? 0 : (la < lb ? -1 : 1);
    }
    case K_OBJ: {
      const la = lenOf(a);
      const lb = lenOf(b);
      const n = la < lb ? la : lb;
      for (let i: u32 = 0; i < n; i++) {
        const off = <usize>i << 2;
        let c = compare(load<u32>(objKeys(a) + off), load<u32>(objKeys(b) + off));
        if (c != 0) return c;
        c = compare(load<u32>(objVals(a) + off), load<u32>(objVals(b) + off));
        if (c != 0) return c;
      }
      return la == lb ? 0 : (la < lb ? -1 : 1);
    }
  }
  return 0;
}

export function equal(a: usize, b: usize): bool {
  if (a == b) return true;
  const k = kindOf(a);
  if (k != kindOf(b)) return false;
  if (k == K_NUM) return numCompare(a, b) == 0;
  if (k == K_STR) return strEq(a, b);
  if (k >= K_ARR && lenOf(a) != lenOf(b)) return false;
  return compare(a, b) == 0;
}

// ---- sorted collections -------------------------------------------------------------------

/**
 * Binary search in a sorted address array. Returns the index when found, otherwise
 * -(insertion point) - 1.
 */
export function search(base: usize, len: u32, key: usize): i32 {
  let lo: i32 = 0;
  let hi: i32 = <i32>len - 1;
  if (kindOf(key) == K_STR) {
    const kp = strPtr(key);
    const kl = lenOf(key);
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const m = load<u32>(base + (<usize>mid << 2));
      let c: i32;
      if (kindOf(m) == K_STR) c = bytesCmp(strPtr(m), lenOf(m), kp, kl);
      else c = kindOf(m) < K_STR ? -1 : 1;
      if (c == 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -lo - 1;
  }
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const c = compare(load<u32>(base + (<usize>mid << 2)), key);
    if (c == 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -lo - 1;
}

export function objGet(obj: usize, key: usize): usize {
  const i = search(objKeys(obj), lenOf(obj), key);
  return i < 0 ? 0 : valAt(obj, <u32>i);
}

export function setHas(set: usize, x: usize): bool {
  return search(elems(set), lenOf(set), x) >= 0;
}

/** Inserts into a set, keeping it sorted; duplicates are ignored. */
export function setInsert(set: usize, x: usize): void {
  const len = lenOf(set);
  let pos: i32;
  if (len > 0 && compare(load<u32>(elems(set) + (<usize>(len - 1) << 2)), x) < 0) {
    pos = <i32>len;
  } else {
    const i = search(elems(set), len, x);
    if (i >= 0) return;
    pos = -i - 1;
  }
  growElems(set);
  const e = elems(set);
  const at = e + (<usize>pos << 2);
  memory.copy(at + 4, at, <usize>(len - <u32>pos) << 2);
  store<u32>(at, x);
  store<u32>(set, len + 1, 4);
}

function growObject(obj: usize): void {
  const len = lenOf(obj);
  const cap = load<u32>(obj, 8);
  if (len < cap) return;
  const ncap = cap * 2;
  const nk = alloc(<usize>ncap << 3);
  const nv = nk + (<usize>ncap << 2);
  memory.copy(nk, objKeys(obj), <usize>len << 2);
  memory.copy(nv, objVals(obj), <usize>len << 2);
  store<u32>(obj, ncap, 8);
  store<u32>(obj, nk, 12);
  store<u32>(obj, nv, 16);
}

/**
 * Inserts key -> val. mode 0: overwrite; mode 1: keep an existing equal value, report a
 * conflict (return false) for a different one.
 */
export function objInsert(obj: usize, key: usize, val: usize, once: bool): bool {
  const len = lenOf(obj);
  let pos: i32;
  if (len > 0 && compare(load<u32>(objKeys(obj) + (<usize>(len - 1) << 2)), key) < 0) {
    pos = <i32>len;
  } else {
    const i = search(objKeys(obj), len, key);
    if (i >= 0) {
      const at = objVals(obj) + (<usize>i << 2);
      if (once) return equal(load<u32>(at), val);
      store<u32>(at, val);
      return true;
    }
    pos = -i - 1;
  }
  growObject(obj);
  const off = <usize>pos << 2;
  const tail = <usize>(len - <u32>pos) << 2;
  const k = objKeys(obj) + off;
  const v = objVals(obj) + off;
  memory.copy(k + 4, k, tail);
  memory.copy(v + 4, v, tail);
  store<u32>(k, key);
  store<u32>(v, val);
  store<u32>(obj, len + 1, 4);
  return true;
}

/** A shallow copy of an object (fresh key/value buffers). */
export function objCopy(obj: usize): usize {
  const len = lenOf(obj);
  const r = mkObject(len);
  memory.copy(objKeys(r), objKeys(obj), <usize>len << 2);
  memory.copy(objVals(r), objVals(obj), <usize>len << 2);
  store<u32>(r, len, 4);
  return r;
}

export function setCopy(set: usize): usize {
  const len = lenOf(set);
  const r = mkSet(len);
  memory.copy(elems(r), elems(set), <usize>len << 2);
  store<u32>(r, len, 4);
  return r;
}

/**
 * Deep merge of b into a copy of a: objects merge recursively, otherwise b wins when
 * `bWins`, else a conflict returns 0.
 */
export function objMerge(a: usize, b: usize, bWins: bool): usize {
  const r = objCopy(a);
  const n = lenOf(b);
  for (let i: u32 = 0; i < n; i++) {
    const k = load<u32>(objKeys(b) + (<usize>i << 2));
    const v = valAt(b, i);
    const existing = objGet(r, k);
    if (existing == 0) {
      objInsert(r, k, v, false);
    } else if (kindOf(existing) == K_OBJ && kindOf(v) == K_OBJ) {
      const m = objMerge(existing, v, bWins);
      if (m == 0) return 0;
      objInsert(r, k, m, false);
    } else if (bWins) {
      objInsert(r, k, v, false);
    } else if (!equal(existing, v)) {
      return 0;
    }
  }
  return r;
}

export function fatalIfNot(cond: bool, msg: string): void {
  if (!cond) fatal(msg);
}
