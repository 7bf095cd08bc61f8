/**
 * Shared set-up for decision-core tests: a real engine host over a bundle directory of the
 * fixture policy (compiled by the project's compiler), and a recording audit sink.
 *
 * The sink implements the `AuditSink` contract (src/audit/types.ts) in memory so a test can see
 * every event and switch `accepting()` / rejection; the real pipeline is tested by its owner.
 */
import { rm } from "node:fs/promises";
import { pino } from "pino";
import { Registry } from "prom-client";
import type { AuditEvent, AuditSink } from "../../src/audit/types.ts";
import { createDecisionService, type DecisionServiceOptions } from "../../src/decision/decision-service.ts";
import type { CallContext, DecisionService } from "../../src/decision/types.ts";
import { engineContract } from "../../src/decision/contract.ts";
import { createEngineHost, type EngineHost } from "../../src/engine/index.ts";
import { tempDir, writeBundleDir, type BundleSpec } from "../engine/fixtures.ts";

export const logger = pino({ level: "silent" });

export class RecordingSink implements AuditSink {
  readonly events: AuditEvent[] = [];
  open = true;
  rejectNext = 0;
  /** Resolve `append` after this many ms (0: next macrotask), so calls interleave like real I/O. */
  delayMs = 0;

  accepting(): boolean {
    return this.open;
  }

  async append(event: AuditEvent, _signal?: AbortSignal): Promise<void> {
    await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.rejectNext > 0) {
      this.rejectNext--;
      throw new Error("audit overflow");
    }
    this.events.push(event);
  }

  async close(): Promise<void> {}
}

/** A sink that takes records at once, as the async audit pipeline does (`appendNow`). */
export class ImmediateSink extends RecordingSink {
  readonly appendNow = (event: AuditEvent): void => {
    if (this.rejectNext > 0) {
      this.rejectNext--;
      throw new Error("audit overflow");
    }
    this.events.push(event);
  };
}

export interface Harness {
  readonly dir: string;
  readonly engine: EngineHost;
  readonly service: DecisionService;
  readonly sink: RecordingSink;
  readonly registry: Registry;
  close(): Promise<void>;
}

export async function harness(
  spec: BundleSpec | undefined,
  options: Partial<DecisionServiceOptions> = {},
): Promise<Harness> {
  const dir = await tempDir("decision");
  if (spec) await writeBundleDir(dir, spec);
  const registry = new Registry();
  const engine = createEngineHost({
    source: spec ? dir : `${dir}/missing.tar.gz`,
    ...engineContract(),
    watch: false,
    logger,
    registry,
  });
  const sink = options.audit instanceof RecordingSink ? options.audit : new RecordingSink();
  const service = createDecisionService({
    engine,
    logger,
    registry,
    instanceId: "test-1",
    clock: () => Date.UTC(2026, 10, 22, 3, 0, 0, 123),
    // These tests exercise locally created approvals; the default (off) has its own test.
    approvalsLocalCreate: true,
    ...options,
    audit: sink,
  });
  await engine.start();
  return {
    dir,
    engine,
    service,
    sink,
    registry,
    async close() {
      await engine.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function ctx(signal: AbortSignal = new AbortController().signal): CallContext {
  return { signal, startedAt: performance.now() };
}

export async function counter(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const m = await metric.get();
  return m.values
    .filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
    .reduce((a, v) => a + v.value, 0);
}
