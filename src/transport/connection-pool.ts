/**
 * The connections of one listener and their limits (issue #12): a connection must finish its
 * handshake (HTTP/2: preface + SETTINGS; HTTP/1.1: its first request) within
 * `handshakeTimeoutMs`, may stay without an open stream or request for at most `idleTimeoutMs`,
 * and at most `maxConnections` are held at once. At the cap a new connection is admitted by
 * shedding the connection idle the longest (else the oldest one still in its handshake), so
 * 1,024 silent connections can no longer lock every real client out; only when every held
 * connection is busy is the newcomer refused.
 *
 * Per call the pool costs two field writes: a connection's state changes as its first stream
 * opens and its last one closes, stamped with a sequence number (the order connections became
 * idle, exact) and a coarse clock (read once per sweep or admission; a clock read per call
 * measured as a fifth of the session layer's cost on sequential calls). The timeouts are checked
 * by one unref'd interval timer per pool, scanning the connections (at most maxConnections)
 * every quarter of the shorter timeout, at most every second; an idle timeout is honoured to
 * within two such periods, never early. Admission at the cap scans for its victim too: O(n), only
 * for a newcomer at the cap.
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
   * A new connection, in its handshake: its entry, to report on. Undefined when the pool is
   * full of busy connections: the caller closes the newcomer.
   */
  add(conn: PooledConnection): PoolEntry | undefined;
  /** Runs the timeout checks now (the timer runs them periodically). */
  sweep(): void;
  readonly size: number;
  /** Stops the sweep timer. */
  close(): void;
}

/** One connection in the pool. */
export interface PoolEntry {
  /** The handshake is done, or the last stream/request ended: the connection is idle. */
  idle(): void;
  /** A stream or request is open. */
  busy(): void;
  /** The connection is gone (closed for any reason). */
  remove(): void;
}

const HANDSHAKE = 0;
const IDLE = 1;
const BUSY = 2;
const GONE = 3;

class Entry implements PoolEntry {
  state = HANDSHAKE;
  /** When the state began (handshake: exact; idle: the pool's coarse clock). */
  since: number;
  /** Order of becoming idle. */
  seq = 0;
  readonly conn: PooledConnection;
  readonly #pool: Pool;

  constructor(pool: Pool, conn: PooledConnection, now: number) {
    this.#pool = pool;
    this.conn = conn;
    this.since = now;
  }

  idle(): void {
    if (this.state === GONE || this.state === IDLE) return;
    this.state = IDLE;
    this.since = this.#pool.clock;
    this.seq = ++this.#pool.seq;
  }

  busy(): void {
    if (this.state !== GONE) this.state = BUSY;
  }

  remove(): void {
    if (this.state === GONE) return;
    this.state = GONE;
    this.#pool.entries.delete(this);
  }
}

class Pool implements ConnectionPool {
  /** Coarse clock: read at each sweep and admission. */
  clock: number;
  seq = 0;
  readonly entries = new Set<Entry>();
  readonly #options: ConnectionPoolOptions;
  readonly #now: () => number;
  readonly #period: number;
  readonly #timer: NodeJS.Timeout;

  constructor(options: ConnectionPoolOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
    this.clock = this.#now();
    // Timeouts fire within a quarter of the shorter one (at most 1 s late).
    this.#period = Math.max(10, Math.min(1000, Math.min(options.handshakeTimeoutMs, options.idleTimeoutMs) / 4));
    this.#timer = setInterval(() => this.sweep(), this.#period);
    this.#timer.unref();
  }

  get size(): number {
    return this.entries.size;
  }

  add(conn: PooledConnection): PoolEntry | undefined {
    this.clock = this.#now();
    if (this.entries.size >= this.#options.maxConnections) {
      const victim = this.#victim();
      if (victim === undefined) return undefined;
      this.#shed(victim, "capacity");
    }
    const e = new Entry(this, conn, this.clock);
    this.entries.add(e);
    return e;
  }

  sweep(): void {
    const t = (this.clock = this.#now());
    const { handshakeTimeoutMs, idleTimeoutMs } = this.#options;
    for (const e of this.entries) {
      if (e.state === HANDSHAKE && t - e.since >= handshakeTimeoutMs) this.#shed(e, "handshake_timeout");
      // `since` may lag by up to a period (coarse clock): never fire early.
      else if (e.state === IDLE && t - e.since >= idleTimeoutMs + this.#period) this.#shed(e, "idle_timeout");
    }
  }

  close(): void {
    clearInterval(this.#timer);
  }

  /** The connection idle the longest, else the oldest still in its handshake. */
  #victim(): Entry | undefined {
    let idle: Entry | undefined;
    let handshake: Entry | undefined;
    for (const e of this.entries) {
      if (e.state === IDLE && (idle === undefined || e.seq < idle.seq)) idle = e;
      else if (e.state === HANDSHAKE && handshake === undefined) handshake = e;
    }
    return idle ?? handshake;
  }

  #shed(e: Entry, reason: ShedReason): void {
    e.remove();
    this.#options.onShed?.(reason);
    e.conn.shed(reason);
  }
}

export function createConnectionPool(options: ConnectionPoolOptions): ConnectionPool {
  return new Pool(options);
}
