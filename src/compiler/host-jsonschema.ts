/**
 * OPA's `json.verify_schema` and `json.match_schema` (`topdown/jsonschema.go`). OPA validates
 * with its copy of xeipuuv/gojsonschema (Hybrid draft: 4, 6 and 7 keywords, no meta-schema
 * check), and its answers carry that library's exact texts, in its order. This module mirrors
 * gojsonschema's parser (first error wins, same texts) and validator (same error order, types,
 * fields and descriptions) for a subset of keywords; Ajv then checks the verdict, so a slip in
 * the mirror fails the evaluation instead of answering.
 *
 * Refused with an error saying Arbiter cannot reproduce OPA (never another answer): keywords
 * outside the subset (`$ref`, ids, `$schema`, combinators, patterns, formats, ...), numbers
 * JavaScript cannot hold exactly, and answers whose order OPA leaves to Go's map iteration
 * (errors from two different properties of one object). `$ref` is refused before anything is
 * resolved, so no schema is ever fetched.
 *
 * Operand types come from HOST_TYPED_ARGS (a set arrives as an array; a nested set cannot reach
 * the host at all). OPA's builtin errors throw OpaBuiltinError (undefined, or a failed
 * evaluation under strict builtin errors).
 */
import { Ajv, type ValidateFunction } from "ajv";
import { OpaBuiltinError } from "./host-exact-json.ts";
import { goString } from "./host-json.ts";
import type { HostBuiltin } from "./host-types.ts";

type Json = unknown;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Arbiter's own limit: always fails the evaluation (never undefined). */
class Unsupported extends Error {}

const unsupported = (why: string): never => {
  throw new Unsupported(why);
};

/** A schema error gojsonschema reports while compiling (text without the builtin's prefix). */
class SchemaError extends Error {}

const JSON_TYPES = ["array", "boolean", "integer", "number", "null", "object", "string"];

/** Keywords gojsonschema reads that this mirror does not: a schema using one is refused. */
const REFUSED_KEYWORDS = new Set([
  "$ref",
  "$id",
  "id",
  "definitions",
  "patternProperties",
  "propertyNames",
  "dependencies",
  "additionalItems",
  "multipleOf",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "pattern",
  "format",
  "contains",
  "oneOf",
  "anyOf",
  "allOf",
  "not",
  "if",
  "then",
  "else",
]);

/** Bounds on what one call may make the host do (schemas and documents come from input). */
const MAX_DEPTH = 64;
const MAX_NODES = 100_000;

/** Go's byte order of UTF-8 strings (map keys), which is code point order. */
function goKeyOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** gojsonschema's marshalWithoutNumber: Go's json.Marshal of the value decoded as float64s. */
function goJson(v: Json): string {
  if (v === null) return "null";
  if (typeof v === "boolean") return String(v);
  // Go prints float64 like JavaScript (same exponent thresholds), except negative zero.
  if (typeof v === "number") return Object.is(v, -0) ? "-0" : String(v);
  if (typeof v === "string") return goString(v);
  if (Array.isArray(v)) return `[${v.map(goJson).join(",")}]`;
  const obj = v as Record<string, Json>;
  const keys = Object.keys(obj).sort(goKeyOrder);
  return `{${keys.map((k) => `${goString(k)}:${goJson(obj[k])}`).join(",")}}`;
}

interface Sub {
  pass?: boolean;
  types: string[];
  properties: [string, Sub][];
  additionalProperties?: boolean | Sub;
  items?: Sub;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minProperties?: number;
  maxProperties?: number;
  minItems?: number;
  maxItems?: number;
  uniqueItems: boolean;
  required: string[];
  enum?: string[];
  constText?: string;
}

/** Every number must be one JavaScript holds exactly as OPA's decimal text (f64 integers up to 2^53). */
function checkNumbers(v: Json, budget: { n: number }, depth: number): void {
  if (--budget.n < 0) unsupported(`the value has more than ${MAX_NODES} nodes`);
  if (depth > MAX_DEPTH) unsupported(`the value is nested deeper than ${MAX_DEPTH} levels`);
  if (typeof v === "number") {
    if (!Number.isFinite(v) || (Number.isInteger(v) && !Number.isSafeInteger(v)))
      unsupported(`the number ${v} is beyond what Arbiter holds exactly`);
  } else if (Array.isArray(v)) v.forEach((x) => checkNumbers(x, budget, depth + 1));
  else if (isObj(v)) Object.values(v).forEach((x) => checkNumbers(x, budget, depth + 1));
}

/** OPA's astValueToJSONSchemaLoader: a JSON string, an object or an array. */
/**
 * gojsonschema compares numbers exactly (big.Rat) where JavaScript holds f64: a number literal
 * in JSON text is accepted only when f64 keeps its order and integrality, i.e. a safe integer or
 * at most 15 significant digits within the normal range.
 */
function checkNumberLiterals(text: string): void {
  const num = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === "\\") i++;
      continue;
    }
    if (c !== "-" && (c < "0" || c > "9")) continue;
    num.lastIndex = i;
    const tok = num.exec(text)?.[0];
    if (tok === undefined) return; // not a number: JSON.parse has rejected the text already
    i += tok.length - 1;
    const x = Number(tok);
    if (/^-?\d+$/.test(tok) && Number.isSafeInteger(x)) continue;
    const mantissa = tok.replace(/[eE].*$/, "").replace(/[-.]/g, "");
    const digits = mantissa.replace(/^0+/, "").replace(/0+$/, "");
    const exact = x === 0 ? digits === "" : Number.isFinite(x) && Math.abs(x) >= 1e-300 && digits.length <= 15;
    if (!exact) unsupported(`the number ${tok} cannot be compared exactly as OPA does`);
  }
}

function load(v: Json, type: unknown): Json {
  let out: Json;
  if (type === "string") {
    try {
      out = JSON.parse(v as string) as Json;
    } catch {
      throw new SchemaError("invalid JSON string");
    }
    checkNumberLiterals(v as string);
  } else if (type === "object" || type === "array") out = v;
  else throw new SchemaError("wrong type, expected string or object");
  checkNumbers(out, { n: MAX_NODES }, 0);
  return out;
}

const invalidType = (expected: string, given: string) =>
  new SchemaError(`Invalid type. Expected: ${expected}, given: ${given}`);

/** gojsonschema's mustBeInteger (an integral json.Number), else "x must be of an integer". */
function integerKeyword(m: Record<string, Json>, key: string): number | undefined {
  if (!Object.hasOwn(m, key)) return undefined;
  const v = m[key];
  if (typeof v !== "number" || !Number.isInteger(v)) throw new SchemaError(`${key} must be of an integer`);
  if (v < 0) throw new SchemaError(`${key} must be greater than or equal to 0`);
  return v;
}

function numberKeyword(m: Record<string, Json>, key: string): number | undefined {
  if (!Object.hasOwn(m, key)) return undefined;
  const v = m[key];
  if (typeof v !== "number") throw new SchemaError(`${key} must be of a number`);
  return v;
}

function stringKeyword(m: Record<string, Json>, key: string): void {
  if (Object.hasOwn(m, key) && typeof m[key] !== "string") throw invalidType("string", key);
}

function arrayKeyword(m: Record<string, Json>, key: string): Json[] {
  if (!Object.hasOwn(m, key)) return [];
  const v = m[key];
  if (!Array.isArray(v)) throw new SchemaError(`${key} must be of an array`);
  return v;
}

/** gojsonschema's parseSchema for the subset, keyword by keyword in its order. */
function parse(node: Json, depth: number): Sub {
  if (depth > MAX_DEPTH) unsupported(`the schema is nested deeper than ${MAX_DEPTH} levels`);
  const s: Sub = { types: [], properties: [], uniqueItems: false, required: [] };
  if (typeof node === "boolean") {
    s.pass = node; // Hybrid draft: booleans are schemas
    return s;
  }
  if (!isObj(node)) throw new SchemaError("Expected: valid schema, given: Invalid JSON");
  for (const k of Object.keys(node)) {
    if (REFUSED_KEYWORDS.has(k)) unsupported(`the schema keyword "${k}" is not supported`);
  }
  stringKeyword(node, "title");
  stringKeyword(node, "description");
  if (Object.hasOwn(node, "type")) {
    const t = node.type;
    const list = typeof t === "string" ? [t] : Array.isArray(t) ? t : undefined;
    if (list === undefined) throw invalidType("type", "string/array of strings");
    for (const x of list) {
      if (typeof x !== "string") throw invalidType("type", "string/array of strings");
      if (!JSON_TYPES.includes(x))
        throw new SchemaError(
          `has a primitive type that is NOT VALID -- given: /${x}/ Expected valid values are:[${JSON_TYPES.join(" ")}]`,
        );
      if (s.types.includes(x)) throw new SchemaError(`${x} type is duplicated`);
      s.types.push(x);
    }
  }
  if (Object.hasOwn(node, "properties")) {
    const props = node.properties;
    if (!isObj(props)) throw new SchemaError("properties must be of type object");
    // Go parses the properties in map order and stops at the first error: with errors in two
    // properties, which one OPA reports is left to chance.
    const failed: SchemaError[] = [];
    for (const [k, v] of Object.entries(props)) {
      try {
        s.properties.push([k, parse(v, depth + 1)]);
      } catch (err) {
        if (!(err instanceof SchemaError)) throw err;
        failed.push(err);
      }
    }
    if (failed.length > 1) unsupported("two properties of the schema are invalid and OPA reports either one");
    if (failed.length === 1) throw failed[0]!;
  }
  if (Object.hasOwn(node, "additionalProperties")) {
    const ap = node.additionalProperties;
    if (typeof ap === "boolean") s.additionalProperties = ap;
    else if (isObj(ap)) s.additionalProperties = parse(ap, depth + 1);
    else throw invalidType("boolean/valid schema", "additionalProperties");
  }
  if (Object.hasOwn(node, "items")) {
    const it = node.items;
    if (Array.isArray(it)) unsupported('an array of "items" schemas is not supported');
    if (typeof it !== "boolean" && !isObj(it)) throw invalidType("valid schema/array of schemas", "items");
    s.items = parse(it, depth + 1);
  }
  s.minimum = numberKeyword(node, "minimum");
  s.maximum = numberKeyword(node, "maximum");
  s.minLength = integerKeyword(node, "minLength");
  s.maxLength = integerKeyword(node, "maxLength");
  if (s.minLength !== undefined && s.maxLength !== undefined && s.minLength > s.maxLength)
    throw new SchemaError("minLength cannot be greater than maxLength");
  s.minProperties = integerKeyword(node, "minProperties");
  s.maxProperties = integerKeyword(node, "maxProperties");
  if (s.minProperties !== undefined && s.maxProperties !== undefined && s.minProperties > s.maxProperties)
    throw new SchemaError("minProperties cannot be greater than maxProperties");
  for (const r of arrayKeyword(node, "required")) {
    if (typeof r !== "string") throw invalidType("string", "required");
    if (s.required.includes(r)) throw new SchemaError("required items must be unique");
    s.required.push(r);
  }
  s.minItems = integerKeyword(node, "minItems");
  s.maxItems = integerKeyword(node, "maxItems");
  if (Object.hasOwn(node, "uniqueItems")) {
    if (typeof node.uniqueItems !== "boolean") throw new SchemaError("uniqueItems must be of a boolean");
    s.uniqueItems = node.uniqueItems;
  }
  if (Object.hasOwn(node, "const")) s.constText = goJson(node.const);
  if (Object.hasOwn(node, "enum")) {
    s.enum = [];
    for (const v of arrayKeyword(node, "enum")) {
      const text = goJson(v);
      if (s.enum.includes(text)) throw new SchemaError("enum items must be unique");
      s.enum.push(text);
    }
  }
  return s;
}

/** The root: `$schema` picks a draft (refused); otherwise Hybrid. */
function compileSchema(doc: Json): Sub {
  if (typeof doc !== "boolean" && !isObj(doc)) throw new SchemaError("schema is invalid");
  if (isObj(doc) && Object.hasOwn(doc, "$schema")) unsupported('the schema keyword "$schema" is not supported');
  return parse(doc, 0);
}

interface ResultError {
  error: string;
  type: string;
  field: string;
  desc: string;
}

/** A number in a description as Go's big.Float prints it (%v: shortest, exponent from 1e6). */
function goBigFloat(x: number): string {
  const t = String(x);
  const ok = x === 0 || (Math.abs(x) >= 1e-4 && Math.abs(x) < 1e6);
  if (!ok || !/^-?\d+(\.\d+)?$/.test(t) || t.replace(/[-.]/g, "").replace(/^0+/, "").length > 15)
    unsupported(`the bound ${t} would be printed differently by OPA`);
  return Object.is(x, -0) ? "-0" : t;
}

class Validator {
  readonly errors: ResultError[] = [];

  #add(path: readonly string[], type: string, desc: string): void {
    const field = path.length === 0 ? "(root)" : path.join(".");
    this.errors.push({ error: `${field}: ${desc}`, type, field, desc });
  }

  #field(path: readonly string[]): string {
    return path.length === 0 ? "(root)" : path.join(".");
  }

  validate(s: Sub, v: Json, path: readonly string[]): void {
    if (s.pass !== undefined) {
      if (!s.pass) this.#add(path, "false", "False always fails validation");
      return;
    }
    const given =
      v === null
        ? "null"
        : typeof v === "number"
          ? Number.isInteger(v)
            ? "integer"
            : "number"
          : Array.isArray(v)
            ? "array"
            : typeof v === "object"
              ? "object"
              : typeof v;
    const typed = s.types.length > 0;
    const ok = s.types.includes(given) || (given === "integer" && s.types.includes("number")) || !typed;
    if (!ok) {
      const expected = s.types.length === 1 ? s.types[0]! : `[${s.types.join(",")}]`;
      this.#add(path, "invalid_type", `Invalid type. Expected: ${expected}, given: ${given}`);
      return;
    }
    if (typeof v === "number") {
      if (s.maximum !== undefined && v > s.maximum)
        this.#add(path, "number_lte", `Must be less than or equal to ${goBigFloat(s.maximum)}`);
      if (s.minimum !== undefined && v < s.minimum)
        this.#add(path, "number_gte", `Must be greater than or equal to ${goBigFloat(s.minimum)}`);
      this.#common(s, v, path);
    } else if (Array.isArray(v)) {
      this.#array(s, v, path);
      this.#common(s, v, path);
    } else if (isObj(v)) {
      this.#object(s, v, path);
      this.#common(s, v, path);
      // Go visits the schema's properties in map order: errors from two of them have no fixed order.
      let sources = 0;
      for (const [name, sub] of s.properties) {
        if (!Object.hasOwn(v, name)) continue;
        const before = this.errors.length;
        this.validate(sub, v[name], [...path, name]);
        if (this.errors.length > before) sources++;
      }
      if (sources > 1) unsupported("errors from two properties come in an order OPA leaves to chance");
    } else {
      this.#common(s, v, path);
      if (typeof v === "string") {
        const runes = [...v].length;
        if (s.minLength !== undefined && runes < s.minLength)
          this.#add(path, "string_gte", `String length must be greater than or equal to ${s.minLength}`);
        if (s.maxLength !== undefined && runes > s.maxLength)
          this.#add(path, "string_lte", `String length must be less than or equal to ${s.maxLength}`);
      }
    }
  }

  #common(s: Sub, v: Json, path: readonly string[]): void {
    if (s.constText !== undefined && goJson(v) !== s.constText)
      this.#add(path, "const", `${this.#field(path)} does not match: ${s.constText}`);
    if (s.enum !== undefined && !s.enum.includes(goJson(v))) {
      const allowed = s.enum.length === 0 ? "(none)" : s.enum.join(", ");
      this.#add(path, "enum", `${this.#field(path)} must be one of the following: ${allowed}`);
    }
  }

  #array(s: Sub, v: Json[], path: readonly string[]): void {
    if (s.items !== undefined) v.forEach((x, i) => this.validate(s.items!, x, [...path, String(i)]));
    if (s.minItems !== undefined && v.length < s.minItems)
      this.#add(path, "array_min_items", `Array must have at least ${s.minItems} items`);
    if (s.maxItems !== undefined && v.length > s.maxItems)
      this.#add(path, "array_max_items", `Array must have at most ${s.maxItems} items`);
    if (s.uniqueItems) {
      const seen = new Map<string, number>();
      v.forEach((x, j) => {
        const text = goJson(x);
        const i = seen.get(text);
        if (i !== undefined) this.#add(path, "unique", `array items[${i},${j}] must be unique`);
        seen.set(text, j);
      });
    }
  }

  #object(s: Sub, v: Record<string, Json>, path: readonly string[]): void {
    const n = Object.keys(v).length;
    if (s.minProperties !== undefined && n < s.minProperties)
      this.#add(path, "array_min_properties", `Must have at least ${s.minProperties} properties`);
    if (s.maxProperties !== undefined && n > s.maxProperties)
      this.#add(path, "array_max_properties", `Must have at most ${s.maxProperties} properties`);
    for (const r of s.required) {
      if (!Object.hasOwn(v, r)) this.#add(path, "required", `${r} is required`);
    }
    const ap = s.additionalProperties;
    if (ap === undefined || ap === true) return;
    // Go walks the document's keys in map order: two failing keys have no fixed order.
    let sources = 0;
    for (const k of Object.keys(v)) {
      if (s.properties.some(([name]) => name === k)) continue;
      const before = this.errors.length;
      if (ap === false) this.#add(path, "additional_property_not_allowed", `Additional property ${k} is not allowed`);
      else this.validate(ap, v[k], [...path, k]);
      if (this.errors.length > before) sources++;
    }
    if (sources > 1) unsupported("errors from two additional properties come in an order OPA leaves to chance");
  }
}

/** Compiled Ajv validators for the verdict cross-check, bounded: cleared wholesale when full. */
const MAX_CACHED = 100;
const ajvCache = new Map<string, ValidateFunction>();
const ajv = new Ajv({ strict: false, validateSchema: false, validateFormats: false, allErrors: false });

function ajvVerdict(schema: Json, doc: Json): boolean {
  const key = JSON.stringify(schema);
  let fn = ajvCache.get(key);
  if (fn === undefined) {
    if (ajvCache.size >= MAX_CACHED) ajvCache.clear();
    try {
      fn = ajv.compile(schema as object | boolean);
    } catch (err) {
      // e.g. a RangeError: Ajv's code generator recurses once per property of an object
      return unsupported(`Ajv cannot compile the schema to check the verdict (${(err as Error).message})`);
    }
    ajvCache.set(key, fn);
  }
  return fn(doc) === true;
}

/** Runs one builtin, turning Arbiter's limits into an error that names the builtin. */
function guarded<T>(name: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof Unsupported)
      throw new Error(`${name}: Arbiter cannot reproduce OPA's answer for this call: ${err.message}`);
    throw err;
  }
}

function verifySchema(schema: Json, type: unknown): Json {
  return guarded("json.verify_schema", () => {
    try {
      compileSchema(load(schema, type));
      return [true, null];
    } catch (err) {
      if (err instanceof SchemaError) return [false, `jsonschema: ${err.message}`];
      throw err;
    }
  });
}

function matchSchema(doc: Json, schema: Json, docType: unknown, schemaType: unknown): Json {
  return guarded("json.match_schema", () => {
    let document: Json;
    let compiled: Sub;
    let schemaDoc: Json;
    try {
      document = load(doc, docType);
      schemaDoc = load(schema, schemaType);
      compiled = compileSchema(schemaDoc);
    } catch (err) {
      if (err instanceof SchemaError) throw new OpaBuiltinError(`json.match_schema: ${err.message}`);
      throw err;
    }
    const v = new Validator();
    v.validate(compiled, document, []);
    const valid = v.errors.length === 0;
    if (ajvVerdict(schemaDoc, document) !== valid)
      unsupported(
        `Ajv judges the document ${valid ? "invalid" : "valid"} where the mirror of OPA's validator does not`,
      );
    return [valid, v.errors];
  });
}

export const jsonSchemaHostBuiltins: Record<string, HostBuiltin> = {
  "json.verify_schema": verifySchema,
  "json.match_schema": (...args: unknown[]) => {
    try {
      return matchSchema(...(args as [Json, Json, unknown, unknown]));
    } catch (err) {
      if (err instanceof OpaBuiltinError) return undefined;
      throw err;
    }
  },
};
