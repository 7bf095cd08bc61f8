/**
 * More of OPA's standard library supplied by the host (issue #13): units, string matching,
 * bits, HMAC, JWT decoding, semver, string counting and object merging. Same contract as
 * host-builtins.ts: JSON-shaped values in (sets arrive as arrays), a JSON-shaped value out,
 * `undefined` where OPA raises a builtin error (non-strict mode). Numbers are computed exactly
 * (BigInt, decimal arithmetic) and a result JavaScript cannot hold exactly throws instead of
 * answering with another number.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";

import type { HostBuiltin as Builtin } from "./host-types.ts";
import { isObject } from "../util/object.ts";
import { compareCodePoints } from "../util/json-text.ts";

/** Thrown for a result a JavaScript number cannot hold exactly (OPA's numbers are arbitrary precision). */
function inexact(name: string, what: string): never {
  throw new Error(
    `${name}: ${what} is not held exactly by a JavaScript number (OPA's numbers are arbitrary precision)`,
  );
}

/** An exact integer as a JavaScript number, or a throw. */
export function exactNumber(name: string, n: bigint): number {
  const x = Number(n);
  if (BigInt(x) !== n) inexact(name, n.toString());
  return x;
}

/** `1.5e3` -> 15n * 10^-1 * 10^3 = { int: 15n, scale: -2 } (value = int * 10^-scale). */
export function exactDecimal(text: string): { int: bigint; scale: number } | undefined {
  const m = /^(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m || (m[1] === "" && (m[2] ?? "") === "")) return undefined;
  const frac = m[2] ?? "";
  const exp = m[3] === undefined ? 0 : Number(m[3]);
  if (!Number.isSafeInteger(exp) || Math.abs(exp) > 400) return undefined;
  return { int: BigInt(`${m[1]}${frac}` || "0"), scale: frac.length - exp };
}

/** int * 10^-scale * mult / div, as a number: exact when an integer, else the nearest f64. */
export function decimalTimes(
  name: string,
  d: { int: bigint; scale: number },
  mult: bigint,
  div = 1n,
  truncate = false,
): number {
  let num = d.int * mult;
  let den = div;
  if (d.scale > 0) den *= 10n ** BigInt(d.scale);
  else num *= 10n ** BigInt(-d.scale);
  if (num % den === 0n || truncate) return exactNumber(name, num / den);
  return Number(num) / Number(den);
}

const SI: Record<string, bigint> = {
  "": 1n,
  k: 10n ** 3n,
  m: 10n ** 6n,
  g: 10n ** 9n,
  t: 10n ** 12n,
  p: 10n ** 15n,
  e: 10n ** 18n,
};
const IEC: Record<string, bigint> = {
  ki: 2n ** 10n,
  mi: 2n ** 20n,
  gi: 2n ** 30n,
  ti: 2n ** 40n,
  pi: 2n ** 50n,
  ei: 2n ** 60n,
};

/** units.parse: SI and IEC suffixes; "m" is milli and "M" mega, other suffixes ignore case. */
function unitsParse(s: unknown): number | undefined {
  if (typeof s !== "string") return undefined;
  const text = s.replace(/"/g, "");
  if (text === "" || /\s/.test(text)) return undefined;
  const m = /^(-?)((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)([a-zA-Z]*)$/.exec(text);
  if (!m) return undefined;
  const abs = exactDecimal(m[2]!);
  if (!abs) return undefined;
  const d = m[1] === "-" ? { int: -abs.int, scale: abs.scale } : abs;
  const unit = m[3]!;
  if (unit === "m") return decimalTimes("units.parse", d, 1n, 1000n);
  const u = unit === "M" ? "m" : unit.toLowerCase();
  const mult = SI[u] ?? IEC[u];
  if (mult === undefined) return undefined;
  return decimalTimes("units.parse", d, mult);
}

const BYTE_UNITS: Record<string, bigint> = {
  "": 1n,
  k: SI.k!,
  kb: SI.k!,
  ki: IEC.ki!,
  kib: IEC.ki!,
  m: SI.m!,
  mb: SI.m!,
  mi: IEC.mi!,
  mib: IEC.mi!,
  g: SI.g!,
  gb: SI.g!,
  gi: IEC.gi!,
  gib: IEC.gi!,
  t: SI.t!,
  tb: SI.t!,
  ti: IEC.ti!,
  tib: IEC.ti!,
  p: SI.p!,
  pb: SI.p!,
  pi: IEC.pi!,
  pib: IEC.pi!,
  e: SI.e!,
  eb: SI.e!,
  ei: IEC.ei!,
  eib: IEC.ei!,
};

/** units.parse_bytes: case-insensitive suffixes, the result truncated to whole bytes, exactly. */
export function unitsParseBytes(s: unknown): number | undefined {
  if (typeof s !== "string") return undefined;
  const text = s.replace(/"/g, "").toLowerCase();
  // OPA: "spaces not allowed in resource strings" (an error, so undefined here).
  if (/\s/.test(text)) return undefined;
  const m = /^((?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)([a-z]*)$/.exec(text);
  if (!m) return undefined;
  const d = exactDecimal(m[1]!);
  const mult = BYTE_UNITS[m[2]!];
  if (!d || mult === undefined) return undefined;
  return decimalTimes("units.parse_bytes", d, mult, 1n, true);
}

/** A string, or an array (a set arrives as one) of strings; undefined otherwise. */
function strings(v: unknown): string[] | undefined {
  if (typeof v === "string") return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
  return undefined;
}

function anyMatch(test: (s: string, b: string) => boolean) {
  return (search: unknown, base: unknown): boolean | undefined => {
    const ss = strings(search);
    const bs = strings(base);
    if (!ss || !bs) return undefined;
    return ss.some((s) => bs.some((b) => test(s, b)));
  };
}

/** Integers only (OPA: operand must be an integer), as BigInt. */
function int(v: unknown): bigint | undefined {
  return typeof v === "number" && Number.isInteger(v) ? BigInt(v) : undefined;
}

function bits2(name: string, op: (a: bigint, b: bigint) => bigint) {
  return (a: unknown, b: unknown): number | undefined => {
    const x = int(a);
    const y = int(b);
    if (x === undefined || y === undefined) return undefined;
    return exactNumber(name, op(x, y));
  };
}

function shift(name: string, left: boolean) {
  return (a: unknown, b: unknown): number | undefined => {
    const x = int(a);
    const y = int(b);
    if (x === undefined || y === undefined || y < 0n || y > 1024n) return undefined;
    return exactNumber(name, left ? x << y : x >> y);
  };
}

function hmac(alg: string) {
  return (x: unknown, key: unknown): string | undefined =>
    typeof x === "string" && typeof key === "string" ? createHmac(alg, key).update(x, "utf8").digest("hex") : undefined;
}

function hmacEqual(a: unknown, b: unknown): boolean | undefined {
  if (typeof a !== "string" || typeof b !== "string") return undefined;
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Semantic Versioning 2.0.0, as OPA's semver builtins (no leading "v"). */
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

function semverCompare(a: unknown, b: unknown): number | undefined {
  if (typeof a !== "string" || typeof b !== "string") return undefined;
  const x = SEMVER.exec(a);
  const y = SEMVER.exec(b);
  if (!x || !y) return undefined;
  for (let i = 1; i <= 3; i++) {
    const d = BigInt(x[i]!) - BigInt(y[i]!);
    if (d !== 0n) return d < 0n ? -1 : 1;
  }
  const px = x[4];
  const py = y[4];
  if (px === undefined || py === undefined) return px === py ? 0 : px === undefined ? 1 : -1;
  const ix = px.split(".");
  const iy = py.split(".");
  for (let i = 0; i < Math.min(ix.length, iy.length); i++) {
    const [p, q] = [ix[i]!, iy[i]!];
    const np = /^\d+$/.test(p);
    const nq = /^\d+$/.test(q);
    if (np && nq) {
      const d = BigInt(p) - BigInt(q);
      if (d !== 0n) return d < 0n ? -1 : 1;
    } else if (np !== nq) {
      return np ? -1 : 1;
    } else if (p !== q) {
      return p < q ? -1 : 1;
    }
  }
  return Math.sign(ix.length - iy.length);
}

/** Go's strings.Count: non-overlapping occurrences; an empty substring counts code points + 1. */
function stringsCount(s: unknown, sub: unknown): number | undefined {
  if (typeof s !== "string" || typeof sub !== "string") return undefined;
  if (sub === "") return [...s].length + 1;
  let n = 0;
  for (let i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + sub.length)) n++;
  return n;
}

/** indexof_n: every index (in code points, as OPA's indexof) where the substring starts. */
function indexOfN(s: unknown, sub: unknown): number[] | undefined {
  if (typeof s !== "string" || typeof sub !== "string") return undefined;
  if (sub === "") return undefined;
  const cps = [...s];
  const needle = [...sub];
  const out: number[] = [];
  outer: for (let i = 0; i + needle.length <= cps.length; i++) {
    for (let j = 0; j < needle.length; j++) if (cps[i + j] !== needle[j]) continue outer;
    out.push(i);
  }
  return out;
}

/** object.union semantics: objects merge recursively, the right side wins otherwise. */
function union(a: unknown, b: unknown): unknown {
  if (!isObject(a) || !isObject(b)) return b;
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = Object.hasOwn(a, k) ? union(a[k], v) : v;
  return out;
}

function unionN(objs: unknown): unknown {
  if (!Array.isArray(objs) || !objs.every(isObject)) return undefined;
  return objs.reduce((acc: unknown, o) => union(acc, o), {});
}

/** numbers.range_step(a, b, step): a, a±step, ... up to b inclusive; step a positive integer. */
function rangeStep(a: unknown, b: unknown, step: unknown): number[] | undefined {
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || !Number.isSafeInteger(step) || (step as number) <= 0)
    return undefined;
  const [x, y, k] = [a as number, b as number, step as number];
  const count = Math.floor(Math.abs(y - x) / k) + 1;
  if (count > 10_000_000) return undefined;
  const dir = y >= x ? 1 : -1;
  return Array.from({ length: count }, (_, i) => x + dir * i * k);
}

/** Go's url.QueryEscape: space as "+", everything but unreserved characters percent-encoded. */
export function queryEscape(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, "+");
}

/** urlquery.encode_object: keys sorted (Go's url.Values.Encode); values a string or a list of strings. */
function encodeObject(obj: unknown): string | undefined {
  if (!isObject(obj)) return undefined;
  const parts: string[] = [];
  for (const k of Object.keys(obj).sort(compareCodePoints)) {
    const v = obj[k];
    const vs = strings(v);
    if (!vs) return undefined;
    for (const x of vs) parts.push(`${queryEscape(k)}=${queryEscape(x)}`);
  }
  return parts.join("&");
}

/** urlquery.decode_object: every key to the list of its values (Go's url.ParseQuery). */
function decodeObject(s: unknown): Record<string, string[]> | undefined {
  if (typeof s !== "string") return undefined;
  const out: Record<string, string[]> = {};
  try {
    for (const part of s.split("&")) {
      if (part === "") continue;
      const eq = part.indexOf("=");
      const [k, v] = eq < 0 ? [part, ""] : [part.slice(0, eq), part.slice(eq + 1)];
      const key = decodeURIComponent(k.replace(/\+/g, " "));
      const val = decodeURIComponent(v.replace(/\+/g, " "));
      (Object.hasOwn(out, key) ? out[key]! : (out[key] = [])).push(val);
    }
  } catch {
    return undefined;
  }
  return out;
}

/** An address as [bits, value]: 32 for IPv4, 128 for IPv6 (Go's net.ParseIP forms). */
export function parseIp(s: string): [number, bigint] | undefined {
  if (isIPv4(s)) return [32, s.split(".").reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n)];
  if (!isIPv6(s) || s.includes("%")) return undefined;
  let text = s;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = parseIp(v4[1]!)![1];
    text = `${text.slice(0, -v4[1]!.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, undefined];
  const h = head ? head.split(":") : [];
  const t = tail === undefined ? [] : tail ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  if (groups.length !== 8) return undefined;
  return [128, groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n)];
}

/** A CIDR as [bits, first, last]; undefined unless `addr/prefix` with a prefix in range. */
export function parseCidr(s: unknown): [number, bigint, bigint] | undefined {
  if (typeof s !== "string") return undefined;
  const slash = s.indexOf("/");
  if (slash < 0) return undefined;
  const ip = parseIp(s.slice(0, slash));
  const prefixText = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const [bits, value] = ip;
  const prefix = Number(prefixText);
  if (prefix > bits) return undefined;
  const host = (1n << BigInt(bits - prefix)) - 1n;
  return [bits, value & ~host, (value & ~host) | host];
}

/** A CIDR or a single address (as a one-address range). */
function parseCidrOrIp(s: unknown): [number, bigint, bigint] | undefined {
  if (typeof s !== "string") return undefined;
  if (s.includes("/")) return parseCidr(s);
  const ip = parseIp(s);
  if (!ip) return undefined;
  // Go's IPNet.Contains compares an IPv4-mapped IPv6 address (::ffff:a.b.c.d) as IPv4.
  if (ip[0] === 128 && ip[1] >> 32n === 0xffffn) return [32, ip[1] & 0xffffffffn, ip[1] & 0xffffffffn];
  return [ip[0], ip[1], ip[1]];
}

export function cidrContains(cidr: unknown, x: unknown): boolean | undefined {
  const a = parseCidr(cidr);
  const b = parseCidrOrIp(x);
  if (!a || !b) return undefined;
  return a[0] === b[0] && a[1] <= b[1] && b[2] <= a[2];
}

function cidrIntersects(x: unknown, y: unknown): boolean | undefined {
  const a = parseCidr(x);
  const b = parseCidr(y);
  if (!a || !b) return undefined;
  return a[0] === b[0] && a[1] <= b[2] && b[1] <= a[2];
}

export const moreHostBuiltins: Record<string, Builtin> = {
  "net.cidr_contains": cidrContains,
  "net.cidr_intersects": cidrIntersects,
  "net.cidr_is_valid": (s: unknown) => parseCidr(s) !== undefined,
  "numbers.range_step": rangeStep,
  "urlquery.encode_object": encodeObject,
  "urlquery.decode_object": decodeObject,
  "units.parse": unitsParse,
  "units.parse_bytes": unitsParseBytes,
  "strings.any_prefix_match": anyMatch((s, b) => s.startsWith(b)),
  "strings.any_suffix_match": anyMatch((s, b) => s.endsWith(b)),
  "bits.and": bits2("bits.and", (a, b) => a & b),
  "bits.or": bits2("bits.or", (a, b) => a | b),
  "bits.xor": bits2("bits.xor", (a, b) => a ^ b),
  "bits.negate": (a: unknown) => {
    const x = int(a);
    return x === undefined ? undefined : exactNumber("bits.negate", ~x);
  },
  "bits.lsh": shift("bits.lsh", true),
  "bits.rsh": shift("bits.rsh", false),
  "crypto.hmac.md5": hmac("md5"),
  "crypto.hmac.sha1": hmac("sha1"),
  "crypto.hmac.sha256": hmac("sha256"),
  "crypto.hmac.sha512": hmac("sha512"),
  "crypto.hmac.equal": hmacEqual,
  "semver.is_valid": (v: unknown) => typeof v === "string" && SEMVER.test(v),
  "semver.compare": semverCompare,
  "strings.count": stringsCount,
  indexof_n: indexOfN,
  "object.union_n": unionN,
};
