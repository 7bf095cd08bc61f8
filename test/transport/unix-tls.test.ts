/**
 * The same wire over a Unix socket (stale socket removed, mode 0660), and TLS / mTLS on TCP with
 * certificates made by openssl for the test.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Serving,
} from "../../gen/grpc/health/v1/health_pb.ts";
import { startServer, type RunningServer } from "../../src/server/serve.ts";
import { copyPolicies, testConfig, unary, UUIDV7 } from "./helpers.ts";

const S = "/arbiter.v1.PolicyService";
const DECIDE = {
  tenantId: "acme",
  subject: { id: "alice", roles: ["viewer"] },
  action: "read",
  resource: { type: "document", id: "doc-1" },
};

describe("Unix socket listener", () => {
  let server: RunningServer;
  let client: grpc.Client;
  let socketPath: string;
  beforeAll(async () => {
    socketPath = join(mkdtempSync(join(tmpdir(), "arbiter-uds-")), "arbiter.sock");
    // A stale socket file from a crashed run: a process binds it and dies without cleaning up.
    spawnSync(process.execPath, [
      "-e",
      `require("net").createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, "SIGKILL"))`,
    ]);
    expect(existsSync(socketPath)).toBe(true);
    server = await startServer(
      testConfig({ ARBITER_BUNDLE: copyPolicies(), ARBITER_GRPC_LISTEN: `unix:${socketPath}` }),
    );
    client = new grpc.Client(`unix:${socketPath}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
  });

  it("listens on the path with mode 0660", () => {
    expect(server.address).toBe(`unix:${socketPath}`);
    expect(statSync(socketPath).isSocket()).toBe(true);
    expect(statSync(socketPath).mode & 0o777).toBe(0o660);
  });

  it("answers gRPC Decide, health and invalid input over the socket", async () => {
    const r = await unary(client, `${S}/Decide`, pb.DecideRequestSchema, pb.DecideResponseSchema, DECIDE);
    expect(r.value?.allow).toBe(true);
    expect(r.value?.decisionId).toMatch(UUIDV7);
    const h = await unary(client, "/grpc.health.v1.Health/Check", HealthCheckRequestSchema, HealthCheckResponseSchema, {
      service: "",
    });
    expect(h.value?.status).toBe(Serving.SERVING);
    const bad = await unary(client, `${S}/Decide`, pb.DecideRequestSchema, pb.DecideResponseSchema, {
      ...DECIDE,
      action: "",
    });
    expect(bad.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(bad.error?.details).toBe("action: must be at least 1 characters [string.min_len]");
  });

  it("answers Connect JSON over HTTP/1.1 on the socket", async () => {
    const http = await import("node:http");
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.request(
        { socketPath, path: `${S}/Decide`, method: "POST", headers: { "content-type": "application/json" } },
        (res) => {
          let t = "";
          res.setEncoding("utf8");
          res.on("data", (d: string) => (t += d));
          res.on("end", () => resolve(t));
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify(DECIDE));
    });
    expect((JSON.parse(body) as { allow: boolean }).allow).toBe(true);
  });

  it("refuses a socket path a live process is serving on", async () => {
    await expect(
      startServer(testConfig({ ARBITER_BUNDLE: copyPolicies(), ARBITER_GRPC_LISTEN: `unix:${socketPath}` })),
    ).rejects.toThrow(`ARBITER_GRPC_LISTEN: unix:${socketPath} is in use by a running server`);
  });

  it("removes the socket file on close", async () => {
    const s2path = join(mkdtempSync(join(tmpdir(), "arbiter-uds-")), "b.sock");
    const s2 = await startServer(testConfig({ ARBITER_BUNDLE: copyPolicies(), ARBITER_GRPC_LISTEN: `unix:${s2path}` }));
    expect(existsSync(s2path)).toBe(true);
    await s2.close();
    expect(existsSync(s2path)).toBe(false);
  });
});

function haveOpenssl(): boolean {
  try {
    execFileSync("openssl", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe.runIf(haveOpenssl())("TLS and mTLS", () => {
  const dir = mkdtempSync(join(tmpdir(), "arbiter-tls-"));
  const f = (n: string): string => join(dir, n);
  const ssl = (...args: string[]): void => void execFileSync("openssl", args, { stdio: "ignore" });
  beforeAll(() => {
    ssl(
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      f("ca.key"),
      "-out",
      f("ca.pem"),
      "-days",
      "1",
      "-subj",
      "/CN=test-ca",
    );
    writeFileSync(f("san.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
    for (const who of ["server", "client"]) {
      ssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f(`${who}.key`),
        "-out",
        f(`${who}.csr`),
        "-subj",
        `/CN=${who}`,
      );
      ssl(
        "x509",
        "-req",
        "-in",
        f(`${who}.csr`),
        "-CA",
        f("ca.pem"),
        "-CAkey",
        f("ca.key"),
        "-CAcreateserial",
        "-out",
        f(`${who}.pem`),
        "-days",
        "1",
        "-extfile",
        f("san.cnf"),
      );
    }
  });

  it("serves gRPC over TLS, and with a client CA refuses clients without a certificate", async () => {
    const server = await startServer(
      testConfig({
        ARBITER_BUNDLE: copyPolicies(),
        ARBITER_TLS_CERT: f("server.pem"),
        ARBITER_TLS_KEY: f("server.key"),
        ARBITER_TLS_CLIENT_CA: f("ca.pem"),
      }),
    );
    const ca = readFileSync(f("ca.pem"));
    const withCert = new grpc.Client(
      server.address,
      grpc.credentials.createSsl(ca, readFileSync(f("client.key")), readFileSync(f("client.pem"))),
    );
    const noCert = new grpc.Client(server.address, grpc.credentials.createSsl(ca));
    try {
      const ok = await unary(withCert, `${S}/Decide`, pb.DecideRequestSchema, pb.DecideResponseSchema, DECIDE, {
        deadline: Date.now() + 10_000,
      });
      expect(ok.error).toBeUndefined();
      expect(ok.value?.allow).toBe(true);
      const refused = await unary(noCert, `${S}/Decide`, pb.DecideRequestSchema, pb.DecideResponseSchema, DECIDE, {
        deadline: Date.now() + 5000,
      });
      expect(refused.error?.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      withCert.close();
      noCert.close();
      await server.close();
    }
  });
});
