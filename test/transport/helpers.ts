/**
 * Shared helpers of the wire tests: a real @grpc/grpc-js client calling methods by path with the
 * generated protobuf-es codecs, a copy of the default policy pack in a temp dir, a log capture.
 */
import { cpSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { loadConfig, type Config } from "../../src/config/config.ts";

export const POLICIES = join(import.meta.dirname, "..", "..", "policies");

/** A fresh copy of the default policy pack (so a test may break and fix it). */
export function copyPolicies(): string {
  const dir = mkdtempSync(join(tmpdir(), "arbiter-policies-"));
  cpSync(POLICIES, dir, { recursive: true });
  return dir;
}

export function testConfig(env: Record<string, string>): Config {
  return loadConfig({
    ARBITER_GRPC_LISTEN: "127.0.0.1:0",
    ARBITER_ADMIN_LISTEN: "127.0.0.1:0",
    ARBITER_AUDIT: "off",
    ARBITER_LOG_LEVEL: "silent",
    ARBITER_DATA_DIR: mkdtempSync(join(tmpdir(), "arbiter-data-")),
    ...env,
  });
}

/** grpc-js target for a server address (`host:port` or `unix:/path`). */
export function grpcTarget(address: string): string {
  return address;
}

export interface UnaryResult<O> {
  readonly error?: grpc.ServiceError;
  readonly value?: O;
}

export function unary<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  path: string,
  input: I,
  output: O,
  init: MessageInitShape<I>,
  options: grpc.CallOptions = {},
  onCall?: (call: grpc.ClientUnaryCall) => void,
): Promise<UnaryResult<MessageShape<O>>> {
  return new Promise((resolve) => {
    const call = client.makeUnaryRequest(
      path,
      (m: MessageShape<I>) => Buffer.from(toBinary(input, m)),
      (b: Buffer) => fromBinary(output, b),
      create(input, init),
      new grpc.Metadata(),
      options,
      (error, value) => resolve(error ? { error } : { value: value as MessageShape<O> }),
    );
    onCall?.(call);
  });
}

/** A pino destination that keeps every line. */
export function captureLogs(): { stream: Writable & { write: Writable["write"] }; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString("utf8").split("\n")) if (l) lines.push(l);
      cb();
    },
  });
  return { stream, lines };
}

export const UUIDV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export async function until(pred: () => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
