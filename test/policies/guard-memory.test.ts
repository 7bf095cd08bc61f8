/**
 * GuardMemory end to end: the shipped pack (session quota lowered to 5) in a real sidecar,
 * called through a real gRPC client. Allowlist, retention, size, deny patterns, and the
 * per-session quota under sequential and concurrent writes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryOperation } from "../../gen/arbiter/v1/arbiter_pb.ts";
import { packCopy, startSidecar, type Sidecar } from "./harness.ts";

const QUOTA = 5;
let sidecar: Sidecar;
beforeAll(async () => {
  sidecar = await startSidecar(await packCopy((config) => (config.guard_memory.session_write_quota = QUOTA)));
}, 60_000);
afterAll(async () => {
  await sidecar?.close();
});

interface MemoryCase {
  readonly name: string;
  readonly op: "READ" | "WRITE" | "DELETE";
  readonly store: string;
  readonly ttl?: number;
  readonly content?: string;
  readonly allow: boolean;
  readonly reason: string;
}

const DAY30 = 2_592_000;

const CASES: MemoryCase[] = [
  { name: "write to a wildcard store", op: "WRITE", store: "notes/user", ttl: 3600, content: "likes green tea", allow: true, reason: "memory_allowed" },
  { name: "wildcard matches nested names", op: "WRITE", store: "notes/a/b/c", ttl: 60, content: "x", allow: true, reason: "memory_allowed" },
  { name: "write to an exact store", op: "WRITE", store: "scratch", ttl: 60, content: "x", allow: true, reason: "memory_allowed" },
  { name: "exact entry is not a prefix", op: "WRITE", store: "scratchpad", ttl: 60, content: "x", allow: false, reason: "store_not_allowed" },
  { name: "wildcard needs its prefix", op: "WRITE", store: "notes", ttl: 60, content: "x", allow: false, reason: "store_not_allowed" },
  { name: "read blocked by the allowlist", op: "READ", store: "secrets/vault", allow: false, reason: "store_not_allowed" },
  { name: "read from an allowed store", op: "READ", store: "profile/preferences", allow: true, reason: "memory_allowed" },
  { name: "delete blocked by the allowlist", op: "DELETE", store: "billing", allow: false, reason: "store_not_allowed" },
  { name: "delete in an allowed store", op: "DELETE", store: "notes/old", allow: true, reason: "memory_allowed" },
  { name: "missing TTL with a ceiling", op: "WRITE", store: "notes/x", content: "x", allow: false, reason: "retention_missing" },
  { name: "zero TTL counts as missing", op: "WRITE", store: "notes/x", ttl: 0, content: "x", allow: false, reason: "retention_missing" },
  { name: "TTL at the ceiling", op: "WRITE", store: "notes/x", ttl: DAY30, content: "x", allow: true, reason: "memory_allowed" },
  { name: "TTL over the ceiling", op: "WRITE", store: "notes/x", ttl: DAY30 + 1, content: "x", allow: false, reason: "retention_exceeds_ceiling" },
  { name: "read needs no TTL", op: "READ", store: "notes/x", allow: true, reason: "memory_allowed" },
  { name: "content at the size limit", op: "WRITE", store: "notes/x", ttl: 60, content: "a".repeat(65_536), allow: true, reason: "memory_allowed" },
  { name: "content one byte over the limit", op: "WRITE", store: "notes/x", ttl: 60, content: "a".repeat(65_537), allow: false, reason: "content_too_large" },
  { name: "size counts UTF-8 bytes", op: "WRITE", store: "notes/x", ttl: 60, content: "é".repeat(32_769), allow: false, reason: "content_too_large" },
  { name: "deny pattern: private key", op: "WRITE", store: "notes/x", ttl: 60, content: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl", allow: false, reason: "content_denied_pattern" },
  { name: "deny pattern: SSN", op: "WRITE", store: "notes/x", ttl: 60, content: "user ssn is 123-45-6789.", allow: false, reason: "content_denied_pattern" },
  { name: "deny pattern: AWS key id", op: "WRITE", store: "notes/x", ttl: 60, content: "AKIAIOSFODNN7EXAMPLE", allow: false, reason: "content_denied_pattern" },
  { name: "deny pattern: password assignment", op: "WRITE", store: "notes/x", ttl: 60, content: "db PASSWORD=hunter2", allow: false, reason: "content_denied_pattern" },
  { name: "similar but harmless content", op: "WRITE", store: "notes/x", ttl: 60, content: "call 555-123-4567 about the password reset", allow: true, reason: "memory_allowed" },
  { name: "order: store before retention", op: "WRITE", store: "elsewhere", content: "x", allow: false, reason: "store_not_allowed" },
  { name: "order: retention before size", op: "WRITE", store: "notes/x", ttl: DAY30 + 1, content: "a".repeat(70_000), allow: false, reason: "retention_exceeds_ceiling" },
  { name: "order: size before pattern", op: "WRITE", store: "notes/x", ttl: 60, content: `123-45-6789 ${"a".repeat(70_000)}`, allow: false, reason: "content_too_large" },
];

const OPS = { READ: MemoryOperation.READ, WRITE: MemoryOperation.WRITE, DELETE: MemoryOperation.DELETE } as const;
let sessionSeq = 0;

function guard(c: Pick<MemoryCase, "op" | "store" | "ttl" | "content">, sessionId = `case-${++sessionSeq}`) {
  return sidecar.call("GuardMemory", {
    tenantId: "acme",
    agentId: "agent-7",
    sessionId,
    operation: OPS[c.op],
    store: c.store,
    ...(c.ttl !== undefined ? { ttlSeconds: c.ttl } : {}),
    ...(c.content !== undefined ? { content: c.content } : {}),
  });
}

const write = { op: "WRITE", store: "notes/x", ttl: 60, content: "fine" } as const;

describe("GuardMemory through the sidecar", () => {
  it("has at least 20 table cases", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(20);
  });

  it.each(CASES)("$name", async (c) => {
    const res = await guard(c);
    expect({ allow: res.allow, reasons: res.reasons }).toEqual({ allow: c.allow, reasons: [c.reason] });
  });

  it("denies the write after the quota, and denied writes consume nothing", async () => {
    const session = "quota-seq";
    const results: string[] = [];
    for (let i = 0; i < QUOTA - 1; i++) results.push((await guard(write, session)).reasons[0]!);
    // denied writes (each for another reason) and reads in between do not count
    results.push((await guard({ ...write, store: "nope" }, session)).reasons[0]!);
    results.push((await guard({ ...write, ttl: undefined }, session)).reasons[0]!);
    results.push((await guard({ ...write, content: "123-45-6789" }, session)).reasons[0]!);
    results.push((await guard({ op: "READ", store: "notes/x" }, session)).reasons[0]!);
    results.push((await guard(write, session)).reasons[0]!); // the QUOTA-th allowed write
    results.push((await guard(write, session)).reasons[0]!); // one beyond
    results.push((await guard(write, session)).reasons[0]!);
    expect(results).toEqual([
      ...Array(QUOTA - 1).fill("memory_allowed"),
      "store_not_allowed",
      "retention_missing",
      "content_denied_pattern",
      "memory_allowed",
      "memory_allowed",
      "session_quota_exceeded",
      "session_quota_exceeded",
    ]);
    // reads go on after the quota; other sessions and agents have their own counters
    expect((await guard({ op: "READ", store: "notes/x" }, session)).allow).toBe(true);
    expect((await guard(write, "quota-seq-other")).allow).toBe(true);
  });

  it("100 concurrent writes on one session never exceed the quota", async () => {
    const results = await Promise.all(Array.from({ length: 100 }, () => guard(write, "concurrent")));
    const allowed = results.filter((r) => r.allow).length;
    expect(allowed).toBe(QUOTA);
    expect(results.filter((r) => !r.allow).every((r) => r.reasons.join() === "session_quota_exceeded")).toBe(true);
  });
});
