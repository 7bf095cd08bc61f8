/** The connection pool's admission and timeouts on a test clock (src/transport/connection-pool.ts). */
import { afterEach, describe, expect, it } from "vitest";
import {
  createConnectionPool,
  type ConnectionPool,
  type PoolEntry,
  type ShedReason,
} from "../../src/transport/connection-pool.ts";

let pool: ConnectionPool | undefined;
afterEach(() => pool?.close());

/** handshake 1 s, idle 5 s: the sweep period is 250 ms, an idle timeout fires from 5.25 s on. */
function setup(max: number) {
  let now = 0;
  const shed: Array<[string, ShedReason]> = [];
  const p = createConnectionPool({
    maxConnections: max,
    handshakeTimeoutMs: 1000,
    idleTimeoutMs: 5000,
    now: () => now,
  });
  pool = p;
  const add = (name: string): PoolEntry | undefined => p.add({ shed: (r: ShedReason) => shed.push([name, r]) });
  return { pool: p, shed, add, advance: (ms: number) => (now += ms) };
}

describe("connection pool", () => {
  it("at the cap, sheds the connection idle the longest, then the oldest in its handshake, and refuses only when all are busy", () => {
    const { pool, shed, add } = setup(3);
    const a = add("a")!;
    const b = add("b")!;
    add("c");
    b.idle();
    a.idle(); // a became idle after b: b has been idle longer (same clock reading: order decides)
    const d = add("d")!;
    expect(shed).toEqual([["b", "capacity"]]);
    a.busy();
    const e = add("e")!; // no idle one left: the oldest handshake (c) goes
    expect(shed).toEqual([
      ["b", "capacity"],
      ["c", "capacity"],
    ]);
    d.busy();
    e.busy();
    expect(add("f")).toBeUndefined();
    expect(pool.size).toBe(3);
    a.idle();
    d.remove();
    expect(add("f")).toBeDefined();
    expect(shed).toHaveLength(2);
    // A shed or removed entry ignores later reports.
    b.idle();
    d.busy();
    expect(pool.size).toBe(3);
  });

  it("sheds a handshake at its timeout and an idle connection at its timeout (never early), never a busy one", () => {
    const { pool, shed, add, advance } = setup(10);
    add("slow");
    const idle = add("idle")!;
    const busy = add("busy")!;
    idle.idle();
    busy.busy();
    advance(999);
    pool.sweep();
    expect(shed).toEqual([]);
    advance(1);
    pool.sweep();
    expect(shed).toEqual([["slow", "handshake_timeout"]]);
    advance(4249);
    pool.sweep();
    expect(shed).toEqual([["slow", "handshake_timeout"]]);
    advance(1);
    pool.sweep();
    expect(shed).toEqual([
      ["slow", "handshake_timeout"],
      ["idle", "idle_timeout"],
    ]);
    advance(1_000_000);
    pool.sweep();
    expect(shed).toHaveLength(2);
    expect(pool.size).toBe(1);
  });

  it("an idle period starts again after each busy one", () => {
    const { pool, shed, add, advance } = setup(10);
    const a = add("a")!;
    a.idle();
    advance(4000);
    pool.sweep(); // the sweep reads the clock the next idle() stamps
    a.busy();
    a.idle();
    advance(5249);
    pool.sweep();
    expect(shed).toEqual([]);
    advance(1);
    pool.sweep();
    expect(shed).toEqual([["a", "idle_timeout"]]);
  });
});
