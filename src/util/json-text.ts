/** Small text helpers shared by the decision cache keys, the audit records and their hashes. */
import { hash } from "node:crypto";

// Characters JSON.stringify escapes: '"', '\\', controls, and surrogates (a lone one becomes
// \uXXXX; a string with any is left to JSON.stringify, which tells pairs from lone ones).
// eslint-disable-next-line no-control-regex -- matching control characters is the point: JSON must escape them
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** JSON.stringify(s), without the call when `s` has nothing to escape (most strings). */
export function quoteJson(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"';
}

/**
 * SHA-256 as lowercase hex. The one-shot `crypto.hash` (Node >= 20.12; package.json asks for
 * 20.19) costs about a third of createHash().update().digest() for a few hundred bytes.
 */
export function sha256Hex(data: string | Uint8Array): string {
  return hash("sha256", data, "hex");
}

/**
 * Orders strings by Unicode code point, which is the order of their UTF-8 bytes (Go's string
 * order, hence OPA's object key order). JavaScript's default sort compares UTF-16 code units,
 * which puts astral characters (surrogate pairs) before U+E000..U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return rank(x) - rank(y);
  }
  return a.length - b.length;
}

/** A UTF-16 unit's place in code point order: surrogates (astral characters) after U+FFFF. */
const rank = (u: number) => (u < 0xd800 ? u : u < 0xe000 ? u + 0x2000 : u - 0x800);
