/**
 * What a signed approval grant costs a Decide, in-process (no transport), as a ratio against a
 * Decide of the same tier-3 request without a token in the same run.
 *
 *   npx tsx bench/approval-grants.ts [--calls N] [--rounds R]
 *
 * The default pack is compiled through the engine host; the decision service has the in-memory
 * approval store and the grant verifier over a real JWKS file with an Ed25519, a P-256 and an
 * RSA-2048 key. A request carrying a token is never answered from the cache, so the baseline's
 * requests differ per call (resource id) and miss the cache too: every call evaluates the policy.
 * Cases:
 * - baseline: the tier-3 Decide without a token (denied, `approval_required`);
 * - a valid grant per call (EdDSA, ES256, RS256): verify + evaluate + redeem the `jti` (allowed);
 * - a forged grant (EdDSA signature of another key under the trusted kid): what an attacker's
 *   flood of forgeries costs (verify fails, evaluate, denied).
 * Grants are signed before timing (signing is the approver's cost, not the sidecar's). Prints the
 * median wall time per call over R rounds and its ratio to the baseline.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { SignJWT } from "jose";
import { pino } from "pino";
import { Registry } from "prom-client";
import { createApprovalStore } from "../src/decision/approval-store.ts";
import { decideApprovalDigest } from "../src/decision/canonical.ts";
import { createDecisionService } from "../src/decision/decision-service.ts";
import type { CallContext, DecideRequest } from "../src/decision/types.ts";
import { engineContract } from "../src/decision/contract.ts";
import { createEngineHost } from "../src/engine/index.ts";
import { createApprovalKeySet } from "../src/trust/approval-keys.ts";
import { createGrantVerifier } from "../src/trust/grant-verifier.ts";
import { makeKey, type TestKey } from "../test/trust/helpers.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const flag = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const CALLS = Number(flag("--calls") ?? 2000);
const ROUNDS = Number(flag("--rounds") ?? 5);

const logger = pino({ level: "silent" });
const engine = createEngineHost({
  source: path.join(root, "policies"),
  ...engineContract(),
  watch: false,
  logger,
  registry: new Registry(),
});
await engine.start();
if (!engine.active()) throw new Error(`default pack did not load: ${engine.status().lastError}`);

const [ed, ec, rsa, outsider] = await Promise.all([
  makeKey("EdDSA", "ed"),
  makeKey("ES256", "ec"),
  makeKey("RS256", "rsa"),
  makeKey("EdDSA", "x"),
]);
const dir = mkdtempSync(path.join(tmpdir(), "arbiter-bench-grants-"));
writeFileSync(path.join(dir, "jwks.json"), JSON.stringify({ keys: [ed.jwk, ec.jwk, rsa.jwk] }));
const keys = await createApprovalKeySet({ source: path.join(dir, "jwks.json"), refreshSeconds: 3600, logger });
// maxEntries above every grant redeemed in the run (rounds x calls x 3 algorithms).
const approvals = createApprovalStore({ maxEntries: Math.max(10_000, ROUNDS * CALLS * 4) });
const service = createDecisionService({
  engine,
  logger,
  registry: new Registry(),
  instanceId: "bench",
  // A request with a token never uses the cache; the baseline's requests differ per call (and the
  // cache keeps one entry), so it misses every time too: both sides evaluate the policy.
  cache: { maxEntries: 1, maxBytes: 1 << 20, ttlMs: 1 },
  approvals,
  grants: createGrantVerifier({ keys }),
});
const ctx = (): CallContext => ({ signal: new AbortController().signal, aborted: false, startedAt: performance.now() });

const request: DecideRequest = {
  tenantId: "acme",
  requestId: "bench",
  subject: { id: "agent-7", roles: ["engineer"], attributes: {} },
  action: "delete",
  resource: { type: "service", id: "checkout", tenantId: "", attributes: {} },
  context: {},
  approvalToken: "",
};
const digest = decideApprovalDigest(request);

async function grants(key: TestKey, n: number, signer: TestKey = key): Promise<string[]> {
  const now = Math.floor(Date.now() / 1000);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      await new SignJWT({
        jti: randomUUID(),
        sub: "carol",
        tenant_id: "acme",
        request_digest: digest,
        iat: now,
        exp: now + 3600,
      })
        .setProtectedHeader({ alg: key.alg, kid: key.kid })
        .sign(signer.privateKey),
    );
  }
  return out;
}

interface Case {
  readonly name: string;
  readonly tokens: (round: number) => Promise<string[]>;
  readonly expectAllow: boolean;
}
const cases: Case[] = [
  { name: "no token (baseline)", tokens: async () => new Array<string>(CALLS).fill(""), expectAllow: false },
  { name: "valid grant, EdDSA", tokens: () => grants(ed, CALLS), expectAllow: true },
  { name: "valid grant, ES256", tokens: () => grants(ec, CALLS), expectAllow: true },
  { name: "valid grant, RS256 (2048)", tokens: () => grants(rsa, CALLS), expectAllow: true },
  { name: "forged grant (EdDSA, wrong key)", tokens: () => grants(ed, CALLS, outsider), expectAllow: false },
];

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
// Rounds outside, cases inside: a change of machine load between cases hits all of them alike.
const perCase = cases.map(() => [] as number[]);
for (let r = 0; r < ROUNDS; r++) {
  for (let k = 0; k < cases.length; k++) {
    const c = cases[k]!;
    const tokens = await c.tokens(r);
    const t0 = performance.now();
    for (let i = 0; i < tokens.length; i++) {
      const token = tokens[i]!;
      const req =
        token === ""
          ? { ...request, resource: { ...request.resource, id: `checkout-${r}-${i}` } }
          : { ...request, approvalToken: token };
      const res = await service.decide(req, ctx());
      if (res.allow !== c.expectAllow)
        throw new Error(`${c.name}: expected allow=${c.expectAllow}, got ${JSON.stringify(res.reasons)}`);
    }
    perCase[k]!.push(((performance.now() - t0) * 1000) / tokens.length);
  }
}
const results = cases.map((c, k) => ({ name: c.name, us: median(perCase[k]!) }));

console.log(
  `node ${process.version}, ${CALLS} Decide calls x ${ROUNDS} rounds per case (median of rounds), every call evaluated; load ${loadavg()[0]!.toFixed(2)}`,
);
const base = results[0]!.us;
for (const r of results)
  console.log(
    `${r.name.padEnd(34)} ${r.us.toFixed(1).padStart(8)} us/call  ${(r.us / base).toFixed(2).padStart(5)}x baseline`,
  );
keys.close();
await engine.close();
