/**
 * The engine's only door into `src/compiler/`: host builtins for the SDK, and in-process
 * compilation of a directory of `.rego` sources.
 */
import { compile } from "../compiler/index.ts";
// Not yet re-exported by src/compiler/index.ts; the engine reads the table where it lives.
import { hostBuiltins } from "../compiler/host-builtins.ts";
import { BundleError, describe } from "./errors.ts";
import type { BundleFiles } from "./bundle-reader.ts";

/** Host builtins (name -> JS implementation) passed to the SDK's `loadPolicy`. */
export function hostBuiltinMap(): Record<string, (...args: unknown[]) => unknown> {
  return hostBuiltins as unknown as Record<string, (...args: unknown[]) => unknown>;
}

/**
 * Compiles the `.rego` files among `files` (test files excluded) for `entrypoints`; returns the
 * wasm bytes. Throws a `BundleError` carrying the compiler's diagnostics.
 */
export async function compileSources(files: BundleFiles, entrypoints: readonly string[]): Promise<Uint8Array> {
  const sources = [...files.keys()]
    .filter((p) => p.endsWith(".rego") && !p.endsWith("_test.rego"))
    .sort()
    .map((path) => ({ path, text: Buffer.from(files.get(path)!).toString("utf8") }));
  if (sources.length === 0) throw new BundleError("bundle: no .rego sources to compile");
  try {
    // compile() is synchronous (CPU-bound); it runs on reloads only, never per request.
    const out = compile(sources, { entrypoints: [...entrypoints] });
    return out.wasm;
  } catch (err) {
    throw new BundleError(`bundle: compiling Rego failed: ${describe(err)}`, { cause: err });
  }
}
