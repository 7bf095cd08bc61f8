/**
 * Request validation: the protovalidate rules declared in `proto/arbiter/v1/arbiter.proto`,
 * evaluated by `@bufbuild/protovalidate`. A violation becomes INVALID_ARGUMENT naming each field
 * and rule, e.g. `tenant_id: must be at least 1 characters [string.min_len]`.
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { createValidator, type Validator } from "@bufbuild/protovalidate";
import { Code, RpcError } from "./status.ts";

export interface RequestValidator {
  /** Throws `RpcError(INVALID_ARGUMENT)` listing every violation; returns when valid. */
  check<D extends DescMessage>(schema: D, msg: MessageShape<D>): void;
}

export function createRequestValidator(): RequestValidator {
  const validator: Validator = createValidator();
  return {
    check(schema, msg) {
      const result = validator.validate(schema, msg);
      if (result.kind === "valid") return;
      if (result.kind === "invalid") {
        const text = result.violations.map((v) => v.toString()).join("; ");
        throw new RpcError(Code.INVALID_ARGUMENT, text);
      }
      // A rule that cannot be compiled is a bug in the contract, not the caller's fault.
      throw new RpcError(Code.INTERNAL, "request validation failed", { cause: result.error });
    },
  };
}
