/**
 * Worker-thread entry: builds a directory of Rego sources with the compiler's `buildBundle` (as
 * `arbiter build` does), off the main thread so requests keep flowing during a reload.
 * Input `workerData`: `{ dir, entrypoints }`; posts `BuildReply` once and exits.
 */
import { parentPort, workerData } from "node:worker_threads";
import { buildBundle } from "../compiler/index.ts";

export type BuildReply =
  | { readonly ok: true; readonly wasm: Uint8Array; readonly data: Uint8Array; readonly manifest: unknown }
  | { readonly ok: false; readonly message: string };

const { dir, entrypoints } = workerData as { dir: string; entrypoints: string[] };
let reply: BuildReply;
try {
  const bundle = buildBundle([dir], { entrypoints });
  reply = {
    ok: true,
    wasm: bundle.files.get("/policy.wasm")!,
    data: bundle.files.get("/data.json")!,
    manifest: bundle.manifest,
  };
} catch (err) {
  reply = { ok: false, message: err instanceof Error ? err.message : String(err) };
}
parentPort!.postMessage(reply);
