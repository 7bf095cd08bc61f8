/**
 * io.jwt.* host builtins attacked as an attacker would: forged algorithms, confused keys,
 * tampered tokens, stale tokens, wrong audiences. Tokens are made with `jose` (an independent
 * implementation) and checked through a compiled policy, so the wasm <-> host path is real.
 */
import { generateKeyPairSync, createHmac } from "node:crypto";
import { CompactSign, SignJWT, exportJWK } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { compile } from "../../src/compiler/index.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";
import { jwtHostBuiltins } from "../../src/compiler/host-jwt.ts";

const b64 = (s: string | Buffer): string => Buffer.from(s).toString("base64url");
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const other = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const ed = generateKeyPairSync("ed25519");
const rsaPem = rsa.publicKey.export({ type: "spki", format: "pem" }) as string;
const otherPem = other.publicKey.export({ type: "spki", format: "pem" }) as string;
const ecPem = ec.publicKey.export({ type: "spki", format: "pem" }) as string;
const edPem = ed.publicKey.export({ type: "spki", format: "pem" }) as string;
// Within 2^53 ns: larger integers cannot cross to a JavaScript builtin exactly (the module refuses them).
const NOW_S = 1_000_000;
const NOW_NS = NOW_S * 1e9;

const call = (name: string, ...args: unknown[]): unknown => jwtHostBuiltins[name]!(...args);
/** decode_verify takes and answers JSON texts (a HOST_JSON_IO builtin). */
const decodeVerify = (token: unknown, constraints: unknown): unknown => {
  const out = call("io.jwt.decode_verify", JSON.stringify(token), JSON.stringify(constraints)) as string | undefined;
  return out === undefined ? undefined : JSON.parse(out);
};

async function rs256(claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "RS256", typ: "JWT", ...header }).sign(rsa.privateKey);
}

/** The policy under test: decode_verify and verify_rs256 through the compiled module. */
const POLICY = `package jwt
dv := io.jwt.decode_verify(input.token, input.constraints)
rs := io.jwt.verify_rs256(input.token, input.key)
`;
let policy: Awaited<ReturnType<typeof loadCompiledPolicy>>;
const evalRule = (rule: "dv" | "rs", input: unknown): unknown => {
  const rs = policy.evaluate(input, `jwt/${rule}`) as { result: unknown }[];
  return rs[0]?.result;
};

beforeAll(async () => {
  policy = await loadCompiledPolicy(
    compile([{ path: "jwt.rego", text: POLICY }], { entrypoints: ["jwt/dv", "jwt/rs"] }).wasm,
  );
});

describe("io.jwt.decode_verify, through a compiled policy", () => {
  const UNVERIFIED = [false, {}, {}];

  it("accepts a good RS256 token and answers its header and payload", async () => {
    const token = await rs256({ iss: "arbiter", aud: "svc", exp: NOW_S + 60, nbf: NOW_S - 60 });
    expect(evalRule("dv", { token, constraints: { cert: rsaPem, iss: "arbiter", aud: "svc", time: NOW_NS } })).toEqual([
      true,
      { alg: "RS256", typ: "JWT" },
      { iss: "arbiter", aud: "svc", exp: NOW_S + 60, nbf: NOW_S - 60 },
    ]);
  });

  it('refuses alg "none" (no signature) even with the right claims', () => {
    const token = `${b64(JSON.stringify({ alg: "none", typ: "JWT" }))}.${b64(JSON.stringify({ iss: "arbiter" }))}.`;
    expect(evalRule("dv", { token, constraints: { cert: rsaPem, time: NOW_NS } })).toEqual(UNVERIFIED);
    expect(evalRule("dv", { token, constraints: { secret: "s", time: NOW_NS } })).toEqual(UNVERIFIED);
  });

  it("refuses alg confusion: HS256 signed with the RSA public key PEM as the HMAC secret", () => {
    const input = `${b64(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64(JSON.stringify({ iss: "arbiter" }))}`;
    const token = `${input}.${b64(createHmac("sha256", rsaPem).update(input).digest())}`;
    expect(evalRule("dv", { token, constraints: { cert: rsaPem, time: NOW_NS } })).toEqual(UNVERIFIED);
    expect(evalRule("rs", { token, key: rsaPem })).toBe(false);
  });

  it("refuses a tampered payload and a token signed by another key", async () => {
    const token = await rs256({ iss: "arbiter", role: "user" });
    const [h, , s] = token.split(".");
    const forged = `${h}.${b64(JSON.stringify({ iss: "arbiter", role: "admin" }))}.${s}`;
    expect(evalRule("dv", { token: forged, constraints: { cert: rsaPem, time: NOW_NS } })).toEqual(UNVERIFIED);
    expect(evalRule("rs", { token: forged, key: rsaPem })).toBe(false);
    expect(evalRule("dv", { token, constraints: { cert: otherPem, time: NOW_NS } })).toEqual(UNVERIFIED);
    expect(evalRule("rs", { token, key: otherPem })).toBe(false);
    expect(evalRule("rs", { token, key: rsaPem })).toBe(true);
  });

  it("refuses an expired token and one not yet valid, to the second (exp exclusive, nbf inclusive)", async () => {
    const exp = await rs256({ exp: NOW_S });
    expect(evalRule("dv", { token: exp, constraints: { cert: rsaPem, time: NOW_NS } })).toEqual(UNVERIFIED);
    expect((evalRule("dv", { token: exp, constraints: { cert: rsaPem, time: NOW_NS - 1e6 } }) as unknown[])[0]).toBe(
      true,
    );
    const nbf = await rs256({ nbf: NOW_S });
    expect(evalRule("dv", { token: nbf, constraints: { cert: rsaPem, time: NOW_NS - 1e6 } })).toEqual(UNVERIFIED);
    expect((evalRule("dv", { token: nbf, constraints: { cert: rsaPem, time: NOW_NS } }) as unknown[])[0]).toBe(true);
  });

  it("refuses a wrong or missing iss, a wrong aud, an aud nobody asked for, and an alg other than required", async () => {
    const token = await rs256({ iss: "evil", aud: ["a", "b"] });
    const c = (extra: object) => ({ token, constraints: { cert: rsaPem, time: NOW_NS, ...extra } });
    expect(evalRule("dv", c({ iss: "arbiter", aud: "a" }))).toEqual(UNVERIFIED);
    expect(evalRule("dv", c({ aud: "c" }))).toEqual(UNVERIFIED);
    expect(evalRule("dv", c({}))).toEqual(UNVERIFIED);
    expect(evalRule("dv", c({ aud: "b", alg: "RS512" }))).toEqual(UNVERIFIED);
    expect((evalRule("dv", c({ aud: "b", iss: "evil" })) as unknown[])[0]).toBe(true);
    const noIss = await rs256({});
    expect(evalRule("dv", { token: noIss, constraints: { cert: rsaPem, iss: "arbiter", time: NOW_NS } })).toEqual(
      UNVERIFIED,
    );
  });

  it("answers undefined (a builtin error) for malformed tokens and constraints", async () => {
    const token = await rs256({});
    expect(evalRule("dv", { token: "a.b", constraints: { cert: rsaPem } })).toBeUndefined();
    expect(evalRule("dv", { token, constraints: { cert: rsaPem, secret: "x" } })).toBeUndefined();
    expect(evalRule("dv", { token, constraints: {} })).toBeUndefined();
    expect(evalRule("dv", { token, constraints: { cert: rsaPem, bogus: 1 } })).toBeUndefined();
  });
});

describe("io.jwt.verify_* and keys", () => {
  it("verifies ES256 and EdDSA from PEM keys and JWKS, and nothing with the wrong family", async () => {
    const es = await new CompactSign(Buffer.from('{"a":1}')).setProtectedHeader({ alg: "ES256" }).sign(ec.privateKey);
    expect(call("io.jwt.verify_es256", es, ecPem)).toBe(true);
    expect(call("io.jwt.verify_rs256", es, ecPem)).toBe(false);
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(ec.publicKey)), kid: "k1" }] });
    expect(call("io.jwt.verify_es256", es, jwks)).toBe(true);
    const eddsa = await new CompactSign(Buffer.from('{"a":1}'))
      .setProtectedHeader({ alg: "EdDSA" })
      .sign(ed.privateKey);
    expect(call("io.jwt.verify_eddsa", eddsa, edPem)).toBe(true);
    expect(call("io.jwt.verify_eddsa", eddsa, ecPem)).toBe(false);
  });

  it("does not verify with a private JWK in verify_* (OPA requires a public key there)", async () => {
    const token = await rs256({});
    expect(call("io.jwt.verify_rs256", token, JSON.stringify(await exportJWK(rsa.privateKey)))).toBe(false);
    expect(call("io.jwt.verify_rs256", token, JSON.stringify(await exportJWK(rsa.publicKey)))).toBe(true);
  });

  it("refuses keys with data after the PEM block and unknown PEM blocks", async () => {
    const token = await rs256({});
    expect(call("io.jwt.verify_rs256", token, `${rsaPem}\nextra`)).toBeUndefined();
    expect(call("io.jwt.verify_rs256", token, rsaPem.replace(/PUBLIC KEY/g, "PRIVATE KEY"))).toBeUndefined();
  });

  it("encode_sign round-trips through decode_verify, and signs nothing with a public key", async () => {
    const jwk = await exportJWK(rsa.privateKey);
    const token = call("io.jwt.encode_sign", { alg: "PS256", typ: "JWT" }, { sub: "a", n: 3 }, jwk) as string;
    expect(decodeVerify(token, { cert: rsaPem, time: NOW_NS })).toEqual([
      true,
      { alg: "PS256", typ: "JWT" },
      { sub: "a", n: 3 },
    ]);
    expect(call("io.jwt.encode_sign", { alg: "RS256" }, {}, await exportJWK(rsa.publicKey))).toBeUndefined();
    expect(call("io.jwt.encode_sign", { alg: "none" }, {}, jwk)).toBeUndefined();
  });

  it("fails the evaluation rather than round a payload number JavaScript cannot hold", () => {
    const input = `${b64('{"alg":"HS256"}')}.${b64('{"exp":12345678901234567890}')}`;
    const token = `${input}.${b64(createHmac("sha256", "k").update(input).digest())}`;
    expect(() => decodeVerify(token, { secret: "k", time: 0 })).toThrow(/not held exactly/);
    expect(() => call("io.jwt.encode_sign", { alg: "HS256" }, { n: 0.5 }, { kty: "oct", k: "aw" })).toThrow(/spelled/);
  });

  it("takes a time in nanoseconds beyond 2^53 exactly and compares float exp/nbf as OPA (float64 seconds)", async () => {
    const hs = (claims: string): string => {
      const input = `${b64('{"alg":"HS256"}')}.${b64(claims)}`;
      return `${input}.${b64(createHmac("sha256", "k").update(input).digest())}`;
    };
    const nbf = hs('{"nbf":1.5893857701234e+09}');
    const exp = hs('{"exp":1.5893857701234e+09}');
    /** A policy answering decode_verify's validity for `token` at `time` (Rego source). */
    const at = (token: string, time: string): string =>
      `package t\np := io.jwt.decode_verify("${token}", {"secret": "k", "time": ${time}})[0]\n`;
    const cases = [
      [at(nbf, "1589385770123400000"), true], // equal to nbf: valid
      [at(nbf, "1589385770023400000"), false], // 0.1 s before nbf
      [at(exp, "1589385770123400000"), false], // equal to exp: expired
      [at(exp, "1589385769123400000"), true], // 1 s before exp
      [at(nbf, "9223372036854775807"), true], // int64 max: no error, far after nbf
      [at(nbf, '"soon"'), undefined], // OPA: the time must be a number
      [at(nbf, "-1"), undefined], // OPA: must not be negative
    ] as const;
    for (const [text, want] of cases) {
      const { wasm } = compile([{ path: "t.rego", text }], { entrypoints: ["t/p"] });
      const p = await loadCompiledPolicy(wasm);
      const rs = p.evaluate(undefined, "t/p") as { result: unknown }[];
      expect(rs[0]?.result, text).toBe(want);
    }
  });
});
