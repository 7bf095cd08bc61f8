/**
 * Test helpers for signed approval grants: real key pairs (Node's crypto through jose), JWKS files
 * written the way operators replace them (atomic rename), grants signed with any header and
 * claims an approver or an attacker could produce, and a silent/capturing logger.
 */
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { calculateJwkThumbprint, SignJWT, type JWK, type JWTPayload } from "jose";
import { pino, type Logger } from "pino";
import { captureLogs } from "../transport/helpers.ts";

export type Alg = "EdDSA" | "ES256" | "RS256";

export interface TestKey {
  readonly alg: Alg;
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  /** Public JWK with kid, alg and use. */
  readonly jwk: JWK;
}

export async function makeKey(alg: Alg, kid?: string): Promise<TestKey> {
  const pair =
    alg === "EdDSA"
      ? generateKeyPairSync("ed25519")
      : alg === "ES256"
        ? generateKeyPairSync("ec", { namedCurve: "prime256v1" })
        : generateKeyPairSync("rsa", { modulusLength: 2048 });
  const bare = pair.publicKey.export({ format: "jwk" }) as JWK;
  const id = kid ?? (await calculateJwkThumbprint(bare, "sha256"));
  return {
    alg,
    kid: id,
    privateKey: pair.privateKey,
    publicKey: pair.publicKey,
    jwk: { ...bare, kid: id, alg, use: "sig" },
  };
}

export function tempDir(prefix = "arbiter-trust-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes `{keys}` to `path` atomically (temp file + rename), as an operator replacing it would. */
export function writeJwks(path: string, keys: readonly JWK[]): void {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  writeFileSync(tmp, JSON.stringify({ keys }));
  renameSync(tmp, path);
}

export const DIGEST = "c3407ba7210c1e810637b7dd8a233467d76b3e57ae36454474cc9c72a32f1680";

export interface GrantSpec {
  readonly claims?: JWTPayload & Record<string, unknown>;
  /** Claims to drop from the defaults. */
  readonly omit?: readonly string[];
  /** Header; default `{alg: key.alg, kid: key.kid}`. */
  readonly header?: Record<string, unknown>;
  readonly nowS?: number;
}

/** A grant as `arbiter approve` would sign it (15 min), with overrides. */
export async function signGrant(key: TestKey, spec: GrantSpec = {}): Promise<string> {
  const now = spec.nowS ?? Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = {
    jti: randomUUID(),
    sub: "alice",
    tenant_id: "acme",
    request_digest: DIGEST,
    iat: now,
    exp: now + 900,
    ...spec.claims,
  };
  for (const c of spec.omit ?? []) delete claims[c];
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, ...spec.header } as never)
    .sign(key.privateKey);
}

export function b64(obj: unknown): string {
  return Buffer.from(JSON.stringify(obj)).toString("base64url");
}

export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/** A logger at debug level whose lines are kept. */
export function capturingLogger(): { logger: Logger; lines: string[] } {
  const { stream, lines } = captureLogs();
  return { logger: pino({ level: "debug" }, stream), lines };
}

export async function until(
  pred: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
