/**
 * Public types of the policy engine host: it loads an OPA wasm bundle, validates it, swaps it in
 * atomically, and keeps it fresh (file/directory watch or HTTP polling). The decision core reads
 * `active()` once per request and evaluates synchronously on that snapshot.
 */
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { BundleVerificationOptions } from "./bundle-signature.ts";

/** Checks bundle data before a swap; returns error messages naming the data path (empty: fine). */
export type DataValidator = (data: unknown) => string[];

export interface EngineHostOptions {
  /**
   * `ARBITER_BUNDLE`: a bundle `.tar.gz`, a bundle directory (has `.manifest` or `policy.wasm`),
   * a directory of `.rego` sources (compiled in-process), or an `http(s)://` URL.
   */
  readonly source: string;
  /**
   * Entrypoints a bundle must declare and evaluate without throwing, e.g. `arbiter/decide`
   * (Arbiter's are in `decision/contract.ts`; the engine knows no entrypoint names itself).
   */
  readonly requiredEntrypoints: readonly string[];
  /**
   * Smoke inputs per entrypoint for the pre-swap evaluation; entrypoints without one get `{}`.
   * Arbiter's representative inputs are `SMOKE_INPUTS` in `decision/contract.ts`.
   */
  readonly smokeInputs?: Readonly<Record<string, unknown>>;
  /** HTTP polling interval in ms (`ARBITER_BUNDLE_POLL_SECONDS` * 1000). Default 10000. */
  readonly pollIntervalMs?: number;
  /** Quiet time after the last file event before a reload, in ms. Default 200. */
  readonly debounceMs?: number;
  /** Watch file/directory sources for changes. Default true. */
  readonly watch?: boolean;
  /**
   * Compile a directory of `.rego` sources in a worker thread so requests keep flowing during the
   * build (falls back to the main thread when no worker can start). Default true.
   */
  readonly buildInWorker?: boolean;
  /**
   * Read, decompress and parse bundles in a worker thread with its own heap limit (issue #12;
   * falls back to the main thread when no worker can start). Default true.
   */
  readonly loadInWorker?: boolean;
  /**
   * Data checks run before a swap (any message refuses the bundle). Arbiter's contract checks
   * plus the default pack's come from `engineContract(validatePackData)` in `decision/contract.ts`.
   */
  readonly validateData?: DataValidator;
  /** Wasm memory bounds in 64 KiB pages. Default `{ initial: 5, maximum: 1024 }` (64 MiB). */
  readonly memory?: { readonly initial: number; readonly maximum: number };
  /**
   * Deadline of one policy evaluation in ms (`ARBITER_EVAL_TIMEOUT_MS`), 1..60000, default 100.
   * Past it the evaluation is abandoned with an `EvaluationTimeoutError` and the module
   * instance is replaced; the smoke evaluation of a new bundle runs under it too.
   */
  readonly evalTimeoutMs?: number;
  /**
   * Resource limits of a bundle load (issue #12): `maxBytes` bounds the bytes read (archive,
   * directory, HTTP body) and, separately, the decompressed archive (`ARBITER_BUNDLE_MAX_BYTES`,
   * default 64 MiB, overriding `http.maxBytes`); `maxElements` bounds the JSON values of all data
   * and manifest files together (`ARBITER_BUNDLE_MAX_ELEMENTS`, default 1,000,000); nesting is
   * bounded at `MAX_JSON_DEPTH`. A bundle over a limit is refused in the load worker.
   */
  readonly bundleLimits?: {
    readonly maxBytes?: number;
    readonly maxElements?: number;
    /** Old-generation heap limit of the load worker in MiB. Default 512 (`LOAD_WORKER_HEAP_MB`). */
    readonly workerHeapMb?: number;
  };
  /** HTTP: per-request timeout in ms (default 10000) and maximum body size (default 64 MiB). */
  readonly http?: { readonly timeoutMs?: number; readonly maxBytes?: number };
  /**
   * OPA bundle signature verification (`ARBITER_BUNDLE_VERIFICATION_*`): when set, every bundle
   * from every source must carry a valid `.signatures.json` covering all of its files, or it is
   * refused and the active bundle stays. Undefined: signatures are not checked.
   */
  readonly verification?: BundleVerificationOptions;
  readonly logger: Logger;
  readonly registry: Registry;
}

/** An immutable snapshot of one loaded bundle. Keep the reference for the whole request. */
export interface ActivePolicy {
  /** Manifest revision, or `sha256:<12 hex>` of the bundle content when the manifest has none. */
  readonly revision: string;
  /**
   * Evaluates an entrypoint synchronously and returns the result set (`[]` when undefined,
   * `[{result}]` otherwise). Throws an `Error` (never a bare string) when evaluation fails.
   */
  evaluate(entrypoint: string, input: unknown): unknown;
  /** Wall-clock ms at which this revision became active. */
  readonly loadedAt: number;
  /** Where it was loaded from (path or URL). */
  readonly source: string;
  /** The bundle's data document (deep-frozen). */
  readonly data: unknown;
  /** Entrypoints the module exports. */
  readonly entrypoints: readonly string[];
}

export interface EngineStatus {
  /** True once a bundle is active; stays true after later failed reloads (the old one serves). */
  readonly ready: boolean;
  /** Active revision, "" when none. */
  readonly revision: string;
  readonly source: string;
  /** Wall-clock ms of the active bundle's swap, 0 when none. */
  readonly loadedAt: number;
  /**
   * Message of the last failed load attempt; cleared by the next attempt that ends `ok` or
   * `unchanged` (the source is good again).
   */
  readonly lastError: string | undefined;
  readonly lastErrorAt: number | undefined;
  /**
   * Stable code of the last failed attempt, safe to show where its message is not:
   * `signature_<reason>` (a `SignatureFailure`) or `bundle_invalid`; cleared with `lastError`.
   */
  readonly lastErrorReason?: string | undefined;
  /** True when bundles must be signed (`ARBITER_BUNDLE_VERIFICATION_KEY`). */
  readonly signatureVerification?: boolean;
  readonly reloads: { readonly ok: number; readonly failed: number; readonly unchanged: number };
}

export type LoadResult = "ok" | "failed" | "unchanged";

export type EngineListener = (status: EngineStatus, result: LoadResult) => void;

export interface EngineHost {
  /** First load, then starts watching/polling. Resolves even when the load failed. */
  start(): Promise<void>;
  /** The current snapshot, or undefined when no bundle was ever loaded. */
  active(): ActivePolicy | undefined;
  status(): EngineStatus;
  /**
   * Called after every load attempt (ok, failed or unchanged; an HTTP 304 is `unchanged`), after the
   * swap for `ok`. Returns an unsubscribe function.
   */
  onChange(listener: EngineListener): () => void;
  /** Loads the source now (serialized with watch/poll reloads). Resolves when done, never rejects. */
  reload(): Promise<void>;
  /** Stops watchers and polling; the active snapshot stays readable. */
  close(): Promise<void>;
}
