/**
 * Calls Arbiter's Decide and Route with a plain @grpc/grpc-js client and the generated
 * protobuf-es codecs. Run against a started sidecar (`npm start`):
 *
 *   npx tsx examples/grpc-js-client.ts [target]     # default 127.0.0.1:50051; or unix:/path/to.sock
 */
import * as grpc from "@grpc/grpc-js";
import {
  create,
  fromBinary,
  toBinary,
  toJson,
  type DescMessage,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import {
  DecideRequestSchema,
  DecideResponseSchema,
  RouteRequestSchema,
  RouteResponseSchema,
} from "../gen/arbiter/v1/arbiter_pb.ts";

const target = process.argv[2] ?? "127.0.0.1:50051";
const client = new grpc.Client(target, grpc.credentials.createInsecure());

function call<I extends DescMessage, O extends DescMessage>(
  method: string,
  input: I,
  output: O,
  init: MessageInitShape<I>,
): Promise<MessageShape<O>> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      `/arbiter.v1.PolicyService/${method}`,
      (m: MessageShape<I>) => Buffer.from(toBinary(input, m)),
      (b: Buffer) => fromBinary(output, b),
      create(input, init),
      new grpc.Metadata(),
      { deadline: Date.now() + 2_000 },
      (err, value) => (err ? reject(err) : resolve(value as MessageShape<O>)),
    );
  });
}

const decided = await call("Decide", DecideRequestSchema, DecideResponseSchema, {
  tenantId: "acme",
  subject: { id: "alice", roles: ["editor"] },
  action: "delete",
  resource: { type: "document", id: "d1" },
});
console.log("Decide:", JSON.stringify(toJson(DecideResponseSchema, decided)));

const routed = await call("Route", RouteRequestSchema, RouteResponseSchema, {
  tenantId: "acme",
  messages: [
    { role: "system", content: "You are a helpful assistant." },
    { role: "user", content: "Summarise the attached CONFIDENTIAL merger memo." },
  ],
});
console.log("Route:", JSON.stringify(toJson(RouteResponseSchema, routed)));
client.close();
