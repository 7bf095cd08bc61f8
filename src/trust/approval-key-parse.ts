/**
 * Parsing approvers' public keys (a JWKS or one PEM public key) into the keys grants are verified
 * against, with the rules of approval-keys.ts: Ed25519, P-256 and RSA of at least 2048 bits;
 * symmetric and private keys refused; a key without `kid` named by its RFC 7638 thumbprint.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { calculateJwkThumbprint, importJWK, type JWK } from "jose";

/** The signature algorithms a grant may use (the allow-list handed to the JWS verifier). */
export const GRANT_ALGORITHMS = ["EdDSA", "ES256", "RS256"] as const;
export type GrantAlgorithm = (typeof GRANT_ALGORITHMS)[number];

/** One approver public key, ready for verification. */
export interface ApprovalKey {
  readonly kid: string;
  /** The one algorithm this key verifies (a key never serves two algorithms). */
  readonly alg: GrantAlgorithm;
  readonly key: CryptoKey;
}

/** A start-up or reload failure of the key source; the message names the variable. */
export class ApprovalKeysError extends Error {
  override readonly name = "ApprovalKeysError";
}

/** Largest key file or JWKS response read, in bytes. */
export const MAX_KEYS_BYTES = 1_048_576;
/** Most keys one set may hold. */
export const MAX_KEYS = 100;
/** Smallest RSA modulus accepted, in bits. */
const MIN_RSA_BITS = 2048;
// -----------------------------------------------------------------------------------

function algFor(jwk: JWK): GrantAlgorithm | undefined {
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") return "EdDSA";
  if (jwk.kty === "EC" && jwk.crv === "P-256") return "ES256";
  if (jwk.kty === "RSA") return "RS256";
  return undefined;
}

/** One public JWK -> an ApprovalKey; `where` names it in errors. */
async function keyFromJwk(jwk: JWK, where: string): Promise<ApprovalKey> {
  if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk)) throw new Error(`${where} is not a JSON object`);
  if (jwk.kty === "oct")
    throw new Error(`${where} is a symmetric (oct) key; only public keys (Ed25519, P-256, RSA) are accepted`);
  if (jwk.d !== undefined || jwk.p !== undefined || jwk.k !== undefined) {
    throw new Error(`${where} holds private key material; publish only the public key`);
  }
  const alg = algFor(jwk);
  if (alg === undefined) {
    throw new Error(
      `${where}: unsupported key (kty ${String(jwk.kty)}, crv ${String(jwk.crv)}); expected Ed25519, P-256 or RSA`,
    );
  }
  if (jwk.alg !== undefined && jwk.alg !== alg) {
    throw new Error(`${where}: "alg" ${JSON.stringify(jwk.alg)} does not fit the key; expected "${alg}"`);
  }
  if (jwk.use !== undefined && jwk.use !== "sig")
    throw new Error(`${where}: "use" must be "sig", got ${JSON.stringify(jwk.use)}`);
  if (jwk.kid !== undefined && (typeof jwk.kid !== "string" || jwk.kid === "" || jwk.kid.length > 256)) {
    throw new Error(`${where}: "kid" must be a string of 1 to 256 characters`);
  }
  // Only the members that define the public key: a JWKS from an identity provider may carry
  // x5c, key_ops, ... that importJWK would otherwise check against the verify usage.
  const pub: JWK =
    jwk.kty === "RSA"
      ? { kty: "RSA", n: jwk.n, e: jwk.e }
      : jwk.kty === "EC"
        ? { kty: "EC", crv: jwk.crv, x: jwk.x, y: jwk.y }
        : { kty: "OKP", crv: jwk.crv, x: jwk.x };
  let key: CryptoKey;
  try {
    key = (await importJWK(pub, alg)) as CryptoKey;
  } catch (err) {
    throw new Error(`${where}: not a valid ${alg} public key (${(err as Error).message})`, { cause: err });
  }
  if (alg === "RS256") {
    const bits = (key.algorithm as RsaHashedKeyAlgorithm).modulusLength;
    if (bits < MIN_RSA_BITS)
      throw new Error(`${where}: RSA key of ${bits} bits; at least ${MIN_RSA_BITS} are required`);
  }
  const kid = jwk.kid ?? (await calculateJwkThumbprint(pub, "sha256"));
  return { kid, alg, key };
}

/** The public JWK of a PEM public key (SPKI), or of the public half of a key object. */
export function publicJwk(key: KeyObject): JWK {
  const pub = key.type === "public" ? key : createPublicKey(key);
  return pub.export({ format: "jwk" }) as JWK;
}

/**
 * Parses a key source's text: a JWKS document or one PEM public key. Throws an Error whose
 * message says what is wrong (the caller prefixes the variable and the source).
 */
export async function parseApprovalKeys(text: string): Promise<ApprovalKey[]> {
  const trimmed = text.trim();
  if (trimmed.startsWith("-----BEGIN")) {
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(trimmed)) {
      throw new Error("holds a private key; give the sidecar only the public key (arbiter keygen writes both)");
    }
    let ko: KeyObject;
    try {
      ko = createPublicKey({ key: trimmed, format: "pem" });
    } catch (err) {
      throw new Error(`not a valid PEM public key (${(err as Error).message})`, { cause: err });
    }
    return [await keyFromJwk(publicJwk(ko), "the PEM key")];
  }
  let doc: unknown;
  try {
    doc = JSON.parse(trimmed);
  } catch {
    throw new Error('is neither a JWKS (JSON {"keys": [...]}) nor a PEM public key');
  }
  const keys = (doc as { keys?: unknown } | null)?.keys;
  if (typeof doc !== "object" || doc === null || !Array.isArray(keys))
    throw new Error('is JSON but not a JWKS: expected {"keys": [...]}');
  if (keys.length === 0) throw new Error("is a JWKS without keys");
  if (keys.length > MAX_KEYS) throw new Error(`holds ${keys.length} keys; at most ${MAX_KEYS} are accepted`);
  const out: ApprovalKey[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < keys.length; i++) {
    const k = await keyFromJwk(
      keys[i] as JWK,
      `key ${i}${typeof (keys[i] as JWK)?.kid === "string" ? ` (kid ${JSON.stringify((keys[i] as JWK).kid)})` : ""}`,
    );
    if (seen.has(k.kid)) throw new Error(`kid ${JSON.stringify(k.kid)} appears twice`);
    seen.add(k.kid);
    out.push(k);
  }
  return out;
}
