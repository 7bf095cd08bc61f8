/**
 * Library mode: the decision stack of `arbiter serve` (src/server/core.ts: bundle sources and hot
 * reload, decision cache, state stores, audit, tracing) called in-process, without the transport.
 * Requests are plain objects, checked by the same protovalidate rules as on the wire (so a request
 * the sidecar refuses is refused here with the same field named) and converted by the same
 * functions (src/transport/convert.ts); responses are the decision core's plain types.
 */
import { fileURLToPath } from "node:url";
import { create, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import { Registry } from "prom-client";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import type * as t from "../decision/types.ts";
import type { EngineStatus } from "../engine/types.ts";
import { componentLogger, createLogger } from "../log.ts";
import { createCore } from "../server/core.ts";
import {
  decideFromPb,
  finalizeFromPb,
  guardMemoryFromPb,
  recordUsageFromPb,
  routeFromPb,
} from "../transport/convert.ts";
import { createRequestValidator } from "../transport/validate.ts";
import { ArbiterError, toArbiterError } from "./errors.ts";
import { configFromOptions, type ArbiterOptions } from "./options.ts";
import type {
  CallOptions,
  DecideInput,
  FinalizeInput,
  GuardMemoryInput,
  RecordUsageInput,
  RequestInput,
  RouteInput,
} from "./types.ts";

/** An Arbiter running in this process. */
export interface Arbiter {
  decide(request: DecideInput, options?: CallOptions): Promise<t.DecideResponse>;
  route(request: RouteInput, options?: CallOptions): Promise<t.RouteResponse>;
  guardMemory(request: GuardMemoryInput, options?: CallOptions): Promise<t.GuardMemoryResponse>;
  finalize(request: FinalizeInput, options?: CallOptions): Promise<t.FinalizeResponse>;
  /** Adds spend to the tenant's budget window (read by Route's budget rule). */
  recordUsage(request: RecordUsageInput, options?: CallOptions): Promise<t.RecordUsageResponse>;
  /** The active bundle: `ready` false means every answer is fail-closed (see `lastError`). */
  status(): EngineStatus;
  /** Stops reloads, flushes the audit trail, closes the state stores and the embedded Postgres. Idempotent. */
  close(): Promise<void>;
}

/**
 * The package's default policy pack (policies/ at the package root), from src/library/ or
 * dist/src/library/.
 */
const DEFAULT_PACK = fileURLToPath(
  new URL(import.meta.url.endsWith(".js") ? "../../../policies/" : "../../policies/", import.meta.url),
);

/** A signal that never aborts, for calls without one. */
const NEVER = new AbortController().signal;

const MEMORY_OPERATIONS: ReadonlyMap<unknown, pb.MemoryOperation> = new Map([
  ["READ", pb.MemoryOperation.READ],
  ["WRITE", pb.MemoryOperation.WRITE],
  ["DELETE", pb.MemoryOperation.DELETE],
]);

/**
 * Starts Arbiter in-process: loads the bundle (the default pack when `bundle` is not given),
 * starts the audit pipeline and state stores as configured, and resolves once the first load
 * attempt finished. A bundle that does not load does not throw: the instance answers fail-closed
 * until a good bundle arrives (`status()`), as the sidecar does. Bad options throw an
 * ArbiterError `invalid_argument`; a database that cannot be reached rejects.
 */
export async function createArbiter(options: ArbiterOptions): Promise<Arbiter> {
  const config = configFromOptions(options, DEFAULT_PACK);
  const root: Logger = options.logger ?? createLogger({ level: config.logLevel });
  const log = componentLogger(root, "library");
  const core = await createCore(config, { logger: root, registry: options.registry ?? new Registry() });
  try {
    await core.engine.start();
  } catch (err) {
    await core.close(); // the audit pipeline, its spool lock, Postgres and the state pool
    throw err;
  }
  const st = core.engine.status();
  if (!st.ready) log.warn({ source: config.bundle, error: st.lastError }, "no valid bundle yet: answering fail-closed");
  const validator = createRequestValidator();
  const service = core.service;
  let closed = false;

  /** Validates `init` as the wire message `schema`, converts it, runs `call`; errors become ArbiterError. */
  async function run<D extends DescMessage, Q, R>(
    schema: D,
    init: MessageInitShape<D>,
    input: RequestInput,
    fromPb: (m: ReturnType<typeof create<D>>, extra: { traceId?: string }) => Q,
    call: (req: Q, ctx: t.CallContext) => Promise<R>,
    callOptions: CallOptions | undefined,
  ): Promise<R> {
    const signal = callOptions?.signal ?? NEVER;
    try {
      if (closed) throw new ArbiterError("unavailable", "arbiter is closed");
      signal.throwIfAborted();
      const msg = create(schema, init);
      validator.check(schema, msg);
      const req = fromPb(msg, input.traceId === undefined ? {} : { traceId: input.traceId });
      return await call(req, { signal, startedAt: performance.now() });
    } catch (err) {
      throw toArbiterError(err, signal);
    }
  }

  return {
    decide: (r, o) =>
      run(
        pb.DecideRequestSchema,
        r as MessageInitShape<typeof pb.DecideRequestSchema>,
        r,
        decideFromPb,
        (q, c) => service.decide(q, c),
        o,
      ),
    route: (r, o) =>
      run(
        pb.RouteRequestSchema,
        r as MessageInitShape<typeof pb.RouteRequestSchema>,
        r,
        routeFromPb,
        (q, c) => service.route(q, c),
        o,
      ),
    guardMemory: (r, o) =>
      run(
        pb.GuardMemoryRequestSchema,
        // Unknown names become UNSPECIFIED, which validation refuses naming the field.
        { ...r, operation: MEMORY_OPERATIONS.get(r?.operation) ?? pb.MemoryOperation.UNSPECIFIED } as MessageInitShape<
          typeof pb.GuardMemoryRequestSchema
        >,
        r,
        guardMemoryFromPb,
        (q, c) => service.guardMemory(q, c),
        o,
      ),
    finalize: (r, o) =>
      run(
        pb.FinalizeRequestSchema,
        r as MessageInitShape<typeof pb.FinalizeRequestSchema>,
        r,
        finalizeFromPb,
        (q, c) => service.finalize(q, c),
        o,
      ),
    recordUsage: (r, o) =>
      run(
        pb.RecordUsageRequestSchema,
        r as MessageInitShape<typeof pb.RecordUsageRequestSchema>,
        r,
        recordUsageFromPb,
        (q, c) => service.recordUsage(q, c),
        o,
      ),
    status: () => core.engine.status(),
    close: async () => {
      closed = true;
      await core.close();
      if (!options.logger) await new Promise<void>((resolve) => root.flush(() => resolve()));
    },
  };
}
