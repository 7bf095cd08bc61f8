/**
 * One bundle load, from source to instantiable parts, with every limit of issue #12 applied. It
 * runs inside the load worker (`load-worker.ts`), so a bundle that defeats a limit anyway costs
 * at most that worker; `loadInWorker` runs it in-process only when no worker can start.
 *
 * Steps: read the source (bounded bytes) -> digest (unchanged? stop) -> files map (archives
 * decompressed as a bounded stream) -> `verifyBeforeParse(files)` -> interpret under the JSON
 * limits -> deadline-instrument the wasm.
 */
import { readFile, realpath, stat } from "node:fs/promises";
import { join } from "node:path";
import type { BundleManifest } from "../compiler/index.ts";
import { digestBytes, digestFiles, readDirectoryFiles, type BundleFiles } from "./bundle-files.ts";
import { interpretFiles, readArchive, type BundleLimits } from "./bundle-reader.ts";
import { BundleError, describe } from "./errors.ts";
import { instrumentDeadline } from "./wasm-deadline.ts";

export type LoadSource =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "directory"; readonly path: string }
  /** An archive already in memory (an HTTP download). */
  | { readonly kind: "bytes"; readonly bytes: Uint8Array };

export interface LoadRequest {
  readonly source: LoadSource;
  /** Digest of the active bundle: a source with the same digest is reported `unchanged`. */
  readonly activeDigest: string | undefined;
  readonly limits: BundleLimits;
}

export type LoadReply =
  | { readonly ok: true; readonly kind: "unchanged" }
  /** A directory of Rego sources (no manifest, no wasm): the host compiles it (build worker). */
  | { readonly ok: true; readonly kind: "rego"; readonly dir: string; readonly digest: string }
  | {
    readonly ok: true;
    readonly kind: "bundle";
    readonly digest: string;
    readonly manifest: BundleManifest;
    /** The bundle's wasm as shipped (digest and status). */
    readonly wasm: Uint8Array;
    /** The deadline-instrumented wasm, what is compiled and run. */
    readonly instrumented: Uint8Array;
    readonly dataJson: Uint8Array;
  }
  | { readonly ok: false; readonly message: string };

/**
 * HOOK — bundle signatures (`src/engine/bundle-signature.ts`, in progress elsewhere): the check
 * over the map of bundle file name -> bytes belongs here. It sees exactly the bytes that
 * `interpretFiles` parses next, after they are read and before any of them is parsed, inside the
 * load worker. Throw a `BundleError` to refuse the bundle.
 */
function verifyBeforeParse(_files: BundleFiles): void {
  // No signature verification yet.
}

function interpret(files: BundleFiles, digest: string, limits: BundleLimits): LoadReply {
  verifyBeforeParse(files);
  const b = interpretFiles(files, limits);
  return { ok: true, kind: "bundle", digest, manifest: b.manifest, wasm: b.wasm, instrumented: instrumentDeadline(b.wasm), dataJson: b.dataJson };
}

async function load(request: LoadRequest): Promise<LoadReply> {
  const { source, limits } = request;
  if (source.kind === "bytes") {
    const digest = digestBytes(source.bytes);
    if (digest === request.activeDigest) return { ok: true, kind: "unchanged" };
    return interpret(await readArchive(source.bytes, limits), digest, limits);
  }
  if (source.kind === "file") {
    const info = await stat(source.path);
    if (info.size > limits.maxBytes) throw new BundleError(`bundle: ${source.path} is larger than ${limits.maxBytes} bytes`);
    const bytes = await readFile(source.path);
    if (bytes.length > limits.maxBytes) throw new BundleError(`bundle: ${source.path} is larger than ${limits.maxBytes} bytes`);
    const digest = digestBytes(bytes);
    if (digest === request.activeDigest) return { ok: true, kind: "unchanged" };
    return interpret(await readArchive(bytes, limits), digest, limits);
  }
  // Kubernetes ConfigMap layout: read through the resolved `..data` target so one reload sees
  // one consistent generation even if kubelet swaps the symlink meanwhile.
  let dir = source.path;
  try {
    dir = await realpath(join(source.path, "..data"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const files = await readDirectoryFiles(dir, limits.maxBytes);
  const digest = digestFiles(files);
  if (digest === request.activeDigest) return { ok: true, kind: "unchanged" };
  // A built bundle may ship its Rego sources too: the wasm is what runs.
  if (files.has("policy.wasm") || files.has(".manifest")) return interpret(files, digest, limits);
  if (![...files.keys()].some((p) => p.endsWith(".rego"))) {
    throw new BundleError(`bundle: ${source.path} has no .manifest, policy.wasm or .rego files`);
  }
  return { ok: true, kind: "rego", dir, digest };
}

/** Runs one load; every failure is a reply (`ok: false`) with the message to show. */
export async function loadBundle(request: LoadRequest): Promise<LoadReply> {
  try {
    return await load(request);
  } catch (err) {
    if (err instanceof BundleError) return { ok: false, message: err.message };
    const code = (err as NodeJS.ErrnoException).code;
    const where = request.source.kind === "bytes" ? "the downloaded bundle" : request.source.path;
    return { ok: false, message: `bundle: cannot read ${where}: ${code ?? describe(err)}` };
  }
}
