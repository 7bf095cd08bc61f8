/**
 * Specialized binary protobuf codecs for the messages of the gRPC hot path.
 *
 * protobuf-es v2 decodes and encodes by walking closures per field, creates every message through
 * `create()`, allocates a `[fieldNo, wireType]` tuple per tag and converts `google.protobuf.Struct`
 * fields through the full Struct/Value/ListValue message form before turning them into JSON. That
 * costs several microseconds per Decide. `codecFor(schema)` instead generates one JavaScript
 * function per message type (with `new Function`, as protobufjs does): a `switch` on the field
 * number with constant property names, object literals of a fixed shape, and Struct fields read
 * straight into `JsonObject` and written straight from it.
 *
 * Semantics are protobuf-es's, on purpose and quirk for quirk, so that swapping codecs changes no
 * observable behaviour (test/transport/codec.test.ts checks this differentially):
 * - Unknown fields are kept in `$unknown` (`{ no, wireType, data }`, `data` a view of the input)
 *   and written back after the known fields, like protobuf-es. Unknown fields inside a Struct,
 *   Value or ListValue are dropped, as protobuf-es drops them when it converts to `JsonObject`.
 * - For a known field the wire type is not checked (protobuf-es reads the field's own type);
 *   repeated numeric fields accept packed and unpacked records.
 * - Last one wins for singular scalars; a singular message or Struct field that occurs twice is
 *   merged; Value kinds merge as the `kind` oneof does.
 * - Bounds are checked against the whole input, not against the enclosing length prefix, as in
 *   protobuf-es; a length prefix never allocates anything before it is checked against the input.
 * - Nesting is limited to {@link MAX_DEPTH} messages (protobuf-es's default recursion limit,
 *   counted the same way: every message, Struct, Value and ListValue is one level).
 * - Strings are validated as UTF-8 where protobuf-es validates them (every proto3 string).
 *
 * Errors: whenever the fast decoder or encoder meets anything it does not expect (malformed input,
 * a value of the wrong JS type, a foreign `$typeName`), the public codec re-runs protobuf-es's
 * `fromBinary` / `toBinary` on the same input, so the error thrown (or, for odd but accepted
 * values, the result) is protobuf-es's own, message included. The fast path is for valid input.
 *
 * Layout: `codec-schema.ts` (what is supported), `codec-generate.ts` (the per-message source),
 * `codec-runtime.ts` (the readers and writers every generated codec embeds).
 */
import { fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { generate } from "./codec-generate.ts";
import { unsupportedReason } from "./codec-schema.ts";

export { MAX_DEPTH } from "./codec-runtime.ts";
export { unsupportedReason } from "./codec-schema.ts";

export interface MessageCodec<M> {
  /**
   * Parses `bytes` (any Uint8Array view, e.g. a Buffer slice); the result equals protobuf-es
   * `fromBinary`'s. Throws protobuf-es's own error for input protobuf-es rejects. `$unknown`
   * entries, when present, are views of `bytes`.
   */
  decode(bytes: Uint8Array): M;
  /**
   * Serializes `msg`: the same bytes as protobuf-es `toBinary`. The result may be a view into a
   * shared 16 KiB slab (like `Buffer.allocUnsafe`'s pool): use its `byteOffset`/`byteLength`,
   * never its whole `.buffer`.
   */
  encode(msg: M): Uint8Array;
  /**
   * `encode` preceded by the 5-byte gRPC length prefix (flag 0, uint32 big-endian length), in
   * one buffer: the same bytes as `encodeFrame(toBinary(schema, msg))` without the second copy.
   */
  encodeFramed(msg: M): Uint8Array;
}

/** The generated codec without fallback: throws its own (less precise) errors. */
export interface RawCodec {
  decode(bytes: Uint8Array): unknown;
  /**
   * Returns undefined when the message holds something only protobuf-es can judge. With
   * `framed`, the bytes are preceded by the 5-byte gRPC message prefix.
   */
  encode(msg: unknown, framed?: boolean): Uint8Array | undefined;
}

const cache = new WeakMap<DescMessage, MessageCodec<never>>();

/**
 * The codec for `schema`, compiled on first use and cached per schema. Schemas with a field kind
 * this compiler does not handle (maps other than Struct, oneofs, 64-bit integers, bytes, floats,
 * closed enums, groups, wrappers, proto2 defaults) get protobuf-es's own `fromBinary`/`toBinary`.
 */
export function codecFor<D extends DescMessage>(schema: D): MessageCodec<MessageShape<D>> {
  const hit = cache.get(schema);
  if (hit !== undefined) return hit as MessageCodec<MessageShape<D>>;
  const raw = compileCodec(schema);
  let codec: MessageCodec<MessageShape<D>>;
  if (raw === undefined) {
    codec = {
      decode: (bytes) => fromBinary(schema, bytes),
      encode: (msg) => toBinary(schema, msg),
      encodeFramed: (msg) => frame(toBinary(schema, msg)),
    };
  } else {
    codec = {
      decode(bytes) {
        try {
          return raw.decode(bytes) as MessageShape<D>;
        } catch {
          // Malformed input: protobuf-es produces the canonical error (and, should the fast
          // decoder ever be stricter than protobuf-es, the canonical result).
          return fromBinary(schema, bytes);
        }
      },
      encode(msg) {
        return raw.encode(msg) ?? toBinary(schema, msg);
      },
      encodeFramed(msg) {
        return raw.encode(msg, true) ?? frame(toBinary(schema, msg));
      },
    };
  }
  cache.set(schema, codec as MessageCodec<never>);
  return codec;
}

function frame(message: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/**
 * Compiles the codec for `schema` without caching and without the protobuf-es fallback, or
 * returns undefined when the schema is unsupported. Exported for the differential tests, which
 * need to see whether the generated decoder itself throws; servers use {@link codecFor}.
 */
export function compileCodec(schema: DescMessage): RawCodec | undefined {
  if (unsupportedReason(schema) !== undefined) return undefined;
  const src = generate(schema);
  const factory = new Function("TextDecoder", "Buffer", src) as (t: typeof TextDecoder, b: typeof Buffer) => RawCodec;
  return factory(TextDecoder, Buffer);
}
