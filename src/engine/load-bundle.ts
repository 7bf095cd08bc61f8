/**
 * One bundle load, from source to instantiable parts, with every limit of issue #12 applied. It
 * runs inside the load worker (`load-worker.ts`), so a bundle that defeats a limit anyway costs
 * at most that worker; `loadInWorker` runs it in-process only when no worker can start.
 *
 * Steps: read the source (bounded bytes) -> digest (unchanged? stop) -> files map (archives
 * decompressed as a bounded stream) -> `verify(files)` (bundle signatures) -> interpret under the JSON
 * limits -> deadline-instrument the wasm.
 */
import { mkdir, mkdtemp, readFile, realpath, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { BundleManifest } from "../compiler/index.ts";
import { digestBytes, digestFiles, readDirectoryFiles, type BundleFiles } from "./bundle-files.ts";
import { interpretFiles, readArchive, type BundleLimits } from "./bundle-reader.ts";
import {
  BundleSignatureError,
  verifyBundleSignature,
  type BundleVerificationOptions,
  type SignatureFailure,
} from "./bundle-signature.ts";
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
  /** OPA bundle signature verification (`ARBITER_BUNDLE_VERIFICATION_*`); the key crosses to the worker. */
  readonly verification?: BundleVerificationOptions;
}

export type LoadReply =
  | { readonly ok: true; readonly kind: "unchanged" }
  /**
   * A directory of Rego sources (no manifest, no wasm): the host compiles it (build worker). With
   * verification, `dir` is a private copy of exactly the verified bytes (`copy: true`: the host
   * removes it after the build), so a file changed on disk after the check never reaches the
   * compiler.
   */
  | { readonly ok: true; readonly kind: "rego"; readonly dir: string; readonly digest: string; readonly copy?: boolean }
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
  /** `signature`: the bundle was refused by signature verification, for this reason. */
  | { readonly ok: false; readonly message: string; readonly signature?: SignatureFailure };

/**
 * Bundle signatures (`bundle-signature.ts`): the check sees exactly the bytes that
 * `interpretFiles` parses next, after they are read and before any of them is parsed, inside the
 * load worker. A refusal throws `BundleSignatureError`.
 */
async function verify(files: BundleFiles, request: LoadRequest): Promise<void> {
  if (request.verification !== undefined) await verifyBundleSignature(files, request.verification);
}

async function interpret(files: BundleFiles, digest: string, request: LoadRequest): Promise<LoadReply> {
  await verify(files, request);
  const b = interpretFiles(files, request.limits);
  return {
    ok: true,
    kind: "bundle",
    digest,
    manifest: b.manifest,
    wasm: b.wasm,
    instrumented: instrumentDeadline(b.wasm),
    dataJson: b.dataJson,
  };
}

/** Writes the verified files to a private temp directory (mode 0600 files). */
async function privateCopy(files: BundleFiles): Promise<string> {
  const copy = await mkdtemp(join(tmpdir(), "arbiter-verified-"));
  try {
    for (const [name, bytes] of files) {
      const target = join(copy, ...name.split("/"));
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, bytes, { mode: 0o600 });
    }
  } catch (err) {
    await rm(copy, { recursive: true, force: true });
    throw err;
  }
  return copy;
}

async function load(request: LoadRequest): Promise<LoadReply> {
  const { source, limits } = request;
  if (source.kind === "bytes") {
    const digest = digestBytes(source.bytes);
    if (digest === request.activeDigest) return { ok: true, kind: "unchanged" };
    return interpret(await readArchive(source.bytes, limits), digest, request);
  }
  if (source.kind === "file") {
    const info = await stat(source.path);
    if (info.size > limits.maxBytes)
      throw new BundleError(`bundle: ${source.path} is larger than ${limits.maxBytes} bytes`);
    const bytes = await readFile(source.path);
    if (bytes.length > limits.maxBytes)
      throw new BundleError(`bundle: ${source.path} is larger than ${limits.maxBytes} bytes`);
    const digest = digestBytes(bytes);
    if (digest === request.activeDigest) return { ok: true, kind: "unchanged" };
    return interpret(await readArchive(bytes, limits), digest, request);
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
  if (files.has("policy.wasm") || files.has(".manifest")) return interpret(files, digest, request);
  if (![...files.keys()].some((p) => p.endsWith(".rego"))) {
    throw new BundleError(`bundle: ${source.path} has no .manifest, policy.wasm or .rego files`);
  }
  if (request.verification === undefined) return { ok: true, kind: "rego", dir, digest };
  await verify(files, request);
  return { ok: true, kind: "rego", dir: await privateCopy(files), digest, copy: true };
}

/** Runs one load; every failure is a reply (`ok: false`) with the message to show. */
export async function loadBundle(request: LoadRequest): Promise<LoadReply> {
  try {
    return await load(request);
  } catch (err) {
    if (err instanceof BundleSignatureError) return { ok: false, message: err.message, signature: err.reason };
    if (err instanceof BundleError) return { ok: false, message: err.message };
    const code = (err as NodeJS.ErrnoException).code;
    const where = request.source.kind === "bytes" ? "the downloaded bundle" : request.source.path;
    return { ok: false, message: `bundle: cannot read ${where}: ${code ?? describe(err)}` };
  }
}
