/**
 * Worker-thread entry of the bundle load (`load-bundle.ts`): each message is a `LoadRequest`,
 * answered by one `WorkerLoadReply`; the worker stays up for the next reload. The instrumented
 * module is compiled here too, so the main thread receives a ready `WebAssembly.Module`
 * (postMessage shares it).
 */
import { parentPort } from "node:worker_threads";
import { loadBundle, type LoadReply, type LoadRequest } from "./load-bundle.ts";

export type WorkerLoadReply =
  | Exclude<LoadReply, { kind: "bundle" }>
  | (Extract<LoadReply, { kind: "bundle" }> & { readonly module?: WebAssembly.Module; readonly compileError?: string });

/** A copy owning its whole buffer, so it can be transferred without detaching anything else. */
function own(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer
    ? (bytes as Uint8Array<ArrayBuffer>)
    : new Uint8Array(bytes);
}

async function answer(request: LoadRequest): Promise<void> {
  const reply = await loadBundle(request);
  if (!(reply.ok && reply.kind === "bundle")) {
    parentPort!.postMessage(reply);
    return;
  }
  let module: WebAssembly.Module | undefined;
  let compileError: string | undefined;
  try {
    module = await WebAssembly.compile(reply.instrumented as Uint8Array<ArrayBuffer>);
  } catch (err) {
    compileError = err instanceof Error ? err.message : String(err);
  }
  const dataJson = own(reply.dataJson);
  const wasm = own(reply.wasm);
  const out: WorkerLoadReply = { ...reply, wasm, dataJson, instrumented: new Uint8Array(), module, compileError };
  parentPort!.postMessage(out, wasm.buffer === dataJson.buffer ? [wasm.buffer] : [wasm.buffer, dataJson.buffer]);
}

// One request at a time: the host serializes loads.
parentPort!.on("message", (request: LoadRequest) => void answer(request));
