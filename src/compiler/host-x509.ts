/**
 * OPA's private key builtins as host builtins (issue #13), following topdown/crypto.go:
 * `crypto.x509.parse_rsa_private_key` (the first private key of PEM or base64 PEM data, as a
 * JWK) and `crypto.parse_private_keys` (only its empty answers: Go marshals the parsed key
 * structs with big integers JavaScript cannot hold, so a found key fails the evaluation).
 *
 * Keys are read by node:crypto (synchronous, as host builtins must be). Key kinds whose JWK
 * could differ from lestrrat-go/jwx's (anything but RSA of at least 1024 bits, EC on P-256,
 * P-384, P-521, and Ed25519) fail the evaluation rather than guess.
 */
import { createPrivateKey, type KeyObject } from "node:crypto";
import { goPemDecode } from "./host-jwt-keys.ts";
import type { HostBuiltin } from "./host-types.ts";

class X509BuiltinError extends Error {
  override readonly name = "X509BuiltinError";
}

const fail = (message: string): never => {
  throw new X509BuiltinError(message);
};

/** Go's base64.StdEncoding.DecodeString (strict padding, `\r` and `\n` ignored), as a byte string. */
function goBase64Std(s: string): string | undefined {
  const t = s.replace(/[\r\n]/g, "");
  if (t.length % 4 !== 0 || !/^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(t)) return undefined;
  return Buffer.from(t, "base64").toString("latin1");
}

/** A JavaScript string as the byte string Go would hold (UTF-8 bytes, one char per byte). */
const bytesOf = (s: string): string => Buffer.from(s, "utf8").toString("latin1");

const PRIVATE_BLOCKS: Record<string, "pkcs1" | "pkcs8" | "sec1"> = {
  "RSA PRIVATE KEY": "pkcs1",
  "PRIVATE KEY": "pkcs8",
  "EC PRIVATE KEY": "sec1",
};

/** OPA's getPrivateKeysFromPEMData over a byte string. */
function privateKeys(data: string): KeyObject[] {
  let rest = goBase64Std(data) ?? data;
  const keys: KeyObject[] = [];
  for (;;) {
    const block = goPemDecode(rest);
    if (!block) return keys;
    rest = block.rest;
    const type = PRIVATE_BLOCKS[block.type];
    if (type === undefined) continue;
    try {
      keys.push(createPrivateKey({ key: block.bytes, format: "der", type }));
    } catch (err) {
      fail(`failed to parse a ${block.type}: ${(err as Error).message}`);
    }
  }
}

/** The key as jwx's JWK, for the kinds where node:crypto's JWK is the same. */
function jwkOf(key: KeyObject): Record<string, unknown> {
  const t = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve ?? "";
  const same =
    (t === "rsa" && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 1024) ||
    (t === "ec" && ["prime256v1", "secp384r1", "secp521r1"].includes(curve)) ||
    t === "ed25519";
  if (!same)
    throw new Error(
      `crypto.x509.parse_rsa_private_key: a ${t ?? "unknown"} key is not converted (its JWK could differ from OPA's)`,
    );
  return key.export({ format: "jwk" }) as Record<string, unknown>;
}

function parseRsaPrivateKey(input: unknown): unknown {
  if (typeof input !== "string") return fail("operand 1 must be a string");
  if (input === "") return fail("input PEM data was empty");
  let data = bytesOf(input);
  if (!data.startsWith("-----BEGIN")) data = goBase64Std(data) ?? fail("illegal base64 data");
  const keys = privateKeys(data);
  return keys.length === 0 ? null : jwkOf(keys[0]!);
}

function parsePrivateKeys(input: unknown): unknown {
  if (typeof input !== "string") return fail("operand 1 must be a string");
  if (input === "") return null;
  if (privateKeys(bytesOf(input)).length === 0) return [];
  throw new Error(
    "crypto.parse_private_keys: OPA answers Go's key structures with integers beyond what JavaScript holds; not answered",
  );
}

/** A builtin error becomes undefined (OPA's non-strict mode); any other throw fails the evaluation. */
function builtin(f: (s: unknown) => unknown): (s: unknown) => unknown {
  return (s) => {
    try {
      return f(s);
    } catch (err) {
      if (err instanceof X509BuiltinError) return undefined;
      throw err;
    }
  };
}

export const x509HostBuiltins: Record<string, HostBuiltin> = {
  "crypto.x509.parse_rsa_private_key": builtin(parseRsaPrivateKey),
  "crypto.parse_private_keys": builtin(parsePrivateKeys),
};
