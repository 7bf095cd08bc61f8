/**
 * Runs bundle loads (`load-bundle.ts`) in a worker thread with its own heap limit: the
 * decompression, the JSON parsing and the wasm rewrite and compile of a reload never run on the
 * thread that answers calls, and a bundle that exhausts the worker's heap ends that worker only
 * (issue #12); the next load starts a new one.
 */
import { loadBundle, type LoadRequest } from "./load-bundle.ts";
import type { WorkerLoadReply } from "./load-worker.ts";
import { ServiceWorker } from "./ts-worker.ts";

/** Heap limit of the load worker in MiB: room for a bundle at the byte cap, parsed, twice over. */
export const LOAD_WORKER_HEAP_MB = 512;
/** Deadline of one load in the worker. */
export const LOAD_WORKER_TIMEOUT_MS = 60_000;

export type LoadOutcome =
  WorkerLoadReply | { readonly ok: false; readonly unavailable: true; readonly message: string };

/**
 * The host's load worker. `load` resolves `unavailable` when no worker could run at all (the
 * caller may then `loadHere`); a worker that ran out of heap or time is a failed load.
 */
export class LoadWorker {
  readonly #worker: ServiceWorker<LoadRequest, WorkerLoadReply>;
  readonly #maxHeapMb: number;

  constructor(maxHeapMb = LOAD_WORKER_HEAP_MB) {
    this.#maxHeapMb = maxHeapMb;
    this.#worker = new ServiceWorker({
      entry: new URL("./load-worker.ts", import.meta.url),
      timeoutMs: LOAD_WORKER_TIMEOUT_MS,
      maxHeapMb,
    });
  }

  async load(request: LoadRequest): Promise<LoadOutcome> {
    const source = request.source;
    // Only a buffer the bytes own alone can be moved; anything else is copied.
    const transferList =
      source.kind === "bytes" &&
      source.bytes.byteOffset === 0 &&
      source.bytes.byteLength === source.bytes.buffer.byteLength
        ? [source.bytes.buffer as ArrayBuffer]
        : [];
    const outcome = await this.#worker.run(request, transferList);
    switch (outcome.kind) {
      case "reply":
        return outcome.reply;
      case "unavailable":
        return { ok: false, unavailable: true, message: outcome.message };
      case "timeout":
        return { ok: false, message: `bundle: loading did not finish within ${LOAD_WORKER_TIMEOUT_MS} ms` };
      case "out_of_memory":
        return {
          ok: false,
          message: `bundle: loading exceeded the load worker's heap limit of ${this.#maxHeapMb} MiB`,
        };
      case "crashed":
        return { ok: false, message: `bundle: the load worker failed: ${outcome.message}` };
    }
  }

  close(): Promise<void> {
    return this.#worker.close();
  }
}

/** The same load on this thread (no worker available, or `loadInWorker: false`). */
export async function loadHere(request: LoadRequest): Promise<WorkerLoadReply> {
  return loadBundle(request);
}
