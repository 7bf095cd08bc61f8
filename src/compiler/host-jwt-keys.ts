/**
 * Key material for the io.jwt.* host builtins (host-jwt.ts), read the way OPA reads it
 * (topdown/tokens.go `getKeysFromCertOrJWK`): a PEM `CERTIFICATE` or `PUBLIC KEY` block
 * (Go's `encoding/pem` rules, no data after the block), else a JWK or a JWKS (lestrrat-go/jwx).
 * Parsing is node:crypto (`X509Certificate`, `createPublicKey`, `createPrivateKey`), which is
 * synchronous: host builtins are called synchronously from WebAssembly.
 *
 * Anything OPA would reject throws (a builtin error). Key types Go cannot hold (curves other
 * than P-224/256/384/521, Ed448, X448, RSASSA-PSS keys) throw too, instead of verifying with a
 * key OPA would never have accepted.
 */
import { createPrivateKey, createPublicKey, createSecretKey, type KeyObject, X509Certificate } from "node:crypto";
import { JWS_ALGORITHMS } from "../util/jws.ts";

/** Thrown for every builtin error of this family (OPA raises it; strict mode surfaces it). */
export class JwtBuiltinError extends Error {
  override readonly name = "JwtBuiltinError";
}

export const fail = (message: string): never => {
  throw new JwtBuiltinError(message);
};

/** One verification key: the key, its `alg` and `kid` from a JWKS ("" when absent). */
export interface VerificationKey {
  readonly key: KeyObject;
  /** True for a JWK carrying private material (OPA's verify_* refuse those; decode_verify does not). */
  readonly isPrivate: boolean;
  readonly alg: string;
  readonly kid: string;
}

/** OPA's `tokenAlgorithms`. */
export const TOKEN_ALGORITHMS: ReadonlySet<string> = new Set(JWS_ALGORITHMS);

/** The curves Go's crypto/x509 and crypto/ecdsa accept (node:crypto names). */
const GO_CURVES = new Set(["P-224", "P-256", "P-384", "P-521", "secp224r1", "prime256v1", "secp384r1", "secp521r1"]);

/**
 * OPA's base64url.decode: unpadded input is padded first (RFC 7515 appendix C, length taken
 * before `\r`/`\n` are dropped, as Go's decoder drops them), then decoded strictly.
 */
export function goBase64UrlDecode(s: string): Buffer {
  let t = s;
  if (!t.endsWith("=")) {
    const r = t.length % 4;
    if (r === 1) fail(`illegal base64url string: ${s}`);
    t += r === 2 ? "==" : r === 3 ? "=" : "";
  }
  t = t.replace(/[\r\n]/g, "");
  if (t.length % 4 !== 0 || !/^[A-Za-z0-9_-]*(?:[A-Za-z0-9_-]{2}==|[A-Za-z0-9_-]{3}=)?$/.test(t)) {
    fail("illegal base64 data");
  }
  return Buffer.from(t, "base64url");
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Bytes as a string. Go keeps invalid UTF-8 (JSON decoding replaces each bad byte with U+FFFD,
 * differently from WHATWG's decoder), so invalid UTF-8 is an error here rather than a guess.
 */
export function utf8Text(b: Buffer, what: string): string {
  try {
    return utf8.decode(b);
  } catch {
    throw new Error(`${what} is not valid UTF-8: not decoded, the result could differ from OPA's`);
  }
}

/** Go's `getLine`: the line without its trailing " \t\r", and the rest after "\n". */
function getLine(s: string): [string, string] {
  const i = s.indexOf("\n");
  const line = i < 0 ? s : s.slice(0, i);
  return [line.replace(/[ \t\r]+$/, ""), i < 0 ? "" : s.slice(i + 1)];
}

/** Go's `encoding/pem.Decode`: the first valid block and the text after it, or undefined. */
export function goPemDecode(data: string): { type: string; bytes: Buffer; rest: string } | undefined {
  let rest = data;
  for (;;) {
    if (rest.startsWith("-----BEGIN ")) rest = rest.slice(11);
    else {
      const i = rest.indexOf("\n-----BEGIN ");
      if (i < 0) return undefined;
      rest = rest.slice(i + 12);
    }
    let typeLine: string;
    [typeLine, rest] = getLine(rest);
    if (!typeLine.endsWith("-----")) continue;
    typeLine = typeLine.slice(0, -5);
    let headers = 0;
    for (;;) {
      if (rest.length === 0) return undefined;
      const [line, next] = getLine(rest);
      if (!line.includes(":")) break;
      headers++;
      rest = next;
    }
    let endIndex: number;
    let endTrailerIndex: number;
    if (headers === 0 && rest.startsWith("-----END ")) {
      endIndex = 0;
      endTrailerIndex = 9;
    } else {
      endIndex = rest.indexOf("\n-----END ");
      endTrailerIndex = endIndex + 10;
    }
    if (endIndex < 0) continue;
    let endTrailer = rest.slice(endTrailerIndex);
    const endTrailerLen = typeLine.length + 5;
    if (endTrailer.length < endTrailerLen) continue;
    const restOfEndLine = endTrailer.slice(endTrailerLen);
    endTrailer = endTrailer.slice(0, endTrailerLen);
    if (!endTrailer.startsWith(typeLine) || !endTrailer.endsWith("-----")) continue;
    if (getLine(restOfEndLine)[0].length !== 0) continue;
    const b64 = rest.slice(0, endIndex).replace(/[ \t\r\n]/g, "");
    if (b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64)) continue;
    const bytes = Buffer.from(b64, "base64");
    rest = getLine(rest.slice(endIndex + 9))[1];
    return { type: typeLine, bytes, rest };
  }
}

/**
 * A public key Go would hold. DSA and X25519 keys parse in Go but verify nothing. Other types
 * (Ed448, other curves, RSASSA-PSS keys) fail the evaluation (a plain Error, not a builtin
 * error that non-strict mode would turn into undefined): Go answers them in ways not mirrored.
 */
function goPublicKey(key: KeyObject, what: string): KeyObject {
  const t = key.asymmetricKeyType;
  if (t === "rsa" || t === "ed25519" || t === "dsa" || t === "x25519") return key;
  if (t === "ec" && GO_CURVES.has(key.asymmetricKeyDetails?.namedCurve ?? "")) return key;
  throw new Error(`${what}: key type ${t ?? "unknown"} is not supported by Arbiter's io.jwt builtins`);
}

function jwkString(jwk: Record<string, unknown>, name: string, required: boolean): string | undefined {
  const v = jwk[name];
  if (v === undefined && !required) return undefined;
  if (typeof v !== "string") fail(`failed to parse a JWK key (set): "${name}" must be a string`);
  return v as string;
}

/** One JWK as a key (jwx: RSA, EC on Go's curves, OKP Ed25519/X25519, oct). */
export function keyFromJwk(jwk: unknown): { key: KeyObject; isPrivate: boolean; alg: string; kid: string } {
  if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk))
    return fail("failed to parse a JWK key (set): not an object");
  const o = jwk as Record<string, unknown>;
  const kty = jwkString(o, "kty", true)!;
  const alg = jwkString(o, "alg", false) ?? "";
  const kid = jwkString(o, "kid", false) ?? "";
  let key: KeyObject;
  let isPrivate = false;
  try {
    if (kty === "oct") {
      key = createSecretKey(goBase64UrlDecode(jwkString(o, "k", true)!));
    } else if (kty === "RSA" || kty === "EC" || kty === "OKP") {
      if (kty === "EC" && !["P-256", "P-384", "P-521"].includes(String(o.crv)))
        fail(`unsupported curve ${String(o.crv)}`);
      if (kty === "OKP" && o.crv !== "Ed25519" && o.crv !== "X25519") fail(`unsupported curve ${String(o.crv)}`);
      isPrivate = o.d !== undefined;
      const input = { key: o as never, format: "jwk" as const };
      key = isPrivate ? createPrivateKey(input) : createPublicKey(input);
    } else {
      return fail(`failed to parse a JWK key (set): unsupported kty ${kty}`);
    }
  } catch (err) {
    if (err instanceof JwtBuiltinError) throw err;
    return fail(`failed to parse a JWK key (set): ${(err as Error).message}`);
  }
  return { key, isPrivate, alg, kid };
}

/** A JWK, or a JWKS (`{"keys": [...]}`), as jwx's `jwk.Parse` reads it. */
export function parseJwkSet(text: string): ReturnType<typeof keyFromJwk>[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return fail("failed to parse a JWK key (set): invalid JSON");
  }
  if (typeof v === "object" && v !== null && !Array.isArray(v) && "keys" in v) {
    const keys = (v as { keys: unknown }).keys;
    if (!Array.isArray(keys)) return fail("failed to parse a JWK key (set): keys must be an array");
    return keys.map(keyFromJwk);
  }
  return [keyFromJwk(v)];
}

/** OPA's getKeysFromCertOrJWK. */
export function keysFromCertOrJwk(text: string): VerificationKey[] {
  const block = goPemDecode(text);
  if (block) {
    if (block.rest.length > 0) fail("extra data after a PEM certificate block");
    if (block.type === "CERTIFICATE") {
      let cert: X509Certificate;
      try {
        cert = new X509Certificate(block.bytes);
      } catch (err) {
        return fail(`failed to parse a PEM certificate: ${(err as Error).message}`);
      }
      return [
        { key: goPublicKey(cert.publicKey, "failed to parse a PEM certificate"), isPrivate: false, alg: "", kid: "" },
      ];
    }
    if (block.type === "PUBLIC KEY") {
      let key: KeyObject;
      try {
        key = createPublicKey({ key: block.bytes, format: "der", type: "spki" });
      } catch (err) {
        return fail(`failed to parse a PEM public key: ${(err as Error).message}`);
      }
      return [{ key: goPublicKey(key, "failed to parse a PEM public key"), isPrivate: false, alg: "", kid: "" }];
    }
    return fail("failed to extract a Key from the PEM certificate");
  }
  // Keys whose alg OPA does not know are skipped.
  return parseJwkSet(text).filter((k) => k.alg === "" || TOKEN_ALGORITHMS.has(k.alg));
}
