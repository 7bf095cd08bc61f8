import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ApprovalStoreError, createApprovalStore } from "../../src/decision/approval-store.ts";

const T0 = Date.UTC(2026, 10, 22, 3, 4, 5, 678);
const digestOf = (s: string) => createHash("sha256").update(s).digest("hex");
const D1 = digestOf('{"action":"delete","tenant_id":"acme"}');
const D2 = digestOf('{"action":"drop","tenant_id":"acme"}');

function issue(store = createApprovalStore(), ttlSeconds = 300) {
  const { token, expiresAtMs } = store.createSync({
    tenantId: "acme",
    digest: D1,
    approver: "alice",
    ttlSeconds,
    nowMs: T0,
  });
  return { store, token, expiresAtMs };
}

describe("approval store", () => {
  it("issues a 32-byte base64url token with its expiry", () => {
    const { token, expiresAtMs } = issue();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token, "base64url")).toHaveLength(32);
    expect(expiresAtMs).toBe(T0 + 300_000);
    expect(issue().token).not.toBe(token);
  });

  it("checks without consuming, then consumes exactly once", async () => {
    const { store, token } = issue();
    const signal = new AbortController().signal;
    const args = { tenantId: "acme", token, digest: D1, nowMs: T0 + 1000 };
    expect(await store.check(args, signal)).toEqual({ valid: true, reason: "" });
    expect(await store.check(args, signal)).toEqual({ valid: true, reason: "" });
    expect(await store.consume({ tenantId: "acme", token, nowMs: T0 + 1000 }, signal)).toBe(true);
    expect(await store.consume({ tenantId: "acme", token, nowMs: T0 + 1000 }, signal)).toBe(false);
    expect(await store.check(args, signal)).toEqual({ valid: false, reason: "approval_replayed" });
  });

  it("redeem is single use", () => {
    const { store, token } = issue();
    const args = { tenantId: "acme", token, digest: D1, nowMs: T0 };
    expect(store.redeem(args)).toEqual({ valid: true, reason: "" });
    expect(store.redeem(args)).toEqual({ valid: false, reason: "approval_replayed" });
  });

  it("expires at expiresAt exactly", () => {
    const { store, token, expiresAtMs } = issue();
    expect(store.checkSync({ tenantId: "acme", token, digest: D1, nowMs: expiresAtMs - 1 })).toEqual({
      valid: true,
      reason: "",
    });
    expect(store.checkSync({ tenantId: "acme", token, digest: D1, nowMs: expiresAtMs })).toEqual({
      valid: false,
      reason: "approval_expired",
    });
    expect(store.consumeSync({ tenantId: "acme", token, nowMs: expiresAtMs })).toBe(false);
  });

  it("is bound to its tenant and to its exact request", () => {
    const { store, token } = issue();
    expect(store.checkSync({ tenantId: "globex", token, digest: D1, nowMs: T0 })).toEqual({
      valid: false,
      reason: "approval_wrong_tenant",
    });
    expect(store.consumeSync({ tenantId: "globex", token, nowMs: T0 })).toBe(false);
    expect(store.checkSync({ tenantId: "acme", token, digest: D2, nowMs: T0 })).toEqual({
      valid: false,
      reason: "approval_wrong_action",
    });
    // the failed attempts consumed nothing
    expect(store.redeem({ tenantId: "acme", token, digest: D1, nowMs: T0 })).toEqual({ valid: true, reason: "" });
  });

  it("reports unknown and malformed tokens as approval_unknown", () => {
    const { store, token } = issue();
    const other = Buffer.alloc(32, 7).toString("base64url");
    for (const t of [other, "", "short", `${token}x`, token.replace(/.$/, "!")]) {
      expect(store.checkSync({ tenantId: "acme", token: t, digest: D1, nowMs: T0 })).toEqual({
        valid: false,
        reason: "approval_unknown",
      });
    }
  });

  it("is bounded: purges expired entries, then forgets the oldest", () => {
    const store = createApprovalStore({ maxEntries: 3 });
    const a = store.createSync({ tenantId: "acme", digest: D1, approver: "x", ttlSeconds: 1, nowMs: T0 });
    const b = store.createSync({ tenantId: "acme", digest: D1, approver: "x", ttlSeconds: 600, nowMs: T0 });
    const c = store.createSync({ tenantId: "acme", digest: D1, approver: "x", ttlSeconds: 600, nowMs: T0 });
    // a has expired by now: it goes first, b and c stay
    const d = store.createSync({ tenantId: "acme", digest: D1, approver: "x", ttlSeconds: 600, nowMs: T0 + 2000 });
    expect(store.size).toBe(3);
    const at = (token: string) => store.checkSync({ tenantId: "acme", token, digest: D1, nowMs: T0 + 2000 }).reason;
    expect([at(a.token), at(b.token), at(c.token), at(d.token)]).toEqual(["approval_unknown", "", "", ""]);
    // nothing expired: the oldest (b) is forgotten
    const e = store.createSync({ tenantId: "acme", digest: D1, approver: "x", ttlSeconds: 600, nowMs: T0 + 3000 });
    expect(store.size).toBe(3);
    expect([at(b.token), at(c.token), at(d.token), at(e.token)]).toEqual(["approval_unknown", "", "", ""]);
  });

  it("rejects bad arguments with exact messages", () => {
    const store = createApprovalStore({ maxTtlSeconds: 3600 });
    const ok = { tenantId: "acme", digest: D1, approver: "alice", ttlSeconds: 60, nowMs: T0 };
    expect(() => store.createSync({ ...ok, ttlSeconds: 0 })).toThrow(
      new ApprovalStoreError("approval store: ttlSeconds must be a whole number from 1 to 3600, got 0"),
    );
    expect(() => store.createSync({ ...ok, ttlSeconds: 3601 })).toThrow(
      "approval store: ttlSeconds must be a whole number from 1 to 3600, got 3601",
    );
    expect(() => store.createSync({ ...ok, digest: "ABC" })).toThrow(
      "approval store: digest must be 64 lowercase hex characters (SHA-256)",
    );
    expect(() => store.createSync({ ...ok, tenantId: "" })).toThrow(
      "approval store: tenantId must be a non-empty string",
    );
    expect(() => store.createSync({ ...ok, nowMs: Number.NaN })).toThrow(
      "approval store: nowMs must be a finite number, got NaN",
    );
    expect(() => createApprovalStore({ maxEntries: 0 })).toThrow(
      "approval store: maxEntries must be a whole number from 1 to 10000000, got 0",
    );
  });

  it("honours an aborted signal", async () => {
    const store = createApprovalStore();
    const ac = new AbortController();
    ac.abort(new Error("deadline"));
    await expect(
      store.create({ tenantId: "acme", digest: D1, approver: "a", ttlSeconds: 60, nowMs: T0 }, ac.signal),
    ).rejects.toThrow("deadline");
    expect(store.size).toBe(0);
  });
});
