/**
 * Runs `build-worker.ts` in a worker thread: compiling a directory of Rego sources takes tens to
 * hundreds of milliseconds of CPU, which on the main thread would stall every request arriving
 * during a reload.
 *
 * Bounded: one build at a time (reloads are serialized by the host), a heap limit, and a
 * deadline after which the worker is terminated. When no worker can be started (tsx not
 * resolvable, a platform without workers), the caller builds on the main thread instead.
 */
import type { BuildReply } from "./build-worker.ts";
import { runTsWorker } from "./ts-worker.ts";

export interface WorkerBuildOptions {
  /** Deadline for one build in ms. Default 60000. */
  readonly timeoutMs?: number;
  /** Old-generation heap limit of the worker in MiB. Default 512. */
  readonly maxHeapMb?: number;
}

export type WorkerBuildResult =
  BuildReply | { readonly ok: false; readonly unavailable: true; readonly message: string };

/** Builds `dir` in a worker; `unavailable` when the worker could not run at all. */
export async function buildInWorker(
  dir: string,
  entrypoints: readonly string[],
  options: WorkerBuildOptions = {},
): Promise<WorkerBuildResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const outcome = await runTsWorker<BuildReply>({
    entry: new URL("./build-worker.ts", import.meta.url),
    workerData: { dir, entrypoints: [...entrypoints] },
    timeoutMs,
    maxHeapMb: options.maxHeapMb ?? 512,
  });
  switch (outcome.kind) {
    case "reply":
      return outcome.reply;
    case "timeout":
      return { ok: false, message: `build did not finish within ${timeoutMs} ms` };
    case "out_of_memory":
      return { ok: false, message: "build ran out of memory" };
    case "unavailable":
      return { ok: false, unavailable: true, message: outcome.message };
    case "crashed":
      return { ok: false, unavailable: true, message: `build ${outcome.message}` };
  }
}
