/**
 * Engine host over real components: wasm compiled by the project's compiler and loaded through
 * @open-policy-agent/opa-wasm, real files and directories, real fs.watch, a real HTTP server on
 * port 0.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { copyFile, mkdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { pino } from "pino";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { buildBundle, writeBundle } from "../../src/compiler/index.ts";
import { engineContract } from "../../src/decision/contract.ts";
import { createEngineHost } from "../../src/engine/index.ts";
import type { EngineHost, EngineHostOptions, EngineStatus, LoadResult } from "../../src/engine/index.ts";
import {
  ENTRYPOINTS,
  POLICY_SOURCES,
  bundleTarGz,
  compileSources,
  dataFor,
  tempDir,
  writeBundleDir,
  writeConfigMapGeneration,
  writeTarGzAtomically,
} from "./fixtures.ts";

const logger = pino({ level: "silent" });
const hosts: EngineHost[] = [];
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const h of hosts.splice(0)) await h.close();
  for (const c of cleanups.splice(0)) await c();
});

function host(options: Partial<EngineHostOptions> & { source: string }): {
  engine: EngineHost;
  registry: Registry;
  events: [EngineStatus, LoadResult][];
} {
  const registry = new Registry();
  const engine = createEngineHost({
    ...engineContract(),
    debounceMs: 50,
    logger,
    registry,
    ...options,
  });
  const events: [EngineStatus, LoadResult][] = [];
  engine.onChange((s, r) => events.push([s, r]));
  hosts.push(engine);
  return { engine, registry, events };
}

async function dir(prefix: string): Promise<string> {
  const d = await tempDir(prefix);
  cleanups.push(() => rm(d, { recursive: true, force: true }));
  return d;
}

/** Polls `check` every 20 ms until it holds or `ms` pass. */
async function waitFor(check: () => boolean, ms = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const decideInput = {
  tenant_id: "t",
  subject: { id: "u", roles: ["admin"], attributes: {} },
  action: "write",
  resource: { type: "doc", id: "d", tenant_id: "t", attributes: {} },
  context: {},
  approval: { present: false, valid: false, reason: "" },
};

function markerOf(engine: EngineHost): string {
  const rs = engine.active()!.evaluate("arbiter/decide", decideInput) as [{ result: { reasons: string[] } }];
  return rs[0].result.reasons.find((r) => r.startsWith("rev_"))!;
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = await registry.getSingleMetric(name)!.get();
  const v = m.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

describe("loading", () => {
  it("loads a bundle directory, evaluates every entrypoint and reports status and metrics", async () => {
    const d = await dir("bundle");
    await writeBundleDir(d, { revision: "r1" });
    const { engine, registry, events } = host({ source: d, watch: false });
    await engine.start();
    const s = engine.status();
    expect(s).toMatchObject({
      ready: true,
      revision: "r1",
      source: d,
      lastError: undefined,
      reloads: { ok: 1, failed: 0, unchanged: 0 },
    });
    expect(s.loadedAt).toBeGreaterThan(0);
    expect(engine.active()!.entrypoints).toEqual([...ENTRYPOINTS].sort());
    expect(markerOf(engine)).toBe("rev_r1");
    expect(events.map(([, r]) => r)).toEqual(["ok"]);
    expect(await metricValue(registry, "arbiter_bundle_reloads_total", { result: "ok" })).toBe(1);
    expect(await metricValue(registry, "arbiter_bundle_info", { revision: "r1" })).toBe(1);
  });

  it("loads a .tar.gz bundle written by the tar package", async () => {
    const d = await dir("targz");
    const file = join(d, "bundle.tar.gz");
    await writeFile(file, await bundleTarGz({ revision: "t1" }));
    const { engine } = host({ source: file, watch: false });
    await engine.start();
    expect(engine.status().revision).toBe("t1");
    expect(markerOf(engine)).toBe("rev_t1");
  });

  it("loads a bundle written by the compiler's buildBundle/writeBundle (what `arbiter build` writes)", async () => {
    const src = await dir("buildsrc");
    for (const [name, text] of Object.entries(POLICY_SOURCES)) await writeFile(join(src, name), text);
    await writeFile(join(src, "data.json"), JSON.stringify(dataFor("built")));
    const out = join(await dir("buildout"), "bundle.tar.gz");
    const bundle = buildBundle([src], { entrypoints: ENTRYPOINTS, revision: "built-1" });
    await writeBundle(bundle, out);
    const { engine } = host({ source: out, watch: false });
    await engine.start();
    expect(engine.status()).toMatchObject({ ready: true, revision: "built-1", lastError: undefined });
    expect(markerOf(engine)).toBe("rev_built");
  });

  it("compiles a directory of .rego sources in-process; revision is the content digest", async () => {
    const d = await dir("rego");
    for (const [name, text] of Object.entries(POLICY_SOURCES)) await writeFile(join(d, name), text);
    await writeFile(join(d, "data.json"), JSON.stringify(dataFor("src")));
    const lines: string[] = [];
    const capture = pino({ level: "info" }, { write: (line: string) => lines.push(line) });
    const { engine } = host({ source: d, watch: false, logger: capture });
    await engine.start();
    expect(engine.status().revision).toMatch(/^sha256:[0-9a-f]{12}$/);
    expect(markerOf(engine)).toBe("rev_src");
    // Built in a worker thread: no fallback to the main thread was logged.
    expect(lines.some((l) => l.includes("build worker unavailable"))).toBe(false);
    expect(lines.some((l) => l.includes("bundle activated"))).toBe(true);
    await engine.reload();
    expect(engine.status().reloads).toEqual({ ok: 1, failed: 0, unchanged: 1 });

    // The main-thread build gives the same bundle.
    const { engine: inThread } = host({ source: d, watch: false, buildInWorker: false });
    await inThread.start();
    expect(inThread.status().revision).toBe(engine.status().revision);
    expect(markerOf(inThread)).toBe("rev_src");
  });

  it("fails closed (not ready) when the source does not exist, with the error in status", async () => {
    const d = await dir("missing");
    const { engine, events } = host({ source: join(d, "nope.tar.gz"), watch: false });
    await engine.start();
    expect(engine.active()).toBeUndefined();
    expect(engine.status()).toMatchObject({
      ready: false,
      revision: "",
      lastError: `bundle: cannot read ${join(d, "nope.tar.gz")}: ENOENT`,
    });
    expect(events.map(([, r]) => r)).toEqual(["failed"]);
  });

  it("rejects a bundle whose manifest lacks a required entrypoint", async () => {
    const d = await dir("noep");
    await writeBundleDir(d, { revision: "r1", entrypoints: ["arbiter/decide", "arbiter/route", "arbiter/finalize"] });
    const { engine } = host({ source: d, watch: false });
    await engine.start();
    expect(engine.status().lastError).toBe(
      "bundle: manifest does not declare required entrypoint arbiter/guard_memory (declares arbiter/decide, arbiter/finalize, arbiter/route)",
    );
  });

  it("rejects a module that does not export a required entrypoint", async () => {
    const d = await dir("noexport");
    const wasm = compileSources({ "decide.rego": POLICY_SOURCES["decide.rego"]! }, ["arbiter/decide"]);
    await writeBundleDir(d, { revision: "r1", wasm, entrypoints: [] });
    await writeFile(join(d, ".manifest"), JSON.stringify({ revision: "r1" }));
    const { engine } = host({ source: d, watch: false });
    await engine.start();
    expect(engine.status().lastError).toBe(
      "bundle: policy.wasm does not export required entrypoint arbiter/route (exports arbiter/decide)",
    );
  });

  it("rejects malformed data types with the data path, and the policy pack's validateData errors", async () => {
    const d = await dir("baddata");
    await writeBundleDir(d, {
      revision: "r1",
      data: dataFor("r1", { arbiter: { config: { route: { local_provider: 7 } } } }),
    });
    const { engine } = host({ source: d, watch: false });
    await engine.start();
    expect(engine.status().lastError).toBe(
      "bundle: invalid data: data.arbiter.config.route.local_provider: expected a non-empty string, got number",
    );

    const d2 = await dir("hook");
    await writeBundleDir(d2, {
      revision: "r1",
      data: dataFor("r1", { arbiter: { config: { guard_memory: { deny_patterns: ["("] } } } }),
    });
    const validateData = (data: unknown): string[] => {
      const pats = (data as { arbiter: { config: { guard_memory: { deny_patterns: string[] } } } }).arbiter.config
        .guard_memory.deny_patterns;
      return pats.flatMap((p, i) => {
        try {
          new RegExp(p);
          return [];
        } catch {
          return [
            `data.arbiter.config.guard_memory.deny_patterns[${i}]: invalid regular expression ${JSON.stringify(p)}`,
          ];
        }
      });
    };
    const { engine: e2 } = host({ source: d2, watch: false, validateData });
    await e2.start();
    expect(e2.status().lastError).toBe(
      'bundle: invalid data: data.arbiter.config.guard_memory.deny_patterns[0]: invalid regular expression "("',
    );
  });

  it("rejects a bundle whose smoke evaluation throws", async () => {
    const d = await dir("smoke");
    const { engine } = host({
      source: d,
      watch: false,
      smokeInputs: { "arbiter/decide": { ...decideInput, context: { boom: true } } },
    });
    await writeBundleDir(d, { revision: "r1" });
    await engine.start();
    expect(engine.status().lastError).toBe(
      "bundle: smoke evaluation of arbiter/decide failed: complete rules must not produce multiple outputs",
    );
  });

  it("wraps evaluation failures into Errors naming entrypoint and revision", async () => {
    const d = await dir("evalerr");
    await writeBundleDir(d, { revision: "r1" });
    const { engine } = host({ source: d, watch: false });
    await engine.start();
    const active = engine.active()!;
    expect(() => active.evaluate("arbiter/decide", { ...decideInput, context: { boom: true } })).toThrowError(
      new Error("evaluating arbiter/decide (revision r1): complete rules must not produce multiple outputs"),
    );
    expect(() => active.evaluate("arbiter/nope", {})).toThrowError(
      new Error("entrypoint arbiter/nope is not in bundle revision r1"),
    );
  });

  it("bounds wasm memory: an input beyond the maximum fails evaluation with an Error, not a crash", async () => {
    const d = await dir("mem");
    await writeBundleDir(d, { revision: "r1" });
    const { engine } = host({ source: d, watch: false, memory: { initial: 5, maximum: 16 } });
    await engine.start();
    const big = { ...decideInput, context: { blob: "x".repeat(2 * 1024 * 1024) } };
    let thrown: unknown;
    try {
      engine.active()!.evaluate("arbiter/decide", big);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).message).toMatch(/^evaluating arbiter\/decide \(revision r1\): /);
    // The instance still answers afterwards.
    expect(markerOf(engine)).toBe("rev_r1");
  });

  it("validates options with exact messages", () => {
    expect(() =>
      createEngineHost({ source: "", requiredEntrypoints: [], logger, registry: new Registry() }),
    ).toThrowError("ARBITER_BUNDLE: expected a bundle .tar.gz, a directory or an http(s):// URL, got an empty value");
    expect(() =>
      createEngineHost({
        source: "x",
        requiredEntrypoints: [],
        logger,
        registry: new Registry(),
        memory: { initial: 10, maximum: 5 },
      }),
    ).toThrowError(
      'engine: memory must be {initial, maximum} wasm pages with 1 <= initial <= maximum <= 65536, got {"initial":10,"maximum":5}',
    );
  });
});

describe("hot reload", () => {
  it("reloads a .tar.gz replaced by atomic rename; a truncated in-place write keeps the old revision", async () => {
    const d = await dir("watchfile");
    const file = join(d, "bundle.tar.gz");
    await writeTarGzAtomically(file, { revision: "a" });
    const { engine, events } = host({ source: file });
    await engine.start();
    expect(engine.status().revision).toBe("a");

    await writeTarGzAtomically(file, { revision: "b" });
    await waitFor(() => engine.status().revision === "b", 5000, "revision b");
    expect(markerOf(engine)).toBe("rev_b");

    // In-place truncation: the file now holds half an archive.
    const before = events.length;
    const full = await readFile(file);
    await truncate(file, Math.floor(full.length / 2));
    await waitFor(() => events.slice(before).some(([, r]) => r === "failed"), 5000, "failed reload");
    const s = engine.status();
    expect(s.revision).toBe("b");
    expect(s.ready).toBe(true);
    expect(s.lastError).toBe("bundle gzip data is corrupt or truncated: unexpected end of file");
    expect(s.lastErrorAt).toBeGreaterThan(0);
    expect(markerOf(engine)).toBe("rev_b");

    // A corrupt (non-gzip) replacement also keeps b.
    await writeFile(`${file}.tmp`, "this is not a bundle");
    const { rename } = await import("node:fs/promises");
    await rename(`${file}.tmp`, file);
    const n = engine.status().reloads.failed;
    await waitFor(() => engine.status().reloads.failed > n, 5000, "second failure");
    expect(engine.status().revision).toBe("b");
    expect(engine.status().lastError).toBe("bundle is not a gzip file");

    // A good bundle clears the error.
    await writeTarGzAtomically(file, { revision: "c" });
    await waitFor(() => engine.status().revision === "c", 5000, "revision c");
    expect(engine.status().lastError).toBeUndefined();
  });

  it("a burst of 20 atomic replacements coalesces into few reloads ending on the last revision", async () => {
    const d = await dir("burst");
    const file = join(d, "bundle.tar.gz");
    const archives = await Promise.all(Array.from({ length: 21 }, (_, i) => bundleTarGz({ revision: `burst${i}` })));
    await writeFile(file, archives[0]!);
    const { engine } = host({ source: file });
    await engine.start();
    const { rename } = await import("node:fs/promises");
    for (let i = 1; i <= 20; i++) {
      await writeFile(`${file}.tmp`, archives[i]!);
      await rename(`${file}.tmp`, file);
      expect(markerOf(engine)).toMatch(/^rev_burst\d+$/); // always answers, from a whole bundle
    }
    await waitFor(() => engine.status().revision === "burst20", 5000, "revision burst20");
    const { reloads } = engine.status();
    expect(reloads.failed).toBe(0);
    expect(reloads.ok).toBeLessThan(21);
    expect(markerOf(engine)).toBe("rev_burst20");
  });

  it("reloads a directory of .rego sources when a source changes", async () => {
    const d = await dir("watchrego");
    for (const [name, text] of Object.entries(POLICY_SOURCES)) await writeFile(join(d, name), text);
    await writeFile(join(d, "data.json"), JSON.stringify(dataFor("one")));
    const { engine } = host({ source: d });
    await engine.start();
    const first = engine.status().revision;
    expect(markerOf(engine)).toBe("rev_one");

    await writeFile(join(d, "data.json"), JSON.stringify(dataFor("two")));
    await waitFor(() => engine.status().revision !== first, 5000, "new revision");
    expect(markerOf(engine)).toBe("rev_two");

    // A syntax error in a source keeps the previous policy.
    const second = engine.status().revision;
    await writeFile(join(d, "decide.rego"), "package arbiter.decide\nallow if {\n");
    await waitFor(() => engine.status().lastError !== undefined, 5000, "compile failure");
    expect(engine.status().lastError).toBe(
      `bundle: compiling Rego failed: ${join(d, "decide.rego")}:3:1: unexpected end of file: expected "}"`,
    );
    expect(engine.status().revision).toBe(second);
    expect(markerOf(engine)).toBe("rev_two");
  });

  it("notices a source directory that appears later, then watches inside it", async () => {
    const parent = await dir("later");
    const source = join(parent, "bundle");
    const { engine } = host({ source });
    await engine.start();
    expect(engine.status().ready).toBe(false);

    const staging = join(parent, "staging");
    await writeBundleDir(staging, { revision: "l1" });
    const { rename } = await import("node:fs/promises");
    await rename(staging, source);
    await waitFor(() => engine.status().revision === "l1", 5000, "revision l1");

    await writeFile(join(source, "data.json"), JSON.stringify(dataFor("l2")));
    await writeFile(join(source, ".manifest"), JSON.stringify({ revision: "l2" }));
    await waitFor(() => engine.status().revision === "l2", 5000, "revision l2");
    expect(markerOf(engine)).toBe("rev_l2");
  });

  it("follows a Kubernetes ConfigMap ..data symlink swap", async () => {
    const d = await dir("configmap");
    await writeConfigMapGeneration(d, "2026_11_22_03_00_00.000000001", { revision: "cm1" });
    const { engine } = host({ source: d });
    await engine.start();
    expect(engine.status().revision).toBe("cm1");

    await writeConfigMapGeneration(d, "2026_11_22_03_05_00.000000002", { revision: "cm2" });
    await waitFor(() => engine.status().revision === "cm2", 5000, "revision cm2");
    expect(markerOf(engine)).toBe("rev_cm2");
    expect(engine.status().lastError).toBeUndefined();

    // kubelet then deletes the old generation; the watch must survive it and see the next swap.
    await rm(join(d, "..2026_11_22_03_00_00.000000001"), { recursive: true, force: true });
    await new Promise((r) => setTimeout(r, 100));
    await writeConfigMapGeneration(d, "2026_11_22_03_10_00.000000003", { revision: "cm3" });
    await waitFor(() => engine.status().revision === "cm3", 5000, "revision cm3");
    expect(markerOf(engine)).toBe("rev_cm3");
    expect(engine.status().reloads.failed).toBe(0);
  });
});

describe("HTTP bundle polling", () => {
  it("sends If-None-Match, keeps the bundle on 304 and activates a new revision on 200", async () => {
    const bundles = { v1: await bundleTarGz({ revision: "h1" }), v2: await bundleTarGz({ revision: "h2" }) };
    let current: keyof typeof bundles = "v1";
    const seen: IncomingHttpHeaders[] = [];
    const server: Server = createServer((req, res) => {
      seen.push(req.headers);
      const etag = `"${current}"`;
      if (req.headers["if-none-match"] === etag) {
        res.writeHead(304, { etag });
        res.end();
        return;
      }
      res.writeHead(200, { etag, "content-type": "application/gzip" });
      res.end(bundles[current]);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise((r) => server.close(() => r())));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/bundles/arbiter.tar.gz`;

    const { engine, events } = host({ source: url, pollIntervalMs: 60_000 });
    await engine.start();
    expect(engine.status().revision).toBe("h1");
    expect(seen[0]!["if-none-match"]).toBeUndefined();

    await engine.reload();
    expect(seen[1]!["if-none-match"]).toBe('"v1"');
    expect(events.at(-1)![1]).toBe("unchanged");
    expect(engine.status().revision).toBe("h1");

    current = "v2";
    await engine.reload();
    expect(seen[2]!["if-none-match"]).toBe('"v1"');
    expect(engine.status().revision).toBe("h2");

    await engine.reload();
    expect(seen[3]!["if-none-match"]).toBe('"v2"');
    expect(engine.status().reloads).toEqual({ ok: 2, failed: 0, unchanged: 2 });
  });

  it("polls on its interval, and bounds body size and time", async () => {
    const body = await bundleTarGz({ revision: "p1" });
    let mode: "ok" | "chunked" | "slow" | "500" = "ok";
    let hits = 0;
    let lastAuth: string | undefined;
    const server = createServer((req, res) => {
      hits++;
      lastAuth = req.headers.authorization;
      if (mode === "500") {
        res.writeHead(500);
        res.end("boom");
        return;
      }
      if (mode === "slow") return; // never answers; the client's timeout must fire
      // "ok" declares its length; "chunked" does not, so only the streaming bound can stop it.
      res.writeHead(200, mode === "ok" ? { etag: '"p1"', "content-length": String(body.length) } : { etag: '"p1"' });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanups.push(async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/b.tar.gz`;

    const { engine } = host({ source: url, pollIntervalMs: 50 });
    await engine.start();
    expect(engine.status().revision).toBe("p1");
    await waitFor(() => hits >= 3, 5000, "polls");
    // Stop the 50 ms poller: its next unauthenticated GET could otherwise land after the authed one below.
    await engine.close();

    const small = host({ source: url, watch: false, pollIntervalMs: 60_000, http: { maxBytes: 100 } }).engine;
    await small.start();
    expect(small.status().lastError).toBe(`bundle: GET ${url} body of ${body.length} bytes exceeds the limit of 100`);
    mode = "chunked";
    await small.reload();
    expect(small.status().lastError).toBe(`bundle: GET ${url} body exceeds the limit of 100 bytes`);

    mode = "500";
    const failing = host({ source: url, pollIntervalMs: 60_000 }).engine;
    await failing.start();
    expect(failing.status().lastError).toBe(`bundle: GET ${url} answered HTTP 500`);

    // Credentials in the URL go out as Basic auth and never show in status or errors.
    const withCreds = url.replace("http://", "http://bundle-reader:s3cret@");
    const masked = url.replace("http://", "http://***:***@");
    const authed = host({ source: withCreds, pollIntervalMs: 60_000 }).engine;
    await authed.start();
    expect(lastAuth).toBe(`Basic ${Buffer.from("bundle-reader:s3cret").toString("base64")}`);
    expect(authed.status().source).toBe(masked);
    expect(authed.status().lastError).toBe(`bundle: GET ${masked} answered HTTP 500`);

    mode = "slow";
    const slow = host({ source: url, pollIntervalMs: 60_000, http: { timeoutMs: 200 } }).engine;
    await slow.start();
    expect(slow.status().lastError).toBe(`bundle: GET ${url} timed out after 200 ms`);
  });
});

describe("bundle files", () => {
  it("mounts nested data.json files at their directory path", async () => {
    const d = await dir("nested");
    await writeBundleDir(d, { revision: "n1", data: { test: { quota: 3 } } });
    await mkdir(join(d, "test"), { recursive: true });
    await writeFile(join(d, "test", "data.json"), JSON.stringify({ marker: "nested" }));
    const { engine } = host({ source: d, watch: false });
    await engine.start();
    expect(engine.status().lastError).toBeUndefined();
    expect(markerOf(engine)).toBe("rev_nested");
    expect(engine.active()!.data).toEqual({ test: { quota: 3, marker: "nested" } });
    expect(Object.isFrozen((engine.active()!.data as { test: object }).test)).toBe(true);
  });

  it("reports a missing policy.wasm and invalid JSON exactly", async () => {
    const d = await dir("nowasm");
    await writeBundleDir(d, { revision: "x" });
    await rm(join(d, "policy.wasm"));
    const { engine } = host({ source: d, watch: false });
    await engine.start();
    expect(engine.status().lastError).toBe("bundle has no policy.wasm");

    const d2 = await dir("badjson");
    await writeBundleDir(d2, { revision: "x" });
    await writeFile(join(d2, "data.json"), "{nope");
    const e2 = host({ source: d2, watch: false }).engine;
    await e2.start();
    expect(e2.status().lastError).toMatch(/^bundle file data\.json is malformed: /);
  });

  it("does not swap when the content is unchanged", async () => {
    const d = await dir("same");
    await writeBundleDir(d, { revision: "s1" });
    const { engine } = host({ source: d, watch: false });
    await engine.start();
    const a = engine.active();
    await copyFile(join(d, "data.json"), join(d, "data.json.bak"));
    await rm(join(d, "data.json.bak"));
    await engine.reload();
    expect(engine.active()).toBe(a);
    expect(engine.status().reloads).toEqual({ ok: 1, failed: 0, unchanged: 1 });
  });
});
