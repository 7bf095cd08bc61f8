/**
 * OPA's `json.patch(doc, patches)` (`topdown/json.go` on `internal/edittree`). OPA applies the
 * operations to an edit tree whose nodes keep the value they were created from; this module
 * keeps the same nodes, so its answers follow OPA's quirks too: stepping into an array element
 * that is not an inserted one reads the node's original array at that index (not the current
 * one) and re-inserts it, which matters after earlier inserts or removals in that array.
 *
 * A failed operation makes the call undefined, as in OPA (even with strict builtin errors: the
 * answer is boxed, see HOST_BOXED_RESULTS); only a `patches` operand that is not an array is a
 * builtin error. Operand types come from
 * HOST_TYPED_ARGS: a top-level set is refused (the answer would have to be a set, which the host
 * cannot return), and a set nested in an operand cannot reach the host at all. An object key
 * that is not a string (`[1]` as a path into an object) fails the evaluation when it would
 * appear in the answer.
 */
import { OpaBuiltinError, undefinedOnBuiltinError } from "./host-exact-json.ts";
import type { HostBuiltin } from "./host-types.ts";
import { parsePath } from "./host-json.ts";

type Json = unknown;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isComposite = (v: Json): boolean => typeof v === "object" && v !== null;

/** An operation that fails: OPA's json.patch is then undefined. */
class PatchFailed extends Error {}
function fail(msg: string): never {
  throw new PatchFailed(msg);
}

/** Rego equality of JSON values (key order ignored). */
function same(a: Json, b: Json): boolean {
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (isObj(a)) {
    if (!isObj(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && same(a[k], b[k]));
  }
  return a === b;
}

/** An object child: a scalar or a node, or a deletion of the key. */
type ObjChild = { key: Json; scalar?: Json; node?: Node; deleted?: true };
/** An array element: the n-th element of the node's original array, or an inserted value. */
type Elem = { orig: number } | { scalar: Json } | { node: Node };

/** An edit-tree node; `value` undefined once the root document is removed. */
class Node {
  value: Json | undefined;
  #children = new Map<string, ObjChild>();
  #elems: Elem[] = [];

  constructor(value: Json) {
    this.value = value;
    if (Array.isArray(value)) this.#elems = value.map((_, i) => ({ orig: i }));
  }

  /** InsertAtPath with an empty path: the node now stands for another value. */
  reset(value: Json): void {
    this.value = value;
    this.#children = new Map();
    this.#elems = Array.isArray(value) ? value.map((_, i) => ({ orig: i })) : [];
  }

  insert(key: Json, value: Json): Node {
    if (this.value === undefined) fail("deleted node encountered during insert operation");
    const child = new Node(value);
    if (isObj(this.value)) {
      const entry: ObjChild = isComposite(value) ? { key, node: child } : { key, scalar: value };
      this.#children.set(JSON.stringify(key), entry);
      return child;
    }
    if (Array.isArray(this.value)) {
      const idx = toIndex(this.#elems.length, key);
      if (idx < 0 || idx > this.#elems.length) fail("index for array insertion out of bounds");
      this.#elems.splice(idx, 0, isComposite(value) ? { node: child } : { scalar: value });
      return child;
    }
    return fail("expected composite type");
  }

  delete(key: Json): void {
    if (this.value === undefined) fail("deleted node encountered during delete operation");
    if (isObj(this.value)) {
      const k = JSON.stringify(key);
      const c = this.#children.get(k);
      if (c !== undefined) {
        if (c.deleted) fail("cannot delete an already deleted node");
        this.#children.set(k, { key, deleted: true });
        return;
      }
      if (typeof key !== "string" || !Object.hasOwn(this.value, key)) fail("cannot delete a key that does not exist");
      this.#children.set(k, { key, deleted: true });
      return;
    }
    if (Array.isArray(this.value)) {
      const idx = toIndex(this.#elems.length, key);
      if (idx < 0 || idx > this.#elems.length - 1) fail("index for array delete out of bounds");
      this.#elems.splice(idx, 1);
      return;
    }
    fail("expected composite type");
  }

  unfold(path: readonly Json[]): Node {
    if (path.length === 0) return this;
    if (this.value === undefined) fail("nil value encountered where composite value was expected");
    const [key, ...rest] = path;
    if (isObj(this.value)) {
      const c = this.#children.get(JSON.stringify(key));
      if (c !== undefined) {
        if (c.deleted) fail("cannot unfold a deleted node");
        return c.node !== undefined ? c.node.unfold(rest) : new Node(c.scalar).unfold(rest);
      }
      if (typeof key === "string" && Object.hasOwn(this.value, key))
        return this.insert(key, this.value[key]).unfold(rest);
      return fail("path does not exist in object");
    }
    if (Array.isArray(this.value)) {
      const idx = toIndex(this.#elems.length, key);
      const e = this.#elems[idx];
      if (e !== undefined && "scalar" in e) return new Node(e.scalar).unfold(rest);
      if (e !== undefined && "node" in e) return e.node.unfold(rest);
      // OPA reads the node's original array here, whatever was inserted or removed before idx.
      if (idx < 0 || idx >= this.value.length) fail("path does not exist in array");
      const v: Json = (this.value as Json[])[idx];
      this.delete(idx);
      return this.insert(idx, v).unfold(rest);
    }
    return fail("expected composite type");
  }

  render(): Json | undefined {
    const v = this.value;
    if (isObj(v)) {
      if (this.#children.size === 0) return v;
      const out: Record<string, Json> = {};
      for (const [k, x] of Object.entries(v)) if (!this.#children.has(JSON.stringify(k))) out[k] = x;
      for (const c of this.#children.values()) {
        if (c.deleted) continue;
        if (typeof c.key !== "string")
          throw new Error(
            `json.patch: Arbiter cannot answer an object with the non-string key ${JSON.stringify(c.key)}`,
          );
        out[c.key] = c.node !== undefined ? c.node.render() : c.scalar;
      }
      return out;
    }
    if (Array.isArray(v)) {
      const orig = v as Json[];
      return this.#elems.map((e) => ("orig" in e ? orig[e.orig] : "scalar" in e ? e.scalar : e.node.render()));
    }
    return v;
  }
}

/** OPA's toIndex: an integer, `-` (the end), or a decimal string without leading zeros. */
function toIndex(length: number, key: Json): number {
  if (typeof key === "number") return Number.isInteger(key) ? key : fail("invalid number type for indexing");
  if (typeof key === "string") {
    if (key === "-") return length;
    // Go's strconv.ParseInt: an optional sign, decimal digits, within 64 bits.
    if (!/^[+-]?\d+$/.test(key)) fail("invalid string for indexing");
    const n = BigInt(key);
    if (n > 9223372036854775807n || n < -9223372036854775808n) fail("invalid string for indexing");
    if (key !== "0" && key.startsWith("0")) fail("leading zeros are not allowed in JSON paths");
    return Number(n);
  }
  return fail("invalid type for indexing");
}

/** OPA's parsePath (host-json.ts), failing on another type. */
function pointer(p: Json): Json[] {
  return (parsePath(p) as Json[] | undefined) ?? fail("path must be a string or an array");
}

const OPS = new Set(["add", "remove", "replace", "move", "copy", "test"]);

function attribute(o: Record<string, Json>, name: string): Json {
  return Object.hasOwn(o, name) ? o[name] : fail(`missing '${name}' attribute`);
}

/** OPA's applyPatches; throws PatchFailed where OPA's is an error. */
function applyPatches(doc: Json, ops: Json[]): Json | undefined {
  const root = new Node(doc);
  const insertAt = (path: Json[], value: Json | undefined): void => {
    if (value === undefined) fail("cannot insert nil value into EditTree");
    if (path.length === 0) root.reset(value);
    else root.unfold(path.slice(0, -1)).insert(path[path.length - 1], value);
  };
  const deleteAt = (path: Json[]): void => {
    if (path.length === 0) {
      if (root.value === undefined) fail("deleted node encountered during delete operation");
      root.value = undefined;
    } else root.unfold(path.slice(0, -1)).delete(path[path.length - 1]);
  };
  for (const o of ops) {
    if (!isObj(o)) fail("must be an array of JSON-Patch objects, but at least one element is not an object");
    const op = attribute(o, "op");
    if (typeof op !== "string") fail("attribute 'op' must be a string");
    if (!OPS.has(op as string)) fail(`unrecognized op '${String(op)}'`);
    const rawPath = attribute(o, "path");
    const rawFrom = op === "move" || op === "copy" ? attribute(o, "from") : undefined;
    const value = op === "add" || op === "replace" || op === "test" ? attribute(o, "value") : undefined;
    const path = pointer(rawPath);
    switch (op) {
      case "add":
        insertAt(path, value);
        break;
      case "remove":
        deleteAt(path);
        break;
      case "replace":
        deleteAt(path);
        insertAt(path, value);
        break;
      case "move":
      case "copy": {
        const from = pointer(rawFrom);
        const chunk = root.unfold(from).render();
        if (op === "move") deleteAt(from);
        insertAt(path, chunk);
        break;
      }
      case "test": {
        const chunk = root.unfold(path).render();
        if (chunk === undefined || !same(chunk, value)) fail("value from EditTree != patch value");
        break;
      }
    }
  }
  return root.render();
}

function jsonPatch(doc: Json, patches: Json, docType: unknown, patchesType: unknown): Json | undefined {
  if (docType === "set")
    throw new Error("json.patch: Arbiter cannot patch a set (the answer would be a set, which the host cannot return)");
  if (patchesType !== "array") throw new OpaBuiltinError(`json.patch: operand 2 must be array but got ${patchesType}`);
  try {
    const out = applyPatches(doc, patches as Json[]);
    if (out === undefined)
      throw new Error("json.patch: Arbiter cannot reproduce OPA's answer when the patch removes the whole document");
    return [out];
  } catch (err) {
    // OPA: a failed operation is undefined, not a builtin error (HOST_BOXED_RESULTS).
    if (err instanceof PatchFailed) return [];
    throw err;
  }
}

export const jsonPatchHostBuiltins: Record<string, HostBuiltin> = {
  "json.patch": undefinedOnBuiltinError((...args: unknown[]) => jsonPatch(...(args as [Json, Json, unknown, unknown]))),
};
