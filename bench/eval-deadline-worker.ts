/**
 * Worker side of option (b) in bench/eval-deadline.ts: evaluation in a worker thread, called
 * synchronously through a SharedArrayBuffer (the decision core's contract is synchronous).
 * ctrl[0]: 0 idle, 1 request ready, 2 reply ready; ctrl[1]: byte length; bytes from offset 8.
 */
import { workerData } from "node:worker_threads";
import { loadPolicy } from "@open-policy-agent/opa-wasm";
import { hostBuiltins } from "../src/compiler/index.ts";

const { wasm, data, sab } = workerData as { wasm: Uint8Array; data: unknown; sab: SharedArrayBuffer };
const ctrl = new Int32Array(sab, 0, 2);
const bytes = new Uint8Array(sab, 8);
const policy = await loadPolicy(wasm, { initial: 5, maximum: 1024 }, hostBuiltins as never);
policy.setData(data as object);
const enc = new TextEncoder();
const dec = new TextDecoder();
for (;;) {
  for (let state = Atomics.load(ctrl, 0); state !== 1; state = Atomics.load(ctrl, 0)) Atomics.wait(ctrl, 0, state);
  const { entrypoint, input } = JSON.parse(dec.decode(bytes.slice(0, ctrl[1]))) as {
    entrypoint: string;
    input: unknown;
  };
  let out: unknown;
  try {
    out = { rs: policy.evaluate(input, entrypoint) as unknown };
  } catch (err) {
    out = { error: String(err) };
  }
  ctrl[1] = enc.encodeInto(JSON.stringify(out), bytes).written;
  Atomics.store(ctrl, 0, 2);
  Atomics.notify(ctrl, 0);
}
