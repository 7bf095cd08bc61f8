/**
 * gRPC health (`grpc.health.v1.Health`): the serving state per service name, "" for the whole
 * server. `serve.ts` drives it from the engine host (SERVING only while a bundle is active) and
 * from shutdown (NOT_SERVING first). Check is unary (gRPC and Connect); Watch streams over gRPC.
 */
import { create, type Message } from "@bufbuild/protobuf";
import {
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Status,
  type HealthCheckRequest,
} from "../../gen/grpc/health/v1/health_pb.ts";
import type { UnaryMethod } from "./methods.ts";
import { Code, RpcError } from "./status.ts";

export type ServingStatus = "SERVING" | "NOT_SERVING";

export type HealthListener = (status: ServingStatus | undefined) => void;

/** Mutable health table with change notification. */
export class HealthState {
  readonly #status = new Map<string, ServingStatus>();
  readonly #listeners = new Map<string, Set<HealthListener>>();

  /** Declares or updates `service` ("" = overall). */
  set(service: string, status: ServingStatus): void {
    if (this.#status.get(service) === status) return;
    this.#status.set(service, status);
    for (const l of this.#listeners.get(service) ?? []) l(status);
  }

  /** Sets every declared service (and "") at once. */
  setAll(status: ServingStatus): void {
    if (!this.#status.has("")) this.set("", status);
    for (const s of [...this.#status.keys()]) this.set(s, status);
  }

  get(service: string): ServingStatus | undefined {
    return this.#status.get(service);
  }

  /** Calls `listener` with every change of `service`; returns the unsubscribe function. */
  watch(service: string, listener: HealthListener): () => void {
    let set = this.#listeners.get(service);
    if (!set) this.#listeners.set(service, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }
}

export const HEALTH_SERVICE = "grpc.health.v1.Health";

export function toPbStatus(s: ServingStatus | undefined): Status {
  if (s === undefined) return Status.SERVICE_UNKNOWN;
  return s === "SERVING" ? Status.SERVING : Status.NOT_SERVING;
}

export function healthCheckMethod(state: HealthState): UnaryMethod {
  return {
    path: `/${HEALTH_SERVICE}/Check`,
    input: HealthCheckRequestSchema,
    output: HealthCheckResponseSchema,
    async handle(msg: Message) {
      const service = (msg as HealthCheckRequest).service;
      const status = state.get(service);
      if (status === undefined) throw new RpcError(Code.NOT_FOUND, `unknown service "${service}"`);
      return create(HealthCheckResponseSchema, { status: toPbStatus(status) });
    },
  };
}
