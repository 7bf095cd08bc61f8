/**
 * OpenTelemetry end to end: a real `arbiter serve` process exporting over OTLP/HTTP (protobuf) to
 * a real receiver in this test, which decodes ExportTraceServiceRequest with protobufjs from the
 * OTLP schema below. Calls come from a real @grpc/grpc-js client carrying a W3C traceparent.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type Server } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage } from "@bufbuild/protobuf";
import protobuf from "protobufjs";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import { freePort } from "../../bench/gate/sidecar.ts";

const repo = resolve(import.meta.dirname, "../..");

// The parts of opentelemetry-proto (collector/trace/v1, trace/v1, common/v1, resource/v1) a span needs.
const OTLP = `
syntax = "proto3";
package otlp;
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7; } }
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message Scope { string name = 1; string version = 2; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; string name = 5;
  int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9;
}
message ScopeSpans { Scope scope = 1; repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`;
const ExportRequest = protobuf.parse(OTLP).root.lookupType("otlp.ExportTraceServiceRequest");

interface DecodedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  resource: Record<string, unknown>;
}

function value(v: Record<string, unknown>): unknown {
  if ("stringValue" in v) return v.stringValue;
  if ("boolValue" in v) return v.boolValue;
  if ("intValue" in v) return Number(v.intValue);
  if ("doubleValue" in v) return v.doubleValue;
  if ("arrayValue" in v) return ((v.arrayValue as { values?: Record<string, unknown>[] }).values ?? []).map(value);
  return undefined;
}

const attrs = (kvs: { key: string; value: Record<string, unknown> }[] | undefined): Record<string, unknown> =>
  Object.fromEntries((kvs ?? []).map((kv) => [kv.key, value(kv.value)]));
const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString("hex");

function decode(body: Buffer): DecodedSpan[] {
  const req = ExportRequest.toObject(ExportRequest.decode(body), { longs: String, defaults: false }) as {
    resourceSpans?: { resource?: { attributes?: never }; scopeSpans?: { spans?: Record<string, never>[] }[] }[];
  };
  const out: DecodedSpan[] = [];
  for (const rs of req.resourceSpans ?? []) {
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          traceId: hex(s.traceId),
          spanId: hex(s.spanId),
          parentSpanId: hex(s.parentSpanId),
          name: s.name,
          kind: s.kind ?? 0,
          attributes: attrs(s.attributes),
          resource: attrs(rs.resource?.attributes),
        });
      }
    }
  }
  return out;
}

function unary<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  method: string,
  input: I,
  output: O,
  msg: Record<string, unknown>,
  traceparent?: string,
): Promise<ReturnType<typeof fromBinary<O>>> {
  const md = new grpc.Metadata();
  if (traceparent) md.set("traceparent", traceparent);
  return new Promise((res, rej) => {
    client.makeUnaryRequest(
      `/arbiter.v1.PolicyService/${method}`,
      (m: Uint8Array) => Buffer.from(m),
      (b: Buffer) => fromBinary(output, b),
      toBinary(input, create(input, msg as never)),
      md,
      { deadline: Date.now() + 10_000 },
      (err, out) => (err ? rej(err) : res(out!)),
    );
  });
}

describe("OpenTelemetry traces over OTLP", () => {
  let dir: string;
  let receiver: Server;
  const bodies: Buffer[] = [];
  const contentTypes: string[] = [];
  let child: ChildProcess;
  let exited: Promise<number | null>;
  let client: grpc.Client;
  let stderr = "";

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "arbiter-otlp-"));
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        if (req.method === "POST" && req.url === "/v1/traces") {
          bodies.push(Buffer.concat(chunks));
          contentTypes.push(String(req.headers["content-type"]));
        }
        res.writeHead(200, { "content-type": "application/x-protobuf" });
        res.end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    const port = (receiver.address() as { port: number }).port;
    const grpcPort = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith("ARBITER_") || k.startsWith("OTEL_")) delete env[k];
    child = spawn(process.execPath, [join(repo, "bin/arbiter.js"), "serve"], {
      cwd: repo,
      env: {
        ...env,
        ARBITER_GRPC_LISTEN: `127.0.0.1:${grpcPort}`,
        ARBITER_ADMIN_LISTEN: "127.0.0.1:0",
        ARBITER_AUDIT: "off",
        ARBITER_DATA_DIR: join(dir, "data"),
        ARBITER_LOG_LEVEL: "warn",
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
        OTEL_SERVICE_NAME: "arbiter-otlp-test",
        OTEL_BSP_SCHEDULE_DELAY: "200",
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
    exited = new Promise((r) => child.once("exit", (code) => r(code)));
    client = new grpc.Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await unary(client, "Decide", pb.DecideRequestSchema, pb.DecideResponseSchema, {
          tenantId: "warm",
          action: "read",
          subject: { id: "w" },
          resource: { type: "document", id: "w" },
        });
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`sidecar did not answer: ${(err as Error).message}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }, 90_000);

  afterAll(async () => {
    client?.close();
    if (child && child.exitCode === null) child.kill("SIGKILL");
    await new Promise<void>((r) => receiver?.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("exports a SERVER span per RPC under the caller's traceparent, with step children and no request content", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const parent = "00f067aa0ba902b7";
    const decide = {
      tenantId: "acme",
      action: "read",
      subject: { id: "alice", roles: ["viewer"] },
      resource: { type: "document", id: "d1" },
    };
    const d = await unary(
      client,
      "Decide",
      pb.DecideRequestSchema,
      pb.DecideResponseSchema,
      decide,
      `00-${traceId}-${parent}-01`,
    );
    expect(d.allow).toBe(true);
    // The same request again: a cache hit.
    await unary(
      client,
      "Decide",
      pb.DecideRequestSchema,
      pb.DecideResponseSchema,
      decide,
      `00-${traceId}-${parent}-01`,
    );
    const secret = "my secret prompt text 4711";
    await unary(
      client,
      "Route",
      pb.RouteRequestSchema,
      pb.RouteResponseSchema,
      { tenantId: "acme", messages: [{ role: "user", content: secret }] },
      `00-${traceId}-${parent}-01`,
    );
    // Not sampled by the caller: parentbased_always_on exports nothing for it.
    const unsampled = "11111111111111111111111111111111";
    await unary(
      client,
      "Decide",
      pb.DecideRequestSchema,
      pb.DecideResponseSchema,
      decide,
      `00-${unsampled}-${parent}-00`,
    );
    // SIGTERM flushes the batch processor on the way out.
    child.kill("SIGTERM");
    expect(await exited).toBe(0);

    expect(contentTypes.every((c) => c === "application/x-protobuf")).toBe(true);
    const spans = bodies.flatMap(decode);
    const mine = spans.filter((s) => s.traceId === traceId);
    const servers = mine.filter((s) => s.kind === 2); // SPAN_KIND_SERVER
    expect(servers.map((s) => s.name)).toEqual([
      "arbiter.v1.PolicyService/Decide",
      "arbiter.v1.PolicyService/Decide",
      "arbiter.v1.PolicyService/Route",
    ]);
    for (const s of servers) {
      expect(s.parentSpanId).toBe(parent);
      expect(s.resource["service.name"]).toBe("arbiter-otlp-test");
      expect(s.attributes).toMatchObject({
        "rpc.system": "grpc",
        "rpc.service": "arbiter.v1.PolicyService",
        "arbiter.tenant_id": "acme",
      });
      expect(s.attributes["arbiter.bundle_revision"]).toMatch(/^sha256:[0-9a-f]{12}$/);
    }
    expect(servers[0]!.attributes).toMatchObject({
      "rpc.method": "Decide",
      "arbiter.outcome": "allow",
      "arbiter.reasons": ["role_permitted"],
    });
    expect(servers[2]!.attributes["rpc.method"]).toBe("Route");
    const children = (server: DecodedSpan) =>
      mine
        .filter((s) => s.parentSpanId === server.spanId)
        .map((s) => [s.name, s.kind, s.attributes["arbiter.cache_hit"]]);
    expect(children(servers[0]!)).toEqual([
      ["arbiter.cache", 1, false],
      ["arbiter.evaluate", 1, undefined],
    ]);
    expect(children(servers[1]!)).toEqual([["arbiter.cache", 1, true]]);
    expect(spans.some((s) => s.traceId === unsampled)).toBe(false);
    // Never request content.
    for (const b of bodies) expect(b.includes(Buffer.from(secret))).toBe(false);
    expect(stderr).toBe("");
  }, 60_000);
});
