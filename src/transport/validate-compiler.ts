/**
 * The request-validation compiler: a message type's protovalidate rules as two generated JS
 * functions, `ok(m)` and `collect(m, path, out)` (see `validate.ts`).
 */
import {
  type DescEnum,
  type DescField,
  type DescMessage,
  type Message,
  ScalarType,
  getOption,
  isFieldSet,
} from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import * as vpb from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import {
  type FieldRules,
  Ignore,
  field as extField,
  message as extMessage,
  oneof as extOneof,
} from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import {
  NUMERIC,
  NumericKind,
  RULE_DESCS,
  SCALAR_RULE_CASE,
  SUPPORTED,
  Sink,
  Unsupported,
  big,
  colSink,
  cpLen,
  hasOwn,
  lit,
  numLit,
  okSink,
  onlySupported,
  setTest,
  unsupported,
  utf8Len,
} from "./validate-support.ts";
import { compileCel } from "./validate-cel.ts";

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
    // The generated checker (its source is built above from the descriptors, never from input).
    const make = new Function("K", "cpLen", "utf8Len", "hasOwn", src) as (...args: unknown[]) => unknown;
    const fns = make(this.#consts, cpLen, utf8Len, hasOwn) as {
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
      const fail =
        sink.mode === "ok" ? "return false;" : `${sink.fail(path, "value is required", "required")} break ${label};`;
      s += `if (!(${isSet})) { ${fail} }\n`;
    }
    switch (f.fieldKind) {
      case "message": {
        if (rules !== undefined && rules.type.case !== undefined)
          unsupported(`${where}: ${rules.type.case} rules on a message field`);
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
          if (items !== undefined && items.type.case !== undefined)
            unsupported(`${where} items: ${items.type.case} rules on messages`);
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
    if (isFieldSet(r, F.const))
      s += `if (${v} !== ${lit(r.const)}) { ${sink.fail(path, `must equal \`${r.const}\``, "string.const")} }\n`;
    const lenSet = isFieldSet(r, F.len);
    const minSet = isFieldSet(r, F.minLen);
    const maxSet = isFieldSet(r, F.maxLen);
    if (lenSet || minSet || maxSet) {
      // Code points lie between ceil(n/2) and n for n UTF-16 units: count them only when the unit
      // count cannot decide.
      if (sink.mode === "ok") {
        if (lenSet) s += `if (cpLen(${v}) !== ${big(r.len)}) return false;\n`;
        if (minSet)
          s += `if (${v}.length < ${big(r.minLen)} || (${v}.length < ${big(r.minLen * 2n)} && cpLen(${v}) < ${big(r.minLen)})) return false;\n`;
        if (maxSet) s += `if (${v}.length > ${big(r.maxLen)} && cpLen(${v}) > ${big(r.maxLen)}) return false;\n`;
      } else {
        s += `{ const n = cpLen(${v});\n`;
        if (lenSet)
          s += `if (n !== ${big(r.len)}) { ${sink.fail(path, `must be ${r.len} characters`, "string.len")} }\n`;
        if (minSet)
          s += `if (n < ${big(r.minLen)}) { ${sink.fail(path, `must be at least ${r.minLen} characters`, "string.min_len")} }\n`;
        if (maxSet)
          s += `if (n > ${big(r.maxLen)}) { ${sink.fail(path, `must be at most ${r.maxLen} characters`, "string.max_len")} }\n`;
        s += "}\n";
      }
    }
    const lbSet = isFieldSet(r, F.lenBytes);
    const minBSet = isFieldSet(r, F.minBytes);
    const maxBSet = isFieldSet(r, F.maxBytes);
    if (lbSet || minBSet || maxBSet) {
      s += `{ const b = utf8Len(${v});\n`;
      if (lbSet)
        s += `if (b !== ${big(r.lenBytes)}) { ${sink.fail(path, `must be ${r.lenBytes} bytes`, "string.len_bytes")} }\n`;
      if (minBSet)
        s += `if (b < ${big(r.minBytes)}) { ${sink.fail(path, `must be at least ${r.minBytes} bytes`, "string.min_bytes")} }\n`;
      if (maxBSet)
        s += `if (b > ${big(r.maxBytes)}) { ${sink.fail(path, `must be at most ${r.maxBytes} bytes`, "string.max_bytes")} }\n`;
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
    const loMsg =
      lo && (lo.kind === "gt" ? `greater than ${k.format(lo.val)}` : `greater than or equal to ${k.format(lo.val)}`);
    const hiMsg =
      hi && (hi.kind === "lt" ? `less than ${k.format(hi.val)}` : `less than or equal to ${k.format(hi.val)}`);
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
  if (
    vpb.MessageRulesSchema.fields.some((f) => isFieldSet(mr, f)) ||
    (mr as { $unknown?: unknown[] }).$unknown?.length
  ) {
    return true;
  }
  return d.oneofs.some((o) => getOption(o, extOneof).required);
}
