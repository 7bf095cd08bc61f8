/**
 * The policy engine host: one load path (read -> instantiate through @open-policy-agent/opa-wasm
 * -> validate -> atomic swap) shared by the first load, explicit reloads, file watching and HTTP
 * polling. Loads are serialized; a failed load never replaces the active snapshot.
 */
import { mkdir, mkdtemp, realpath, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { loadPolicy } from "@open-policy-agent/opa-wasm";
import { Counter, Gauge, type Registry } from "prom-client";
import type { Logger } from "pino";
import {
  DEFAULT_MAX_BUNDLE_BYTES,
  digestBytes,
  digestFiles,
  readDirectoryFiles,
  type BundleFiles,
  type BundleParts,
} from "./bundle-files.ts";
import { BundleSignatureError, verifyBundleSignature, type BundleVerificationOptions } from "./bundle-signature.ts";
import { buildInWorker } from "./build-in-worker.ts";
import { buildFromSources, hostBuiltinMap, partsFromBuild, readBundleParts, unpackBundleFiles } from "./compiler-bridge.ts";
import type { BundleManifest } from "../compiler/index.ts";
import { BundleError, describe, wrapError } from "./errors.ts";
import { fetchBundle } from "./http-fetch.ts";
import { checkArbiterConfig, deepFreeze, defaultSmokeInput } from "./validate.ts";
import { watchSource, type SourceWatcher } from "./watcher.ts";
import type {
  ActivePolicy,
  EngineHost,
  EngineHostOptions,
  EngineListener,
  EngineStatus,
  LoadResult,
} from "./types.ts";

const DEFAULTS = {
  pollIntervalMs: 10_000,
  debounceMs: 200,
  memory: { initial: 5, maximum: 1024 },
  timeoutMs: 10_000,
  maxBytes: DEFAULT_MAX_BUNDLE_BYTES,
} as const;

/** The SDK's loaded policy, as much of it as the host uses. */
interface SdkPolicy {
  evaluate(input: unknown, entrypoint: string): unknown;
  setData(data: unknown): void;
  entrypoints: Record<string, number>;
}

type SourceKind = "http" | "file" | "directory";

function classify(source: string): SourceKind | undefined {
  if (/^https?:\/\//i.test(source)) return "http";
  return undefined;
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
    throw new Error("engine: requiredEntrypoints must be an array of entrypoint names like \"arbiter/decide\"");
  }
  const positive = (name: string, v: number | undefined): void => {
    if (v !== undefined && (!Number.isFinite(v) || v <= 0)) throw new Error(`engine: ${name} must be a positive number of milliseconds, got ${v}`);
  };
  positive("pollIntervalMs", options.pollIntervalMs);
  positive("debounceMs", options.debounceMs);
  positive("http.timeoutMs", options.http?.timeoutMs);
  if (options.http?.maxBytes !== undefined && !(Number.isInteger(options.http.maxBytes) && options.http.maxBytes > 0)) {
    throw new Error(`engine: http.maxBytes must be a positive integer, got ${options.http.maxBytes}`);
  }
  const mem = options.memory;
  if (mem !== undefined && !(Number.isInteger(mem.initial) && Number.isInteger(mem.maximum) && mem.initial >= 1 && mem.maximum >= mem.initial && mem.maximum <= 65536)) {
    throw new Error(`engine: memory must be {initial, maximum} wasm pages with 1 <= initial <= maximum <= 65536, got ${JSON.stringify(mem)}`);
  }
}

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/** A bundle source as read: its files, their digest, and the directory they came from (if any). */
interface SourceFiles {
  readonly files: BundleFiles;
  readonly digest: string;
  readonly dir: string | undefined;
}

interface Snapshot extends ActivePolicy {
  readonly digest: string;
}

export function createEngineHost(options: EngineHostOptions): EngineHost {
  validateOptions(options);
  return new Host(options);
}

class Host implements EngineHost {
  readonly #options: EngineHostOptions;
  readonly #log: Logger;
  readonly #kind: SourceKind | undefined;
  /** The source as shown in status, logs and errors: URL credentials masked. */
  readonly #display: string;
  readonly #memory: { initial: number; maximum: number };
  readonly #listeners = new Set<EngineListener>();
  readonly #reloads: Counter<"result">;
  readonly #info: Gauge<"revision">;
  readonly #loadedTs: Gauge;
  readonly #verification: BundleVerificationOptions | undefined;
  readonly #verificationFailures: Counter<"reason">;
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
  #pollTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: EngineHostOptions) {
    this.#options = options;
    this.#log = options.logger.child({ component: "engine" });
    this.#kind = classify(options.source);
    this.#display = this.#kind === "http" ? maskCredentials(options.source) : options.source;
    this.#memory = { ...(options.memory ?? DEFAULTS.memory) };
    const registry = options.registry;
    this.#reloads = metric(registry, "arbiter_bundle_reloads_total", () => new Counter({
      name: "arbiter_bundle_reloads_total",
      help: "Bundle load attempts by result (ok, failed, unchanged).",
      labelNames: ["result"],
      registers: [registry],
    }));
    this.#info = metric(registry, "arbiter_bundle_info", () => new Gauge({
      name: "arbiter_bundle_info",
      help: "1 for the active bundle revision.",
      labelNames: ["revision"],
      registers: [registry],
    }));
    this.#loadedTs = metric(registry, "arbiter_bundle_loaded_timestamp_seconds", () => new Gauge({
      name: "arbiter_bundle_loaded_timestamp_seconds",
      help: "Unix time at which the active bundle was swapped in.",
      registers: [registry],
    }));
    this.#verification = options.verification;
    this.#verificationFailures = metric(registry, "arbiter_bundle_verification_failures_total", () => new Counter({
      name: "arbiter_bundle_verification_failures_total",
      help: "Bundles refused by signature verification (ARBITER_BUNDLE_VERIFICATION_KEY), by reason.",
      labelNames: ["reason"],
      registers: [registry],
    }));
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
    if (this.#kind === "http") {
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
    if (this.#closed || this.#kind === "http" || this.#options.watch === false) return;
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
      this.#log.error({ err, source: this.#display, revision: this.#active?.revision ?? "" }, `bundle load failed, keeping the active bundle: ${message}`);
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
      this.#log.info({ source: this.#display, revision: this.#active?.revision, ms: Math.round(performance.now() - started) }, "bundle activated");
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

  /** Reads the source and, when it differs from the active bundle, validates and swaps it in. */
  async #load(): Promise<LoadResult> {
    const maxBytes = this.#options.http?.maxBytes ?? DEFAULTS.maxBytes;
    const source = this.#options.source;
    let read: SourceFiles;
    let etag: string | undefined;
    if (this.#kind === "http") {
      const fetched = await fetchBundle(source, {
        etag: this.#active ? this.#etag : undefined,
        timeoutMs: this.#options.http?.timeoutMs ?? DEFAULTS.timeoutMs,
        maxBytes,
        signal: this.#abort.signal,
        label: this.#display,
      });
      if (fetched.status === 304) return "unchanged";
      etag = fetched.etag;
      const digest = digestBytes(fetched.bytes);
      if (this.#active && digest === this.#active.digest) {
        if (etag !== undefined) this.#etag = etag;
        return "unchanged";
      }
      read = { files: unpackBundleFiles(fetched.bytes), digest, dir: undefined };
    } else {
      const local = await this.#readLocal(source, maxBytes);
      if (local === "unchanged") return "unchanged";
      read = local;
    }
    if (this.#active && read.digest === this.#active.digest) {
      if (etag !== undefined) this.#etag = etag;
      return "unchanged";
    }
    // The signature check: over exactly the bytes just read, before anything parses them.
    if (this.#verification) await this.#verify(read.files);
    const parts = await this.#parts(read);
    const snapshot = await this.#instantiate(parts);
    // The swap: one reference assignment. A request holding the previous snapshot finishes on it.
    const previous = this.#active;
    this.#active = snapshot;
    this.#etag = etag;
    if (previous) this.#info.remove({ revision: previous.revision });
    this.#info.set({ revision: snapshot.revision }, 1);
    this.#loadedTs.set(snapshot.loadedAt / 1000);
    return "ok";
  }

  async #verify(files: BundleFiles): Promise<void> {
    try {
      await verifyBundleSignature(files, this.#verification!);
    } catch (err) {
      if (err instanceof BundleSignatureError) this.#verificationFailures.inc({ reason: err.reason });
      throw err;
    }
  }

  async #readLocal(source: string, maxBytes: number): Promise<SourceFiles | "unchanged"> {
    let info;
    try {
      info = await stat(source);
    } catch (err) {
      throw new BundleError(`bundle: cannot read ${source}: ${(err as NodeJS.ErrnoException).code ?? describe(err)}`, { cause: err });
    }
    if (info.isFile()) {
      if (info.size > maxBytes) throw new BundleError(`bundle: ${source} is larger than ${maxBytes} bytes`);
      const bytes = await readFile(source);
      const digest = digestBytes(bytes);
      if (this.#active && digest === this.#active.digest) return "unchanged";
      return { files: unpackBundleFiles(bytes), digest, dir: undefined };
    }
    if (!info.isDirectory()) throw new BundleError(`bundle: ${source} is neither a file nor a directory`);
    // Kubernetes ConfigMap layout: read through the resolved `..data` target so one reload sees
    // one consistent generation even if kubelet swaps the symlink meanwhile.
    let dir = source;
    try {
      dir = await realpath(join(source, "..data"));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const files = await readDirectoryFiles(dir, maxBytes);
    const digest = digestFiles(files);
    if (this.#active && this.#active.digest === digest) return "unchanged";
    return { files, digest, dir };
  }

  /** Bundle parts from the files read: a built bundle is parsed, a directory of Rego compiled. */
  async #parts(read: SourceFiles): Promise<BundleParts> {
    const { files, digest, dir } = read;
    // A built bundle may ship its Rego sources too: the wasm is what runs.
    if (dir === undefined || files.has("policy.wasm") || files.has(".manifest")) return readBundleParts(files, digest);
    if (![...files.keys()].some((p) => p.endsWith(".rego"))) {
      throw new BundleError(`bundle: ${this.#options.source} has no .manifest, policy.wasm or .rego files`);
    }
    if (!this.#verification) return this.#build(dir, digest);
    // Verified sources are compiled from a private copy of the bytes that were verified, so a
    // file changed on disk after the check can never reach the compiler.
    const copy = await mkdtemp(join(tmpdir(), "arbiter-verified-"));
    try {
      for (const [name, bytes] of files) {
        const target = join(copy, ...name.split("/"));
        await mkdir(dirname(target), { recursive: true });
        await writeFile(target, bytes, { mode: 0o600 });
      }
      return await this.#build(copy, digest);
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
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

  async #instantiate(parts: BundleParts): Promise<Snapshot> {
    let policy: SdkPolicy;
    try {
      policy = (await loadPolicy(parts.wasm, { ...this.#memory }, hostBuiltinMap() as never)) as unknown as SdkPolicy;
    } catch (err) {
      throw new BundleError(`bundle: policy.wasm does not load: ${describe(err)}`, { cause: err });
    }
    try {
      policy.setData(parts.data);
    } catch (err) {
      throw new BundleError(`bundle: data does not load into the policy: ${describe(err)}`, { cause: err });
    }
    const moduleEntrypoints = Object.keys(policy.entrypoints).sort();
    const declared = new Set(parts.manifest.wasm.map((w) => w.entrypoint));
    for (const ep of this.#options.requiredEntrypoints) {
      if (declared.size > 0 && !declared.has(ep)) {
        throw new BundleError(`bundle: manifest does not declare required entrypoint ${ep} (declares ${[...declared].sort().join(", ")})`);
      }
      if (!moduleEntrypoints.includes(ep)) {
        throw new BundleError(`bundle: policy.wasm does not export required entrypoint ${ep} (exports ${moduleEntrypoints.join(", ")})`);
      }
    }
    const dataErrors = [...checkArbiterConfig(parts.data)];
    if (this.#options.validateData) {
      try {
        dataErrors.push(...this.#options.validateData(parts.data));
      } catch (err) {
        throw wrapError("bundle: data validation threw", err);
      }
    }
    if (dataErrors.length > 0) throw new BundleError(`bundle: invalid data: ${dataErrors.join("; ")}`);
    for (const ep of this.#options.requiredEntrypoints) {
      const input = this.#options.smokeInputs?.[ep] ?? defaultSmokeInput(ep);
      let rs: unknown;
      try {
        rs = policy.evaluate(input, ep);
      } catch (err) {
        throw new BundleError(`bundle: smoke evaluation of ${ep} failed: ${describe(err)}`, { cause: err });
      }
      if (!Array.isArray(rs)) throw new BundleError(`bundle: smoke evaluation of ${ep} returned no result set`);
    }
    const revision = parts.manifest.revision !== "" ? parts.manifest.revision : `sha256:${parts.digest.slice(0, 12)}`;
    const entrypoints = new Set(moduleEntrypoints);
    const data = deepFreeze(parts.data);
    const snapshot: Snapshot = Object.freeze({
      revision,
      loadedAt: Date.now(),
      source: this.#display,
      data,
      entrypoints: Object.freeze(moduleEntrypoints),
      digest: parts.digest,
      evaluate(entrypoint: string, input: unknown): unknown {
        if (!entrypoints.has(entrypoint)) {
          throw new Error(`entrypoint ${entrypoint} is not in bundle revision ${revision}`);
        }
        try {
          return policy.evaluate(input, entrypoint);
        } catch (err) {
          throw wrapError(`evaluating ${entrypoint} (revision ${revision})`, err);
        }
      },
    });
    return snapshot;
  }
}
