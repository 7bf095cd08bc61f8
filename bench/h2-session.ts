/**
 * CPU cost of the HTTP/2 session layer alone, old code against new in one process:
 *
 *   npx tsx bench/h2-session.ts [--baseline DIR] [--requests 200000] [--rounds 7] [--batch 16] [--pool]
 *
 * Each variant (this checkout's src/transport/h2/session.ts and, with --baseline, the same file
 * in DIR, e.g. a `git archive` of the previous commit) serves unary calls on a socket stand-in:
 * batches of `batch` requests (HEADERS + DATA with END_STREAM, like the gRPC Decide the transport
 * bench sends) are fed as one read, each answered with `respondUnary`, the output flushed as in
 * production (one write per tick) and dropped. Rounds alternate between the variants so a load
 * swing on a shared machine hits both alike; each prints CPU microseconds per request
 * (process.cpuUsage), and the summary gives the median per variant and the ratio new / old.
 *
 * With --pool, the session reports to a real connection pool (src/transport/connection-pool.ts)
 * as the server wires it (the old code has no such hook, so this prices the pool): with
 * --batch 1 every call takes the connection from idle to busy and back.
 *
 * It measures the part this layer owns (frame parsing, HPACK decode, stream state, flow control,
 * output framing); bench/transport-compare.ts measures the whole call over real sockets.
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createConnectionPool } from "../src/transport/connection-pool.ts";
import { writeFrameHeader } from "../src/transport/h2/frame.ts";
import { FakeSocket } from "../test/transport/fake-socket.ts";
import { encodeHeaderBlock } from "../src/transport/h2/hpack.ts";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}
const BASELINE = arg("baseline", "");
const REQUESTS = Number(arg("requests", "200000"));
const ROUNDS = Number(arg("rounds", "7"));
const BATCH = Number(arg("batch", "16"));
const POOL = process.argv.includes("--pool");
const pool = createConnectionPool({ maxConnections: 1024, handshakeTimeoutMs: 10_000, idleTimeoutMs: 300_000 });
const conn = { shed: () => {} };
let entry = pool.add(conn)!;

interface SessionModule {
  H2Session: new (socket: never, opts: unknown, first?: Buffer) => { destroy(): void };
  PREFACE: Buffer;
}

function frame(type: number, flags: number, id: number, payload: Buffer): Buffer {
  const f = Buffer.alloc(9 + payload.length);
  payload.copy(f, writeFrameHeader(f, 0, payload.length, type, flags, id));
  return f;
}

const REQUEST_HEADERS = encodeHeaderBlock([
  [":method", "POST"],
  [":scheme", "http"],
  [":path", "/arbiter.v1.PolicyService/Decide"],
  [":authority", "127.0.0.1:50051"],
  ["content-type", "application/grpc"],
  ["te", "trailers"],
  ["user-agent", "grpc-node-js/1.14.7"],
  ["grpc-accept-encoding", "identity,deflate,gzip"],
]);
const BODY = Buffer.alloc(5 + 90, 1);
const RESPONSE_HEADERS = encodeHeaderBlock([
  [":status", "200"],
  ["content-type", "application/grpc+proto"],
]);
const RESPONSE_BODY = Buffer.alloc(5 + 120, 2);
const TRAILERS = encodeHeaderBlock([["grpc-status", "0"]]);

function batch(firstId: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < BATCH; i++) {
    const id = firstId + 2 * i;
    parts.push(frame(0x1, 0x4, id, REQUEST_HEADERS), frame(0x0, 0x1, id, BODY));
  }
  // Give back the connection window the responses use, as a real client does.
  const inc = Buffer.alloc(4);
  inc.writeUInt32BE(BATCH * RESPONSE_BODY.length);
  parts.push(frame(0x8, 0, 0, inc));
  return Buffer.concat(parts);
}

async function run(mod: SessionModule): Promise<number> {
  const socket = new FakeSocket();
  entry = pool.add(conn)!;
  const session = new mod.H2Session(socket as never, {
    maxConcurrentStreams: 1000,
    maxHeaderListSize: 65_536,
    maxSessionMemory: 32 << 20,
    maxResetsPerSecond: 10_000,
    ...(POOL
      ? { onReady: () => entry.idle(), onActivity: (busy: boolean) => (busy ? entry.busy() : entry.idle()) }
      : {}),
    onStream: (s: {
      ondata?: (c: Buffer) => void;
      onend?: () => void;
      respondUnary(h: Buffer, b: Buffer, t: Buffer): void;
    }) => {
      s.ondata = () => {};
      s.onend = () => s.respondUnary(RESPONSE_HEADERS, RESPONSE_BODY, TRAILERS);
    },
  });
  socket.emit("data", Buffer.concat([mod.PREFACE, frame(0x4, 0, 0, Buffer.alloc(0))]));
  let id = 1;
  const t0 = process.cpuUsage();
  for (let n = 0; n < REQUESTS; n += BATCH) {
    socket.emit("data", batch(id));
    id += 2 * BATCH;
    await new Promise<void>((r) => setImmediate(r)); // the tick's flush runs
  }
  const used = process.cpuUsage(t0);
  session.destroy();
  entry.remove();
  if (socket.written < REQUESTS * RESPONSE_BODY.length) throw new Error("responses missing");
  return (used.user + used.system) / REQUESTS;
}

const variants: Array<[string, SessionModule]> = [
  ["new", (await import("../src/transport/h2/session.ts")) as unknown as SessionModule],
];
if (BASELINE !== "") {
  const url = pathToFileURL(resolve(BASELINE, "src/transport/h2/session.ts")).href;
  variants.push(["old", (await import(url)) as SessionModule]);
}
const results = new Map<string, number[]>(variants.map(([n]) => [n, []]));
for (const [, mod] of variants) await run(mod); // warm-up (JIT)
for (let round = 0; round < ROUNDS; round++) {
  // Alternate which goes first, so neither always follows the other's garbage.
  const order = round % 2 === 0 ? variants : [...variants].reverse();
  for (const [name, mod] of order) {
    const us = await run(mod);
    results.get(name)!.push(us);
    console.log(JSON.stringify({ round, variant: name, cpuUsPerRequest: +us.toFixed(3) }));
  }
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const summary = [...results].map(([name, xs]) => ({
  variant: name,
  "median CPU us/req": median(xs).toFixed(3),
  rounds: xs.length,
}));
console.table(summary);
pool.close();
if (results.has("old")) {
  const ratio = median(results.get("new")!) / median(results.get("old")!);
  console.log(`new / old CPU per request: ${(ratio * 100).toFixed(1)}% (median of ${ROUNDS} alternating rounds)`);
}
