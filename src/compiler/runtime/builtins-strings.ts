// String builtins (`bi_concat`, `bi_lower`, `bi_trim*`, `bi_split`, `bi_substring`, ...).

import { alloc } from "./memory";
import {
  EMPTY_STR, lenOf, numOf, strPtr, elems, mkBool, mkNum, mkStr, mkArray, arrayPush, bytesCmp,
  search,
} from "./value";
import { UPPER_RUNS, LOWER_RUNS } from "./case-table";
import { putUtf8 } from "./json";
import { isNum, isStr, isInt } from "./builtins-common";
import { isArrOrSet, runeCount } from "./builtins-ops";

// ---- strings ----------------------------------------------------------------------------------

export function findBytes(hp: usize, hn: u32, np: usize, nn: u32, from: u32): i32 {
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
export function mapRune(cp: u32, runs: StaticArray<i32>): u32 {
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
export function mapCase(v: usize, upper: bool): usize {
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

export let runeLen: u32 = 0;

/** Decodes the code point at p (n bytes available); sets runeLen. Invalid bytes -> U+FFFD. */
export function decodeRune(p: usize, n: u32): u32 {
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
export function lastRuneStart(p: usize, n: u32): u32 {
  let i = n - 1;
  while (i > 0 && (load<u8>(p + i) & 0xc0) == 0x80 && n - i < 4) i--;
  return i;
}

export function inCutset(cp: u32, cut: usize): bool {
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

export function isSpace(cp: u32): bool {
  if (cp == 0x20 || (cp >= 0x09 && cp <= 0x0d)) return true;
  if (cp < 0x85) return false;
  return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
    cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

/** Trims code points matching (cut != 0: in the cutset; cut == 0: white space). */
export function trimImpl(s: usize, cut: usize, left: bool, right: bool): usize {
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
export function runeOffset(p: usize, n: u32, idx: u32): u32 {
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
