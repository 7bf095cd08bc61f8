/**
 * Canonical JSON (object keys sorted by UTF-16 code unit, no whitespace) and SHA-256 helpers.
 * The same canonical form keys the decision cache, fills the audit record's `input_sha256`, and
 * binds an approval to one Decide request.
 *
 * Speed: see `canonicalJson`. The input builders in facts.ts create their objects with keys in
 * order, so an input usually serializes with one JSON.stringify call.
 */
import { quoteJson, sha256Hex } from "../util/json-text.ts";
import { decideAction } from "./facts.ts";
import type { DecideRequest } from "./types.ts";

// Object keys repeat from request to request (the input schema's field names and the callers'
// attribute names): their quoted form with the colon is kept, up to a bound, instead of
// re-escaped every time.
const MEMBER = new Map<string, string>();
const MEMBER_MAX = 4096;

function member(key: string): string {
  let q = MEMBER.get(key);
  if (q === undefined) {
    q = quoteJson(key) + ":";
    if (MEMBER.size < MEMBER_MAX) MEMBER.set(key, q);
  }
  return q;
}

const OBJECT_PROTO = Object.prototype;
// JSON.rawJSON objects (Node >= 21) have a null prototype and stringify as their raw text.
const isRawJson = (JSON as { isRawJSON?: (v: unknown) => boolean }).isRawJSON;
const ARRAY_PROTO = Array.prototype;

/**
 * True when `JSON.stringify(v)` is the canonical text of `v` (an object or array): every object
 * below is plain (prototype Object.prototype or null, so no toJSON) with its own keys already in
 * UTF-16 order (also the order JSON.stringify writes them), every array is a plain array, no
 * object member is a function or symbol (canonical: null; JSON.stringify drops them) and no
 * value is a bigint. Builds nothing.
 */
function stringifiable(v: object): boolean {
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== ARRAY_PROTO) return false;
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (typeof x === "object") {
        if (x !== null && !stringifiable(x)) return false;
      } else if (typeof x === "bigint") return false;
    }
    return true;
  }
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== OBJECT_PROTO && (proto !== null || isRawJson?.(v) === true)) return false;
  const o = v as Record<string, unknown>;
  let prev = "";
  let first = true;
  for (const k in o) {
    if (first) first = false;
    else if (!(prev < k)) return false;
    prev = k;
    const x = o[k];
    switch (typeof x) {
      case "object":
        if (x !== null && !stringifiable(x)) return false;
        break;
      case "function":
      case "symbol":
      case "bigint":
        return false;
    }
  }
  return true;
}

/**
 * Canonical JSON text of a JSON value; `undefined` members are dropped like JSON.stringify.
 * `omit` names top-level members to leave out (the cache key drops `now` and `request_id`
 * without copying the input).
 *
 * The canonical form: exactly JSON.stringify's text for each primitive (undefined, functions and
 * symbols: `null`), arrays element by element, objects (any object that is not an array; toJSON
 * ignored) as their own enumerable string keys in UTF-16 order. Computed as JSON.stringify of
 * the value when all its keys are already in order (`stringifiable`; one flat string), else by
 * hand (`text`), sorting only the objects whose keys are out of order. The hand-built text is a
 * rope of small pieces that costs about as much again to flatten (for hashing) as to build, so
 * JSON.stringify wins where it applies; a sorted copy to stringify costs more than either.
 */
export function canonicalJson(value: unknown, omit?: ReadonlySet<string>): string {
  if (typeof value !== "object" || value === null) return text(value);
  if (omit !== undefined && !Array.isArray(value)) return withoutMembers(value as Record<string, unknown>, omit);
  return stringifiable(value) ? JSON.stringify(value) : text(value);
}

function text(v: unknown): string {
  switch (typeof v) {
    case "string":
      return quoteJson(v);
    case "number":
      // Number#toString is JSON.stringify's number form (-0 included); non-finite is null.
      return Number.isFinite(v) ? "" + v : "null";
    case "boolean":
      return v ? "true" : "false";
    case "object":
      if (v === null) return "null";
      return Array.isArray(v) ? array(v) : object(v as Record<string, unknown>);
    case "bigint":
      return JSON.stringify(v); // throws like JSON.stringify does
    default:
      return "null"; // undefined, function, symbol: JSON.stringify gives undefined
  }
}

function array(a: readonly unknown[]): string {
  const n = a.length;
  if (n === 0) return "[]";
  let out = "[" + text(a[0]);
  for (let i = 1; i < n; i++) out += "," + text(a[i]);
  return out + "]";
}

/** The object's own enumerable keys in UTF-16 order (sorted only when they are not already). */
function sortedKeys(obj: object): string[] {
  const keys = Object.keys(obj);
  for (let i = 1; i < keys.length; i++) {
    if (!(keys[i - 1]! < keys[i]!)) {
      keys.sort();
      break;
    }
  }
  return keys;
}

function object(obj: Record<string, unknown>): string {
  const keys = sortedKeys(obj);
  let out = "{";
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const v = obj[key];
    if (v === undefined) continue;
    out += (out.length === 1 ? member(key) : "," + member(key)) + text(v);
  }
  return out + "}";
}

/** The canonical JSON of an object, whole and without the top-level members in `omit`. */
export interface CanonicalPair {
  readonly full: string;
  readonly partial: string;
}

/**
 * `{ full: canonicalJson(obj), partial: canonicalJson(obj, omit) }`: two JSON.stringify calls
 * when `obj` is all in order (see `withoutMembers`), else each top-level member serialized once.
 * The decision core needs both per call: the cache key hashes the input without `now` and
 * `request_id`, the audit event hashes all of it.
 */
export function canonicalPair(obj: Record<string, unknown>, omit: ReadonlySet<string>): CanonicalPair {
  if (stringifiable(obj)) {
    const rest = withoutNowAndRequestId(obj, omit);
    if (rest !== undefined) return { full: JSON.stringify(obj), partial: JSON.stringify(rest) };
  }
  const keys = sortedKeys(obj);
  let full = "{";
  let partial = "{";
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const v = obj[key];
    if (v === undefined) continue;
    const m = member(key) + canonicalJson(v);
    full += full.length === 1 ? m : "," + m;
    if (!omit.has(key)) partial += partial.length === 1 ? m : "," + m;
  }
  return { full: full + "}", partial: partial + "}" };
}

/**
 * For the omit set of the cache key, a shallow copy of `obj` without those two members (object
 * rest: same order, own "__proto__" kept as a member); undefined for any other set.
 */
function withoutNowAndRequestId(
  obj: Record<string, unknown>,
  omit: ReadonlySet<string>,
): Record<string, unknown> | undefined {
  if (omit.size !== 2 || !omit.has("now") || !omit.has("request_id")) return undefined;
  const { now: _now, request_id: _requestId, ...rest } = obj;
  return rest;
}

/**
 * `canonicalJson(obj, omit)`: JSON.stringify of a copy without the omitted members when `obj` is
 * all in order (the cache key's set only), else top-level members one by one, each with
 * `canonicalJson` (few pieces, cheap to flatten).
 */
function withoutMembers(obj: Record<string, unknown>, omit: ReadonlySet<string>): string {
  if (stringifiable(obj)) {
    const rest = withoutNowAndRequestId(obj, omit);
    if (rest !== undefined) return JSON.stringify(rest);
  }
  const keys = sortedKeys(obj);
  let out = "{";
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const v = obj[key];
    if (v === undefined || omit.has(key)) continue;
    out += (out.length === 1 ? member(key) : "," + member(key)) + canonicalJson(v);
  }
  return out + "}";
}

/**
 * The digest an approval is bound to: SHA-256 of the canonical
 * `{tenant_id, subject, action, resource, context}` of a Decide request, with the values of the
 * Decide input (docs/input-schema.md; `resource.tenant_id` resolved to the request's tenant when
 * empty). The request id, the clock and the approval token itself are not part of it.
 */
export function decideApprovalDigest(req: DecideRequest): string {
  return sha256Hex(canonicalJson(decideAction(req)));
}
