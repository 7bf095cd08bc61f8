/**
 * Long deadlines through a real server with sync audit (issue #12 item 4): a deadline past the
 * largest Node timer (2^31-1 ms, 24.8 days) used to fire after 1 ms, so every such call waiting
 * on the audit append failed DEADLINE_EXCEEDED at once. Real Postgres (test/support/postgres.ts),
 * a real @grpc/grpc-js client, node's HTTP/2 client for exact grpc-timeout values, fetch for
 * Connect over HTTP/1.1. A 100,000,000-hour deadline cannot be written in either protocol
 * (grpc-timeout takes at most 8 digits, so 99999999H, ~11,400 years, is the largest; grpc-js
 * refuses a deadline past it client-side; connect-timeout-ms takes at most 10 digits): the tests
 * use the largest value each header allows.
 */
import http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as pb from "../../gen/arbiter/v1/arbiter_pb.ts";
import { startServer, type RunningServer } from "../../src/server/serve.ts";
import { clampTimerMs, MAX_TIMER_MS } from "../../src/transport/deadline.ts";
import { query } from "../audit/helpers.ts";
import { startTestPostgres, type TestPostgres } from "../support/postgres.ts";
import { copyPolicies, testConfig, unary } from "./helpers.ts";

let pgt: TestPostgres;
let server: RunningServer;
let dbUrl: string;
const warnings: string[] = [];
const onWarning = (w: Error): void => void warnings.push(w.name);

beforeAll(async () => {
  process.on("warning", onWarning);
  pgt = await startTestPostgres();
  dbUrl = await pgt.createTestDatabase();
  server = await startServer(
    testConfig({
      ARBITER_BUNDLE: copyPolicies(),
      ARBITER_AUDIT: "on",
      ARBITER_AUDIT_DURABILITY: "sync",
      ARBITER_DATABASE_URL: dbUrl,
    }),
  );
});

afterAll(async () => {
  process.off("warning", onWarning);
  await server?.close();
  await pgt?.stop();
});

const DECIDE = "/arbiter.v1.PolicyService/Decide";
const REQUEST = {
  tenantId: "acme",
  subject: { id: "alice", roles: ["viewer"] },
  action: "read",
  resource: { type: "document", id: "doc-1" },
};

/**
 * True once the decision's audit row is in Postgres (within 10 s). Sync mode acknowledges a
 * decision when its record is fsynced in the spool (docs/audit.md); the row reaches the
 * database with the next batch (every 100 ms by default), so the row is awaited, not assumed.
 */
async function audited(decisionId: string): Promise<boolean> {
  for (const until = Date.now() + 10_000; ;) {
    const rows = await query<{ n: string }>(dbUrl, "SELECT count(*) AS n FROM audit_records WHERE decision_id = $1", [
      decisionId,
    ]);
    if (rows[0]!.n === "1") return true;
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A Decide over HTTP/2 with exactly this grpc-timeout header; resolves grpc-status and the decision id. */
function decideWithTimeout(timeout: string): Promise<{ status: string | undefined; decisionId: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${server.address}`);
    session.on("error", reject);
    const req = session.request({
      ":method": "POST",
      ":path": DECIDE,
      "content-type": "application/grpc+proto",
      te: "trailers",
      "grpc-timeout": timeout,
    });
    const msg = toBinary(pb.DecideRequestSchema, create(pb.DecideRequestSchema, REQUEST));
    const frame = Buffer.alloc(5 + msg.length);
    frame.writeUInt32BE(msg.length, 1);
    frame.set(msg, 5);
    req.end(frame);
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    let status: string | undefined;
    // A trailers-only answer (an error before any message) carries grpc-status in its headers.
    req.on("response", (h) => (status = h["grpc-status"] === undefined ? status : String(h["grpc-status"])));
    req.on("trailers", (t) => (status = String(t["grpc-status"])));
    req.on("error", reject);
    req.on("end", () => {
      session.close();
      const body = Buffer.concat(chunks);
      const decisionId = body.length > 5 ? fromBinary(pb.DecideResponseSchema, body.subarray(5)).decisionId : "";
      resolve({ status, decisionId });
    });
  });
}

describe("deadlines past the largest timer", () => {
  it("clampTimerMs keeps what a timer can hold", () => {
    expect(clampTimerMs(2_592_000_000)).toBe(MAX_TIMER_MS);
    expect(clampTimerMs(99_999_999 * 3_600_000)).toBe(MAX_TIMER_MS);
    expect(clampTimerMs(1500)).toBe(1500);
    expect(clampTimerMs(-1)).toBe(0);
  });

  it("a grpc-js call with a 30-day deadline is answered and audited (sync)", async () => {
    const client = new grpc.Client(server.address, grpc.credentials.createInsecure());
    try {
      const r = await unary(client, DECIDE, pb.DecideRequestSchema, pb.DecideResponseSchema, REQUEST, {
        deadline: Date.now() + 30 * 24 * 3_600_000,
      });
      expect(r.error).toBeUndefined();
      expect(r.value!.allow).toBe(true);
      expect(await audited(r.value!.decisionId)).toBe(true);
    } finally {
      client.close();
    }
  });

  it.each(["2592000S", "43200M", "99999999H", "99999999S"])(
    "grpc-timeout %s: OK and audited, not DEADLINE_EXCEEDED",
    async (timeout) => {
      const r = await decideWithTimeout(timeout);
      expect(r.status).toBe("0");
      expect(await audited(r.decisionId)).toBe(true);
    },
  );

  it("a short deadline still fires: grpc-timeout 1n is DEADLINE_EXCEEDED", async () => {
    // Checked when the answer is ready too, not only by the timer, which fires no sooner than the
    // next turn of the event loop: an answer faster than that used to go out OK (a CI flake).
    for (let i = 0; i < 20; i++) {
      const r = await decideWithTimeout("1n");
      expect(r.status).toBe(String(grpc.status.DEADLINE_EXCEEDED));
    }
  });

  it("Connect connect-timeout-ms 0 is deadline_exceeded, however fast the answer", async () => {
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`http://${server.address}${DECIDE}`, {
        method: "POST",
        headers: { "content-type": "application/json", "connect-timeout-ms": "0" },
        body: JSON.stringify(REQUEST),
      });
      const body = (await res.json()) as { code?: string };
      expect(res.status).toBe(504);
      expect(body.code).toBe("deadline_exceeded");
    }
  });

  it.each(["2592000000", "9999999999", "2147483648"])(
    "Connect connect-timeout-ms %s over HTTP/1.1: OK and audited",
    async (ms) => {
      const res = await fetch(`http://${server.address}${DECIDE}`, {
        method: "POST",
        headers: { "content-type": "application/json", "connect-timeout-ms": ms },
        body: JSON.stringify(REQUEST),
      });
      const body = (await res.json()) as { allow?: boolean; decisionId?: string };
      expect(res.status).toBe(200);
      expect(body.allow).toBe(true);
      expect(await audited(body.decisionId!)).toBe(true);
    },
  );

  it("no TimeoutOverflowWarning was raised", () => {
    expect(warnings.filter((w) => w === "TimeoutOverflowWarning")).toEqual([]);
  });
});
