/**
 * crypto.x509.parse_rsa_private_key and crypto.parse_private_keys: PEM (plain or base64) read
 * as OPA reads it, and no answer where OPA's could not be reproduced exactly.
 */
import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { x509HostBuiltins } from "../../src/compiler/host-x509.ts";

const parseRsa = x509HostBuiltins["crypto.x509.parse_rsa_private_key"]!;
const parseKeys = x509HostBuiltins["crypto.parse_private_keys"]!;
const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 });
const pkcs1 = rsa.privateKey.export({ type: "pkcs1", format: "pem" }) as string;
const pkcs8 = rsa.privateKey.export({ type: "pkcs8", format: "pem" }) as string;

describe("crypto.x509.parse_rsa_private_key", () => {
  it("answers the first private key as a JWK, from PEM and from base64 PEM, skipping other blocks", () => {
    const jwk = rsa.privateKey.export({ format: "jwk" });
    expect(Object.keys(jwk).sort()).toEqual(["d", "dp", "dq", "e", "kty", "n", "p", "q", "qi"]);
    expect(parseRsa(pkcs1)).toEqual(jwk);
    expect(parseRsa(Buffer.from(pkcs8).toString("base64"))).toEqual(jwk);
    const cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    expect(parseRsa(cert + pkcs1)).toEqual(jwk);
    expect(parseRsa(cert)).toBeNull();
  });

  it("answers undefined (a builtin error) for empty, non-base64 and corrupt key data", () => {
    expect(parseRsa("")).toBeUndefined();
    expect(parseRsa("invalid")).toBeUndefined();
    expect(parseRsa("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n")).toBeUndefined();
    expect(parseRsa(1)).toBeUndefined();
  });

  it("fails the evaluation for key kinds whose JWK is not known to equal OPA's", () => {
    const x = generateKeyPairSync("x25519").privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    expect(() => parseRsa(x)).toThrow(/not converted/);
  });
});

describe("crypto.parse_private_keys", () => {
  it('answers null for "" and [] without keys, and refuses to answer Go structs it cannot hold', () => {
    expect(parseKeys("")).toBeNull();
    expect(parseKeys("nope")).toEqual([]);
    expect(() => parseKeys(pkcs1)).toThrow(/not answered/);
  });
});
