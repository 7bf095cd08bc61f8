/**
 * Health Watch across bundle reloads (real engine host watching a real policy directory), and
 * server reflection over a raw grpc-js bidi call, v1 and v1alpha.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Serving,
  type HealthCheckResponse,
} from "../../gen/grpc/health/v1/health_pb.ts";
import {
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.ts";
import { startServer, type RunningServer } from "../../src/server/serve.ts";
import { copyPolicies, testConfig, unary, until } from "./helpers.ts";

describe("health Watch follows the bundle", () => {
  let server: RunningServer | undefined;
  let client: grpc.Client | undefined;
  afterAll(async () => {
    client?.close();
    await server?.close();
  });

  it("goes SERVING after a good reload, stays SERVING over a bad one, NOT_SERVING at shutdown", async () => {
    const dir = copyPolicies();
    const decide = join(dir, "decide.rego");
    const good = readFileSync(decide, "utf8");
    writeFileSync(decide, "package arbiter.decide\n\nallow if {\n"); // syntax error: no bundle
    server = await startServer(testConfig({ ARBITER_BUNDLE: dir }));
    expect(server.engine.status().ready).toBe(false);
    client = new grpc.Client(server.address, grpc.credentials.createInsecure());

    const check = await unary(
      client,
      "/grpc.health.v1.Health/Check",
      HealthCheckRequestSchema,
      HealthCheckResponseSchema,
      { service: "" },
    );
    expect(check.value?.status).toBe(Serving.NOT_SERVING);
    const ready = await fetch(`http://${server.adminAddress}/readyz`);
    expect(ready.status).toBe(503);
    const readyBody = (await ready.json()) as {
      reason: string;
      bundle: { lastErrorReason: string; lastError?: string };
    };
    expect(readyBody.reason).toBe("no valid bundle active");
    // The reason code only: error texts (here naming decide.rego) need ARBITER_ADMIN_VERBOSE=on.
    expect(readyBody.bundle.lastErrorReason).toBe("bundle_invalid");
    expect(readyBody.bundle.lastError).toBeUndefined();

    const seen: Serving[] = [];
    let ended: grpc.StatusObject | undefined;
    const watch = client.makeServerStreamRequest(
      "/grpc.health.v1.Health/Watch",
      (m: ReturnType<typeof create<typeof HealthCheckRequestSchema>>) =>
        Buffer.from(toBinary(HealthCheckRequestSchema, m)),
      (b: Buffer) => fromBinary(HealthCheckResponseSchema, b),
      create(HealthCheckRequestSchema, { service: "arbiter.v1.PolicyService" }),
    );
    watch.on("data", (m: HealthCheckResponse) => seen.push(m.status));
    watch.on("status", (s: grpc.StatusObject) => (ended = s));
    watch.on("error", () => {});
    await until(() => seen.length === 1, 5000, "first Watch message");
    expect(seen).toEqual([Serving.NOT_SERVING]);

    writeFileSync(decide, good);
    await until(() => seen.length === 2, 15_000, "SERVING after the fix");
    expect(seen).toEqual([Serving.NOT_SERVING, Serving.SERVING]);
    expect((await fetch(`http://${server.adminAddress}/readyz`)).status).toBe(200);

    const failedBefore = server.engine.status().reloads.failed;
    writeFileSync(decide, "package arbiter.decide\n\nallow if {\n");
    await until(() => server!.engine.status().reloads.failed > failedBefore, 15_000, "failed reload");
    // A bad bundle never replaces a good one: still serving, the error is reported.
    const after = await fetch(`http://${server.adminAddress}/readyz`);
    expect(after.status).toBe(200);
    expect(((await after.json()) as { bundle: { lastErrorReason: string } }).bundle.lastErrorReason).toBe(
      "bundle_invalid",
    );
    expect(server.engine.status().lastError).toMatch(/decide\.rego/);
    expect(seen).toEqual([Serving.NOT_SERVING, Serving.SERVING]);

    await server.close();
    server = undefined;
    await until(() => ended !== undefined, 5000, "Watch to end");
    expect(seen).toEqual([Serving.NOT_SERVING, Serving.SERVING, Serving.NOT_SERVING]);
    expect(ended!.code).toBe(grpc.status.UNAVAILABLE);
  });
});

describe("server reflection", () => {
  let server: RunningServer;
  let client: grpc.Client;
  beforeAll(async () => {
    server = await startServer(testConfig({ ARBITER_BUNDLE: copyPolicies() }));
    client = new grpc.Client(server.address, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client.close();
    await server.close();
  });

  /** One bidi call: sends every request, half-closes, collects answers and the status. */
  function reflect(version: "v1" | "v1alpha", reqs: Array<ServerReflectionRequest["messageRequest"]>) {
    return new Promise<{ answers: ServerReflectionResponse[]; status: grpc.StatusObject }>((resolve) => {
      const answers: ServerReflectionResponse[] = [];
      const call = client.makeBidiStreamRequest(
        `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
        (m: ServerReflectionRequest) => Buffer.from(toBinary(ServerReflectionRequestSchema, m)),
        (b: Buffer) => fromBinary(ServerReflectionResponseSchema, b),
      );
      call.on("data", (m: ServerReflectionResponse) => answers.push(m));
      call.on("status", (status: grpc.StatusObject) => resolve({ answers, status }));
      call.on("error", () => {});
      for (const messageRequest of reqs)
        call.write(create(ServerReflectionRequestSchema, { host: "h", messageRequest }));
      call.end();
    });
  }

  const fileNames = (r: ServerReflectionResponse): string[] =>
    r.messageResponse.case === "fileDescriptorResponse"
      ? r.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name)
      : [];

  it("ends a Watch that carries no request with INVALID_ARGUMENT", async () => {
    const { connect } = await import("node:http2");
    const session = connect(`http://${server.address}`);
    try {
      const status = await new Promise<{ code: string; message: string }>((resolve, reject) => {
        const req = session.request({
          ":method": "POST",
          ":path": "/grpc.health.v1.Health/Watch",
          "content-type": "application/grpc",
          te: "trailers",
        });
        req.on("response", (h) => resolve({ code: String(h["grpc-status"]), message: String(h["grpc-message"]) }));
        req.on("error", reject);
        req.resume();
        req.end();
      });
      expect(status).toEqual({ code: "3", message: "Watch needs one grpc.health.v1.HealthCheckRequest" });
    } finally {
      session.close();
    }
    await expect.poll(() => server.transport.inFlight()).toBe(0);
  });

  it("lists the services (v1)", async () => {
    const { answers, status } = await reflect("v1", [{ case: "listServices", value: "" }]);
    expect(status.code).toBe(grpc.status.OK);
    expect(answers).toHaveLength(1);
    const r = answers[0]!.messageResponse;
    expect(r.case).toBe("listServicesResponse");
    expect(r.case === "listServicesResponse" && r.value.service.map((s) => s.name)).toEqual([
      "arbiter.v1.PolicyService",
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
    ]);
    expect(answers[0]!.validHost).toBe("h");
  });

  it("returns files with transitive dependencies by symbol and by name, several requests per stream (v1alpha)", async () => {
    const { answers, status } = await reflect("v1alpha", [
      { case: "fileContainingSymbol", value: "arbiter.v1.PolicyService" },
      { case: "fileContainingSymbol", value: "arbiter.v1.PolicyService.Decide" },
      { case: "fileByFilename", value: "grpc/health/v1/health.proto" },
      { case: "fileContainingSymbol", value: "arbiter.v1.Nope" },
    ]);
    expect(status.code).toBe(grpc.status.OK);
    expect(answers).toHaveLength(4);
    const first = fileNames(answers[0]!);
    expect(first[0]).toBe("arbiter/v1/arbiter.proto");
    expect(new Set(first)).toEqual(
      new Set([
        "arbiter/v1/arbiter.proto",
        "buf/validate/validate.proto",
        "google/protobuf/descriptor.proto",
        "google/protobuf/struct.proto",
      ]),
    );
    expect(fileNames(answers[1]!)[0]).toBe("arbiter/v1/arbiter.proto");
    expect(fileNames(answers[2]!)).toEqual(["grpc/health/v1/health.proto"]);
    const err = answers[3]!.messageResponse;
    expect(err.case === "errorResponse" && [err.value.errorCode, err.value.errorMessage]).toEqual([
      grpc.status.NOT_FOUND,
      'symbol "arbiter.v1.Nope" not found',
    ]);
    // The served descriptor is the real contract: it declares the six RPCs.
    const fd = fromBinary(
      FileDescriptorProtoSchema,
      (answers[0]!.messageResponse.value as { fileDescriptorProto: Uint8Array[] }).fileDescriptorProto[0]!,
    );
    expect(fd.service[0]!.method.map((m) => m.name)).toEqual([
      "Decide",
      "Route",
      "GuardMemory",
      "Finalize",
      "RecordUsage",
      "CreateApproval",
    ]);
  });
});
