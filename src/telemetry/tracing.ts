/**
 * OpenTelemetry traces for every RPC, exported over OTLP (protobuf over HTTP) when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, sampled by the
 * standard `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (default `parentbased_always_on`: a
 * caller's sampled `traceparent` is honoured). Unset: `createTracing` returns `undefined` and the
 * decision core does no tracing work at all.
 *
 * Spans: one SERVER span per RPC (`arbiter.v1.PolicyService/<Rpc>`, child of the caller's W3C
 * `traceparent`), with INTERNAL children for the steps that can take time: `arbiter.state`
 * (approval check, spend read, session counter), `arbiter.cache`, `arbiter.evaluate`,
 * `arbiter.state.settle`, `arbiter.audit`. Attributes: rpc, tenant, bundle revision, outcome,
 * reasons, cache hit. Never request content (prompts, memory content, claims).
 *
 * Uses the official `@opentelemetry/*` packages (api, sdk-trace-base, exporter-trace-otlp-proto).
 */
import { context, SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";

const SERVICE = "arbiter.v1.PolicyService";
const propagator = new W3CTraceContextPropagator();
const headerGetter = {
  get: (carrier: Record<string, string>, key: string) => carrier[key],
  keys: (carrier: Record<string, string>) => Object.keys(carrier),
};

/** Wall-clock ms for a `performance.now()` reading (OTel takes epoch ms). */
const wallMs = (perfNow: number): number => performance.timeOrigin + perfNow;

export interface TracingOptions {
  /** Environment to read the OTEL_* variables from. Default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** `service.name`; default `OTEL_SERVICE_NAME` or "arbiter". */
  readonly serviceName?: string;
  readonly serviceInstanceId?: string;
}

/** One RPC's server span and its children. Times are `performance.now()` readings. */
export class RpcTrace {
  readonly #tracer: Tracer;
  readonly #span: Span;
  readonly #ctx: Context;
  /** False for a call the sampler dropped: no child spans or attributes are built for it. */
  readonly #recording: boolean;

  constructor(tracer: Tracer, span: Span, ctx: Context) {
    this.#tracer = tracer;
    this.#span = span;
    this.#ctx = ctx;
    this.#recording = span.isRecording();
  }

  /** A finished child span from `start` to `end` (both `performance.now()`). */
  child(name: string, start: number, end: number, attributes?: Record<string, string | number | boolean>): void {
    if (!this.#recording) return;
    const s = this.#tracer.startSpan(
      name,
      { kind: SpanKind.INTERNAL, startTime: wallMs(start), ...(attributes ? { attributes } : {}) },
      this.#ctx,
    );
    s.end(wallMs(end));
  }

  set(attributes: Record<string, string | number | boolean | readonly string[]>): void {
    if (!this.#recording) return;
    this.#span.setAttributes(attributes as Record<string, string | number | boolean | string[]>);
  }

  /** Ends the server span; `error` marks it failed (a thrown call, not a fail-closed answer). */
  end(error?: unknown): void {
    if (error !== undefined) {
      this.#span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : "error" });
    }
    this.#span.end();
  }
}

export interface Tracing {
  /** Starts the server span of one call, as a child of the caller's `traceparent` when valid. */
  startRpc(rpc: string, tenantId: string, traceparent: string | undefined, startedAt: number): RpcTrace;
  /** Flushes pending spans and stops the exporter. */
  close(): Promise<void>;
}

/** The tracing of this process, or `undefined` when no OTLP endpoint is configured. */
export function createTracing(options: TracingOptions = {}): Tracing | undefined {
  const env = options.env ?? process.env;
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint || env.OTEL_SDK_DISABLED === "true") return undefined;
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      "service.name": options.serviceName ?? env.OTEL_SERVICE_NAME ?? "arbiter",
      ...(options.serviceInstanceId ? { "service.instance.id": options.serviceInstanceId } : {}),
    }),
    // The exporter reads OTEL_EXPORTER_OTLP_* (endpoint, headers, timeout, compression); the
    // batch processor bounds its queue (2048 spans by default, dropped beyond: never blocks a call).
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  const tracer = provider.getTracer("arbiter");
  return {
    startRpc(rpc, tenantId, traceparent, startedAt) {
      const parent =
        traceparent === undefined
          ? context.active()
          : propagator.extract(context.active(), { traceparent }, headerGetter);
      const span = tracer.startSpan(
        `${SERVICE}/${rpc}`,
        {
          kind: SpanKind.SERVER,
          startTime: wallMs(startedAt),
          attributes: {
            "rpc.system": "grpc",
            "rpc.service": SERVICE,
            "rpc.method": rpc,
            "arbiter.tenant_id": tenantId,
          },
        },
        parent,
      );
      return new RpcTrace(tracer, span, trace.setSpan(parent, span));
    },
    async close() {
      await provider.forceFlush().catch(() => {});
      await provider.shutdown();
    },
  };
}
