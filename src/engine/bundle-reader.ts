/**
 * The bounded bundle reader that runs inside the load worker (issue #12). A hostile bundle is
 * refused by a limit before it can exhaust anything:
 *
 * - the archive is decompressed as a stream and every decompressed byte counts against
 *   `maxBytes` (tar headers, padding and skipped entries too), so a gzip bomb stops at the cap;
 * - at most `MAX_BUNDLE_ENTRIES` files;
 * - every JSON file is scanned before `JSON.parse` for nesting (`MAX_JSON_DEPTH`) and element
 *   count (all files together under `maxElements`): V8's JSON parser aborts the whole process
 *   ("invalid size error", uncatchable) on an array of a few hundred million elements, so the
 *   parser must never see one.
 *
 * Shape: read the files into a map (name -> bytes), then interpret that map. Nothing is parsed
 * before the map is complete, which is where a check over the exact bytes that will be parsed
 * (bundle signatures) belongs: `verify` in `load-bundle.ts` runs there.
 */
import { createGunzip } from "node:zlib";
import { Parser, type ReadEntry } from "tar";
import type { BundleManifest } from "../compiler/index.ts";
import { mergeAt, PolicyLoadError } from "./compiler-parts.ts";
import type { BundleFiles } from "./bundle-files.ts";
import { BundleError, describe } from "./errors.ts";
import { yamlData } from "../compiler/host-yaml.ts";

export interface BundleLimits {
  /** Bytes read from the source, and separately decompressed bytes of an archive. */
  readonly maxBytes: number;
  /** JSON values (array elements and object members) of all data and manifest files together. */
  readonly maxElements: number;
}

/** Deepest JSON nesting accepted in bundle files (real data is a few levels deep). */
export const MAX_JSON_DEPTH = 256;
/** Files in one bundle. */
export const MAX_BUNDLE_ENTRIES = 20_000;

/**
 * Decompresses and unpacks a `.tar.gz` as a stream under `limits.maxBytes` decompressed bytes.
 * Throws `BundleError` naming the limit or the defect.
 */
export function readArchive(bytes: Uint8Array, limits: BundleLimits): Promise<BundleFiles> {
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) {
    return Promise.reject(new BundleError("bundle is not a gzip file"));
  }
  return new Promise((resolve, reject) => {
    const files: BundleFiles = new Map();
    let total = 0;
    let failed = false;
    const gunzip = createGunzip();
    const fail = (err: Error): void => {
      if (failed) return;
      failed = true;
      gunzip.destroy();
      reject(err);
    };
    const parser = new Parser({
      strict: true,
      onReadEntry: (entry: ReadEntry) => {
        if (failed) return entry.resume();
        if (entry.type !== "File" && entry.type !== "OldFile" && entry.type !== "ContiguousFile") return entry.resume();
        const name = entry.path.replace(/^(\.\/|\/)+/, "");
        if (name.split("/").includes(".."))
          return fail(new BundleError(`bundle: entry ${entry.path} escapes the bundle root`));
        if (files.has(name)) return fail(new BundleError(`bundle: entry ${name} appears more than once`));
        if (files.size >= MAX_BUNDLE_ENTRIES)
          return fail(new BundleError(`bundle: more than ${MAX_BUNDLE_ENTRIES} entries`));
        const chunks: Buffer[] = [];
        entry.on("data", (c: Buffer) => chunks.push(c));
        entry.on("end", () => files.set(name, Buffer.concat(chunks)));
      },
    });
    parser.on("error", (err: Error) =>
      fail(new BundleError(`bundle tar data is corrupt: ${describe(err)}`, { cause: err })),
    );
    parser.on("end", () => {
      if (failed) return;
      if (files.size === 0) fail(new BundleError("bundle tar data is truncated"));
      else resolve(files);
    });
    gunzip.on("data", (chunk: Buffer) => {
      if (failed) return;
      total += chunk.length;
      if (total > limits.maxBytes) {
        fail(new BundleError(`bundle: decompresses to more than ${limits.maxBytes} bytes (ARBITER_BUNDLE_MAX_BYTES)`));
        return;
      }
      parser.write(chunk);
    });
    gunzip.on("end", () => {
      if (!failed) parser.end();
    });
    gunzip.on("error", (err) =>
      fail(new BundleError(`bundle gzip data is corrupt or truncated: ${describe(err)}`, { cause: err })),
    );
    gunzip.end(bytes);
  });
}

/** Counts JSON values against a budget shared by the files of one bundle. */
export class ElementBudget {
  #left: number;
  constructor(readonly limit: number) {
    this.#left = limit;
  }

  /** Charges `n` elements for `file`; throws once the bundle as a whole is over the limit. */
  take(n: number, file: string): void {
    this.#left -= n;
    if (this.#left < 0) {
      throw new BundleError(
        `bundle: ${file} takes the bundle over ${this.limit} JSON elements (ARBITER_BUNDLE_MAX_ELEMENTS)`,
      );
    }
  }
}

const QUOTE = 0x22,
  BACKSLASH = 0x5c,
  COMMA = 0x2c,
  OPEN_ARRAY = 0x5b,
  OPEN_OBJECT = 0x7b,
  CLOSE_ARRAY = 0x5d,
  CLOSE_OBJECT = 0x7d;

/**
 * One pass over JSON text before it is parsed: nesting depth and an upper bound of its values
 * (containers + separators + 1). Malformed text is left for `JSON.parse` to report.
 */
export function checkJsonBounds(bytes: Uint8Array, file: string, budget: ElementBudget): void {
  let depth = 0;
  let count = 1;
  let inString = false;
  const CHUNK = 1 << 20;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
      continue;
    }
    if (b === QUOTE) inString = true;
    else if (b === COMMA) count++;
    else if (b === OPEN_ARRAY || b === OPEN_OBJECT) {
      count++;
      if (++depth > MAX_JSON_DEPTH) throw new BundleError(`bundle: ${file} nests deeper than ${MAX_JSON_DEPTH} levels`);
    } else if (b === CLOSE_ARRAY || b === CLOSE_OBJECT) depth--;
    // Charge as we go so a huge file fails early, not after the whole scan.
    if ((i & (CHUNK - 1)) === CHUNK - 1) {
      budget.take(count, file);
      count = 0;
    }
  }
  budget.take(count, file);
}

/** Counts the values of a parsed document (YAML files, whose text the scan above cannot read). */
function countValues(doc: unknown, file: string, budget: ElementBudget, depth = 0): void {
  if (depth > MAX_JSON_DEPTH) throw new BundleError(`bundle: ${file} nests deeper than ${MAX_JSON_DEPTH} levels`);
  budget.take(1, file);
  if (typeof doc !== "object" || doc === null) return;
  for (const v of Object.values(doc)) countValues(v, file, budget, depth + 1);
}

function text(name: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new BundleError(`bundle file ${name} is not valid UTF-8`);
  }
}

function parseJson(name: string, bytes: Uint8Array, budget: ElementBudget): unknown {
  checkJsonBounds(bytes, name, budget);
  try {
    return JSON.parse(text(name, bytes));
  } catch (err) {
    if (err instanceof BundleError) throw err;
    throw new BundleError(`bundle file ${name} is malformed: ${describe(err)}`);
  }
}

function parseManifest(doc: unknown): BundleManifest {
  const bad = (why: string): never => {
    throw new BundleError(`bundle .manifest is malformed: ${why}`);
  };
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return bad("expected a JSON object");
  const o = doc as Record<string, unknown>;
  if (o.revision !== undefined && typeof o.revision !== "string") bad(`"revision" must be a string`);
  if (o.roots !== undefined && !(Array.isArray(o.roots) && o.roots.every((r) => typeof r === "string")))
    bad(`"roots" must be a list of strings`);
  if (o.wasm !== undefined && !Array.isArray(o.wasm)) bad(`"wasm" must be a list`);
  const wasm = ((o.wasm ?? []) as unknown[]).map((w, i) => {
    const e = w as Record<string, unknown> | null;
    if (typeof e !== "object" || e === null || typeof e.entrypoint !== "string" || typeof e.module !== "string") {
      return bad(`"wasm[${i}]" must have string "entrypoint" and "module"`);
    }
    return { entrypoint: e.entrypoint, module: e.module };
  });
  return { revision: (o.revision as string | undefined) ?? "", roots: (o.roots as string[] | undefined) ?? [""], wasm };
}

/** A bundle interpreted from its files: what the engine instantiates. */
export interface InterpretedBundle {
  readonly manifest: BundleManifest;
  readonly wasm: Uint8Array;
  /** Base data (every data file merged at its directory path) as JSON text bytes. */
  readonly dataJson: Uint8Array;
}

/**
 * Interprets a bundle's files as OPA lays them out: `.manifest`, the wasm module it names (default
 * `policy.wasm`), and `data.json` / `data.yaml` files merged at their directory path. Everything
 * parsed is bounded by `limits`.
 */
export function interpretFiles(files: BundleFiles, limits: BundleLimits): InterpretedBundle {
  const budget = new ElementBudget(limits.maxElements);
  const manifestBytes = files.get(".manifest");
  const manifest = manifestBytes
    ? parseManifest(parseJson(".manifest", manifestBytes, budget))
    : { revision: "", roots: [""], wasm: [] };
  const modules = new Set(manifest.wasm.map((w) => w.module.replace(/^\/+/, "")));
  if (modules.size > 1) throw new BundleError("bundle .manifest names more than one wasm module (not supported)");
  const wasmPath = [...modules][0] ?? "policy.wasm";
  const wasm = files.get(wasmPath);
  if (!wasm) throw new BundleError(`bundle has no ${wasmPath}`);

  const dataFiles = [...files.keys()].filter((n) => /(^|\/)data\.(json|ya?ml)$/.test(n)).sort();
  // The common case, one data.json at the root: its own bytes are the data, no re-serialization.
  if (dataFiles.length === 1 && dataFiles[0] === "data.json") {
    const bytes = files.get("data.json")!;
    const doc = parseJson("data.json", bytes, budget);
    if (typeof doc !== "object" || doc === null || Array.isArray(doc))
      throw new BundleError("bundle data must be a JSON object");
    return { manifest, wasm, dataJson: bytes };
  }
  const data: Record<string, unknown> = {};
  for (const name of dataFiles) {
    const bytes = files.get(name)!;
    let doc: unknown;
    if (name.endsWith(".json")) doc = parseJson(name, bytes, budget);
    else {
      try {
        // The yaml package bounds alias expansion itself (maxAliasCount, default 100).
        doc = yamlData(text(name, bytes));
      } catch (err) {
        if (err instanceof BundleError) throw err;
        throw new BundleError(`bundle file ${name} is malformed: ${describe(err)}`);
      }
      countValues(doc, name, budget);
    }
    try {
      mergeAt(data, name.split("/").slice(0, -1), doc, `bundle file ${name}`);
    } catch (err) {
      if (err instanceof PolicyLoadError) throw new BundleError(err.message);
      throw err;
    }
  }
  return { manifest, wasm, dataJson: new TextEncoder().encode(JSON.stringify(data)) };
}
