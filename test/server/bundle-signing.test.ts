/**
 * Signed bundles through the real sidecar (issue #11): `arbiter build --signing-key` (the real
 * command) signs the default policy pack; `startServer` verifies it with
 * ARBITER_BUNDLE_VERIFICATION_*; a real @grpc/grpc-js client calls Decide while each tampered
 * bundle is refused. Every refusal keeps the previous bundle, fails no request, shows its reason
 * on /readyz and counts it in arbiter_bundle_verification_failures_total. RS256, ES256 and HS256.
 */
import { spawn } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import { unpackBundle, writeBundle, type BundleManifest } from "../../src/compiler/index.ts";
import {
  loadBundleKey,
  signBundleFiles,
  type SignatureAlgorithm,
  type SignatureFailure,
} from "../../src/engine/bundle-signature.ts";
import { startServer, type RunningServer } from "../../src/server/serve.ts";
import { POLICIES, testConfig, unary } from "../transport/helpers.ts";

const BIN = join(import.meta.dirname, "..", "..", "bin", "arbiter.js");
const S = "/arbiter.v1.PolicyService";
const DECIDE = {
  tenantId: "acme",
  subject: { id: "alice", roles: ["viewer"] },
  action: "read",
  resource: { type: "document", id: "doc-1" },
};
const enc = new TextEncoder();

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Key files for `alg`: what `arbiter build` signs with and what the sidecar verifies with. */
function keyFiles(dir: string, alg: SignatureAlgorithm, name: string): { signing: string; verification: string } {
  const signing = join(dir, `${name}.key`);
  const verification = join(dir, `${name}.pub`);
  if (alg === "HS256") {
    const secret = randomBytes(32).toString("base64url"); // 43 bytes of text
    writeFileSync(signing, secret);
    writeFileSync(verification, secret);
  } else {
    const pair =
      alg === "ES256"
        ? generateKeyPairSync("ec", { namedCurve: "P-256" })
        : generateKeyPairSync("rsa", { modulusLength: 2048 });
    writeFileSync(signing, pair.privateKey.export({ type: "pkcs8", format: "pem" }) as string);
    writeFileSync(verification, pair.publicKey.export({ type: "spki", format: "pem" }) as string);
  }
  return { signing, verification };
}

type Files = Map<string, Uint8Array>;

async function writeTarGz(files: Files, path: string): Promise<void> {
  const manifest = JSON.parse(new TextDecoder().decode(files.get(".manifest"))) as BundleManifest;
  await writeBundle({ files: new Map([...files].map(([k, v]) => [`/${k}`, v])), manifest }, path);
}

interface Hammer {
  readonly ok: number;
  readonly failed: string[];
  readonly revisions: Set<string>;
  stop(): Promise<void>;
}

/** Three concurrent Decide loops over one real gRPC client until stopped. */
function hammer(client: grpc.Client): Hammer {
  let stopped = false;
  const state = { ok: 0, failed: [] as string[], revisions: new Set<string>() };
  const loop = async (): Promise<void> => {
    while (!stopped) {
      const r = await unary(client, `${S}/Decide`, pb.DecideRequestSchema, pb.DecideResponseSchema, DECIDE, {
        deadline: Date.now() + 10_000,
      });
      if (r.error) state.failed.push(`${r.error.code}: ${r.error.details}`);
      else if (!r.value!.allow) state.failed.push(`deny: ${r.value!.reasons.join(",")}`);
      else {
        state.ok++;
        state.revisions.add(r.value!.bundleRevision);
      }
    }
  };
  const loops = [loop(), loop(), loop()];
  return {
    get ok() {
      return state.ok;
    },
    failed: state.failed,
    revisions: state.revisions,
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

async function waitFor(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(["RS256", "ES256", "HS256"] as const)("signed bundles, %s", (alg) => {
  let dir: string;
  let server: RunningServer | undefined;
  let client: grpc.Client | undefined;
  let signed: Files;
  let bundlePath: string;
  let other: { signing: string; verification: string };
  let goodRevision: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `arbiter-signing-${alg}-`));
    const keys = keyFiles(dir, alg, "release");
    other = keyFiles(dir, alg, "attacker");
    const built = await run([
      "build",
      "-o",
      join(dir, "signed.tar.gz"),
      "--revision",
      `signed-${alg}`,
      "--signing-key",
      keys.signing,
      "--signing-alg",
      alg,
      "--signing-key-id",
      "release",
      POLICIES,
    ]);
    expect(built.stderr).toBe("");
    expect(built.code).toBe(0);
    signed = unpackBundle(readFileSync(join(dir, "signed.tar.gz")));
    bundlePath = join(dir, "bundle.tar.gz");
    copyFileSync(join(dir, "signed.tar.gz"), bundlePath);
    server = await startServer(
      testConfig({
        ARBITER_BUNDLE: bundlePath,
        ARBITER_BUNDLE_VERIFICATION_KEY: keys.verification,
        ARBITER_BUNDLE_VERIFICATION_ALG: alg,
        ARBITER_BUNDLE_VERIFICATION_KEY_ID: "release",
      }),
    );
    client = new grpc.Client(server.address, grpc.credentials.createInsecure());
  }, 120_000);

  afterAll(async () => {
    client?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("loads the bundle signed by `arbiter build --signing-key` and answers from it", async () => {
    const st = server!.engine.status();
    expect(st).toMatchObject({
      ready: true,
      revision: `signed-${alg}`,
      lastError: undefined,
      signatureVerification: true,
    });
    goodRevision = st.revision;
    const r = await unary(client!, `${S}/Decide`, pb.DecideRequestSchema, pb.DecideResponseSchema, DECIDE);
    expect(r.value).toMatchObject({ allow: true, bundleRevision: goodRevision });
  });

  const tampered: [string, SignatureFailure, () => Promise<Files>][] = [
    [
      "data.json edited",
      "digest_mismatch",
      async () => {
        const data = JSON.parse(new TextDecoder().decode(signed.get("data.json"))) as Record<string, unknown>;
        return new Map(signed).set("data.json", enc.encode(JSON.stringify({ ...data, injected: true })));
      },
    ],
    [
      "a file added",
      "file_not_signed",
      async () => new Map(signed).set("arbiter/backdoor.rego", enc.encode("package arbiter.backdoor\n")),
    ],
    [
      "a file removed",
      "file_missing",
      async () => {
        const copy = new Map(signed);
        copy.delete([...copy.keys()].find((k) => k.endsWith(".rego"))!);
        return copy;
      },
    ],
    [
      "a signature by another key",
      "bad_signature",
      async () => {
        const copy = new Map(signed);
        copy.delete(".signatures.json");
        const key = loadBundleKey(readFileSync(other.signing), alg, "private");
        return copy.set(".signatures.json", await signBundleFiles(copy, { key, algorithm: alg, keyId: "release" }));
      },
    ],
    [
      "no signature",
      "missing_signatures",
      async () => {
        const copy = new Map(signed);
        copy.delete(".signatures.json");
        return copy;
      },
    ],
  ];

  for (const [what, reason, make] of tampered) {
    it(`refuses the bundle with ${what} (${reason}), keeps the signed one, fails no request`, async () => {
      const failedBefore = server!.engine.status().reloads.failed;
      const load = hammer(client!);
      try {
        await waitFor(() => load.ok >= 5, 10_000, "calls before the swap attempt");
        await writeTarGz(await make(), bundlePath);
        await server!.engine.reload();
        await waitFor(() => server!.engine.status().reloads.failed > failedBefore, 15_000, "the refused load");
        const seen = load.ok;
        await waitFor(() => load.ok >= seen + 5, 10_000, "calls after the refusal");
      } finally {
        await load.stop();
      }
      expect(load.failed).toEqual([]);
      expect([...load.revisions]).toEqual([goodRevision]);
      const st = server!.engine.status();
      expect(st).toMatchObject({ ready: true, revision: goodRevision, lastErrorReason: `signature_${reason}` });
      expect(st.lastError).toMatch(/^bundle signature: /);

      const ready = await fetch(`http://${server!.adminAddress}/readyz`);
      expect(ready.status).toBe(200);
      const body = (await ready.json()) as { bundle: Record<string, unknown> };
      expect(body.bundle).toMatchObject({
        revision: goodRevision,
        lastErrorReason: `signature_${reason}`,
        signatureVerification: true,
      });
      expect(body.bundle).not.toHaveProperty("lastError");
      expect(JSON.stringify(body)).not.toContain(dir);

      const metrics = await (await fetch(`http://${server!.adminAddress}/metrics`)).text();
      const m = new RegExp(`^arbiter_bundle_verification_failures_total\\{reason="${reason}"\\} (\\d+)$`, "m").exec(
        metrics,
      );
      expect(Number(m?.[1])).toBeGreaterThanOrEqual(1);
    }, 60_000);
  }

  it("swaps in a changed bundle once it is signed by the configured key", async () => {
    const copy = new Map(signed);
    copy.delete(".signatures.json");
    const manifest = JSON.parse(new TextDecoder().decode(copy.get(".manifest"))) as Record<string, unknown>;
    copy.set(".manifest", enc.encode(JSON.stringify({ ...manifest, revision: `resigned-${alg}` })));
    const key = loadBundleKey(readFileSync(join(dir, "release.key")), alg, "private");
    copy.set(".signatures.json", await signBundleFiles(copy, { key, algorithm: alg, keyId: "release" }));
    await writeTarGz(copy, bundlePath);
    await server!.engine.reload();
    await waitFor(() => server!.engine.status().revision === `resigned-${alg}`, 15_000, "the re-signed bundle");
    expect(server!.engine.status()).toMatchObject({ ready: true, lastErrorReason: undefined });
    const r = await unary(client!, `${S}/Decide`, pb.DecideRequestSchema, pb.DecideResponseSchema, DECIDE);
    expect(r.value).toMatchObject({ allow: true, bundleRevision: `resigned-${alg}` });
  }, 30_000);
});
