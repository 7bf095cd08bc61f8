/**
 * The canonical JSON behind cache keys, audit `input_sha256` and approval digests must stay
 * byte-identical whatever path computes it (JSON.stringify of already-ordered objects, the hand
 * walk, the full/partial pair). Compared here with a straightforward reference implementation on
 * seeded random values, and end to end on the audit events of the decision service.
 */
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { canonicalJson, canonicalPair, decideApprovalDigest } from "../../src/decision/canonical.ts";
import { sha256Hex } from "../../src/util/json-text.ts";
import { cacheKey, cacheKeyAndInputSha256 } from "../../src/decision/decision-cache.ts";
import {
  decideAction,
  decideInput,
  finalizeInput,
  guardMemoryInput,
  nowFact,
  routeInput,
  computeCoverage,
} from "../../src/decision/facts.ts";
import type { DecideRequest, JsonObject } from "../../src/decision/types.ts";
import { ctx, harness, type Harness } from "./helpers.ts";

/** The reference: sort every object's own keys, JSON.stringify every primitive. */
function reference(v: unknown, omit?: ReadonlySet<string>): string {
  if (v === null || typeof v !== "object") {
    const t = JSON.stringify(v);
    return t === undefined ? "null" : t;
  }
  if (Array.isArray(v)) return "[" + Array.from(v, (x) => reference(x)).join(",") + "]";
  const o = v as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(o).sort()) {
    if (o[k] === undefined || omit?.has(k)) continue;
    parts.push(JSON.stringify(k) + ":" + reference(o[k]));
  }
  return "{" + parts.join(",") + "}";
}

/** Deterministic pseudo-random numbers (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = [
  "a",
  "b",
  "z",
  "A",
  "Z",
  "0",
  "9",
  "_",
  " ",
  "é",
  "ß",
  "中",
  "😀",
  "\u{10ffff}",
  '"',
  "\\",
  "/",
  "\n",
  "\t",
  "\u0000",
  "\u001f",
  "\u007f",
  "\u2028",
  "\u2029",
  "\ud800",
  "\udbff",
  "\udc00",
  "\udfff", // lone surrogates
];
const NUMBERS = [
  0,
  -0,
  1,
  -1,
  0.1,
  1e21,
  1e-7,
  -1e-7,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 63),
  1.7976931348623157e308,
  5e-324,
  123456789.123,
  NaN,
  Infinity,
  -Infinity,
  1795316645678000000,
];
const KEYS = [
  "a",
  "b",
  "aa",
  "B",
  "é",
  "z",
  "_",
  "",
  "0",
  "1",
  "10",
  "2",
  "01",
  "4294967295",
  "4294967294",
  "now",
  "request_id",
  "__proto__",
  'k"ey',
  "k\\ey",
  "k\ney",
  "\ud800",
  "😀",
  "ﬀ",
];

function makeValue(next: () => number, depth: number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const r = next();
  if (depth > 4 || r < 0.45) {
    const p = next();
    if (p < 0.35) {
      let s = "";
      const n = Math.floor(next() * 12);
      for (let i = 0; i < n; i++)
        s += next() < 0.6 ? String.fromCharCode(97 + Math.floor(next() * 26)) : pick(ALPHABET);
      return s;
    }
    if (p < 0.6) return next() < 0.5 ? pick(NUMBERS) : (next() - 0.5) * 10 ** Math.floor(next() * 30 - 10);
    if (p < 0.75) return next() < 0.5;
    if (p < 0.9) return null;
    return undefined;
  }
  if (r < 0.7) {
    const n = Math.floor(next() * 5);
    return Array.from({ length: n }, () => makeValue(next, depth + 1));
  }
  const n = Math.floor(next() * 6);
  const keys: string[] = [];
  for (let i = 0; i < n; i++)
    keys.push(next() < 0.5 ? pick(KEYS) : String.fromCharCode(97 + Math.floor(next() * 26)) + pick(KEYS));
  // Half the objects get their keys in sorted order (the JSON.stringify path), half shuffled.
  if (next() < 0.5) keys.sort();
  const o: Record<string, unknown> = next() < 0.1 ? Object.create(null) : {};
  for (const k of keys) {
    // defineProperty so that "__proto__" becomes an own member, as JSON.parse would make it.
    Object.defineProperty(o, k, {
      value: makeValue(next, depth + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return o;
}

describe("canonical JSON", () => {
  it("matches the reference on 5000 seeded random values, whole, without members and as a pair", () => {
    const next = rng(20261122);
    const omit = new Set(["now", "request_id"]);
    let objects = 0;
    for (let i = 0; i < 5000; i++) {
      const v = makeValue(next, 0);
      expect(canonicalJson(v)).toBe(reference(v));
      if (typeof v === "object" && v !== null && !Array.isArray(v)) {
        objects++;
        const o = v as Record<string, unknown>;
        expect(canonicalJson(o, omit)).toBe(reference(o, omit));
        expect(canonicalPair(o, omit)).toEqual({ full: reference(o), partial: reference(o, omit) });
        const both = cacheKeyAndInputSha256("rev", "arbiter/decide", o);
        expect(both).toEqual({
          key: `rev\0arbiter/decide\0${sha256Hex(reference(o, omit))}`,
          inputSha256: sha256Hex(reference(o)),
        });
        expect(cacheKey("rev", "arbiter/decide", o)).toBe(both.key);
      }
    }
    expect(objects).toBeGreaterThan(1000);
  });

  it("matches the reference on top-level objects with omitted members among ordered and unordered ones", () => {
    const next = rng(7);
    const omit = new Set(["now", "request_id"]);
    for (let i = 0; i < 2000; i++) {
      const keys = ["action", "approval", "context", "now", "request_id", "resource", "tenant_id", "0", "zz"].filter(
        () => next() < 0.7,
      );
      if (next() < 0.3) keys.reverse();
      const o: Record<string, unknown> = {};
      for (const k of keys) o[k] = makeValue(next, 2);
      expect(canonicalPair(o, omit)).toEqual({ full: reference(o), partial: reference(o, omit) });
    }
  });

  it("writes JSON.stringify's primitives and the old edge cases", () => {
    expect(canonicalJson(-0)).toBe("0");
    expect(canonicalJson([NaN, Infinity, undefined, () => 1, Symbol("s")])).toBe("[null,null,null,null,null]");
    expect(canonicalJson({ f: () => 1, s: Symbol("s"), u: undefined })).toBe('{"f":null,"s":null}');
    expect(canonicalJson("\ud800x\udc00😀")).toBe('"\\ud800x\\udc00😀"');
    expect(canonicalJson({ b: 1, 10: 2, 9: 3, a: { toJSON: () => "no" } })).toBe(
      '{"10":2,"9":3,"a":{"toJSON":null},"b":1}',
    );
    expect(canonicalJson(new Date(0))).toBe("{}");
    expect(() => canonicalJson({ a: 1n })).toThrow(TypeError);
  });

  it("the input builders order their keys, so an input with ordered attributes is plain JSON.stringify", () => {
    const req: DecideRequest = {
      tenantId: "acme",
      requestId: "r1",
      subject: { id: "u", roles: ["b", "a"], attributes: { a: 1, b: [true, null] } },
      action: "read",
      resource: { type: "doc", id: "d", tenantId: "", attributes: { x: "é" } },
      context: { ip: "10.0.0.1" },
      approvalToken: "",
    };
    const now = nowFact(Date.UTC(2026, 10, 22, 3, 4, 5, 678));
    const approval = { present: false, valid: false, reason: "approval_missing" };
    const inputs: JsonObject[] = [
      decideInput(req, now, approval),
      decideAction(req),
      routeInput(
        {
          tenantId: "t",
          requestId: "r",
          messages: [{ role: "user", content: "hi" }],
          requestedModel: "m",
          classifications: ["c"],
          estimatedTokens: 0,
        },
        now,
        { usd: 1, eur: 2 },
      ),
      guardMemoryInput(
        {
          tenantId: "t",
          requestId: "r",
          agentId: "a",
          sessionId: "s",
          operation: "WRITE",
          store: "n",
          ttlSeconds: 5,
          content: "x",
        },
        now,
        3,
      ),
    ];
    const fin = {
      tenantId: "t",
      requestId: "r",
      sessionId: "s",
      claims: [{ id: "c", evidenceIds: ["e"] }],
      evidence: [{ id: "e", sha256: "a".repeat(64), source: "w", asOf: "" }],
      signals: { permissionDenied: false, sourceUnavailable: true },
    };
    inputs.push(finalizeInput(fin, now, computeCoverage(fin)));
    for (const input of inputs) {
      expect(JSON.stringify(input)).toBe(reference(input));
      expect(canonicalJson(input)).toBe(reference(input));
    }
    expect(decideApprovalDigest(req)).toBe(sha256Hex(reference(decideAction(req))));
  });

  it("the prompt hash is the SHA-256 of the message contents joined by newlines", () => {
    const contents = ["be brief", "", "héllo 😀\n", "\ud800 lone"];
    const streamed = createHash("sha256");
    contents.forEach((c, i) => {
      if (i > 0) streamed.update("\n");
      streamed.update(c);
    });
    const input = routeInput(
      {
        tenantId: "t",
        requestId: "r",
        messages: contents.map((content) => ({ role: "user", content })),
        requestedModel: "m",
        classifications: [],
        estimatedTokens: 0,
      },
      nowFact(0),
      {},
    );
    expect((input.prompt as { sha256: string }).sha256).toBe(streamed.digest("hex"));
  });
});

describe("audit input_sha256 and the cache key share one serialization", () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("every event's inputSha256 is the reference hash of the whole input, on misses and on hits", async () => {
    h = await harness({ revision: "r1" });
    const NOW_MS = Date.UTC(2026, 10, 22, 3, 0, 0, 123);
    const now = nowFact(NOW_MS);
    const approval = { present: false, valid: false, reason: "approval_missing" };
    const mk = (requestId: string): DecideRequest => ({
      tenantId: "acme",
      requestId,
      subject: { id: "alice", roles: ["admin"], attributes: { z: 1, a: "\ud800" } },
      action: "read",
      resource: { type: "doc", id: "d1", tenantId: "", attributes: { 10: "x", 9: "y" } },
      context: { b: [1, { d: 2, c: 3 }], a: null },
      approvalToken: "",
    });
    const a = mk("req-a");
    const b = mk("req-b"); // same key, another request id: a cache hit with its own hash
    await h.service.decide(a, ctx());
    await h.service.decide(b, ctx());
    expect((h.service as unknown as { cacheSize: number }).cacheSize).toBe(1);
    expect(h.sink.events.map((e) => e.inputSha256)).toEqual([
      sha256Hex(reference(decideInput(a, now, approval))),
      sha256Hex(reference(decideInput(b, now, approval))),
    ]);
    expect(h.sink.events[0]!.inputSha256).not.toBe(h.sink.events[1]!.inputSha256);

    const route = {
      tenantId: "acme",
      requestId: "q1",
      messages: [{ role: "user", content: "héllo 😀" }],
      requestedModel: "m",
      classifications: [],
      estimatedTokens: 0,
    };
    await h.service.route(route, ctx());
    await h.service.route({ ...route, requestId: "q2" }, ctx());
    expect(h.sink.events.slice(2).map((e) => e.inputSha256)).toEqual([
      sha256Hex(reference(routeInput(route, now, {}))),
      sha256Hex(reference(routeInput({ ...route, requestId: "q2" }, now, {}))),
    ]);
  });
});
