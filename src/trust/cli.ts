/**
 * `arbiter keygen [--out DIR] [--kid ID]`
 *   writes an Ed25519 key pair for an approver: `approver.key.pem` (private, PKCS#8, mode 0600;
 *   stays with the approver) and `approver.jwks.json` (public JWKS; what ARBITER_APPROVAL_KEYS
 *   points at). Existing files are never overwritten.
 *
 * `arbiter approve --key KEY.pem --tenant T --request request.json [--ttl 15m] [--approver NAME]
 *                  [--kid ID] [--audience A]`
 *   prints a signed approval grant (compact JWS) for one Decide request, given as the JSON body of
 *   a Connect Decide call (`-` reads it from stdin). The request goes through the transport's own
 *   JSON mapping, validation and conversion and the digest is `decideApprovalDigest`, so it is
 *   exactly the digest the sidecar computes for that request. The grant goes to stdout (one
 *   line), a summary to stderr.
 *
 * Exit codes: 0 ok, 1 failure (unreadable key or request, invalid request), 2 usage error.
 */
import { createPrivateKey, generateKeyPairSync, randomUUID, type KeyObject } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { calculateJwkThumbprint, SignJWT } from "jose";
import { parseArgs, UsageError } from "../audit/cli.ts";
import { parseDuration } from "../audit/prune.ts";
import { decideApprovalDigest } from "../decision/canonical.ts";
import { publicJwk, type GrantAlgorithm } from "./approval-keys.ts";
import { GRANT_MAX_LIFETIME_SECONDS } from "./grant-verifier.ts";

const KEYGEN_USAGE = `usage: arbiter keygen [--out DIR] [--kid ID]

  --out DIR   where to write approver.key.pem (private) and approver.jwks.json (public); default .
  --kid ID    key id in the JWKS; default the key's RFC 7638 thumbprint
`;

const APPROVE_USAGE = `usage: arbiter approve --key KEY.pem --tenant T --request request.json [--ttl 15m]
                       [--approver NAME] [--kid ID] [--audience A]

  --key KEY.pem         the approver's private key (Ed25519, P-256 or RSA; PEM)
  --tenant T            tenant the grant is for
  --request FILE        the Decide request as Connect JSON (- for stdin), e.g.
                        {"tenantId":"acme","subject":{"id":"agent-7","roles":["admin"]},
                         "action":"delete","resource":{"type":"document","id":"d1"}}
  --ttl DURATION        how long the grant is good for: 30s, 15m, 2h (default 15m, at most 24h)
  --approver NAME       who approves (the grant's sub); default the current user
  --kid ID              key id for the grant's header; default the key's RFC 7638 thumbprint
  --audience A          the grant's aud (the sidecar's ARBITER_APPROVAL_AUDIENCE)
`;

/** The flag parser of the other subcommands (audit/cli.ts): the word after a value option is its value. */
function parse(args: string[], names: readonly string[]): Record<string, string | undefined> {
  const p = parseArgs(
    args,
    names.map((n) => `--${n}`),
    ["--help", "-h"],
  );
  const o: Record<string, string | undefined> = {};
  for (const [flag, value] of p.flags) o[flag.slice(2)] = value;
  if (p.bools.size > 0) o.help = "true";
  return o;
}

function algOf(key: KeyObject): GrantAlgorithm {
  const type = key.asymmetricKeyType;
  if (type === "ed25519") return "EdDSA";
  if (type === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return "ES256";
  if (type === "rsa") return "RS256";
  const curve = key.asymmetricKeyDetails?.namedCurve;
  throw new Error(`unsupported key type ${String(type)}${curve ? ` (${curve})` : ""}; expected Ed25519, P-256 or RSA`);
}

/** `arbiter keygen` */
export async function runKeygen(args: string[]): Promise<number> {
  try {
    const o = parse(args, ["out", "kid"]);
    if (o.help) {
      process.stdout.write(KEYGEN_USAGE);
      return 0;
    }
    const dir = o.out ?? ".";
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const jwk = publicJwk(publicKey);
    const kid = o.kid ?? (await calculateJwkThumbprint(jwk, "sha256"));
    const keyPath = join(dir, "approver.key.pem");
    const jwksPath = join(dir, "approver.jwks.json");
    const jwks = { keys: [{ ...jwk, kid, alg: "EdDSA", use: "sig" }] };
    // "wx": never overwrite an approver's key; 0600: the private key is the approver's alone.
    writeFileSync(keyPath, privateKey.export({ format: "pem", type: "pkcs8" }), { flag: "wx", mode: 0o600 });
    writeFileSync(jwksPath, JSON.stringify(jwks, null, 2) + "\n", { flag: "wx" });
    process.stdout.write(
      `wrote ${keyPath} (private key: keep it with the approver)\nwrote ${jwksPath} (public JWKS: ARBITER_APPROVAL_KEYS)\nkid ${kid}\n`,
    );
    return 0;
  } catch (err) {
    return fail("keygen", KEYGEN_USAGE, err);
  }
}

/** `arbiter approve` */
export async function runApprove(args: string[]): Promise<number> {
  try {
    const o = parse(args, ["key", "tenant", "request", "ttl", "approver", "kid", "audience"]);
    if (o.help) {
      process.stdout.write(APPROVE_USAGE);
      return 0;
    }
    for (const name of ["key", "tenant", "request"]) if (!o[name]) throw new UsageError(`--${name} is required`);
    const ttlText = o.ttl ?? "15m";
    const ttlMs = parseDuration(ttlText);
    if (ttlMs === undefined || ttlMs < 1000 || ttlMs > GRANT_MAX_LIFETIME_SECONDS * 1000) {
      throw new UsageError(`--ttl must be a duration from 1s to 24h like 30s, 15m or 2h, got "${ttlText}"`);
    }
    const approver = o.approver ?? currentUser();
    if (approver === "" || approver.length > 256) throw new UsageError("--approver must be 1 to 256 characters");
    const tenant = o.tenant!;

    let key: KeyObject;
    try {
      key = createPrivateKey(readFileSync(o.key!));
    } catch (err) {
      throw new Error(
        `--key ${o.key}: not a readable PEM private key (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        { cause: err },
      );
    }
    const alg = algOf(key);
    const kid = o.kid ?? (await calculateJwkThumbprint(publicJwk(key), "sha256"));

    const requestText = o.request === "-" ? readFileSync(0, "utf8") : readFileSync(o.request!, "utf8");
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(requestText) as Record<string, unknown>;
    } catch (err) {
      throw new Error(`--request ${o.request}: not JSON (${(err as Error).message})`, { cause: err });
    }
    if (typeof json !== "object" || json === null || Array.isArray(json))
      throw new Error(`--request ${o.request}: expected a JSON object (a Decide request)`);
    // The grant names its tenant; a request file naming another one is a mistake, not a choice.
    const requestTenant = json.tenantId ?? json.tenant_id;
    if (requestTenant !== undefined && requestTenant !== tenant) {
      throw new Error(
        `--request ${o.request}: the request's tenant ${JSON.stringify(requestTenant)} is not --tenant "${tenant}"`,
      );
    }
    const { decideRequestFromJson } = await import("../transport/decide-json.ts");
    let digest: string;
    try {
      const { tenant_id: _snake, ...rest } = json;
      digest = decideApprovalDigest(decideRequestFromJson({ ...rest, tenantId: tenant }));
    } catch (err) {
      throw new Error(`--request ${o.request}: not a valid Decide request: ${(err as Error).message}`, { cause: err });
    }

    const nowS = Math.floor(Date.now() / 1000);
    const expS = nowS + Math.ceil(ttlMs / 1000);
    const jti = randomUUID();
    let jwt = new SignJWT({ tenant_id: tenant, request_digest: digest })
      .setProtectedHeader({ alg, kid, typ: "JWT" })
      .setJti(jti)
      .setSubject(approver)
      .setIssuedAt(nowS)
      .setExpirationTime(expS);
    if (o.audience !== undefined) jwt = jwt.setAudience(o.audience);
    const grant = await jwt.sign(key);
    process.stdout.write(grant + "\n");
    process.stderr.write(
      `grant ${jti}: ${approver} approves tenant ${tenant} request sha256:${digest} until ${new Date(expS * 1000).toISOString()} (${alg}, kid ${kid})\n`,
    );
    return 0;
  } catch (err) {
    return fail("approve", APPROVE_USAGE, err);
  }
}

/** The default approver: the login name (a container user without a passwd entry has none). */
function currentUser(): string {
  if (process.env.USER) return process.env.USER;
  try {
    return userInfo().username;
  } catch {
    throw new UsageError("--approver is required: no user name is known for this process");
  }
}

function fail(command: string, usage: string, err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`arbiter ${command}: ${err.message}\n${usage}`);
    return 2;
  }
  const e = err as NodeJS.ErrnoException;
  process.stderr.write(
    `arbiter ${command}: ${e.code === "EEXIST" ? `${e.path} exists; not overwriting it` : e.message}\n`,
  );
  return 1;
}
