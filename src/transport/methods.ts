/**
 * The unary method table shared by the gRPC fast path and the Connect handler: path -> schemas
 * and a handler working on protobuf messages. PolicyService handlers validate, convert to
 * decision-core types, call the `DecisionService` and convert back.
 */
import type { DescMessage, Message } from "@bufbuild/protobuf";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import type { CallContext, DecisionService } from "../decision/types.ts";
import * as convert from "./convert.ts";
import type { RequestValidator } from "./validate.ts";

export interface UnaryCall extends CallContext {
  readonly traceId?: string;
}

export interface UnaryMethod {
  /** `/package.Service/Method` */
  readonly path: string;
  /** Metric label; undefined for methods outside PolicyService (not counted). */
  readonly rpc?: string;
  readonly input: DescMessage;
  readonly output: DescMessage;
  handle(msg: Message, call: UnaryCall): Promise<Message>;
}

const SERVICE = pb.PolicyService.typeName;

export function policyMethods(service: DecisionService, validator: RequestValidator): UnaryMethod[] {
  function method<I extends Message, O extends Message, TI, TO>(
    name: string,
    input: DescMessage,
    output: DescMessage,
    from: (m: I, extra: convert.ConvertMeta) => TI,
    invoke: (req: TI, ctx: CallContext) => Promise<TO>,
    to: (r: TO) => O,
  ): UnaryMethod {
    return {
      path: `/${SERVICE}/${name}`,
      rpc: name,
      input,
      output,
      async handle(msg, call) {
        validator.check(input, msg as never);
        const extra = call.traceId === undefined ? {} : { traceId: call.traceId };
        const req = from(msg as I, extra);
        // The call is the context: its signal may be built lazily (grpc-handler.ts).
        const res = await invoke(req, call);
        return to(res);
      },
    };
  }
  return [
    method(
      "Decide",
      pb.DecideRequestSchema,
      pb.DecideResponseSchema,
      convert.decideFromPb,
      (r, c) => service.decide(r, c),
      convert.decideToPb,
    ),
    method(
      "Route",
      pb.RouteRequestSchema,
      pb.RouteResponseSchema,
      convert.routeFromPb,
      (r, c) => service.route(r, c),
      convert.routeToPb,
    ),
    method(
      "GuardMemory",
      pb.GuardMemoryRequestSchema,
      pb.GuardMemoryResponseSchema,
      convert.guardMemoryFromPb,
      (r, c) => service.guardMemory(r, c),
      convert.guardMemoryToPb,
    ),
    method(
      "Finalize",
      pb.FinalizeRequestSchema,
      pb.FinalizeResponseSchema,
      convert.finalizeFromPb,
      (r, c) => service.finalize(r, c),
      convert.finalizeToPb,
    ),
    method(
      "RecordUsage",
      pb.RecordUsageRequestSchema,
      pb.RecordUsageResponseSchema,
      convert.recordUsageFromPb,
      (r, c) => service.recordUsage(r, c),
      convert.recordUsageToPb,
    ),
    method(
      "CreateApproval",
      pb.CreateApprovalRequestSchema,
      pb.CreateApprovalResponseSchema,
      convert.createApprovalFromPb,
      (r, c) => service.createApproval(r, c),
      convert.createApprovalToPb,
    ),
  ];
}

/** W3C `traceparent` -> trace id (32 lowercase hex), or undefined when absent or malformed. */
export function traceIdFrom(traceparent: string | string[] | undefined): string | undefined {
  if (typeof traceparent !== "string") return undefined;
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent.trim());
  if (!m || m[1] === "00000000000000000000000000000000") return undefined;
  return m[1];
}
