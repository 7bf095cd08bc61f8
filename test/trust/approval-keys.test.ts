/**
 * The approver key set: real files replaced the ways operators and the kubelet replace them, a
 * real fs.watch, a real loopback HTTP server for JWKS URLs; start-up errors with exact messages.
 */
import { afterEach, describe, expect, it } from "vitest";
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Registry } from "prom-client";
import {
  ApprovalKeysError,
  createApprovalKeySet,
  MAX_KEYS_BYTES,
  type ApprovalKeySet,
} from "../../src/trust/approval-keys.ts";
import { createGrantVerifier } from "../../src/trust/grant-verifier.ts";
import { capturingLogger, DIGEST, makeKey, signGrant, silentLogger, tempDir, until, writeJwks } from "./helpers.ts";

const expected = () => ({ tenantId: "acme", digest: DIGEST, nowMs: Date.now() });
const open: ApprovalKeySet[] = [];
const servers: Server[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) s.close();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

async function load(
  source: string,
  extra: {
    registry?: Registry;
    refreshSeconds?: number;
    fetchTimeoutMs?: number;
    logger?: ReturnType<typeof silentLogger>;
  } = {},
) {
  const set = await createApprovalKeySet({
    source,
    refreshSeconds: extra.refreshSeconds ?? 3600,
    logger: extra.logger ?? silentLogger(),
    ...extra,
  });
  open.push(set);
  return set;
}

async function startError(source: string): Promise<string> {
  try {
    open.push(await createApprovalKeySet({ source, refreshSeconds: 3600, logger: silentLogger() }));
  } catch (err) {
    expect(err).toBeInstanceOf(ApprovalKeysError);
    return (err as Error).message;
  }
  throw new Error("expected start-up to fail");
}

describe("sources", () => {
  it("a PEM public key: named by its JWK thumbprint, the kid arbiter approve puts in by default", async () => {
    const key = await makeKey("ES256");
    const dir = tempDir();
    writeFileSync(join(dir, "approver.pem"), key.publicKey.export({ format: "pem", type: "spki" }));
    const set = await load(join(dir, "approver.pem"));
    expect(set.kids()).toEqual([key.kid]);
    expect(set.find(key.kid)?.alg).toBe("ES256");
    expect(set.find(undefined)?.kid).toBe(key.kid);
    const v = createGrantVerifier({ keys: set });
    expect((await v.verify(await signGrant(key), expected())).valid).toBe(true);
  });

  it("a JWKS with Ed25519, P-256 and RSA keys; extra members (x5c, key_ops) are ignored", async () => {
    const [a, b, c] = await Promise.all([makeKey("EdDSA", "a"), makeKey("ES256", "b"), makeKey("RS256", "c")]);
    const dir = tempDir();
    writeJwks(join(dir, "jwks.json"), [a.jwk, { ...b.jwk, key_ops: ["verify"] }, { ...c.jwk, x5c: [] }]);
    const set = await load(join(dir, "jwks.json"));
    expect(set.kids()).toEqual(["a", "b", "c"]);
    expect(set.find(undefined)).toBeUndefined(); // several keys: a grant must name one
  });
});

describe("start-up errors name the variable and say what is wrong", () => {
  const dir = tempDir();
  const file = (name: string, text: string): string => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };

  it("unreadable, not a key, an empty or oversized JWKS", async () => {
    expect(await startError(join(dir, "missing.json"))).toBe(
      `ARBITER_APPROVAL_KEYS: "${join(dir, "missing.json")}" cannot be read (ENOENT)`,
    );
    expect(await startError(file("junk.txt", "hello"))).toBe(
      `ARBITER_APPROVAL_KEYS: "${join(dir, "junk.txt")}" is neither a JWKS (JSON {"keys": [...]}) nor a PEM public key`,
    );
    expect(await startError(file("obj.json", '{"kty":"OKP"}'))).toBe(
      `ARBITER_APPROVAL_KEYS: "${join(dir, "obj.json")}" is JSON but not a JWKS: expected {"keys": [...]}`,
    );
    expect(await startError(file("empty.json", '{"keys":[]}'))).toBe(
      `ARBITER_APPROVAL_KEYS: "${join(dir, "empty.json")}" is a JWKS without keys`,
    );
    expect(await startError(file("big.json", " ".repeat(MAX_KEYS_BYTES + 1)))).toBe(
      `ARBITER_APPROVAL_KEYS: "${join(dir, "big.json")}" is larger than ${MAX_KEYS_BYTES} bytes`,
    );
  });

  it("symmetric keys, private keys, weak RSA, unsupported curves, duplicate kids, alg and use mismatches", async () => {
    const ed = await makeKey("EdDSA", "ed");
    const p = (name: string, keys: unknown[]): string => file(name, JSON.stringify({ keys }));
    expect(await startError(p("oct.json", [{ kty: "oct", k: "c2VjcmV0", kid: "h" }]))).toBe(
      `ARBITER_APPROVAL_KEYS: "${join(dir, "oct.json")}" key 0 (kid "h") is a symmetric (oct) key; only public keys (Ed25519, P-256, RSA) are accepted`,
    );
    const priv = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
    expect(await startError(p("priv.json", [{ ...priv, kid: "p" }]))).toBe(
      `ARBITER_APPROVAL_KEYS: "${join(dir, "priv.json")}" key 0 (kid "p") holds private key material; publish only the public key`,
    );
    const pem = generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }) as string;
    expect(await startError(file("priv.pem", pem))).toBe(
      `ARBITER_APPROVAL_KEYS: "${join(dir, "priv.pem")}" holds a private key; give the sidecar only the public key (arbiter keygen writes both)`,
    );
    const weak = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ format: "jwk" });
    expect(await startError(p("weak.json", [{ ...weak, kid: "w" }]))).toBe(
      `ARBITER_APPROVAL_KEYS: "${join(dir, "weak.json")}" key 0 (kid "w"): RSA key of 1024 bits; at least 2048 are required`,
    );
    const p384 = generateKeyPairSync("ec", { namedCurve: "secp384r1" }).publicKey.export({ format: "jwk" });
    expect(await startError(p("p384.json", [p384]))).toBe(
      `ARBITER_APPROVAL_KEYS: "${join(dir, "p384.json")}" key 0: unsupported key (kty EC, crv P-384); expected Ed25519, P-256 or RSA`,
    );
    expect(await startError(p("dup.json", [ed.jwk, ed.jwk]))).toBe(
      `ARBITER_APPROVAL_KEYS: "${join(dir, "dup.json")}" kid "ed" appears twice`,
    );
    expect(await startError(p("alg.json", [{ ...ed.jwk, alg: "HS256" }]))).toBe(
      `ARBITER_APPROVAL_KEYS: "${join(dir, "alg.json")}" key 0 (kid "ed"): "alg" "HS256" does not fit the key; expected "EdDSA"`,
    );
    expect(await startError(p("use.json", [{ ...ed.jwk, use: "enc" }]))).toBe(
      `ARBITER_APPROVAL_KEYS: "${join(dir, "use.json")}" key 0 (kid "ed"): "use" must be "sig", got "enc"`,
    );
  });
});

describe("hot reload of a key file", () => {
  it("replacing the JWKS (atomic rename) makes new keys valid and removed keys invalid, without a restart", async () => {
    const [oldKey, newKey] = await Promise.all([makeKey("EdDSA", "2026-01"), makeKey("EdDSA", "2026-02")]);
    const dir = tempDir();
    const path = join(dir, "jwks.json");
    writeJwks(path, [oldKey.jwk]);
    const registry = new Registry();
    const set = await load(path, { registry });
    const v = createGrantVerifier({ keys: set });
    const reason = async (t: string): Promise<string> => {
      const r = await v.verify(t, expected());
      return r.valid ? "valid" : r.reason;
    };
    const oldGrant = await signGrant(oldKey);
    const newGrant = await signGrant(newKey);
    expect(await reason(oldGrant)).toBe("valid");
    expect(await reason(newGrant)).toBe("approval_unknown_key");

    // Rotation step 1: both keys published.
    writeJwks(path, [oldKey.jwk, newKey.jwk]);
    await until(async () => (await reason(newGrant)) === "valid", 10_000, "new key valid");
    expect(await reason(oldGrant)).toBe("valid");
    // Step 2: the old key retired.
    writeJwks(path, [newKey.jwk]);
    await until(async () => (await reason(oldGrant)) === "approval_unknown_key", 10_000, "old key removed");
    expect(await reason(newGrant)).toBe("valid");
    expect(await registry.getSingleMetricAsString("arbiter_approval_keys")).toMatch(/arbiter_approval_keys 1$/m);
  });

  it("an in-place rewrite is picked up too", async () => {
    const [a, b] = await Promise.all([makeKey("ES256", "a"), makeKey("ES256", "b")]);
    const dir = tempDir();
    const path = join(dir, "jwks.json");
    writeFileSync(path, JSON.stringify({ keys: [a.jwk] }));
    const set = await load(path);
    writeFileSync(path, JSON.stringify({ keys: [b.jwk] }));
    await until(() => set.kids().join() === "b", 10_000, "rewrite picked up");
  });

  it("a bad file on reload keeps the last good set, logs and counts the failure; a good one later is taken", async () => {
    const [a, b] = await Promise.all([makeKey("EdDSA", "a"), makeKey("EdDSA", "b")]);
    const dir = tempDir();
    const path = join(dir, "jwks.json");
    writeJwks(path, [a.jwk]);
    const registry = new Registry();
    const { logger, lines } = capturingLogger();
    const set = await load(path, { registry, logger });
    const v = createGrantVerifier({ keys: set });
    const grant = await signGrant(a);

    writeFileSync(join(dir, "bad.tmp"), '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}');
    renameSync(join(dir, "bad.tmp"), path);
    await until(() => lines.some((l) => l.includes("reload failed")), 10_000, "reload failure logged");
    const logged = JSON.parse(lines.find((l) => l.includes("reload failed"))!) as Record<string, unknown>;
    expect(logged).toMatchObject({
      level: 50,
      component: "approval-keys",
      kids: ["a"],
      msg: "approval keys: reload failed; keeping the last good set",
    });
    expect(String(logged.err)).toContain("symmetric (oct) key");
    expect(set.kids()).toEqual(["a"]);
    expect((await v.verify(grant, expected())).valid).toBe(true);
    expect(await registry.getSingleMetricAsString("arbiter_approval_keys_reloads_total")).toMatch(
      /result="failed"\} [1-9]/,
    );

    rmSync(path); // a deleted file is a failed reload too: the last good set stays
    await set.reload();
    expect(set.kids()).toEqual(["a"]);

    writeJwks(path, [b.jwk]);
    await until(() => set.kids().join() === "b", 10_000, "good file after a bad one");
  });

  it("a Kubernetes ConfigMap update (..data symlink swapped) is picked up", async () => {
    const [a, b] = await Promise.all([makeKey("EdDSA", "a"), makeKey("EdDSA", "b")]);
    const dir = tempDir();
    const publish = (stamp: string, keys: unknown[]): void => {
      mkdirSync(join(dir, `..${stamp}`));
      writeFileSync(join(dir, `..${stamp}`, "jwks.json"), JSON.stringify({ keys }));
      const previous = readdirSync(dir).filter((n) => n.startsWith("..") && n !== "..data" && n !== `..${stamp}`);
      symlinkSync(`..${stamp}`, join(dir, "..data_tmp"));
      renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
      try {
        symlinkSync(join("..data", "jwks.json"), join(dir, "jwks.json"));
      } catch {
        // exists from the first payload
      }
      for (const p of previous) rmSync(join(dir, p), { recursive: true, force: true });
    };
    publish("2026_12_04_01", [a.jwk]);
    const set = await load(join(dir, "jwks.json"));
    expect(set.kids()).toEqual(["a"]);
    publish("2026_12_04_02", [b.jwk]);
    await until(() => set.kids().join() === "b", 10_000, "ConfigMap swap picked up");
  });

  /**
   * A key path that is a symlink to a file in another directory: the watcher on the link's
   * directory sees no event when the target changes (the case of a missed watch event).
   */
  function linkedKeyFile(keys: unknown[]): { path: string; target: string } {
    const dir = tempDir();
    mkdirSync(join(dir, "watched"));
    mkdirSync(join(dir, "elsewhere"));
    const target = join(dir, "elsewhere", "jwks.json");
    writeFileSync(target, JSON.stringify({ keys }));
    symlinkSync(target, join(dir, "watched", "jwks.json"));
    return { path: join(dir, "watched", "jwks.json"), target };
  }

  it("a grant naming an unknown kid makes the file be re-read early when no watch event came", async () => {
    const [a, b] = await Promise.all([makeKey("EdDSA", "a"), makeKey("EdDSA", "b")]);
    const { path, target } = linkedKeyFile([a.jwk]);
    const set = await load(path, { refreshSeconds: 3600 });
    const v = createGrantVerifier({ keys: set });
    writeFileSync(target, JSON.stringify({ keys: [a.jwk, b.jwk] }));
    await new Promise((r) => setTimeout(r, 500));
    expect(set.kids()).toEqual(["a"]); // no event reached the watcher, the refresh is an hour away
    const grant = await signGrant(b);
    expect(await v.verify(grant, expected())).toEqual({ valid: false, reason: "approval_unknown_key" });
    await until(async () => (await v.verify(grant, expected())).valid, 5_000, "early re-read");
  });

  it("the refresh interval re-reads the file when no watch event comes (close stops it)", async () => {
    const [a, b] = await Promise.all([makeKey("EdDSA", "a"), makeKey("EdDSA", "b")]);
    const { path, target } = linkedKeyFile([a.jwk]);
    const set = await load(path, { refreshSeconds: 1 });
    writeFileSync(target, JSON.stringify({ keys: [b.jwk] }));
    await until(() => set.kids().join() === "b", 10_000, "picked up by the refresh timer");
    set.close();
    writeFileSync(target, JSON.stringify({ keys: [a.jwk] }));
    await new Promise((r) => setTimeout(r, 1500));
    expect(set.kids()).toEqual(["b"]);
  });
});

describe("a JWKS URL", () => {
  async function jwksServer(): Promise<{
    url: string;
    set(body: string, etag?: string): void;
    hits: () => number;
    delayMs: number;
  }> {
    let body = "{}";
    let etag: string | undefined;
    let hits = 0;
    const state = { delayMs: 0 };
    const server = createServer((req, res) => {
      hits++;
      setTimeout(() => {
        if (etag !== undefined && req.headers["if-none-match"] === etag) {
          res.writeHead(304).end();
          return;
        }
        res.writeHead(200, { "content-type": "application/json", ...(etag ? { etag } : {}) }).end(body);
      }, state.delayMs);
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as AddressInfo;
    return Object.assign(state, {
      url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
      set(b: string, e?: string) {
        body = b;
        etag = e;
      },
      hits: () => hits,
    });
  }

  it("fetches the set, re-fetches early when a grant names an unknown kid, and keeps it on 304", async () => {
    const [a, b] = await Promise.all([makeKey("EdDSA", "a"), makeKey("RS256", "b")]);
    const srv = await jwksServer();
    srv.set(JSON.stringify({ keys: [a.jwk] }), '"v1"');
    const set = await load(srv.url);
    expect(set.kids()).toEqual(["a"]);
    const v = createGrantVerifier({ keys: set });
    srv.set(JSON.stringify({ keys: [a.jwk, b.jwk] }), '"v2"');
    const grant = await signGrant(b);
    expect(await v.verify(grant, expected())).toEqual({ valid: false, reason: "approval_unknown_key" });
    await until(async () => (await v.verify(grant, expected())).valid, 10_000, "early re-fetch");
    const hits = srv.hits();
    await set.reload(); // ETag "v2" -> 304: nothing changes
    expect(srv.hits()).toBe(hits + 1);
    expect(set.kids()).toEqual(["a", "b"]);
  });

  it("an unreachable, oversized, slow or invalid JWKS at start: start-up goes on with no keys, logged", async () => {
    const srv = await jwksServer();
    srv.set(JSON.stringify({ keys: [{ kty: "RSA", n: "x".repeat(MAX_KEYS_BYTES), e: "AQAB" }] }));
    const { logger, lines } = capturingLogger();
    const set = await load(srv.url, { logger });
    expect(set.size).toBe(0);
    expect(lines.join("\n")).toContain(`body is larger than ${MAX_KEYS_BYTES} bytes`);

    srv.set('{"keys":[]}');
    srv.delayMs = 2000;
    const slow = await load(srv.url, { logger, fetchTimeoutMs: 200 });
    expect(slow.size).toBe(0);
    expect(lines.join("\n")).toContain("timed out after 200 ms");

    const down = await load("http://127.0.0.1:9/jwks.json", { logger });
    expect(down.size).toBe(0);
    const v = createGrantVerifier({ keys: down });
    expect(await v.verify(await signGrant(await makeKey("EdDSA")), expected())).toEqual({
      valid: false,
      reason: "approval_unknown_key",
    });
  });

  it("a failed re-fetch keeps the last good set", async () => {
    const a = await makeKey("ES256", "a");
    const srv = await jwksServer();
    srv.set(JSON.stringify({ keys: [a.jwk] }));
    const set = await load(srv.url);
    srv.set("<html>maintenance</html>");
    await set.reload();
    expect(set.kids()).toEqual(["a"]);
  });

  it("refuses plain http to a non-loopback host", async () => {
    expect(await startError("http://approvals.example.com/jwks.json")).toBe(
      'ARBITER_APPROVAL_KEYS: a JWKS URL must use https:// (http:// only for a loopback host), got "http://approvals.example.com/jwks.json"',
    );
  });
});
