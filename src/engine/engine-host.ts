/**
 * The policy engine host: one load path (read -> instantiate through @open-policy-agent/opa-wasm
 * -> validate -> atomic swap) shared by the first load, explicit reloads, file watching and HTTP
 * polling. Loads are serialized; a failed load never replaces the active snapshot.
 */
import { rm, stat } from "node:fs/promises";
import { Counter, Gauge, type Registry } from "prom-client";
import type { Logger } from "pino";
import { DEFAULT_MAX_BUNDLE_BYTES, type BundleParts } from "./bundle-files.ts";
import { buildInWorker } from "./build-in-worker.ts";
import { buildFromSources, partsFromBuild } from "./compiler-bridge.ts";
import type { LoadRequest, LoadSource } from "./load-bundle.ts";
import { LoadWorker, loadHere } from "./load-in-worker.ts";
import type { WorkerLoadReply } from "./load-worker.ts";
import { BundleSignatureError, type BundleVerificationOptions } from "./bundle-signature.ts";
import type { BundleManifest } from "../compiler/index.ts";
import { BundleError, describe } from "./errors.ts";
import { fetchBundle } from "./http-fetch.ts";
import { watchSource, type SourceWatcher } from "./watcher.ts";
import { buildSnapshot, type Snapshot } from "./snapshot.ts";
import { DEFAULT_POLICY_MEMORY } from "./load-policy.ts";
import type { ActivePolicy, EngineHost, EngineHostOptions, EngineListener, EngineStatus, LoadResult } from "./types.ts";

const DEFAULTS = {
  pollIntervalMs: 10_000,
  debounceMs: 200,
  memory: DEFAULT_POLICY_MEMORY,
  timeoutMs: 10_000,
  maxBytes: DEFAULT_MAX_BUNDLE_BYTES,
  evalTimeoutMs: 100,
  maxElements: 1_000_000,
} as const;

/** An `http(s)://` source is polled; anything else is a path (file or directory, told at load). */
function isHttpSource(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

/** `https://user:secret@host/b.tar.gz` -> `https://***:***@host/b.tar.gz`. */
function maskCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (u.username === "" && u.password === "") return url;
    if (u.username !== "") u.username = "***";
    if (u.password !== "") u.password = "***";
    return u.toString();
  } catch {
    return url;
  }
}

function validateOptions(options: EngineHostOptions): void {
  if (typeof options.source !== "string" || options.source.trim() === "") {
    throw new Error("ARBITER_BUNDLE: expected a bundle .tar.gz, a directory or an http(s):// URL, got an empty value");
  }
  if (!Array.isArray(options.requiredEntrypoints)) {
    throw new Error('engine: requiredEntrypoints must be an array of entrypoint names like "arbiter/decide"');
  }
  const positive = (name: string, v: number | undefined): void => {
    if (v !== undefined && (!Number.isFinite(v) || v <= 0))
      throw new Error(`engine: ${name} must be a positive number of milliseconds, got ${v}`);
  };
  positive("pollIntervalMs", options.pollIntervalMs);
  positive("debounceMs", options.debounceMs);
  positive("http.timeoutMs", options.http?.timeoutMs);
  const lim = options.bundleLimits;
  if (lim?.maxBytes !== undefined && !(Number.isInteger(lim.maxBytes) && lim.maxBytes > 0)) {
    throw new Error(`engine: bundleLimits.maxBytes must be a positive integer, got ${lim.maxBytes}`);
  }
  if (lim?.maxElements !== undefined && !(Number.isInteger(lim.maxElements) && lim.maxElements > 0)) {
    throw new Error(`engine: bundleLimits.maxElements must be a positive integer, got ${lim.maxElements}`);
  }
  if (lim?.workerHeapMb !== undefined && !(Number.isInteger(lim.workerHeapMb) && lim.workerHeapMb >= 16)) {
    throw new Error(`engine: bundleLimits.workerHeapMb must be an integer of at least 16, got ${lim.workerHeapMb}`);
  }
  const t = options.evalTimeoutMs;
  if (t !== undefined && !(Number.isInteger(t) && t >= 1 && t <= 60_000)) {
    throw new Error(`engine: evalTimeoutMs must be an integer from 1 to 60000 ms, got ${t}`);
  }
  if (options.http?.maxBytes !== undefined && !(Number.isInteger(options.http.maxBytes) && options.http.maxBytes > 0)) {
    throw new Error(`engine: http.maxBytes must be a positive integer, got ${options.http.maxBytes}`);
  }
  const mem = options.memory;
  if (
    mem !== undefined &&
    !(
      Number.isInteger(mem.initial) &&
      Number.isInteger(mem.maximum) &&
      mem.initial >= 1 &&
      mem.maximum >= mem.initial &&
      mem.maximum <= 65536
    )
  ) {
    throw new Error(
      `engine: memory must be {initial, maximum} wasm pages with 1 <= initial <= maximum <= 65536, got ${JSON.stringify(mem)}`,
    );
  }
}

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export function createEngineHost(options: EngineHostOptions): EngineHost {
  validateOptions(options);
  return new Host(options);
}

class Host implements EngineHost {
  readonly #options: EngineHostOptions;
  readonly #log: Logger;
  readonly #http: boolean;
  /** The source as shown in status, logs and errors: URL credentials masked. */
  readonly #display: string;
  readonly #memory: { initial: number; maximum: number };
  readonly #listeners = new Set<EngineListener>();
  readonly #reloads: Counter<"result">;
  readonly #info: Gauge<"revision">;
  readonly #loadedTs: Gauge;
  readonly #verification: BundleVerificationOptions | undefined;
  readonly #verificationFailures: Counter<"reason">;
  readonly #timeouts: Counter;
  readonly #evalTimeoutMs: number;
  readonly #abort = new AbortController();
  #active: Snapshot | undefined;
  #etag: string | undefined;
  #lastError: string | undefined;
  #lastErrorAt: number | undefined;
  #lastErrorReason: string | undefined;
  #counts = { ok: 0, failed: 0, unchanged: 0 };
  #queue: Promise<void> = Promise.resolve();
  #queued: Promise<void> | undefined;
  #watcher: SourceWatcher | undefined;
  #watchingFile = false;
  #workerUnavailable = false;
  #loadWorkerUnavailable = false;
  readonly #loadWorker: LoadWorker;
  #pollTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: EngineHostOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: "engine" });
    this.#http = isHttpSource(options.source);
    this.#display = this.#http ? maskCredentials(options.source) : options.source;
    this.#memory = { ...(options.memory ?? DEFAULTS.memory) };
    this.#evalTimeoutMs = options.evalTimeoutMs ?? DEFAULTS.evalTimeoutMs;
    this.#loadWorker = new LoadWorker(options.bundleLimits?.workerHeapMb);
    const registry = options.registry;
    this.#reloads = metric(
      registry,
      "arbiter_bundle_reloads_total",
      () =>
        new Counter({
          name: "arbiter_bundle_reloads_total",
          help: "Bundle load attempts by result (ok, failed, unchanged).",
          labelNames: ["result"],
          registers: [registry],
        }),
    );
    this.#info = metric(
      registry,
      "arbiter_bundle_info",
      () =>
        new Gauge({
          name: "arbiter_bundle_info",
          help: "1 for the active bundle revision.",
          labelNames: ["revision"],
          registers: [registry],
        }),
    );
    this.#loadedTs = metric(
      registry,
      "arbiter_bundle_loaded_timestamp_seconds",
      () =>
        new Gauge({
          name: "arbiter_bundle_loaded_timestamp_seconds",
          help: "Unix time at which the active bundle was swapped in.",
          registers: [registry],
        }),
    );
    this.#verification = options.verification;
    this.#verificationFailures = metric(
      registry,
      "arbiter_bundle_verification_failures_total",
      () =>
        new Counter({
          name: "arbiter_bundle_verification_failures_total",
          help: "Bundles refused by signature verification (ARBITER_BUNDLE_VERIFICATION_KEY), by reason.",
          labelNames: ["reason"],
          registers: [registry],
        }),
    );
    this.#timeouts = metric(
      registry,
      "arbiter_evaluation_timeouts_total",
      () =>
        new Counter({
          name: "arbiter_evaluation_timeouts_total",
          help: "Policy evaluations abandoned at the evaluation deadline (ARBITER_EVAL_TIMEOUT_MS).",
          registers: [registry],
        }),
    );
  }

  active(): ActivePolicy | undefined {
    return this.#active;
  }

  status(): EngineStatus {
    const a = this.#active;
    return {
      ready: a !== undefined,
      revision: a?.revision ?? "",
      source: this.#display,
      loadedAt: a?.loadedAt ?? 0,
      lastError: this.#lastError,
      lastErrorAt: this.#lastErrorAt,
      lastErrorReason: this.#lastErrorReason,
      signatureVerification: this.#verification !== undefined,
      reloads: { ...this.#counts },
    };
  }

  onChange(listener: EngineListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  async start(): Promise<void> {
    await this.reload();
    if (this.#closed) return;
    if (this.#http) {
      this.#schedulePoll();
      return;
    }
    if (this.#options.watch === false) return;
    await this.#ensureWatcher();
  }

  /**
   * Watches the source as what it is now: a file (or a missing path, watched in its parent so its
   * creation is noticed) or a directory. Called after start and after each load, so a source
   * that appears later as a directory gets a directory watch.
   */
  async #ensureWatcher(): Promise<void> {
    if (this.#closed || this.#http || this.#options.watch === false) return;
    let isFile = true;
    try {
      isFile = !(await stat(this.#options.source)).isDirectory();
    } catch {
      // Missing source: keep the file-style watch on its parent directory.
    }
    if (this.#closed || (this.#watcher !== undefined && this.#watchingFile === isFile)) return;
    this.#watcher?.close();
    this.#watchingFile = isFile;
    this.#watcher = watchSource({
      path: this.#options.source,
      isFile,
      debounceMs: this.#options.debounceMs ?? DEFAULTS.debounceMs,
      onChange: () => void this.reload(),
      logger: this.#log,
    });
  }

  reload(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#queued) return this.#queued;
    const run = this.#queue.then(async () => {
      this.#queued = undefined;
      if (this.#closed) return;
      await this.#attempt();
      if (this.#watcher !== undefined) await this.#ensureWatcher();
    });
    this.#queued = run;
    this.#queue = run;
    return run;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    this.#watcher?.close();
    if (this.#pollTimer) clearTimeout(this.#pollTimer);
    await this.#queue;
    await this.#loadWorker.close();
  }

  #schedulePoll(): void {
    if (this.#closed) return;
    this.#pollTimer = setTimeout(() => {
      void this.reload().then(() => this.#schedulePoll());
    }, this.#options.pollIntervalMs ?? DEFAULTS.pollIntervalMs);
    this.#pollTimer.unref();
  }

  async #attempt(): Promise<void> {
    const started = performance.now();
    let result: LoadResult;
    try {
      result = await this.#load();
    } catch (err) {
      // Closing aborts an HTTP download in flight: not a failed bundle, nothing to report.
      if (this.#closed) return;
      result = "failed";
      const message = err instanceof BundleError ? err.message : describe(err);
      this.#lastError = message;
      this.#lastErrorAt = Date.now();
      this.#lastErrorReason = err instanceof BundleSignatureError ? `signature_${err.reason}` : "bundle_invalid";
      this.#log.error(
        { err, source: this.#display, revision: this.#active?.revision ?? "" },
        `bundle load failed, keeping the active bundle: ${message}`,
      );
    }
    this.#counts[result]++;
    this.#reloads.inc({ result });
    if (result !== "failed") {
      this.#lastError = undefined;
      this.#lastErrorAt = undefined;
      this.#lastErrorReason = undefined;
    }
    if (result === "unchanged") {
      this.#log.debug({ source: this.#display, revision: this.#active?.revision }, "bundle unchanged");
    } else if (result === "ok") {
      this.#log.info(
        { source: this.#display, revision: this.#active?.revision, ms: Math.round(performance.now() - started) },
        "bundle activated",
      );
    }
    const status = this.status();
    for (const listener of [...this.#listeners]) {
      try {
        listener(status, result);
      } catch (err) {
        // A listener's bug must not break the load loop or the other listeners.
        this.#log.error({ err }, "engine onChange listener threw");
      }
    }
  }

  /**
   * Reads the source and, when it differs from the active bundle, validates and swaps it in. The
   * reading, digesting, decompressing and parsing run in the load worker (`load-in-worker.ts`);
   * this thread only downloads (streamed, bounded), instantiates and validates.
   */
  async #load(): Promise<LoadResult> {
    const limits = {
      maxBytes: this.#options.bundleLimits?.maxBytes ?? this.#options.http?.maxBytes ?? DEFAULTS.maxBytes,
      maxElements: this.#options.bundleLimits?.maxElements ?? DEFAULTS.maxElements,
    };
    const source = this.#options.source;
    let request: LoadSource;
    let etag: string | undefined;
    if (this.#http) {
      const fetched = await fetchBundle(source, {
        etag: this.#active ? this.#etag : undefined,
        timeoutMs: this.#options.http?.timeoutMs ?? DEFAULTS.timeoutMs,
        maxBytes: limits.maxBytes,
        signal: this.#abort.signal,
        label: this.#display,
      });
      if (fetched.status === 304) return "unchanged";
      etag = fetched.etag;
      request = { kind: "bytes", bytes: fetched.bytes };
    } else {
      let info;
      try {
        info = await stat(source);
      } catch (err) {
        throw new BundleError(
          `bundle: cannot read ${source}: ${(err as NodeJS.ErrnoException).code ?? describe(err)}`,
          { cause: err },
        );
      }
      if (!info.isFile() && !info.isDirectory())
        throw new BundleError(`bundle: ${source} is neither a file nor a directory`);
      request = info.isFile() ? { kind: "file", path: source } : { kind: "directory", path: source };
    }
    const reply = await this.#loadOffThread({
      source: request,
      activeDigest: this.#active?.digest,
      limits,
      ...(this.#verification ? { verification: this.#verification } : {}),
    });
    if (!reply.ok) {
      if (reply.signature === undefined) throw new BundleError(reply.message);
      this.#verificationFailures.inc({ reason: reply.signature });
      throw new BundleSignatureError(reply.signature, reply.message.replace(/^bundle signature: /, ""));
    }
    if (reply.kind === "unchanged") {
      if (etag !== undefined) this.#etag = etag;
      return "unchanged";
    }
    let parts: BundleParts;
    if (reply.kind === "rego") {
      try {
        parts = await this.#build(reply.dir, reply.digest);
      } finally {
        if (reply.copy) await rm(reply.dir, { recursive: true, force: true });
      }
    } else {
      if (reply.compileError !== undefined)
        throw new BundleError(`bundle: policy.wasm does not load: ${reply.compileError}`);
      parts = {
        manifest: reply.manifest,
        wasm: reply.wasm,
        // Bounded by ARBITER_BUNDLE_MAX_ELEMENTS in the worker; the data is read on this thread
        // (route config, the pack's data checks) and frozen with the snapshot.
        data: JSON.parse(new TextDecoder().decode(reply.dataJson)) as Record<string, unknown>,
        dataJson: reply.dataJson,
        digest: reply.digest,
        ...(reply.module ? { module: reply.module } : {}),
      };
    }
    const snapshot = await buildSnapshot(parts, {
      requiredEntrypoints: this.#options.requiredEntrypoints,
      ...(this.#options.smokeInputs !== undefined ? { smokeInputs: this.#options.smokeInputs } : {}),
      ...(this.#options.validateData !== undefined ? { validateData: this.#options.validateData } : {}),
      memory: this.#memory,
      evalTimeoutMs: this.#evalTimeoutMs,
      timeouts: this.#timeouts,
      display: this.#display,
    });
    // The swap: one reference assignment. A request holding the previous snapshot finishes on it.
    const previous = this.#active;
    this.#active = snapshot;
    this.#etag = etag;
    if (previous) this.#info.remove({ revision: previous.revision });
    this.#info.set({ revision: snapshot.revision }, 1);
    this.#loadedTs.set(snapshot.loadedAt / 1000);
    return "ok";
  }

  /** The load in a worker; in this thread when no worker can run (or `loadInWorker: false`). */
  async #loadOffThread(request: LoadRequest): Promise<WorkerLoadReply> {
    if (this.#options.loadInWorker !== false && !this.#loadWorkerUnavailable) {
      const outcome = await this.#loadWorker.load(request);
      if (!("unavailable" in outcome)) return outcome;
      this.#loadWorkerUnavailable = true;
      this.#log.warn({ reason: outcome.message }, "load worker unavailable; loading bundles on the main thread");
    }
    return loadHere(request);
  }

  /** Builds Rego sources in a worker thread (main thread when no worker can run). */
  async #build(dir: string, digest: string): Promise<BundleParts> {
    const entrypoints = this.#options.requiredEntrypoints;
    if (this.#options.buildInWorker !== false && !this.#workerUnavailable) {
      const r = await buildInWorker(dir, entrypoints);
      if (r.ok) return partsFromBuild(r.wasm, r.data, r.manifest as BundleManifest, digest);
      if (!("unavailable" in r)) throw new BundleError(`bundle: compiling Rego failed: ${r.message}`);
      this.#workerUnavailable = true;
      this.#log.warn({ reason: r.message }, "build worker unavailable; compiling Rego on the main thread");
    }
    return buildFromSources(dir, entrypoints, digest);
  }
}
