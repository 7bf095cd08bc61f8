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
 *
 * Layout: `validate-compiler.ts` (rules -> functions), `validate-cel.ts` (the CEL subset),
 * `validate-support.ts` (supported rules, length counting, literals, code sinks).
 */
import { type DescMessage, type Message, type MessageShape } from "@bufbuild/protobuf";
import { createValidator, type Validator } from "@bufbuild/protovalidate";
import { Code, RpcError } from "./status.ts";
import {
  compileMessageValidator,
  type CompiledMessageValidator,
  type UnsupportedMessageValidator,
} from "./validate-compiler.ts";

export { compileMessageValidator } from "./validate-compiler.ts";
export type { CompiledMessageValidator, UnsupportedMessageValidator } from "./validate-compiler.ts";

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
