#!/usr/bin/env node
// Container health probe: grpc.health.v1.Health/Check against the running sidecar, exit 0 when
// the service is SERVING, 1 otherwise. Plain JavaScript with @grpc/grpc-js only (a production
// dependency), so it runs in the runtime image without tsx and without a grpc_health_probe binary.
//
// usage: node deploy/healthcheck.mjs [--target T] [--service NAME] [--timeout-ms N]
//   --target   grpc-js target: host:port, unix:/path.sock. Default: ARBITER_HEALTH_LISTEN when
//              set (plaintext health-only listener), else ARBITER_GRPC_LISTEN, else
//              127.0.0.1:50051; a wildcard bind address is dialled on loopback.
//   --service  health service name; default "" (the whole server). "arbiter.v1.PolicyService"
//              is SERVING only while a policy bundle is active.
//   --timeout-ms  deadline of the call, default 2000.
// A TLS listener cannot be probed with plaintext: point --target at the health listener.
import grpc from "@grpc/grpc-js";

const STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

function parseArgs(argv) {
  const opts = { target: undefined, service: "", timeoutMs: 2000 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === "--target") opts.target = value;
    else if (flag === "--service") opts.service = value;
    else if (flag === "--timeout-ms") {
      opts.timeoutMs = Number(value);
      if (!Number.isInteger(opts.timeoutMs) || opts.timeoutMs <= 0) {
        throw new Error(`--timeout-ms must be a positive integer, got "${value}"`);
      }
    } else throw new Error(`unknown option "${flag}"`);
    i++;
  }
  return opts;
}

/** Turns an ARBITER_*_LISTEN value into a target the probe can dial from inside the container. */
export function targetFromListen(listen) {
  if (listen.startsWith("unix:")) return listen;
  const m = /^(\[[^\]]*\]|[^:]*):(\d+)$/.exec(listen);
  if (!m) throw new Error(`cannot derive a probe target from "${listen}" (expected host:port or unix:/path)`);
  const host = m[1] === "0.0.0.0" || m[1] === "" ? "127.0.0.1" : m[1] === "[::]" ? "[::1]" : m[1];
  return `${host}:${m[2]}`;
}

// HealthCheckRequest { string service = 1; } and HealthCheckResponse { ServingStatus status = 1; }
// encoded by hand: two one-field messages do not justify loading a protobuf runtime here.
function encodeRequest(service) {
  const bytes = Buffer.from(service, "utf8");
  const len = [];
  let n = bytes.length;
  do {
    len.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return bytes.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, ...len]), bytes]);
}

function decodeResponse(buf) {
  // Field 1, varint; absent means 0 (UNKNOWN). Unknown fields are skipped.
  let i = 0;
  let status = 0;
  while (i < buf.length) {
    const key = buf[i++];
    const wire = key & 7;
    let v = 0;
    let shift = 0;
    if (wire === 0) {
      let b;
      do {
        b = buf[i++];
        v |= (b & 0x7f) << shift;
        shift += 7;
      } while (b & 0x80);
      if (key >> 3 === 1) status = v;
    } else if (wire === 2) {
      let b;
      do {
        b = buf[i++];
        v |= (b & 0x7f) << shift;
        shift += 7;
      } while (b & 0x80);
      i += v;
    } else {
      throw new Error(`unexpected wire type ${wire} in HealthCheckResponse`);
    }
  }
  return status;
}

export function check({ target, service, timeoutMs }) {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (req) => req,
      (buf) => decodeResponse(buf),
      encodeRequest(service),
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err, status) => {
        client.close();
        if (err) resolve({ ok: false, text: `${grpc.status[err.code] ?? err.code}: ${err.details}` });
        else resolve({ ok: status === 1, text: STATUS[status] ?? String(status) });
      },
    );
  });
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
    opts.target ??= targetFromListen(
      process.env.ARBITER_HEALTH_LISTEN || process.env.ARBITER_GRPC_LISTEN || "127.0.0.1:50051",
    );
  } catch (e) {
    process.stderr.write(`healthcheck: ${e.message}\n`);
    return 2;
  }
  const { ok, text } = await check(opts);
  const line = `healthcheck: ${opts.target} service="${opts.service}" ${text}\n`;
  (ok ? process.stdout : process.stderr).write(line);
  return ok ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main();
}
