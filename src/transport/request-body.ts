/**
 * Request bodies for the Connect handlers (read whole, bounded by the message limit: a larger body
 * answers `resource_exhausted` without being buffered) and the drain helper of shutdown.
 */
import type { ConnectResponse } from "./connect-handler.ts";
import type { H2Stream } from "./h2/session.ts";

/** True when `p` settles before the `performance.now()` deadline. */
export async function settleBy(p: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - performance.now()));
  });
  try {
    return await Promise.race([p.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

export function tooLarge(max: number): ConnectResponse {
  return {
    status: 429,
    contentType: "application/json",
    body: JSON.stringify({ code: "resource_exhausted", message: `request exceeds the limit of ${max} bytes` }),
  };
}

/** The request body of an HTTP/2 stream, bounded; `onAbort` runs if the stream closes early. */
export function readStreamBody(stream: H2Stream, max: number, onAbort: () => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    stream.ondata = (c) => {
      size += c.length;
      if (size > max && !done) {
        done = true;
        stream.ondata = undefined;
        reject(new Error("body too large"));
        return;
      }
      chunks.push(c);
    };
    stream.onend = () => {
      if (done) return;
      done = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    stream.onclose = () => {
      if (!stream.localEnded || stream.reset) onAbort();
    };
  });
}

export function readBody(stream: NodeJS.ReadableStream, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on("data", (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reject(new Error("body too large"));
        stream.removeAllListeners("data");
        stream.resume();
        return;
      }
      chunks.push(c);
    });
    stream.once("end", () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    stream.once("error", reject);
  });
}
