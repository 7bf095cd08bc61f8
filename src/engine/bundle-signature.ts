/**
 * OPA-compatible bundle signatures (issue #11): `/.signatures.json` holds
 * `{"signatures":["<compact JWS>"]}` whose payload is
 * `{"files":[{"name","hash","algorithm"}], "keyid"?, "scope"?}`.
 *
 * The rules follow OPA's `bundle/verify.go`, `bundle/hash.go` and `bundle/bundle.go`:
 * - exactly one JWS; the key is the configured one; the payload `scope` must equal the configured
 *   scope exactly ("" when neither is set);
 * - every file of the bundle except the signatures file(s) (OPA: any path ending in
 *   `signatures.json`) must be listed with a matching hash, and every listed file must exist;
 * - a file whose base name is `data.json`, `data.yaml`, `.manifest` or `signatures.json` is
 *   "structured": it is parsed and hashed over a canonical re-serialisation (object keys sorted by
 *   their UTF-8 bytes, no whitespace, strings escaped as Go's encoding/json does with HTML
 *   escaping off, numbers as written in the file, since OPA decodes with `UseNumber`); every other
 *   file (`policy.wasm`, `.rego`, `data.yml`, ...) is hashed over its raw bytes.
 *
 * `verifyBundleSignature` is pure (bytes in, verdict out: no I/O, no clock, no metrics) so it
 * can run wherever the files are read, including a worker thread. Its one caller is the engine
 * host, after reading a bundle's files and before parsing them.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { CompactSign, compactVerify, decodeProtectedHeader } from "jose";
import { BundleError } from "./errors.ts";
import { canonicalStructuredBytes, isStructuredFile } from "./bundle-canonical.ts";
import { JWS_ALGORITHMS, type JwsAlgorithm } from "../util/jws.ts";

export { canonicalStructuredBytes, isStructuredFile } from "./bundle-canonical.ts";

const utf8 = new TextEncoder();

/** JWS algorithms accepted for bundle signatures (OPA's RS/PS/ES/HS families, plus EdDSA). */
export const SIGNATURE_ALGORITHMS = JWS_ALGORITHMS;
export type SignatureAlgorithm = JwsAlgorithm;

/** Why a bundle was refused; the `reason` label of `arbiter_bundle_verification_failures_total`. */
export type SignatureFailure =
  | "missing_signatures"
  | "malformed_signatures"
  | "wrong_algorithm"
  | "unknown_key"
  | "bad_signature"
  | "scope_mismatch"
  | "unsupported_hash_algorithm"
  | "malformed_file"
  | "file_not_signed"
  | "file_missing"
  | "digest_mismatch";

/** A refused bundle: `reason` is stable (metrics, /readyz); the message says which file and why. */
export class BundleSignatureError extends BundleError {
  readonly reason: SignatureFailure;
  constructor(reason: SignatureFailure, message: string, options?: ErrorOptions) {
    super(`bundle signature: ${message}`, options);
    this.reason = reason;
  }
}

/** A public key (or an HMAC secret) for verification, a private key (or the secret) for signing. */
export type BundleKey = KeyObject | Uint8Array;

export interface BundleVerificationOptions {
  /** From `loadBundleKey(..., "public")`. */
  readonly key: BundleKey;
  /** `ARBITER_BUNDLE_VERIFICATION_ALG`; the JWS header must name exactly this algorithm. */
  readonly algorithm: SignatureAlgorithm;
  /**
   * `ARBITER_BUNDLE_VERIFICATION_KEY_ID`: when set, a token that names its key (header `kid`,
   * else the deprecated payload `keyid`) must name this one. A token naming no key is checked
   * against the configured key all the same.
   */
  readonly keyId?: string;
  /** `ARBITER_BUNDLE_VERIFICATION_SCOPE`: must equal the payload `scope` ("" when unset). */
  readonly scope?: string;
}

export interface BundleSigningOptions {
  /** From `loadBundleKey(..., "private")`. */
  readonly key: BundleKey;
  readonly algorithm: SignatureAlgorithm;
  /** Header `kid` and payload `keyid` (as `opa build --signing-key` writes them). */
  readonly keyId?: string;
  /** Payload `scope`. */
  readonly scope?: string;
}

/** What a verified bundle was signed with. */
export interface VerifiedSignature {
  readonly keyId: string | undefined;
  readonly scope: string | undefined;
  /** Number of files whose hash matched. */
  readonly files: number;
}

/** The signatures file of a bundle (OPA writes `/.signatures.json`). */
export const SIGNATURES_FILE = ".signatures.json";
const MIN_HMAC_SECRET_BYTES = 32;

const HASHES: Readonly<Record<string, string>> = {
  MD5: "md5",
  "SHA-1": "sha1",
  "SHA-224": "sha224",
  "SHA-256": "sha256",
  "SHA-384": "sha384",
  "SHA-512": "sha512",
  "SHA-512-224": "sha512-224",
  "SHA-512-256": "sha512-256",
};

/** OPA: any path ending in `signatures.json` is a signatures file and is not hashed. */
function isSignaturesPath(name: string): boolean {
  return name.endsWith("signatures.json");
}

/**
 * Reads a key for `algorithm`: HMAC algorithms take the file's bytes as they are (no trimming,
 * as OPA), at least 32 of them; the others take a PEM key of the matching type. Throws an `Error`
 * saying what is wrong; the caller names the variable or flag.
 */
export function loadBundleKey(
  material: Uint8Array,
  algorithm: SignatureAlgorithm,
  use: "public" | "private",
): BundleKey {
  if (!(SIGNATURE_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw new Error(`unsupported algorithm "${algorithm}"; expected one of ${SIGNATURE_ALGORITHMS.join(", ")}`);
  }
  if (algorithm.startsWith("HS")) {
    if (material.length < MIN_HMAC_SECRET_BYTES) {
      throw new Error(`an ${algorithm} secret must be at least ${MIN_HMAC_SECRET_BYTES} bytes, got ${material.length}`);
    }
    return new Uint8Array(material);
  }
  let key: KeyObject;
  try {
    key =
      use === "public"
        ? createPublicKey({ key: Buffer.from(material), format: "pem" })
        : createPrivateKey({ key: Buffer.from(material), format: "pem" });
  } catch (err) {
    throw new Error(`not a PEM ${use} key: ${(err as Error).message}`, { cause: err });
  }
  const type = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const expected: Record<string, { ok: boolean; want: string }> = {
    RS: { ok: type === "rsa", want: "an RSA key" },
    PS: { ok: type === "rsa" || type === "rsa-pss", want: "an RSA key" },
    ES256: { ok: type === "ec" && curve === "prime256v1", want: "an EC P-256 key" },
    ES384: { ok: type === "ec" && curve === "secp384r1", want: "an EC P-384 key" },
    ES512: { ok: type === "ec" && curve === "secp521r1", want: "an EC P-521 key" },
    EdDSA: { ok: type === "ed25519" || type === "ed448", want: "an Ed25519 or Ed448 key" },
  };
  const rule = expected[algorithm] ?? expected[algorithm.slice(0, 2)]!;
  if (!rule.ok) throw new Error(`${algorithm} needs ${rule.want}, got a ${type}${curve ? ` ${curve}` : ""} key`);
  return key;
}

// ---- hashing -----------------------------------------------------------------------------------

/** Hex digest of one bundle file under `algorithm` (an OPA name such as `SHA-256`). */
export function hashBundleFile(name: string, bytes: Uint8Array, algorithm: string): string {
  const nodeAlg = HASHES[algorithm];
  if (nodeAlg === undefined) {
    throw new BundleSignatureError(
      "unsupported_hash_algorithm",
      `${name}: unsupported hashing algorithm "${algorithm}" (supported: ${Object.keys(HASHES).join(", ")})`,
    );
  }
  let content: Uint8Array;
  if (isStructuredFile(name)) {
    try {
      content = canonicalStructuredBytes(name, bytes);
    } catch (err) {
      throw new BundleSignatureError(
        "malformed_file",
        `${name}: cannot be hashed as a structured document: ${(err as Error).message}`,
        { cause: err },
      );
    }
  } else {
    content = bytes;
  }
  return createHash(nodeAlg).update(content).digest("hex");
}

// ---- verify and sign -----------------------------------------------------------------------------

interface SignedFile {
  readonly name: string;
  readonly hash: string;
  readonly algorithm: string;
}

function readSignaturesFile(bytes: Uint8Array): string {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw new BundleSignatureError("malformed_signatures", `${SIGNATURES_FILE} is not valid JSON`, { cause: err });
  }
  const sigs = (doc as { signatures?: unknown } | null)?.signatures;
  if (!Array.isArray(sigs) || sigs.length === 0) {
    throw new BundleSignatureError(
      "malformed_signatures",
      `${SIGNATURES_FILE}: missing JWT (expected exactly one in "signatures")`,
    );
  }
  if (sigs.length > 1)
    throw new BundleSignatureError(
      "malformed_signatures",
      `${SIGNATURES_FILE}: multiple JWTs not supported (expected exactly one)`,
    );
  if (typeof sigs[0] !== "string")
    throw new BundleSignatureError("malformed_signatures", `${SIGNATURES_FILE}: the JWT must be a string`);
  return sigs[0];
}

function readPayload(payload: Uint8Array): {
  files: SignedFile[];
  keyid: string | undefined;
  scope: string | undefined;
} {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload));
  } catch (err) {
    throw new BundleSignatureError("malformed_signatures", "the JWT payload is not JSON", { cause: err });
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new BundleSignatureError("malformed_signatures", "the JWT payload must be a JSON object");
  }
  const o = doc as Record<string, unknown>;
  if (!Array.isArray(o.files))
    throw new BundleSignatureError("malformed_signatures", `the JWT payload has no "files" list`);
  const files = o.files.map((f, n) => {
    const e = f as Record<string, unknown> | null;
    if (
      typeof e !== "object" ||
      e === null ||
      typeof e.name !== "string" ||
      typeof e.hash !== "string" ||
      (e.algorithm !== undefined && typeof e.algorithm !== "string")
    ) {
      throw new BundleSignatureError(
        "malformed_signatures",
        `files[${n}] must have string "name", "hash" and "algorithm"`,
      );
    }
    return { name: e.name, hash: e.hash, algorithm: (e.algorithm as string | undefined) ?? "" };
  });
  const str = (k: string): string | undefined => {
    if (o[k] === undefined) return undefined;
    if (typeof o[k] !== "string")
      throw new BundleSignatureError("malformed_signatures", `the JWT payload "${k}" must be a string`);
    return o[k] as string;
  };
  return { files, keyid: str("keyid"), scope: str("scope") };
}

/**
 * Verifies a bundle's files (bundle path without a leading `/` -> bytes) against its
 * `.signatures.json`. Resolves with what it was signed with; rejects with a
 * `BundleSignatureError` naming the reason and the offending file.
 */
export async function verifyBundleSignature(
  files: ReadonlyMap<string, Uint8Array>,
  options: BundleVerificationOptions,
): Promise<VerifiedSignature> {
  const sigBytes = files.get(SIGNATURES_FILE);
  if (sigBytes === undefined) {
    throw new BundleSignatureError(
      "missing_signatures",
      `the bundle has no ${SIGNATURES_FILE} and bundle verification is on (ARBITER_BUNDLE_VERIFICATION_KEY)`,
    );
  }
  for (const name of files.keys()) {
    // OPA would take any of these as the signatures file (the last one read wins): refuse the
    // ambiguity instead of picking one.
    if (name !== SIGNATURES_FILE && isSignaturesPath(name)) {
      throw new BundleSignatureError(
        "malformed_signatures",
        `${name}: a second signatures file besides ${SIGNATURES_FILE}`,
      );
    }
  }
  const token = readSignaturesFile(sigBytes);

  let header;
  try {
    header = decodeProtectedHeader(token);
  } catch (err) {
    throw new BundleSignatureError(
      "malformed_signatures",
      `the JWT header cannot be decoded: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (header.alg !== options.algorithm) {
    throw new BundleSignatureError(
      "wrong_algorithm",
      `signed with ${JSON.stringify(header.alg ?? null)}, expected ${options.algorithm} (ARBITER_BUNDLE_VERIFICATION_ALG)`,
    );
  }
  const headerKid = typeof header.kid === "string" && header.kid !== "" ? header.kid : undefined;
  const checkKeyId = (named: string | undefined): void => {
    if (options.keyId !== undefined && named !== undefined && named !== "" && named !== options.keyId) {
      throw new BundleSignatureError(
        "unknown_key",
        `signed with key id "${named}", expected "${options.keyId}" (ARBITER_BUNDLE_VERIFICATION_KEY_ID)`,
      );
    }
  };
  // The header names the key before anything is verified: only ever used to refuse.
  checkKeyId(headerKid);
  let verified;
  try {
    verified = await compactVerify(token, options.key, { algorithms: [options.algorithm] });
  } catch (err) {
    throw new BundleSignatureError(
      "bad_signature",
      `the JWT signature does not verify with the configured key (${(err as Error).message})`,
      { cause: err },
    );
  }
  const payload = readPayload(verified.payload);
  const named = headerKid ?? payload.keyid;
  checkKeyId(named);
  if ((payload.scope ?? "") !== (options.scope ?? "")) {
    throw new BundleSignatureError(
      "scope_mismatch",
      `scope ${JSON.stringify(payload.scope ?? "")} does not match ${JSON.stringify(options.scope ?? "")} (ARBITER_BUNDLE_VERIFICATION_SCOPE)`,
    );
  }

  const listed = new Map<string, SignedFile>();
  for (const f of payload.files) listed.set(f.name.replace(/^\/+/, ""), f); // the last entry wins, as in OPA
  let count = 0;
  for (const [name, bytes] of [...files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (isSignaturesPath(name)) continue;
    const entry = listed.get(name);
    if (entry === undefined)
      throw new BundleSignatureError("file_not_signed", `${name} is not included in the bundle signature`);
    if (entry.algorithm === "")
      throw new BundleSignatureError("malformed_signatures", `no hashing algorithm provided for ${name}`);
    const actual = hashBundleFile(name, bytes, entry.algorithm);
    if (entry.hash.toLowerCase() !== actual) {
      throw new BundleSignatureError(
        "digest_mismatch",
        `${name}: digest mismatch (signed ${entry.hash}, got ${actual})`,
      );
    }
    listed.delete(name);
    count++;
  }
  if (listed.size > 0) {
    throw new BundleSignatureError(
      "file_missing",
      `file(s) ${[...listed.keys()].sort().join(", ")} specified in the bundle signature but not found in the bundle`,
    );
  }
  return { keyId: named, scope: payload.scope, files: count };
}

/**
 * The `.signatures.json` content for `files` (every file except signatures files, hashed with
 * SHA-256 under OPA's rules), in the form `opa build --signing-key` writes.
 */
export async function signBundleFiles(
  files: ReadonlyMap<string, Uint8Array>,
  options: BundleSigningOptions,
): Promise<Uint8Array> {
  const list: SignedFile[] = [];
  for (const name of [...files.keys()].sort()) {
    if (isSignaturesPath(name)) continue;
    list.push({ name, hash: hashBundleFile(name, files.get(name)!, "SHA-256"), algorithm: "SHA-256" });
  }
  const payload: Record<string, unknown> = { files: list };
  if (options.keyId !== undefined) payload.keyid = options.keyId; // deprecated claim OPA still writes
  if (options.scope !== undefined) payload.scope = options.scope;
  const token = await new CompactSign(utf8.encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: options.algorithm, ...(options.keyId !== undefined ? { kid: options.keyId } : {}) })
    .sign(options.key);
  return utf8.encode(`${JSON.stringify({ signatures: [token] }, null, 1)}\n`);
}
