/**
 * The parsing half of json.verify_schema / json.match_schema (host-jsonschema.ts): operands
 * loaded as OPA's astValueToJSONSchemaLoader does, and gojsonschema's parseSchema mirrored for
 * the supported keywords (first error wins, same texts, same keyword order).
 */
import { goString } from "./host-json.ts";

export type Json = unknown;
export const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Arbiter's own limit: always fails the evaluation (never undefined). */
export class Unsupported extends Error {}

export const unsupported = (why: string): never => {
  throw new Unsupported(why);
};

/** A schema error gojsonschema reports while compiling (text without the builtin's prefix). */
export class SchemaError extends Error {}

const JSON_TYPES = ["array", "boolean", "integer", "number", "null", "object", "string"];

/** Keywords gojsonschema reads that this mirror does not: a schema using one is refused. */
const REFUSED_KEYWORDS = new Set([
  "$ref",
  "$id",
  "id",
  "definitions",
  "patternProperties",
  "multipleOf",
  "pattern",
  "format",
  "contains",
  "oneOf",
  "anyOf",
]);

/** Bounds on what one call may make the host do (schemas and documents come from input). */
const MAX_DEPTH = 64;
const MAX_NODES = 100_000;

/** Go's byte order of UTF-8 strings (map keys), which is code point order. */
function goKeyOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** gojsonschema's marshalWithoutNumber: Go's json.Marshal of the value decoded as float64s. */
export function goJson(v: Json): string {
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

export interface Sub {
  pass?: boolean;
  types: string[];
  properties: [string, Sub][];
  additionalProperties?: boolean | Sub;
  items?: Sub;
  itemsList?: Sub[];
  additionalItems?: boolean | Sub;
  propertyNames?: Sub;
  /** Dependencies by property: required properties or a schema. */
  dependencies?: Map<string, string[] | Sub>;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
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
  allOf: Sub[];
  not?: Sub;
  if?: Sub;
  then?: Sub;
  else?: Sub;
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

/** OPA's astValueToJSONSchemaLoader: a JSON string, an object or an array. */
export function load(v: Json, type: unknown): Json {
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
  const s: Sub = { types: [], properties: [], uniqueItems: false, required: [], allOf: [] };
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
    oneError(failed, "two properties of the schema are invalid and OPA reports either one");
  }
  if (Object.hasOwn(node, "additionalProperties")) {
    const ap = node.additionalProperties;
    if (typeof ap === "boolean") s.additionalProperties = ap;
    else if (isObj(ap)) s.additionalProperties = parse(ap, depth + 1);
    else throw invalidType("boolean/valid schema", "additionalProperties");
  }
  if (Object.hasOwn(node, "propertyNames")) {
    // Go's message names patternProperties here
    if (!isSchema(node.propertyNames)) throw invalidType("valid schema", "patternProperties");
    s.propertyNames = parse(node.propertyNames, depth + 1);
  }
  if (Object.hasOwn(node, "dependencies")) s.dependencies = parseDependencies(node.dependencies, depth);
  if (Object.hasOwn(node, "items")) {
    const it = node.items;
    if (Array.isArray(it)) {
      s.itemsList = [];
      for (const el of it) {
        if (!isSchema(el)) throw invalidType("valid schema/array of schemas", "items");
        s.itemsList.push(parse(el, depth + 1));
      }
    } else if (isSchema(it)) s.items = parse(it, depth + 1);
    else throw invalidType("valid schema/array of schemas", "items");
  }
  if (Object.hasOwn(node, "additionalItems")) {
    const ai = node.additionalItems;
    if (typeof ai === "boolean") s.additionalItems = ai;
    else if (isObj(ai)) s.additionalItems = parse(ai, depth + 1);
    else throw invalidType("boolean/valid schema", "additionalItems");
  }
  s.minimum = numberKeyword(node, "minimum");
  exclusiveKeyword(s, node, "exclusiveMinimum", "minimum");
  s.maximum = numberKeyword(node, "maximum");
  exclusiveKeyword(s, node, "exclusiveMaximum", "maximum");
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
  for (const v of arrayKeyword(node, "allOf")) s.allOf.push(parse(v, depth + 1));
  if (Object.hasOwn(node, "not")) {
    if (typeof node.not !== "boolean" && !isObj(node.not)) throw new SchemaError("not must be of an object");
    s.not = parse(node.not, depth + 1);
  }
  for (const k of ["if", "then", "else"] as const) {
    if (!Object.hasOwn(node, k)) continue;
    if (!isSchema(node[k])) throw new SchemaError(`${k} must be of an object`);
    s[k] = parse(node[k], depth + 1);
  }
  return s;
}

const isSchema = (v: Json): boolean => typeof v === "boolean" || isObj(v);

/**
 * Go parses some maps in map order and stops at the first error: one distinct message is
 * OPA's answer, two are left to chance.
 */
function oneError(failed: readonly SchemaError[], why: string): void {
  const texts = new Set(failed.map((e) => e.message));
  if (texts.size > 1) unsupported(why);
  if (failed.length > 0) throw failed[0]!;
}

/** gojsonschema's parseDependencies: per property, an array of names or a schema. */
function parseDependencies(d: Json, depth: number): Map<string, string[] | Sub> {
  if (!isObj(d)) throw new SchemaError("dependencies must be of type object");
  const out = new Map<string, string[] | Sub>();
  const failed: SchemaError[] = [];
  const bad = () => new SchemaError("dependency must be of type schema or array of strings");
  for (const [k, v] of Object.entries(d)) {
    try {
      if (Array.isArray(v)) {
        if (!v.every((x) => typeof x === "string")) throw bad();
        if (v.length > 0) out.set(k, v as string[]);
      } else if (isSchema(v)) out.set(k, parse(v, depth + 1));
      else throw bad();
    } catch (err) {
      if (!(err instanceof SchemaError)) throw err;
      failed.push(err);
    }
  }
  oneError(failed, "two dependencies of the schema are invalid and OPA reports either one");
  return out;
}

/**
 * The Hybrid draft's exclusiveMinimum/exclusiveMaximum: draft 4's boolean (moving the bound
 * parsed just before into the exclusive one) or draft 6's number.
 */
function exclusiveKeyword(
  s: Sub,
  m: Record<string, Json>,
  key: "exclusiveMinimum" | "exclusiveMaximum",
  bound: "minimum" | "maximum",
): void {
  if (!Object.hasOwn(m, key)) return;
  const v = m[key];
  if (typeof v === "number") s[key] = v;
  else if (typeof v === "boolean") {
    if (s[bound] === undefined) throw new SchemaError(`${key} cannot be used without ${bound}`);
    if (v) {
      s[key] = s[bound];
      s[bound] = undefined;
    }
  } else throw invalidType("boolean/number", key);
}

/**
 * The schema for Ajv's cross-check (draft 7): draft 4's boolean exclusive bounds become numbers.
 * Only the supported keywords are walked; a schema with any other reached no validation.
 */
export function ajvSchema(node: Json): Json {
  if (!isObj(node)) return node;
  const out: Record<string, Json> = { ...node };
  for (const [key, bound] of [
    ["exclusiveMinimum", "minimum"],
    ["exclusiveMaximum", "maximum"],
  ] as const) {
    if (typeof out[key] !== "boolean") continue;
    if (out[key] === true) out[key] = out[bound];
    else delete out[key];
    if (out[key] !== undefined) delete out[bound];
  }
  if (isObj(out.properties))
    out.properties = Object.fromEntries(Object.entries(out.properties).map(([k, v]) => [k, ajvSchema(v)]));
  for (const k of ["additionalProperties", "items", "additionalItems", "propertyNames", "not", "if", "then", "else"])
    if (k in out) out[k] = Array.isArray(out[k]) ? out[k].map(ajvSchema) : ajvSchema(out[k]);
  if (Array.isArray(out.allOf)) out.allOf = out.allOf.map(ajvSchema);
  if (isObj(out.dependencies))
    out.dependencies = Object.fromEntries(
      Object.entries(out.dependencies).map(([k, v]) => [k, Array.isArray(v) ? v : ajvSchema(v)]),
    );
  return out;
}

/** The root: `$schema` picks a draft (refused); otherwise Hybrid. */
export function compileSchema(doc: Json): Sub {
  if (typeof doc !== "boolean" && !isObj(doc)) throw new SchemaError("schema is invalid");
  if (isObj(doc) && Object.hasOwn(doc, "$schema")) unsupported('the schema keyword "$schema" is not supported');
  return parse(doc, 0);
}
