/**
 * OPA bundles: building them from policy directories, writing them as `.tar.gz`, and reading
 * bundles produced either here or by `opa build -t wasm` (tarball or directory).
 *
 * Layout (as OPA writes it): `/policy.wasm`, `/data.json`, `/.manifest` and the Rego sources.
 * Data files may also sit deeper (`/a/b/data.json`); they merge into base data at `a.b`.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { dataConflicts, loadPolicyTree, mergeAt, PolicyLoadError } from "./data.ts";
import { RegoCompileError } from "./diagnostics.ts";
import { compile, type PolicySource } from "./compile.ts";
import { parseModule } from "./parser.ts";
import { yamlData } from "./host-yaml.ts";

export interface BundleManifest {
  readonly revision: string;
  readonly roots: readonly string[];
  readonly wasm: readonly { readonly entrypoint: string; readonly module: string }[];
  readonly rego_version?: number;
  readonly metadata?: Record<string, unknown>;
}

/** A bundle in memory: file paths (with a leading `/`) to contents. */
export interface Bundle {
  readonly files: Map<string, Uint8Array>;
  readonly manifest: BundleManifest;
}

export interface BuildBundleOptions {
  /** Entrypoints (slash paths); when empty, those of `defaultEntrypoints` whose package exists. */
  readonly entrypoints?: readonly string[];
  /** See `CompileOptions.defaultEntrypoints`. Default none: an entrypoint is required. */
  readonly defaultEntrypoints?: readonly string[];
  /** Revision for the manifest; default: the first 12 hex digits of a SHA-256 of the contents. */
  readonly revision?: string;
  /**
   * Include the Rego sources (default true, as `opa build`). False gives a flat bundle
   * (`.manifest`, `data.json`, `policy.wasm`) that fits a ConfigMap, whose keys cannot hold the
   * sources' subdirectories; a signed bundle must ship every file its signature lists.
   */
  readonly sources?: boolean;
  /** Compile with OPA's strict builtin errors (see CompileOptions.strictBuiltinErrors). */
  readonly strictBuiltinErrors?: boolean;
  /**
   * Rego v0 sources (`--v0-compatible`). Default: v0 when a directory holds a `.manifest`
   * with `"rego_version": 0` (as OPA honours it), else v1.
   */
  readonly v0Compatible?: boolean;
}

/** True when one of the directories has a `.manifest` declaring `"rego_version": 0`. */
export function manifestSaysV0(dirs: readonly string[]): boolean {
  for (const dir of dirs) {
    const file = join(dir, ".manifest");
    if (!existsSync(file)) continue;
    let m: unknown;
    try {
      m = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
      throw new BundleError(`${file}: malformed JSON: ${(e as Error).message}`);
    }
    if (typeof m === "object" && m !== null && (m as { rego_version?: unknown }).rego_version === 0) return true;
  }
  return false;
}

export interface LoadedBundle {
  readonly wasm: Uint8Array;
  /** Base data: every data file merged at its directory path. */
  readonly data: Record<string, unknown>;
  readonly manifest: BundleManifest;
  /** Rego sources by bundle path (without the leading `/`). */
  readonly regoFiles: Map<string, string>;
}

export class BundleError extends Error {
  override name = "BundleError";
}

/** Bounds on what a bundle may hold. */
const MAX_BUNDLE_BYTES = 512 * 1024 * 1024;
const MAX_ENTRIES = 20_000;

const utf8 = new TextEncoder();

/** Collects and compiles policy directories into an in-memory bundle. Throws RegoCompileError on bad Rego. */
export function buildBundle(dirs: readonly string[], options: BuildBundleOptions = {}): Bundle {
  const tree = loadPolicyTree(dirs);
  const sources = tree.rego.map((f) => ({ path: f.path, text: f.text }));
  const v0 = options.v0Compatible ?? manifestSaysV0(dirs);
  const compiled = compile(sources, {
    entrypoints: options.entrypoints,
    defaultEntrypoints: options.defaultEntrypoints,
    strictBuiltinErrors: options.strictBuiltinErrors,
    v0Compatible: v0,
  });
  checkDataConflicts(sources, tree.data, v0);
  const files = new Map<string, Uint8Array>();
  files.set("/policy.wasm", compiled.wasm);
  files.set("/data.json", utf8.encode(JSON.stringify(tree.data)));
  if (options.sources !== false) for (const f of tree.rego) files.set(`/${f.rel}`, utf8.encode(f.text));
  const revision = options.revision ?? contentRevision(files);
  const manifest: BundleManifest = {
    revision,
    roots: [""],
    wasm: compiled.entrypoints.map((entrypoint) => ({ entrypoint, module: "/policy.wasm" })),
    rego_version: v0 ? 0 : 1,
  };
  files.set("/.manifest", utf8.encode(JSON.stringify(manifest)));
  return { files, manifest };
}

/** Throws RegoCompileError when base data defines a document a rule also defines (as OPA refuses). */
export function checkDataConflicts(sources: readonly PolicySource[], data: Record<string, unknown>, v0 = false): void {
  const modules = sources.map((s) => parseModule(s.path, s.text, { v0 }).module);
  const problems = dataConflicts(modules, data);
  if (problems.length > 0) throw new RegoCompileError(problems);
}

function contentRevision(files: ReadonlyMap<string, Uint8Array>): string {
  const h = createHash("sha256");
  for (const name of [...files.keys()].sort()) {
    h.update(name);
    h.update("\0");
    h.update(files.get(name)!);
    h.update("\0");
  }
  return h.digest("hex").slice(0, 12);
}

/** Writes a bundle as a gzipped tarball (written to a temporary name, then renamed into place). */
export async function writeBundle(bundle: Bundle, outPath: string): Promise<void> {
  const tar = writeTar(bundle.files);
  const gz = gzipSync(tar, { level: 9 });
  mkdirSync(dirname(outPath) || ".", { recursive: true });
  const tmp = `${outPath}.tmp-${process.pid}`;
  writeFileSync(tmp, gz);
  renameSync(tmp, outPath);
}

/**
 * Reads a bundle: a `.tar.gz` (path or bytes) or a directory laid out as the tarball would be.
 * Throws `BundleError` naming the problem (missing wasm, malformed manifest or data, bad gzip).
 */
export async function readBundle(source: string | Uint8Array): Promise<LoadedBundle> {
  let entries: Map<string, Uint8Array>;
  if (typeof source === "string") {
    let st;
    try {
      st = statSync(source);
    } catch {
      throw new BundleError(`bundle ${source}: no such file or directory`);
    }
    if (st.isDirectory()) {
      entries = readDirectory(source);
    } else {
      if (st.size > MAX_BUNDLE_BYTES) throw new BundleError(`bundle ${source}: larger than ${MAX_BUNDLE_BYTES} bytes`);
      entries = readTarGz(readFileSync(source));
    }
  } else {
    entries = readTarGz(source);
  }
  return interpret(entries);
}

/**
 * Unpacks a `.tar.gz` bundle into its files (paths without a leading `/`), without interpreting
 * them: the engine checks a bundle's signature over exactly these bytes before parsing.
 */
export function unpackBundle(bytes: Uint8Array): Map<string, Uint8Array> {
  return readTarGz(bytes);
}

/** Interprets a bundle's files (as `unpackBundle` returns them, or read from a directory). */
export function parseBundleFiles(files: Map<string, Uint8Array>): LoadedBundle {
  return interpret(files);
}

function readDirectory(root: string): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        if (out.size >= MAX_ENTRIES) throw new BundleError(`bundle ${root}: more than ${MAX_ENTRIES} files`);
        out.set(relative(root, p).split(sep).join("/"), new Uint8Array(readFileSync(p)));
      }
    }
  };
  walk(root);
  return out;
}

function readTarGz(bytes: Uint8Array): Map<string, Uint8Array> {
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) {
    throw new BundleError("bundle is not a gzip file");
  }
  let tar: Buffer;
  try {
    tar = gunzipSync(bytes, { maxOutputLength: MAX_BUNDLE_BYTES });
  } catch (e) {
    throw new BundleError(`bundle gzip data is corrupt or truncated: ${(e as Error).message}`);
  }
  return readTar(tar);
}

function interpret(entries: Map<string, Uint8Array>): LoadedBundle {
  const text = (name: string, bytes: Uint8Array) => {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw new BundleError(`bundle file ${name} is not valid UTF-8`);
    }
  };
  let manifest: BundleManifest = { revision: "", roots: [""], wasm: [] };
  const manifestBytes = entries.get(".manifest");
  if (manifestBytes) manifest = parseManifest(text(".manifest", manifestBytes));

  const modulePaths = new Set(manifest.wasm.map((w) => w.module.replace(/^\/+/, "")));
  if (modulePaths.size === 0) modulePaths.add("policy.wasm");
  if (modulePaths.size > 1) throw new BundleError("bundle .manifest names more than one wasm module (not supported)");
  const wasmPath = [...modulePaths][0]!;
  const wasm = entries.get(wasmPath);
  if (!wasm) throw new BundleError(`bundle has no ${wasmPath}`);

  const data: Record<string, unknown> = {};
  const regoFiles = new Map<string, string>();
  for (const [name, bytes] of [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const base = name.split("/").pop()!;
    if (base === "data.json" || base === "data.yaml" || base === "data.yml") {
      let doc: unknown;
      try {
        doc = base === "data.json" ? JSON.parse(text(name, bytes)) : yamlData(text(name, bytes));
      } catch (e) {
        if (e instanceof BundleError) throw e;
        throw new BundleError(`bundle file ${name} is malformed: ${(e as Error).message}`);
      }
      try {
        mergeAt(data, name.split("/").slice(0, -1), doc, `bundle file ${name}`);
      } catch (e) {
        if (e instanceof PolicyLoadError) throw new BundleError(e.message);
        throw e;
      }
    } else if (base.endsWith(".rego")) {
      regoFiles.set(name, text(name, bytes));
    }
  }
  return { wasm, data, manifest, regoFiles };
}

function parseManifest(src: string): BundleManifest {
  let m: unknown;
  try {
    m = JSON.parse(src);
  } catch (e) {
    throw new BundleError(`bundle .manifest is malformed: ${(e as Error).message}`);
  }
  const bad = (why: string): never => {
    throw new BundleError(`bundle .manifest is malformed: ${why}`);
  };
  if (typeof m !== "object" || m === null || Array.isArray(m)) bad("expected a JSON object");
  const o = m as Record<string, unknown>;
  if (o.revision !== undefined && typeof o.revision !== "string") bad(`"revision" must be a string`);
  if (o.roots !== undefined && (!Array.isArray(o.roots) || !o.roots.every((r) => typeof r === "string"))) {
    bad(`"roots" must be a list of strings`);
  }
  const wasm: { entrypoint: string; module: string }[] = [];
  if (o.wasm !== undefined) {
    if (!Array.isArray(o.wasm)) bad(`"wasm" must be a list`);
    for (const [i, w] of (o.wasm as unknown[]).entries()) {
      const e = w as Record<string, unknown>;
      if (typeof e !== "object" || e === null || typeof e.entrypoint !== "string" || typeof e.module !== "string") {
        bad(`"wasm[${i}]" must have string "entrypoint" and "module"`);
      }
      wasm.push({ entrypoint: e.entrypoint as string, module: e.module as string });
    }
  }
  return {
    revision: (o.revision as string | undefined) ?? "",
    roots: (o.roots as string[] | undefined) ?? [""],
    wasm,
    ...(typeof o.rego_version === "number" ? { rego_version: o.rego_version } : {}),
    ...(typeof o.metadata === "object" && o.metadata !== null
      ? { metadata: o.metadata as Record<string, unknown> }
      : {}),
  };
}

// ---- ustar --------------------------------------------------------------------------------------

function octal(buf: Uint8Array, off: number, len: number, value: number): void {
  const s = value.toString(8).padStart(len - 1, "0");
  buf.set(utf8.encode(s), off);
  buf[off + len - 1] = 0;
}

function header(name: string, size: number, type: "0" | "x"): Uint8Array {
  const h = new Uint8Array(512);
  const nameBytes = utf8.encode(name);
  h.set(nameBytes.subarray(0, 100), 0);
  octal(h, 100, 8, 0o644);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, 0);
  h.fill(0x20, 148, 156);
  h[156] = type.charCodeAt(0);
  h.set(utf8.encode("ustar\u000000"), 257);
  let sum = 0;
  for (const b of h) sum += b;
  octal(h, 148, 7, sum);
  h[155] = 0x20;
  return h;
}

function padded(data: Uint8Array): Uint8Array[] {
  const pad = (512 - (data.length % 512)) % 512;
  return pad ? [data, new Uint8Array(pad)] : [data];
}

/** A deterministic ustar archive (mtime 0, sorted names); long names use a PAX `path` record. */
function writeTar(files: ReadonlyMap<string, Uint8Array>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const name of [...files.keys()].sort()) {
    const data = files.get(name)!;
    if (utf8.encode(name).length > 99) {
      const rec = (len: number) => `${len} path=${name}\n`;
      let len = rec(0).length;
      while (utf8.encode(rec(len)).length !== len) len = utf8.encode(rec(len)).length;
      const pax = utf8.encode(rec(len));
      parts.push(header("PaxHeader", pax.length, "x"), ...padded(pax));
    }
    parts.push(header(name, data.length, "0"), ...padded(data));
  }
  parts.push(new Uint8Array(1024));
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function readTar(tar: Uint8Array): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const dec = new TextDecoder();
  const str = (off: number, len: number) => {
    const b = tar.subarray(off, off + len);
    const z = b.indexOf(0);
    return dec.decode(z >= 0 ? b.subarray(0, z) : b);
  };
  let off = 0;
  let longName: string | undefined;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) return out;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    const stored = parseInt(str(off + 148, 8).trim() || "0", 8);
    if (stored !== sum) throw new BundleError("bundle tar data is corrupt (bad header checksum)");
    const size = parseInt(str(off + 124, 12).trim() || "0", 8);
    const type = String.fromCharCode(h[156]! || 0x30);
    const prefix = str(off + 345, 155);
    let name = str(off, 100);
    if (prefix && tar[off + 257] === 0x75) name = `${prefix}/${name}`;
    const start = off + 512;
    if (start + size > tar.length) throw new BundleError("bundle tar data is truncated");
    const data = tar.subarray(start, start + size);
    off = start + Math.ceil(size / 512) * 512;
    if (type === "x") {
      const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(dec.decode(data));
      if (m) longName = m[1];
      continue;
    }
    if (type === "L") {
      longName = dec.decode(data).replace(/\0+$/, "");
      continue;
    }
    if (type === "g") continue;
    if (longName !== undefined) {
      name = longName;
      longName = undefined;
    }
    if (type !== "0" && type !== "\0" && type !== "7") continue;
    const clean = name.replace(/^(\.\/|\/)+/, "");
    if (clean.split("/").includes("..")) throw new BundleError(`bundle entry ${name} escapes the bundle root`);
    if (out.size >= MAX_ENTRIES) throw new BundleError(`bundle has more than ${MAX_ENTRIES} entries`);
    out.set(clean, new Uint8Array(data));
  }
  if (out.size === 0) throw new BundleError("bundle tar data is truncated");
  return out;
}
