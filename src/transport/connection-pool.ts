/**
 * The connections of one listener and their limits (issue #12): a connection must finish its
 * handshake (HTTP/2: preface + SETTINGS; HTTP/1.1: its first request) within
 * `handshakeTimeoutMs`, may stay without an open stream or request for at most `idleTimeoutMs`,
 * and at most `maxConnections` are held at once. At the cap a new connection is admitted by
 * shedding the connection idle the longest (else the oldest one still in its handshake), so
 * 1,024 silent connections can no longer lock every real client out; only when every held
 * connection is busy is the newcomer refused.
 *
 * Each connection is in one of three ordered maps (handshake, idle, busy), so admission and the
 * timeout sweep look only at the oldest entries: O(1) per event, and one unref'd interval timer
 * per pool instead of a timer per connection (a timer armed and cleared per call cost measurable
 * CPU on the unary path).
 */

/** Why a connection was shed: also the label a log line carries. */
export type ShedReason = "handshake_timeout" | "idle_timeout" | "capacity";

/** What the pool can do to a connection. */
export interface PooledConnection {
  /** Close it (gracefully when the protocol allows: HTTP/2 sends GOAWAY first). */
  shed(reason: ShedReason): void;
}

export interface ConnectionPoolOptions {
  /** Connections held at once (every protocol on the listener together). */
  readonly maxConnections: number;
  /** Time from accept to the end of the handshake. */
  readonly handshakeTimeoutMs: number;
  /** Time a connection may stay without an open stream or request. */
  readonly idleTimeoutMs: number;
  /** Called for each shed connection (for a debug log). */
  readonly onShed?: (reason: ShedReason) => void;
  /** Millisecond clock; tests pass their own. */
  readonly now?: () => number;
}

export interface ConnectionPool {
  /**
   * A new connection, in its handshake. False when the pool is full of busy connections: the
   * caller closes the newcomer.
   */
  add(conn: PooledConnection): boolean;
  /** The handshake is done, or the last stream/request ended: the connection is idle. */
  idle(conn: PooledConnection): void;
  /** A stream or request is open. */
  busy(conn: PooledConnection): void;
  /** The connection is gone (closed for any reason). */
  remove(conn: PooledConnection): void;
  /** Runs the timeout checks now (the timer runs them periodically). */
  sweep(): void;
  readonly size: number;
  /** Stops the sweep timer. */
  close(): void;
}

export function createConnectionPool(options: ConnectionPoolOptions): ConnectionPool {
  const now = options.now ?? (() => performance.now());
  const handshaking = new Map<PooledConnection, number>();
  const idle = new Map<PooledConnection, number>();
  const busy = new Set<PooledConnection>();
  const size = (): number => handshaking.size + idle.size + busy.size;

  const shed = (conn: PooledConnection, reason: ShedReason): void => {
    handshaking.delete(conn);
    idle.delete(conn);
    busy.delete(conn);
    options.onShed?.(reason);
    conn.shed(reason);
  };
  /** The oldest entry of an insertion-ordered map when it is at least `age` old. */
  const expired = (m: Map<PooledConnection, number>, age: number, t: number): PooledConnection | undefined => {
    const first = m.entries().next();
    return !first.done && t - first.value[1] >= age ? first.value[0] : undefined;
  };

  const sweep = (): void => {
    const t = now();
    for (let c = expired(handshaking, options.handshakeTimeoutMs, t); c; c = expired(handshaking, options.handshakeTimeoutMs, t)) {
      shed(c, "handshake_timeout");
    }
    for (let c = expired(idle, options.idleTimeoutMs, t); c; c = expired(idle, options.idleTimeoutMs, t)) shed(c, "idle_timeout");
  };
  // Timeouts fire within a quarter of the shorter one (at most 1 s late).
  const period = Math.max(10, Math.min(1000, Math.min(options.handshakeTimeoutMs, options.idleTimeoutMs) / 4));
  const timer = setInterval(sweep, period);
  timer.unref();

  return {
    add(conn) {
      if (size() >= options.maxConnections) {
        const victim = expired(idle, 0, Infinity) ?? expired(handshaking, 0, Infinity);
        if (victim === undefined) return false;
        shed(victim, "capacity");
      }
      handshaking.set(conn, now());
      return true;
    },
    idle(conn) {
      if (!handshaking.delete(conn) && !busy.delete(conn)) return; // gone, or already idle
      idle.set(conn, now());
    },
    busy(conn) {
      if (!handshaking.delete(conn) && !idle.delete(conn)) return;
      busy.add(conn);
    },
    remove(conn) {
      handshaking.delete(conn);
      idle.delete(conn);
      busy.delete(conn);
    },
    sweep,
    get size() {
      return size();
    },
    close() {
      clearInterval(timer);
    },
  };
}
