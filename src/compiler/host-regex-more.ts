/**
 * More of OPA's regex, glob and encoding builtins (issue #13): regex.find_all_string_submatch_n
 * with Go's rule for empty matches, base64.is_valid, base64url.encode_no_pad, glob.quote_meta.
 */
import { compileRe2 } from "./host-re2.ts";
import type { HostBuiltin } from "./host-types.ts";

/** Go's FindAllStringSubmatch(value, n): an empty match right after a match is skipped. */
function findAllSubmatch(pattern: unknown, value: unknown, n: unknown): string[][] | undefined {
  if (typeof pattern !== "string" || typeof value !== "string" || typeof n !== "number" || !Number.isInteger(n))
    return undefined;
  const compiled = compileRe2(pattern);
  if (compiled === null) return undefined;
  const re = new RegExp(compiled.source, compiled.flags.replace("g", "") + "g");
  const out: string[][] = [];
  let pos = 0;
  let prevEnd = -1;
  while ((n < 0 || out.length < n) && pos <= value.length) {
    re.lastIndex = pos;
    const m = re.exec(value);
    if (!m) break;
    const start = m.index;
    const end = start + m[0].length;
    let accept = true;
    if (end === pos) {
      if (start === prevEnd) accept = false;
      const cp = value.codePointAt(pos);
      pos += cp !== undefined && cp > 0xffff ? 2 : 1;
    } else {
      pos = end;
    }
    prevEnd = end;
    if (accept) out.push([...m].map((g) => g ?? ""));
  }
  return out;
}

/** Go's base64.StdEncoding.DecodeString succeeds (newlines are ignored, padding required). */
function base64IsValid(s: unknown): boolean {
  if (typeof s !== "string") return false;
  const t = s.replace(/[\r\n]/g, "");
  return t.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(t);
}

export const regexMoreHostBuiltins: Record<string, HostBuiltin> = {
  "regex.find_all_string_submatch_n": findAllSubmatch,
  "base64.is_valid": base64IsValid,
  "base64url.encode_no_pad": (s: unknown) =>
    typeof s === "string" ? Buffer.from(s, "utf8").toString("base64url") : undefined,
  // gobwas/glob QuoteMeta: the glob metacharacters get a backslash.
  "glob.quote_meta": (s: unknown) => (typeof s === "string" ? s.replace(/[*?[\]{}\\]/g, "\\$&") : undefined),
};
