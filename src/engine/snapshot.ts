/**
 * One bundle's parts -> a validated, immutable snapshot (`ActivePolicy`): instantiate the module
 * in bounded memory with its deadline, load the data, check the required entrypoints, run the
 * data validator and the smoke evaluations, and wrap evaluation so a timed-out or trapped
 * instance is replaced before the next call. A throw here means the bundle is refused.
 */
import type { Counter } from "prom-client";
import type { BundleParts } from "./bundle-files.ts";
import { hostBuiltinMap, prepareHostBuiltins } from "./compiler-bridge.ts";
import { BundleError, describe, EvaluationTimeoutError, wrapError } from "./errors.ts";
import { Deadline, instantiatePolicy, type SdkPolicy } from "./policy-instance.ts";
import type { ActivePolicy, EngineHostOptions } from "./types.ts";
import { instrumentDeadline } from "./wasm-deadline.ts";
import { deepFreeze } from "../util/object.ts";

/** A snapshot and the digest of the bundle it came from (to skip reloading the same bytes). */
export interface Snapshot extends ActivePolicy {
  readonly digest: string;
}

export interface SnapshotOptions extends Pick<
  EngineHostOptions,
  "requiredEntrypoints" | "smokeInputs" | "validateData"
> {
  readonly memory: { readonly initial: number; readonly maximum: number };
  readonly evalTimeoutMs: number;
  /** `arbiter_evaluation_timeouts_total`. */
  readonly timeouts: Counter;
  /** The source as shown in status (credentials masked). */
  readonly display: string;
}

export async function buildSnapshot(parts: BundleParts, options: SnapshotOptions): Promise<Snapshot> {
  let module: WebAssembly.Module;
  try {
    module = parts.module ?? (await WebAssembly.compile(instrumentDeadline(parts.wasm)));
  } catch (err) {
    throw new BundleError(`bundle: policy.wasm does not load: ${describe(err)}`, { cause: err });
  }
  // The data document as JSON bytes, kept for the replacement instance after a timeout: the
  // SDK parses it into wasm memory without a JSON.stringify of the whole document each time.
  const dataJson = parts.dataJson ?? new TextEncoder().encode(JSON.stringify(parts.data));
  const dataBuffer = dataJson.buffer.slice(
    dataJson.byteOffset,
    dataJson.byteOffset + dataJson.byteLength,
  ) as ArrayBuffer;
  const deadline = new Deadline();
  const fresh = (): SdkPolicy => {
    const p = instantiatePolicy(module, { memory: options.memory, hostBuiltins: hostBuiltinMap(), deadline });
    p.setData(dataBuffer);
    return p;
  };
  let policy: SdkPolicy;
  try {
    const instance = instantiatePolicy(module, { memory: options.memory, hostBuiltins: hostBuiltinMap(), deadline });
    await prepareHostBuiltins(instance.builtinNames);
    policy = instance;
  } catch (err) {
    throw new BundleError(`bundle: policy.wasm does not load: ${describe(err)}`, { cause: err });
  }
  try {
    policy.setData(dataBuffer);
  } catch (err) {
    throw new BundleError(`bundle: data does not load into the policy: ${describe(err)}`, { cause: err });
  }
  const timeoutMs = options.evalTimeoutMs;
  const timeouts = options.timeouts;
  /**
   * Runs one evaluation under the deadline. After a timeout (or a trap) the instance stopped
   * mid-evaluation with its runtime state undefined, so it is replaced before the next one.
   */
  const run = (entrypoint: string, input: unknown): unknown => {
    deadline.limitMs = timeoutMs;
    deadline.at = performance.now() + timeoutMs;
    try {
      return policy.evaluate(input, entrypoint);
    } catch (err) {
      if (
        err instanceof EvaluationTimeoutError ||
        err instanceof WebAssembly.RuntimeError ||
        err instanceof RangeError
      ) {
        if (err instanceof EvaluationTimeoutError) timeouts.inc();
        deadline.at = Number.POSITIVE_INFINITY;
        policy = fresh();
      }
      throw err;
    } finally {
      deadline.at = Number.POSITIVE_INFINITY;
    }
  };
  const moduleEntrypoints = Object.keys(policy.entrypoints).sort();
  const declared = new Set(parts.manifest.wasm.map((w) => w.entrypoint));
  for (const ep of options.requiredEntrypoints) {
    if (declared.size > 0 && !declared.has(ep)) {
      throw new BundleError(
        `bundle: manifest does not declare required entrypoint ${ep} (declares ${[...declared].sort().join(", ")})`,
      );
    }
    if (!moduleEntrypoints.includes(ep)) {
      throw new BundleError(
        `bundle: policy.wasm does not export required entrypoint ${ep} (exports ${moduleEntrypoints.join(", ")})`,
      );
    }
  }
  const dataErrors: string[] = [];
  if (options.validateData) {
    try {
      dataErrors.push(...options.validateData(parts.data));
    } catch (err) {
      throw wrapError("bundle: data validation threw", err);
    }
  }
  if (dataErrors.length > 0) throw new BundleError(`bundle: invalid data: ${dataErrors.join("; ")}`);
  for (const ep of options.requiredEntrypoints) {
    const input = options.smokeInputs?.[ep] ?? {};
    let rs: unknown;
    try {
      rs = run(ep, input);
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
    source: options.display,
    data,
    entrypoints: Object.freeze(moduleEntrypoints),
    digest: parts.digest,
    evaluate(entrypoint: string, input: unknown): unknown {
      if (!entrypoints.has(entrypoint)) {
        throw new Error(`entrypoint ${entrypoint} is not in bundle revision ${revision}`);
      }
      try {
        return run(entrypoint, input);
      } catch (err) {
        // The timeout keeps its class: the decision core maps it to `evaluation_timeout`.
        if (err instanceof EvaluationTimeoutError) throw err;
        throw wrapError(`evaluating ${entrypoint} (revision ${revision})`, err);
      }
    },
  });
  return snapshot;
}
