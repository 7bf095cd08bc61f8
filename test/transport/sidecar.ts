/**
 * `node bin/arbiter.js serve` as a child process for tests that need the real sidecar (its own
 * file descriptors, its own event loop): started with the test's ARBITER_* variables, resolved
 * once it logs "serving", killed by `stopSidecars` (call it in afterAll/afterEach).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { copyPolicies, until } from "./helpers.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const running = new Set<ChildProcess>();

export interface Sidecar {
  readonly proc: ChildProcess;
  /** The gRPC port's address, `host:port`. */
  readonly grpc: string;
  /** Every JSON log line so far. */
  readonly logs: Array<Record<string, unknown>>;
}

export async function startSidecar(env: Record<string, string>): Promise<Sidecar> {
  const proc = spawn(process.execPath, ["bin/arbiter.js", "serve"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH,
      ARBITER_GRPC_LISTEN: "127.0.0.1:0",
      ARBITER_ADMIN_LISTEN: "127.0.0.1:0",
      ARBITER_AUDIT: "off",
      ARBITER_BUNDLE: copyPolicies(),
      ...env,
    },
  });
  running.add(proc);
  proc.once("exit", () => running.delete(proc));
  const logs: Array<Record<string, unknown>> = [];
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: proc.stdout! }).on("line", (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      logs.push({ raw: line });
    }
  });
  await until(() => proc.exitCode !== null || logs.some((l) => l.msg === "serving"), 60_000, "the sidecar to serve");
  const serving = logs.find((l) => l.msg === "serving");
  if (serving === undefined) throw new Error(`the sidecar exited (${proc.exitCode}): ${stderr}`);
  return { proc, grpc: String(serving.grpc), logs };
}

export function stopSidecars(): void {
  for (const p of running) p.kill("SIGKILL");
  running.clear();
}
