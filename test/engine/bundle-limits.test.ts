/**
 * Bundle resource limits (issue #12) through the real engine host and its real load worker:
 * hostile archives are refused by the limit they break, the previous bundle stays active, the
 * process (this test process) survives, and the main thread is not held up while the worker works.
 * The full-size hostile bundles (250 million zeros, a 1 GiB bomb) run through a real sidecar in
 * sidecar-hostile.test.ts; here the same shapes are scaled down against an 8 MiB cap, so this
 * file does not spend a core generating gigabytes alongside the other test files.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { engineContract } from "../../src/decision/contract.ts";
import { createEngineHost, type EngineHost, type EngineHostOptions } from "../../src/engine/index.ts";
import { checkJsonBounds, ElementBudget, interpretFiles, MAX_JSON_DEPTH } from "../../src/engine/bundle-reader.ts";
import { tempDir, writeTarGzAtomically } from "./fixtures.ts";
import {
  bundleWithEntries,
  gzipBombBundle,
  heapHungryBundle,
  hugeArrayBundle,
  manyElementsBundle,
} from "./hostile-bundles.ts";

const logger = pino({ level: "silent" });
const hosts: EngineHost[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/**
 * Bound on the event-loop delay during a refused reload. The target is 50 ms (issue #12); on this
 * 2-core machine shared at load 12-15, an idle event loop alone shows 30-55 ms of scheduling
 * delay, so the bound has that headroom. Loading on the main thread blocks for 0.3-3 s.
 */
const EVENT_LOOP_BOUND_MS = 100;
/** Scaled-down hostile shapes: 80 MB of JSON zeros, a 128 MiB bomb, both over an 8 MiB cap. */
const SMALL_ZEROS = 40_000_000;
const SMALL_BOMB = 128 * 1024 * 1024;

/** A host serving revision "good" from `dir/b.tar.gz`. */
async function goodHost(options: Partial<EngineHostOptions> = {}): Promise<{ engine: EngineHost; file: string }> {
  const dir = await tempDir("limits");
  dirs.push(dir);
  const file = join(dir, "b.tar.gz");
  await writeTarGzAtomically(file, { revision: "good" });
  const engine = createEngineHost({
    source: file,
    ...engineContract(),
    watch: false,
    logger,
    registry: new Registry(),
    ...options,
  });
  hosts.push(engine);
  await engine.start();
  expect(engine.status().revision).toBe("good");
  return { engine, file };
}

/** Replaces the archive, reloads, and returns the max event-loop delay (ms) seen meanwhile. */
async function reloadWith(engine: EngineHost, file: string, bytes: Uint8Array): Promise<number> {
  await writeFile(file, bytes);
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  await engine.reload();
  h.disable();
  return h.max / 1e6;
}

describe("bundle limits", () => {
  // Built before the timed reloads, so their garbage is not collected during a measurement.
  beforeAll(async () => {
    await Promise.all([hugeArrayBundle(SMALL_ZEROS), gzipBombBundle(SMALL_BOMB)]);
  }, 60_000);

  it(
    "refuses a huge zeros array in data.json by its decompressed size; the previous bundle stays",
    { timeout: 60_000 },
    async () => {
      const { engine, file } = await goodHost({ bundleLimits: { maxBytes: 8 * 1024 * 1024 } });
      const delay = await reloadWith(engine, file, await hugeArrayBundle(SMALL_ZEROS));
      expect(engine.status()).toMatchObject({
        revision: "good",
        lastError: "bundle: decompresses to more than 8388608 bytes (ARBITER_BUNDLE_MAX_BYTES)",
        reloads: { ok: 1, failed: 1, unchanged: 0 },
      });
      expect(engine.active()!.evaluate("arbiter/decide", { action: "read", subject: { roles: [] } })).toBeInstanceOf(
        Array,
      );
      expect(delay).toBeLessThan(EVENT_LOOP_BOUND_MS);
    },
  );

  it("refuses a gzip bomb at the byte cap", { timeout: 60_000 }, async () => {
    const { engine, file } = await goodHost({ bundleLimits: { maxBytes: 8 * 1024 * 1024 } });
    const delay = await reloadWith(engine, file, await gzipBombBundle(SMALL_BOMB));
    expect(engine.status()).toMatchObject({
      revision: "good",
      lastError: "bundle: decompresses to more than 8388608 bytes (ARBITER_BUNDLE_MAX_BYTES)",
    });
    expect(delay).toBeLessThan(EVENT_LOOP_BOUND_MS);
  });

  it("refuses data over the element limit before parsing it, naming the file", async () => {
    const { engine, file } = await goodHost({ bundleLimits: { maxElements: 100_000 } });
    await reloadWith(engine, file, await manyElementsBundle(100_001));
    expect(engine.status()).toMatchObject({
      revision: "good",
      lastError: "bundle: data.json takes the bundle over 100000 JSON elements (ARBITER_BUNDLE_MAX_ELEMENTS)",
    });
    // Just under the limit loads (the manifest and the data's other values count too).
    await reloadWith(engine, file, await manyElementsBundle(99_900));
    expect(engine.status()).toMatchObject({ revision: "many", lastError: undefined });
  });

  it("refuses nesting deeper than the limit, path traversal and duplicate entries", async () => {
    const { engine, file } = await goodHost();
    const deep = `{"x":${"[".repeat(MAX_JSON_DEPTH)}${"]".repeat(MAX_JSON_DEPTH)}}`;
    await reloadWith(engine, file, await bundleWithEntries("deep", { "deep/data.json": Buffer.from(deep) }));
    expect(engine.status().lastError).toBe(`bundle: deep/data.json nests deeper than ${MAX_JSON_DEPTH} levels`);
    await reloadWith(engine, file, await bundleWithEntries("trav", { "../evil/data.json": Buffer.from("{}") }));
    expect(engine.status().lastError).toBe("bundle: entry ../evil/data.json escapes the bundle root");
    await reloadWith(
      engine,
      file,
      await bundleWithEntries("dup", { "data.json": Buffer.from('{"test":{"marker":"dup"}}') }),
    );
    expect(engine.status().lastError).toBe("bundle: entry data.json appears more than once");
    expect(engine.status().revision).toBe("good");
  });

  it("reads data.yaml as OPA does (go-yaml v2, YAML 1.1) and refuses one OPA refuses, naming the file", async () => {
    const files = (yaml: string) =>
      new Map<string, Uint8Array>([
        ["policy.wasm", new Uint8Array([0, 97, 115, 109])],
        ["cfg/data.yaml", Buffer.from(yaml)],
      ]);
    const limits = { maxBytes: 1 << 20, maxElements: 1000 };
    const { dataJson } = interpretFiles(files("flag: yes\nmode: 0777\nwhen: 2001-12-14\ny: 1\n"), limits);
    // YAML 1.2 read these as "yes", 777, "2001-12-14" and the key "y".
    expect(JSON.parse(Buffer.from(dataJson).toString())).toEqual({
      cfg: { flag: true, mode: 511, when: "2001-12-14", true: 1 },
    });
    expect(() => interpretFiles(files("? [1]\n: x\n"), limits)).toThrow(
      "bundle file cfg/data.yaml is malformed: unsupported map key of type: []interface {}",
    );
    expect(() => interpretFiles(files("n: 9007199254740993\n"), limits)).toThrow(
      "bundle file cfg/data.yaml is malformed: the integer 9007199254740993 is beyond 2^53 and would not load exactly",
    );
    // Through the engine: the refused bundle leaves the previous one active.
    const { engine, file } = await goodHost();
    await reloadWith(engine, file, await bundleWithEntries("yaml", { "cfg/data.yaml": Buffer.from("flag: on\n") }));
    expect(engine.status()).toMatchObject({ revision: "yaml", lastError: undefined });
    await reloadWith(engine, file, await bundleWithEntries("bad", { "cfg/data.yaml": Buffer.from("a: .nan\n") }));
    expect(engine.status()).toMatchObject({
      revision: "yaml",
      lastError: "bundle file cfg/data.yaml is malformed: json: unsupported value: NaN",
    });
  });

  it(
    "a load that exhausts the worker's heap ends that worker only; the next load starts a new one",
    { timeout: 120_000 },
    async () => {
      // Within the limits, 60 MB of JSON text holding 60,000 distinct 1,000-character strings
      // need more than a 64 MiB worker heap (the default heap is 512 MiB for a 64 MiB byte cap).
      const { engine, file } = await goodHost({ bundleLimits: { maxBytes: 128 << 20, workerHeapMb: 64 } });
      const delay = await reloadWith(engine, file, await heapHungryBundle(60_000));
      expect(engine.status()).toMatchObject({
        revision: "good",
        lastError: "bundle: loading exceeded the load worker's heap limit of 64 MiB",
      });
      // Known cost, not hidden: Node joins a worker killed at its heap limit on the main thread
      // while it tears the isolate down (100-130 ms measured here); limits refuse the hostile
      // bundles above before any worker gets there.
      expect(delay).toBeLessThan(500);
      await writeTarGzAtomically(file, { revision: "after" });
      await engine.reload();
      expect(engine.status()).toMatchObject({ revision: "after", lastError: undefined });
    },
  );

  it("counts JSON values and nesting outside strings only", () => {
    const budget = new ElementBudget(5);
    checkJsonBounds(Buffer.from('{"a":"[[[,,,]]]","b":[1,2]}'), "x.json", budget); // 1 + { + , + [ + , = 5
    expect(() => checkJsonBounds(Buffer.from("0"), "y.json", budget)).toThrow(
      "bundle: y.json takes the bundle over 5 JSON elements (ARBITER_BUNDLE_MAX_ELEMENTS)",
    );
    expect(() => checkJsonBounds(Buffer.from('"\\"[[["'), "z.json", new ElementBudget(10))).not.toThrow();
  });
});
