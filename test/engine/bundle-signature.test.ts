/**
 * OPA bundle signatures as a pure function: OPA's own published hash vectors and signed token
 * (from OPA's bundle/bundle_test.go), the canonical JSON rules, and each way a signature is refused.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  BundleSignatureError,
  canonicalStructuredBytes,
  hashBundleFile,
  loadBundleKey,
  signBundleFiles,
  verifyBundleSignature,
  type SignatureAlgorithm,
  type SignatureFailure,
} from "../../src/engine/bundle-signature.ts";

const enc = new TextEncoder();
const files = (o: Record<string, string | Uint8Array>): Map<string, Uint8Array> =>
  new Map(Object.entries(o).map(([k, v]) => [k, typeof v === "string" ? enc.encode(v) : v]));
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

async function refusal(p: Promise<unknown>): Promise<{ reason: SignatureFailure; message: string }> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(BundleSignatureError);
    return { reason: (err as BundleSignatureError).reason, message: (err as Error).message };
  }
  throw new Error("expected the bundle to be refused");
}

describe("OPA compatibility (vectors from OPA's bundle/bundle_test.go)", () => {
  it("hashes structured and raw files exactly as OPA's TestVerifyBundleFileHash", () => {
    const vectors: [string, string, string, string][] = [
      [".manifest", `{"revision": "quickbrownfaux"}`, "MD5", "a005c38a509dc2d5a7407b9494efb2ad"],
      [
        "a/b/c/data.json",
        "[1,2,3]",
        "SHA-512",
        "60f7b5dc86ded48785436192a08dbfd04894d7f1b417c4f8d3714679a7f78cb3c833f16a8559a1cf1f32968747dc1d95ef34826263dacf125ded8f5c374be4c0",
      ],
      ["a/b/d/data.json", "true", "MD5", "b326b5062b2f0e69046810717534cb09"],
      [
        "a/b/y/data.yaml",
        "foo: 1",
        "SHA-512",
        "20f27a640a233e6524fe7d138898583cd43475724806feb26be7f214e1d10b29edf6a0d3cb08f82107a45686b61b8fdabab6406cf4e70efe134f42238dbd70ab",
      ],
      ["example/example.rego", "package example", "MD5", "ceecc199d432a4eeae305914ea4816cb"],
      [
        "policy.wasm",
        "modules-compiled-as-wasm-binary",
        "SHA-512",
        "4f73765168fd8b5c294b739436da312cc5e979faf09f67bf576d36ea79a4f79c70cbb3c33d06ff65f531a9f42abd0a8f4daacc554cb521837e876dc28f56ce89",
      ],
      ["data.json", `{"x": {"y": true}, "a": {"b": {"z": true}}}`, "MD5", "36669864a622563256817033b1fc53db"],
    ];
    for (const [name, content, alg, want] of vectors) {
      expect(hashBundleFile(name, enc.encode(content), alg), name).toBe(want);
    }
  });

  // TestReadWithSignaturesWithBaseDir: an HS256 token OPA's tests sign with the secret "secret",
  // scope "write", for three files under foo/bar/ (OPA's base-dir naming).
  const opaToken =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImZvbyJ9.eyJmaWxlcyI6W3sibmFtZSI6ImZvby9iYXIvLm1hbmlmZXN0IiwiaGFzaCI6IjUwN2EyYzM4YTE0NDFkYjU4ZDJjYjg3OTgyYzQyYWE5MWE0MzQyZWY0MjJhNmI1NDJlZGRlYmVlZjZmMDQxMmYiLCJhbGdvcml0aG0iOiJTSEEtMjU2In0seyJuYW1lIjoiZm9vL2Jhci9hL2IvYy9kYXRhLmpzb24iLCJoYXNoIjoiYTYxNWVlYWVlMjFkZTUxNzlkZTA4MGRlOGMzMDUyYzhkYTkwMTEzODQwNmJhNzFjMzhjMDMyODQ1ZjdkNTRmNCIsImFsZ29yaXRobSI6IlNIQS0yNTYifSx7Im5hbWUiOiJmb28vYmFyL2h0dHAvcG9saWN5L3BvbGljeS5yZWdvIiwiaGFzaCI6ImY2NjQ0NjFlMzAzYjM3YzIwYzVlMGJlMjkwMDg4MTY3OGNkZjhlODYwYWE0MzNhNWExNGQ0OTRiYTNjNjY2NDkiLCJhbGdvcml0aG0iOiJTSEEtMjU2In1dLCJpYXQiOjE1OTIyNDgwMjcsImlzcyI6IkpXVFNlcnZpY2UiLCJzY29wZSI6IndyaXRlIn0.qTHkuBDVuT-Zl5pbJdZ6LoJ9eooFOhhpRdCheauDrlA";
  const opaBundle = (over: Record<string, string> = {}) =>
    files({
      ".signatures.json": `{"signatures": ["${opaToken}"]}`,
      "foo/bar/.manifest": `{"revision": "quickbrownfaux"}`,
      "foo/bar/a/b/c/data.json": "[1,2,3]",
      "foo/bar/http/policy/policy.rego": "package example",
      ...over,
    });
  // OPA's test secret is 6 bytes: below loadBundleKey's floor, so the key is passed directly.
  const opaKey = enc.encode("secret");

  it("accepts the OPA-signed bundle, whitespace in JSON files notwithstanding", async () => {
    const ok = await verifyBundleSignature(opaBundle(), { key: opaKey, algorithm: "HS256", scope: "write" });
    expect(ok).toEqual({ keyId: "foo", scope: "write", files: 3 });
    // Re-serialised JSON with the same value keeps OPA's hash.
    const spaced = await verifyBundleSignature(opaBundle({ "foo/bar/a/b/c/data.json": " [ 1 ,\n 2, 3 ]\n" }), {
      key: opaKey,
      algorithm: "HS256",
      scope: "write",
    });
    expect(spaced.files).toBe(3);
  });

  it("refuses it on a changed value, a wrong scope, a key id mismatch and a wrong secret", async () => {
    const opts = { key: opaKey, algorithm: "HS256" as const, scope: "write" };
    expect(await refusal(verifyBundleSignature(opaBundle({ "foo/bar/a/b/c/data.json": "[1,2,4]" }), opts))).toEqual({
      reason: "digest_mismatch",
      message: expect.stringMatching(
        /^bundle signature: foo\/bar\/a\/b\/c\/data\.json: digest mismatch \(signed a615eeae[0-9a-f]{56}, got [0-9a-f]{64}\)$/,
      ),
    });
    expect((await refusal(verifyBundleSignature(opaBundle(), { ...opts, scope: undefined }))).reason).toBe(
      "scope_mismatch",
    );
    expect((await refusal(verifyBundleSignature(opaBundle(), { ...opts, keyId: "bar" }))).reason).toBe("unknown_key");
    expect((await refusal(verifyBundleSignature(opaBundle(), { ...opts, key: enc.encode("secreT") }))).reason).toBe(
      "bad_signature",
    );
    expect(
      (
        await refusal(
          verifyBundleSignature(opaBundle(), {
            ...opts,
            algorithm: "RS256",
            key: loadBundleKey(enc.encode(rsaPem().publicPem), "RS256", "public"),
          }),
        )
      ).reason,
    ).toBe("wrong_algorithm");
  });

  it("reports OPA's digest mismatch and missing files (TestReadWithSignatures, ...ExtraFiles)", async () => {
    const token =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImZvbyJ9.eyJmaWxlcyI6W3sibmFtZSI6Ii5tYW5pZmVzdCIsImhhc2giOiI1MDdhMmMzOGExNDQxZGI1OGQyY2I4Nzk4MmM0MmFhOTFhNDM0MmVmNDIyYTZiNTQyZWRkZWJlZWY2ZjA0MTJmIiwiYWxnb3JpdGhtIjoiU0hBLTI1NiJ9LHsibmFtZSI6ImEvYi9jL2RhdGEuanNvbiIsImhhc2giOiI0MmNmZTY3NjhiNTdiYjVmNzUwM2MxNjVjMjhkZDA3YWM1YjgxMzU1NGViYzg1MGYyY2MzNTg0M2U3MTM3YjFkIiwiYWxnb3JpdGhtIjoiU0hBLTI1NiJ9LHsibmFtZSI6Imh0dHAvcG9saWN5L3BvbGljeS5yZWdvIiwiaGFzaCI6ImE2MTVlZWFlZTIxZGU1MTc5ZGUwODBkZThjMzA1MmM4ZGE5MDExMzg0MDZiYTcxYzM4YzAzMjg0NWY3ZDU0ZjQiLCJhbGdvcml0aG0iOiJTSEEtMjU2In1dLCJpYXQiOjE1OTIyNDgwMjcsImlzcyI6IkpXVFNlcnZpY2UiLCJrZXlpZCI6ImZvbyIsInNjb3BlIjoid3JpdGUifQ.grzWHYvyVS6LfWy0oiFTEJThKooOAwic8sexYaflzOM";
    const opts = { key: opaKey, algorithm: "HS256" as const, scope: "write" };
    const mismatch = await refusal(
      verifyBundleSignature(
        files({
          ".signatures.json": `{"signatures": ["${token}"]}`,
          "a/b/c/data.json": "[1,2,3]",
          ".manifest": `{"revision": "quickbrownfaux"}`,
        }),
        opts,
      ),
    );
    // OPA: "a/b/c/data.json: digest mismatch (want: 42cfe676..., got: a615eeae...)"
    expect(mismatch).toEqual({
      reason: "digest_mismatch",
      message:
        "bundle signature: a/b/c/data.json: digest mismatch (signed 42cfe6768b57bb5f7503c165c28dd07ac5b813554ebc850f2cc35843e7137b1d, got a615eeaee21de5179de080de8c3052c8da901138406ba71c38c032845f7d54f4)",
    });
    const missing = await refusal(
      verifyBundleSignature(
        files({
          ".signatures.json": `{"signatures": ["${token}"]}`,
          ".manifest": `{"revision": "quickbrownfaux"}`,
        }),
        opts,
      ),
    );
    expect(missing).toEqual({
      reason: "file_missing",
      message:
        "bundle signature: file(s) a/b/c/data.json, http/policy/policy.rego specified in the bundle signature but not found in the bundle",
    });
  });
});

describe("canonical form of structured files", () => {
  const canon = (name: string, s: string): string => text(canonicalStructuredBytes(name, enc.encode(s)));

  it("sorts keys by UTF-8 bytes, drops whitespace, keeps number literals, escapes like Go", () => {
    expect(canon("data.json", ` { "b" : 1.50, "a" : [true, null, -0, 1E+2] } `)).toBe(
      `{"a":[true,null,-0,1E+2],"b":1.50}`,
    );
    // U+FFFF sorts before U+10000 in UTF-8 (EF.. < F0..), after it in UTF-16.
    expect(canon("data.json", `{"\u{10000}":1,"\uffff":2}`)).toBe(`{"\uffff":2,"\u{10000}":1}`);
    // HTML characters stay (SetEscapeHTML(false)); U+2028/2029 and controls are escaped.
    expect(canon("data.json", `"<a&b>\\u2028\\u0001\\t\\/"`)).toBe(`"<a&b>\\u2028\\u0001\\t/"`);
    expect(canon(".manifest", `\ufeff{"revision":"r"}`)).toBe(`{"revision":"r"}`);
    // YAML as OPA's util.Unmarshal reads it (go-yaml v2): `yes` is true, `0777` is 511.
    expect(canon("x/data.yaml", "b: [1, 2.5, 0777]\na: yes\n")).toBe(`{"a":true,"b":[1,2.5,511]}`);
  });

  it("hashes 1.5 and 1.50 apart (OPA keeps the literal), and data.yml and .json files as raw bytes", () => {
    expect(hashBundleFile("data.json", enc.encode("1.5"), "SHA-256")).not.toBe(
      hashBundleFile("data.json", enc.encode("1.50"), "SHA-256"),
    );
    expect(hashBundleFile("data.json", enc.encode(" [1]"), "SHA-256")).toBe(
      hashBundleFile("data.json", enc.encode("[1]"), "SHA-256"),
    );
    expect(hashBundleFile("data.yml", enc.encode(" [1]"), "SHA-256")).not.toBe(
      hashBundleFile("data.yml", enc.encode("[1]"), "SHA-256"),
    );
    expect(hashBundleFile("other.json", enc.encode(" [1]"), "SHA-256")).not.toBe(
      hashBundleFile("other.json", enc.encode("[1]"), "SHA-256"),
    );
  });

  it("refuses what it cannot hash faithfully", () => {
    for (const bad of [`{"a":1,}`, `"\\ud800"`, `[1] [2]`, `{"a":01}`, `"\u0001"`]) {
      expect(() => hashBundleFile("data.json", enc.encode(bad), "SHA-256"), bad).toThrow(BundleSignatureError);
    }
    expect(() => hashBundleFile("data.json", enc.encode("{}"), "SHA-3")).toThrow(
      /unsupported hashing algorithm "SHA-3"/,
    );
  });
});

function rsaPem() {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    publicPem: publicKey.export({ type: "spki", format: "pem" }) as string,
    privatePem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
  };
}

function keyPair(alg: SignatureAlgorithm): { sign: Uint8Array; verify: Uint8Array } {
  if (alg.startsWith("HS")) {
    const secret = randomBytes(32);
    return { sign: secret, verify: secret };
  }
  const pair =
    alg === "ES256"
      ? generateKeyPairSync("ec", { namedCurve: "P-256" })
      : alg === "EdDSA"
        ? generateKeyPairSync("ed25519")
        : generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    sign: enc.encode(pair.privateKey.export({ type: "pkcs8", format: "pem" }) as string),
    verify: enc.encode(pair.publicKey.export({ type: "spki", format: "pem" }) as string),
  };
}

describe("sign and verify", () => {
  const bundle = () =>
    files({
      ".manifest": `{"revision":"r1","roots":[""]}`,
      "data.json": `{"test":{"marker":"one"}}`,
      "policy.wasm": new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]),
      "policies/decide.rego": "package arbiter.decide\n",
    });

  for (const alg of ["RS256", "ES256", "HS256", "PS256", "EdDSA"] as const) {
    it(`${alg}: a signed bundle verifies; the same with another key does not`, async () => {
      const k = keyPair(alg);
      const signed = bundle();
      signed.set(
        ".signatures.json",
        await signBundleFiles(signed, { key: loadBundleKey(k.sign, alg, "private"), algorithm: alg, keyId: "k1" }),
      );
      const verifyKey = loadBundleKey(k.verify, alg, "public");
      expect(await verifyBundleSignature(signed, { key: verifyKey, algorithm: alg, keyId: "k1" })).toEqual({
        keyId: "k1",
        scope: undefined,
        files: 4,
      });
      const other = loadBundleKey(keyPair(alg).verify, alg, "public");
      expect((await refusal(verifyBundleSignature(signed, { key: other, algorithm: alg }))).reason).toBe(
        "bad_signature",
      );
    });
  }

  it("refuses each tampering with its reason", async () => {
    const k = keyPair("ES256");
    const opts = { key: loadBundleKey(k.verify, "ES256", "public"), algorithm: "ES256" as const };
    const signed = bundle();
    signed.set(
      ".signatures.json",
      await signBundleFiles(signed, {
        key: loadBundleKey(k.sign, "ES256", "private"),
        algorithm: "ES256",
        scope: "prod",
      }),
    );
    const withScope = { ...opts, scope: "prod" };
    expect((await verifyBundleSignature(signed, withScope)).files).toBe(4);

    const edit = new Map(signed).set("data.json", enc.encode(`{"test":{"marker":"two"}}`));
    expect(await refusal(verifyBundleSignature(edit, withScope))).toMatchObject({
      reason: "digest_mismatch",
      message: expect.stringContaining("data.json: digest mismatch"),
    });
    const added = new Map(signed).set("extra.rego", enc.encode("package x\n"));
    expect(await refusal(verifyBundleSignature(added, withScope))).toEqual({
      reason: "file_not_signed",
      message: "bundle signature: extra.rego is not included in the bundle signature",
    });
    const removed = new Map(signed);
    removed.delete("policies/decide.rego");
    expect((await refusal(verifyBundleSignature(removed, withScope))).reason).toBe("file_missing");
    const unsigned = new Map(signed);
    unsigned.delete(".signatures.json");
    expect((await refusal(verifyBundleSignature(unsigned, withScope))).reason).toBe("missing_signatures");
    expect((await refusal(verifyBundleSignature(signed, opts))).reason).toBe("scope_mismatch");
    const second = new Map(signed).set("x/.signatures.json", signed.get(".signatures.json")!);
    expect((await refusal(verifyBundleSignature(second, withScope))).reason).toBe("malformed_signatures");
    expect(
      (
        await refusal(
          verifyBundleSignature(new Map(signed).set(".signatures.json", enc.encode(`{"signatures":[]}`)), withScope),
        )
      ).reason,
    ).toBe("malformed_signatures");

    // alg "none": an unsigned token with a valid-looking payload.
    const payload = text(signed.get(".signatures.json")!)
      .match(/"([^"]+)"\s*\]/)![1]!
      .split(".")[1];
    const none = `${Buffer.from(`{"alg":"none"}`).toString("base64url")}.${payload}.`;
    expect(
      (
        await refusal(
          verifyBundleSignature(
            new Map(signed).set(".signatures.json", enc.encode(`{"signatures":["${none}"]}`)),
            withScope,
          ),
        )
      ).reason,
    ).toBe("wrong_algorithm");
  });

  it("loads keys only of the algorithm's type, and HMAC secrets of at least 32 bytes", () => {
    expect(() => loadBundleKey(enc.encode("short"), "HS256", "public")).toThrow(
      "an HS256 secret must be at least 32 bytes, got 5",
    );
    expect(() => loadBundleKey(keyPair("ES256").verify, "RS256", "public")).toThrow(
      "RS256 needs an RSA key, got a ec prime256v1 key",
    );
    expect(() => loadBundleKey(enc.encode("not pem"), "ES256", "public")).toThrow(/^not a PEM public key/);
    expect(() => loadBundleKey(enc.encode("x"), "none" as SignatureAlgorithm, "public")).toThrow(
      /unsupported algorithm "none"/,
    );
  });
});
