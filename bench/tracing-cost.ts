/**
 * Cost of OpenTelemetry tracing on the cached Decide path, in-process, same run:
 *   off            no OTLP endpoint (the decision service gets no tracing at all)
 *   1% sampled     OTEL_TRACES_SAMPLER=traceidratio, ARG=0.01, exporting to a local receiver
 *   100% sampled   always_on, exporting to the same receiver
 *
 *   npx tsx bench/tracing-cost.ts [--iters N] [--rounds R]
 *
 * Prints wall ns/call (median of R rounds of N calls, the cases interleaved per round) and the
 * ratio to "off". Each call carries a fresh random trace id, as a caller's traceparent would.
 */
import { createServer } from "node:http";
import { randomBytes } from "node:crypto";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { Registry } from "prom-client";
import { createDecisionService } from "../src/decision/decision-service.ts";
import type { CallContext, DecideRequest, DecisionService } from "../src/decision/types.ts";
import { engineContract } from "../src/decision/contract.ts";
import { createEngineHost } from "../src/engine/index.ts";
import { createTracing } from "../src/telemetry/tracing.ts";

const { values } = parseArgs({ options: { iters: { type: "string" }, rounds: { type: "string" } } });
const ITERS = Number(values.iters ?? 20_000);
const ROUNDS = Number(values.rounds ?? 7);
const root = path.resolve(import.meta.dirname, "..");

let received = 0;
const receiver = createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    received++;
    res.writeHead(200).end();
  });
});
await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
const endpoint = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;

const logger = pino({ level: "silent" });
const engine = createEngineHost({
  source: path.join(root, "policies"),
  ...engineContract(),
  watch: false,
  logger,
  registry: new Registry(),
});
await engine.start();

const env = (sampler: string, arg?: string): NodeJS.ProcessEnv => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
  OTEL_TRACES_SAMPLER: sampler,
  ...(arg ? { OTEL_TRACES_SAMPLER_ARG: arg } : {}),
});
// The SDK reads the sampler from process.env when the provider is built.
function tracingWith(e: NodeJS.ProcessEnv) {
  const saved = { ...process.env };
  Object.assign(process.env, e);
  try {
    return createTracing({ env: e })!;
  } finally {
    for (const k of Object.keys(e)) if (saved[k] === undefined) delete process.env[k];
    Object.assign(process.env, saved);
  }
}
const one = tracingWith(env("traceidratio", "0.01"));
const all = tracingWith(env("always_on"));
const services: [string, DecisionService][] = [
  ["off", createDecisionService({ engine, logger, registry: new Registry(), instanceId: "bench" })],
  [
    "1% sampled",
    createDecisionService({ engine, logger, registry: new Registry(), instanceId: "bench", tracing: one }),
  ],
  [
    "100% sampled",
    createDecisionService({ engine, logger, registry: new Registry(), instanceId: "bench", tracing: all }),
  ],
];

const req: DecideRequest = {
  tenantId: "acme",
  requestId: "",
  subject: { id: "alice", roles: ["viewer"], attributes: {} },
  action: "read",
  resource: { type: "document", id: "doc-1", tenantId: "", attributes: {} },
  context: {},
  approvalToken: "",
};
const parents = Array.from(
  { length: 1024 },
  () => `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`,
);

const signal = new AbortController().signal;
async function time(s: DecisionService, n: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const ctx: CallContext = { signal, aborted: false, startedAt: performance.now(), traceparent: parents[i & 1023]! };
    await s.decide(req, ctx);
  }
  return Number(process.hrtime.bigint() - t0) / n;
}

for (const [, s] of services) await time(s, 5_000); // warm: JIT, cache
const samples = new Map<string, number[]>(services.map(([n]) => [n, []]));
for (let r = 0; r < ROUNDS; r++) for (const [name, s] of services) samples.get(name)!.push(await time(s, ITERS));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = median(samples.get("off")!);
console.log(`cached Decide, in-process, ${ITERS} calls x ${ROUNDS} rounds (median), node ${process.version}`);
for (const [name] of services) {
  const m = median(samples.get(name)!);
  console.log(`${name.padEnd(14)} ${m.toFixed(0).padStart(7)} ns/call   ${(m / base).toFixed(2)}x of off`);
}
await one.close();
await all.close();
console.log(`OTLP export requests received: ${received}`);
await engine.close();
receiver.close();
