/**
 * `arbiter keygen` and `arbiter approve`: the real command (bin/arbiter.js in a child process) for
 * the main path, the command functions in-process for the error cases (same code, no tsx start-up
 * per case).
 */
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { decideApprovalDigest } from "../../src/decision/canonical.ts";
import { createApprovalKeySet } from "../../src/trust/approval-keys.ts";
import { runApprove, runKeygen } from "../../src/trust/cli.ts";
import { createGrantVerifier, GRANT_CLOCK_TOLERANCE_SECONDS } from "../../src/trust/grant-verifier.ts";
import { silentLogger, tempDir } from "./helpers.ts";

const repo = resolve(import.meta.dirname, "../..");

function arbiter(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith("ARBITER_")) delete env[k];
  const r = spawnSync(process.execPath, [join(repo, "bin/arbiter.js"), ...args], {
    cwd: repo,
    env,
    encoding: "utf8",
    timeout: 60_000,
    input,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a command function in-process, capturing what it writes. */
async function inProcess(
  run: (a: string[]) => Promise<number>,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const out = vi.spyOn(process.stdout, "write").mockImplementation((c) => ((stdout += String(c)), true));
  const err = vi.spyOn(process.stderr, "write").mockImplementation((c) => ((stderr += String(c)), true));
  try {
    return { code: await run(args), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}
afterEach(() => vi.restoreAllMocks());

// The request as a Connect/JSON Decide body; resource.tenantId left out (resolved to the tenant).
const REQUEST = {
  tenantId: "acme",
  subject: { id: "agent-7", roles: ["admin"], attributes: { team: "ops" } },
  action: "delete",
  resource: { type: "document", id: "d1" },
  context: { ticket: "OPS-42" },
};
// The same request as the decision core sees it (what the transport's conversion must produce).
const CORE = {
  tenantId: "acme",
  requestId: "ignored",
  subject: { id: "agent-7", roles: ["admin"], attributes: { team: "ops" } },
  action: "delete",
  resource: { type: "document", id: "d1", tenantId: "", attributes: {} },
  context: { ticket: "OPS-42" },
  approvalToken: "",
};

let dir: string;
let requestPath: string;
let keygen: ReturnType<typeof arbiter>;

beforeAll(() => {
  dir = tempDir("arbiter-cli-");
  requestPath = join(dir, "request.json");
  writeFileSync(requestPath, JSON.stringify(REQUEST));
  keygen = arbiter(["keygen", "--out", dir]);
});

describe("arbiter keygen", () => {
  it("writes a private PEM (0600) and a public JWKS named by the key's thumbprint", () => {
    expect(keygen.stderr).toBe("");
    expect(keygen.code).toBe(0);
    const jwks = JSON.parse(readFileSync(join(dir, "approver.jwks.json"), "utf8")) as {
      keys: Array<Record<string, string>>;
    };
    expect(jwks.keys).toHaveLength(1);
    const k = jwks.keys[0]!;
    expect(k).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
    expect(k.d).toBeUndefined();
    expect(k.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(keygen.stdout).toBe(
      `wrote ${join(dir, "approver.key.pem")} (private key: keep it with the approver)\nwrote ${join(dir, "approver.jwks.json")} (public JWKS: ARBITER_APPROVAL_KEYS)\nkid ${k.kid}\n`,
    );
    expect(readFileSync(join(dir, "approver.key.pem"), "utf8")).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(statSync(join(dir, "approver.key.pem")).mode & 0o777).toBe(0o600);
  });

  it("never overwrites a key; --kid names the key", async () => {
    const again = await inProcess(runKeygen, ["--out", dir]);
    expect(again).toMatchObject({
      code: 1,
      stderr: `arbiter keygen: ${join(dir, "approver.key.pem")} exists; not overwriting it\n`,
    });
    const other = tempDir();
    expect((await inProcess(runKeygen, ["--out", other, "--kid", "ops-2026"])).code).toBe(0);
    expect(JSON.parse(readFileSync(join(other, "approver.jwks.json"), "utf8")).keys[0].kid).toBe("ops-2026");
    expect((await inProcess(runKeygen, ["--bogus"])).code).toBe(2);
  });

  it("takes a value that starts with a dash: a base64url thumbprint does one time in 64", async () => {
    const other = tempDir();
    expect((await inProcess(runKeygen, ["--out", other, "--kid", "-NsGp_x"])).code).toBe(0);
    expect(JSON.parse(readFileSync(join(other, "approver.jwks.json"), "utf8")).keys[0].kid).toBe("-NsGp_x");
    const args = ["--key", join(other, "approver.key.pem"), "--tenant", "acme", "--request", requestPath];
    const r = await inProcess(runApprove, [...args, "--kid", "-NsGp_x"]);
    expect(r.code).toBe(0);
    expect(decodeProtectedHeader(r.stdout.trim()).kid).toBe("-NsGp_x");
    expect(await inProcess(runApprove, [...args, "--kid"])).toMatchObject({ code: 2 });
  });
});

describe("arbiter approve", () => {
  it("prints a grant the sidecar's verifier accepts for exactly this request's digest", async () => {
    const r = arbiter([
      "approve",
      "--key",
      join(dir, "approver.key.pem"),
      "--tenant",
      "acme",
      "--request",
      requestPath,
      "--ttl",
      "10m",
      "--approver",
      "carol",
    ]);
    expect(r.code).toBe(0);
    const grant = r.stdout.trim();
    expect(r.stdout).toBe(grant + "\n");
    const digest = decideApprovalDigest(CORE);
    const claims = decodeJwt(grant);
    const header = decodeProtectedHeader(grant);
    const kid = JSON.parse(readFileSync(join(dir, "approver.jwks.json"), "utf8")).keys[0].kid as string;
    expect(header).toEqual({ alg: "EdDSA", kid, typ: "JWT" });
    expect(claims).toMatchObject({ sub: "carol", tenant_id: "acme", request_digest: digest });
    expect(claims.exp! - claims.iat!).toBe(600);
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.stderr).toBe(
      `grant ${claims.jti}: carol approves tenant acme request sha256:${digest} until ${new Date(claims.exp! * 1000).toISOString()} (EdDSA, kid ${kid})\n`,
    );

    const keys = await createApprovalKeySet({
      source: join(dir, "approver.jwks.json"),
      refreshSeconds: 3600,
      logger: silentLogger(),
    });
    try {
      const v = createGrantVerifier({ keys });
      expect(await v.verify(grant, { tenantId: "acme", digest, nowMs: Date.now() })).toEqual({
        valid: true,
        grantId: claims.jti,
        approver: "carol",
        expiresAtMs: (claims.exp! + GRANT_CLOCK_TOLERANCE_SECONDS) * 1000,
      });
      // Resource tenant spelled out, keys in another order, snake_case names: the same request.
      const same = {
        action: "delete",
        resource: { id: "d1", type: "document", tenant_id: "acme" },
        subject: REQUEST.subject,
        context: REQUEST.context,
      };
      writeFileSync(join(dir, "same.json"), JSON.stringify(same));
      const g2 = await inProcess(runApprove, [
        "--key",
        join(dir, "approver.key.pem"),
        "--tenant",
        "acme",
        "--request",
        join(dir, "same.json"),
      ]);
      expect(decodeJwt(g2.stdout.trim()).request_digest).toBe(digest);
    } finally {
      keys.close();
    }
  });

  it("P-256 and RSA keys sign ES256 and RS256 grants; --kid and --audience go into the grant", async () => {
    for (const [type, alg] of [
      ["ec", "ES256"],
      ["rsa", "RS256"],
    ] as const) {
      const { privateKey } =
        type === "ec"
          ? generateKeyPairSync("ec", { namedCurve: "prime256v1" })
          : generateKeyPairSync("rsa", { modulusLength: 2048 });
      const path = join(dir, `${type}.pem`);
      writeFileSync(path, privateKey.export({ format: "pem", type: "pkcs8" }));
      const r = await inProcess(runApprove, [
        "--key",
        path,
        "--tenant",
        "acme",
        "--request",
        requestPath,
        "--kid",
        `${type}-1`,
        "--audience",
        "arbiter://prod",
      ]);
      expect(r.code).toBe(0);
      const grant = r.stdout.trim();
      expect(grant.length).toBeLessThanOrEqual(4096);
      expect(decodeProtectedHeader(grant)).toEqual({ alg, kid: `${type}-1`, typ: "JWT" });
      expect(decodeJwt(grant).aud).toBe("arbiter://prod");
    }
  });

  it.each([
    [["--tenant", "acme", "--request", "R"], 2, "arbiter approve: --key is required\n"],
    [
      ["--key", "K", "--tenant", "acme", "--request", "R", "--ttl", "2d"],
      2,
      'arbiter approve: --ttl must be a duration from 1s to 24h like 30s, 15m or 2h, got "2d"\n',
    ],
    [
      ["--key", "K", "--tenant", "acme", "--request", "R", "--ttl", "15"],
      2,
      'arbiter approve: --ttl must be a duration from 1s to 24h like 30s, 15m or 2h, got "15"\n',
    ],
    [
      ["--key", "/nonexistent.pem", "--tenant", "acme", "--request", "R"],
      1,
      "arbiter approve: --key /nonexistent.pem: not a readable PEM private key (ENOENT)\n",
    ],
  ])("usage and input errors: %j", async (args, code, message) => {
    const r = await inProcess(
      runApprove,
      args.map((a) => (a === "K" ? join(dir, "approver.key.pem") : a === "R" ? requestPath : a)),
    );
    expect(r.code).toBe(code);
    expect(r.stderr.startsWith(message)).toBe(true);
  });

  it("refuses a request for another tenant, an invalid request, a public key as --key", async () => {
    const key = join(dir, "approver.key.pem");
    const other = await inProcess(runApprove, ["--key", key, "--tenant", "globex", "--request", requestPath]);
    expect(other).toMatchObject({
      code: 1,
      stderr: `arbiter approve: --request ${requestPath}: the request's tenant "acme" is not --tenant "globex"\n`,
    });
    writeFileSync(
      join(dir, "bad.json"),
      JSON.stringify({ tenantId: "acme", action: "delete", resource: { type: "document" }, colour: "blue" }),
    );
    const bad = await inProcess(runApprove, ["--key", key, "--tenant", "acme", "--request", join(dir, "bad.json")]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`arbiter approve: --request ${join(dir, "bad.json")}: not a valid Decide request:`);
    expect(bad.stderr).toContain('"colour"');
    writeFileSync(
      join(dir, "invalid.json"),
      JSON.stringify({ tenantId: "acme", action: "delete", resource: { type: "document" } }),
    );
    const invalid = await inProcess(runApprove, [
      "--key",
      key,
      "--tenant",
      "acme",
      "--request",
      join(dir, "invalid.json"),
    ]);
    expect(invalid.stderr).toBe(
      `arbiter approve: --request ${join(dir, "invalid.json")}: not a valid Decide request: subject: value is required [required]\n`,
    );
    const pub = await inProcess(runApprove, [
      "--key",
      join(dir, "approver.jwks.json"),
      "--tenant",
      "acme",
      "--request",
      requestPath,
    ]);
    expect(pub.code).toBe(1);
    expect(pub.stderr).toContain("not a readable PEM private key");
  });
});
