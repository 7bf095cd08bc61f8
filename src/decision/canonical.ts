/**
 * Canonical JSON (object keys sorted by UTF-16 code unit, no whitespace) and SHA-256 helpers.
 * The same canonical form keys the decision cache, fills the audit record's `input_sha256`, and
 * binds an approval to one Decide request.
 */
import * as crypto from "node:crypto";
import { createHash } from "node:crypto";
import { decideAction } from "./facts.ts";
import type { DecideRequest } from "./types.ts";

// Object keys repeat from request to request (the input schema's field names and the callers'
// attribute names): their quoted form is kept, up to a bound, instead of re-escaped every time.
const QUOTED = new Map<string, string>();
const QUOTED_MAX = 4096;

function quoted(key: string): string {
  let q = QUOTED.get(key);
  if (q === undefined) {
    q = JSON.stringify(key);
    if (QUOTED.size < QUOTED_MAX) QUOTED.set(key, q);
  }
  return q;
}

/**
 * Canonical JSON text of a JSON value; `undefined` members are dropped like JSON.stringify.
 * `omit` names top-level members to leave out (the cache key drops `now` and `request_id`
 * without copying the input).
 */
export function canonicalJson(value: unknown, omit?: ReadonlySet<string>): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null || typeof value !== "object") {
    const text = JSON.stringify(value);
    return text === undefined ? "null" : text;
  }
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ",";
      out += canonicalJson(value[i]);
    }
    return out + "]";
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length > 1) keys.sort();
  let out = "{";
  let first = true;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const v = obj[key];
    if (v === undefined || (omit !== undefined && omit.has(key))) continue;
    if (!first) out += ",";
    first = false;
    out += quoted(key) + ":" + canonicalJson(v);
  }
  return out + "}";
}

// One-shot `crypto.hash` (Node >= 20.12) costs about a third of createHash().update().digest()
// for the few hundred bytes of a policy input; fall back where it is missing.
const oneShot = (crypto as { hash?: (alg: string, data: string, enc: "hex") => string }).hash;

export function sha256Hex(text: string): string {
  return oneShot !== undefined ? oneShot("sha256", text, "hex") : createHash("sha256").update(text).digest("hex");
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
