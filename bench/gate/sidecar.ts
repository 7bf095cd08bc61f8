/**
 * A fresh `arbiter serve` child process for the gate: loopback TCP on free ports, audit off,
 * readiness awaited on the admin `/readyz`, stopped with SIGTERM.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface SidecarOptions {
  /** Repository root (holds bin/arbiter.js). */
  readonly repo: string;
  /** ARBITER_BUNDLE. */
  readonly bundle: string;
  /** "off", or "embedded" for the embedded Postgres under a temporary data dir. */
  readonly audit: "off" | "embedded";
  /** Where the child's stdout/stderr go. */
  readonly logFile: string;
  readonly readyTimeoutMs: number;
  /** Further ARBITER_* settings, applied last (e.g. the fleet-wide state of test/state/sidecars.test.ts). */
  readonly env?: Readonly<Record<string, string>>;
  /** Node flags before the script (e.g. `--cpu-prof`, bench/audit-cost.ts). */
  readonly nodeArgs?: readonly string[];
}

export interface Sidecar {
  readonly target: string;
  readonly adminUrl: string;
  /** The child's pid (for its CPU time in /proc) and its ARBITER_DATA_DIR. */
  readonly pid: number;
  readonly dataDir: string;
  /** SIGTERM, then SIGKILL after 15 s; resolves with the exit code (null when killed). */
  stop(): Promise<number | null>;
  /** Last lines of the child's log, for failure messages. */
  logTail(lines?: number): string;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/**
 * Starts the sidecar on two free ports. A port is free when `freePort` returns it, not when the
 * child binds it: the sidecar's embedded Postgres picks its own free port in between, and can be
 * handed the same one (seen once in bench/audit-cost.ts: EADDRINUSE). Such a start is retried on
 * new ports, twice at most; any other failure is not.
 */
export async function startSidecar(o: SidecarOptions): Promise<Sidecar> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(o);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof Error) || !err.message.includes("EADDRINUSE")) throw err;
    }
  }
}

async function startOnce(o: SidecarOptions): Promise<Sidecar> {
  const [grpcPort, adminPort] = [await freePort(), await freePort()];
  const dataDir = mkdtempSync(join(tmpdir(), "arbiter-gate-"));
  // Only our ARBITER_* settings: a developer's shell must not change what the gate measures.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("ARBITER_")) env[k] = v;
  Object.assign(env, {
    ARBITER_GRPC_LISTEN: `127.0.0.1:${grpcPort}`,
    ARBITER_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
    ARBITER_BUNDLE: o.bundle,
    ARBITER_DATA_DIR: dataDir,
    ARBITER_AUDIT: o.audit === "off" ? "off" : "on",
    ARBITER_INSTANCE_ID: "bench-gate",
    ARBITER_LOG_LEVEL: "warn",
    // The gate measures CreateApproval too; it is off by default in production (docs/policies.md).
    ARBITER_APPROVALS_LOCAL_CREATE: "on",
    // /v1/status carries the loader's error text only when verbose; the gate reports it below.
    ARBITER_ADMIN_VERBOSE: "on",
    ...o.env,
  });
  const log = createWriteStream(o.logFile);
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), join(o.repo, "bin/arbiter.js"), "serve"], {
    cwd: o.repo,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const done = exited(child);
  const logTail = (lines = 20) => {
    try {
      return readFileSync(o.logFile, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
    } catch {
      return "";
    }
  };
  let stopped: Promise<number | null> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
        const code = await done;
        clearTimeout(timer);
        rmSync(dataDir, { recursive: true, force: true });
        return code;
      }
      rmSync(dataDir, { recursive: true, force: true });
      return child.exitCode;
    })();
    return stopped;
  };

  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const deadline = Date.now() + o.readyTimeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`the sidecar exited (code ${child.exitCode}) before it became ready:\n${logTail()}`);
    }
    try {
      const res = await fetch(`${adminUrl}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (res.status === 200) break;
      // Listening but not ready: a bundle that failed to load will not fix itself; say why now
      // rather than after the whole timeout.
      const st = (await (await fetch(`${adminUrl}/v1/status`, { signal: AbortSignal.timeout(1000) })).json()) as {
        bundle?: { ready?: boolean; lastError?: string | null };
      };
      if (st.bundle && !st.bundle.ready && st.bundle.lastError) {
        await stop();
        throw new Error(`the sidecar has no valid bundle (${o.bundle}): ${st.bundle.lastError}`);
      }
    } catch (err) {
      if (err instanceof Error && err.message.startsWith("the sidecar has no valid bundle")) throw err;
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the sidecar was not ready within ${o.readyTimeoutMs} ms:\n${logTail()}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { target: `127.0.0.1:${grpcPort}`, adminUrl, pid: child.pid!, dataDir, stop, logTail };
}
