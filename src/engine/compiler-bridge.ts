/**
 * The engine's door into `src/compiler/` for compiling: in-process builds of Rego source
 * directories (the same as `arbiter build`) and the host builtins for the SDK. The load worker
 * uses the light door `compiler-parts.ts` instead, so it does not load the whole compiler.
 */
import { buildBundle, hostBuiltins, loadLazyHostBuiltins, type BundleManifest } from "../compiler/index.ts";
import { BundleError, describe } from "./errors.ts";
import { isObject } from "../util/object.ts";
import type { BundleParts } from "./bundle-files.ts";

/** Host builtins (name -> JS implementation) passed to the SDK's `loadPolicy`. */
export function hostBuiltinMap(): Record<string, (...args: unknown[]) => unknown> {
  return hostBuiltins as Record<string, (...args: unknown[]) => unknown>;
}

/**
 * Loads the implementations of the host builtins among `names` (a policy's declared builtins)
 * that are imported only when needed (graphql.*, the JSON Schema builtins): call it between
 * instantiating a policy and its first evaluation.
 */
export function prepareHostBuiltins(names: readonly string[]): Promise<void> {
  return loadLazyHostBuiltins(names);
}

/**
 * Builds a directory of `.rego` sources (and `data.json`/`data.yaml` files) exactly as
 * `arbiter build` does, for `entrypoints`. Throws a `BundleError` with the compiler's diagnostics.
 */
export function buildFromSources(dir: string, entrypoints: readonly string[], digest: string): BundleParts {
  let bundle;
  try {
    // Synchronous and CPU-bound; it runs on reloads only, never per request.
    bundle = buildBundle([dir], { entrypoints: [...entrypoints] });
  } catch (err) {
    throw new BundleError(`bundle: compiling Rego failed: ${describe(err)}`, { cause: err });
  }
  return partsFromBuild(bundle.files.get("/policy.wasm"), bundle.files.get("/data.json"), bundle.manifest, digest);
}

/** Bundle parts from the outputs of `buildBundle` (in this thread or a build worker). */
export function partsFromBuild(
  wasm: Uint8Array | undefined,
  dataBytes: Uint8Array | undefined,
  manifest: BundleManifest,
  digest: string,
): BundleParts {
  if (!wasm || !dataBytes) throw new BundleError("bundle: the build produced no policy.wasm or data.json");
  const data = JSON.parse(Buffer.from(dataBytes).toString("utf8")) as unknown;
  if (!isObject(data)) throw new BundleError("bundle data must be a JSON object");
  // The manifest's own revision is a content hash of the build; keep "" so the engine derives
  // its `sha256:` revision from the source digest (stable across identical sources).
  return { manifest: { ...manifest, revision: "" }, wasm, data, digest };
}
