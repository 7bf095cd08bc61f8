/**
 * A Decide request given as Connect/JSON (the body `curl` sends to `/arbiter.v1.PolicyService/Decide`)
 * turned into the decision core's `DecideRequest` exactly as the transport does it: the protobuf
 * JSON mapping (`fromJson`, unknown fields refused), the contract's validation rules, then
 * `decideFromPb`. `arbiter approve` uses it, so the digest it signs is the one the sidecar computes
 * for the same request.
 */
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import type { DecideRequest } from "../decision/types.ts";
import { decideFromPb } from "./convert.ts";
import { createRequestValidator, type RequestValidator } from "./validate.ts";

let validator: RequestValidator | undefined;

/**
 * Throws an Error naming the offending field when `json` is not a valid Decide request (the
 * messages are those a caller gets as INVALID_ARGUMENT).
 */
export function decideRequestFromJson(json: unknown): DecideRequest {
  const msg = fromJson(pb.DecideRequestSchema, json as JsonValue);
  validator ??= createRequestValidator(); // compiles the rules once per process
  validator.check(pb.DecideRequestSchema, msg);
  return decideFromPb(msg);
}
