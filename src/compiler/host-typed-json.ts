/**
 * Typed text, for the host builtins listed in HOST_TYPED_JSON (builtins.ts): JSON as the
 * runtime's `internal.typed_marshal` writes it, where a set is `<a,b>` (elements in the
 * runtime's order, Rego's sort order) and integers are exact. Sets decode to RegoSet, integers
 * (no fraction, no exponent) to BigInt; answers are written back the same way and parsed by
 * `internal.typed_unmarshal`, so a set in an answer stays a set.
 */
import { textIo } from "./host-exact-json.ts";
import { compareCodePoints } from "../util/json-text.ts";

/** A Rego set crossing the boundary; `items` keep the runtime's order (sorted, no duplicates). */
export class RegoSet {
  constructor(readonly items: readonly TypedJson[]) {}
}

/** A value of typed text: JSON with BigInt integers and RegoSet sets. */
export type TypedJson = null | boolean | number | bigint | string | RegoSet | TypedJson[] | { [k: string]: TypedJson };

/** Deepest nesting parsed; the runtime's own JSON parser stops at 1000 too. */
const MAX_DEPTH = 1000;

/** Parses typed text from the runtime. Malformed text is a bug in Arbiter: it throws. */
export function parseTypedJson(text: string): TypedJson {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  const expect = (c: string): void => {
    if (text[i] !== c) throw new Error(`malformed typed JSON from the runtime at ${i}`);
    i++;
  };
  const list = (close: string, depth: number): TypedJson[] => {
    const out: TypedJson[] = [];
    ws();
    if (text[i] === close) return (i++, out);
    for (;;) {
      out.push(value(depth));
      ws();
      if (text[i] === close) return (i++, out);
      expect(",");
    }
  };
  const value = (depth: number): TypedJson => {
    if (depth > MAX_DEPTH) throw new Error("typed JSON from the runtime nests too deeply");
    ws();
    const c = text[i];
    if (c === "[") return (i++, list("]", depth + 1));
    if (c === "<") return (i++, new RegoSet(list(">", depth + 1)));
    if (c === "{") {
      i++;
      const out: Record<string, TypedJson> = {};
      ws();
      if (text[i] === "}") return (i++, out);
      for (;;) {
        ws();
        const k = value(depth + 1);
        if (typeof k !== "string") throw new Error(`malformed typed JSON from the runtime at ${i}`);
        ws();
        expect(":");
        // defineProperty: a key "__proto__" is an own member, not the prototype.
        Object.defineProperty(out, k, {
          value: value(depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
        ws();
        if (text[i] === "}") return (i++, out);
        expect(",");
      }
    }
    if (c === '"') {
      const raw = text.slice(i, i + 1 + indexOfClose(text, i));
      i += raw.length;
      try {
        return JSON.parse(raw) as string;
      } catch {
        throw new Error(`malformed typed JSON from the runtime at ${i}`);
      }
    }
    const m = /^(?:true|false|null|-?\d+(\.\d+)?([eE][+-]?\d+)?)/.exec(text.slice(i, i + 400));
    if (!m) throw new Error(`malformed typed JSON from the runtime at ${i}`);
    i += m[0].length;
    if (m[0] === "true" || m[0] === "false" || m[0] === "null") return JSON.parse(m[0]) as TypedJson;
    return m[1] === undefined && m[2] === undefined ? BigInt(m[0]) : Number(m[0]);
  };
  const v = value(0);
  ws();
  if (i !== text.length) throw new Error(`malformed typed JSON from the runtime at ${i}`);
  return v;
}

/** Length of the string starting at text[start] (a quote) up to its closing quote. */
function indexOfClose(text: string, start: number): number {
  let j = start + 1;
  while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
  return j - start;
}

/** Typed text of a value: sets as `<...>`, BigInt integers exact. */
export function typedJsonText(v: TypedJson): string {
  if (typeof v === "bigint") return v.toString();
  if (v instanceof RegoSet) return `<${v.items.map(typedJsonText).join(",")}>`;
  if (Array.isArray(v)) return `[${v.map(typedJsonText).join(",")}]`;
  if (typeof v === "number" && !Number.isFinite(v)) throw new Error(`the number ${v} has no JSON text`);
  if (v !== null && typeof v === "object") {
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}:${typedJsonText(x)}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

/** True for a plain object (not an array, not a set). */
export function isTypedObject(v: TypedJson): v is { [k: string]: TypedJson } {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof RegoSet);
}

/**
 * Wraps an implementation on typed values as a HOST_TYPED_JSON builtin (texts in, text out).
 * OpaBuiltinError means OPA's "undefined" (or a strict-mode error); any other throw fails the
 * evaluation, which is how a builtin refuses a value it cannot answer exactly.
 */
export function typedIo(
  f: (...args: TypedJson[]) => TypedJson | undefined,
): (...texts: unknown[]) => string | undefined {
  return textIo(parseTypedJson, typedJsonText, f);
}

/**
 * The value with sets turned into arrays and BigInt integers into numbers, for builtins whose
 * code works on plain JSON values; throws (failing the evaluation) on an integer a double does
 * not hold exactly. A set becomes the array of its elements in Rego's order, as OPA's JSON
 * encoding of a set is.
 */
export function toPlainJson(v: TypedJson, what: string): unknown {
  if (typeof v === "bigint") {
    const n = Number(v);
    if (BigInt(n) !== v)
      throw new Error(
        `${what}: an integer beyond 2^53 cannot be handled exactly by a builtin implemented in JavaScript; OPA's numbers are arbitrary precision, so Arbiter refuses rather than answer with another number`,
      );
    return n;
  }
  if (v instanceof RegoSet) return v.items.map((x) => toPlainJson(x, what));
  if (Array.isArray(v)) return v.map((x) => toPlainJson(x, what));
  if (isTypedObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v))
      Object.defineProperty(out, k, {
        value: toPlainJson(x, what),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    return out;
  }
  return v;
}

/**
 * A text equal for equal Rego values: the runtime writes a number one way whatever its
 * representation (1.0 as 1), sets come sorted, and object keys are sorted here.
 */
export function canonTyped(v: TypedJson): string {
  if (v instanceof RegoSet) return `<${v.items.map(canonTyped).join(",")}>`;
  if (Array.isArray(v)) return `[${v.map(canonTyped).join(",")}]`;
  if (isTypedObject(v))
    return `{${Object.keys(v)
      .sort(compareCodePoints)
      .map((k) => `${JSON.stringify(k)}:${canonTyped(v[k]!)}`)
      .join(",")}}`;
  return typeof v === "bigint" ? v.toString() : JSON.stringify(v);
}
