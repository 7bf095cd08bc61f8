/**
 * One benchmark target per process, started by `bench/transport-compare.ts`:
 *
 *   tsx bench/transport-targets.ts <kind> <listen>
 *
 * kinds:
 *   raw        node:http2 answering a fixed, pre-encoded gRPC reply (the ceiling)
 *   grpcjs     @grpc/grpc-js server, Decide answering a fixed message
 *   connect    @connectrpc/connect-node (gRPC protocol) over node:http2, Decide answering a fixed message
 *   ours-fixed Arbiter's transport (validation, conversion, metrics) over a DecisionService that
 *              answers a fixed decision: the transport's own cost
 *   ours       the full sidecar (`startServer`): real engine host on ./policies, decision core,
 *              cache, metrics; audit off (Postgres cost is measured by bench/audit-throughput.ts)
 *
 * Prints `READY <address>` on stdout once listening; exits on SIGTERM.
 */
import http2 from "node:http2";
import { rm } from "node:fs/promises";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { Registry } from "prom-client";
import { DecideRequestSchema, DecideResponseSchema, PolicyService } from "../gen/arbiter/v1/arbiter_pb.ts";
import { loadConfig, parseListen, type ListenTarget } from "../src/config/config.ts";
import type { DecisionService, DecideResponse } from "../src/decision/types.ts";
import { uuidv7 } from "../src/decision/ids.ts";
import { createLogger } from "../src/log.ts";
import { HealthState } from "../src/transport/health.ts";
import { createTransportServer } from "../src/transport/server.ts";
import { startServer } from "../src/server/serve.ts";

const [kind, listenArg] = process.argv.slice(2);
if (!kind || !listenArg) {
  process.stderr.write(
    "usage: tsx bench/transport-targets.ts raw|grpcjs|connect|ours-fixed|ours <host:port|unix:/path>\n",
  );
  process.exit(2);
}
const target: ListenTarget = parseListen("listen", listenArg);

const FIXED = create(DecideResponseSchema, {
  decisionId: "01932f4e-0000-7000-8000-000000000000",
  requestId: "01932f4e-0000-7000-8000-000000000001",
  bundleRevision: "bench",
  reasons: ["role_permitted"],
  allow: true,
  obligations: {},
});
const FIXED_BYTES = toBinary(DecideResponseSchema, FIXED);

function frame(b: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + b.length);
  out[0] = 0;
  out.writeUInt32BE(b.length, 1);
  out.set(b, 5);
  return out;
}

async function listenHttp2(server: http2.Http2Server): Promise<string> {
  if (target.kind === "unix") await rm(target.path, { force: true });
  await new Promise<void>((resolve) =>
    target.kind === "unix" ? server.listen(target.path, resolve) : server.listen(target.port, target.host, resolve),
  );
  if (target.kind === "unix") return `unix:${target.path}`;
  const a = server.address() as { address: string; port: number };
  return `${a.address}:${a.port}`;
}

async function start(): Promise<{ address: string; stop: () => Promise<void> }> {
  switch (kind) {
    case "raw": {
      const reply = frame(FIXED_BYTES);
      const server = http2.createServer();
      server.on("stream", (stream) => {
        stream.on("error", () => {});
        stream.on("data", () => {});
        stream.on("end", () => {
          stream.respond({ ":status": 200, "content-type": "application/grpc+proto" }, { waitForTrailers: true });
          stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
          stream.end(reply);
        });
      });
      const address = await listenHttp2(server);
      return { address, stop: () => new Promise((r) => server.close(() => r())) };
    }
    case "grpcjs": {
      const server = new grpc.Server();
      server.addService(
        {
          Decide: {
            path: `/${PolicyService.typeName}/Decide`,
            requestStream: false,
            responseStream: false,
            requestSerialize: (m: unknown) => Buffer.from(toBinary(DecideRequestSchema, m as never)),
            requestDeserialize: (b: Buffer) => fromBinary(DecideRequestSchema, b),
            responseSerialize: (m: unknown) => Buffer.from(toBinary(DecideResponseSchema, m as never)),
            responseDeserialize: (b: Buffer) => fromBinary(DecideResponseSchema, b),
          },
        },
        { Decide: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, FIXED) },
      );
      const addr = target.kind === "unix" ? `unix:${target.path}` : `${target.host}:${target.port}`;
      if (target.kind === "unix") await rm(target.path, { force: true });
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
      );
      return {
        address: target.kind === "unix" ? addr : `${target.host}:${port}`,
        stop: () => new Promise((r) => server.tryShutdown(() => r())),
      };
    }
    case "connect": {
      const handler = connectNodeAdapter({
        routes: (router) => {
          router.rpc(PolicyService.method.decide, async () => FIXED);
        },
      });
      const server = http2.createServer(handler);
      void createConnectRouter;
      const address = await listenHttp2(server);
      return { address, stop: () => new Promise((r) => server.close(() => r())) };
    }
    case "ours-fixed": {
      const fixed = (requestId: string): DecideResponse => ({
        decisionId: uuidv7(),
        requestId,
        bundleRevision: "bench",
        reasons: ["role_permitted"],
        allow: true,
        riskTier: 0,
        requiresApproval: false,
        obligations: { redactFields: [], allowFields: [] },
      });
      const unimplemented = async (): Promise<never> => {
        throw new Error("not in this benchmark");
      };
      const service: DecisionService = {
        decide: async (req) => fixed(req.requestId),
        route: unimplemented,
        guardMemory: unimplemented,
        finalize: unimplemented,
        recordUsage: unimplemented,
        createApproval: unimplemented,
      };
      const health = new HealthState();
      health.set("", "SERVING");
      const server = createTransportServer({
        service,
        health,
        logger: createLogger({ level: "warn" }),
        registry: new Registry(),
      });
      const address = await server.listen(target);
      return { address, stop: async () => void (await server.close(1000)) };
    }
    case "ours": {
      const config = loadConfig({
        ARBITER_GRPC_LISTEN: listenArg,
        ARBITER_ADMIN_LISTEN: "127.0.0.1:0",
        ARBITER_AUDIT: "off",
        ARBITER_LOG_LEVEL: "warn",
        ARBITER_BUNDLE: process.env.ARBITER_BUNDLE ?? "./policies",
      });
      const server = await startServer(config);
      return { address: server.address, stop: async () => void (await server.close()) };
    }
    default:
      process.stderr.write(`unknown kind "${kind}"\n`);
      process.exit(2);
  }
}

const running = await start();
process.stdout.write(`READY ${running.address}\n`);
process.once("SIGTERM", () => {
  void running.stop().finally(() => process.exit(0));
});
