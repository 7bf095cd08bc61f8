/**
 * The engine's only door into `src/compiler/`: bundle reading (the same reader `arbiter eval`
 * uses, for bundles from `arbiter build` and `opa build -t wasm` alike), in-process builds of
 * Rego source directories (the same as `arbiter build`), and the host builtins for the SDK.
 */
import { buildBundle, hostBuiltins, parseBundleFiles, unpackBundle, type BundleManifest } from "../compiler/index.ts";
import { BundleError, describe } from "./errors.ts";
import type { BundleParts } from "./bundle-files.ts";

/** Host builtins (name -> JS implementation) passed to the SDK's `loadPolicy`. */
export function hostBuiltinMap(): Record<string, (...args: unknown[]) => unknown> {
  return hostBuiltins as Record<string, (...args: unknown[]) => unknown>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Unpacks `.tar.gz` bundle bytes into files (path without leading `/` -> bytes). */
export function unpackBundleFiles(bytes: Uint8Array): Map<string, Uint8Array> {
  try {
    return unpackBundle(bytes);
  } catch (err) {
    throw new BundleError(describe(err), { cause: err });
  }
}

/** Parses a built bundle's files (from an archive or a directory) with the compiler's reader. */
export function readBundleParts(files: Map<string, Uint8Array>, digest: string): BundleParts {
  let loaded;
  try {
    loaded = parseBundleFiles(files);
  } catch (err) {
    throw new BundleError(describe(err), { cause: err });
  }
  if (!isObject(loaded.data)) throw new BundleError("bundle data must be a JSON object");
  return { manifest: loaded.manifest, wasm: loaded.wasm, data: loaded.data, digest };
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
