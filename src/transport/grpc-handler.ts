/**
 * gRPC over HTTP/2 on Arbiter's own HTTP/2 streams (`./h2/session.ts`), written by hand: the
 * stock stacks cost 2-6x the throughput of raw http2 on this workload (docs/transport.md).
 *
 * - unary: collect the one length-prefixed frame, decode (the generated codecs of ./codec.ts,
 *   protobuf-es semantics and errors), run the method, answer
 *   with one frame and `grpc-status` trailers, or a trailers-only error.
 * - `grpc-timeout` arms a deadline; the call's AbortSignal fires on deadline or when the client
 *   resets the stream, and the decision core sees it.
 * - server streaming (health Watch) and bidi (reflection) share the frame parser.
 */
import { fromBinary, toBinary, type Message } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import { create } from "@bufbuild/protobuf";
import { HealthCheckRequestSchema, HealthCheckResponseSchema } from "../../gen/grpc/health/v1/health_pb.ts";
import {
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
} from "../../gen/grpc/reflection/v1/reflection_pb.ts";
import { armDeadline, pastDeadline } from "./deadline.ts";
import { cancelled, deadlineExceeded, toRpcError } from "./errors.ts";
import { codecFor, type MessageCodec } from "./codec.ts";
import { FrameParser, encodeFrame, encodeGrpcMessage, parseGrpcTimeout } from "./grpc-frame.ts";
import { encodeHeaderBlock } from "./h2/hpack.ts";
import { H2Error, type H2Headers, type H2Stream } from "./h2/session.ts";
import { toPbStatus, type HealthState } from "./health.ts";
import { traceIdFrom, type UnaryCall, type UnaryMethod } from "./methods.ts";
import type { RequestMetrics } from "./metrics.ts";
import type { AbortHook } from "../audit/types.ts";
import type { Reflector } from "./reflection.ts";
import { Code, RpcError, outcomeLabel } from "./status.ts";

/** Bookkeeping the server keeps for shutdown. */
export interface CallTracker {
  begin(): void;
  end(): void;
  /** Registers a long-lived stream to be ended at shutdown; returns the deregistration. */
  addStream(terminate: () => void): () => void;
}

export interface GrpcHandlerOptions {
  readonly unary: ReadonlyMap<string, UnaryMethod>;
  readonly health: HealthState;
  readonly reflector: Reflector;
  readonly reflectionPaths: ReadonlySet<string>;
  readonly watchPath: string;
  readonly maxMessageBytes: number;
  readonly metrics: RequestMetrics;
  readonly tracker: CallTracker;
  readonly logger: Logger;
}

// Header blocks of the unary path, encoded once (our HPACK encoder keeps no state).
const OK_HEADERS = encodeHeaderBlock([
  [":status", "200"],
  ["content-type", "application/grpc+proto"],
  ["grpc-accept-encoding", "identity"],
]);
const STREAM_HEADERS = encodeHeaderBlock([
  [":status", "200"],
  ["content-type", "application/grpc+proto"],
]);
const OK_TRAILERS = encodeHeaderBlock([["grpc-status", "0"]]);
const NO_MESSAGE = "unary call carried no request message";
const MANY_MESSAGES = "unary call carried more than one request message";

function statusTrailers(code: Code, message: string): Array<[string, string]> {
  const t: Array<[string, string]> = [["grpc-status", String(code)]];
  if (message) t.push(["grpc-message", encodeGrpcMessage(message)]);
  return t;
}

/**
 * The one message of a unary request body. The common case, a single chunk holding exactly one
 * uncompressed frame, is sliced in place; anything else goes through the frame parser, which
 * produces the same errors as before.
 */
function unaryMessage(chunks: Buffer[], maxMessageBytes: number): Uint8Array {
  if (chunks.length === 1) {
    const c = chunks[0]!;
    if (c.length >= 5 && c[0] === 0) {
      const len = c.readUInt32BE(1);
      if (len <= maxMessageBytes && len === c.length - 5) return c.subarray(5);
    }
  }
  const parser = new FrameParser(maxMessageBytes);
  const frames = chunks.length === 0 ? [] : parser.push(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
  if (frames.length !== 1 || parser.pending !== 0) {
    throw new RpcError(Code.INVALID_ARGUMENT, frames.length === 0 ? NO_MESSAGE : MANY_MESSAGES);
  }
  return frames[0]!;
}

/**
 * The context of one unary call. Its AbortSignal is created only when something reads `signal`:
 * a Decide that touches no store never needs one (creating it was ~4% of a call), and a sync
 * audit append waits through the context itself as an `AbortHook` (a listener list).
 */
class UnaryCallContext implements UnaryCall, AbortHook {
  readonly startedAt: number;
  readonly traceId?: string;
  readonly traceparent?: string;
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;
  #listeners: (() => void)[] | undefined;

  constructor(startedAt: number, traceparent: string | string[] | undefined) {
    this.startedAt = startedAt;
    const traceId = traceIdFrom(traceparent);
    if (traceId !== undefined) {
      this.traceId = traceId;
      this.traceparent = (traceparent as string).trim();
    }
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  get abortHook(): AbortHook {
    return this;
  }

  onAbort(listener: () => void): () => void {
    if (this.#aborted) {
      listener();
      return () => undefined;
    }
    (this.#listeners ??= []).push(listener);
    return () => {
      const i = this.#listeners?.indexOf(listener) ?? -1;
      if (i >= 0) this.#listeners!.splice(i, 1);
    };
  }

  /** The first abort wins, as with AbortController. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    const listeners = this.#listeners;
    this.#listeners = undefined;
    if (listeners) for (const l of listeners) l();
  }
}

/** Ends the call with `code`: trailers-only when nothing was sent yet, else trailers. */
function trailersOnly(stream: H2Stream, code: Code, message: string): void {
  if (stream.localEnded) return;
  if (stream.headersSent) {
    stream.sendTrailers(encodeHeaderBlock(statusTrailers(code, message)));
    return;
  }
  stream.respond(
    encodeHeaderBlock([
      [":status", "200"],
      ["content-type", "application/grpc+proto"],
      ...statusTrailers(code, message),
    ]),
    true,
  );
}

export function createGrpcHandler(opts: GrpcHandlerOptions) {
  const { unary, maxMessageBytes, metrics, tracker, logger } = opts;

  function logFailure(path: string, err: RpcError): void {
    if ((err.code === Code.INTERNAL || err.code === Code.UNKNOWN) && err.cause !== undefined) {
      // A failure of ours: the cause goes to the log (message and stack only; never the
      // request). INTERNAL without a cause is the client's framing error (a compressed flag
      // without grpc-encoding, per the gRPC spec): debug, like other client errors.
      const cause =
        err.cause instanceof Error ? { message: err.cause.message, stack: err.cause.stack } : String(err.cause);
      logger.error({ method: path, code: Code[err.code], cause }, "call failed");
    } else {
      logger.debug({ method: path, code: Code[err.code], detail: err.message }, "call failed");
    }
  }

  // Generated codecs per method (./codec.ts: protobuf-es semantics, several times faster).
  const methodCodecs = new Map<UnaryMethod, { in: MessageCodec<Message>; out: MessageCodec<Message> }>();
  const codecs = (m: UnaryMethod): { in: MessageCodec<Message>; out: MessageCodec<Message> } => {
    let c = methodCodecs.get(m);
    if (c === undefined) {
      c = { in: codecFor(m.input) as MessageCodec<Message>, out: codecFor(m.output) as MessageCodec<Message> };
      methodCodecs.set(m, c);
    }
    return c;
  };

  function handleUnary(stream: H2Stream, headers: H2Headers, method: UnaryMethod): void {
    const startedAt = performance.now();
    tracker.begin();
    let call: UnaryCallContext | undefined;
    let finished = false;
    let timer: NodeJS.Timeout | undefined;

    // `out` is the framed response (gRPC prefix + message).
    const finish = (code: Code, out: Uint8Array | undefined, err: RpcError | undefined): void => {
      if (finished) return;
      finished = true;
      if (timer !== undefined) clearTimeout(timer);
      if (method.rpc !== undefined)
        metrics.observe(method.rpc, outcomeLabel(code), (performance.now() - startedAt) / 1000);
      tracker.end();
      if (err) logFailure(method.path, err);
      if (stream.closed) return;
      if (out === undefined) {
        trailersOnly(stream, code, err?.message ?? "");
        return;
      }
      stream.respondUnary(OK_HEADERS, Buffer.from(out.buffer, out.byteOffset, out.byteLength), OK_TRAILERS);
    };
    const fail = (err: RpcError): void => finish(err.code, undefined, err);

    stream.onclose = () => {
      if (!finished) {
        // The client reset the stream (cancel) or the connection dropped.
        call?.abort(cancelled());
        finish(Code.CANCELLED, undefined, undefined);
      }
    };

    let timeoutMs: number | undefined;
    try {
      timeoutMs = parseGrpcTimeout(headers["grpc-timeout"]);
    } catch (err) {
      fail(toRpcError(err));
      return;
    }
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") {
      fail(new RpcError(Code.UNIMPLEMENTED, `grpc-encoding "${String(encoding)}" is not supported; use identity`));
      return;
    }
    const expire = (): void => {
      const err = deadlineExceeded();
      call?.abort(err);
      fail(err);
    };
    if (timeoutMs !== undefined) timer = armDeadline(timeoutMs, expire);

    const chunks: Buffer[] = [];
    let size = 0;
    stream.ondata = (chunk: Buffer) => {
      if (finished) return;
      size += chunk.length;
      if (size > maxMessageBytes + 5) {
        fail(new RpcError(Code.RESOURCE_EXHAUSTED, `request exceeds the limit of ${maxMessageBytes} bytes`));
        stream.close(H2Error.NO_ERROR);
        return;
      }
      chunks.push(chunk);
    };
    stream.onend = () => {
      if (finished) return;
      let msg: Message;
      try {
        const bytes = unaryMessage(chunks, maxMessageBytes);
        try {
          msg = codecs(method).in.decode(bytes);
        } catch (err) {
          throw new RpcError(
            Code.INVALID_ARGUMENT,
            `request is not a valid ${method.input.typeName}: ${(err as Error).message}`,
            { cause: err },
          );
        }
      } catch (err) {
        fail(toRpcError(err));
        return;
      }
      const ctx = (call = new UnaryCallContext(startedAt, headers.traceparent));
      method.handle(msg, ctx).then(
        (res) => {
          if (finished) return;
          if (pastDeadline(startedAt, timeoutMs)) {
            expire();
            return;
          }
          let out: Uint8Array;
          try {
            out = codecs(method).out.encodeFramed(res);
          } catch (err) {
            fail(toRpcError(err));
            return;
          }
          finish(Code.OK, out, undefined);
        },
        (err: unknown) => fail(toRpcError(err, ctx.signal)),
      );
    };
  }

  /** Server streaming `grpc.health.v1.Health/Watch`: current status, then every change. */
  function handleWatch(stream: H2Stream): void {
    tracker.begin();
    const parser = new FrameParser(maxMessageBytes);
    let unsubscribe: (() => void) | undefined;
    let ended = false;
    const end = (code: Code, message: string): void => {
      if (ended) return;
      ended = true;
      unsubscribe?.();
      deregister();
      tracker.end();
      trailersOnly(stream, code, message);
    };
    const deregister = tracker.addStream(() => {
      // Shutdown: the health state already sent the final NOT_SERVING; end with UNAVAILABLE.
      end(Code.UNAVAILABLE, "server shutting down");
    });
    stream.onclose = () => end(Code.CANCELLED, "");
    let started = false;
    stream.ondata = (chunk: Buffer) => {
      let frames: Uint8Array[];
      try {
        frames = parser.push(chunk);
      } catch (err) {
        end(toRpcError(err).code, toRpcError(err).message);
        return;
      }
      if (started || frames.length === 0) return;
      started = true;
      let service: string;
      try {
        service = fromBinary(HealthCheckRequestSchema, frames[0]!).service;
      } catch {
        end(Code.INVALID_ARGUMENT, "request is not a valid grpc.health.v1.HealthCheckRequest");
        return;
      }
      stream.respond(STREAM_HEADERS);
      const send = (s: ReturnType<HealthState["get"]>): void => {
        if (ended || stream.closed) return;
        stream.write(
          encodeFrame(
            toBinary(HealthCheckResponseSchema, create(HealthCheckResponseSchema, { status: toPbStatus(s) })),
          ),
        );
      };
      send(opts.health.get(service));
      unsubscribe = opts.health.watch(service, send);
    };
    stream.onend = () => {
      // grpc clients half-close right after the request; ending without one is a client error.
      if (!started) end(Code.INVALID_ARGUMENT, "Watch needs one grpc.health.v1.HealthCheckRequest");
    };
  }

  /** Bidi `ServerReflectionInfo` (v1 and v1alpha): one answer per request, OK when the client half-closes. */
  function handleReflection(stream: H2Stream): void {
    tracker.begin();
    const parser = new FrameParser(maxMessageBytes);
    let ended = false;
    const end = (code: Code, message: string): void => {
      if (ended) return;
      ended = true;
      deregister();
      tracker.end();
      trailersOnly(stream, code, message);
    };
    const deregister = tracker.addStream(() => end(Code.UNAVAILABLE, "server shutting down"));
    stream.onclose = () => end(Code.CANCELLED, "");
    stream.ondata = (chunk: Buffer) => {
      if (ended) return;
      try {
        for (const frame of parser.push(chunk)) {
          const req = fromBinary(ServerReflectionRequestSchema, frame);
          const res = opts.reflector.answer(req);
          if (!stream.headersSent) stream.respond(STREAM_HEADERS);
          stream.write(encodeFrame(toBinary(ServerReflectionResponseSchema, res)));
        }
      } catch (err) {
        const e = toRpcError(err);
        end(
          e.code === Code.INTERNAL ? Code.INVALID_ARGUMENT : e.code,
          e.code === Code.INTERNAL ? "malformed reflection request" : e.message,
        );
      }
    };
    stream.onend = () => end(Code.OK, "");
  }

  return function onGrpcStream(stream: H2Stream): void {
    const headers = stream.headers;
    const path = headers[":path"] ?? "";
    if (headers[":method"] !== "POST") {
      trailersOnly(stream, Code.UNIMPLEMENTED, `method ${headers[":method"]} not allowed; gRPC uses POST`);
      return;
    }
    const method = unary.get(path);
    if (method) return handleUnary(stream, headers, method);
    if (path === opts.watchPath) return handleWatch(stream);
    if (opts.reflectionPaths.has(path)) return handleReflection(stream);
    trailersOnly(stream, Code.UNIMPLEMENTED, `unknown method ${path}`);
  };
}
