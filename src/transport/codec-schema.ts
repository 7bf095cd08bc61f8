/**
 * Which protobuf schemas the generated codecs (`codec.ts`) handle: proto3 messages of string,
 * bool, (u)int32, double, open enum, nested message and `google.protobuf.Struct` fields.
 * Anything else is left to protobuf-es.
 */
import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";

export const STRUCT = "google.protobuf.Struct";
export const SUPPORTED_SCALARS = new Set<ScalarType>([
  ScalarType.STRING,
  ScalarType.BOOL,
  ScalarType.UINT32,
  ScalarType.INT32,
  ScalarType.DOUBLE,
]);
// DescField.presence values (protobuf-es FeatureSet_FieldPresence).
export const EXPLICIT = 1;
export const IMPLICIT = 2;

/** Why `schema` cannot be compiled, or undefined when it can. */
export function unsupportedReason(schema: DescMessage): string | undefined {
  if (!LITTLE_ENDIAN) return "big-endian platform";
  // Long-standing but undocumented Buffer methods the generated code calls directly.
  const proto = Buffer.prototype as unknown as Record<string, unknown>;
  if (typeof proto.latin1Slice !== "function" || typeof proto.utf8Write !== "function")
    return "Buffer lacks latin1Slice/utf8Write";
  const seen = new Set<DescMessage>();
  const visit = (d: DescMessage): string | undefined => {
    if (seen.has(d)) return undefined;
    seen.add(d);
    if (d.typeName.startsWith("google.protobuf.")) return `${d.typeName} as a message`;
    if (d.file.edition !== 999 /* EDITION_PROTO3 */) return `${d.typeName} is not proto3`;
    for (const f of d.fields) {
      const why = fieldReason(f);
      if (why !== undefined) return `${d.typeName}.${f.name}: ${why}`;
      if ((f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) && !isStruct(f)) {
        const inner = visit(f.message!);
        if (inner !== undefined) return inner;
      }
    }
    return undefined;
  };
  return visit(schema);
}

export function isStruct(f: DescField): boolean {
  return f.fieldKind === "message" && f.message.typeName === STRUCT;
}

function fieldReason(f: DescField): string | undefined {
  if (f.oneof !== undefined) return "oneof";
  if (f.presence !== IMPLICIT && f.presence !== EXPLICIT) return "legacy required";
  switch (f.fieldKind) {
    case "scalar":
      return SUPPORTED_SCALARS.has(f.scalar) ? undefined : `scalar type ${ScalarType[f.scalar]}`;
    case "enum":
      return f.enum.open ? undefined : "closed enum";
    case "message":
      if (f.delimitedEncoding) return "delimited encoding";
      if (f.message.typeName.startsWith("google.protobuf.") && f.message.typeName !== STRUCT) return f.message.typeName;
      return undefined;
    case "list":
      if (f.listKind === "scalar")
        return SUPPORTED_SCALARS.has(f.scalar) ? undefined : `repeated ${ScalarType[f.scalar]}`;
      if (f.listKind === "enum") return f.enum.open ? undefined : "repeated closed enum";
      if (f.delimitedEncoding) return "delimited encoding";
      return f.message.typeName.startsWith("google.protobuf.") ? `repeated ${f.message.typeName}` : undefined;
    case "map":
      return "map";
  }
}

const LITTLE_ENDIAN = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;
