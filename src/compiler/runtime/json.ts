// JSON text <-> values. Parsing is zero-copy for strings without escapes (the string points
// into the source text, which the SDK keeps alive for as long as the value is used).

import { alloc, extendLast, fatal } from "./memory";
import {
  K_NULL, K_BOOL, K_NUM, K_STR, K_ARR, K_OBJ, K_SET, NULL_V, TRUE_V, FALSE_V,
  kindOf, lenOf, numOf, strPtr, elems, objKeys, objVals,
  mkNum, mkInt, mkStr, mkArray, mkObject, arrayPush, objInsert,
} from "./value";
import { dtoa_buffered } from "util/number";
import { POW10_128 } from "./pow10-table";

let pp: usize = 0;
let pend: usize = 0;
let perr: bool = false;
let depth: i32 = 0;

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

/** Writes code point `cp` as UTF-8 at `q`; returns the number of bytes. */
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

// Correctly rounded powers of ten 1e0..1e308 (the compiler rounds each literal).
const POW10: StaticArray<f64> = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29, 1e30, 1e31, 1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38, 1e39, 1e40, 1e41, 1e42, 1e43, 1e44, 1e45, 1e46, 1e47, 1e48, 1e49, 1e50, 1e51, 1e52, 1e53, 1e54, 1e55, 1e56, 1e57, 1e58, 1e59, 1e60, 1e61, 1e62, 1e63, 1e64, 1e65, 1e66, 1e67, 1e68, 1e69, 1e70, 1e71, 1e72, 1e73, 1e74, 1e75, 1e76, 1e77, 1e78, 1e79, 1e80, 1e81, 1e82, 1e83, 1e84, 1e85, 1e86, 1e87, 1e88, 1e89, 1e90, 1e91, 1e92, 1e93, 1e94, 1e95, 1e96, 1e97, 1e98, 1e99, 1e100, 1e101, 1e102, 1e103, 1e104, 1e105, 1e106, 1e107, 1e108, 1e109, 1e110, 1e111, 1e112, 1e113, 1e114, 1e115, 1e116, 1e117, 1e118, 1e119, 1e120, 1e121, 1e122, 1e123, 1e124, 1e125, 1e126, 1e127, 1e128, 1e129, 1e130, 1e131, 1e132, 1e133, 1e134, 1e135, 1e136, 1e137, 1e138, 1e139, 1e140, 1e141, 1e142, 1e143, 1e144, 1e145, 1e146, 1e147, 1e148, 1e149, 1e150, 1e151, 1e152, 1e153, 1e154, 1e155, 1e156, 1e157, 1e158, 1e159, 1e160, 1e161, 1e162, 1e163, 1e164, 1e165, 1e166, 1e167, 1e168, 1e169, 1e170, 1e171, 1e172, 1e173, 1e174, 1e175, 1e176, 1e177, 1e178, 1e179, 1e180, 1e181, 1e182, 1e183, 1e184, 1e185, 1e186, 1e187, 1e188, 1e189, 1e190, 1e191, 1e192, 1e193, 1e194, 1e195, 1e196, 1e197, 1e198, 1e199, 1e200, 1e201, 1e202, 1e203, 1e204, 1e205, 1e206, 1e207, 1e208, 1e209, 1e210, 1e211, 1e212, 1e213, 1e214, 1e215, 1e216, 1e217, 1e218, 1e219, 1e220, 1e221, 1e222, 1e223, 1e224, 1e225, 1e226, 1e227, 1e228, 1e229, 1e230, 1e231, 1e232, 1e233, 1e234, 1e235, 1e236, 1e237, 1e238, 1e239, 1e240, 1e241, 1e242, 1e243, 1e244, 1e245, 1e246, 1e247, 1e248, 1e249, 1e250, 1e251, 1e252, 1e253, 1e254, 1e255, 1e256, 1e257, 1e258, 1e259, 1e260, 1e261, 1e262, 1e263, 1e264, 1e265, 1e266, 1e267, 1e268, 1e269, 1e270, 1e271, 1e272, 1e273, 1e274, 1e275, 1e276, 1e277, 1e278, 1e279, 1e280, 1e281, 1e282, 1e283, 1e284, 1e285, 1e286, 1e287, 1e288, 1e289, 1e290, 1e291, 1e292, 1e293, 1e294, 1e295, 1e296, 1e297, 1e298, 1e299, 1e300, 1e301, 1e302, 1e303, 1e304, 1e305, 1e306, 1e307, 1e308];

/**
 * m * 10^e with one rounding of the power and one of the product or quotient: exact when m is
 * below 2^53 and |e| <= 22, otherwise within an ulp or so (documented gap: not always the
 * correctly rounded nearest f64, as Go's parser would give).
 */
function scale(m: f64, e: i32): f64 {
  if (m == 0) return 0;
  if (e >= 0) {
    if (e > 308) return m * 1e308 * (e - 308 > 308 ? Infinity : unchecked(POW10[e - 308]));
    return m * unchecked(POW10[e]);
  }
  e = -e;
  if (e > 308) {
    const r = m / 1e308;
    return e - 308 > 308 ? 0 : r / unchecked(POW10[e - 308]);
  }
  return m / unchecked(POW10[e]);
}


let mulHi: u64 = 0;

/** Low 64 bits of a * b; the high 64 bits go to `mulHi`. */
function mul64(a: u64, b: u64): u64 {
  const aLo = a & 0xffffffff;
  const aHi = a >> 32;
  const bLo = b & 0xffffffff;
  const bHi = b >> 32;
  const p0 = aLo * bLo;
  const p1 = aLo * bHi;
  const p2 = aHi * bLo;
  const p3 = aHi * bHi;
  const mid = (p0 >> 32) + (p1 & 0xffffffff) + (p2 & 0xffffffff);
  mulHi = p3 + (p1 >> 32) + (p2 >> 32) + (mid >> 32);
  return (mid << 32) | (p0 & 0xffffffff);
}

let elOk: bool = false;

/**
 * Eisel-Lemire: the correctly rounded f64 nearest man * 10^exp10, or elOk = false when the
 * 128-bit approximation cannot decide (then the caller falls back).
 */
function eiselLemire(man: u64, exp10: i32): f64 {
  elOk = true;
  if (man == 0) return 0;
  if (exp10 < -348 || exp10 > 347) { elOk = false; return 0; }
  const lz = clz<u64>(man);
  man <<= lz;
  // Computed in i32 on purpose: in a u64 context AssemblyScript would shift logically.
  const approx: i32 = ((217706 * exp10) >> 16) + 64 + 1023;
  let retExp2: u64 = <u64>approx - lz;
  const row = <i32>(exp10 + 348) << 1;
  let xLo = mul64(man, unchecked(POW10_128[row + 1]));
  let xHi = mulHi;
  if ((xHi & 0x1ff) == 0x1ff && xLo + man < man) {
    const yLo = mul64(man, unchecked(POW10_128[row]));
    const yHi = mulHi;
    let mergedHi = xHi;
    const mergedLo = xLo + yHi;
    if (mergedLo < xLo) mergedHi++;
    if ((mergedHi & 0x1ff) == 0x1ff && mergedLo + 1 == 0 && yLo + man < man) { elOk = false; return 0; }
    xHi = mergedHi;
    xLo = mergedLo;
  }
  const msb = xHi >> 63;
  let retMantissa = xHi >> (msb + 9);
  retExp2 -= 1 ^ msb;
  if (xLo == 0 && (xHi & 0x1ff) == 0 && (retMantissa & 3) == 1) { elOk = false; return 0; }
  retMantissa += retMantissa & 1;
  retMantissa >>= 1;
  if ((retMantissa >> 53) > 0) { retMantissa >>= 1; retExp2 += 1; }
  if (retExp2 - 1 >= 0x7ff - 1) { elOk = false; return 0; }
  return reinterpret<f64>((retExp2 << 52) | (retMantissa & 0x000fffffffffffff));
}

/** man * 10^exp10, correctly rounded except in rare cases Eisel-Lemire cannot decide. */
export function toF64(man: u64, exp10: i32, truncated: bool): f64 {
  if (!truncated && man <= (<u64>1 << 53) && exp10 >= -22 && exp10 <= 22) return scale(<f64>man, exp10);
  const x = eiselLemire(man, exp10);
  if (elOk) {
    if (!truncated) return x;
    const y = eiselLemire(man + 1, exp10);
    if (elOk && y == x) return x;
  }
  if (exp10 < 0 && exp10 >= -19) {
    // Integer and fractional parts separately: exact whenever both parts and their sum are
    // representable (e.g. 3954479978528120.5, where the product path would round twice).
    const p = <u64>unchecked(POW10[-exp10]);
    const q = man / p;
    if (q <= (<u64>1 << 53)) return <f64>q + <f64>(man % p) / unchecked(POW10[-exp10]);
  }
  return scale(<f64>man, exp10);
}

/**
 * Parses a JSON number at [p, end); returns the number of bytes consumed (0 if none) and
 * leaves the value in `lastNumber`. Exact for up to 19 significant digits and decimal
 * exponents within ±22 of them (Clinger's fast path); otherwise the nearest f64 within a few ulps.
 */
export let lastNumber: f64 = 0;
/** Set by scanNumber for an integer literal beyond 2^53 that i64 holds exactly. */
export let lastIsBigInt: bool = false;
export let lastBigInt: i64 = 0;
/**
 * Set by scanNumber when the runtime cannot hold the number exactly where OPA (arbitrary
 * precision) would: an integer literal beyond 64 bits, or a magnitude beyond f64.
 */
export let lastInexact: bool = false;

/** Aborts the evaluation: OPA would keep this number exactly, the runtime cannot. */
export function failInexact(): void {
  fatal("number beyond the runtime's exact range (64-bit integers, 64-bit floats); OPA's numbers are arbitrary precision, so Arbiter refuses rather than answer with another number");
}

export function scanNumber(p: usize, end: usize): usize {
  let s = p;
  let neg = false;
  if (s < end && load<u8>(s) == 0x2d) { neg = true; s++; }
  if (s >= end) return 0;
  let c = load<u8>(s);
  if (c < 0x30 || c > 0x39) return 0;
  let mant: u64 = 0;
  let digits: i32 = 0;
  let exp: i32 = 0;
  let truncated = false;
  let integral = true;
  if (c == 0x30) {
    s++;
  } else {
    while (s < end) {
      c = load<u8>(s);
      if (c < 0x30 || c > 0x39) break;
      if (digits < 19) { mant = mant * 10 + <u64>(c - 0x30); digits++; } else { exp++; if (c != 0x30) truncated = true; }
      s++;
    }
  }
  if (s < end && load<u8>(s) == 0x2e) {
    s++;
    integral = false;
    const fs = s;
    while (s < end) {
      c = load<u8>(s);
      if (c < 0x30 || c > 0x39) break;
      if (digits < 19) {
        if (mant != 0 || c != 0x30) { mant = mant * 10 + <u64>(c - 0x30); digits++; }
        exp--;
      } else if (c != 0x30) truncated = true;
      s++;
    }
    if (s == fs) return 0;
  }
  if (s < end && (load<u8>(s) | 0x20) == 0x65) {
    s++;
    let eneg = false;
    integral = false;
    if (s < end && (load<u8>(s) == 0x2b || load<u8>(s) == 0x2d)) { eneg = load<u8>(s) == 0x2d; s++; }
    const es = s;
    let ev: i32 = 0;
    while (s < end) {
      c = load<u8>(s);
      if (c < 0x30 || c > 0x39) break;
      if (ev < 100000) ev = ev * 10 + <i32>(c - 0x30);
      s++;
    }
    if (s == es) return 0;
    exp += eneg ? -ev : ev;
  }
  const x = toF64(mant, exp, truncated);
  lastNumber = neg ? -x : x;
  // Integer literals of 16 to 19 digits beyond 2^53 keep their exact value.
  lastIsBigInt = false;
  lastInexact = !isFinite(x);
  if (integral && (exp > 0 || truncated)) lastInexact = truncated || !exactPow10Product(mant, exp);
  if (exp == 0 && !truncated && mant > (<u64>1 << 53)) {
    if (mant <= <u64>i64.MAX_VALUE) {
      lastIsBigInt = true;
      lastBigInt = neg ? -<i64>mant : <i64>mant;
    } else if (neg && mant == (<u64>1 << 63)) {
      lastIsBigInt = true;
      lastBigInt = i64.MIN_VALUE;
    } else if (integral) {
      lastInexact = true;
    }
  }
  return s - p;
}

/** True when mant * 10^exp is an integer an f64 holds exactly (its odd part fits in 53 bits). */
function exactPow10Product(mant: u64, exp: i32): bool {
  if (mant == 0) return true;
  let m = mant;
  while ((m & 1) == 0) m >>= 1;
  if (m > (<u64>1 << 53)) return false;
  for (let i = 0; i < exp; i++) {
    m *= 5;
    if (m > (<u64>1 << 53)) return false;
  }
  return exp < 1024;
}

function parseNumber(): usize {
  const n = scanNumber(pp, pend);
  if (n == 0) { perr = true; return 0; }
  pp += n;
  if (lastInexact) failInexact();
  return lastIsBigInt ? mkInt(lastBigInt) : mkNum(lastNumber);
}

// ---- dump -----------------------------------------------------------------------------------

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
      hostDepth++;
      putByte(0x5b);
      const n = lenOf(v);
      const e = elems(v);
      for (let i: u32 = 0; i < n; i++) {
        if (i > 0) putByte(0x2c);
        writeValue(load<u32>(e + (<usize>i << 2)));
      }
      putByte(0x5d);
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
          if (forHost) fatal("an object with non-string keys cannot be passed to a builtin implemented in JavaScript");
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
