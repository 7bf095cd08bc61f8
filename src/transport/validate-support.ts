/**
 * What the request-validation compiler (`validate-compiler.ts`) builds on: the rules it supports,
 * protovalidate's counting of lengths, the literal printers, and the two code sinks (`ok` and
 * `collect`) each rule writes to.
 */
import { type DescField, type DescMessage, type Message, ScalarType, isFieldSet } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import * as vpb from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

export class Unsupported extends Error {}

export function unsupported(reason: string): never {
  throw new Unsupported(reason);
}

/** Number of code points, as protovalidate counts them (a lone surrogate is one). */
export function cpLen(s: string): number {
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
export function utf8Len(s: string): number {
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

export const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** protovalidate's float formatting (`Number#toString`, with NaN and ±Infinity spelled out). */
export function printFloat(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "Infinity";
  if (n === -Infinity) return "-Infinity";
  return n.toString();
}

export const lit = (v: unknown): string => JSON.stringify(v);

/** A number literal that survives `-0`, NaN and ±Infinity. */
export function numLit(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "Infinity";
  if (n === -Infinity) return "-Infinity";
  if (Object.is(n, -0)) return "-0";
  return String(n);
}

/** bigint bound (uint64 in the rules) as a JS number; lengths never reach 2^53, so rounding is harmless. */
export const big = (b: bigint): string => numLit(Number(b));

/** Which generated code is being written: the boolean check or the violation collector. */
export type Mode = "ok" | "col";

/**
 * Emits `fail` for one violation: `return false` in ok mode, a push of the formatted text in
 * collect mode. `path` is a JS expression evaluating to the field path string.
 */
export interface Sink {
  readonly mode: Mode;
  fail(path: string, message: string, ruleId: string): string;
  /** Same, with a message computed at run time (a JS string expression). */
  failExpr(path: string, messageExpr: string, ruleId: string): string;
}

export const okSink: Sink = {
  mode: "ok",
  fail: () => "return false;",
  failExpr: () => "return false;",
};

export const colSink: Sink = {
  mode: "col",
  fail: (path, message, ruleId) => `out.push(${path} + ${lit(`: ${message} [${ruleId}]`)});`,
  failExpr: (path, messageExpr, ruleId) => `out.push(${path} + ": " + ${messageExpr} + ${lit(` [${ruleId}]`)});`,
};

export interface NumericKind {
  name: string;
  nanFailsRange: boolean;
  format: (v: number) => string;
}

export const NUMERIC: Partial<Record<ScalarType, NumericKind>> = {
  [ScalarType.INT32]: { name: "int32", nanFailsRange: false, format: String },
  [ScalarType.SINT32]: { name: "sint32", nanFailsRange: false, format: String },
  [ScalarType.SFIXED32]: { name: "sfixed32", nanFailsRange: false, format: String },
  [ScalarType.UINT32]: { name: "uint32", nanFailsRange: false, format: String },
  [ScalarType.FIXED32]: { name: "fixed32", nanFailsRange: false, format: String },
  [ScalarType.FLOAT]: { name: "float", nanFailsRange: true, format: printFloat },
  [ScalarType.DOUBLE]: { name: "double", nanFailsRange: true, format: printFloat },
};

/** Rules of each kind this compiler implements; any other rule set on a field means fallback. */
export const SUPPORTED: Record<string, ReadonlySet<string>> = {
  string: new Set(["const", "len", "min_len", "max_len", "len_bytes", "min_bytes", "max_bytes", "in", "not_in"]),
  numeric: new Set(["const", "lt", "lte", "gt", "gte", "in", "not_in", "finite"]),
  enum: new Set(["defined_only", "const", "in", "not_in"]),
  repeated: new Set(["min_items", "max_items", "items"]),
  field: new Set(["required", "ignore"]),
  message: new Set(["cel"]),
};

/** Throws Unsupported when `rules` sets a field outside `allowed` or carries extensions. */
export function onlySupported(rules: Message, kind: string, allowed: ReadonlySet<string>, where: string): void {
  const desc = RULE_DESCS.get(rules.$typeName);
  if (desc === undefined) unsupported(`${where}: rules ${rules.$typeName}`);
  if ((rules as { $unknown?: unknown[] }).$unknown?.length) unsupported(`${where}: predefined rule extensions`);
  for (const f of desc.fields) {
    if (f.oneof !== undefined && f.oneof.name === "type" && kind === "field") continue; // the rule kind itself
    if (isFieldSet(rules, f) && !allowed.has(f.name))
      unsupported(`${where}: ${kind === "field" ? "" : `${kind}.`}${f.name}`);
  }
}

export const RULE_DESCS = new Map<string, DescMessage>(
  (Object.values(vpb) as unknown[])
    .filter((v): v is DescMessage => typeof v === "object" && v !== null && (v as { kind?: string }).kind === "message")
    .map((d): [string, DescMessage] => [d.typeName, d]),
);

/** Rule kind names (the FieldRules `type` oneof cases) that match a scalar type. */
export const SCALAR_RULE_CASE: Partial<Record<ScalarType, string>> = {
  [ScalarType.STRING]: "string",
  [ScalarType.INT32]: "int32",
  [ScalarType.SINT32]: "sint32",
  [ScalarType.SFIXED32]: "sfixed32",
  [ScalarType.UINT32]: "uint32",
  [ScalarType.FIXED32]: "fixed32",
  [ScalarType.FLOAT]: "float",
  [ScalarType.DOUBLE]: "double",
};

/** JS expression: protobuf-es `isFieldSet` for field `f` of message `m` whose value is in `v`. */
export function setTest(f: DescField, m: string, v: string): string {
  if (f.fieldKind === "list") return `${v}.length > 0`;
  if (f.presence !== FeatureSet_FieldPresence.IMPLICIT)
    return `(${v} !== undefined && hasOwn(${m}, ${lit(f.localName)}))`;
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
