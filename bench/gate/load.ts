/**
 * Open-model load: calls are sent on a fixed schedule (rate per second) whether or not earlier
 * calls have answered, and each latency is measured from the call's scheduled send time, so a
 * stall shows up in the percentiles instead of silently lowering the offered load (coordinated
 * omission).
 */
import grpc from "@grpc/grpc-js";
import { fromBinary, fromJson, toBinary, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import hdr from "hdr-histogram-js";
import { PolicyService } from "../../gen/arbiter/v1/arbiter_pb.ts";
import { GRPC_CODE_NAMES } from "../../k6/lib/ghz.js";
import type { RpcName } from "./thresholds.ts";

/** How early before a scheduled send the timer wakes the generator to poll (see run()). */
const TIMER_SLACK_MS = 1.5;

/** Per-call deadline: a call that takes longer is a DEADLINE_EXCEEDED error. */
const CALL_DEADLINE_MS = 2000;

export interface RunResult {
  readonly rpc: RpcName;
  readonly offeredRate: number;
  readonly durationS: number;
  readonly count: number;
  readonly errors: number;
  readonly statusCodes: Record<string, number>;
  readonly errorMessages: Record<string, number>;
  /** Latencies in microseconds, from each call's scheduled send time. */
  readonly histogram: hdr.Histogram;
  /** How late the generator sent each call after its scheduled time, microseconds: its own
   * timer and CPU lag, already part of `histogram`; large values mean a busy machine. */
  readonly sendLag: hdr.Histogram;
  readonly startedAt: Date;
  /** Scheduled start of the first call to the last answer. */
  readonly wallMs: number;
}

interface Method {
  readonly path: string;
  readonly input: DescMessage;
  readonly output: DescMessage;
}

function methodOf(rpc: RpcName): Method {
  const m = Object.values(PolicyService.method).find((x) => x.name === rpc);
  if (!m) throw new Error(`PolicyService has no method ${rpc}`);
  return { path: `/${PolicyService.typeName}/${rpc}`, input: m.input, output: m.output };
}

/** Request payloads (proto JSON, as in k6/payloads.json) encoded once up front. */
export function encodePayloads(rpc: RpcName, json: readonly JsonValue[]): Buffer[] {
  const { input } = methodOf(rpc);
  if (json.length === 0) throw new Error(`payloads: no request for ${rpc}`);
  return json.map((j, i) => {
    try {
      return Buffer.from(toBinary(input, fromJson(input, j)));
    } catch (err) {
      throw new Error(`payloads: ${rpc}[${i}] is not a valid ${input.typeName}: ${(err as Error).message}`);
    }
  });
}

export function createClient(target: string): grpc.Client {
  return new grpc.Client(target, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": 4 * 1024 * 1024,
  });
}

export function newHistogram(): hdr.Histogram {
  // 1 µs to 60 s at 3 significant digits.
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

export function run(
  client: grpc.Client,
  rpc: RpcName,
  payloads: readonly Buffer[],
  rate: number,
  durationS: number,
): Promise<RunResult> {
  const { path, output } = methodOf(rpc);
  const histogram = newHistogram();
  const sendLag = newHistogram();
  const statusCodes: Record<string, number> = {};
  const errorMessages: Record<string, number> = {};
  const total = Math.max(1, Math.round(rate * durationS));
  const intervalMs = 1000 / rate;
  const startedAt = new Date();
  const t0 = performance.now() + 5;
  let sent = 0;
  let answered = 0;
  let errors = 0;
  let lastAnswer = t0;
  const serialize = (b: Buffer) => b;
  // Decoding the answer is part of a client's cost and catches a malformed response.
  const deserialize = (b: Buffer) => fromBinary(output, b);

  return new Promise((resolve) => {
    const finish = () => {
      if (sent < total || answered < total) return;
      resolve({
        rpc,
        offeredRate: rate,
        durationS,
        count: answered,
        errors,
        statusCodes,
        errorMessages,
        histogram,
        sendLag,
        startedAt,
        wallMs: lastAnswer - t0,
      });
    };
    const tick = () => {
      const now = performance.now();
      while (sent < total && t0 + sent * intervalMs <= now) {
        const scheduled = t0 + sent * intervalMs;
        const payload = payloads[sent % payloads.length]!;
        sent++;
        sendLag.recordValue(Math.max(1, Math.round((now - scheduled) * 1000)));
        client.makeUnaryRequest(
          path,
          serialize,
          deserialize,
          payload,
          new grpc.Metadata(),
          { deadline: Date.now() + CALL_DEADLINE_MS },
          (err) => {
            const end = performance.now();
            lastAnswer = Math.max(lastAnswer, end);
            histogram.recordValue(Math.max(1, Math.round((end - scheduled) * 1000)));
            const code = err ? (GRPC_CODE_NAMES[err.code ?? 2] ?? String(err.code)) : "OK";
            statusCodes[code] = (statusCodes[code] ?? 0) + 1;
            if (err) {
              errors++;
              const msg = `${code}: ${err.details ?? err.message}`;
              errorMessages[msg] = (errorMessages[msg] ?? 0) + 1;
            }
            answered++;
            finish();
          },
        );
      }
      if (sent < total) {
        // Node's timers fire a millisecond or more late; that lateness would be charged to the
        // sidecar (latency counts from the scheduled time). Sleep until shortly before the next
        // send, then poll with setImmediate, which still lets answers be read in between.
        const wait = t0 + sent * intervalMs - performance.now();
        if (wait > TIMER_SLACK_MS) setTimeout(tick, wait - TIMER_SLACK_MS);
        else setImmediate(tick);
      }
    };
    setTimeout(tick, 5);
  });
}
