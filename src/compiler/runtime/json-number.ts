// JSON numbers: scanning a number literal and rounding it correctly to f64 (Eisel-Lemire with a
// fallback), keeping integers beyond 2^53 exactly. Used by the parser (json.ts) and to_number.

import { fatal } from "./memory";

import { POW10_128 } from "./pow10-table";

// Correctly rounded powers of ten 1e0..1e308 (the compiler rounds each literal).
export const POW10: StaticArray<f64> = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25, 1e26, 1e27, 1e28, 1e29, 1e30, 1e31, 1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38, 1e39, 1e40, 1e41, 1e42, 1e43, 1e44, 1e45, 1e46, 1e47, 1e48, 1e49, 1e50, 1e51, 1e52, 1e53, 1e54, 1e55, 1e56, 1e57, 1e58, 1e59, 1e60, 1e61, 1e62, 1e63, 1e64, 1e65, 1e66, 1e67, 1e68, 1e69, 1e70, 1e71, 1e72, 1e73, 1e74, 1e75, 1e76, 1e77, 1e78, 1e79, 1e80, 1e81, 1e82, 1e83, 1e84, 1e85, 1e86, 1e87, 1e88, 1e89, 1e90, 1e91, 1e92, 1e93, 1e94, 1e95, 1e96, 1e97, 1e98, 1e99, 1e100, 1e101, 1e102, 1e103, 1e104, 1e105, 1e106, 1e107, 1e108, 1e109, 1e110, 1e111, 1e112, 1e113, 1e114, 1e115, 1e116, 1e117, 1e118, 1e119, 1e120, 1e121, 1e122, 1e123, 1e124, 1e125, 1e126, 1e127, 1e128, 1e129, 1e130, 1e131, 1e132, 1e133, 1e134, 1e135, 1e136, 1e137, 1e138, 1e139, 1e140, 1e141, 1e142, 1e143, 1e144, 1e145, 1e146, 1e147, 1e148, 1e149, 1e150, 1e151, 1e152, 1e153, 1e154, 1e155, 1e156, 1e157, 1e158, 1e159, 1e160, 1e161, 1e162, 1e163, 1e164, 1e165, 1e166, 1e167, 1e168, 1e169, 1e170, 1e171, 1e172, 1e173, 1e174, 1e175, 1e176, 1e177, 1e178, 1e179, 1e180, 1e181, 1e182, 1e183, 1e184, 1e185, 1e186, 1e187, 1e188, 1e189, 1e190, 1e191, 1e192, 1e193, 1e194, 1e195, 1e196, 1e197, 1e198, 1e199, 1e200, 1e201, 1e202, 1e203, 1e204, 1e205, 1e206, 1e207, 1e208, 1e209, 1e210, 1e211, 1e212, 1e213, 1e214, 1e215, 1e216, 1e217, 1e218, 1e219, 1e220, 1e221, 1e222, 1e223, 1e224, 1e225, 1e226, 1e227, 1e228, 1e229, 1e230, 1e231, 1e232, 1e233, 1e234, 1e235, 1e236, 1e237, 1e238, 1e239, 1e240, 1e241, 1e242, 1e243, 1e244, 1e245, 1e246, 1e247, 1e248, 1e249, 1e250, 1e251, 1e252, 1e253, 1e254, 1e255, 1e256, 1e257, 1e258, 1e259, 1e260, 1e261, 1e262, 1e263, 1e264, 1e265, 1e266, 1e267, 1e268, 1e269, 1e270, 1e271, 1e272, 1e273, 1e274, 1e275, 1e276, 1e277, 1e278, 1e279, 1e280, 1e281, 1e282, 1e283, 1e284, 1e285, 1e286, 1e287, 1e288, 1e289, 1e290, 1e291, 1e292, 1e293, 1e294, 1e295, 1e296, 1e297, 1e298, 1e299, 1e300, 1e301, 1e302, 1e303, 1e304, 1e305, 1e306, 1e307, 1e308];

/**
 * m * 10^e with one rounding of the power and one of the product or quotient: exact when m is
 * below 2^53 and |e| <= 22, otherwise within an ulp or so (documented gap: not always the
 * correctly rounded nearest f64, as Go's parser would give).
 */
export function scale(m: f64, e: i32): f64 {
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
export function mul64(a: u64, b: u64): u64 {
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
export function eiselLemire(man: u64, exp10: i32): f64 {
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
export function exactPow10Product(mant: u64, exp: i32): bool {
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
