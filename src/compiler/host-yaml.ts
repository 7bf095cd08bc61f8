/**
 * YAML as OPA reads and writes it: `yaml.unmarshal`, `yaml.is_valid`, `yaml.marshal`, and YAML
 * data files (`yamlData`). OPA reads YAML with sigs.k8s.io/yaml (`YAMLToJSON`: go-yaml v2, then
 * JSON): YAML 1.1 scalars (`yes`, `on` and `y` are true, `0777` is octal), timestamps and base-60
 * numbers left as text, only the first document read, and a document JSON cannot hold is an error
 * (a key that is null or a collection, a NaN or an infinity). The SDK's implementation (the `yaml`
 * 1.x package, YAML 1.2) answered `"yes"`, `777` and `{"{ x: 1 }": 1}` for these: other answers
 * than OPA's, without a word.
 *
 * Built on the `yaml` package's YAML 1.1 schema, with go-yaml's number rules in place of its own:
 * after dropping every `_`, an integer as Go's `strconv.ParseInt(s, 0, 64)` (then `ParseUint`)
 * reads it, else a float if it matches go-yaml's float pattern, else text. Integers go back to
 * the runtime exactly (a HOST_JSON_IO builtin, builtins.ts). What Arbiter cannot answer exactly is
 * refused (the evaluation fails) rather than answered otherwise: an unsigned integer of 2^63 or
 * more, a non-integer number as a key (Go prints it as a float32), `!!binary` bytes that are not
 * UTF-8.
 */
import { createRequire } from "node:module";
import { parseAllDocuments, type ScalarTag, type Tags } from "yaml";
import { builtinError, type ExactJson, exactJsonText, OpaBuiltinError } from "./host-exact-json.ts";

const INT = "tag:yaml.org,2002:int";
const FLOAT = "tag:yaml.org,2002:float";
const TWO_63 = 2n ** 63n;
const TWO_64 = 2n ** 64n;

/** Go's `strconv.ParseInt(s, 0, 64)`, else `ParseUint(s, 0, 64)`; undefined where both fail. */
function goInteger(s: string): bigint | undefined {
  const m = /^([-+]?)(?:0[xX]([0-9a-fA-F]+)|0[oO]([0-7]+)|0[bB]([01]+)|0([0-7]*)|([1-9][0-9]*))$/.exec(s);
  if (!m) return undefined;
  const [, sign, hex, oct1, bin, oct2, dec] = m;
  const v =
    hex !== undefined
      ? BigInt("0x" + hex)
      : oct1 !== undefined
        ? BigInt("0o" + oct1)
        : bin !== undefined
          ? BigInt("0b" + bin)
          : dec !== undefined
            ? BigInt(dec)
            : BigInt("0o" + (oct2 || "0"));
  if (sign === "-") return v <= TWO_63 ? -v : undefined;
  // ParseInt takes up to 2^63 - 1; ParseUint (no sign allowed) up to 2^64 - 1.
  if (sign === "+") return v < TWO_63 ? v : undefined;
  return v < TWO_64 ? v : undefined;
}

const GO_FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;

/** go-yaml's reading of a plain scalar that starts like a number: integer, float, or text. */
function goNumber(str: string): bigint | number | string {
  const plain = str.replace(/_/g, "");
  const int = goInteger(plain);
  if (int !== undefined) return int;
  return GO_FLOAT.test(plain) ? Number(plain) : str;
}

const INF_NAN = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;

/** Scalars whose first character is a digit, a sign or a dot (go-yaml's hint table for numbers). */
const numberTag: ScalarTag = {
  tag: INT,
  default: true,
  identify: (v) => typeof v === "bigint",
  test: /^[-+.0-9][-+._0-9a-zA-Z]*$/,
  resolve: goNumber,
};
const infNanTag: ScalarTag = {
  tag: FLOAT,
  default: true,
  identify: (v) => typeof v === "number",
  test: INF_NAN,
  resolve: (str) =>
    !INF_NAN.test(str) ? goNumber(str) : /nan$/i.test(str) ? NaN : str.startsWith("-") ? -Infinity : Infinity,
};

/** YAML 1.1's tags that go-yaml v2 reads alike; numbers as above; the rest stays text or a map. */
const DROPPED = new Set([INT, FLOAT, ...["timestamp", "set", "omap", "pairs"].map((t) => "tag:yaml.org,2002:" + t)]);
const goTags = (tags: Tags): Tags => [
  infNanTag, // before numberTag, whose test also takes ".inf"
  numberTag,
  ...tags.filter((t) => typeof t === "string" || !DROPPED.has(t.tag)),
];

/** OPA's `yaml.unmarshal`: the first document as JSON; OpaBuiltinError where OPA errs. */
export function yamlUnmarshal(text: string): ExactJson {
  let docs;
  try {
    docs = parseAllDocuments(text, { version: "1.1", customTags: goTags, uniqueKeys: false, prettyErrors: false });
  } catch (err) {
    // Syntax errors are the documents' own (below); a throw is a limit, such as the stack's depth.
    throw new Error(`yaml.unmarshal: the document is not answered: ${(err as Error).message}`);
  }
  const doc = Array.isArray(docs) ? docs[0] : undefined;
  if (doc === undefined) return null; // no document: go-yaml leaves its target nil, JSON null
  if (doc.errors.length > 0) builtinError("yaml.unmarshal", `yaml: ${doc.errors[0]!.message}`);
  let value: unknown;
  try {
    value = doc.toJS({ mapAsMap: true });
  } catch (err) {
    // Excessive aliasing (a "billion laughs" document) is refused by go-yaml v2.4 too.
    if (err instanceof ReferenceError && /alias/i.test(err.message))
      builtinError("yaml.unmarshal", `yaml: ${err.message}`);
    throw new Error(`yaml.unmarshal: the document is not answered: ${(err as Error).message}`);
  }
  return toJson(value);
}

/** `yaml.is_valid`: whether OPA's unmarshal succeeds (Arbiter's own limits do not make it invalid). */
export function yamlIsValid(text: string): boolean {
  try {
    yamlUnmarshal(text);
    return true;
  } catch (err) {
    return !(err instanceof OpaBuiltinError);
  }
}

/**
 * The JSON of `toJS`'s value. OPA's errors throw at once; a limit of Arbiter's is thrown only once
 * the whole value is converted, so that a document OPA refuses is refused as OPA does.
 */
function toJson(root: unknown): ExactJson {
  let limit: string | undefined;
  const refuse = (message: string): null => {
    limit ??= `yaml.unmarshal: ${message}`;
    return null;
  };
  const open = new Set<object>();
  const conv = (v: unknown): ExactJson => {
    if (v === null || typeof v === "string" || typeof v === "boolean") return v;
    if (v === undefined) return null;
    if (typeof v === "bigint") {
      return v < TWO_63
        ? v
        : refuse(`the integer ${v} is 2^63 or more: OPA reads it exactly, Arbiter's runtime cannot`);
    }
    if (typeof v === "number") {
      // Go's encoding/json has no NaN or infinity.
      if (!Number.isFinite(v)) builtinError("yaml.unmarshal", `json: unsupported value: ${goFloatName(v)}`);
      return v;
    }
    if (v instanceof Uint8Array) {
      // !!binary: go-yaml decodes the base64 into the string's bytes.
      try {
        return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(v);
      } catch {
        return refuse("!!binary bytes that are not UTF-8 (OPA's answer replaces each invalid byte as Go does)");
      }
    }
    if (!Array.isArray(v) && !(v instanceof Map)) {
      return refuse(`a value of type ${Object.prototype.toString.call(v)}`);
    }
    // An alias inside its own anchor: go-yaml refuses it ("anchor value contains itself").
    if (open.has(v)) builtinError("yaml.unmarshal", "yaml: an anchor's value contains itself");
    open.add(v);
    try {
      if (Array.isArray(v)) return v.map(conv);
      const out: { [k: string]: ExactJson } = {};
      for (const [k, x] of v) {
        const value = conv(x);
        Object.defineProperty(out, jsonKey(k, refuse), { value, enumerable: true, writable: true, configurable: true });
      }
      return out;
    } finally {
      open.delete(v);
    }
  };
  const out = conv(root);
  if (limit !== undefined) throw new Error(limit);
  return out;
}

const goFloatName = (v: number): string => (Number.isNaN(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");

/** sigs.k8s.io/yaml's key conversion: text, integers and booleans as text; anything else errs. */
function jsonKey(k: unknown, refuse: (message: string) => null): string {
  if (typeof k === "string") return k;
  if (typeof k === "boolean") return k ? "true" : "false";
  if (typeof k === "bigint") {
    // An int64 key prints as decimal; a uint64 one has no case there and is an error.
    if (k >= TWO_63) builtinError("yaml.unmarshal", `unsupported map key of type: uint64, key: ${k}`);
    return k.toString();
  }
  if (typeof k === "number") {
    if (Number.isNaN(k)) return ".nan";
    if (k === Infinity) return ".inf";
    if (k === -Infinity) return "-.inf";
    refuse(`the number ${k} as a key (OPA prints it as a Go float32)`);
    return "";
  }
  const type = k === null ? "<nil>" : Array.isArray(k) ? "[]interface {}" : "map[interface {}]interface {}";
  builtinError("yaml.unmarshal", `unsupported map key of type: ${type}`);
}

/**
 * A YAML data file (a bundle's `data.yaml`, `arbiter eval --input x.yaml`) as OPA loads it: its
 * `util.Unmarshal` is the same reader as `yaml.unmarshal`. Plain JavaScript values; an integer
 * beyond 2^53 is refused (the loaders hold numbers as doubles). Errors name no builtin.
 */
export function yamlData(text: string): unknown {
  try {
    return doubles(yamlUnmarshal(text), "would not load exactly");
  } catch (err) {
    throw new Error((err as Error).message.replace(/^yaml\.unmarshal: /, ""), { cause: err });
  }
}

/** `v` with its integers as doubles; one beyond 2^53 throws (`why` ends the message). */
function doubles(v: ExactJson, why: string): unknown {
  if (typeof v === "bigint") {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new Error(`yaml.unmarshal: the integer ${v} is beyond 2^53 and ${why}`);
    }
    return Number(v);
  }
  if (Array.isArray(v)) return v.map((x) => doubles(x, why));
  if (v === null || typeof v !== "object") return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    Object.defineProperty(out, k, { value: doubles(x, why), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * The `yaml` 1.x package the SDK's yaml.marshal uses, so the text stays what it printed before
 * (block style, two-space indent), with its YAML 1.1 schema: a string that a YAML 1.1 reader would
 * take for something else (`n`, `yes`, `2001-12-14`, `190:20:30`) is quoted, as go-yaml v2 quotes
 * it. Under YAML 1.2 `{"n": 1}` was written `n: 1`, which OPA (and this file) read back as
 * `{"false": 1}`.
 */
const yaml1 = createRequire(createRequire(import.meta.url).resolve("@open-policy-agent/opa-wasm"))("yaml") as {
  stringify(value: unknown, options: { version: "1.1" }): string;
};

/**
 * OPA's `yaml.marshal` of a JSON value (sets already arrays). The text is checked by reading it
 * back as OPA would: a string that go-yaml reads as a number but YAML 1.1 does not (`0o17`, `0X1F`)
 * would come back as another value, so such a value is refused rather than answered.
 */
export function yamlMarshal(value: unknown): string {
  const text = yaml1.stringify(value, { version: "1.1" });
  let back: string;
  try {
    back = exactJsonText(yamlUnmarshal(text));
  } catch {
    back = "";
  }
  if (back !== exactJsonText(value as ExactJson)) {
    throw new Error(
      "yaml.marshal: the text does not read back as the same value with OPA's YAML reader " +
        "(a string such as 0o17 or 0X1F, which YAML 1.1 writes unquoted and go-yaml reads as a number); not answered",
    );
  }
  return text;
}

/**
 * `yaml.unmarshal` and `yaml.marshal` on plain values, for a module that imports them by OPA's
 * name (`opa build -t wasm`), where the engine passes and takes values, not JSON or typed text
 * (engine/policy-instance.ts): an integer beyond 2^53 cannot be answered exactly there, so it is
 * refused; OPA's errors answer undefined. (`yaml.is_valid` takes plain values as it is.)
 */
export const yamlBuiltinsByValue: Record<string, (...args: unknown[]) => unknown> = {
  "yaml.unmarshal": (s) => {
    if (typeof s !== "string") return undefined;
    try {
      return doubles(yamlUnmarshal(s), "is not answered to a module built by opa");
    } catch (err) {
      if (err instanceof OpaBuiltinError) return undefined;
      throw err;
    }
  },
  "yaml.marshal": (v) => yamlMarshal(v),
};
