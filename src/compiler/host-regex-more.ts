/**
 * More of OPA's regex, glob and encoding builtins (issue #13): regex.find_all_string_submatch_n
 * with Go's rule for empty matches, regex.template_match, base64.is_valid,
 * base64url.encode_no_pad, glob.quote_meta.
 */
import { randomBytes } from "node:crypto";
import { compileRe2 } from "./host-re2.ts";
import type { HostBuiltin } from "./host-types.ts";

/** Go's regexp.QuoteMeta: every RE2 metacharacter gets a backslash. */
const quoteMeta = (s: string): string => s.replace(/[\\.+*?()|[\]{}^$]/g, "\\$&");

/** Compiled templates, bounded: cleared wholesale when full (templates are policy constants). */
const MAX_TEMPLATES = 1000;
const templateCache = new Map<string, RegExp | null>();

/**
 * OPA's getRegexpTemplate (forked from gorilla/mux): top-level delimiter pairs hold a regex, the
 * text around them is literal, all anchored; null for unbalanced delimiters or a bad regex.
 */
function compileTemplate(tpl: string, open: string, close: string): RegExp | null {
  const parts: string[] = ["^"];
  let level = 0;
  let start = 0;
  let end = 0;
  for (let i = 0; i < tpl.length; i++) {
    if (tpl[i] === open) {
      if (++level === 1) start = i;
    } else if (tpl[i] === close) {
      if (--level === 0) {
        const inner = tpl.slice(start + 1, i);
        // Go compiles each inner pattern alone too: an invalid one is an error.
        if (compileRe2(`^${inner}$`) === null) return null;
        parts.push(quoteMeta(tpl.slice(end, start)), `(${inner})`);
        end = i + 1;
      } else if (level < 0) return null;
    }
  }
  if (level !== 0) return null;
  parts.push(quoteMeta(tpl.slice(end)), "$");
  return compileRe2(parts.join(""));
}

/** regex.template_match(template, value, start, end); undefined for OPA's errors. */
function templateMatch(tpl: unknown, value: unknown, open: unknown, close: unknown): boolean | undefined {
  if (typeof tpl !== "string" || typeof value !== "string" || typeof open !== "string" || typeof close !== "string")
    return undefined;
  // OPA: each delimiter exactly one byte long (so ASCII: scanning UTF-16 units finds the same bytes).
  if (Buffer.byteLength(open) !== 1 || Buffer.byteLength(close) !== 1) return undefined;
  const key = `${open}${close}${tpl}`;
  let re = templateCache.get(key);
  if (re === undefined) {
    if (templateCache.size >= MAX_TEMPLATES) templateCache.clear();
    re = compileTemplate(tpl, open, close);
    templateCache.set(key, re);
  }
  return re === null ? undefined : re.test(value);
}

/** rand.intn's draws of the current evaluation, by OPA's cache key `str-n`. */
let draws: Map<string, number> | undefined;

/** A uniform integer in [0, n), n <= 2^53, by rejection on 64 random bits. */
function uniform(n: number): number {
  const bound = BigInt(n);
  const limit = (1n << 64n) - ((1n << 64n) % bound);
  for (;;) {
    const x = randomBytes(8).readBigUInt64BE();
    if (x < limit) return Number(x % bound);
  }
}

/**
 * rand.intn(str, n): OPA draws once per query for each (str, |n|) and answers that draw again
 * for the same arguments; the draws are forgotten when the evaluation ends (next microtask, as
 * time.now_ns). n must be an integer; 0 gives 0.
 */
function randIntn(str: unknown, n: unknown): number | undefined {
  if (typeof str !== "string" || typeof n !== "number" || !Number.isInteger(n)) return undefined;
  if (n === 0) return 0;
  const m = Math.abs(n);
  const key = `${str}-${m}`;
  if (draws === undefined) {
    draws = new Map();
    queueMicrotask(() => {
      draws = undefined;
    });
  }
  let v = draws.get(key);
  if (v === undefined) draws.set(key, (v = uniform(m)));
  return v;
}

/**
 * The matches Go's `FindAll*(value, n)` reports (`n < 0`: all): left to right, and an empty match
 * right after a match is skipped, where JavaScript's `matchAll` reports it (`a*` on "baaac": Go
 * 0-0, 1-4, 5-5; JavaScript also 4-4).
 */
export function* goMatches(compiled: RegExp, value: string, n: number): Generator<RegExpExecArray> {
  const re = new RegExp(compiled.source, compiled.flags.replace("g", "") + "g");
  let found = 0;
  let pos = 0;
  let prevEnd = -1;
  while ((n < 0 || found < n) && pos <= value.length) {
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
    if (accept) {
      found++;
      yield m;
    }
  }
}

/** Go's FindAllStringSubmatch(value, n). */
function findAllSubmatch(pattern: unknown, value: unknown, n: unknown): string[][] | undefined {
  if (typeof pattern !== "string" || typeof value !== "string" || typeof n !== "number" || !Number.isInteger(n))
    return undefined;
  const compiled = compileRe2(pattern);
  if (compiled === null) return undefined;
  return [...goMatches(compiled, value, n)].map((m) => [...m].map((g) => g ?? ""));
}

/** Go's base64.StdEncoding.DecodeString succeeds (newlines are ignored, padding required). */
function base64IsValid(s: unknown): boolean {
  if (typeof s !== "string") return false;
  const t = s.replace(/[\r\n]/g, "");
  return t.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(t);
}

export const regexMoreHostBuiltins: Record<string, HostBuiltin> = {
  "regex.find_all_string_submatch_n": findAllSubmatch,
  "regex.template_match": templateMatch,
  "rand.intn": randIntn,
  "base64.is_valid": base64IsValid,
  "base64url.encode_no_pad": (s: unknown) =>
    typeof s === "string" ? Buffer.from(s, "utf8").toString("base64url") : undefined,
  // gobwas/glob QuoteMeta: the glob metacharacters get a backslash.
  "glob.quote_meta": (s: unknown) => (typeof s === "string" ? s.replace(/[*?[\]{}\\]/g, "\\$&") : undefined),
};
