/**
 * The grant verifier against real keys in a real JWKS file: every way an attacker (or a careless
 * approver) could present a grant, each with its exact reason code.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHmac, randomUUID } from "node:crypto";
import { join } from "node:path";
import fc from "fast-check";
import { UnsecuredJWT } from "jose";
import { Registry } from "prom-client";
import { createApprovalKeySet, type ApprovalKeySet } from "../../src/trust/approval-keys.ts";
import {
  createGrantVerifier,
  GRANT_CLOCK_TOLERANCE_SECONDS,
  GRANT_MAX_LENGTH,
  GRANT_MAX_LIFETIME_SECONDS,
} from "../../src/trust/grant-verifier.ts";
import type { ApprovalGrantVerifier } from "../../src/decision/stores.ts";
import { b64, DIGEST, makeKey, signGrant, silentLogger, tempDir, writeJwks, type TestKey } from "./helpers.ts";

const NOW_S = Math.floor(Date.now() / 1000);
const expected = { tenantId: "acme", digest: DIGEST, nowMs: NOW_S * 1000 };

let ed: TestKey;
let ec: TestKey;
let rsa: TestKey;
let outsider: TestKey;
let keys: ApprovalKeySet;
let verifier: ApprovalGrantVerifier;
let registry: Registry;

beforeAll(async () => {
  [ed, ec, rsa, outsider] = await Promise.all([
    makeKey("EdDSA"),
    makeKey("ES256", "ec-1"),
    makeKey("RS256", "rsa-1"),
    makeKey("EdDSA"),
  ]);
  const dir = tempDir();
  writeJwks(join(dir, "jwks.json"), [ed.jwk, ec.jwk, rsa.jwk]);
  keys = await createApprovalKeySet({ source: join(dir, "jwks.json"), refreshSeconds: 3600, logger: silentLogger() });
  registry = new Registry();
  verifier = createGrantVerifier({ keys, logger: silentLogger(), registry });
});
afterAll(() => keys.close());

const reason = async (token: string, exp = expected): Promise<string> => {
  const r = await verifier.verify(token, exp);
  return r.valid ? "valid" : r.reason;
};

describe("valid grants", () => {
  it.each(["EdDSA", "ES256", "RS256"] as const)(
    "%s: valid, with jti, approver and expiry (exp + tolerance)",
    async (alg) => {
      const key = alg === "EdDSA" ? ed : alg === "ES256" ? ec : rsa;
      const jti = randomUUID();
      const token = await signGrant(key, { nowS: NOW_S, claims: { jti, sub: "bob@example.com" } });
      expect(verifier.isGrant(token)).toBe(true);
      expect(await verifier.verify(token, expected)).toEqual({
        valid: true,
        grantId: jti,
        approver: "bob@example.com",
        expiresAtMs: (NOW_S + 900 + GRANT_CLOCK_TOLERANCE_SECONDS) * 1000,
      });
    },
  );

  it("tolerates clock skew up to the tolerance, and no further", async () => {
    const t = GRANT_CLOCK_TOLERANCE_SECONDS;
    expect(await reason(await signGrant(ed, { nowS: NOW_S, claims: { exp: NOW_S - t + 1 } }))).toBe("valid");
    expect(await reason(await signGrant(ed, { nowS: NOW_S, claims: { exp: NOW_S - t } }))).toBe("approval_expired");
    expect(await reason(await signGrant(ed, { nowS: NOW_S, claims: { nbf: NOW_S + t } }))).toBe("valid");
    expect(await reason(await signGrant(ed, { nowS: NOW_S, claims: { nbf: NOW_S + t + 1 } }))).toBe(
      "approval_not_yet_valid",
    );
    expect(await reason(await signGrant(ed, { nowS: NOW_S, claims: { iat: NOW_S + t } }))).toBe("valid");
    expect(await reason(await signGrant(ed, { nowS: NOW_S, claims: { iat: NOW_S + t + 1 } }))).toBe(
      "approval_not_yet_valid",
    );
  });

  it("a grant is good for at most a day after iat, whatever exp says; its expiry for single use follows", async () => {
    const iat = NOW_S - 3600;
    const r = await verifier.verify(await signGrant(ed, { claims: { iat, exp: NOW_S + 10 * 86_400 } }), expected);
    expect(r).toMatchObject({
      valid: true,
      expiresAtMs: (iat + GRANT_MAX_LIFETIME_SECONDS + GRANT_CLOCK_TOLERANCE_SECONDS) * 1000,
    });
    const old = NOW_S - GRANT_MAX_LIFETIME_SECONDS - GRANT_CLOCK_TOLERANCE_SECONDS - 1;
    expect(await reason(await signGrant(ed, { claims: { iat: old, exp: NOW_S + 86_400 } }))).toBe("approval_expired");
  });

  it("without a kid, the key set's only key is used; with several keys it is unknown", async () => {
    const dir = tempDir();
    writeJwks(join(dir, "one.json"), [ed.jwk]);
    const one = await createApprovalKeySet({
      source: join(dir, "one.json"),
      refreshSeconds: 3600,
      logger: silentLogger(),
    });
    try {
      const v = createGrantVerifier({ keys: one });
      const token = await signGrant(ed, { header: { kid: undefined } });
      expect((await v.verify(token, expected)).valid).toBe(true);
      expect(await reason(token)).toBe("approval_unknown_key");
    } finally {
      one.close();
    }
  });
});

describe("forged, tampered and misdirected grants", () => {
  it("one byte changed in the header, the claims or the signature: approval_bad_signature", async () => {
    const token = await signGrant(ed);
    const [h, p, s] = token.split(".") as [string, string, string];
    const flip = (part: string, i: number): string =>
      part.slice(0, i) + (part[i] === "A" ? "B" : "A") + part.slice(i + 1);
    expect(await reason(`${h}.${flip(p, 20)}.${s}`)).toBe("approval_bad_signature");
    expect(await reason(`${h}.${p}.${flip(s, 10)}`)).toBe("approval_bad_signature");
    // The claims re-encoded with another tenant, the signature kept.
    const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown>;
    expect(await reason(`${h}.${b64({ ...claims, tenant_id: "acme", request_digest: "0".repeat(64) })}.${s}`)).toBe(
      "approval_bad_signature",
    );
    // The header re-encoded with another (allowed) alg.
    expect(await reason(`${b64({ alg: "ES256", kid: ed.kid })}.${p}.${s}`)).toBe("approval_bad_signature");
  });

  it("property: no single-character change of a valid grant verifies, unless it decodes to the same bytes", async () => {
    const token = await signGrant(ec, { nowS: NOW_S });
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
    const decoded = (t: string): string[] => t.split(".").map((x) => Buffer.from(x, "base64url").toString("hex"));
    await fc.assert(
      fc.asyncProperty(fc.nat(token.length - 1), fc.constantFrom(...alphabet), async (i, ch) => {
        if (token[i] === ch) return;
        const mutated = token.slice(0, i) + ch + token.slice(i + 1);
        const r = await verifier.verify(mutated, expected);
        if (r.valid) expect(decoded(mutated)).toEqual(decoded(token)); // non-canonical base64url of the same bytes
      }),
      { numRuns: 300 },
    );
  });

  it("signed by a key outside the set under a trusted kid: approval_bad_signature", async () => {
    expect(await reason(await signGrant(outsider, { header: { kid: ed.kid } }))).toBe("approval_bad_signature");
  });

  it("keys the grant brings along (jwk, jku, x5u headers) are never used", async () => {
    const embedded = { ...outsider.jwk };
    // The attacker's own key embedded or linked, under a trusted kid and under its own kid.
    expect(await reason(await signGrant(outsider, { header: { kid: ed.kid, jwk: embedded } }))).toBe(
      "approval_bad_signature",
    );
    expect(await reason(await signGrant(outsider, { header: { jwk: embedded } }))).toBe("approval_unknown_key");
    expect(
      await reason(await signGrant(outsider, { header: { kid: ed.kid, jku: "https://attacker.example/jwks.json" } })),
    ).toBe("approval_bad_signature");
    expect(await reason(await signGrant(outsider, { header: { x5u: "https://attacker.example/cert.pem" } }))).toBe(
      "approval_unknown_key",
    );
  });

  it("a kid not in the key set: approval_unknown_key", async () => {
    expect(await reason(await signGrant(outsider))).toBe("approval_unknown_key");
    expect(await reason(await signGrant(ed, { header: { kid: "retired-2025" } }))).toBe("approval_unknown_key");
  });

  it("alg none (unsecured JWT): approval_bad_signature, even with a trusted kid", async () => {
    const claims = {
      jti: randomUUID(),
      sub: "mallory",
      tenant_id: "acme",
      request_digest: DIGEST,
      iat: NOW_S,
      exp: NOW_S + 900,
    };
    const unsecured = new UnsecuredJWT(claims).encode();
    expect(unsecured.endsWith(".")).toBe(true);
    expect(verifier.isGrant(unsecured)).toBe(true);
    expect(await reason(unsecured)).toBe("approval_bad_signature");
    expect(await reason(`${b64({ alg: "none", kid: ed.kid })}.${b64(claims)}.`)).toBe("approval_bad_signature");
    expect(await reason(`${b64({ alg: "NONE", kid: ed.kid })}.${b64(claims)}.${b64("x")}`)).toBe(
      "approval_bad_signature",
    );
  });

  it("key confusion: HS256 keyed with the RSA public key's PEM (and its JWK): approval_bad_signature", async () => {
    const claims = {
      jti: randomUUID(),
      sub: "mallory",
      tenant_id: "acme",
      request_digest: DIGEST,
      iat: NOW_S,
      exp: NOW_S + 900,
    };
    const pem = rsa.publicKey.export({ format: "pem", type: "spki" }) as string;
    for (const alg of ["HS256", "HS384", "HS512"]) {
      const signingInput = `${b64({ alg, kid: rsa.kid, typ: "JWT" })}.${b64(claims)}`;
      const hash = `sha${alg.slice(2)}`;
      for (const secret of [pem, pem.trim(), JSON.stringify(rsa.jwk)]) {
        const sig = createHmac(hash, secret).update(signingInput).digest("base64url");
        expect(await reason(`${signingInput}.${sig}`)).toBe("approval_bad_signature");
      }
    }
  });

  it("an allowed alg that is not the key's (ES256 header, RSA kid): approval_bad_signature", async () => {
    const forged = await signGrant(ec, { header: { kid: rsa.kid } });
    expect(await reason(forged)).toBe("approval_bad_signature");
    expect(await reason(await signGrant(ed, { header: { alg: "EdDSA", kid: ec.kid } }))).toBe("approval_bad_signature");
  });

  it("other algorithms (PS256, ES384, RS512) are not on the allow-list", async () => {
    const claims = {
      jti: randomUUID(),
      sub: "x",
      tenant_id: "acme",
      request_digest: DIGEST,
      iat: NOW_S,
      exp: NOW_S + 900,
    };
    for (const alg of ["PS256", "RS512", "ES384", "ES512", "Ed25519"]) {
      expect(await reason(`${b64({ alg, kid: rsa.kid })}.${b64(claims)}.${b64("sig")}`)).toBe("approval_bad_signature");
    }
    const { SignJWT } = await import("jose");
    const ps = await new SignJWT(claims).setProtectedHeader({ alg: "PS256", kid: rsa.kid }).sign(rsa.privateKey);
    expect(await reason(ps)).toBe("approval_bad_signature");
  });

  it("another tenant, another request: approval_wrong_tenant, approval_wrong_action", async () => {
    expect(await reason(await signGrant(ed, { claims: { tenant_id: "globex" } }))).toBe("approval_wrong_tenant");
    expect(await reason(await signGrant(ed), { ...expected, tenantId: "globex" })).toBe("approval_wrong_tenant");
    expect(await reason(await signGrant(ed), { ...expected, digest: "0".repeat(64) })).toBe("approval_wrong_action");
  });

  it("expired, not yet valid (nbf, iat in the future)", async () => {
    expect(await reason(await signGrant(ed, { claims: { iat: NOW_S - 1000, exp: NOW_S - 60 } }))).toBe(
      "approval_expired",
    );
    expect(await reason(await signGrant(ed, { claims: { nbf: NOW_S + 300 } }))).toBe("approval_not_yet_valid");
    expect(await reason(await signGrant(ed, { claims: { iat: NOW_S + 300, exp: NOW_S + 900 } }))).toBe(
      "approval_not_yet_valid",
    );
  });

  it.each(["jti", "sub", "tenant_id", "request_digest", "exp", "iat"])(
    "missing %s: approval_unknown",
    async (claim) => {
      expect(await reason(await signGrant(ed, { omit: [claim] }))).toBe("approval_unknown");
    },
  );

  it.each([
    ["jti", ""],
    ["jti", 42],
    ["sub", ""],
    ["sub", "x".repeat(257)],
    ["tenant_id", ["acme"]],
    ["request_digest", DIGEST.toUpperCase()],
    ["request_digest", DIGEST.slice(1)],
    ["exp", "tomorrow"],
    ["iat", null],
  ])("malformed %s (%j): approval_unknown", async (claim, value) => {
    expect(await reason(await signGrant(ed, { claims: { [claim]: value } as never }))).toBe("approval_unknown");
  });

  it("malformed or oversized tokens never reach the parser", async () => {
    for (const t of ["", "a.b", "a.b.c.d", "not a jws", "a..c", "é.b.c"])
      expect(await reason(t)).toBe("approval_bad_signature");
    expect(verifier.isGrant("abc")).toBe(false);
    expect(verifier.isGrant("x".repeat(43))).toBe(false); // a CreateApproval token
    const big = await signGrant(ed, { claims: { pad: "x".repeat(GRANT_MAX_LENGTH) } });
    expect(big.length).toBeGreaterThan(GRANT_MAX_LENGTH);
    expect(await reason(big)).toBe("approval_bad_signature");
    expect(await reason(`${b64({ alg: "EdDSA", kid: ed.kid })}.${b64("not an object")}.${b64("s")}`)).toBe(
      "approval_bad_signature",
    );
  });

  it("counts results by reason", async () => {
    const text = await registry.getSingleMetricAsString("arbiter_approval_grants_total");
    expect(text).toMatch(/arbiter_approval_grants_total\{result="valid"\} \d+/);
    expect(text).toMatch(/arbiter_approval_grants_total\{result="approval_bad_signature"\} \d+/);
    expect(text).toMatch(/arbiter_approval_grants_total\{result="approval_unknown_key"\} \d+/);
  });
});

describe("audience (ARBITER_APPROVAL_AUDIENCE)", () => {
  it("when set, aud must contain it: another audience or none is approval_wrong_audience", async () => {
    const v = createGrantVerifier({ keys, audience: "arbiter://prod-eu" });
    const r = async (t: string): Promise<string> => {
      const x = await v.verify(t, expected);
      return x.valid ? "valid" : x.reason;
    };
    expect(await r(await signGrant(ed, { claims: { aud: "arbiter://prod-eu" } }))).toBe("valid");
    expect(await r(await signGrant(ed, { claims: { aud: ["arbiter://staging", "arbiter://prod-eu"] } }))).toBe("valid");
    expect(await r(await signGrant(ed, { claims: { aud: "arbiter://staging" } }))).toBe("approval_wrong_audience");
    expect(await r(await signGrant(ed))).toBe("approval_wrong_audience");
  });

  it("when unset, aud is not checked", async () => {
    expect(await reason(await signGrant(ed, { claims: { aud: "anything" } }))).toBe("valid");
  });
});
