/**
 * Starting a worker thread on one of the engine's TypeScript entry files. Compiled (this module
 * runs from dist/, `npm run build`), the entry's `.js` twin beside it is started as is; from the
 * sources (tests, benches), the worker loads them through tsx from a small ESM bootstrap. Bounded: a heap limit
 * (so a runaway load kills the worker, not the process) and a deadline after which the worker
 * is terminated. Shared by the Rego build worker and the bundle load worker.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker, type Transferable } from "node:worker_threads";

/** True when this module is the compiled JavaScript in dist/ (worker entries are `.js` there). */
const COMPILED = import.meta.url.endsWith(".js");

/**
 * The tsx ESM API's URL (its `register()`); "" when compiled (no loader needed); undefined when
 * it cannot be resolved from here (tsx is a dev dependency).
 */
function tsxApi(): string | undefined {
  if (COMPILED) return "";
  try {
    // The ESM build of `tsx/esm/api`, resolved through the package's own exports map (the
    // `require` condition would give the CommonJS build, which cannot be imported from a data: URL).
    const require = createRequire(import.meta.url);
    const pkgPath = require.resolve("tsx/package.json");
    const pkg = JSON.parse(readFileSync(pkgPath, "utf8")) as {
      exports: Record<string, { import?: { default?: string } }>;
    };
    const rel = pkg.exports["./esm/api"]?.import?.default;
    if (rel === undefined) return undefined;
    return pathToFileURL(join(dirname(pkgPath), rel)).href;
  } catch {
    return undefined;
  }
}

export interface TsWorkerOptions {
  /** The entry file's URL (`new URL("./x.ts", import.meta.url)`). */
  readonly entry: URL;
  readonly workerData: unknown;
  readonly transferList?: readonly Transferable[];
  /** Wall-clock deadline in ms; the worker is terminated past it. */
  readonly timeoutMs: number;
  /** Old-generation heap limit of the worker in MiB. */
  readonly maxHeapMb: number;
}

/** How a worker run ended: its one reply, or why there was none. */
export type TsWorkerOutcome<R> =
  | { readonly kind: "reply"; readonly reply: R }
  | { readonly kind: "unavailable"; readonly message: string }
  | { readonly kind: "timeout" }
  | { readonly kind: "out_of_memory" }
  | { readonly kind: "crashed"; readonly message: string };

/** Starts `entry` in a worker through tsx (benchmarks use it too); throws when tsx is missing. */
export function spawnTsWorker(entry: URL, workerData: unknown, maxHeapMb: number): Worker {
  const api = tsxApi();
  if (api === undefined) throw new Error("tsx loader not found");
  return spawn(api, entry, workerData, maxHeapMb);
}

function spawn(
  api: string,
  entry: URL,
  workerData: unknown,
  maxHeapMb: number,
  transferList?: readonly Transferable[],
): Worker {
  // Callers name the `.ts` entry (`new URL("./x.ts", import.meta.url)`: tsc rewrites import
  // specifiers, not URL strings); compiled, its `.js` twin sits beside it.
  const url =
    api === ""
      ? new URL(entry.href.replace(/\.ts$/, ".js"))
      : new URL(
          `data:text/javascript,${encodeURIComponent(`import { register } from ${JSON.stringify(api)};\nregister();\nawait import(${JSON.stringify(entry.href)});\n`)}`,
        );
  return new Worker(url, {
    workerData,
    transferList: transferList ? [...transferList] : undefined,
    resourceLimits: { maxOldGenerationSizeMb: maxHeapMb },
    stdout: false,
    stderr: false,
  });
}

/** Runs `entry` in a fresh worker until its first message (or its end); never rejects. */
export function runTsWorker<R>(options: TsWorkerOptions): Promise<TsWorkerOutcome<R>> {
  const api = tsxApi();
  if (api === undefined) return Promise.resolve({ kind: "unavailable", message: "tsx loader not found" });
  return new Promise((resolve) => {
    let settled = false;
    let worker: Worker | undefined;
    const settle = (r: TsWorkerOutcome<R>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Done with it either way; a worker that replied exits by itself, this only hurries it.
      void worker?.terminate();
      resolve(r);
    };
    const timer = setTimeout(() => settle({ kind: "timeout" }), options.timeoutMs);
    timer.unref();
    try {
      worker = spawn(api, options.entry, options.workerData, options.maxHeapMb, options.transferList);
    } catch (err) {
      settle({ kind: "unavailable", message: String(err) });
      return;
    }
    worker.once("message", (reply: R) => settle({ kind: "reply", reply }));
    worker.once("error", (err) => {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ERR_WORKER_OUT_OF_MEMORY") settle({ kind: "out_of_memory" });
      // Entry files reply with their own failures; an uncaught error means the worker could not
      // load (tsx, a platform without workers): the caller may run the work in-process.
      else settle({ kind: "unavailable", message: err instanceof Error ? err.message : String(err) });
    });
    worker.once("exit", (code) => settle({ kind: "crashed", message: `worker exited with code ${code}` }));
  });
}

export interface ServiceWorkerOptions {
  readonly entry: URL;
  /** Deadline of one request in ms; past it the worker is terminated (and respawned on use). */
  readonly timeoutMs: number;
  readonly maxHeapMb: number;
}

/**
 * A long-lived worker answering one request at a time (its entry listens on `parentPort` and
 * posts one reply per message). Starting a worker through tsx costs about a second, too much per
 * reload; the worker is started on first use, kept, unref'd while idle, and replaced after it
 * dies (out of heap, terminated at its deadline, crashed).
 */
export class ServiceWorker<Q, R> {
  readonly #options: ServiceWorkerOptions;
  #worker: Worker | undefined;
  #settle: ((outcome: TsWorkerOutcome<R>) => void) | undefined;
  /** True once the current worker replied at least once (its errors are then not "unavailable"). */
  #proven = false;

  constructor(options: ServiceWorkerOptions) {
    this.#options = options;
  }

  /** Sends one request; callers serialize (a second concurrent call is refused). Never rejects. */
  run(request: Q, transferList?: readonly Transferable[]): Promise<TsWorkerOutcome<R>> {
    if (this.#settle !== undefined)
      return Promise.resolve({ kind: "crashed", message: "a request is already in flight" });
    const worker = this.#ensure();
    if (typeof worker === "string") return Promise.resolve({ kind: "unavailable", message: worker });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#kill();
        finish({ kind: "timeout" });
      }, this.#options.timeoutMs);
      timer.unref();
      const finish = (outcome: TsWorkerOutcome<R>): void => {
        clearTimeout(timer);
        this.#settle = undefined;
        this.#worker?.unref();
        resolve(outcome);
      };
      this.#settle = finish;
      worker.ref();
      worker.postMessage(request, transferList ? [...transferList] : undefined);
    });
  }

  /** Terminates the worker (if any); an in-flight request resolves `crashed`. */
  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = undefined;
    if (w) await w.terminate();
  }

  #kill(): void {
    const w = this.#worker;
    this.#worker = undefined;
    void w?.terminate();
  }

  #ensure(): Worker | string {
    if (this.#worker) return this.#worker;
    const api = tsxApi();
    if (api === undefined) return "tsx loader not found";
    let worker: Worker;
    try {
      worker = spawn(api, this.#options.entry, undefined, this.#options.maxHeapMb);
    } catch (err) {
      return String(err);
    }
    this.#worker = worker;
    this.#proven = false;
    worker.unref();
    worker.on("message", (reply: R) => {
      this.#proven = true;
      this.#settle?.({ kind: "reply", reply });
    });
    worker.on("error", (err) => {
      if (this.#worker === worker) this.#worker = undefined;
      const code = (err as NodeJS.ErrnoException).code;
      const message = err instanceof Error ? err.message : String(err);
      if (code === "ERR_WORKER_OUT_OF_MEMORY") this.#settle?.({ kind: "out_of_memory" });
      else if (!this.#proven) this.#settle?.({ kind: "unavailable", message });
      else this.#settle?.({ kind: "crashed", message });
    });
    worker.on("exit", (code) => {
      if (this.#worker === worker) this.#worker = undefined;
      this.#settle?.({ kind: "crashed", message: `worker exited with code ${code}` });
    });
    return worker;
  }
}
