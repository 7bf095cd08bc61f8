/**
 * CPU per audit record of the encoding step alone, the byte encoder against the string path, in
 * one process:
 *
 *   npx tsx bench/audit-encode.ts [--rounds 30] [--group 512]
 *
 * - `bytes`: `RecordEncoder.add` (src/audit/encode.ts), what the pipeline runs at append: the
 *   spool frame (canonical JSON, SHA-256, CRC32) and the COPY row, written byte by byte;
 * - `strings`: the definitions it is tested against: `chainRecord` (an object, JSON.stringify,
 *   SHA-256 of the text) and `copyRow` (string concatenation), then both UTF-8 encoded and
 *   CRC'd as the spool and the COPY stream need them (close to the pipeline before issue 14's
 *   encoder).
 * Groups of `group` records of a typical Decide (ASCII ids, one reason), rounds alternating
 * between the two; each keeps its fastest round (the machine is shared), and the ratio is printed.
 */
import { crc32 } from "node:zlib";
import { RecordEncoder } from "../src/audit/encode.ts";
import { chainRecord, GENESIS_HASH } from "../src/audit/record.ts";
import { copyField, copyRow } from "../src/audit/rows.ts";
import type { AuditEvent } from "../src/audit/types.ts";

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : dflt;
}
const ROUNDS = Number(arg("rounds", "30"));
const GROUP = Number(arg("group", "512"));

const events: AuditEvent[] = Array.from({ length: GROUP }, (_, i) => ({
  decisionId: `0193a4b2-7c1d-7e2f-8a3b-${(0x4c5d6e7f8091 + i).toString(16).padStart(12, "0")}`,
  timestampMs: 1_764_921_600_000 + (i >> 3),
  tenantId: "acme",
  requestId: `req-${i}`,
  traceId: "",
  rpc: "Decide",
  principal: "alice",
  bundleRevision: "rev-2026-12-05",
  outcome: "allow",
  reasons: ["rbac_allow"],
  inputSha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
  latencyUs: 412.3,
}));

const encoder = new RecordEncoder("pod-a");
function bytes(): number {
  let prev = GENESIS_HASH;
  for (let i = 0; i < events.length; i++) prev = encoder.add(events[i]!, i + 1, prev);
  const g = encoder.take();
  return g.frames.length + g.copy!.length;
}

const field = copyField("pod-a");
function strings(): number {
  let prev = GENESIS_HASH;
  let copy = "";
  let n = 0;
  for (let i = 0; i < events.length; i++) {
    const c = chainRecord(events[i]!, "pod-a", i + 1, prev);
    const payload = Buffer.from(c.payload);
    n += payload.length + crc32(payload);
    copy += copyRow(events[i]!, field, i + 1, prev, c.hash)!;
    prev = c.hash;
  }
  return n + Buffer.from(copy).length;
}

const best = { bytes: Infinity, strings: Infinity };
let sink = 0;
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, fn] of [
    ["bytes", bytes],
    ["strings", strings],
  ] as const) {
    const t0 = process.cpuUsage();
    for (let k = 0; k < 40; k++) sink += fn();
    const t = process.cpuUsage(t0);
    best[name] = Math.min(best[name], (t.user + t.system) / (40 * GROUP));
  }
}
console.log(
  `audit-encode: ${GROUP}-record groups, best of ${ROUNDS} rounds: bytes ${best.bytes.toFixed(2)} us/record, ` +
    `strings ${best.strings.toFixed(2)} us/record, bytes/strings ${(best.bytes / best.strings).toFixed(2)}x` +
    (sink === 0 ? " (nothing encoded?)" : ""),
);
