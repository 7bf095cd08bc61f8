/**
 * End-to-end harness for the default policy pack: copies `policies/` (optionally with edited
 * data) to a temporary directory, starts a real sidecar in-process on 127.0.0.1:0 with audit off,
 * and talks to it with a real @grpc/grpc-js client (protobuf-es messages on the wire).
 */
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CreateApprovalRequestSchema,
  CreateApprovalResponseSchema,
  DecideRequestSchema,
  DecideResponseSchema,
  FinalizeRequestSchema,
  FinalizeResponseSchema,
  GuardMemoryRequestSchema,
  GuardMemoryResponseSchema,
  RecordUsageRequestSchema,
  RecordUsageResponseSchema,
  RouteRequestSchema,
  RouteResponseSchema,
} from "../../gen/arbiter/v1/arbiter_pb.ts";
import { loadConfig } from "../../src/config/config.ts";
import { startServer, type RunningServer } from "../../src/server/serve.ts";

export const PACK_DIR = fileURLToPath(new URL("../../policies", import.meta.url));

/** The shipped data.json. */
export async function shippedData(): Promise<any> {
  return JSON.parse(await readFile(join(PACK_DIR, "data.json"), "utf8"));
}

/** Copies the pack to a temporary directory; `edit` may change data.arbiter.config first. */
export async function packCopy(edit?: (config: any) => void): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "arbiter-pack-"));
  await cp(PACK_DIR, dir, { recursive: true });
  if (edit) {
    const data = await shippedData();
    edit(data.arbiter.config);
    await writeFile(join(dir, "data.json"), JSON.stringify(data, null, 2));
  }
  return dir;
}

const METHODS = {
  Decide: [DecideRequestSchema, DecideResponseSchema],
  Route: [RouteRequestSchema, RouteResponseSchema],
  GuardMemory: [GuardMemoryRequestSchema, GuardMemoryResponseSchema],
  Finalize: [FinalizeRequestSchema, FinalizeResponseSchema],
  RecordUsage: [RecordUsageRequestSchema, RecordUsageResponseSchema],
  CreateApproval: [CreateApprovalRequestSchema, CreateApprovalResponseSchema],
} as const;

type Methods = typeof METHODS;
type Req<M extends keyof Methods> = MessageInitShape<Methods[M][0]>;
type Res<M extends keyof Methods> = MessageShape<Methods[M][1]>;

function method(name: string, req: DescMessage, res: DescMessage): grpc.MethodDefinition<any, any> {
  return {
    path: `/arbiter.v1.PolicyService/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (m: any) => Buffer.from(toBinary(req, m)),
    requestDeserialize: (b: Buffer) => fromBinary(req, b),
    responseSerialize: (m: any) => Buffer.from(toBinary(res, m)),
    responseDeserialize: (b: Buffer) => fromBinary(res, b),
  };
}

export interface Sidecar {
  readonly server: RunningServer;
  readonly dir: string;
  call<M extends keyof Methods>(name: M, request: Req<M>): Promise<Res<M>>;
  close(): Promise<void>;
}

/** Starts a sidecar on the pack in `dir` (default: a fresh copy of policies/). */
export async function startSidecar(dir?: string): Promise<Sidecar> {
  const bundleDir = dir ?? (await packCopy());
  const dataDir = await mkdtemp(join(tmpdir(), "arbiter-data-"));
  const server = await startServer(
    loadConfig({
      ARBITER_BUNDLE: bundleDir,
      ARBITER_GRPC_LISTEN: "127.0.0.1:0",
      ARBITER_ADMIN_LISTEN: "127.0.0.1:0",
      ARBITER_AUDIT: "off",
      // decide.test.ts creates approvals over the wire (disabled by default: docs/policies.md).
      ARBITER_APPROVALS_LOCAL_CREATE: "on",
      ARBITER_DATA_DIR: dataDir,
      ARBITER_LOG_LEVEL: "silent",
      ARBITER_SHUTDOWN_TIMEOUT_MS: "2000",
    }),
  );
  if (!server.engine.status().ready) {
    await server.close();
    throw new Error(`sidecar: the pack did not load: ${server.engine.status().lastError}`);
  }
  const definition: grpc.ServiceDefinition = Object.fromEntries(
    Object.entries(METHODS).map(([name, [req, res]]) => [name, method(name, req, res)]),
  );
  const Client = grpc.makeGenericClientConstructor(definition, "PolicyService");
  const client = new Client(server.address, grpc.credentials.createInsecure()) as unknown as Record<
    string,
    (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void
  >;
  return {
    server,
    dir: bundleDir,
    call(name, request) {
      const [reqSchema] = METHODS[name];
      const msg = create(reqSchema as DescMessage, request as never);
      return new Promise((resolve, reject) => {
        client[name]!(msg, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err, res) =>
          err ? reject(err) : resolve(res as never),
        );
      });
    },
    async close() {
      (client as unknown as grpc.Client).close();
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
      if (dir === undefined) await rm(bundleDir, { recursive: true, force: true });
    },
  };
}
