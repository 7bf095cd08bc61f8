/**
 * Signing and verification primitives for the io.jwt.* host builtins, with the checks Go's
 * crypto packages make (OPA's verify_* builtins and lestrrat-go/jwx's `jwsbb`, which
 * decode_verify and encode_sign use). node:crypto is used because host builtins are called
 * synchronously from WebAssembly: `jose` is async-only and cannot serve them.
 */
import { createHmac, createPublicKey, type KeyObject, sign, timingSafeEqual, verify, constants } from "node:crypto";
import { fail } from "./host-jwt-keys.ts";

export type Family = "HS" | "RS" | "PS" | "ES" | "EdDSA";

/** `RS384` -> { family: "RS", hash: "sha384", hashLen: 48 }. */
export function algInfo(alg: string): { family: Family; hash: string; hashLen: number } | undefined {
  if (alg === "EdDSA") return { family: "EdDSA", hash: "", hashLen: 0 };
  const m = /^(HS|RS|PS|ES)(256|384|512)$/.exec(alg);
  if (!m) return undefined;
  return { family: m[1] as Family, hash: `sha${m[2]}`, hashLen: Number(m[2]) / 8 };
}

/** Go 1.24+ refuses RSA keys under 1024 bits for every operation. */
const RSA_MIN_BITS = 1024;

function rsaBytes(key: KeyObject): number | undefined {
  if (key.asymmetricKeyType !== "rsa") return undefined;
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  return bits < RSA_MIN_BITS ? undefined : Math.ceil(bits / 8);
}

/**
 * RSA verification as Go's rsa.VerifyPKCS1v15 / VerifyPSS: the signature must be exactly the
 * modulus length (OpenSSL would accept a shorter one). `pss`: false for PKCS#1 v1.5, "auto"
 * for a salt of any length (OPA's verify_ps*), "hash" for a salt as long as the hash (jwx).
 */
export function rsaVerify(
  key: KeyObject,
  hash: string,
  hashLen: number,
  data: Buffer,
  sig: Buffer,
  pss: false | "auto" | "hash",
): boolean {
  const size = rsaBytes(key);
  if (size === undefined || sig.length !== size) return false;
  try {
    if (pss === false) return verify(hash, data, key, sig);
    const saltLength = pss === "auto" ? constants.RSA_PSS_SALTLEN_AUTO : hashLen;
    return verify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }, sig);
  } catch {
    return false;
  }
}

function derInteger(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  let v = b.subarray(i);
  if (v.length === 0) v = Buffer.from([0]);
  if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return Buffer.concat([Buffer.from([0x02]), derLength(v.length), v]);
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let x = n; x > 0; x = Math.floor(x / 256)) bytes.unshift(x & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Byte length of a coordinate of the key's curve. */
export function curveBytes(key: KeyObject): number | undefined {
  if (key.asymmetricKeyType !== "ec") return undefined;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const bits =
    curve === "prime256v1"
      ? 256
      : curve === "secp384r1"
        ? 384
        : curve === "secp521r1"
          ? 521
          : curve === "secp224r1"
            ? 224
            : 0;
  return bits === 0 ? undefined : Math.ceil(bits / 8);
}

/**
 * ECDSA verification of an `r || s` signature. OPA's verify_es* split it in two halves of any
 * length (`exactLength` false); jwx requires twice the curve's coordinate size. r and s go to
 * OpenSSL as DER, so any split verifies exactly as Go's ecdsa.Verify would.
 */
export function ecVerify(key: KeyObject, hash: string, data: Buffer, sig: Buffer, exactLength: boolean): boolean {
  const size = curveBytes(key);
  if (size === undefined) return false;
  if (exactLength && sig.length !== 2 * size) return false;
  const n = exactLength ? size : Math.floor(sig.length / 2);
  const body = Buffer.concat([derInteger(sig.subarray(0, n)), derInteger(sig.subarray(n))]);
  const der = Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
  try {
    return verify(hash, data, { key, dsaEncoding: "der" }, der);
  } catch {
    return false;
  }
}

export function edVerify(key: KeyObject, data: Buffer, sig: Buffer): boolean {
  if (key.asymmetricKeyType !== "ed25519" || sig.length !== 64) return false;
  try {
    return verify(null, data, key, sig);
  } catch {
    return false;
  }
}

export function hmacVerify(secret: Buffer, hash: string, data: Buffer, sig: Buffer): boolean {
  const mac = createHmac(hash, secret).update(data).digest();
  return mac.length === sig.length && timingSafeEqual(mac, sig);
}

/**
 * jwsbb.Verify: the key must be of the algorithm's kind (an HMAC secret for HS*, an RSA key
 * for RS and PS, ...), else the signature does not verify. A private key verifies as its
 * public half (Go's crypto.Signer). Unknown algorithms ("none" included) never verify.
 */
export function jwsVerify(key: KeyObject, alg: string, data: Buffer, sig: Buffer): boolean {
  const info = algInfo(alg);
  if (!info) return false;
  if (info.family === "HS") {
    if (key.type !== "secret") return false;
    const secret = key.export();
    return secret.length > 0 && hmacVerify(secret, info.hash, data, sig);
  }
  if (key.type === "secret") return false;
  const pub = key.type === "private" ? createPublicKey(key) : key;
  switch (info.family) {
    case "RS":
      return rsaVerify(pub, info.hash, info.hashLen, data, sig, false);
    case "PS":
      return rsaVerify(pub, info.hash, info.hashLen, data, sig, "hash");
    case "ES":
      return ecVerify(pub, info.hash, data, sig, true);
    default:
      return edVerify(pub, data, sig);
  }
}

/** jwsbb.Sign with the first key of a JWK set; a key of the wrong kind is an error. */
export function jwsSign(key: KeyObject, alg: string, data: Buffer): Buffer {
  const info = algInfo(alg);
  if (!info) return fail(`unknown JWS algorithm: ${alg}`);
  if (info.family === "HS") {
    if (key.type !== "secret") return fail("jwsbb.Sign: invalid key type. []byte is required");
    const secret = key.export();
    if (secret.length === 0) return fail("missing key while signing payload");
    return createHmac(info.hash, secret).update(data).digest();
  }
  if (key.type !== "private") return fail(`jwsbb.Sign: a private key is required for ${alg}`);
  try {
    switch (info.family) {
      case "RS":
      case "PS":
        if (rsaBytes(key) === undefined)
          return fail(`jwsbb.Sign: an RSA key of at least ${RSA_MIN_BITS} bits is required for ${alg}`);
        if (info.family === "RS") return sign(info.hash, data, key);
        return sign(info.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: info.hashLen });
      case "ES":
        if (curveBytes(key) === undefined) return fail(`jwsbb.Sign: an ECDSA key is required for ${alg}`);
        return sign(info.hash, data, { key, dsaEncoding: "ieee-p1363" });
      default:
        if (key.asymmetricKeyType !== "ed25519") return fail("jwsbb.Sign: an Ed25519 key is required for EdDSA");
        return sign(null, data, key);
    }
  } catch (err) {
    return fail(`jwsbb.Sign: ${(err as Error).message}`);
  }
}
