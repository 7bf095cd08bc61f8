/**
 * The shutdown path in a real child process (`node bin/arbiter.js serve`): SIGTERM during an
 * in-flight call. The call is held in flight without any test hook: the client sends the request
 * headers and part of the message, and the rest only after the signal.
 */
import { spawn, type ChildProcess } from "node:child_process";
import http2 from "node:http2";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import { copyPolicies, until } from "../transport/helpers.ts";

const ROOT = join(import.meta.dirname, "..", "..");

interface Child {
  proc: ChildProcess;
  lines: Array<Record<string, unknown>>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  grpc: string;
  admin: string;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
});

async function startChild(env: Record<string, string>): Promise<Child> {
  const proc = spawn(process.execPath, ["bin/arbiter.js", "serve"], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      ARBITER_GRPC_LISTEN: "127.0.0.1:0",
      ARBITER_ADMIN_LISTEN: "127.0.0.1:0",
      ARBITER_AUDIT: "off",
      ARBITER_BUNDLE: copyPolicies(),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(proc);
  const lines: Array<Record<string, unknown>> = [];
  createInterface({ input: proc.stdout! }).on("line", (l) => {
    try {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      lines.push({ raw: l });
    }
  });
  let stderr = "";
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once("exit", (code, signal) => resolve({ code, signal })),
  );
  await until(() => lines.some((l) => l.msg === "serving") || proc.exitCode !== null, 60_000, "child to serve");
  const serving = lines.find((l) => l.msg === "serving");
  if (!serving) throw new Error(`child exited: ${stderr}`);
  return { proc, lines, exit, grpc: String(serving.grpc), admin: String(serving.admin) };
}

const REQUEST = toBinary(
  pb.DecideRequestSchema,
  create(pb.DecideRequestSchema, {
    tenantId: "acme",
    subject: { id: "alice", roles: ["viewer"] },
    action: "read",
    resource: { type: "document", id: "doc-1" },
  }),
);
const FRAME = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), REQUEST]);
FRAME.writeUInt32BE(REQUEST.length, 1);

/** Opens a Decide stream and sends only the first `n` bytes of its frame. */
function heldCall(address: string, n: number) {
  const session = http2.connect(`http://${address}`);
  session.on("error", () => {});
  const req = session.request({
    ":method": "POST",
    ":path": "/arbiter.v1.PolicyService/Decide",
    "content-type": "application/grpc+proto",
    te: "trailers",
  });
  req.on("error", () => {});
  req.write(FRAME.subarray(0, n));
  const chunks: Buffer[] = [];
  let grpcStatus: string | undefined;
  req.on("response", (h) => {
    if (h["grpc-status"] !== undefined) grpcStatus = String(h["grpc-status"]);
  });
  req.on("trailers", (t) => (grpcStatus = String(t["grpc-status"])));
  req.on("data", (c: Buffer) => chunks.push(c));
  const closed = new Promise<{ grpcStatus: string | undefined; body: Buffer; rstCode: number }>((resolve) =>
    req.on("close", () => resolve({ grpcStatus, body: Buffer.concat(chunks), rstCode: req.rstCode ?? 0 })),
  );
  return { finish: () => req.end(FRAME.subarray(n)), closed, session };
}

async function inFlight(admin: string): Promise<number> {
  return ((await (await fetch(`http://${admin}/v1/status`)).json()) as { inFlight: number }).inFlight;
}

describe("arbiter serve shutdown", () => {
  it("on SIGTERM turns readiness off, finishes the in-flight call, and exits 0", async () => {
    const child = await startChild({ ARBITER_SHUTDOWN_TIMEOUT_MS: "10000" });
    const call = heldCall(child.grpc, 7);
    let n = 0;
    await until(
      () => {
        void inFlight(child.admin).then((v) => (n = v));
        return n === 1;
      },
      10_000,
      "the call to be in flight",
    );

    expect((await fetch(`http://${child.admin}/readyz`)).status).toBe(200);
    child.proc.kill("SIGTERM");
    await until(() => child.lines.some((l) => l.msg === "shutting down"), 10_000, "shutdown to begin");
    const ready = await fetch(`http://${child.admin}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { reason: string }).reason).toBe("shutting down");
    expect(child.proc.exitCode).toBeNull(); // still draining

    call.finish();
    const res = await call.closed;
    expect(res.grpcStatus).toBe("0");
    const decided = fromBinary(pb.DecideResponseSchema, res.body.subarray(5));
    expect(decided.allow).toBe(true);
    call.session.close();

    expect(await child.exit).toEqual({ code: 0, signal: null });
    const stopped = child.lines.find((l) => l.msg === "stopped");
    expect(stopped?.forced).toBe(false);
  });

  it("cuts calls off at ARBITER_SHUTDOWN_TIMEOUT_MS and still exits 0 (SIGINT)", async () => {
    const child = await startChild({ ARBITER_SHUTDOWN_TIMEOUT_MS: "300" });
    const call = heldCall(child.grpc, 3);
    let n = 0;
    await until(
      () => {
        void inFlight(child.admin).then((v) => (n = v));
        return n === 1;
      },
      10_000,
      "the call to be in flight",
    );
    const t0 = Date.now();
    child.proc.kill("SIGINT");
    expect(await child.exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(5000);
    const res = await call.closed;
    expect(res.grpcStatus).toBeUndefined(); // never answered: the stream was torn down
    expect(child.lines.find((l) => l.msg === "stopped")?.forced).toBe(true);
    expect(child.lines.find((l) => l.msg === "signal received")?.signal).toBe("SIGINT");
  });

  it("fails start-up with exit code 2 and a message naming the variable", async () => {
    const proc = spawn(process.execPath, ["bin/arbiter.js", "serve"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, ARBITER_GRPC_LISTEN: "0.0.0.0:50051" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(proc);
    let stderr = "";
    proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise((r) => proc.once("exit", r));
    expect(code).toBe(2);
    expect(stderr).toBe(
      'arbiter serve: ARBITER_GRPC_LISTEN: refusing to listen on non-loopback address "0.0.0.0" without TLS; set ARBITER_TLS_CERT and ARBITER_TLS_KEY, or bind 127.0.0.1 or a unix: socket\n',
    );
  });
});
