/**
 * Pack data validation at load, end to end: a sidecar serving a copy of the pack is handed bad
 * data; the reload is rejected with the data path named and the previous bundle keeps deciding.
 */
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { MemoryOperation } from "../../gen/arbiter/v1/arbiter_pb.ts";
import { packCopy, shippedData, startSidecar, type Sidecar } from "./harness.ts";

let sidecar: Sidecar;
beforeAll(async () => {
  sidecar = await startSidecar(await packCopy());
}, 60_000);
afterAll(async () => {
  await sidecar?.close();
});

async function writeData(edit: (config: any) => void): Promise<void> {
  const data = await shippedData();
  edit(data.arbiter.config);
  // Write then rename, so the sidecar's directory watcher never reads a half-written file.
  const tmp = join(sidecar.dir, "..", `data-${process.pid}.json.tmp`);
  await writeFile(tmp, JSON.stringify(data));
  await rename(tmp, join(sidecar.dir, "data.json"));
  await sidecar.server.engine.reload();
}

const write = (content: string) =>
  sidecar.call("GuardMemory", {
    tenantId: "acme",
    agentId: "a",
    sessionId: `s-${Math.random()}`,
    operation: MemoryOperation.WRITE,
    store: "notes/x",
    ttlSeconds: 60,
    content,
  });

it("an invalid regex in data fails validation with its path and keeps the previous bundle", async () => {
  const engine = sidecar.server.engine;
  const r1 = engine.status().revision;
  expect(r1).toMatch(/^sha256:/);
  const failedBefore = engine.status().reloads.failed;

  await writeData((c) => {
    c.guard_memory.deny_patterns[2] = "\\bAKIA([0-9A-Z]{16}\\b";
    c.guard_memory.deny_patterns.push("project falcon");
  });
  const st = engine.status();
  expect(st.revision).toBe(r1);
  expect(st.reloads.failed).toBeGreaterThan(failedBefore);
  expect(st.lastError).toBe(
    "bundle: invalid data: data.arbiter.config.guard_memory.deny_patterns[2]: invalid regular expression: Unterminated group",
  );
  // the previous bundle still decides, with its own patterns
  const aws = await write("key AKIAIOSFODNN7EXAMPLE");
  expect([aws.allow, aws.reasons, aws.bundleRevision]).toEqual([false, ["content_denied_pattern"], r1]);
  expect((await write("project falcon")).allow).toBe(true);

  await writeData((c) => {
    c.route.threshold_chars = "lots";
    delete c.finalize.coverage_threshold;
  });
  expect(engine.status().revision).toBe(r1);
  expect(engine.status().lastError).toBe(
    "bundle: invalid data: data.arbiter.config.route.threshold_chars: expected a number, got string; " +
      "data.arbiter.config.finalize.coverage_threshold: missing",
  );

  // valid data swaps in, and its new pattern applies
  await writeData((c) => c.guard_memory.deny_patterns.push("project falcon"));
  const r2 = engine.status().revision;
  expect(r2).not.toBe(r1);
  expect(engine.status().lastError).toBeUndefined();
  const falcon = await write("project falcon");
  expect([falcon.allow, falcon.reasons, falcon.bundleRevision]).toEqual([false, ["content_denied_pattern"], r2]);
});
