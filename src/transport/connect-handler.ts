/**
 * Connect protocol, unary only (https://connectrpc.com/docs/protocol): `POST /pkg.Service/Method`
 * with `application/json` or `application/proto`, over HTTP/1.1 or h2c on the gRPC port. Small
 * and allocation-light, so curl and `fetch` work without a gRPC client:
 *
 *   curl -H 'content-type: application/json' -d '{"tenantId":"t1",...}' \
 *     http://127.0.0.1:50051/arbiter.v1.PolicyService/Decide
 *
 * JSON responses include fields at their default values (`"allow": false`), which plain clients
 * find easier to read than the omitted-default form; Connect clients accept both.
 */
import { isUtf8 } from "node:buffer";
import { fromBinary, fromJson, toBinary, toJson, type JsonValue, type Message } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import { armDeadline, pastDeadline } from "./deadline.ts";
import { cancelled, deadlineExceeded, toRpcError } from "./errors.ts";
import { traceIdFrom, type UnaryMethod } from "./methods.ts";
import type { RequestMetrics } from "./metrics.ts";
import { Code, RpcError, connectCodeName, connectHttpStatus, outcomeLabel } from "./status.ts";
import type { CallTracker } from "./grpc-handler.ts";

export interface ConnectRequest {
  readonly method: string;
  readonly path: string;
  readonly contentType: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The body, read fully (bounded by the caller). */
  readonly body: Buffer;
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal;
}

export interface ConnectResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: Buffer | string;
}

export interface ConnectHandlerOptions {
  readonly unary: ReadonlyMap<string, UnaryMethod>;
  readonly metrics: RequestMetrics;
  readonly tracker: CallTracker;
  readonly logger: Logger;
}

function errorResponse(err: RpcError): ConnectResponse {
  return {
    status: connectHttpStatus(err.code),
    contentType: "application/json",
    body: JSON.stringify({ code: connectCodeName(err.code), message: err.message }),
  };
}

export function createConnectHandler(opts: ConnectHandlerOptions) {
  const { unary, metrics, tracker, logger } = opts;

  return async function handleConnect(req: ConnectRequest): Promise<ConnectResponse> {
    const method = unary.get(req.path);
    if (!method) {
      // Connect spec: an unknown procedure is HTTP 404 with code unimplemented.
      const body = JSON.stringify({ code: "unimplemented", message: `unknown procedure ${req.path}` });
      return { status: 404, contentType: "application/json", body };
    }
    if (req.method !== "POST") {
      return {
        status: 405,
        contentType: "application/json",
        body: JSON.stringify({ code: "unimplemented", message: `HTTP method ${req.method} not allowed; use POST` }),
      };
    }
    const ct = req.contentType.split(";")[0]!.trim().toLowerCase();
    const json = ct === "application/json";
    if (!json && ct !== "application/proto") {
      return {
        status: 415,
        contentType: "application/json",
        body: JSON.stringify({
          code: "unimplemented",
          message: `content-type "${req.contentType}" not supported; use application/json or application/proto`,
        }),
      };
    }
    const startedAt = performance.now();
    tracker.begin();
    const controller = new AbortController();
    const onClientAbort = (): void => controller.abort(cancelled());
    req.signal.addEventListener("abort", onClientAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    let code = Code.OK;
    try {
      const enc = req.headers["content-encoding"];
      if (enc !== undefined && enc !== "identity") {
        throw new RpcError(Code.UNIMPLEMENTED, `content-encoding "${String(enc)}" is not supported`);
      }
      const timeoutHeader = req.headers["connect-timeout-ms"];
      const expire = () => {
        const err = deadlineExceeded();
        controller.abort(err);
        return err;
      };
      const deadline = new Promise<never>((_, reject) => {
        if (typeof timeoutHeader === "string") {
          if (!/^\d{1,10}$/.test(timeoutHeader)) {
            reject(new RpcError(Code.INVALID_ARGUMENT, `malformed connect-timeout-ms header "${timeoutHeader}"`));
            return;
          }
          timer = armDeadline(Number(timeoutHeader), () => reject(expire()));
        }
      });
      deadline.catch(() => {});
      let msg: Message;
      try {
        // JSON must be UTF-8 (RFC 8259 8.1); toString would turn bad bytes into U+FFFD and decode
        // a different request than was sent, while the gRPC path rejects them (issue #12 item 7).
        if (json && !isUtf8(req.body)) throw new Error("the body is not valid UTF-8");
        msg = json
          ? fromJson(method.input, JSON.parse(req.body.length === 0 ? "{}" : req.body.toString("utf8")) as JsonValue)
          : fromBinary(method.input, req.body);
      } catch (err) {
        throw new RpcError(
          Code.INVALID_ARGUMENT,
          `request is not a valid ${method.input.typeName}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      const traceId = traceIdFrom(req.headers.traceparent);
      const call =
        traceId === undefined
          ? { signal: controller.signal, startedAt }
          : { signal: controller.signal, startedAt, traceId, traceparent: (req.headers.traceparent as string).trim() };
      const res = await Promise.race([method.handle(msg, call), deadline]);
      if (typeof timeoutHeader === "string" && pastDeadline(startedAt, Number(timeoutHeader))) throw expire();
      return json
        ? {
            status: 200,
            contentType: "application/json",
            body: JSON.stringify(toJson(method.output, res, { alwaysEmitImplicit: true })),
          }
        : { status: 200, contentType: "application/proto", body: Buffer.from(toBinary(method.output, res)) };
    } catch (err) {
      const e = toRpcError(err, controller.signal);
      code = e.code;
      if (e.code === Code.INTERNAL || e.code === Code.UNKNOWN) {
        const cause = e.cause instanceof Error ? { message: e.cause.message, stack: e.cause.stack } : String(e.cause);
        logger.error({ method: req.path, code: Code[e.code], cause }, "call failed");
      }
      return errorResponse(e);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      req.signal.removeEventListener("abort", onClientAbort);
      if (method.rpc !== undefined)
        metrics.observe(method.rpc, outcomeLabel(code), (performance.now() - startedAt) / 1000);
      tracker.end();
    }
  };
}
