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
