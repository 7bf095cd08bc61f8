/**
 * OPA's `json.verify_schema` and `json.match_schema` (`topdown/jsonschema.go`). OPA validates
 * with its copy of xeipuuv/gojsonschema (Hybrid draft: 4, 6 and 7 keywords, no meta-schema
 * check), and its answers carry that library's exact texts, in its order. This module mirrors
 * gojsonschema's parser (first error wins, same texts) and validator (same error order, types,
 * fields and descriptions) for a subset of keywords; Ajv then checks the verdict, so a slip in
 * the mirror fails the evaluation instead of answering.
 *
 * Refused with an error saying Arbiter cannot reproduce OPA (never another answer): keywords
 * outside the subset (`$ref`, ids, `$schema`, anyOf/oneOf/contains, patterns, formats, ...),
 * numbers JavaScript cannot hold exactly, and answers whose order OPA leaves to Go's map
 * iteration (errors from two properties, additional properties, property names or dependencies
 * of one object). `$ref` is refused before anything is resolved, so no schema is ever fetched.
 *
 * Operand types come from HOST_TYPED_ARGS (a set arrives as an array; a nested set cannot reach
 * the host at all). OPA's builtin errors throw OpaBuiltinError (undefined, or a failed
 * evaluation under strict builtin errors).
 */
import { Ajv, type ValidateFunction } from "ajv";
import { OpaBuiltinError, undefinedOnBuiltinError } from "./host-exact-json.ts";
import {
  ajvSchema,
  compileSchema,
  goJson,
  isObj,
  type Json,
  load,
  SchemaError,
  type Sub,
  Unsupported,
  unsupported,
} from "./host-jsonschema-parse.ts";
import type { HostBuiltin } from "./host-types.ts";

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
    this.#combinators(s, v, path);
    if (typeof v === "number") {
      if (s.maximum !== undefined && v > s.maximum)
        this.#add(path, "number_lte", `Must be less than or equal to ${goBigFloat(s.maximum)}`);
      if (s.exclusiveMaximum !== undefined && v >= s.exclusiveMaximum)
        this.#add(path, "number_lt", `Must be less than ${goBigFloat(s.exclusiveMaximum)}`);
      if (s.minimum !== undefined && v < s.minimum)
        this.#add(path, "number_gte", `Must be greater than or equal to ${goBigFloat(s.minimum)}`);
      if (s.exclusiveMinimum !== undefined && v <= s.exclusiveMinimum)
        this.#add(path, "number_gt", `Must be greater than ${goBigFloat(s.exclusiveMinimum)}`);
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

  /** gojsonschema's validateSchema for allOf and not: sub-results merged (allOf) or judged (not). */
  #combinators(s: Sub, v: Json, path: readonly string[]): void {
    let passed = 0;
    for (const sub of s.allOf) {
      const r = new Validator();
      r.validate(sub, v, path);
      if (r.errors.length === 0) passed++;
      this.errors.push(...r.errors);
    }
    if (passed !== s.allOf.length) this.#add(path, "number_all_of", "Must validate all the schemas (allOf)");
    if (s.not !== undefined) {
      const r = new Validator();
      r.validate(s.not, v, path);
      if (r.errors.length === 0) this.#add(path, "number_not", "Must not validate the schema (not)");
    }
    if (s.dependencies !== undefined && isObj(v)) {
      // Go walks the document's keys in map order: two failing dependencies have no fixed order.
      let sources = 0;
      for (const k of Object.keys(v)) {
        const dep = s.dependencies.get(k);
        if (dep === undefined) continue;
        const before = this.errors.length;
        if (Array.isArray(dep)) {
          for (const d of dep)
            if (!Object.hasOwn(v, d)) this.#add(path, "missing_dependency", `Has a dependency on ${d}`);
        } else this.validate(dep, v, path);
        if (this.errors.length > before) sources++;
      }
      if (sources > 1) unsupported("errors from two dependencies come in an order OPA leaves to chance");
    }
    if (s.if !== undefined) {
      const cond = new Validator();
      cond.validate(s.if, v, path);
      const holds = cond.errors.length === 0;
      const branch = holds ? s.then : s.else;
      if (branch !== undefined) {
        const r = new Validator();
        r.validate(branch, v, path);
        if (r.errors.length > 0) {
          if (holds) this.#add(path, "condition_then", 'Must validate "then" as "if" was valid');
          else this.#add(path, "condition_else", 'Must validate "else" as "if" was not valid');
          this.errors.push(...r.errors);
        }
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
    else if (s.itemsList !== undefined && s.itemsList.length > 0) {
      const list = s.itemsList;
      list.slice(0, v.length).forEach((sub, i) => this.validate(sub, v[i], [...path, String(i)]));
      const extra = s.additionalItems;
      if (list.length < v.length && extra === false)
        this.#add(path, "array_no_additional_items", "No additional items allowed on array");
      else if (list.length < v.length && typeof extra === "object")
        for (let i = list.length; i < v.length; i++) this.validate(extra, v[i], [...path, String(i)]);
    }
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
    // Go walks the document's keys in map order: two failing keys have no fixed order.
    let sources = 0;
    for (const k of Object.keys(v)) {
      if (ap === undefined || ap === true || s.properties.some(([name]) => name === k)) continue;
      const before = this.errors.length;
      if (ap === false) this.#add(path, "additional_property_not_allowed", `Additional property ${k} is not allowed`);
      else this.validate(ap, v[k], [...path, k]);
      if (this.errors.length > before) sources++;
    }
    if (sources > 1) unsupported("errors from two additional properties come in an order OPA leaves to chance");
    if (s.propertyNames === undefined) return;
    sources = 0;
    for (const k of Object.keys(v)) {
      const r = new Validator();
      r.validate(s.propertyNames, k, path);
      if (r.errors.length === 0) continue;
      sources++;
      this.#add(path, "invalid_property_name", `Property name of "${k}" does not match`);
      this.errors.push(...r.errors);
    }
    if (sources > 1) unsupported("errors from two property names come in an order OPA leaves to chance");
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
    if (ajvCache.size >= MAX_CACHED) {
      ajvCache.clear();
      ajv.removeSchema(); // Ajv keeps its own cache of every schema it compiled
    }
    try {
      fn = ajv.compile(ajvSchema(schema) as object | boolean);
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
  "json.match_schema": undefinedOnBuiltinError((...args: unknown[]) =>
    matchSchema(...(args as [Json, Json, unknown, unknown])),
  ),
};
