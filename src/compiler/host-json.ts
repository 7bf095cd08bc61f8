/**
 * OPA's `json.remove`, `json.filter` and `json.marshal_with_options` for the host side of the
 * wasm ABI (issue #13), following `topdown/json.go` and `ast.Object.Filter`: the paths become a
 * tree (`pathsToObject`, a shorter path wins over a longer one under it) and the document is
 * walked against it. Same contract as host-builtins.ts: JSON-shaped values in (a set operand
 * arrives as an array), `undefined` where OPA raises a builtin error.
 */
import type { HostBuiltin } from "./host-types.ts";
import { compareCodePoints } from "../util/json-text.ts";
import { isObject } from "../util/object.ts";

type Json = unknown;

/** A node of the path tree: `null` ends a path (remove or keep the whole value here). */
type PathTree = Map<string, PathTree | null>;

/** A path segment as OPA's ast.Term key: strings and numbers are different keys. */
const segKey = (v: unknown): string => JSON.stringify(v);

/** OPA's parsePath: a `/`-separated JSON pointer (`~1`, `~0` unescaped) or an array of segments. */
export function parsePath(p: unknown): unknown[] | undefined {
  if (typeof p === "string") {
    if (p === "") return [];
    return p
      .replace(/^\/+/, "")
      .split("/")
      .map((s) => s.replaceAll("~1", "/").replaceAll("~0", "~"));
  }
  if (Array.isArray(p)) return p as unknown[];
  return undefined;
}

/** OPA's getJSONPaths + pathsToObject; undefined for an operand OPA refuses. */
function pathTree(paths: unknown): PathTree | undefined {
  if (!Array.isArray(paths)) return undefined;
  const root: PathTree = new Map();
  for (const p of paths) {
    const path = parsePath(p);
    if (path === undefined) return undefined;
    if (path.length === 0) continue;
    let node = root;
    let done = false;
    for (let i = 0; i < path.length - 1 && !done; i++) {
      const k = segKey(path[i]);
      const child = node.get(k);
      if (child === undefined) {
        const next: PathTree = new Map();
        node.set(k, next);
        node = next;
      } else if (child === null) {
        done = true;
      } else {
        node = child;
      }
    }
    if (!done) node.set(segKey(path[path.length - 1]), null);
  }
  return root;
}

/** OPA's jsonRemove: undefined removes the value. */
function remove(a: Json, b: PathTree | null | undefined): Json | undefined {
  if (b === undefined) return a;
  if (b === null) return undefined;
  if (Array.isArray(a)) {
    const out: Json[] = [];
    a.forEach((v, i) => {
      const d = remove(v, b.get(segKey(String(i))));
      if (d !== undefined) out.push(d);
    });
    return out;
  }
  if (isObject(a)) {
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(a)) {
      const d = remove(v, b.get(segKey(k)));
      if (d !== undefined) out[k] = d;
    }
    return out;
  }
  return a;
}

/** OPA's filterObject. */
function filter(o: Json, f: PathTree | null): Json {
  if (f === null) return o;
  if (Array.isArray(o)) {
    const out: Json[] = [];
    o.forEach((v, i) => {
      const sub = f.get(segKey(String(i)));
      if (sub !== undefined) out.push(filter(v, sub));
    });
    return out;
  }
  if (isObject(o)) {
    const out: Record<string, Json> = {};
    for (const [k, v] of Object.entries(o)) {
      const sub = f.get(segKey(k));
      if (sub !== undefined) out[k] = filter(v, sub);
    }
    return out;
  }
  return o;
}

function jsonRemove(obj: unknown, paths: unknown): Json | undefined {
  if (!isObject(obj)) return undefined;
  const tree = pathTree(paths);
  return tree === undefined ? undefined : remove(obj, tree);
}

function jsonFilter(obj: unknown, paths: unknown): Json | undefined {
  if (!isObject(obj)) return undefined;
  const tree = pathTree(paths);
  return tree === undefined ? undefined : filter(obj, tree);
}

/** Go's encoding/json string escaping (HTML-safe, `\b` and `\f` as of Go 1.22). */
export function goString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (c < 0x20 || ch === "<" || ch === ">" || ch === "&" || c === 0x2028 || c === 0x2029) {
      out += `\\u${c.toString(16).padStart(4, "0")}`;
    } else if (c >= 0xd800 && c <= 0xdfff)
      out += "\ufffd"; // a lone surrogate: invalid UTF-8 in Go
    else out += ch;
  }
  return `${out}"`;
}

/**
 * A number as OPA prints it: integers up to 2^53 and plain decimals are the same text in both;
 * anything JavaScript would print in exponent form or round is refused (thrown), never guessed.
 */
function goNumber(x: number): string {
  const t = String(x);
  if (!Number.isFinite(x) || /e/i.test(t) || (Number.isInteger(x) && !Number.isSafeInteger(x))) {
    throw new Error(
      `json.marshal_with_options: the number ${t} cannot be printed exactly as OPA does (OPA's numbers are arbitrary precision)`,
    );
  }
  return t;
}

/** Go's json.MarshalIndent layout (keys sorted, `": "`, empty collections stay `[]`/`{}`). */
function marshal(v: Json, prefix: string, indent: string | undefined, depth: number): string {
  if (v === null) return "null";
  if (typeof v === "boolean") return String(v);
  if (typeof v === "number") return goNumber(v);
  if (typeof v === "string") return goString(v);
  const pretty = indent !== undefined;
  const nl = (d: number) => (pretty ? `\n${prefix}${indent.repeat(d)}` : "");
  if (Array.isArray(v)) {
    if (v.length === 0) return "[]";
    return `[${v.map((x) => nl(depth + 1) + marshal(x, prefix, indent, depth + 1)).join(",")}${nl(depth)}]`;
  }
  const obj = v as Record<string, Json>;
  const keys = Object.keys(obj).sort(compareCodePoints); // Go's order: UTF-8 bytes
  if (keys.length === 0) return "{}";
  const sep = pretty ? ": " : ":";
  return `{${keys.map((k) => nl(depth + 1) + goString(k) + sep + marshal(obj[k], prefix, indent, depth + 1)).join(",")}${nl(depth)}}`;
}

function marshalWithOptions(v: unknown, opts: unknown): string | undefined {
  if (!isObject(opts)) return undefined;
  let indent = "\t";
  let prefix = "";
  let implicit = false;
  let explicit: boolean | undefined;
  for (const [k, o] of Object.entries(opts)) {
    if (k === "prefix" || k === "indent") {
      if (typeof o !== "string") return undefined;
      if (k === "prefix") prefix = o;
      else indent = o;
      implicit = true;
    } else if (k === "pretty") {
      if (typeof o !== "boolean") return undefined;
      explicit = o;
    } else {
      return undefined; // OPA: object contained unknown key
    }
  }
  const pretty = explicit ?? implicit;
  // Go's MarshalIndent does not prefix the first line; OPA adds it.
  return pretty ? prefix + marshal(v, prefix, indent, 0) : marshal(v, "", undefined, 0);
}

export const jsonHostBuiltins: Record<string, HostBuiltin> = {
  "json.remove": jsonRemove,
  "json.filter": jsonFilter,
  "json.marshal_with_options": marshalWithOptions,
};
