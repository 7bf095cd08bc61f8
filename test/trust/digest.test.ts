/**
 * `arbiter approve` reads the Decide request as Connect JSON; the agent may send it as JSON or as
 * protobuf binary over gRPC. Property: for any valid request, the approval digest from the JSON
 * (what the grant signs) equals the digest of the same request after the gRPC wire round trip
 * (what the sidecar computes), so a grant never fails on an encoding difference.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { fromBinary, fromJson, toBinary } from "@bufbuild/protobuf";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import { decideApprovalDigest } from "../../src/decision/canonical.ts";
import { decideFromPb } from "../../src/transport/convert.ts";
import { decideRequestFromJson } from "../../src/transport/decide-json.ts";

const ident = fc.string({ minLength: 1, maxLength: 12 });
// Struct values: what google.protobuf.Value can hold (finite doubles, strings, bools, null, nesting).
const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
    fc.string({ maxLength: 10 }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("value"), { maxLength: 3 }),
    fc.dictionary(ident, tie("value"), { maxKeys: 3 }),
  ),
})).value;
const attrs = fc.dictionary(ident, jsonValue, { maxKeys: 4 });

const request = fc.record(
  {
    tenantId: fc.constantFrom("acme", "globex"),
    subject: fc.record(
      { id: ident, roles: fc.array(ident, { maxLength: 3 }), attributes: attrs },
      { requiredKeys: ["id"] },
    ),
    action: fc.constantFrom("delete", "drop", "deploy", "pay"),
    resource: fc.record(
      { type: ident, id: ident, tenantId: fc.constantFrom("", "acme", "globex"), attributes: attrs },
      { requiredKeys: ["type"] },
    ),
    context: attrs,
  },
  { requiredKeys: ["tenantId", "subject", "action", "resource"] },
);

describe("approval digest: Connect JSON (arbiter approve) vs the gRPC wire (the sidecar)", () => {
  it("is the same for any valid Decide request", () => {
    fc.assert(
      fc.property(request, (json) => {
        // -0 is not representable in JSON text; the CLI reads text, so compare through text.
        const text = JSON.parse(JSON.stringify(json)) as unknown;
        const fromJsonPath = decideApprovalDigest(decideRequestFromJson(text));
        // The message a gRPC client builds from the same data, encoded and decoded as on the wire.
        const sent = fromJson(pb.DecideRequestSchema, text as never);
        const wire = fromBinary(pb.DecideRequestSchema, toBinary(pb.DecideRequestSchema, sent));
        expect(decideApprovalDigest(decideFromPb(wire))).toBe(fromJsonPath);
        // And a request id or a token, which are not part of the digest, change nothing.
        expect(
          decideApprovalDigest(
            decideRequestFromJson({ ...(text as object), requestId: "r-1", approvalToken: "x.y.z" }),
          ),
        ).toBe(fromJsonPath);
      }),
      { numRuns: 300 },
    );
  });

  it("differs when anything the policy sees differs", () => {
    const base = {
      tenantId: "acme",
      subject: { id: "agent-7", roles: ["engineer"] },
      action: "delete",
      resource: { type: "service", id: "checkout" },
    };
    const d = decideApprovalDigest(decideRequestFromJson(base));
    for (const other of [
      { ...base, tenantId: "globex" },
      { ...base, action: "drop" },
      { ...base, subject: { ...base.subject, roles: ["engineer", "admin"] } },
      { ...base, resource: { ...base.resource, id: "payments" } },
      { ...base, resource: { ...base.resource, tenantId: "globex" } },
      { ...base, context: { ticket: "OPS-1" } },
    ]) {
      expect(decideApprovalDigest(decideRequestFromJson(other))).not.toBe(d);
    }
    // resource.tenantId "" means the request's tenant: the same request as spelling it out.
    expect(
      decideApprovalDigest(decideRequestFromJson({ ...base, resource: { ...base.resource, tenantId: "acme" } })),
    ).toBe(d);
  });
});
