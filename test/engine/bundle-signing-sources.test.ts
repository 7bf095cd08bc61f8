/**
 * Signature verification for every bundle source the engine reads (issue #11): a bundle
 * directory, a Kubernetes ConfigMap mount (`..data` generations), an HTTP URL and a directory of
 * Rego sources compiled in-process. ES256; real files, a real HTTP server on port 0.
 */
import { generateKeyPairSync } from "node:crypto";
import { createServer, type Server } from "node:http";
import { mkdir, rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { unpackBundle, writeBundle, type BundleManifest } from "../../src/compiler/index.ts";
import { readDirectoryFiles } from "../../src/engine/bundle-files.ts";
import { SIGNATURES_FILE, signBundleFiles, type BundleVerificationOptions } from "../../src/engine/bundle-signature.ts";
import { engineContract } from "../../src/decision/contract.ts";
import { createEngineHost, type EngineHost } from "../../src/engine/index.ts";
import { POLICY_SOURCES, bundleTarGz, dataFor, tempDir, writeBundleDir, writeConfigMapGeneration } from "./fixtures.ts";

const logger = pino({ level: "silent" });
const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const verification: BundleVerificationOptions = { key: publicKey, algorithm: "ES256" };
const signing = { key: privateKey, algorithm: "ES256" as const };
const hosts: EngineHost[] = [];
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close();
  for (const c of cleanups.splice(0)) await c();
});

function host(source: string): EngineHost {
  const engine = createEngineHost({
    source,
    ...engineContract(),
    logger,
    registry: new Registry(),
    watch: false,
    verification,
  });
  hosts.push(engine);
  return engine;
}

async function dir(prefix: string): Promise<string> {
  const d = await tempDir(prefix);
  cleanups.push(() => rm(d, { recursive: true, force: true }));
  return d;
}

/** Signs every file of `d` into `d/.signatures.json`, as `arbiter build --signing-key` would. */
async function signDir(d: string): Promise<void> {
  const files = await readDirectoryFiles(d);
  files.delete(SIGNATURES_FILE);
  await writeFile(join(d, SIGNATURES_FILE), await signBundleFiles(files, signing));
}

async function signedTarGz(
  spec: Parameters<typeof bundleTarGz>[0],
  edit?: (files: Map<string, Uint8Array>) => void,
): Promise<Buffer> {
  const files = unpackBundle(await bundleTarGz(spec));
  files.set(SIGNATURES_FILE, await signBundleFiles(files, signing));
  edit?.(files);
  const manifest = JSON.parse(new TextDecoder().decode(files.get(".manifest"))) as BundleManifest;
  const d = await dir("signed-tar");
  const out = join(d, "b.tar.gz");
  await writeBundle({ files: new Map([...files].map(([k, v]) => [`/${k}`, v])), manifest }, out);
  const { readFile } = await import("node:fs/promises");
  return readFile(out);
}

describe("bundle signature verification per source", () => {
  it("a bundle directory: unsigned refused, signed loads, edited in place refused", async () => {
    const d = await dir("sig-dir");
    await writeBundleDir(d, { revision: "dir-1" });
    const engine = host(d);
    await engine.start();
    expect(engine.status()).toMatchObject({
      ready: false,
      lastErrorReason: "signature_missing_signatures",
      signatureVerification: true,
    });

    await signDir(d);
    await engine.reload();
    expect(engine.status()).toMatchObject({ ready: true, revision: "dir-1", lastErrorReason: undefined });

    await writeFile(join(d, "data.json"), JSON.stringify(dataFor("tampered")));
    await engine.reload();
    expect(engine.status()).toMatchObject({
      ready: true,
      revision: "dir-1",
      lastErrorReason: "signature_digest_mismatch",
    });
    expect(engine.status().lastError).toMatch(/^bundle signature: data\.json: digest mismatch/);
  });

  it("a ConfigMap mount: each ..data generation is verified as a whole", async () => {
    const d = await dir("sig-cm");
    await writeConfigMapGeneration(d, "g1", { revision: "cm-1" });
    await signDir(join(d, "..g1"));
    const engine = host(d);
    await engine.start();
    expect(engine.status()).toMatchObject({ ready: true, revision: "cm-1" });

    await writeConfigMapGeneration(d, "g2", { revision: "cm-2" }); // not signed
    await engine.reload();
    expect(engine.status()).toMatchObject({ revision: "cm-1", lastErrorReason: "signature_missing_signatures" });

    await writeConfigMapGeneration(d, "g3", { revision: "cm-3" });
    await signDir(join(d, "..g3"));
    await engine.reload();
    expect(engine.status()).toMatchObject({ revision: "cm-3", lastErrorReason: undefined });
  });

  it("an HTTP URL: the signed archive loads, a tampered one is refused", async () => {
    let body = await signedTarGz({ revision: "http-1" });
    const server: Server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/gzip" });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise((r) => server.close(() => r())));
    const engine = host(`http://127.0.0.1:${(server.address() as AddressInfo).port}/bundle.tar.gz`);
    await engine.start();
    expect(engine.status()).toMatchObject({ ready: true, revision: "http-1" });

    body = await signedTarGz({ revision: "http-2" }, (files) =>
      files.set("data.json", new TextEncoder().encode(JSON.stringify(dataFor("evil")))),
    );
    await engine.reload();
    expect(engine.status()).toMatchObject({ revision: "http-1", lastErrorReason: "signature_digest_mismatch" });
  });

  it("a directory of Rego sources: compiled only when signed, from the bytes that were verified", async () => {
    const d = await dir("sig-rego");
    for (const [name, text] of Object.entries(POLICY_SOURCES)) await writeFile(join(d, name), text);
    await mkdir(join(d, "test"), { recursive: true });
    await writeFile(join(d, "test", "data.json"), JSON.stringify({ marker: "src-1", quota: 3 }));
    const engine = host(d);
    await engine.start();
    expect(engine.status()).toMatchObject({ ready: false, lastErrorReason: "signature_missing_signatures" });

    await signDir(d);
    await engine.reload();
    expect(engine.status()).toMatchObject({ ready: true, lastErrorReason: undefined });
    const decide = engine.active()!.evaluate("arbiter/decide", {
      action: "read",
      subject: { roles: [] },
      approval: { valid: false, reason: "" },
      context: {},
    }) as { result: { reasons: string[] } }[];
    expect(decide[0]!.result.reasons).toContain("rev_src-1");

    const revision = engine.status().revision;
    await writeFile(join(d, "decide.rego"), `${POLICY_SOURCES["decide.rego"]}\nallow if true\n`);
    await engine.reload();
    expect(engine.status()).toMatchObject({ revision, lastErrorReason: "signature_digest_mismatch" });
    expect(engine.status().lastError).toMatch(/^bundle signature: decide\.rego: digest mismatch/);
  });
});
