/** The connection pool's admission and timeouts on a test clock (src/transport/connection-pool.ts). */
import { afterEach, describe, expect, it } from "vitest";
import { createConnectionPool, type ConnectionPool, type ShedReason } from "../../src/transport/connection-pool.ts";

let pool: ConnectionPool | undefined;
afterEach(() => pool?.close());

function setup(max: number) {
  let now = 0;
  const shed: Array<[string, ShedReason]> = [];
  pool = createConnectionPool({ maxConnections: max, handshakeTimeoutMs: 1000, idleTimeoutMs: 5000, now: () => now });
  const conn = (name: string) => ({ name, shed: (r: ShedReason) => shed.push([name, r]) });
  return { pool, shed, conn, advance: (ms: number) => (now += ms) };
}

describe("connection pool", () => {
  it("at the cap, sheds the connection idle the longest, then the oldest in its handshake, and refuses only when all are busy", () => {
    const { pool, shed, conn, advance } = setup(3);
    const [a, b, c, d, e, f] = ["a", "b", "c", "d", "e", "f"].map(conn);
    expect(pool.add(a!)).toBe(true);
    expect(pool.add(b!)).toBe(true);
    expect(pool.add(c!)).toBe(true);
    pool.idle(b!);
    advance(10);
    pool.idle(a!); // a became idle after b: b has been idle longer
    expect(pool.add(d!)).toBe(true);
    expect(shed).toEqual([["b", "capacity"]]);
    pool.busy(a!);
    expect(pool.add(e!)).toBe(true); // no idle one left: the oldest handshake (c) goes
    expect(shed).toEqual([["b", "capacity"], ["c", "capacity"]]);
    pool.busy(d!);
    pool.busy(e!);
    expect(pool.add(f!)).toBe(false);
    expect(pool.size).toBe(3);
    pool.idle(a!);
    pool.remove(d!);
    expect(pool.add(f!)).toBe(true);
    expect(shed).toHaveLength(2);
  });

  it("sheds a handshake past its timeout and an idle connection past its timeout, never a busy one", () => {
    const { pool, shed, conn, advance } = setup(10);
    const [slow, idle, busy] = ["slow", "idle", "busy"].map(conn);
    pool.add(slow!);
    pool.add(idle!);
    pool.add(busy!);
    pool.idle(idle!);
    pool.busy(busy!);
    advance(999);
    pool.sweep();
    expect(shed).toEqual([]);
    advance(1);
    pool.sweep();
    expect(shed).toEqual([["slow", "handshake_timeout"]]);
    advance(3999);
    pool.sweep();
    expect(shed).toEqual([["slow", "handshake_timeout"]]);
    advance(1);
    pool.sweep();
    expect(shed).toEqual([["slow", "handshake_timeout"], ["idle", "idle_timeout"]]);
    advance(1_000_000);
    pool.sweep();
    expect(shed).toHaveLength(2);
    expect(pool.size).toBe(1);
  });

  it("an idle period starts again after each busy one", () => {
    const { pool, shed, conn, advance } = setup(10);
    const a = conn("a");
    pool.add(a);
    pool.idle(a);
    advance(4000);
    pool.busy(a);
    advance(100);
    pool.idle(a);
    advance(4000);
    pool.sweep();
    expect(shed).toEqual([]);
    advance(1000);
    pool.sweep();
    expect(shed).toEqual([["a", "idle_timeout"]]);
  });
});
