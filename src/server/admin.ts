/**
 * Admin HTTP listener (`ARBITER_ADMIN_LISTEN`): `/healthz` (process alive), `/readyz` (200 only
 * while a bundle is active and the server is not shutting down), `/metrics` (Prometheus text
 * from the shared registry), `/v1/status` (bundle and audit state as JSON). GET/HEAD only.
 * Paths, URLs and error texts appear only with `ARBITER_ADMIN_VERBOSE=on`.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { ListenTarget } from "../config/config.ts";
import type { EngineStatus } from "../engine/types.ts";

export interface AdminServerOptions {
  readonly registry: Registry;
  readonly engineStatus: () => EngineStatus;
  /** False once shutdown began. */
  readonly accepting: () => boolean;
  /** Extra sections for `/v1/status` (audit stats, transport counts). */
  readonly statusExtra?: () => Record<string, unknown>;
  readonly startedAt: number;
  /**
   * `ARBITER_ADMIN_VERBOSE`: show the bundle source (path or URL) and the last error's text.
   * Default false: only stable reason codes.
   */
  readonly verbose?: boolean;
}

export interface AdminServer {
  listen(target: ListenTarget): Promise<string>;
  close(): Promise<void>;
}

/**
 * The bundle section of /readyz and /v1/status. Without `verbose` it carries no filesystem path,
 * URL or error text (issue #11: whoever reaches the admin port learns nothing about the host),
 * only the stable `lastErrorReason` code; the log keeps the full message.
 */
function bundleView(s: EngineStatus, now: number, verbose: boolean) {
  return {
    ready: s.ready,
    revision: s.revision,
    ...(verbose ? { source: s.source } : { sourceKind: /^https?:\/\//i.test(s.source) ? "http" : "local" }),
    loadedAt: s.loadedAt ? new Date(s.loadedAt).toISOString() : null,
    ageSeconds: s.loadedAt ? Math.round((now - s.loadedAt) / 100) / 10 : null,
    signatureVerification: s.signatureVerification ?? false,
    lastErrorReason: s.lastErrorReason ?? null,
    ...(verbose ? { lastError: s.lastError ?? null } : {}),
    lastErrorAt: s.lastErrorAt ? new Date(s.lastErrorAt).toISOString() : null,
    reloads: s.reloads,
  };
}

export function createAdminServer(options: AdminServerOptions): AdminServer {
  const verbose = options.verbose ?? false;
  const server = http.createServer({ keepAliveTimeout: 5000, requestTimeout: 10_000 }, (req, res) => {
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : body);
    };
    const json = (status: number, body: unknown): void => send(status, "application/json", JSON.stringify(body) + "\n");
    if (req.method !== "GET" && req.method !== "HEAD") {
      json(405, { error: "method not allowed" });
      return;
    }
    const path = (req.url ?? "/").split("?")[0];
    const now = Date.now();
    switch (path) {
      case "/healthz":
        json(200, { status: "alive" });
        return;
      case "/readyz": {
        const s = options.engineStatus();
        const ready = s.ready && options.accepting();
        const reason = !options.accepting() ? "shutting down" : s.ready ? undefined : "no valid bundle active";
        json(ready ? 200 : 503, { ready, ...(reason ? { reason } : {}), bundle: bundleView(s, now, verbose) });
        return;
      }
      case "/metrics":
        options.registry.metrics().then(
          (text) => send(200, options.registry.contentType, text),
          (err: Error) => json(500, { error: `metrics collection failed: ${err.message}` }),
        );
        return;
      case "/v1/status":
        json(200, {
          bundle: bundleView(options.engineStatus(), now, verbose),
          accepting: options.accepting(),
          uptimeSeconds: Math.round((now - options.startedAt) / 1000),
          ...(options.statusExtra?.() ?? {}),
        });
        return;
      default:
        json(404, { error: `not found: ${path}` });
    }
  });
  server.on("clientError", (_e, socket) => socket.destroy());
  return {
    listen(target) {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        const done = (): void => {
          server.off("error", reject);
          if (target.kind === "unix") resolve(`unix:${target.path}`);
          else {
            const a = server.address() as AddressInfo;
            resolve(a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
          }
        };
        if (target.kind === "unix") server.listen(target.path, done);
        else server.listen(target.port, target.host, done);
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
