/**
 * Issue #11 acceptance, approvals half, through the real sidecar (`startServer` with the default
 * policy pack, approver keys from a real JWKS file) and a real @grpc/grpc-js client; grants minted
 * by the real `arbiter approve` command (and, for the cases the command refuses to produce, by an
 * attacker with jose and node:crypto).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile, spawnSync } from "node:child_process";
import { createHmac, createPrivateKey, randomUUID, type KeyObject } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { SignJWT, type JWK } from "jose";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import { startServer, type RunningServer } from "../../src/server/serve.ts";
import { captureLogs, POLICIES, testConfig, unary } from "../transport/helpers.ts";
import { b64, makeKey, tempDir, until, writeJwks, type TestKey } from "./helpers.ts";

const S = "/arbiter.v1.PolicyService";
const repo = resolve(import.meta.dirname, "../..");
const run = promisify(execFile);

/** The real `arbiter` command; resolves with stdout, rejects on a non-zero exit. */
async function arbiter(...args: string[]): Promise<string> {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("ARBITER_")) delete env[k];
  const { stdout } = await run(process.execPath, [join(repo, "bin/arbiter.js"), ...args], {
    cwd: repo,
    env,
    timeout: 60_000,
  });
  return stdout;
}

// A tier-3 request the engineer role may make (RBAC permits delete on a service).
const REQUEST = {
  tenantId: "acme",
  subject: { id: "agent-7", roles: ["engineer"] },
  action: "delete",
  resource: { type: "service", id: "checkout" },
};
const OTHER_REQUEST = { ...REQUEST, resource: { type: "service", id: "payments" } };
const GLOBEX_REQUEST = { ...REQUEST, tenantId: "globex" };

let dir: string;
let outsiderDir: string;
let jwksPath: string;
let server: RunningServer;
let client: grpc.Client;
const logs = captureLogs();
let approverKey: KeyObject;
let approverKid: string;
let rsa: TestKey;
let approverJwk: JWK;

async function decide(token: string, request: object = REQUEST): Promise<pb.DecideResponse> {
  const r = await unary(client, `${S}/Decide`, pb.DecideRequestSchema, pb.DecideResponseSchema, {
    ...request,
    approvalToken: token,
  } as never);
  expect(r.error).toBeUndefined();
  return r.value!;
}

/** Grant minted by `arbiter approve` with the approver's key (or `key`) for `request`. */
async function approve(request: object, ...extra: string[]): Promise<string> {
  const path = join(dir, `request-${randomUUID()}.json`);
  writeFileSync(path, JSON.stringify(request));
  const tenant = (request as { tenantId: string }).tenantId;
  const hasKey = extra.includes("--key");
  return (
    await arbiter(
      "approve",
      ...(hasKey ? [] : ["--key", join(dir, "approver.key.pem")]),
      "--tenant",
      tenant,
      "--request",
      path,
      "--approver",
      "carol",
      ...extra,
    )
  ).trim();
}

/** A grant with any claims, signed with the approver's key (what `arbiter approve` will not produce). */
function signed(base: Record<string, unknown>, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT({ ...base, jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg: "EdDSA", kid: approverKid })
    .sign(approverKey);
}

beforeAll(async () => {
  dir = tempDir("arbiter-approvals-");
  outsiderDir = tempDir("arbiter-outsider-"); // a second key pair, which the sidecar does not trust
  await Promise.all([
    arbiter("keygen", "--out", dir),
    arbiter("keygen", "--out", outsiderDir),
    (async () => (rsa = await makeKey("RS256", "rsa-1")))(),
  ]);
  approverKey = createPrivateKey(readFileSync(join(dir, "approver.key.pem")));
  approverJwk = (JSON.parse(readFileSync(join(dir, "approver.jwks.json"), "utf8")) as { keys: JWK[] }).keys[0]!;
  approverKid = approverJwk.kid!;
  // The sidecar trusts the approver's key and an RSA key (the target of the key-confusion attempt).
  jwksPath = join(dir, "approvers", "jwks.json");
  mkdirSync(join(dir, "approvers"));
  writeJwks(jwksPath, [approverJwk, rsa.jwk]);
  server = await startServer(
    testConfig({ ARBITER_BUNDLE: POLICIES, ARBITER_APPROVAL_KEYS: jwksPath, ARBITER_LOG_LEVEL: "info" }),
    { logDestination: logs.stream },
  );
  client = new grpc.Client(server.address, grpc.credentials.createInsecure());
}, 120_000);

afterAll(async () => {
  client?.close();
  await server?.close();
});

describe("self-approval is closed", () => {
  it("CreateApproval on the application listener: PERMISSION_DENIED, saying how approvals are issued", async () => {
    const r = await unary(
      client,
      `${S}/CreateApproval`,
      pb.CreateApprovalRequestSchema,
      pb.CreateApprovalResponseSchema,
      {
        tenantId: "acme",
        decide: REQUEST,
        approver: "agent-7",
        ttlSeconds: 900,
      },
    );
    expect(r.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(r.error?.details).toBe(
      "CreateApproval is disabled: approvals are signed grants issued with `arbiter approve` (docs/policies.md); set ARBITER_APPROVALS_LOCAL_CREATE=on for local development only",
    );
    expect(logs.lines.some((l) => l.includes("ARBITER_APPROVALS_LOCAL_CREATE=on"))).toBe(false);
  });
});

describe("a grant from arbiter approve", () => {
  it("the request needs an approval; the grant allows exactly it once; the replay is denied", async () => {
    const without = await decide("");
    expect(without).toMatchObject({ allow: false, riskTier: 3, requiresApproval: true });
    expect(without.reasons).toContain("approval_required");

    const grant = await approve(REQUEST, "--ttl", "5m");
    const first = await decide(grant);
    expect(first).toMatchObject({ allow: true, riskTier: 3, requiresApproval: true });
    expect([...first.reasons].sort()).toEqual(["approval_valid", "destructive_action", "role_permitted"]);

    const replay = await decide(grant);
    expect(replay.allow).toBe(false);
    expect(replay.reasons).toContain("approval_replayed");
  });

  it("sent by ten concurrent calls, one grant allows exactly one of them", async () => {
    const grant = await approve(REQUEST);
    const answers = await Promise.all(Array.from({ length: 10 }, () => decide(grant)));
    expect(answers.filter((a) => a.allow)).toHaveLength(1);
    const denied = answers.filter((a) => !a.allow);
    expect(denied).toHaveLength(9);
    for (const d of denied) expect(d.reasons).toContain("approval_replayed");
  });

  it("each forged, misdirected or stale grant is denied with its reason", async () => {
    const outsiderPem = join(outsiderDir, "approver.key.pem");
    const [grant, otherTenant, otherRequest, byOutsiderUnderTrustedKid, byOutsider] = await Promise.all([
      approve(REQUEST),
      approve(GLOBEX_REQUEST),
      approve(OTHER_REQUEST),
      approve(REQUEST, "--key", outsiderPem, "--kid", approverKid),
      approve(REQUEST, "--key", outsiderPem),
    ]);

    const [h, p, s] = grant.split(".") as [string, string, string];
    const flipped = `${h}.${p.slice(0, 30)}${p[30] === "A" ? "B" : "A"}${p.slice(31)}.${s}`;
    const nowS = Math.floor(Date.now() / 1000);
    const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as Record<string, unknown>;
    const none = `${b64({ alg: "none", typ: "JWT" })}.${b64({ ...claims, jti: randomUUID() })}.`;
    const hsInput = `${b64({ alg: "HS256", kid: "rsa-1", typ: "JWT" })}.${b64({ ...claims, jti: randomUUID() })}`;
    const rsaPem = rsa.publicKey.export({ format: "pem", type: "spki" }) as string;
    const keyConfusion = `${hsInput}.${createHmac("sha256", rsaPem).update(hsInput).digest("base64url")}`;

    const cases: Array<[string, string]> = [
      ["one byte changed", flipped],
      ["signed by another key (under the trusted kid)", byOutsiderUnderTrustedKid],
      ["for another tenant", otherTenant],
      ["for another request", otherRequest],
      ["expired", await signed(claims, { iat: nowS - 3600, exp: nowS - 600 })],
      ["not yet valid", await signed(claims, { nbf: nowS + 600, exp: nowS + 1200 })],
      ["alg none", none],
      ["HS256 keyed with the RSA public key (key confusion)", keyConfusion],
      ["kid not in the key set", byOutsider],
    ];
    const expected = [
      "approval_bad_signature",
      "approval_bad_signature",
      "approval_wrong_tenant",
      "approval_wrong_action",
      "approval_expired",
      "approval_not_yet_valid",
      "approval_bad_signature",
      "approval_bad_signature",
      "approval_unknown_key",
    ];
    const got: string[] = [];
    for (const [name, token] of cases) {
      const r = await decide(token);
      expect(r.allow, name).toBe(false);
      expect(r.reasons, name).toContain("approval_required");
      got.push(r.reasons.find((x) => x.startsWith("approval_") && x !== "approval_required") ?? "(none)");
    }
    expect(got).toEqual(expected);

    // None of the refused grants was spent: the genuine one still allows its request once.
    expect((await decide(grant)).allow).toBe(true);
    expect((await decide(grant)).reasons).toContain("approval_replayed");
  }, 150_000); // five `arbiter approve` processes on a shared 2-core machine
});

describe("key rotation without a restart", () => {
  it("replacing the JWKS file makes the new key valid and the removed key invalid", async () => {
    const next = await makeKey("ES256", "approver-2027");
    const oldGrant = await approve(REQUEST);
    const newGrant = await new SignJWT(JSON.parse(Buffer.from(oldGrant.split(".")[1]!, "base64url").toString()))
      .setJti(randomUUID())
      .setProtectedHeader({ alg: "ES256", kid: next.kid })
      .sign(next.privateKey);
    expect((await decide(newGrant)).reasons).toContain("approval_unknown_key");

    writeJwks(jwksPath, [next.jwk]); // the old approver key retired, the new one published
    await until(async () => (await decide(newGrant)).allow, 15_000, "new key accepted");
    const old = await decide(oldGrant);
    expect(old.allow).toBe(false);
    expect(old.reasons).toContain("approval_unknown_key");
    expect(logs.lines.some((l) => l.includes('"approval keys loaded"') && l.includes("approver-2027"))).toBe(true);
  });
});

describe("keys from a JWKS URL", () => {
  it("a grant verifies against the served JWKS; a key published later is fetched when a grant names it", async () => {
    const next = await makeKey("RS256", "approver-rsa-2027");
    let keys: JWK[] = [approverJwk];
    const jwksServer = createServer((_req, res) =>
      res.writeHead(200, { "content-type": "application/jwk-set+json" }).end(JSON.stringify({ keys })),
    );
    await new Promise<void>((r) => jwksServer.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/.well-known/jwks.json`;
    const remote = await startServer(
      testConfig({
        ARBITER_BUNDLE: POLICIES,
        ARBITER_APPROVAL_KEYS: url,
        ARBITER_APPROVAL_KEYS_REFRESH_SECONDS: "3600",
      }),
    );
    const remoteClient = new grpc.Client(remote.address, grpc.credentials.createInsecure());
    const call = async (token: string): Promise<pb.DecideResponse> =>
      (
        await unary(remoteClient, `${S}/Decide`, pb.DecideRequestSchema, pb.DecideResponseSchema, {
          ...REQUEST,
          approvalToken: token,
        })
      ).value!;
    try {
      expect((await call(await approve(REQUEST))).allow).toBe(true);
      keys = [approverJwk, next.jwk]; // the issuer publishes a new key; the sidecar's refresh is an hour away
      const claims = JSON.parse(Buffer.from((await approve(REQUEST)).split(".")[1]!, "base64url").toString()) as Record<
        string,
        unknown
      >;
      const grant = await new SignJWT({ ...claims, jti: randomUUID() })
        .setProtectedHeader({ alg: "RS256", kid: next.kid })
        .sign(next.privateKey);
      expect((await call(grant)).reasons).toContain("approval_unknown_key"); // and asks for an early re-fetch
      await until(async () => (await call(grant)).allow, 15_000, "early re-fetch of the JWKS");
    } finally {
      remoteClient.close();
      await remote.close();
      await new Promise((r) => jwksServer.close(r));
    }
  }, 120_000);
});

describe("ARBITER_APPROVALS_LOCAL_CREATE=on (local development)", () => {
  it("warns at start, and CreateApproval then issues a token that allows the request once", async () => {
    const devLogs = captureLogs();
    const dev = await startServer(
      testConfig({
        ARBITER_BUNDLE: POLICIES,
        ARBITER_APPROVAL_KEYS: jwksPath,
        ARBITER_APPROVALS_LOCAL_CREATE: "on",
        ARBITER_LOG_LEVEL: "info",
      }),
      { logDestination: devLogs.stream },
    );
    const devClient = new grpc.Client(dev.address, grpc.credentials.createInsecure());
    try {
      const warning = devLogs.lines
        .map((l) => JSON.parse(l) as { level: number; msg: string })
        .find((l) => l.msg.includes("ARBITER_APPROVALS_LOCAL_CREATE=on"));
      expect(warning?.level).toBe(40);
      const created = await unary(
        devClient,
        `${S}/CreateApproval`,
        pb.CreateApprovalRequestSchema,
        pb.CreateApprovalResponseSchema,
        {
          tenantId: "acme",
          decide: REQUEST,
          approver: "dev",
          ttlSeconds: 60,
        },
      );
      expect(created.error).toBeUndefined();
      const call = (token: string) =>
        unary(devClient, `${S}/Decide`, pb.DecideRequestSchema, pb.DecideResponseSchema, {
          ...REQUEST,
          approvalToken: token,
        });
      expect((await call(created.value!.token)).value!.allow).toBe(true);
      expect((await call(created.value!.token)).value!.reasons).toContain("approval_replayed");
    } finally {
      devClient.close();
      await dev.close();
    }
  }, 120_000);
});

describe("start-up", () => {
  it("an unusable ARBITER_APPROVAL_KEYS file stops `arbiter serve` with a message naming the variable", () => {
    const bad = join(dir, "bad-jwks.json");
    writeFileSync(bad, JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0", kid: "hmac" }] }));
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith("ARBITER_")) delete env[k];
    const r = spawnSync(process.execPath, [join(repo, "bin/arbiter.js"), "serve"], {
      cwd: repo,
      env: {
        ...env,
        ARBITER_APPROVAL_KEYS: bad,
        ARBITER_AUDIT: "off",
        ARBITER_GRPC_LISTEN: "127.0.0.1:0",
        ARBITER_ADMIN_LISTEN: "127.0.0.1:0",
        ARBITER_LOG_LEVEL: "silent",
      },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(r.stderr).toBe(
      `arbiter serve: ARBITER_APPROVAL_KEYS: "${bad}" key 0 (kid "hmac") is a symmetric (oct) key; only public keys (Ed25519, P-256, RSA) are accepted\n`,
    );
    expect(r.status).toBe(2);
  });
});
