/**
 * Runs `build-worker.ts` in a worker thread: compiling a directory of Rego sources takes tens to
 * hundreds of milliseconds of CPU, which on the main thread would stall every request arriving
 * during a reload. The worker loads the TypeScript sources through tsx, like `bin/arbiter.js`.
 *
 * Bounded: one build at a time (reloads are serialized by the host), a heap limit, and a
 * deadline after which the worker is terminated. When no worker can be started (tsx not
 * resolvable, a platform without workers), the caller builds on the main thread instead.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { BuildReply } from "./build-worker.ts";

export interface WorkerBuildOptions {
  /** Deadline for one build in ms. Default 60000. */
  readonly timeoutMs?: number;
  /** Old-generation heap limit of the worker in MiB. Default 512. */
  readonly maxHeapMb?: number;
}

/** The tsx ESM API's URL (its `register()`), or undefined when it cannot be resolved from here. */
function tsxApi(): string | undefined {
  try {
    // The ESM build of `tsx/esm/api`, resolved through the package's own exports map (the
    // `require` condition would give the CommonJS build, which cannot be imported from a data: URL).
    const require = createRequire(import.meta.url);
    const pkgPath = require.resolve("tsx/package.json");
    const pkg = JSON.parse(readFileSync(pkgPath, "utf8")) as { exports: Record<string, { import?: { default?: string } }> };
    const rel = pkg.exports["./esm/api"]?.import?.default;
    if (rel === undefined) return undefined;
    return pathToFileURL(join(dirname(pkgPath), rel)).href;
  } catch {
    return undefined;
  }
}

export type WorkerBuildResult = BuildReply | { readonly ok: false; readonly unavailable: true; readonly message: string };

/** Builds `dir` in a worker; `unavailable` when the worker could not run at all. */
export function buildInWorker(dir: string, entrypoints: readonly string[], options: WorkerBuildOptions = {}): Promise<WorkerBuildResult> {
  const api = tsxApi();
  if (api === undefined) return Promise.resolve({ ok: false, unavailable: true, message: "tsx loader not found" });
  return new Promise((resolve) => {
    let settled = false;
    const settle = (r: WorkerBuildResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    let worker: Worker;
    try {
      // A small ESM bootstrap (as bin/arbiter.js does): register tsx, then load the TS entry.
      const entry = new URL("./build-worker.ts", import.meta.url).href;
      const bootstrap = `import { register } from ${JSON.stringify(api)};\nregister();\nawait import(${JSON.stringify(entry)});\n`;
      worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(bootstrap)}`), {
        workerData: { dir, entrypoints: [...entrypoints] },
        resourceLimits: { maxOldGenerationSizeMb: options.maxHeapMb ?? 512 },
        stdout: false,
        stderr: false,
      });
    } catch (err) {
      resolve({ ok: false, unavailable: true, message: String(err) });
      return;
    }
    const timeoutMs = options.timeoutMs ?? 60_000;
    const timer = setTimeout(() => {
      void worker.terminate();
      settle({ ok: false, message: `build did not finish within ${timeoutMs} ms` });
    }, timeoutMs);
    timer.unref();
    let replied = false;
    worker.once("message", (reply: BuildReply) => {
      replied = true;
      settle(reply);
    });
    worker.once("error", (err) => {
      // Before any reply this is a worker that could not load (or crashed): let the caller
      // decide; an out-of-memory build is reported as a failed build.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ERR_WORKER_OUT_OF_MEMORY") settle({ ok: false, message: "build ran out of memory" });
      else settle({ ok: false, unavailable: true, message: err instanceof Error ? err.message : String(err) });
    });
    worker.once("exit", (code) => {
      if (!replied) settle({ ok: false, unavailable: true, message: `build worker exited with code ${code}` });
    });
  });
}
