/**
 * Policy directories as `opa build` reads them: `*.rego` modules and `data.json` / `data.yaml`
 * documents, each data document merged into base data at its directory's path relative to the
 * root given on the command line (`roles/data.json` -> `data.roles`).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { isObject } from "../util/object.ts";
import { yamlData } from "./host-yaml.ts";

export interface PolicyFile {
  /** Path as the user sees it (root joined with the relative path): used in error positions. */
  readonly path: string;
  /** Slash-separated path relative to its root: where the file goes in a bundle. */
  readonly rel: string;
  readonly text: string;
}

export interface PolicyTree {
  readonly rego: PolicyFile[];
  readonly tests: PolicyFile[];
  /** Merged base data (an object). */
  readonly data: Record<string, unknown>;
  /** Data files found (relative slash paths), for the bundle listing. */
  readonly dataFiles: string[];
}

const DATA_FILES = new Set(["data.json", "data.yaml", "data.yml"]);
/** Bounds on what a policy tree may hold: a runaway directory fails loudly instead of filling memory. */
const MAX_FILES = 10_000;
const MAX_FILE_BYTES = 64 * 1024 * 1024;

export class PolicyLoadError extends Error {
  override name = "PolicyLoadError";
}

export function loadPolicyTree(roots: readonly string[]): PolicyTree {
  const rego: PolicyFile[] = [];
  const tests: PolicyFile[] = [];
  const data: Record<string, unknown> = {};
  const dataFiles: string[] = [];
  const seenRel = new Map<string, string>();
  let count = 0;
  for (const root of roots) {
    let st;
    try {
      st = statSync(root);
    } catch {
      throw new PolicyLoadError(`${root}: no such file or directory`);
    }
    const files: string[] = [];
    if (st.isDirectory()) walk(root, files);
    else files.push(root);
    for (const file of files.sort()) {
      if (++count > MAX_FILES) throw new PolicyLoadError(`${root}: more than ${MAX_FILES} files`);
      const rel = st.isDirectory() ? relative(root, file).split(sep).join("/") : file.split(sep).pop()!;
      const base = rel.split("/").pop()!;
      const isRego = base.endsWith(".rego");
      const isData = DATA_FILES.has(base);
      if (!isRego && !isData) continue;
      if (statSync(file).size > MAX_FILE_BYTES)
        throw new PolicyLoadError(`${file}: larger than ${MAX_FILE_BYTES} bytes`);
      const text = readFileSync(file, "utf8");
      if (isRego) {
        const other = seenRel.get(rel);
        if (other !== undefined) throw new PolicyLoadError(`${file}: same bundle path as ${other}`);
        seenRel.set(rel, file);
        (base.endsWith("_test.rego") ? tests : rego).push({ path: file, rel, text });
        continue;
      }
      let doc: unknown;
      try {
        doc = base === "data.json" ? JSON.parse(text) : yamlData(text);
      } catch (e) {
        throw new PolicyLoadError(
          `${file}: malformed ${base.endsWith(".json") ? "JSON" : "YAML"}: ${(e as Error).message}`,
        );
      }
      const dir = rel.split("/").slice(0, -1);
      mergeAt(data, dir, doc, file);
      dataFiles.push(rel);
    }
  }
  return { rego, tests, data, dataFiles };
}

function walk(dir: string, out: string[]): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith(".")) continue;
    const p = join(dir, entry.name);
    if (entry.isDirectory()) walk(p, out);
    else if (entry.isFile()) out.push(p);
  }
}

/** Merges `doc` into `target` at `path`; objects merge deeply, anything else must not collide. */
export function mergeAt(target: Record<string, unknown>, path: readonly string[], doc: unknown, file: string): void {
  if (path.length === 0 && !isObject(doc)) {
    throw new PolicyLoadError(`${file}: data at the root must be an object`);
  }
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = own(node, key);
    if (next === undefined) put(node, key, {});
    else if (!isObject(next)) throw new PolicyLoadError(`${file}: conflicts with data at ${path.join(".")}`);
    node = node[key] as Record<string, unknown>;
  }
  if (path.length === 0) {
    deepMerge(node, doc as Record<string, unknown>, file, []);
    return;
  }
  const last = path[path.length - 1]!;
  const cur = own(node, last);
  if (cur === undefined) put(node, last, doc);
  else if (isObject(cur) && isObject(doc)) deepMerge(cur, doc, file, path);
  else throw new PolicyLoadError(`${file}: conflicts with data at ${path.join(".")}`);
}

/** Own-property access only: a `__proto__` key in JSON data must stay a plain key. */
const own = (o: Record<string, unknown>, k: string): unknown => (Object.hasOwn(o, k) ? o[k] : undefined);
const put = (o: Record<string, unknown>, k: string, v: unknown): void => {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
};

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>, file: string, at: readonly string[]): void {
  for (const [k, v] of Object.entries(b)) {
    const cur = own(a, k);
    if (cur === undefined) put(a, k, v);
    else if (isObject(cur) && isObject(v)) deepMerge(cur, v, file, [...at, k]);
    else throw new PolicyLoadError(`${file}: conflicts with data at ${[...at, k].join(".")}`);
  }
}

/**
 * OPA refuses a bundle whose base data defines a document that a rule also defines (or a
 * non-object above a package). Returns one problem per rule, positioned at the rule.
 */
export function dataConflicts(
  modules: readonly {
    readonly pkg: readonly string[];
    readonly rules: readonly {
      name: string;
      ref?: readonly string[];
      loc: { file: string; line: number; col: number };
    }[];
  }[],
  data: Record<string, unknown>,
): { file: string; line: number; col: number; message: string }[] {
  const out: { file: string; line: number; col: number; message: string }[] = [];
  const seen = new Set<string>();
  for (const m of modules) {
    for (const r of m.rules) {
      const path = [...m.pkg, r.name, ...(r.ref ?? [])];
      const key = path.join("\0");
      if (seen.has(key)) continue;
      seen.add(key);
      let node: unknown = data;
      for (let i = 0; i < path.length; i++) {
        if (!isObject(node)) {
          out.push({
            ...r.loc,
            message: `rule data.${path.join(".")} conflicts with base data at ${path.slice(0, i).join(".")}`,
          });
          break;
        }
        node = own(node, path[i]!);
        if (node === undefined) break;
        if (i === path.length - 1) {
          out.push({ ...r.loc, message: `rule data.${path.join(".")} conflicts with base data at ${path.join(".")}` });
        }
      }
    }
  }
  return out;
}
