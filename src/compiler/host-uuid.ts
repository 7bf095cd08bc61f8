/**
 * OPA's `uuid.parse` (google/uuid's Parse and OPA's internal/uuid field map) and
 * `uuid.rfc4122` (issue #13). uuid.parse is a HOST_JSON_IO builtin: the `time` of a version 1
 * or 2 UUID is int64 nanoseconds beyond 2^53.
 */
import { randomUUID } from "node:crypto";
import { type ExactJson, jsonIo } from "./host-exact-json.ts";
import type { HostBuiltin } from "./host-types.ts";

/** google/uuid.Parse: 36 characters, `{...}` (38), `urn:uuid:...` (45) or 32 hex digits. */
function uuidBytes(text: string): Uint8Array | undefined {
  let s = text;
  if (s.length === 45 && s.slice(0, 9).toLowerCase() === "urn:uuid:") s = s.slice(9);
  else if (s.length === 38 && s[0] === "{" && s[37] === "}") s = s.slice(1, 37);
  let hex: string;
  if (s.length === 36) {
    if (s[8] !== "-" || s[13] !== "-" || s[18] !== "-" || s[23] !== "-") return undefined;
    hex = s.slice(0, 8) + s.slice(9, 13) + s.slice(14, 18) + s.slice(19, 23) + s.slice(24);
  } else if (s.length === 32) {
    hex = s;
  } else {
    return undefined;
  }
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return undefined;
  return Uint8Array.from(Buffer.from(hex, "hex"));
}

function variant(b8: number): string {
  if ((b8 & 0xc0) === 0x80) return "RFC4122";
  if ((b8 & 0xe0) === 0xc0) return "Microsoft";
  if ((b8 & 0xe0) === 0xe0) return "Future";
  return "Reserved";
}

function macVariables(b: number): string {
  if ((b & 3) === 3) return "local:multicast";
  if ((b & 1) === 1) return "global:multicast";
  if ((b & 2) === 2) return "local:unicast";
  return "global:unicast";
}

/** 100-ns intervals between 1582-10-15 and the Unix epoch (google/uuid's g1582ns100). */
const G1582_NS100 = 122192928000000000n;

function parse(s: ExactJson): ExactJson | undefined {
  if (typeof s !== "string") return undefined;
  const u = uuidBytes(s);
  if (!u) return undefined;
  const version = u[6]! >> 4;
  const out: Record<string, ExactJson> = { version: BigInt(version), variant: variant(u[8]!) };
  if (version === 1 || version === 2) {
    const be = (i: number, n: number) => u.slice(i, i + n).reduce((acc, x) => (acc << 8n) | BigInt(x), 0n);
    const t = be(0, 4) | (be(4, 2) << 32n) | ((be(6, 2) & 0xfffn) << 48n);
    const ticks = t - G1582_NS100;
    // Go's / and % truncate toward zero.
    const sec = ticks / 10_000_000n;
    const nsec = (ticks % 10_000_000n) * 100n;
    out.time = sec * 1_000_000_000n + nsec;
    out.nodeid = [...u.slice(10)].map((x) => x.toString(16).padStart(2, "0")).join("-");
    out.macvariables = macVariables(u[10]!);
    out.clocksequence = be(8, 2) & 0x3fffn;
    if (version === 2) {
      out.id = be(0, 4);
      const d = u[9]!;
      out.domain = d === 0 ? "Person" : d === 1 ? "Group" : d === 2 ? "Org" : `Domain${d}`;
    }
  }
  return out;
}

/** One random UUID per key for the rest of the synchronous evaluation (OPA: per query). */
const MAX_KEYS = 10_000;
let perEvaluation: Map<string, string> | undefined;

function rfc4122(key: unknown): string | undefined {
  if (typeof key !== "string") return undefined;
  if (perEvaluation === undefined) {
    const cache = new Map<string, string>();
    perEvaluation = cache;
    queueMicrotask(() => {
      if (perEvaluation === cache) perEvaluation = undefined;
    });
  }
  let id = perEvaluation.get(key);
  if (id === undefined) {
    if (perEvaluation.size >= MAX_KEYS) throw new Error(`uuid.rfc4122: more than ${MAX_KEYS} keys in one evaluation`);
    id = randomUUID();
    perEvaluation.set(key, id);
  }
  return id;
}

export const uuidHostBuiltins: Record<string, HostBuiltin> = {
  "uuid.parse": jsonIo(parse),
  "uuid.rfc4122": rfc4122,
};
