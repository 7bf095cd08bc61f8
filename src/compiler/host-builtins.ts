/**
 * Builtins supplied by the host (JavaScript) through the ABI's `opa_builtinN` imports, in the
 * shape `loadPolicy(wasm, memory, customBuiltins)` expects: JSON-shaped values in, a JSON-shaped
 * value out, `undefined` for "undefined" (OPA's non-strict mode turns errors into undefined).
 *
 * Sets arrive as JSON arrays (the SDK dumps arguments with `opa_json_dump`), which is why every
 * set-typed builtin is native (see NATIVE_BUILTINS in builtins.ts); builtins that take any value
 * exchange typed text instead, where sets stay sets (HOST_TYPED_JSON, host-typed-json.ts).
 *
 * `sprintf`, `json.is_valid`, `regex.split` and `yaml.*` are implemented by the SDK itself and
 * take precedence over this map (`_builtinCall` looks in its own table first). They answer
 * otherwise than OPA (sprintf-js, JavaScript's split, YAML 1.2), so the code generator imports
 * them under other names (`arbiter.sprintf`, ...: HOST_IMPORT_NAMES in builtins.ts), implemented
 * here and in host-yaml.ts with OPA's semantics.
 *
 * Known differences from OPA:
 * - `regex.match` runs a JavaScript RegExp translated from RE2 syntax (host-re2.ts lists what
 *   is translated); invalid or untranslatable patterns give undefined.
 * - `time.now_ns` returns one value per synchronous turn of the event loop (the value is cached
 *   until the next microtask), so all calls within one evaluation agree, as in OPA; its
 *   resolution is a millisecond and values above 2^53 lose their last bits (numbers are f64).
 */
import { createHash } from "node:crypto";
import { compileRe2 } from "./host-re2.ts";
import { goMatches } from "./host-regex-more.ts";
import { moreHostBuiltins, queryEscape } from "./host-builtins-more.ts";
import { jwtHostBuiltins } from "./host-jwt.ts";
import { awsHostBuiltins } from "./host-aws.ts";
import { x509HostBuiltins } from "./host-x509.ts";
import { opaHostBuiltins } from "./host-builtins-opa.ts";
import { withSetArgs } from "./host-set-args.ts";

export { compileRe2 } from "./host-re2.ts";
import { goSprintf } from "./host-sprintf.ts";
import { goBase64UrlDecode, JwtBuiltinError, utf8Text } from "./host-jwt-keys.ts";
import { timeNowNs } from "./host-now.ts";
import { yamlIsValid, yamlUnmarshal } from "./host-yaml.ts";
import { builtinError, jsonIo } from "./host-exact-json.ts";

import type { HostBuiltin as Builtin } from "./host-types.ts";

/** Compiled patterns, bounded: cleared wholesale when full (patterns are policy constants). */
const MAX_CACHED_PATTERNS = 1000;
const regexCache = new Map<string, RegExp | null>();
const globCache = new Map<string, RegExp | null>();

function cached(cache: Map<string, RegExp | null>, key: string, build: () => RegExp | null): RegExp | null {
  let re = cache.get(key);
  if (re === undefined) {
    if (cache.size >= MAX_CACHED_PATTERNS) cache.clear();
    re = build();
    cache.set(key, re);
  }
  return re;
}

function regexMatch(pattern: unknown, value: unknown): boolean | undefined {
  if (typeof pattern !== "string" || typeof value !== "string") return undefined;
  const re = cached(regexCache, pattern, () => compileRe2(pattern));
  if (re === null) return undefined;
  return re.test(value);
}

/**
 * Go's `ReplaceAllString`: the matches Go finds (JavaScript's `replace` also replaces an empty
 * match right after a match: `a*` on "baaac" with "X" gave "XbXXcX", Go "XbXcX"), each replaced by
 * the template as Go's `Expand` reads it.
 */
function regexReplace(s: unknown, pattern: unknown, value: unknown): string | undefined {
  if (typeof s !== "string" || typeof pattern !== "string" || typeof value !== "string") return undefined;
  const re = cached(regexCache, pattern, () => compileRe2(pattern));
  if (re === null) return undefined;
  let out = "";
  let last = 0;
  for (const m of goMatches(re, s, -1)) {
    out += s.slice(last, m.index) + goExpand(value, m);
    last = m.index + m[0].length;
  }
  return out + s.slice(last);
}

/**
 * Go's `Regexp.Expand`: `$name` or `${name}` (Unicode letters and digits, `_`; `$name` as long as
 * possible, so `$1x` is `${1x}`), a number without a leading zero is a group's index, anything
 * unknown or unmatched is empty, `$$` is `$`, and a `$` not followed by a name is kept as text.
 */
function goExpand(template: string, m: RegExpExecArray): string {
  let out = "";
  let i = 0;
  while (i < template.length) {
    const at = template.indexOf("$", i);
    if (at < 0) break;
    out += template.slice(i, at);
    const rest = template.slice(at + 1);
    if (rest.startsWith("$")) {
      out += "$";
      i = at + 2;
      continue;
    }
    const ref = /^\{([\p{L}\p{Nd}_]+)\}/u.exec(rest) ?? /^([\p{L}\p{Nd}_]+)/u.exec(rest);
    if (ref === null) {
      out += "$";
      i = at + 1;
      continue;
    }
    const name = ref[1]!;
    // A number without a leading zero is an index; anything else names a group.
    out += (/^(0|[1-9][0-9]{0,7})$/.test(name) ? m[Number(name)] : m.groups?.[name]) ?? "";
    i = at + 1 + ref[0].length;
  }
  return out + template.slice(i);
}

function regexFindN(pattern: unknown, value: unknown, n: unknown): string[] | undefined {
  if (typeof pattern !== "string" || typeof value !== "string" || typeof n !== "number" || !Number.isInteger(n))
    return undefined;
  const re = cached(regexCache, pattern, () => compileRe2(pattern));
  if (re === null) return undefined;
  return [...goMatches(re, value, n)].map((m) => m[0]);
}

/**
 * Go's `Regexp.Split(s, -1)`: the text between the matches Go finds, without the capture groups
 * JavaScript's `split` adds; an empty match at the start adds nothing, and the rest after the last
 * match only when that match does not start at the end. (The SDK's was `s.split(RegExp(pattern))`,
 * on the pattern as JavaScript reads it.)
 */
function regexSplit(pattern: unknown, s: unknown): string[] | undefined {
  if (typeof pattern !== "string" || typeof s !== "string") return undefined;
  const re = cached(regexCache, pattern, () => compileRe2(pattern));
  if (re === null) return undefined;
  if (pattern !== "" && s === "") return [""];
  const out: string[] = [];
  let beg = 0;
  let end = 0;
  for (const m of goMatches(re, s, -1)) {
    end = m.index;
    if (m.index + m[0].length !== 0) out.push(s.slice(beg, end));
    beg = m.index + m[0].length;
  }
  if (end !== s.length) out.push(s.slice(beg));
  return out;
}

function escapeRe(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
}

function escapeClass(s: string): string {
  return s.replace(/[\\\]^-]/g, "\\$&");
}

/**
 * gobwas/glob semantics as OPA uses them: `*` matches any run of characters except the
 * delimiters, `**` any run, `?` one non-delimiter character, `[abc]`, `[!abc]`, `[a-z]`,
 * `{a,b}` alternatives, `\` escapes.
 */
export function compileGlob(pattern: string, delimiters: readonly string[]): RegExp | null {
  const notDelim = delimiters.length === 0 ? "[\\s\\S]" : `[^${delimiters.map(escapeClass).join("")}]`;
  let out = "";
  let depth = 0;
  const chars = [...pattern];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === "\\") {
      i++;
      if (i >= chars.length) return null;
      out += escapeRe(chars[i]!);
    } else if (c === "*") {
      if (chars[i + 1] === "*") {
        out += "[\\s\\S]*";
        i++;
      } else {
        out += `${notDelim}*`;
      }
    } else if (c === "?") {
      out += notDelim;
    } else if (c === "[") {
      const end = chars.indexOf("]", i + 1);
      if (end < 0) return null;
      let body = chars.slice(i + 1, end).join("");
      let negate = false;
      if (body.startsWith("!")) {
        negate = true;
        body = body.slice(1);
      }
      if (body === "") return null;
      out += `[${negate ? "^" : ""}${body.replace(/[\\\]^]/g, "\\$&")}]`;
      i = end;
    } else if (c === "{") {
      depth++;
      out += "(?:";
    } else if (c === "}" && depth > 0) {
      depth--;
      out += ")";
    } else if (c === "," && depth > 0) {
      out += "|";
    } else {
      out += escapeRe(c);
    }
  }
  if (depth !== 0) return null;
  try {
    return new RegExp(`^${out}$`, "u");
  } catch {
    return null;
  }
}

function globMatch(pattern: unknown, delimiters: unknown, value: unknown): boolean | undefined {
  if (typeof pattern !== "string" || typeof value !== "string") return undefined;
  let delims: string[];
  if (delimiters === null) {
    delims = [];
  } else if (Array.isArray(delimiters) && delimiters.every((d) => typeof d === "string")) {
    delims = delimiters.length === 0 ? ["."] : (delimiters as string[]);
  } else {
    return undefined;
  }
  const re = cached(globCache, `${JSON.stringify(delims)}\u0000${pattern}`, () => compileGlob(pattern, delims));
  if (re === null) return undefined;
  return re.test(value);
}

function formatInt(n: unknown, base: unknown): string | undefined {
  if (typeof n !== "number" || !Number.isFinite(n)) return undefined;
  if (base !== 2 && base !== 8 && base !== 10 && base !== 16) return undefined;
  const i = Math.trunc(n);
  if (Number.isSafeInteger(i)) return i.toString(base);
  return BigInt(i).toString(base);
}

function replaceN(patterns: unknown, value: unknown): string | undefined {
  if (typeof value !== "string" || patterns === null || typeof patterns !== "object" || Array.isArray(patterns)) {
    return undefined;
  }
  const pairs = Object.entries(patterns as Record<string, unknown>);
  if (!pairs.every(([, v]) => typeof v === "string")) return undefined;
  // Keys in sorted order, the first one matching at a position wins (Go's strings.NewReplacer
  // with OPA's argument order).
  pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  let out = "";
  let i = 0;
  outer: while (i < value.length) {
    for (const [old, nw] of pairs) {
      if (old !== "" && value.startsWith(old, i)) {
        out += nw as string;
        i += old.length;
        continue outer;
      }
    }
    out += value[i];
    i++;
  }
  return out;
}

/**
 * The decoders below answer a string: decoded bytes that are not valid UTF-8 fail the evaluation
 * (`utf8Text`), since OPA keeps those bytes and a replacement character would be another value.
 */
function base64Decode(s: unknown): string | undefined {
  if (typeof s !== "string") return undefined;
  const t = s.replace(/[\r\n]/g, ""); // Go's decoder skips line breaks
  if (t.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(t)) return undefined;
  return utf8Text(Buffer.from(t, "base64"), "base64.decode's result");
}

const str = (f: (s: string) => unknown) => (s: unknown) => (typeof s === "string" ? f(s) : undefined);

function hexDecode(s: string): string | undefined {
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) return undefined;
  return utf8Text(Buffer.from(s, "hex"), "hex.decode's result");
}

/** OPA's base64url.decode: padding added when missing, then Go's strict URL alphabet and length rules. */
function base64UrlDecode(s: string): string | undefined {
  let bytes: Buffer;
  try {
    bytes = goBase64UrlDecode(s);
  } catch (err) {
    if (err instanceof JwtBuiltinError) return undefined;
    throw err;
  }
  return utf8Text(bytes, "base64url.decode's result");
}

function urlqueryDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return undefined;
  }
}

function isJson(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

export const hostBuiltins: Record<string, Builtin> = withSetArgs({
  ...moreHostBuiltins,
  ...jwtHostBuiltins,
  ...awsHostBuiltins,
  ...x509HostBuiltins,
  ...opaHostBuiltins,
  "arbiter.sprintf": goSprintf,
  "regex.match": regexMatch,
  "glob.match": globMatch,
  format_int: formatInt,
  "strings.replace_n": replaceN,
  "time.now_ns": timeNowNs,
  "crypto.sha256": (s: unknown) =>
    typeof s === "string" ? createHash("sha256").update(s, "utf8").digest("hex") : undefined,
  "base64.encode": (s: unknown) => (typeof s === "string" ? Buffer.from(s, "utf8").toString("base64") : undefined),
  "base64.decode": base64Decode,
  "regex.replace": regexReplace,
  "regex.find_n": regexFindN,
  // OPA: false (not undefined) for a non-string operand.
  "regex.is_valid": (p: unknown) => typeof p === "string" && compileRe2(p) !== null,
  "arbiter.json.is_valid": (s: unknown) => typeof s === "string" && isJson(s),
  "arbiter.regex.split": regexSplit,
  "arbiter.yaml.is_valid": (s: unknown) => typeof s === "string" && yamlIsValid(s),
  "arbiter.yaml.unmarshal": jsonIo((s) =>
    typeof s === "string" ? yamlUnmarshal(s) : builtinError("yaml.unmarshal", "operand 1 must be string"),
  ),
  "base64url.encode": str(
    (s) => Buffer.from(s, "utf8").toString("base64url") + "=".repeat((3 - (Buffer.byteLength(s) % 3)) % 3),
  ),
  "base64url.decode": str(base64UrlDecode),
  "hex.encode": str((s) => Buffer.from(s, "utf8").toString("hex")),
  "hex.decode": str(hexDecode),
  "urlquery.encode": str(queryEscape),
  "urlquery.decode": str(urlqueryDecode),
  "crypto.md5": str((s) => createHash("md5").update(s, "utf8").digest("hex")),
  "crypto.sha1": str((s) => createHash("sha1").update(s, "utf8").digest("hex")),
});
