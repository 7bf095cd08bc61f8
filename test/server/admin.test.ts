/**
 * The admin listener's exposure (issue #11): `arbiter serve` refuses a non-loopback admin bind
 * without ARBITER_ADMIN_ALLOW_REMOTE=on (the real process), and /readyz and /v1/status show
 * filesystem paths, URLs and error texts only with ARBITER_ADMIN_VERBOSE=on (the real sidecar).
 */
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "../../src/server/serve.ts";
import { testConfig } from "../transport/helpers.ts";

const BIN = join(import.meta.dirname, "..", "..", "bin", "arbiter.js");

function serve(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("ARBITER_")));
    const child = spawn(process.execPath, [BIN, "serve"], {
      env: { ...clean, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe("arbiter serve and a non-loopback admin bind", () => {
  it("exits 2 naming ARBITER_ADMIN_ALLOW_REMOTE, before binding anything", async () => {
    const r = await serve({ ARBITER_ADMIN_LISTEN: "0.0.0.0:0", ARBITER_AUDIT: "off" });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'arbiter serve: ARBITER_ADMIN_LISTEN: refusing to expose the admin endpoints on non-loopback address "0.0.0.0" ' +
        "unless ARBITER_ADMIN_ALLOW_REMOTE=on (then restrict who reaches the port, e.g. with a NetworkPolicy); or bind 127.0.0.1 or a unix: socket\n",
    );
  }, 40_000);
});

describe("/readyz and /v1/status", () => {
  const dir = mkdtempSync(join(tmpdir(), "arbiter-admin-"));
  const servers: RunningServer[] = [];
  // A source directory whose Rego does not compile: the error text names the file's path.
  const policies = join(dir, "broken-policies");
  mkdirSync(policies, { recursive: true });
  writeFileSync(join(policies, "decide.rego"), "package arbiter.decide\n\nallow if {\n");
  afterAll(async () => {
    for (const s of servers) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(verbose: "on" | "off"): Promise<RunningServer> {
    const s = await startServer(testConfig({ ARBITER_BUNDLE: policies, ARBITER_ADMIN_VERBOSE: verbose }));
    servers.push(s);
    return s;
  }

  async function get(
    s: RunningServer,
    path: string,
  ): Promise<{ status: number; text: string; body: { bundle: Record<string, unknown> } }> {
    const r = await fetch(`http://${s.adminAddress}${path}`);
    const text = await r.text();
    return { status: r.status, text, body: JSON.parse(text) as { bundle: Record<string, unknown> } };
  }

  it("show reason codes but no paths or error texts by default", async () => {
    const s = await start("off");
    expect(s.engine.status().lastError).toContain(policies); // the log and the engine have it
    for (const path of ["/v1/status", "/readyz"]) {
      const r = await get(s, path);
      expect(r.status, path).toBe(path === "/readyz" ? 503 : 200);
      expect(r.text, path).not.toContain(dir);
      expect(r.text, path).not.toContain("decide.rego");
      expect(r.body.bundle, path).toMatchObject({
        ready: false,
        sourceKind: "local",
        lastErrorReason: "bundle_invalid",
        signatureVerification: false,
      });
      expect(r.body.bundle, path).not.toHaveProperty("source");
      expect(r.body.bundle, path).not.toHaveProperty("lastError");
    }
  });

  it("show the source path and the error text with ARBITER_ADMIN_VERBOSE=on", async () => {
    const s = await start("on");
    for (const path of ["/v1/status", "/readyz"]) {
      const r = await get(s, path);
      expect(r.body.bundle, path).toMatchObject({ ready: false, source: policies, lastErrorReason: "bundle_invalid" });
      expect(r.body.bundle.lastError, path).toMatch(/decide\.rego/);
    }
  });
});
