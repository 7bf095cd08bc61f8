/**
 * Reads OPA bundles (archive bytes or a directory) into their parts. Handles what `opa build -t
 * wasm` and `arbiter build` write: `/.manifest`, `/policy.wasm` (or the module the manifest names),
 * `/data.json` at the root and nested `<path>/data.json` files mounted at `data.<path>`, and Rego
 * sources (ignored here: the wasm is what runs).
 *
 * The archive reader is a small ustar/pax parser over the gunzipped bytes rather than a stream
 * API: the bundle is read whole anyway (it must be validated before it is swapped in), and a
 * header checksum mismatch or a short entry is reported as a corrupt bundle with an exact message.
 */
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { BundleError, describe } from "./errors.ts";

const gunzipAsync = promisify(gunzip);

export interface BundleManifest {
  readonly revision: string;
  readonly roots: readonly string[];
  readonly wasm: readonly { readonly entrypoint: string; readonly module: string }[];
}

export interface BundleParts {
  readonly manifest: BundleManifest;
  readonly wasm: Uint8Array;
  readonly data: Record<string, unknown>;
  /** SHA-256 (hex) over every file of the bundle, path-sorted: equal digests, equal bundles. */
  readonly digest: string;
}

/** Default bound on the uncompressed size of a bundle. */
export const DEFAULT_MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

/** Files of a bundle: path without leading slash -> bytes. */
export type BundleFiles = Map<string, Uint8Array>;

/** Gunzips and untars `bytes`; `maxBytes` bounds the uncompressed size. */
export async function readArchiveFiles(bytes: Uint8Array, maxBytes = DEFAULT_MAX_BUNDLE_BYTES): Promise<BundleFiles> {
  let tar: Buffer;
  try {
    tar = await gunzipAsync(bytes, { maxOutputLength: maxBytes });
  } catch (err) {
    if (err instanceof RangeError || (err as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw new BundleError(`bundle: archive expands beyond ${maxBytes} bytes`, { cause: err });
    }
    throw new BundleError(`bundle: archive is not valid gzip: ${describe(err)}`, { cause: err });
  }
  return untar(tar);
}

function octal(buf: Buffer, offset: number, length: number): number {
  const text = buf.toString("latin1", offset, offset + length).replace(/\0.*$/s, "").trim();
  if (text === "") return 0;
  if (!/^[0-7]+$/.test(text)) return Number.NaN;
  return Number.parseInt(text, 8);
}

function cString(buf: Buffer, offset: number, length: number): string {
  const end = buf.indexOf(0, offset);
  return buf.toString("utf8", offset, end === -1 || end > offset + length ? offset + length : end);
}

function parsePax(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < body.length) {
    const space = body.indexOf(0x20, pos);
    if (space === -1) break;
    const len = Number.parseInt(body.toString("ascii", pos, space), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const record = body.toString("utf8", space + 1, pos + len - 1);
    const eq = record.indexOf("=");
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  return out;
}

/** Parses a ustar/pax/gnu tar image. Only regular files are kept. */
export function untar(tar: Buffer): BundleFiles {
  const files: BundleFiles = new Map();
  let pos = 0;
  let longName: string | undefined;
  let paxPath: string | undefined;
  while (pos + 512 <= tar.length) {
    const header = tar.subarray(pos, pos + 512);
    if (header.every((b) => b === 0)) return files; // end-of-archive marker
    const declared = octal(header, 148, 8);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
    if (declared !== sum) throw new BundleError(`bundle: archive is corrupt (bad tar header checksum at byte ${pos})`);
    const size = octal(header, 124, 12);
    if (!Number.isFinite(size)) throw new BundleError(`bundle: archive is corrupt (bad entry size at byte ${pos})`);
    const type = String.fromCharCode(header[156]!);
    const bodyStart = pos + 512;
    const bodyEnd = bodyStart + size;
    if (bodyEnd > tar.length) throw new BundleError(`bundle: archive is truncated (entry at byte ${pos} needs ${size} bytes)`);
    const body = tar.subarray(bodyStart, bodyEnd);
    pos = bodyStart + Math.ceil(size / 512) * 512;
    if (type === "x") {
      paxPath = parsePax(body).get("path");
      continue;
    }
    if (type === "L") {
      longName = cString(body, 0, body.length);
      continue;
    }
    if (type === "g") continue;
    let name = paxPath ?? longName;
    if (name === undefined) {
      name = cString(header, 0, 100);
      if (header.toString("latin1", 257, 262) === "ustar") {
        const prefix = cString(header, 345, 155);
        if (prefix !== "") name = `${prefix}/${name}`;
      }
    }
    paxPath = undefined;
    longName = undefined;
    if (type !== "0" && type !== "\0" && type !== "7") continue; // directories, links
    const path = name.replace(/^\.?\/+/, "");
    if (path.split("/").includes("..")) throw new BundleError(`bundle: archive entry escapes the bundle: ${name}`);
    files.set(path, Buffer.from(body));
  }
  throw new BundleError("bundle: archive is truncated (no end-of-archive marker)");
}

/** Reads every regular file under `dir` (recursively; dot-directories like `..data` skipped). */
export async function readDirectoryFiles(dir: string, maxBytes = DEFAULT_MAX_BUNDLE_BYTES): Promise<BundleFiles> {
  const files: BundleFiles = new Map();
  let total = 0;
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    const full = join(entry.parentPath, entry.name);
    const rel = relative(dir, full).split(sep).join("/");
    // Kubernetes ConfigMap mounts hold `..data` and `..<timestamp>` directories next to
    // symlinks; the caller resolves `..data` first, so dot-dot entries are never bundle files.
    if (rel.split("/").some((part) => part.startsWith(".."))) continue;
    if (!entry.isFile() && !entry.isSymbolicLink()) continue;
    let bytes: Buffer;
    try {
      bytes = await readFile(full);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EISDIR") continue;
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

function parseJson(path: string, bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (err) {
    throw new BundleError(`bundle: ${path} is not valid JSON: ${describe(err)}`, { cause: err });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Mounts nested `a/b/data.json` at `data.a.b`, like OPA; conflicting scalars are an error. */
export function assembleData(files: BundleFiles): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  const dataFiles = [...files.keys()].filter((p) => p === "data.json" || p.endsWith("/data.json")).sort();
  for (const path of dataFiles) {
    const value = parseJson(path, files.get(path)!);
    const segments = path.split("/").slice(0, -1);
    if (!isObject(value)) {
      if (segments.length === 0) throw new BundleError(`bundle: data.json must hold a JSON object`);
    }
    let node = data;
    for (const segment of segments.slice(0, -1)) {
      const next = node[segment];
      if (next === undefined) node[segment] = {};
      else if (!isObject(next)) throw new BundleError(`bundle: ${path} conflicts with data at ${segment}`);
      node = node[segment] as Record<string, unknown>;
    }
    if (segments.length === 0) merge(data, value as Record<string, unknown>, path);
    else {
      const last = segments[segments.length - 1]!;
      const existing = node[last];
      if (existing === undefined) node[last] = value;
      else if (isObject(existing) && isObject(value)) merge(existing, value, path);
      else throw new BundleError(`bundle: ${path} conflicts with data at ${segments.join(".")}`);
    }
  }
  return data;
}

function merge(into: Record<string, unknown>, from: Record<string, unknown>, path: string): void {
  for (const [key, value] of Object.entries(from)) {
    const existing = into[key];
    if (existing === undefined) into[key] = value;
    else if (isObject(existing) && isObject(value)) merge(existing, value, path);
    else throw new BundleError(`bundle: ${path} conflicts with data at ${key}`);
  }
}

/** The `.manifest` of `files`, or an empty one when there is none. */
export function parseManifest(files: BundleFiles): BundleManifest {
  const bytes = files.get(".manifest");
  if (bytes === undefined) return { revision: "", roots: [""], wasm: [] };
  const raw = parseJson(".manifest", bytes);
  if (!isObject(raw)) throw new BundleError("bundle: .manifest must hold a JSON object");
  const revision = raw.revision ?? "";
  if (typeof revision !== "string") throw new BundleError("bundle: .manifest revision must be a string");
  const roots = raw.roots ?? [""];
  if (!Array.isArray(roots) || !roots.every((r) => typeof r === "string")) {
    throw new BundleError("bundle: .manifest roots must be an array of strings");
  }
  const wasm = raw.wasm ?? [];
  if (
    !Array.isArray(wasm) ||
    !wasm.every((w) => isObject(w) && typeof w.entrypoint === "string" && typeof w.module === "string")
  ) {
    throw new BundleError("bundle: .manifest wasm must be an array of {entrypoint, module} strings");
  }
  return { revision, roots, wasm: wasm as BundleManifest["wasm"] };
}

/** Turns the files of a bundle into its parts, with exact errors for what is missing. */
export function bundleFromFiles(files: BundleFiles): BundleParts {
  const manifest = parseManifest(files);
  const modules = new Set(manifest.wasm.map((w) => w.module.replace(/^\/+/, "")));
  if (modules.size > 1) {
    throw new BundleError(`bundle: more than one wasm module (${[...modules].sort().join(", ")}) is not supported`);
  }
  const modulePath = modules.size === 1 ? [...modules][0]! : "policy.wasm";
  const wasm = files.get(modulePath);
  if (wasm === undefined) throw new BundleError(`bundle: ${modulePath} is missing`);
  return { manifest, wasm, data: assembleData(files), digest: digestFiles(files) };
}
