// Object, array and set builtins, and the rest (`bi_object_*`, `bi_array_*`, `bi_union`, ...).

import { alloc, fatal } from "./memory";
import {
  K_NULL, K_BOOL, K_NUM, K_STR, K_ARR, K_OBJ, K_SET, kindOf, lenOf, numOf, strPtr, elems, objKeys,
  objVals, valAt, mkBool, mkNum, mkStr, mkStrLit, mkArray, mkObject, mkSet, setInsert, setHas,
  objGet, objInsert, objMerge, setCopy, equal, mkInt,
} from "./value";

import { parseJson, parseTyped, dumpJsonString, dumpTypedString } from "./json";
import { isNum, isStr, isSet, isInt } from "./builtins-common";
import { bi_and } from "./builtins-ops";
import { decodeRune, runeLen } from "./builtins-strings";

// ---- objects and arrays -------------------------------------------------------------------------

export function dotAny(src: usize, key: usize): usize {
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

// OPA's array.flatten: array elements are unpacked one level, anything else (sets too) kept.
export function bi_array_flatten(a: usize): usize {
  if (kindOf(a) != K_ARR) return 0;
  const n = lenOf(a);
  let total: u64 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const x = load<u32>(elems(a) + (<usize>i << 2));
    total += kindOf(x) == K_ARR ? <u64>lenOf(x) : 1;
  }
  if (total > 0x3fffffff) fatal("array.flatten: result beyond the runtime's array size");
  const r = mkArray(<u32>total);
  let at = elems(r);
  for (let i: u32 = 0; i < n; i++) {
    const x = load<u32>(elems(a) + (<usize>i << 2));
    if (kindOf(x) == K_ARR) {
      const m = <usize>lenOf(x) << 2;
      memory.copy(at, elems(x), m);
      at += m;
    } else {
      store<u32>(at, x);
      at += 4;
    }
  }
  store<u32>(r, <u32>total, 4);
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

// Typed text for the host builtins in HOST_TYPED_JSON (builtins.ts): JSON with sets as `<...>`.
export function bi_internal_typed_marshal(v: usize): usize {
  return dumpTypedString(v);
}

export function bi_internal_typed_unmarshal(s: usize): usize {
  if (!isStr(s)) return 0;
  const v = parseTyped(strPtr(s), lenOf(s));
  // The text comes from Arbiter's own host code: malformed text is a bug, never "undefined".
  if (v == 0) fatal("internal error: a builtin implemented in JavaScript answered malformed typed text");
  return v;
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

export function digitsAt(p: usize, n: u32): i32 {
  let v: i32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const c = <i32>load<u8>(p + i);
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + c - 0x30;
  }
  return v;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
export function daysFromCivil(y: i64, m: i64, d: i64): i64 {
  y -= m <= 2 ? 1 : 0;
  const era = (y >= 0 ? y : y - 399) / 400;
  const yoe = y - era * 400;
  const doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

export function daysInMonth(y: i32, m: i32): i32 {
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
