/**
 * Directory scanning for bundle sources: which files a directory holds and a digest of their
 * content, so a reload can tell "unchanged" without parsing or compiling anything, and can tell a
 * built bundle directory from a directory of Rego sources. Parsing bundles is the compiler's
 * (`readBundle`, `buildBundle` in src/compiler/index.ts).
 */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import type { BundleManifest } from "../compiler/index.ts";
import { BundleError } from "./errors.ts";

/** A bundle ready to instantiate. */
export interface BundleParts {
  readonly manifest: BundleManifest;
  readonly wasm: Uint8Array;
  readonly data: Record<string, unknown>;
  /** SHA-256 (hex) of the source content (archive bytes, or every file of a directory). */
  readonly digest: string;
  /** The deadline-instrumented module, when compiled off the main thread (load worker). */
  readonly module?: WebAssembly.Module;
  /** `data` as JSON bytes, when already serialized (load worker); else serialized on use. */
  readonly dataJson?: Uint8Array;
}

/** Default bound on a bundle archive or directory (bytes read from disk or the network). */
export const DEFAULT_MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

/** Files of a directory: slash path relative to it -> bytes. */
export type BundleFiles = Map<string, Uint8Array>;

/**
 * Reads every regular file under `dir` (recursively). Paths with a segment starting with `..`
 * (the Kubernetes ConfigMap `..data` / `..<timestamp>` entries) are skipped: the caller resolves
 * `..data` first and passes its target.
 */
export async function readDirectoryFiles(dir: string, maxBytes = DEFAULT_MAX_BUNDLE_BYTES): Promise<BundleFiles> {
  const files: BundleFiles = new Map();
  let total = 0;
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    const full = join(entry.parentPath, entry.name);
    const rel = relative(dir, full).split(sep).join("/");
    if (rel.split("/").some((part) => part.startsWith(".."))) continue;
    if (!entry.isFile() && !entry.isSymbolicLink()) continue;
    let bytes: Buffer;
    try {
      bytes = await readFile(full);
    } catch (err) {
      // A symlink to a directory, or a file removed between listing and reading (the next
      // event reloads again).
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EISDIR" || code === "ENOENT") continue;
      throw err;
    }
    total += bytes.length;
    if (total > maxBytes) throw new BundleError(`bundle: ${dir} holds more than ${maxBytes} bytes`);
    files.set(rel, bytes);
  }
  return files;
}

/** SHA-256 over path-sorted files (path, length, bytes). */
export function digestFiles(files: BundleFiles): string {
  const hash = createHash("sha256");
  for (const path of [...files.keys()].sort()) {
    const bytes = files.get(path)!;
    hash.update(`${path}\0${bytes.length}\0`);
    hash.update(bytes);
  }
  return hash.digest("hex");
}

export function digestBytes(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
