/**
 * OPA's io.jwt.* builtins as host builtins (issue #13), following OPA's topdown/tokens.go:
 * io.jwt.decode, io.jwt.verify_{hs,rs,ps,es}{256,384,512}, io.jwt.verify_eddsa,
 * io.jwt.decode_verify, io.jwt.encode_sign and io.jwt.encode_sign_raw.
 *
 * Host builtins are called synchronously from WebAssembly, so everything here is node:crypto;
 * `jose` (async-only) cannot be used. Contract as host-builtins.ts: JSON-shaped values in, a
 * JSON-shaped value out, `undefined` where OPA raises a builtin error (strict mode turns it
 * into an abort). Where the answer could differ from OPA's (a number JavaScript cannot hold
 * exactly, invalid UTF-8, a key type Go treats otherwise) the evaluation fails instead.
 *
 * Known gap: OPA keeps the spelling of a number literal written in the policy (`1e3`, `1.50`);
 * encode_sign sees only the value, so only integers within 2^53 are encoded (others fail).
 */
import { exactDecimal } from "./host-builtins-more.ts";
import type { HostBuiltin } from "./host-types.ts";
import { timeNowNs } from "./host-now.ts";
import { compareCodePoints } from "../util/json-text.ts";
import { parseExactJson } from "./host-exact-json.ts";
import { algInfo, ecVerify, edVerify, hmacVerify, jwsSign, jwsVerify, rsaVerify } from "./host-jwt-crypto.ts";
import {
  fail,
  goBase64UrlDecode,
  JwtBuiltinError,
  keysFromCertOrJwk,
  parseJwkSet,
  TOKEN_ALGORITHMS,
  utf8Text,
  type VerificationKey,
} from "./host-jwt-keys.ts";
import { isObject } from "../util/object.ts";

type Json = Record<string, unknown>;

/** Nested tokens (`cty: JWT`) are followed at most this deep. */
const MAX_NESTING = 16;

/** A number literal as sign and exact decimal; undefined for non-numbers. */
function decimal(text: string): { neg: boolean; int: bigint; scale: number } | undefined {
  const neg = text.startsWith("-");
  const d = exactDecimal(neg ? text.slice(1) : text);
  return d && { neg, ...d };
}

/** Exact comparison of two decimal number texts (OPA compares numbers as rationals). */
export function compareDecimal(a: string, b: string): number {
  const x = decimal(a);
  const y = decimal(b);
  if (!x || !y) throw new Error(`not a number: ${x ? b : a}`);
  const scale = Math.max(x.scale, y.scale);
  const xi = (x.neg ? -x.int : x.int) * 10n ** BigInt(scale - x.scale);
  const yi = (y.neg ? -y.int : y.int) * 10n ** BigInt(scale - y.scale);
  return xi < yi ? -1 : xi > yi ? 1 : 0;
}

/**
 * Every number literal of a JSON text must be held exactly by a JavaScript number (its
 * shortest form has the same value), else the evaluation fails rather than answer a rounded
 * value where OPA keeps the literal.
 */
function checkNumbers(text: string, what: string): void {
  const re = /"(?:[^"\\]|\\.)*"|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const lit = m[1];
    if (lit === undefined) continue;
    const x = Number(lit);
    if (!Number.isFinite(x) || compareDecimal(lit, String(x)) !== 0) {
      throw new Error(
        `${what}: the number ${lit} is not held exactly by a JavaScript number (OPA's numbers are arbitrary precision)`,
      );
    }
  }
}

/** OPA's extractJSONObject over decoded bytes. */
function jsonObject(bytes: Buffer, what: string): Json {
  const text = utf8Text(bytes, what);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    return fail(`${what}: invalid JSON: ${(err as Error).message}`);
  }
  if (!isObject(v)) return fail("decoded JSON type was not an Object");
  checkNumbers(text, what);
  return v;
}

interface Token {
  readonly header: string;
  readonly payload: string;
  readonly signature: string;
}

/** OPA's decodeJWT. */
function splitToken(jwt: unknown): Token {
  if (typeof jwt !== "string") return fail("operand 1 must be a string");
  if (!jwt.includes(".")) fail("encoded JWT had no period separators");
  const parts = jwt.split(".");
  if (parts.length !== 3) fail(`encoded JWT must have 3 sections, found ${parts.length}`);
  return { header: parts[0]!, payload: parts[1]!, signature: parts[2]! };
}

function b64(part: string, what: string): Buffer {
  try {
    return goBase64UrlDecode(part);
  } catch (err) {
    return fail(`JWT ${what} had invalid encoding: ${(err as Error).message}`);
  }
}

/** OPA's decodeHeader: base64url, a JSON object, not a JWE. */
function decodeHeader(t: Token): Json {
  const h = jsonObject(b64(t.header, "header"), "bad JWT header");
  if (h.enc !== undefined) fail("JWT is a JWE object, which is not supported");
  return h;
}

interface Header {
  alg: string;
  kid: string;
  cty: string;
  valid: boolean;
}

/** OPA's parseTokenHeader and tokenHeader.valid. */
function parseHeader(h: Json): Header {
  const out: Header = { alg: "", kid: "", cty: "", valid: true };
  const unknown: string[] = [];
  let crit: Set<string> | undefined;
  for (const [k, v] of Object.entries(h)) {
    if (k === "alg" || k === "kid" || k === "typ" || k === "cty") {
      if (typeof v !== "string") fail(`${k}: must be a string`);
      if (k !== "typ") out[k] = v as string;
    } else if (k === "crit") {
      if (!Array.isArray(v)) fail("crit: must be a list");
      // OPA stops at the first non-string element.
      crit = new Set();
      for (const e of v as unknown[]) {
        if (typeof e !== "string") break;
        crit.add(e);
      }
      if (crit.size === 0) fail("crit: must be a nonempty list");
    } else {
      unknown.push(k);
    }
  }
  out.valid = out.alg !== "" && !unknown.some((u) => crit?.has(u));
  return out;
}

const signingInput = (t: Token): Buffer => Buffer.from(`${t.header}.${t.payload}`, "utf8");

/** io.jwt.decode: [header, payload, signature as hex]; nested tokens (cty "JWT") are followed. */
function jwtDecode(jwt: unknown, depth = 0): unknown[] {
  if (depth > MAX_NESTING) throw new Error(`io.jwt.decode: tokens nested more than ${MAX_NESTING} deep`);
  const t = splitToken(jwt);
  const header = decodeHeader(t);
  const p = b64(t.payload, "payload");
  if (header.cty !== undefined) {
    if (typeof header.cty !== "string") fail("cty: must be a string");
    if (header.cty === "JWT") {
      // The inner token may be quoted (jwt.io's behaviour): OPA trims quotes from both ends.
      return jwtDecode(utf8Text(p, "JWT payload").replace(/^["']+|["']+$/g, ""), depth + 1);
    }
  }
  const payload = jsonObject(p, "JWT payload");
  return [header, payload, b64(t.signature, "signature").toString("hex")];
}

type KeyVerify = (k: VerificationKey, data: Buffer, sig: Buffer) => boolean;

/** OPA's builtinJWTVerify: a key with the token's kid first, else every key that fits. */
function verifyWithKeys(jwt: unknown, keyText: unknown, check: KeyVerify): boolean {
  const t = splitToken(jwt);
  if (typeof keyText !== "string") return fail("operand 2 must be a string");
  const keys = keysFromCertOrJwk(keyText);
  const sig = b64(t.signature, "signature");
  const header = parseHeader(decodeHeader(t));
  const data = signingInput(t);
  if (header.kid !== "") {
    const k = keys.find((x) => x.kid === header.kid);
    if (k) return check(k, data, sig);
  }
  return keys.some((k) => (k.alg === "" || k.alg === header.alg) && check(k, data, sig));
}

/** verify_rs*, verify_ps*, verify_es*, verify_eddsa: public keys only (OPA's type assertions). */
function verifyAsym(alg: string): (jwt: unknown, key: unknown) => boolean {
  const info = algInfo(alg)!;
  const check: KeyVerify = (k, data, sig) => {
    if (k.key.type !== "public") return false;
    switch (info.family) {
      case "RS":
        return rsaVerify(k.key, info.hash, info.hashLen, data, sig, false);
      case "PS":
        return rsaVerify(k.key, info.hash, info.hashLen, data, sig, "auto");
      case "ES":
        return ecVerify(k.key, info.hash, data, sig, false);
      default:
        return edVerify(k.key, data, sig);
    }
  };
  return (jwt, key) => verifyWithKeys(jwt, key, check);
}

/** verify_hs*: the header is not even decoded (OPA's builtinJWTVerifyHS). */
function verifyHs(hash: string): (jwt: unknown, secret: unknown) => boolean {
  return (jwt, secret) => {
    if (typeof jwt !== "string") return fail("operand 1 must be a string");
    if (typeof secret !== "string") return fail("operand 2 must be a string");
    const t = splitToken(jwt);
    return hmacVerify(Buffer.from(secret, "utf8"), hash, signingInput(t), b64(t.signature, "signature"));
  };
}

interface Constraints {
  keys?: VerificationKey[];
  secret: string;
  alg: string;
  iss: string;
  aud: string;
  time: number;
}

/** OPA's parseTokenConstraints and validate. */
function parseConstraints(o: unknown): Constraints {
  if (!isObject(o)) return fail("operand 2 must be an object");
  const c: Constraints = { secret: "", alg: "", iss: "", aud: "", time: -1 };
  for (const [k, raw] of Object.entries(o)) {
    let v: unknown = raw;
    if (k === "cert") {
      if (typeof v !== "string") fail("cert constraint: must be a string");
      c.keys = keysFromCertOrJwk(v as string);
    } else if (k === "secret" || k === "alg" || k === "iss" || k === "aud") {
      if (typeof v !== "string") fail(`${k} constraint: must be a string`);
      c[k] = v as string;
    } else if (k === "time") {
      // An exact integer (HOST_JSON_IO) becomes the nearest float64, as OPA's Number.Float64().
      if (typeof v === "bigint") v = Number(v);
      if (typeof v !== "number") fail("token time constraint: must be a number");
      if ((v as number) < 0) fail("token time constraint: must not be negative");
      c.time = v as number;
    } else {
      fail(`unknown token validation constraint: ${k}`);
    }
  }
  if (c.time === -1) c.time = timeNowNs();
  const n = (c.keys !== undefined ? 1 : 0) + (c.secret !== "" ? 1 : 0);
  if (n > 1) fail("duplicate key constraints");
  if (n < 1) fail("no key constraint");
  return c;
}

/** OPA's tokenConstraints.verify (jwsbb.Verify with the header's alg). */
function constraintsVerify(c: Constraints, h: Header, data: Buffer, sig: Buffer): boolean {
  if (c.keys !== undefined) {
    if (h.kid !== "") {
      const k = c.keys.find((x) => x.kid === h.kid);
      if (k) return jwsVerify(k.key, h.alg, data, sig);
    }
    return c.keys.some((k) => (k.alg === "" || k.alg === h.alg) && jwsVerify(k.key, h.alg, data, sig));
  }
  const info = algInfo(h.alg);
  return info?.family === "HS" && hmacVerify(Buffer.from(c.secret, "utf8"), info.hash, data, sig);
}

const UNVERIFIED: readonly unknown[] = [false, {}, {}];

/**
 * io.jwt.decode_verify(jwt, constraints): [valid, header, payload]. A bad signature, an alg
 * other than the constraint's, a missing or wrong iss/aud, an expired or not-yet-valid token
 * give [false, {}, {}]; malformed tokens and constraints are builtin errors. exp and nbf are
 * compared exactly with the constraint's time (ns, default now) in seconds.
 */
function decodeVerify(jwt: unknown, constraints: unknown): readonly unknown[] {
  const c = parseConstraints(constraints);
  let token: unknown = jwt;
  let header: Json;
  let p: Buffer;
  for (let depth = 0; ; depth++) {
    if (depth > MAX_NESTING) throw new Error(`io.jwt.decode_verify: tokens nested more than ${MAX_NESTING} deep`);
    const t = splitToken(token);
    header = decodeHeader(t);
    const h = parseHeader(header);
    if (!h.valid) return UNVERIFIED;
    if (c.alg !== "" && c.alg !== h.alg) return UNVERIFIED;
    const sig = b64(t.signature, "signature");
    if (!constraintsVerify(c, h, signingInput(t), sig)) return UNVERIFIED;
    p = b64(t.payload, "payload");
    if (h.cty.toUpperCase() !== "JWT") break;
    token = utf8Text(p, "JWT payload");
  }
  const payload = jsonObject(p, "JWT payload");
  if (c.iss !== "") {
    if (payload.iss === undefined) return UNVERIFIED;
    if (typeof payload.iss !== "string") throw new Error("io.jwt.decode_verify: iss is not a string");
    if (payload.iss !== c.iss) return UNVERIFIED;
  }
  if (payload.aud !== undefined) {
    const aud = payload.aud;
    const ok = typeof aud === "string" ? aud === c.aud : Array.isArray(aud) && aud.some((a) => a === c.aud);
    if (!ok) return UNVERIFIED;
  } else if (c.aud !== "") {
    return UNVERIFIED;
  }
  // OPA: the time in seconds as a float64's shortest form, compared exactly with exp and nbf.
  const now = String(c.time / 1e9);
  if (payload.exp !== undefined) {
    if (typeof payload.exp !== "number") fail("exp value must be a number");
    if (compareDecimal(now, String(payload.exp)) !== -1) return UNVERIFIED;
  }
  if (payload.nbf !== undefined) {
    if (typeof payload.nbf !== "number") fail("nbf value must be a number");
    if (compareDecimal(now, String(payload.nbf)) === -1) return UNVERIFIED;
  }
  return [true, header, payload];
}

/** Go's json.Marshal of a JSON-shaped value: sorted keys, HTML characters escaped. */
export function goJsonMarshal(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "boolean") return String(v);
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) {
      throw new Error(
        `the number ${v} may not be spelled as OPA spells it in JSON (only integers within 2^53 are encoded)`,
      );
    }
    return String(v);
  }
  if (typeof v === "string") {
    return JSON.stringify(v).replace(
      /[<>&\u2028\u2029]/g,
      (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
    );
  }
  if (Array.isArray(v)) return `[${v.map(goJsonMarshal).join(",")}]`;
  if (isObject(v)) {
    // Go sorts map keys by their UTF-8 bytes.
    const keys = Object.keys(v).sort(compareCodePoints);
    return `{${keys.map((k) => `${goJsonMarshal(k)}:${goJsonMarshal(v[k])}`).join(",")}}`;
  }
  throw new Error(`cannot encode a ${typeof v} as JSON`);
}

/** A top-level string member as fastjson reads it (the first occurrence): ambiguity fails. */
function headerString(text: string, obj: Json, name: string): string | undefined {
  if (text.split(JSON.stringify(name)).length > 2) {
    throw new Error(`io.jwt.encode_sign: the header names "${name}" more than once`);
  }
  const v = obj[name];
  return typeof v === "string" ? v : undefined;
}

/** OPA's commonBuiltinJWTEncodeSign over the raw header, payload and JWK texts. */
function encodeSignRaw(headerText: string, payloadText: string, jwkText: string): string {
  const keys = parseJwkSet(jwkText);
  if (keys.length === 0) fail("no keys found in JWK set");
  let h: unknown;
  try {
    h = JSON.parse(headerText);
  } catch {
    return fail("missing or invalid 'alg' header: cannot parse JSON");
  }
  const obj = isObject(h) ? h : {};
  const alg = headerString(headerText, obj, "alg");
  if (alg === undefined || alg === "") return fail("missing or invalid 'alg' header");
  if (!TOKEN_ALGORITHMS.has(alg)) fail(`unknown JWS algorithm: ${alg}`);
  const typ = headerString(headerText, obj, "typ");
  if (typ === undefined || typ === "JWT") {
    try {
      JSON.parse(payloadText);
    } catch {
      fail("type is JWT but payload is not JSON");
    }
  }
  const input = `${Buffer.from(headerText, "utf8").toString("base64url")}.${Buffer.from(payloadText, "utf8").toString("base64url")}`;
  const sig = jwsSign(keys[0]!.key, alg, Buffer.from(input, "utf8"));
  return `${input}.${sig.toString("base64url")}`;
}

function encodeSign(header: unknown, payload: unknown, jwk: unknown): string {
  return encodeSignRaw(goJsonMarshal(header), goJsonMarshal(payload), goJsonMarshal(jwk));
}

function encodeSignRawOperands(header: unknown, payload: unknown, jwk: unknown): string {
  if (typeof jwk !== "string") return fail("operand 3 must be a string");
  if (typeof header !== "string") return fail("operand 1 must be a string");
  if (typeof payload !== "string") return fail("operand 2 must be a string");
  return encodeSignRaw(header, payload, jwk);
}

/** A builtin error becomes undefined (OPA's non-strict mode); any other throw fails the evaluation. */
function builtin<A extends unknown[]>(f: (...args: A) => unknown): (...args: A) => unknown {
  return (...args: A) => {
    try {
      return f(...args);
    } catch (err) {
      if (err instanceof JwtBuiltinError) return undefined;
      throw err;
    }
  };
}

export const jwtHostBuiltins: Record<string, HostBuiltin> = {
  "io.jwt.decode": builtin((t: unknown) => jwtDecode(t)),
  // How policies build unsigned tokens (OPA's own JWT tests use it); undefined for a non-string.
  // A HOST_JSON_IO builtin: the constraints' `time` (ns, beyond 2^53) arrives exactly.
  "io.jwt.decode_verify": (jwtText: unknown, constraintsText: unknown) => {
    if (typeof jwtText !== "string" || typeof constraintsText !== "string") return undefined;
    const out = builtin(decodeVerify)(parseExactJson(jwtText), parseExactJson(constraintsText));
    // header and payload passed checkNumbers: JSON.stringify spells their numbers exactly.
    return out === undefined ? undefined : JSON.stringify(out);
  },
  "io.jwt.encode_sign": builtin(encodeSign),
  "io.jwt.encode_sign_raw": builtin(encodeSignRawOperands),
  "io.jwt.verify_hs256": builtin(verifyHs("sha256")),
  "io.jwt.verify_hs384": builtin(verifyHs("sha384")),
  "io.jwt.verify_hs512": builtin(verifyHs("sha512")),
  "io.jwt.verify_eddsa": builtin(verifyAsym("EdDSA")),
  ...Object.fromEntries(
    ["RS", "PS", "ES"].flatMap((f) =>
      ["256", "384", "512"].map((n) => [`io.jwt.verify_${f.toLowerCase()}${n}`, builtin(verifyAsym(f + n))]),
    ),
  ),
};
