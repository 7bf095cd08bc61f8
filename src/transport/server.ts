/**
 * The gRPC port: one listener (TCP or Unix socket, optionally TLS) serving
 * - gRPC over HTTP/2 (`content-type: application/grpc*`) through the hand-written fast path,
 * - Connect unary JSON/proto over HTTP/2 (h2c) and HTTP/1.1 on the same port.
 *
 * HTTP/2 is Arbiter's own (`./h2/session.ts`), not `node:http2`: measured, node:http2's
 * per-stream cost was larger than the rest of a Decide call (docs/transport.md). HTTP/1.1 is
 * `node:http`. Plaintext connections are told apart by their first bytes (the HTTP/2 preface
 * starts with "PRI "); with TLS, ALPN decides.
 */
import { chmod, rm } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import tls from "node:tls";
import type { DescFile } from "@bufbuild/protobuf";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { file_arbiter_v1_arbiter, PolicyService } from "../../gen/arbiter/v1/arbiter_pb.ts";
import { file_grpc_health_v1_health } from "../../gen/grpc/health/v1/health_pb.ts";
import { file_grpc_reflection_v1_reflection } from "../../gen/grpc/reflection/v1/reflection_pb.ts";
import { file_grpc_reflection_v1alpha_reflection } from "../../gen/grpc/reflection/v1alpha/reflection_pb.ts";
import type { ListenTarget } from "../config/config.ts";
import type { DecisionService } from "../decision/types.ts";
import { createConnectHandler, type ConnectRequest, type ConnectResponse } from "./connect-handler.ts";
import { createConnectionPool, type PoolEntry, type PooledConnection } from "./connection-pool.ts";
import { createGrpcHandler, type CallTracker } from "./grpc-handler.ts";
import { encodeHeaderBlock } from "./h2/hpack.ts";
import { H2Error, H2Session, type H2Stream } from "./h2/session.ts";
import { HEALTH_SERVICE, healthCheckMethod, type HealthState } from "./health.ts";
import { listenOn, removeStaleSocket } from "./listen.ts";
import { policyMethods, type UnaryMethod } from "./methods.ts";
import { createRequestMetrics } from "./metrics.ts";
import { createReflector, REFLECTION_V1, REFLECTION_V1ALPHA } from "./reflection.ts";
import { readBody, readStreamBody, settleBy, tooLarge } from "./request-body.ts";
import { createRequestValidator } from "./validate.ts";

export interface TlsOptions {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** When set, clients must present a certificate signed by this CA (mTLS). */
  readonly clientCa?: Buffer;
}

export interface TransportServerOptions {
  readonly service: DecisionService;
  readonly health: HealthState;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Largest request message accepted, bytes. Default 4 MiB (gRPC's customary limit). */
  readonly maxMessageBytes?: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection. Default 1000. */
  readonly maxConcurrentStreams?: number;
  /**
   * Connections held at once; at the cap a new one sheds the connection idle the longest
   * (./connection-pool.ts). Default 1024.
   */
  readonly maxConnections?: number;
  /** Accept to the end of the handshake (first bytes, TLS, HTTP/2 preface + SETTINGS). Default 10 s. */
  readonly handshakeTimeoutMs?: number;
  /** A connection with no open stream or request is closed after this. Default 300 s. */
  readonly idleTimeoutMs?: number;
  /** HTTP/1.1: time to receive a request's headers (node:http `headersTimeout`). Default 10 s. */
  readonly http1HeadersTimeoutMs?: number;
  /** HTTP/1.1: idle keep-alive connection lifetime (node:http `keepAliveTimeout`). Default 5 s. */
  readonly http1KeepAliveTimeoutMs?: number;
  readonly tls?: TlsOptions;
  /** Serve only grpc.health.v1.Health (and reflection): the plaintext probe listener. */
  readonly healthOnly?: boolean;
}

export interface TransportServer {
  /** Starts listening; resolves with the bound address (`host:port` or `unix:/path`). */
  listen(target: ListenTarget): Promise<string>;
  /** Bound TCP port (after listen), undefined for a Unix socket. */
  readonly port: number | undefined;
  /** Calls and streams in progress. */
  inFlight(): number;
  /**
   * Graceful stop: no new connections, GOAWAY to HTTP/2 peers, long-lived streams ended, then
   * waits up to `timeoutMs` for in-flight calls before destroying what is left.
   * Resolves `{ forced }`: true when the deadline cut calls off.
   */
  close(timeoutMs: number): Promise<{ forced: boolean }>;
}

const DEFAULT_MAX_MESSAGE = 4 * 1024 * 1024;
const PRI = Buffer.from("PRI", "latin1");

/** Files served by reflection (their dependencies follow automatically). */
const REFLECTED_FILES: DescFile[] = [
  file_arbiter_v1_arbiter,
  file_grpc_health_v1_health,
  file_grpc_reflection_v1_reflection,
  file_grpc_reflection_v1alpha_reflection,
];

export function createTransportServer(options: TransportServerOptions): TransportServer {
  const logger = options.logger;
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE;
  const metrics = createRequestMetrics(options.registry);
  const validator = createRequestValidator();
  const unary = new Map<string, UnaryMethod>();
  if (!options.healthOnly) for (const m of policyMethods(options.service, validator)) unary.set(m.path, m);
  const check = healthCheckMethod(options.health);
  unary.set(check.path, check);

  let inFlight = 0;
  let drained: (() => void) | undefined;
  const streams = new Set<() => void>();
  const tracker: CallTracker = {
    begin() {
      inFlight++;
    },
    end() {
      inFlight--;
      if (inFlight === 0) drained?.();
    },
    addStream(terminate) {
      streams.add(terminate);
      return () => streams.delete(terminate);
    },
  };

  const services = [PolicyService.typeName, HEALTH_SERVICE, REFLECTION_V1, REFLECTION_V1ALPHA];
  const onGrpc = createGrpcHandler({
    unary,
    health: options.health,
    reflector: createReflector(REFLECTED_FILES, services),
    reflectionPaths: new Set([`/${REFLECTION_V1}/ServerReflectionInfo`, `/${REFLECTION_V1ALPHA}/ServerReflectionInfo`]),
    watchPath: `/${HEALTH_SERVICE}/Watch`,
    maxMessageBytes,
    metrics,
    tracker,
    logger,
  });
  const onConnect = createConnectHandler({ unary, metrics, tracker, logger });
  /**
   * One Connect unary call, the same on HTTP/2 and HTTP/1.1: the body read (bounded; over the
   * limit answers 413 without running the handler), the handler run, then `respond`; `fail` when
   * the handler itself throws (a bug: logged, the stream or socket torn down).
   */
  const serveConnect = (
    read: Promise<Buffer>,
    head: Omit<ConnectRequest, "body">,
    respond: (res: ConnectResponse) => void,
    fail: () => void,
  ): void => {
    read
      .then(
        (body) =>
          onConnect({
            method: head.method,
            path: head.path,
            contentType: head.contentType,
            headers: head.headers,
            body,
            signal: head.signal,
          }),
        (): ConnectResponse => tooLarge(maxMessageBytes),
      )
      .then(respond, (err: unknown) => {
        logger.error({ err: (err as Error).message }, "connect handler failed");
        fail();
      });
  };

  let closing = false;
  const maxConnections = options.maxConnections ?? 1024;
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
  const pool = createConnectionPool({
    maxConnections,
    handshakeTimeoutMs,
    idleTimeoutMs: options.idleTimeoutMs ?? 300_000,
    onShed: (reason) => logger.debug({ reason }, "connection shed"),
  });
  /** Each socket's pool entry, and how to shed it (changed once the protocol is known). */
  const pooled = new WeakMap<net.Socket, { entry: PoolEntry; conn: PooledConnection }>();
  /** Registers an accepted socket with the pool; false (socket destroyed) when the pool is full of busy connections. */
  const admit = (socket: net.Socket): boolean => {
    const conn: PooledConnection = { shed: () => socket.destroy() };
    const entry = pool.add(conn);
    if (entry === undefined) {
      logger.debug("connection refused: every held connection is busy");
      socket.destroy();
      return false;
    }
    pooled.set(socket, { entry, conn });
    socket.once("close", () => entry.remove());
    return true;
  };

  // ---- HTTP/2 ----
  const sessions = new Set<H2Session>();
  let sessionsGone: (() => void) | undefined;
  const onStream = (stream: H2Stream): void => {
    const headers = stream.headers;
    const ct = headers["content-type"];
    if (typeof ct === "string" && ct.startsWith("application/grpc")) {
      if (ct === "application/grpc" || ct.startsWith("application/grpc+proto") || ct.startsWith("application/grpc;")) {
        onGrpc(stream);
      } else {
        stream.respond(
          encodeHeaderBlock([
            [":status", "415"],
            ["content-type", "text/plain"],
          ]),
        );
        stream.write(Buffer.from(`content-type "${ct}" not supported; use application/grpc+proto`), true);
      }
      return;
    }
    // Connect unary over h2c.
    const controller = new AbortController();
    serveConnect(
      readStreamBody(stream, maxMessageBytes, () => controller.abort()),
      {
        method: String(headers[":method"]),
        path: String(headers[":path"]).split("?")[0]!,
        contentType: String(ct ?? ""),
        headers,
        signal: controller.signal,
      },
      (res) => {
        if (stream.closed) return;
        stream.respond(
          encodeHeaderBlock([
            [":status", String(res.status)],
            ["content-type", res.contentType],
          ]),
        );
        stream.write(typeof res.body === "string" ? Buffer.from(res.body) : res.body, true);
      },
      () => stream.close(H2Error.INTERNAL_ERROR),
    );
  };
  const startSession = (socket: net.Socket, firstBytes?: Buffer): void => {
    const p = pooled.get(socket);
    const session = new H2Session(
      socket,
      {
        maxConcurrentStreams: options.maxConcurrentStreams ?? 1000,
        maxHeaderListSize: 64 * 1024,
        maxSessionMemory: 32 * 1024 * 1024,
        maxResetsPerSecond: 10_000,
        onStream,
        ...(p !== undefined
          ? { onReady: () => p.entry.idle(), onActivity: (busy: boolean) => (busy ? p.entry.busy() : p.entry.idle()) }
          : {}),
        onClose: () => {
          sessions.delete(session);
          if (sessions.size === 0) sessionsGone?.();
        },
        onError: (message) => logger.debug({ err: message }, "http2 connection error"),
      },
      firstBytes,
    );
    sessions.add(session);
    if (p !== undefined) p.conn.shed = () => session.close();
    if (closing) session.close();
  };

  // ---- HTTP/1.1 (Connect only) ----
  const headersTimeout = options.http1HeadersTimeoutMs ?? 10_000;
  const h1 = http.createServer({
    keepAliveTimeout: options.http1KeepAliveTimeoutMs ?? 5000,
    headersTimeout,
    // node:http refuses a headersTimeout above requestTimeout.
    requestTimeout: Math.max(60_000, headersTimeout),
    // How often node:http checks headersTimeout (default 30 s, which would let a slow client
    // hold its socket up to 30 s past the timeout).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, headersTimeout / 4)),
  });
  // node:http enforces headersTimeout/requestTimeout (and closeIdleConnections finds sockets)
  // only for connections it tracks, and it starts tracking on its own 'listening' event. This
  // server never listens (sockets are handed to it), so without this none of those timeouts
  // ever fired: a client that sent half a request line held its socket forever (issue #12).
  h1.emit("listening");
  h1.on("request", (req, res) => {
    const entry = pooled.get(req.socket)?.entry;
    if (entry !== undefined) {
      entry.busy();
      res.once("close", () => entry.idle());
    }
    const ct = String(req.headers["content-type"] ?? "");
    if (ct.startsWith("application/grpc")) {
      res.writeHead(505, { "content-type": "text/plain" }).end("gRPC requires HTTP/2\n");
      return;
    }
    const controller = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) controller.abort();
    });
    serveConnect(
      readBody(req, maxMessageBytes),
      {
        method: req.method ?? "GET",
        path: (req.url ?? "/").split("?")[0]!,
        contentType: ct,
        headers: req.headers,
        signal: controller.signal,
      },
      (r) => {
        if (res.destroyed) return;
        const headers: Record<string, string> = { "content-type": r.contentType };
        if (closing) headers.connection = "close";
        res.writeHead(r.status, headers).end(r.body);
      },
      () => res.destroy(),
    );
  });
  h1.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    const status = err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? "408 Request Timeout" : "400 Bad Request";
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\n\r\n`);
    else socket.destroy();
  });

  // ---- socket dispatch ----
  const sockets = new Set<net.Socket>();
  const dispatchPlain = (socket: net.Socket): void => {
    socket.on("error", () => {});
    // A peer that connects and says nothing is shed by the pool's handshake timeout.
    if (!admit(socket)) return;
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    let head: Buffer | undefined;
    socket.on("data", function first(data: Buffer) {
      // The first read may hold fewer than 3 bytes ("P", "PR": a client writing byte by byte is
      // legal); keep reading until the bytes tell HTTP/2 from HTTP/1.1.
      const chunk = head === undefined ? data : Buffer.concat([head, data]);
      if (chunk.length < 3 && PRI.subarray(0, chunk.length).equals(chunk)) {
        head = chunk;
        return;
      }
      socket.off("data", first);
      socket.pause();
      if (chunk.length >= 3 && chunk[0] === 0x50 && chunk[1] === 0x52 && chunk[2] === 0x49) {
        // "PRI": the HTTP/2 preface.
        startSession(socket, chunk);
        socket.resume();
      } else {
        // HTTP/1.1: from here node:http's headersTimeout bounds a request's headers.
        pooled.get(socket)?.entry.idle();
        // node:http consumes the socket handle natively; hand it the first chunk by hand.
        h1.emit("connection", socket);
        socket.emit("data", chunk);
        socket.resume();
      }
    });
  };

  let listener: net.Server;
  if (options.tls) {
    const t = options.tls;
    listener = tls.createServer(
      {
        cert: t.cert,
        key: t.key,
        ALPNProtocols: ["h2", "http/1.1"],
        ...(t.clientCa ? { ca: t.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
        handshakeTimeout: handshakeTimeoutMs,
      },
      (socket) => {
        socket.on("error", () => {});
        if (!admit(socket)) return;
        sockets.add(socket);
        socket.once("close", () => sockets.delete(socket));
        if (socket.alpnProtocol === "h2") {
          startSession(socket);
        } else {
          pooled.get(socket)?.entry.idle();
          h1.emit("connection", socket);
        }
      },
    );
    listener.on("tlsClientError", (err: Error) => logger.debug({ err: err.message }, "TLS handshake failed"));
  } else {
    listener = net.createServer(dispatchPlain);
  }
  // A backstop on sockets the pool does not see yet (TLS handshakes) or still closing after a
  // shed (an HTTP/2 connection gets up to 2 s to read its GOAWAY).
  listener.maxConnections = 2 * maxConnections;
  listener.on("error", (err) => logger.error({ err: err.message }, "listener error"));

  let boundPort: number | undefined;
  let unixPath: string | undefined;

  return {
    get port() {
      return boundPort;
    },
    inFlight: () => inFlight,

    async listen(target) {
      if (target.kind === "unix") {
        await removeStaleSocket(target.path);
        await listenOn(listener, { path: target.path });
        await chmod(target.path, 0o660);
        unixPath = target.path;
        return `unix:${target.path}`;
      }
      await listenOn(listener, { host: target.host, port: target.port });
      const addr = listener.address() as net.AddressInfo;
      boundPort = addr.port;
      return addr.family === "IPv6" ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}`;
    },

    async close(timeoutMs) {
      closing = true;
      pool.close();
      const listenerClosed = new Promise<void>((resolve) => listener.close(() => resolve()));
      for (const s of sessions) s.close();
      for (const terminate of [...streams]) terminate();
      streams.clear();
      h1.closeIdleConnections();
      const deadline = performance.now() + timeoutMs;
      let forced = false;
      if (inFlight > 0) {
        const done = new Promise<void>((resolve) => (drained = resolve));
        forced = !(await settleBy(done, deadline));
      }
      // Answers just written still have to leave: let HTTP/2 sessions (GOAWAY sent) close on
      // their own, briefly, before tearing down what is left.
      if (sessions.size > 0) {
        const allClosed = new Promise<void>((resolve) => (sessionsGone = resolve));
        await settleBy(allClosed, Math.min(deadline, performance.now() + 1000));
      }
      for (const s of sessions) s.destroy();
      h1.closeAllConnections();
      for (const s of sockets) s.destroy();
      await listenerClosed;
      if (unixPath !== undefined) await rm(unixPath, { force: true });
      return { forced };
    },
  };
}
