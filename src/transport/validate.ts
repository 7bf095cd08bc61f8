/**
 * Request validation: the protovalidate rules declared in `proto/arbiter/v1/arbiter.proto`.
 * A violation becomes INVALID_ARGUMENT naming each field and rule, e.g.
 * `tenant_id: must be at least 1 characters [string.min_len]`.
 *
 * The rules are read at run time from the message descriptors (the same `buf.validate` options
 * `@bufbuild/protovalidate` reads, through its own embedded schema), and compiled once per message
 * type into two plain JS functions: `ok(m)`, a boolean check that allocates nothing, and
 * `collect(m, path, out)`, run only when `ok` fails, which lists the violations with exactly the
 * text and order protovalidate produces. A type using any rule this compiler does not know (or a
 * CEL expression outside the small subset below) is validated by protovalidate instead, so an
 * unsupported rule costs speed, never a wrong answer. `test/transport/validate-compiled.test.ts`
 * checks the two against each other.
 *
 * Compiled: `required`; string `const`, `len`, `min_len`, `max_len`, `len_bytes`, `min_bytes`,
 * `max_bytes`, `in`, `not_in`; enum `defined_only`, `const`, `in`, `not_in`; int32, sint32,
 * sfixed32, uint32, fixed32, float and double `const`, `lt`/`lte`/`gt`/`gte` (and their
 * exclusive-range pairs), `in`, `not_in`, `finite`; repeated `min_items`, `max_items`, `items`
 * (scalar, enum and message elements); nested messages; message-level CEL in the subset described
 * at `compileCel`. Everything else (patterns, well-known formats, 64-bit, bytes, maps, `unique`,
 * `ignore`, oneof rules, field CEL, WKT rules, predefined extensions) goes to protovalidate.
 */
import {
  type DescEnum,
  type DescField,
  type DescMessage,
  type Message,
  type MessageShape,
  ScalarType,
  getOption,
  isFieldSet,
} from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import { createValidator, type Validator } from "@bufbuild/protovalidate";
import * as vpb from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import {
  type FieldRules,
  Ignore,
  field as extField,
  message as extMessage,
  oneof as extOneof,
} from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { Code, RpcError } from "./status.ts";

export interface RequestValidator {
  /** Throws `RpcError(INVALID_ARGUMENT)` listing every violation; returns when valid. */
  check<D extends DescMessage>(schema: D, msg: MessageShape<D>): void;
}

export interface RequestValidatorOptions {
  /**
   * `"compiled"` (default): rules compiled to JS per message type, protovalidate for types the
   * compiler does not support. `"protovalidate"`: protovalidate for every type (the reference,
   * kept for benchmarks and differential tests).
   */
  engine?: "compiled" | "protovalidate";
}

/** A message type's rules as compiled functions. */
export interface CompiledMessageValidator {
  readonly kind: "compiled";
  /** True when `m` breaks no rule. Allocates nothing. */
  readonly ok: (m: Message) => boolean;
  /** Every violation of `m`, as protovalidate's `Violation.toString()` would print them, in its order. */
  readonly violations: (m: Message) => string[];
  /** The generated source, for inspection. */
  readonly source: string;
}

/** A message type the compiler leaves to protovalidate, and the first reason found. */
export interface UnsupportedMessageValidator {
  readonly kind: "unsupported";
  readonly reason: string;
}

export function createRequestValidator(options: RequestValidatorOptions = {}): RequestValidator {
  const engine = options.engine ?? "compiled";
  if (engine !== "compiled" && engine !== "protovalidate") {
    throw new Error(`RequestValidatorOptions.engine must be "compiled" or "protovalidate", got ${String(engine)}`);
  }
  const validator: Validator = createValidator();
  const reference = (schema: DescMessage, msg: Message): void => {
    const result = validator.validate(schema, msg);
    if (result.kind === "valid") return;
    if (result.kind === "invalid") {
      const text = result.violations.map((v) => v.toString()).join("; ");
      throw new RpcError(Code.INVALID_ARGUMENT, text);
    }
    // A rule that cannot be compiled is a bug in the contract, not the caller's fault.
    throw new RpcError(Code.INTERNAL, "request validation failed", { cause: result.error });
  };
  if (engine === "protovalidate") return { check: reference };

  // One entry per request type, so bounded by the schema; never keyed by caller data.
  const cache = new Map<DescMessage, CompiledMessageValidator | UnsupportedMessageValidator>();
  return {
    check(schema, msg) {
      let c = cache.get(schema);
      if (c === undefined) {
        c = compileMessageValidator(schema);
        cache.set(schema, c);
      }
      // A message of another type is protovalidate's error to report, as before.
      if (c.kind === "unsupported" || msg.$typeName !== schema.typeName) return reference(schema, msg);
      if (c.ok(msg)) return;
      throw new RpcError(Code.INVALID_ARGUMENT, c.violations(msg).join("; "));
    },
  };
}

// ---- compiler --------------------------------------------------------------------------------

class Unsupported extends Error {}

function unsupported(reason: string): never {
  throw new Unsupported(reason);
}

/** Compile the rules of `schema` and every message type it reaches. */
export function compileMessageValidator(schema: DescMessage): CompiledMessageValidator | UnsupportedMessageValidator {
  try {
    return new Compiler(schema).build();
  } catch (err) {
    if (err instanceof Unsupported) return { kind: "unsupported", reason: err.message };
    // A compiler bug must cost speed, not correctness: protovalidate takes the type.
    return { kind: "unsupported", reason: `compiler error: ${String(err)}` };
  }
}

/** Number of code points, as protovalidate counts them (a lone surrogate is one). */
function cpLen(s: string): number {
  const n = s.length;
  let c = n;
  for (let i = 0; i < n - 1; i++) {
    const h = s.charCodeAt(i);
    if (h >= 0xd800 && h < 0xdc00) {
      const l = s.charCodeAt(i + 1);
      if (l >= 0xdc00 && l < 0xe000) {
        c--;
        i++;
      }
    }
  }
  return c;
}

/** UTF-8 length, a lone surrogate counting as U+FFFD (3 bytes), as protovalidate counts it. */
function utf8Len(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** protovalidate's float formatting (`Number#toString`, with NaN and ±Infinity spelled out). */
function printFloat(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "Infinity";
  if (n === -Infinity) return "-Infinity";
  return n.toString();
}

const lit = (v: unknown): string => JSON.stringify(v);

/** A number literal that survives `-0`, NaN and ±Infinity. */
function numLit(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "Infinity";
  if (n === -Infinity) return "-Infinity";
  if (Object.is(n, -0)) return "-0";
  return String(n);
}

/** bigint bound (uint64 in the rules) as a JS number; lengths never reach 2^53, so rounding is harmless. */
const big = (b: bigint): string => numLit(Number(b));

/** Which generated code is being written: the boolean check or the violation collector. */
type Mode = "ok" | "col";

/**
 * Emits `fail` for one violation: `return false` in ok mode, a push of the formatted text in
 * collect mode. `path` is a JS expression evaluating to the field path string.
 */
interface Sink {
  readonly mode: Mode;
  fail(path: string, message: string, ruleId: string): string;
  /** Same, with a message computed at run time (a JS string expression). */
  failExpr(path: string, messageExpr: string, ruleId: string): string;
}

const okSink: Sink = {
  mode: "ok",
  fail: () => "return false;",
  failExpr: () => "return false;",
};

const colSink: Sink = {
  mode: "col",
  fail: (path, message, ruleId) => `out.push(${path} + ${lit(`: ${message} [${ruleId}]`)});`,
  failExpr: (path, messageExpr, ruleId) => `out.push(${path} + ": " + ${messageExpr} + ${lit(` [${ruleId}]`)});`,
};

interface NumericKind {
  name: string;
  nanFailsRange: boolean;
  format: (v: number) => string;
}

const NUMERIC: Partial<Record<ScalarType, NumericKind>> = {
  [ScalarType.INT32]: { name: "int32", nanFailsRange: false, format: String },
  [ScalarType.SINT32]: { name: "sint32", nanFailsRange: false, format: String },
  [ScalarType.SFIXED32]: { name: "sfixed32", nanFailsRange: false, format: String },
  [ScalarType.UINT32]: { name: "uint32", nanFailsRange: false, format: String },
  [ScalarType.FIXED32]: { name: "fixed32", nanFailsRange: false, format: String },
  [ScalarType.FLOAT]: { name: "float", nanFailsRange: true, format: printFloat },
  [ScalarType.DOUBLE]: { name: "double", nanFailsRange: true, format: printFloat },
};

/** Rules of each kind this compiler implements; any other rule set on a field means fallback. */
const SUPPORTED: Record<string, ReadonlySet<string>> = {
  string: new Set(["const", "len", "min_len", "max_len", "len_bytes", "min_bytes", "max_bytes", "in", "not_in"]),
  numeric: new Set(["const", "lt", "lte", "gt", "gte", "in", "not_in", "finite"]),
  enum: new Set(["defined_only", "const", "in", "not_in"]),
  repeated: new Set(["min_items", "max_items", "items"]),
  field: new Set(["required", "ignore"]),
  message: new Set(["cel"]),
};

/** Throws Unsupported when `rules` sets a field outside `allowed` or carries extensions. */
function onlySupported(rules: Message, kind: string, allowed: ReadonlySet<string>, where: string): void {
  const desc = RULE_DESCS.get(rules.$typeName);
  if (desc === undefined) unsupported(`${where}: rules ${rules.$typeName}`);
  if ((rules as { $unknown?: unknown[] }).$unknown?.length) unsupported(`${where}: predefined rule extensions`);
  for (const f of desc.fields) {
    if (f.oneof !== undefined && f.oneof.name === "type" && kind === "field") continue; // the rule kind itself
    if (isFieldSet(rules, f) && !allowed.has(f.name)) unsupported(`${where}: ${kind === "field" ? "" : `${kind}.`}${f.name}`);
  }
}

const RULE_DESCS = new Map<string, DescMessage>(
  (Object.values(vpb) as unknown[])
    .filter((v): v is DescMessage => typeof v === "object" && v !== null && (v as { kind?: string }).kind === "message")
    .map((d): [string, DescMessage] => [d.typeName, d]),
);

/** Rule kind names (the FieldRules `type` oneof cases) that match a scalar type. */
const SCALAR_RULE_CASE: Partial<Record<ScalarType, string>> = {
  [ScalarType.STRING]: "string",
  [ScalarType.INT32]: "int32",
  [ScalarType.SINT32]: "sint32",
  [ScalarType.SFIXED32]: "sfixed32",
  [ScalarType.UINT32]: "uint32",
  [ScalarType.FIXED32]: "fixed32",
  [ScalarType.FLOAT]: "float",
  [ScalarType.DOUBLE]: "double",
};

class Compiler {
  readonly #root: DescMessage;
  /** Message types that need a check function, with their index. */
  readonly #index = new Map<DescMessage, number>();
  /** Whether a message type (transitively) carries any rule. */
  readonly #needs = new Map<DescMessage, boolean>();
  #consts: unknown[] = [];

  constructor(root: DescMessage) {
    this.#root = root;
  }

  build(): CompiledMessageValidator {
    this.#computeNeeds();
    const order: DescMessage[] = [];
    const visit = (d: DescMessage): void => {
      if (this.#index.has(d) || !this.#needs.get(d)) return;
      this.#index.set(d, this.#index.size);
      order.push(d);
      for (const f of d.fields) {
        const sub = f.message;
        if (sub !== undefined) visit(sub);
      }
    };
    visit(this.#root);
    let src = "";
    for (const d of order) src += this.#messageFunctions(d);
    const rootIdx = this.#index.get(this.#root);
    src +=
      rootIdx === undefined
        ? "return { ok: () => true, col: () => {} };"
        : `return { ok: ok${rootIdx}, col: col${rootIdx} };`;
    const fns = new Function("K", "cpLen", "utf8Len", "hasOwn", src)(this.#consts, cpLen, utf8Len, hasOwn) as {
      ok: (m: Message) => boolean;
      col: (m: Message, p: string, out: string[]) => void;
    };
    const { ok, col } = fns;
    return {
      kind: "compiled",
      ok,
      violations: (m) => {
        const out: string[] = [];
        col(m, "", out);
        return out;
      },
      source: src,
    };
  }

  /** Fixpoint over the reachable types: a type needs checking if it or a reachable type has rules. */
  #computeNeeds(): void {
    const all: DescMessage[] = [];
    const seen = new Set<DescMessage>();
    const walk = (d: DescMessage): void => {
      if (seen.has(d)) return;
      seen.add(d);
      all.push(d);
      for (const f of d.fields) if (f.message !== undefined) walk(f.message);
    };
    walk(this.#root);
    for (const d of all) this.#needs.set(d, ownRules(d));
    let changed = true;
    while (changed) {
      changed = false;
      for (const d of all) {
        if (this.#needs.get(d)) continue;
        if (d.fields.some((f) => f.message !== undefined && this.#needs.get(f.message))) {
          this.#needs.set(d, true);
          changed = true;
        }
      }
    }
    for (const d of all) {
      if (!this.#needs.get(d)) continue;
      for (const f of d.fields) {
        if (f.fieldKind === "map" && (hasFieldRules(f) || (f.message !== undefined && this.#needs.get(f.message)))) {
          unsupported(`${f.parent.typeName}.${f.name}: map rules`);
        }
      }
    }
  }

  #const(v: unknown): string {
    this.#consts.push(v);
    return `K[${this.#consts.length - 1}]`;
  }

  #messageFunctions(d: DescMessage): string {
    const i = this.#index.get(d)!;
    for (const o of d.oneofs) {
      if (getOption(o, extOneof).required) unsupported(`${d.typeName}.${o.name}: oneof required`);
    }
    const messageRules = getOption(d, extMessage);
    onlySupported(messageRules, "message", SUPPORTED.message!, d.typeName);
    const cel = messageRules.cel.map((r, j) => compileCel(d, r.expression, `${d.typeName} cel[${j}]`));
    const body = (sink: Sink): string => {
      let s = "";
      for (const f of d.fields) s += this.#field(f, sink);
      messageRules.cel.forEach((rule, j) => {
        const message = rule.message !== "" ? rule.message : `"${rule.expression}" returned false`;
        const fail =
          sink.mode === "ok"
            ? "return false;"
            : `out.push((p === "" ? "" : p + ": ") + ${lit(`${message} [${rule.id}]`)});`;
        s += `if (!(${cel[j]})) { ${fail} }\n`;
      });
      return s;
    };
    return (
      `function ok${i}(m) {\n${body(okSink)}return true;\n}\n` + `function col${i}(m, p, out) {\n${body(colSink)}}\n`
    );
  }

  /** Code for one field of message variable `m`; empty when the field carries no rule. */
  #field(f: DescField, sink: Sink): string {
    const rules = hasFieldRules(f) ? getOption(f, extField) : undefined;
    const subNeeds = f.message !== undefined && this.#needs.get(f.message) === true;
    if (rules === undefined && !subNeeds) return "";
    const where = `${f.parent.typeName}.${f.name}`;
    if (f.oneof !== undefined) unsupported(`${where}: field in a oneof`);
    if (rules !== undefined) {
      onlySupported(rules, "field", SUPPORTED.field!, where);
      if (rules.ignore !== Ignore.UNSPECIFIED) unsupported(`${where}: ignore`);
    }
    const key = lit(f.localName);
    const get = `m[${key}]`;
    const path = sink.mode === "ok" ? "" : `(p === "" ? ${lit(f.name)} : p + ${lit(`.${f.name}`)})`;
    const label = `f${f.number}`;
    let s = `${label}: {\nconst v = ${get};\n`;
    const isSet = setTest(f, "m", "v");
    if (rules?.required) {
      const fail = sink.mode === "ok" ? "return false;" : `${sink.fail(path, "value is required", "required")} break ${label};`;
      s += `if (!(${isSet})) { ${fail} }\n`;
    }
    switch (f.fieldKind) {
      case "message": {
        if (rules !== undefined && rules.type.case !== undefined) unsupported(`${where}: ${rules.type.case} rules on a message field`);
        if (subNeeds) s += `if (${isSet}) { ${this.#callMessage(f.message, "v", path, sink)} }\n`;
        break;
      }
      case "scalar":
      case "enum": {
        const body = rules === undefined ? "" : this.#valueRules(f, rules, "v", path, sink, where);
        if (body !== "") s += f.presence === FeatureSet_FieldPresence.IMPLICIT ? body : `if (${isSet}) {\n${body}}\n`;
        break;
      }
      case "list": {
        if (rules !== undefined && rules.type.case !== undefined && rules.type.case !== "repeated") {
          unsupported(`${where}: ${rules.type.case} rules on a repeated field`);
        }
        const rep = rules?.type.case === "repeated" ? rules.type.value : undefined;
        if (rep !== undefined) {
          onlySupported(rep, "repeated", SUPPORTED.repeated!, where);
          if (isFieldSet(rep, vpb.RepeatedRulesSchema.field.minItems)) {
            s += `if (v.length < ${big(rep.minItems)}) { ${sink.fail(path, `must contain at least ${rep.minItems} item(s)`, "repeated.min_items")} }\n`;
          }
          if (isFieldSet(rep, vpb.RepeatedRulesSchema.field.maxItems)) {
            s += `if (v.length > ${big(rep.maxItems)}) { ${sink.fail(path, `must contain no more than ${rep.maxItems} item(s)`, "repeated.max_items")} }\n`;
          }
        }
        const items = rep?.items;
        if (items !== undefined) {
          onlySupported(items, "field", new Set(["ignore"]), `${where} items`);
          if (items.ignore !== Ignore.UNSPECIFIED) unsupported(`${where} items: ignore`);
        }
        const itemPath = sink.mode === "ok" ? "" : `(${path} + "[" + i + "]")`;
        let itemBody = "";
        if (f.listKind === "message") {
          if (items !== undefined && items.type.case !== undefined) unsupported(`${where} items: ${items.type.case} rules on messages`);
          if (subNeeds) itemBody = this.#callMessage(f.message, "e", itemPath, sink);
        } else if (items !== undefined) {
          itemBody = this.#valueRules(f, items, "e", itemPath, sink, `${where} items`);
        }
        if (itemBody !== "") s += `for (let i = 0; i < v.length; i++) {\nconst e = v[i];\n${itemBody}}\n`;
        break;
      }
      case "map":
        unsupported(`${where}: map`);
    }
    s += "}\n";
    return s;
  }

  #callMessage(d: DescMessage, v: string, path: string, sink: Sink): string {
    const i = this.#index.get(d)!;
    return sink.mode === "ok" ? `if (!ok${i}(${v})) return false;` : `col${i}(${v}, ${path}, out);`;
  }

  /** Rules on one scalar or enum value `v` (a field, or a list element). */
  #valueRules(f: DescField, rules: FieldRules, v: string, path: string, sink: Sink, where: string): string {
    const c = rules.type.case;
    if (c === undefined) return "";
    if (f.enum !== undefined) {
      if (c !== "enum") unsupported(`${where}: ${c} rules on an enum`);
      return this.#enumRules(f.enum, rules.type.value as vpb.EnumRules, v, path, sink, where);
    }
    const scalar = f.scalar!;
    if (SCALAR_RULE_CASE[scalar] !== c) unsupported(`${where}: ${c} rules on ${ScalarType[scalar]}`);
    if (c === "string") return this.#stringRules(rules.type.value as vpb.StringRules, v, path, sink, where);
    return this.#numericRules(NUMERIC[scalar]!, rules.type.value as NumericRules, v, path, sink, where);
  }

  #stringRules(r: vpb.StringRules, v: string, path: string, sink: Sink, where: string): string {
    onlySupported(r, "string", SUPPORTED.string!, where);
    const F = vpb.StringRulesSchema.field;
    let s = "";
    if (isFieldSet(r, F.const)) s += `if (${v} !== ${lit(r.const)}) { ${sink.fail(path, `must equal \`${r.const}\``, "string.const")} }\n`;
    const lenSet = isFieldSet(r, F.len);
    const minSet = isFieldSet(r, F.minLen);
    const maxSet = isFieldSet(r, F.maxLen);
    if (lenSet || minSet || maxSet) {
      // Code points lie between ceil(n/2) and n for n UTF-16 units: count them only when the unit
      // count cannot decide.
      if (sink.mode === "ok") {
        if (lenSet) s += `if (cpLen(${v}) !== ${big(r.len)}) return false;\n`;
        if (minSet) s += `if (${v}.length < ${big(r.minLen)} || (${v}.length < ${big(r.minLen * 2n)} && cpLen(${v}) < ${big(r.minLen)})) return false;\n`;
        if (maxSet) s += `if (${v}.length > ${big(r.maxLen)} && cpLen(${v}) > ${big(r.maxLen)}) return false;\n`;
      } else {
        s += `{ const n = cpLen(${v});\n`;
        if (lenSet) s += `if (n !== ${big(r.len)}) { ${sink.fail(path, `must be ${r.len} characters`, "string.len")} }\n`;
        if (minSet) s += `if (n < ${big(r.minLen)}) { ${sink.fail(path, `must be at least ${r.minLen} characters`, "string.min_len")} }\n`;
        if (maxSet) s += `if (n > ${big(r.maxLen)}) { ${sink.fail(path, `must be at most ${r.maxLen} characters`, "string.max_len")} }\n`;
        s += "}\n";
      }
    }
    const lbSet = isFieldSet(r, F.lenBytes);
    const minBSet = isFieldSet(r, F.minBytes);
    const maxBSet = isFieldSet(r, F.maxBytes);
    if (lbSet || minBSet || maxBSet) {
      s += `{ const b = utf8Len(${v});\n`;
      if (lbSet) s += `if (b !== ${big(r.lenBytes)}) { ${sink.fail(path, `must be ${r.lenBytes} bytes`, "string.len_bytes")} }\n`;
      if (minBSet) s += `if (b < ${big(r.minBytes)}) { ${sink.fail(path, `must be at least ${r.minBytes} bytes`, "string.min_bytes")} }\n`;
      if (maxBSet) s += `if (b > ${big(r.maxBytes)}) { ${sink.fail(path, `must be at most ${r.maxBytes} bytes`, "string.max_bytes")} }\n`;
      s += "}\n";
    }
    if (r.in.length > 0) {
      s += `if (!${this.#const(new Set(r.in))}.has(${v})) { ${sink.fail(path, `must be in list [${r.in.join(", ")}]`, "string.in")} }\n`;
    }
    if (r.notIn.length > 0) {
      s += `if (${this.#const(new Set(r.notIn))}.has(${v})) { ${sink.fail(path, `must not be in list [${r.notIn.join(", ")}]`, "string.not_in")} }\n`;
    }
    return s;
  }

  #enumRules(e: DescEnum, r: vpb.EnumRules, v: string, path: string, sink: Sink, where: string): string {
    onlySupported(r, "enum", SUPPORTED.enum!, where);
    let s = "";
    if (r.definedOnly) {
      s += `if (!${this.#const(new Set(e.values.map((x) => x.number)))}.has(${v})) { ${sink.fail(path, "value must be one of the defined enum values", "enum.defined_only")} }\n`;
    }
    if (isFieldSet(r, vpb.EnumRulesSchema.field.const)) {
      s += `if (${v} !== ${r.const}) { ${sink.fail(path, `must equal ${r.const}`, "enum.const")} }\n`;
    }
    if (r.in.length > 0) {
      s += `if (!${this.#const(new Set(r.in))}.has(${v})) { ${sink.fail(path, `must be in list [${r.in.join(", ")}]`, "enum.in")} }\n`;
    }
    if (r.notIn.length > 0) {
      s += `if (${this.#const(new Set(r.notIn))}.has(${v})) { ${sink.fail(path, `must not be in list [${r.notIn.join(", ")}]`, "enum.not_in")} }\n`;
    }
    return s;
  }

  #numericRules(k: NumericKind, r: NumericRules, v: string, path: string, sink: Sink, where: string): string {
    onlySupported(r, "numeric", SUPPORTED.numeric!, where);
    const desc = RULE_DESCS.get(r.$typeName)!;
    const constField = desc.fields.find((f) => f.name === "const")!;
    let s = "";
    if (isFieldSet(r, constField)) {
      s += `if (${v} !== ${numLit(r.const!)}) { ${sink.fail(path, `must equal ${k.format(r.const!)}`, `${k.name}.const`)} }\n`;
    }
    const lo = r.greaterThan.case === undefined ? undefined : { kind: r.greaterThan.case, val: r.greaterThan.value };
    const hi = r.lessThan.case === undefined ? undefined : { kind: r.lessThan.case, val: r.lessThan.value };
    // protovalidate hands a NaN bound to CEL; not worth reproducing.
    if ((lo && Number.isNaN(lo.val)) || (hi && Number.isNaN(hi.val))) unsupported(`${where}: NaN bound`);
    const nan = k.nanFailsRange ? `Number.isNaN(${v}) || ` : "";
    const below = lo && (lo.kind === "gt" ? `${v} <= ${numLit(lo.val)}` : `${v} < ${numLit(lo.val)}`);
    const above = hi && (hi.kind === "lt" ? `${v} >= ${numLit(hi.val)}` : `${v} > ${numLit(hi.val)}`);
    const loMsg = lo && (lo.kind === "gt" ? `greater than ${k.format(lo.val)}` : `greater than or equal to ${k.format(lo.val)}`);
    const hiMsg = hi && (hi.kind === "lt" ? `less than ${k.format(hi.val)}` : `less than or equal to ${k.format(hi.val)}`);
    if (lo && hi) {
      const normal = hi.val >= lo.val;
      const cond = normal ? `${nan}(${above}) || (${below})` : `${nan}((${above}) && (${below}))`;
      s += `if (${cond}) { ${sink.fail(path, `must be ${loMsg} ${normal ? "and" : "or"} ${hiMsg}`, `${k.name}.${lo.kind}_${hi.kind}${normal ? "" : "_exclusive"}`)} }\n`;
    } else if (lo) {
      s += `if (${nan}(${below})) { ${sink.fail(path, `must be ${loMsg}`, `${k.name}.${lo.kind}`)} }\n`;
    } else if (hi) {
      s += `if (${nan}(${above})) { ${sink.fail(path, `must be ${hiMsg}`, `${k.name}.${hi.kind}`)} }\n`;
    }
    if (r.in.length > 0) {
      s += `if (!${this.#const(r.in)}.includes(${v}) || Number.isNaN(${v})) { ${sink.fail(path, `must be in list [${r.in.map(k.format).join(", ")}]`, `${k.name}.in`)} }\n`;
    }
    if (r.notIn.length > 0) {
      s += `if (${this.#const(r.notIn)}.includes(${v}) && !Number.isNaN(${v})) { ${sink.fail(path, `must not be in list [${r.notIn.map(k.format).join(", ")}]`, `${k.name}.not_in`)} }\n`;
    }
    if ("finite" in r && r.finite) {
      s += `if (!Number.isFinite(${v})) { ${sink.fail(path, "must be finite", `${k.name}.finite`)} }\n`;
    }
    return s;
  }
}

/** The numeric rules messages this compiler handles share this shape (32-bit and floating). */
type NumericRules = Message & {
  const?: number;
  lessThan: { case: "lt" | "lte"; value: number } | { case: undefined; value?: undefined };
  greaterThan: { case: "gt" | "gte"; value: number } | { case: undefined; value?: undefined };
  in: number[];
  notIn: number[];
  finite?: boolean;
};

/** JS expression: protobuf-es `isFieldSet` for field `f` of message `m` whose value is in `v`. */
function setTest(f: DescField, m: string, v: string): string {
  if (f.fieldKind === "list") return `${v}.length > 0`;
  if (f.presence !== FeatureSet_FieldPresence.IMPLICIT) return `(${v} !== undefined && hasOwn(${m}, ${lit(f.localName)}))`;
  if (f.fieldKind === "enum") return `${v} !== ${f.enum.values[0]!.number}`;
  if (f.fieldKind === "scalar") {
    switch (f.scalar) {
      case ScalarType.STRING:
        return `${v} !== ""`;
      case ScalarType.BOOL:
        return `${v} !== false`;
      case ScalarType.DOUBLE:
      case ScalarType.FLOAT:
        return `!Object.is(${v}, 0)`;
      case ScalarType.BYTES:
        return `${v}.byteLength > 0`;
      default:
        return `${v} != 0`;
    }
  }
  unsupported(`${f.parent.typeName}.${f.name}: presence of a ${f.fieldKind} field`);
}

function hasFieldRules(f: DescField): boolean {
  return f.proto.options !== undefined && getOption(f, extField) !== undefined && isNonEmpty(getOption(f, extField));
}

function isNonEmpty(r: FieldRules): boolean {
  const desc = vpb.FieldRulesSchema;
  return desc.fields.some((f) => isFieldSet(r, f)) || ((r as { $unknown?: unknown[] }).$unknown?.length ?? 0) > 0;
}

/** Own rules: any field rule or message rule, or a required oneof. */
function ownRules(d: DescMessage): boolean {
  if (d.fields.some(hasFieldRules)) return true;
  const mr = getOption(d, extMessage);
  if (vpb.MessageRulesSchema.fields.some((f) => isFieldSet(mr, f)) || (mr as { $unknown?: unknown[] }).$unknown?.length) {
    return true;
  }
  return d.oneofs.some((o) => getOption(o, extOneof).required);
}

// ---- CEL subset ------------------------------------------------------------------------------
//
// Message-level rules in arbiter.proto are small boolean expressions over `this`. This compiles
// the subset: `||`, `&&`, `!`, parentheses, `==`/`!=` between two strings or two bools,
// `has(this.a.b)`, `this.a.b` (singular message fields down to a string or bool field), string
// literals without escapes, `true`, `false`. None of it can raise a CEL error, so evaluation
// order does not matter. Anything else is Unsupported, and the type goes to protovalidate.

type CelType = "bool" | "string";

interface CelNode {
  type: CelType;
  js: string;
}

function compileCel(d: DescMessage, expr: string, where: string): string {
  const toks = tokenize(expr, where);
  let pos = 0;
  const peek = (): string | undefined => toks[pos];
  const take = (t?: string): string => {
    const got = toks[pos];
    if (got === undefined || (t !== undefined && got !== t)) unsupported(`${where}: CEL expression "${expr}"`);
    pos++;
    return got;
  };
  const expectType = (n: CelNode, t: CelType): CelNode => {
    if (n.type !== t) unsupported(`${where}: CEL expression "${expr}"`);
    return n;
  };
  const or = (): CelNode => {
    let l = and();
    while (peek() === "||") {
      take();
      l = { type: "bool", js: `(${expectType(l, "bool").js} || ${expectType(and(), "bool").js})` };
    }
    return l;
  };
  const and = (): CelNode => {
    let l = unary();
    while (peek() === "&&") {
      take();
      l = { type: "bool", js: `(${expectType(l, "bool").js} && ${expectType(unary(), "bool").js})` };
    }
    return l;
  };
  const unary = (): CelNode => {
    if (peek() === "!") {
      take();
      return { type: "bool", js: `!${expectType(unary(), "bool").js}` };
    }
    return cmp();
  };
  const cmp = (): CelNode => {
    const l = primary();
    const op = peek();
    if (op === "==" || op === "!=") {
      take();
      const r = primary();
      if (l.type !== r.type) unsupported(`${where}: CEL expression "${expr}"`);
      return { type: "bool", js: `(${l.js} ${op === "==" ? "===" : "!=="} ${r.js})` };
    }
    return l;
  };
  const primary = (): CelNode => {
    const t = take();
    if (t === "(") {
      const n = or();
      take(")");
      return { type: n.type, js: `(${n.js})` };
    }
    if (t === "true" || t === "false") return { type: "bool", js: t };
    if (t.startsWith('"')) return { type: "string", js: lit(t.slice(1, -1)) };
    if (t === "has") {
      take("(");
      const n = select(true);
      take(")");
      return n;
    }
    if (t === "this") return select(false);
    return unsupported(`${where}: CEL expression "${expr}"`);
  };
  /** `this.a.b...` (the `this` token already taken unless `forHas`). */
  const select = (forHas: boolean): CelNode => {
    if (forHas) take("this");
    let msg = d;
    let js = "m";
    // Selecting through an unset message yields its default instance in CEL: guard with `?.`.
    let guarded = false;
    for (;;) {
      take(".");
      const name = take();
      const f = msg.fields.find((x) => x.name === name);
      if (f === undefined || f.oneof !== undefined) unsupported(`${where}: CEL field "${name}"`);
      const last = peek() !== ".";
      if (!last) {
        if (f.fieldKind !== "message") unsupported(`${where}: CEL select through ${name}`);
        js = `${js}${guarded ? "?." : ""}[${lit(f.localName)}]`;
        guarded = true;
        msg = f.message;
        continue;
      }
      if (forHas) {
        if (guarded) unsupported(`${where}: CEL has() on a nested field`);
        return { type: "bool", js: setTest(f, "m", `m[${lit(f.localName)}]`) };
      }
      if (f.fieldKind !== "scalar" || (f.scalar !== ScalarType.STRING && f.scalar !== ScalarType.BOOL) || f.proto.defaultValue) {
        unsupported(`${where}: CEL field "${name}" of this kind`);
      }
      const zero = f.scalar === ScalarType.STRING ? '""' : "false";
      const access = `${js}${guarded ? "?." : ""}[${lit(f.localName)}]`;
      return {
        type: f.scalar === ScalarType.STRING ? "string" : "bool",
        js: guarded || f.presence !== FeatureSet_FieldPresence.IMPLICIT ? `(${access} ?? ${zero})` : access,
      };
    }
  };
  const root = or();
  if (pos !== toks.length || root.type !== "bool") unsupported(`${where}: CEL expression "${expr}"`);
  return root.js;
}

function tokenize(expr: string, where: string): string[] {
  const out: string[] = [];
  const re = /\s*(?:(\|\||&&|==|!=|[!().])|([A-Za-z_][A-Za-z0-9_]*)|("[^"\\\n\r\u2028\u2029]*"))/y;
  let i = 0;
  while (i < expr.length) {
    if (/^\s*$/.test(expr.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(expr);
    if (m === null) unsupported(`${where}: CEL expression "${expr}"`);
    out.push(m[1] ?? m[2] ?? m[3]!);
    i = re.lastIndex;
  }
  return out;
}
