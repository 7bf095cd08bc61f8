/**
 * The sidecar as the deployment runs it: policy RPCs on a Unix socket, the plaintext health-only
 * listener (ARBITER_HEALTH_LISTEN) the kubelet's gRPC probe dials, the container probe script
 * deploy/healthcheck.mjs, the bundle from a directory laid out like a mounted ConfigMap and
 * updated the way the kubelet updates it (a new `..<timestamp>` directory, then an atomic rename of
 * the `..data` symlink), and the build-context copy of .ci/docker-steps.sh (deploy/context.mjs).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import grpc from "@grpc/grpc-js";
import { create, toBinary } from "@bufbuild/protobuf";
import { DecideRequestSchema } from "../../gen/arbiter/v1/arbiter_pb.ts";
import { freePort } from "../../bench/gate/sidecar.ts";
import { listFiles } from "./helm-lite.ts";
import { loadConfig } from "../../src/config/config.ts";
import { x as untar } from "tar";

const repo = resolve(import.meta.dirname, "../..");
const probeScript = join(repo, "deploy/healthcheck.mjs");

/**
 * Writes `files` as a new ConfigMap payload the way the kubelet's atomic writer does: a fresh
 * `..<stamp>` directory, a `..data_tmp` symlink to it renamed over `..data`, per-key symlinks
 * `<key> -> ..data/<key>`, and the previous payload directory removed.
 */
function publishConfigMap(dir: string, stamp: string, files: Record<string, Buffer>): void {
  const payload = join(dir, `..${stamp}`);
  mkdirSync(payload);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(payload, name), content);
  const previous = existsSync(join(dir, "..data"))
    ? readdirSync(dir).filter((n) => n.startsWith("..") && n !== "..data" && n !== `..${stamp}`)
    : [];
  symlinkSync(`..${stamp}`, join(dir, "..data_tmp"));
  renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
  for (const name of Object.keys(files)) {
    if (!existsSync(join(dir, name))) symlinkSync(join("..data", name), join(dir, name));
  }
  for (const p of previous) rmSync(join(dir, p), { recursive: true, force: true });
}

function probe(args: string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const base = { ...process.env };
  for (const k of Object.keys(base)) if (k.startsWith("ARBITER_")) delete base[k];
  const r = spawnSync(process.execPath, [probeScript, ...args], {
    env: { ...base, ...env },
    encoding: "utf8",
    timeout: 20_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("sidecar with a Unix socket and a health-only listener", () => {
  let dir: string;
  let socket: string;
  let healthPort: number;
  let child: ChildProcess;
  let exit: Promise<number | null>;
  let adminPort: number;
  let bundleFiles: Record<string, Buffer>;
  const bundleDir = () => join(dir, "bundle");

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "arbiter-ship-"));
    socket = join(dir, "arbiter.sock");
    healthPort = await freePort();
    adminPort = await freePort();
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith("ARBITER_")) delete env[k];
    // The bundle as deploy/README.md tells users to put it in a ConfigMap: `arbiter build`, unpack,
    // every regular file at the top (what `kubectl create configmap --from-file=dir/` takes).
    const built = spawnSync(
      process.execPath,
      [join(repo, "bin/arbiter.js"), "build", "-o", join(dir, "bundle.tar.gz"), "policies"],
      {
        cwd: repo,
        env,
        encoding: "utf8",
        timeout: 100_000,
      },
    );
    if (built.status !== 0) throw new Error(`arbiter build failed: ${built.stderr}`);
    mkdirSync(join(dir, "unpacked"));
    await untar({ file: join(dir, "bundle.tar.gz"), cwd: join(dir, "unpacked") });
    bundleFiles = {};
    for (const e of readdirSync(join(dir, "unpacked"), { withFileTypes: true })) {
      if (e.isFile()) bundleFiles[e.name] = readFileSync(join(dir, "unpacked", e.name));
    }
    mkdirSync(bundleDir());
    publishConfigMap(bundleDir(), "2026_11_22_00_00_00.1", bundleFiles);
    child = spawn(process.execPath, [join(repo, "bin/arbiter.js"), "serve"], {
      cwd: repo,
      env: {
        ...env,
        ARBITER_GRPC_LISTEN: `unix:${socket}`,
        ARBITER_HEALTH_LISTEN: `0.0.0.0:${healthPort}`,
        ARBITER_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
        ARBITER_BUNDLE: bundleDir(),
        ARBITER_DATA_DIR: join(dir, "data"),
        ARBITER_AUDIT: "off",
        ARBITER_LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    exit = new Promise((r) => child.once("exit", (code) => r(code)));
    const deadline = Date.now() + 110_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`sidecar exited ${child.exitCode}: ${stderr}`);
      const ok = await fetch(`http://127.0.0.1:${adminPort}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`sidecar not ready: ${stderr}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }, 220_000);

  afterAll(async () => {
    if (child.exitCode === null) child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("the probe reports SERVING on the health listener", () => {
    const r = probe(["--target", `127.0.0.1:${healthPort}`, "--service", "arbiter.v1.PolicyService"]);
    expect(r).toEqual({
      code: 0,
      stdout: `healthcheck: 127.0.0.1:${healthPort} service="arbiter.v1.PolicyService" SERVING\n`,
      stderr: "",
    });
  });

  it("the probe derives its target from ARBITER_HEALTH_LISTEN, dialling a wildcard bind on loopback", () => {
    const r = probe([], { ARBITER_HEALTH_LISTEN: `0.0.0.0:${healthPort}`, ARBITER_GRPC_LISTEN: "127.0.0.1:1" });
    expect(r.stdout).toBe(`healthcheck: 127.0.0.1:${healthPort} service="" SERVING\n`);
    expect(r.code).toBe(0);
  });

  it("the probe works over the Unix socket too", () => {
    const r = probe(["--service", "arbiter.v1.PolicyService"], { ARBITER_GRPC_LISTEN: `unix:${socket}` });
    expect(r.stdout).toBe(`healthcheck: unix:${socket} service="arbiter.v1.PolicyService" SERVING\n`);
    expect(r.code).toBe(0);
  });

  it("the probe fails for an unknown service, a dead target and a bad flag", () => {
    const unknown = probe(["--target", `127.0.0.1:${healthPort}`, "--service", "no.such.Service"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe(
      `healthcheck: 127.0.0.1:${healthPort} service="no.such.Service" NOT_FOUND: unknown service "no.such.Service"\n`,
    );
    const dead = probe(["--target", "unix:/nonexistent/arbiter.sock", "--timeout-ms", "500"]);
    expect(dead.code).toBe(1);
    expect(dead.stderr).toMatch(
      /^healthcheck: unix:\/nonexistent\/arbiter\.sock service="" (UNAVAILABLE|DEADLINE_EXCEEDED): /,
    );
    expect(probe(["--nope", "x"])).toEqual({ code: 2, stdout: "", stderr: 'healthcheck: unknown option "--nope"\n' });
    expect(probe(["--timeout-ms", "soon"]).stderr).toBe(
      'healthcheck: --timeout-ms must be a positive integer, got "soon"\n',
    );
    expect(probe([], { ARBITER_GRPC_LISTEN: "nonsense" }).stderr).toBe(
      'healthcheck: cannot derive a probe target from "nonsense" (expected host:port or unix:/path)\n',
    );
  });

  it("the health listener does not serve the policy RPCs", async () => {
    const client = new grpc.Client(`127.0.0.1:${healthPort}`, grpc.credentials.createInsecure());
    const req = create(DecideRequestSchema, {
      tenantId: "acme",
      action: "read",
      subject: { id: "u1", roles: ["viewer"] },
      resource: { type: "document", id: "d1" },
    });
    const err = await new Promise<grpc.ServiceError | null>((r) =>
      client.makeUnaryRequest(
        "/arbiter.v1.PolicyService/Decide",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(toBinary(DecideRequestSchema, req)),
        new grpc.Metadata(),
        { deadline: Date.now() + 5000 },
        (e) => r(e),
      ),
    );
    client.close();
    expect(err?.code).toBe(grpc.status.UNIMPLEMENTED);
  });

  async function status(): Promise<{ revision: string; reloads: { ok: number; failed: number } }> {
    const body = (await (await fetch(`http://127.0.0.1:${adminPort}/v1/status`)).json()) as {
      bundle: { revision: string; reloads: { ok: number; failed: number } };
    };
    return body.bundle;
  }

  async function waitFor(
    pred: (s: Awaited<ReturnType<typeof status>>) => boolean,
  ): Promise<Awaited<ReturnType<typeof status>>> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const s = await status();
      if (pred(s)) return s;
      if (Date.now() > deadline) return s;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  it("serves the bundle from the ConfigMap layout and reloads it when ..data is swapped", async () => {
    const manifest = JSON.parse(bundleFiles[".manifest"]!.toString()) as { revision: string };
    expect(Object.keys(bundleFiles)).toEqual(expect.arrayContaining([".manifest", "data.json", "policy.wasm"]));
    expect((await status()).revision).toBe(manifest.revision);
    publishConfigMap(bundleDir(), "2026_11_22_00_01_00.2", {
      ...bundleFiles,
      ".manifest": Buffer.from(JSON.stringify({ ...manifest, revision: "configmap-update-2" })),
    });
    const after = await waitFor((s) => s.revision === "configmap-update-2");
    expect(after.revision).toBe("configmap-update-2");
    expect(existsSync(join(bundleDir(), "..2026_11_22_00_00_00.1"))).toBe(false);
  });

  it("keeps the active bundle when the ConfigMap receives a broken one", async () => {
    const before = await status();
    const manifest = JSON.parse(bundleFiles[".manifest"]!.toString()) as { revision: string };
    publishConfigMap(bundleDir(), "2026_11_22_00_02_00.3", {
      ...bundleFiles,
      ".manifest": Buffer.from(JSON.stringify({ ...manifest, revision: "broken-3" })),
      "policy.wasm": Buffer.from("not wasm"),
    });
    const after = await waitFor((s) => s.reloads.failed > before.reloads.failed);
    expect(after.reloads.failed).toBe(before.reloads.failed + 1);
    expect(after.revision).toBe("configmap-update-2");
    const r = probe(["--target", `127.0.0.1:${healthPort}`, "--service", "arbiter.v1.PolicyService"]);
    expect(r.code).toBe(0);
  });

  it("stops on SIGTERM with status 0 and removes its socket", async () => {
    expect(existsSync(socket)).toBe(true);
    child.kill("SIGTERM");
    expect(await exit).toBe(0);
    expect(existsSync(socket)).toBe(false);
    const after = probe(["--target", `127.0.0.1:${healthPort}`, "--timeout-ms", "500"]);
    expect(after.code).toBe(1);
  });
});

describe("ARBITER_HEALTH_LISTEN", () => {
  it("is optional, plaintext on any address, and checked like the other listeners", () => {
    expect(loadConfig({}).healthListen).toBeUndefined();
    expect(loadConfig({ ARBITER_HEALTH_LISTEN: "0.0.0.0:50052" }).healthListen).toEqual({
      kind: "tcp",
      host: "0.0.0.0",
      port: 50052,
    });
    expect(() => loadConfig({ ARBITER_HEALTH_LISTEN: "nope" })).toThrow(
      'ARBITER_HEALTH_LISTEN: expected host:port, [ipv6]:port or unix:/path, got "nope"',
    );
    // The policy listener keeps its rule: no plaintext on a non-loopback address.
    expect(() => loadConfig({ ARBITER_GRPC_LISTEN: "0.0.0.0:50051" })).toThrow(
      /^ARBITER_GRPC_LISTEN: refusing to listen on non-loopback address "0\.0\.0\.0" without TLS/,
    );
  });
});

describe("deploy/context.mjs (the .dockerignore copy of docker-steps)", () => {
  it("applies exclusions, exceptions and last-match-wins like Docker", async () => {
    const { copyContext } = await import("../../deploy/context.mjs");
    const src = mkdtempSync(join(tmpdir(), "ctx-src-"));
    const dest = mkdtempSync(join(tmpdir(), "ctx-dest-"));
    try {
      const files = [
        "package.json",
        "README.md",
        "src/a.ts",
        "src/a.test.ts",
        "src/deep/node_modules/x.js",
        "docs/x.md",
        "deploy/healthcheck.mjs",
        "deploy/Dockerfile",
        "node_modules/pkg/index.js",
      ];
      for (const f of files) {
        mkdirSync(join(src, f, ".."), { recursive: true });
        writeFileSync(join(src, f), f);
      }
      writeFileSync(
        join(src, ".dockerignore"),
        [
          "# comment",
          "**",
          "!package.json",
          "!src/",
          "!/deploy/healthcheck.mjs",
          "**/node_modules",
          "**/*.test.ts",
        ].join("\n"),
      );
      expect(copyContext(src, dest)).toBe(3);
      expect(listFiles(dest, () => true)).toEqual(["deploy/healthcheck.mjs", "package.json", "src/a.ts"]);
    } finally {
      rmSync(src, { recursive: true, force: true });
      rmSync(dest, { recursive: true, force: true });
    }
  });
});
