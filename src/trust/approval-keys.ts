/**
 * The approvers' public keys (`ARBITER_APPROVAL_KEYS`): what signed approval grants are verified
 * against. The sidecar only ever holds public keys; the private keys stay with the approvers
 * (`arbiter keygen` / `arbiter approve`, or an approval service).
 *
 * Sources:
 * - a file holding a JWKS (`{"keys": [...]}`, as `arbiter keygen` writes it) or one PEM public
 *   key (SPKI, `-----BEGIN PUBLIC KEY-----`). Hot-reloaded: the file's directory is watched
 *   (debounced, so a Kubernetes ConfigMap update, which renames the `..data` symlink, counts) and
 *   the file is also re-read every refresh interval, and early (at most once per cooldown) when a
 *   grant names a `kid` the set does not hold, in case a watch event was missed (network file
 *   systems). Replacing the file makes its new keys valid and its removed keys invalid without a
 *   restart.
 * - an `https://` URL serving a JWKS (`http://` only on a loopback host, for tests and local
 *   development), fetched with a timeout and a size cap, re-fetched every refresh interval with
 *   `If-None-Match`, and early (at most once per cooldown) when a grant names a `kid` the set
 *   does not hold, so a rotation at the issuer is picked up quickly.
 *
 * A source that cannot be read or parsed at start-up fails start-up (`ApprovalKeysError`, the
 * message names the variable), except a URL, which the sidecar keeps retrying while every grant
 * reads `approval_unknown_key` (an approvals endpoint that is down must not stop the Decide,
 * Route, ... answers). On a failed reload the last good set stays active, the failure is logged
 * and counted (`arbiter_approval_keys_reloads_total{result="failed"}`).
 *
 * Accepted keys: Ed25519 (`EdDSA`), P-256 (`ES256`) and RSA of at least 2048 bits (`RS256`).
 * Symmetric (`oct`) keys and private keys are refused: an HMAC secret the sidecar can verify with
 * is one it could sign with, and a private key has no business on the sidecar. Without a `kid`,
 * a key is named by its RFC 7638 JWK thumbprint (what `arbiter approve` puts in the grant's
 * header by default).
 */
import { createHash } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { open } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Logger } from "pino";
import { isLoopback } from "../config/config.ts";
import { Counter, Gauge, type Registry } from "prom-client";
import { ApprovalKeysError, MAX_KEYS_BYTES, parseApprovalKeys, type ApprovalKey } from "./approval-key-parse.ts";

export {
  ApprovalKeysError,
  GRANT_ALGORITHMS,
  MAX_KEYS,
  MAX_KEYS_BYTES,
  parseApprovalKeys,
  publicJwk,
  type ApprovalKey,
  type GrantAlgorithm,
} from "./approval-key-parse.ts";

/** Quiet period after a file-system event before the file is re-read. */
const DEBOUNCE_MS = 100;
/** Default timeout of one JWKS download. */
const FETCH_TIMEOUT_MS = 5_000;
/** Shortest time between two early re-fetches triggered by an unknown `kid`. */
const UNKNOWN_KID_COOLDOWN_MS = 30_000;
/** Retry interval while a URL source has never answered, bounded by the refresh interval. */
const FIRST_FETCH_RETRY_MS = 10_000;

export interface ApprovalKeySet {
  /** The key named `kid`; without a `kid`, the only key when the set holds exactly one. */
  find(kid: string | undefined): ApprovalKey | undefined;
  /** Number of keys in the active set. */
  readonly size: number;
  /** Key ids of the active set, in source order. */
  kids(): string[];
  /**
   * A grant named a `kid` the set does not hold: re-read the source early (at most once per
   * cooldown), in case a new key was published and no watch event or refresh has come yet.
   */
  noteUnknownKid(): void;
  /** Re-reads the source now; resolves once the attempt finished (tests, and the watcher). */
  reload(): Promise<void>;
  /** Stops the watcher and the refresh timer. Idempotent. */
  close(): void;
}

export interface ApprovalKeySetOptions {
  /** File path, or an `https://` JWKS URL (`http://` for loopback hosts only). */
  readonly source: string;
  /** Re-read / re-fetch interval in seconds (files: a safety net behind the watcher). */
  readonly refreshSeconds: number;
  readonly logger: Logger;
  readonly registry?: Registry;
  /** Name used in error messages; default `ARBITER_APPROVAL_KEYS`. */
  readonly variable?: string;
  /** Timeout of one JWKS download in ms; default 5000. */
  readonly fetchTimeoutMs?: number;
}

/** The empty set: every grant reads `approval_unknown_key` (ARBITER_APPROVAL_KEYS unset). */
export function emptyApprovalKeySet(): ApprovalKeySet {
  return {
    find: () => undefined,
    size: 0,
    kids: () => [],
    noteUnknownKid: () => undefined,
    reload: async () => undefined,
    close: () => undefined,
  };
}

// ---- reading the source ------------------------------------------------------------------------

/** Reads at most MAX_KEYS_BYTES of a file; larger is an error. */
async function readBounded(path: string): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(MAX_KEYS_BYTES + 1);
    let total = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, total, buf.length - total, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > MAX_KEYS_BYTES) throw new Error(`is larger than ${MAX_KEYS_BYTES} bytes`);
    }
    return buf.subarray(0, total);
  } finally {
    await fh.close();
  }
}

type Fetched =
  | { readonly notModified: true }
  | { readonly notModified: false; readonly text: string; readonly etag: string | undefined };

/** GET of a JWKS URL, bounded by `timeoutMs` and MAX_KEYS_BYTES; redirects are refused. */
async function fetchJwks(
  url: string,
  etag: string | undefined,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<Fetched> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const both = AbortSignal.any([signal, timeout]);
  const headers: Record<string, string> = { accept: "application/jwk-set+json, application/json" };
  if (etag !== undefined) headers["if-none-match"] = etag;
  try {
    // A redirect could point the sidecar anywhere (including plain http): refused.
    const res = await fetch(url, { headers, signal: both, redirect: "error" });
    if (res.status === 304 && etag !== undefined) {
      await res.body?.cancel();
      return { notModified: true };
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`answered HTTP ${res.status}`);
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of res.body ?? []) {
      total += (chunk as Uint8Array).byteLength;
      if (total > MAX_KEYS_BYTES) {
        await res.body?.cancel().catch(() => undefined); // failing anyway; the size is the error to report
        throw new Error(`body is larger than ${MAX_KEYS_BYTES} bytes`);
      }
      chunks.push(chunk as Uint8Array);
    }
    return {
      notModified: false,
      text: Buffer.concat(chunks).toString("utf8"),
      etag: res.headers.get("etag") ?? undefined,
    };
  } catch (err) {
    if (timeout.aborted) throw new Error(`timed out after ${timeoutMs} ms`, { cause: err });
    throw err;
  }
}

/** True for `https://`, and for `http://` to a loopback host. */
export function isUrlSource(source: string): boolean {
  return /^https?:\/\//i.test(source);
}

function checkUrl(source: string, variable: string): void {
  let u: URL;
  try {
    u = new URL(source);
  } catch {
    throw new ApprovalKeysError(`${variable}: not a valid URL: "${source}"`);
  }
  const loopback = u.hostname === "[::1]" || isLoopback(u.hostname);
  if (u.protocol !== "https:" && !(u.protocol === "http:" && loopback)) {
    throw new ApprovalKeysError(
      `${variable}: a JWKS URL must use https:// (http:// only for a loopback host), got "${source}"`,
    );
  }
  if (u.username !== "" || u.password !== "")
    throw new ApprovalKeysError(`${variable}: credentials in the JWKS URL are not supported`);
}

// ---- the set -----------------------------------------------------------------------------------

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

class LiveKeySet implements ApprovalKeySet {
  readonly #source: string;
  readonly #isUrl: boolean;
  readonly #variable: string;
  readonly #refreshMs: number;
  readonly #fetchTimeoutMs: number;
  readonly #log: Logger;
  readonly #reloads: Counter<"result"> | undefined;
  readonly #loaded: Gauge | undefined;
  #byKid = new Map<string, ApprovalKey>();
  /** SHA-256 of the last text parsed successfully (unchanged files are not re-parsed). */
  #digest = "";
  #etag: string | undefined;
  #ever = false;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastEarlyFetch = 0;
  #running: Promise<void> | undefined;
  #again = false;
  #closed = false;
  readonly #abort = new AbortController();

  constructor(options: ApprovalKeySetOptions) {
    this.#source = options.source;
    this.#isUrl = isUrlSource(options.source);
    this.#variable = options.variable ?? "ARBITER_APPROVAL_KEYS";
    this.#refreshMs = options.refreshSeconds * 1000;
    this.#fetchTimeoutMs = options.fetchTimeoutMs ?? FETCH_TIMEOUT_MS;
    this.#log = options.logger.child({ component: "approval-keys" });
    const r = options.registry;
    if (r) {
      this.#reloads = metric(
        r,
        "arbiter_approval_keys_reloads_total",
        () =>
          new Counter({
            name: "arbiter_approval_keys_reloads_total",
            help: "Approval key set loads by result (ok, failed, unchanged).",
            labelNames: ["result"],
            registers: [r],
          }),
      );
      this.#loaded = metric(
        r,
        "arbiter_approval_keys",
        () =>
          new Gauge({
            name: "arbiter_approval_keys",
            help: "Approver public keys in the active set.",
            registers: [r],
          }),
      );
    }
  }

  get size(): number {
    return this.#byKid.size;
  }

  find(kid: string | undefined): ApprovalKey | undefined {
    if (kid !== undefined) return this.#byKid.get(kid);
    if (this.#byKid.size !== 1) return undefined;
    return this.#byKid.values().next().value;
  }

  kids(): string[] {
    return [...this.#byKid.keys()];
  }

  noteUnknownKid(): void {
    if (this.#closed) return;
    const now = Date.now();
    if (now - this.#lastEarlyFetch < UNKNOWN_KID_COOLDOWN_MS) return;
    this.#lastEarlyFetch = now;
    void this.reload();
  }

  /** First load: throws ApprovalKeysError for a file; a URL that fails is retried. */
  async start(): Promise<void> {
    if (this.#isUrl) {
      checkUrl(this.#source, this.#variable);
      const err = await this.#attempt();
      if (err !== undefined) {
        this.#log.error(
          { err: err.message, source: this.#source },
          "approval keys: first JWKS fetch failed; grants are refused (approval_unknown_key) until it succeeds",
        );
      }
    } else {
      const err = await this.#attempt();
      if (err !== undefined)
        throw new ApprovalKeysError(`${this.#variable}: "${this.#source}" ${err.message}`, { cause: err });
      this.#watch();
    }
    this.#schedule();
  }

  reload(): Promise<void> {
    // One load at a time; a request during a load runs one more after it (never lost, never piled).
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false;
          const err = await this.#attempt();
          if (err !== undefined && !this.#closed) {
            this.#log.error(
              { err: err.message, source: this.#source, kids: this.kids() },
              "approval keys: reload failed; keeping the last good set",
            );
          }
        } while (this.#again && !this.#closed);
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    if (this.#debounce) clearTimeout(this.#debounce);
    if (this.#timer) clearTimeout(this.#timer);
    this.#watcher?.close();
  }

  /** One read + parse + swap; returns the error instead of throwing (the callers decide). */
  async #attempt(): Promise<Error | undefined> {
    try {
      let text: string;
      if (this.#isUrl) {
        const got = await fetchJwks(this.#source, this.#etag, this.#abort.signal, this.#fetchTimeoutMs);
        if (got.notModified) {
          this.#reloads?.inc({ result: "unchanged" });
          return undefined;
        }
        text = got.text;
        this.#etag = got.etag;
      } else {
        text = (await readBounded(this.#source)).toString("utf8");
      }
      const digest = createHash("sha256").update(text).digest("hex");
      if (this.#ever && digest === this.#digest) {
        this.#reloads?.inc({ result: "unchanged" });
        return undefined;
      }
      const keys = await parseApprovalKeys(text);
      if (this.#closed) return undefined;
      this.#byKid = new Map(keys.map((k) => [k.kid, k]));
      this.#digest = digest;
      this.#ever = true;
      this.#reloads?.inc({ result: "ok" });
      this.#loaded?.set(keys.length);
      this.#log.info({ source: this.#source, kids: this.kids() }, "approval keys loaded");
      return undefined;
    } catch (err) {
      if (this.#isUrl) this.#etag = undefined; // the next attempt must fetch the body again
      this.#reloads?.inc({ result: "failed" });
      const e = err instanceof Error ? err : new Error(String(err));
      const code = (e as NodeJS.ErrnoException).code;
      return code !== undefined && e.message.startsWith(code) ? new Error(`cannot be read (${code})`, { cause: e }) : e;
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    const delay = this.#isUrl && !this.#ever ? Math.min(this.#refreshMs, FIRST_FETCH_RETRY_MS) : this.#refreshMs;
    this.#timer = setTimeout(() => {
      void this.reload().finally(() => this.#schedule());
      if (!this.#isUrl && this.#watcher === undefined) this.#watch(); // a watch that failed earlier
    }, delay);
    this.#timer.unref();
  }

  /**
   * Watches the file's directory, not the file: an atomic rename (and the ConfigMap `..data`
   * swap) replaces the inode a file watch would be attached to. Every event in the directory
   * triggers a debounced re-read; an unchanged file costs one read and a hash.
   */
  #watch(): void {
    if (this.#closed) return;
    try {
      this.#watcher = watch(dirname(this.#source), { persistent: false }, () => {
        if (this.#debounce) clearTimeout(this.#debounce);
        this.#debounce = setTimeout(() => void this.reload(), DEBOUNCE_MS);
        this.#debounce.unref();
      });
      this.#watcher.on("error", (err) => {
        // The directory went away or was replaced: the refresh timer re-reads and re-watches.
        this.#log.warn(
          { err: err.message, file: basename(this.#source) },
          "approval keys: watch failed; relying on the refresh interval",
        );
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch (err) {
      this.#log.warn(
        { err: (err as Error).message, source: this.#source },
        "approval keys: cannot watch; relying on the refresh interval",
      );
      this.#watcher = undefined;
    }
  }
}

/**
 * Loads the key set from `options.source` and keeps it fresh (see the module comment). Rejects
 * with an `ApprovalKeysError` naming the variable when a file source is unusable at start-up.
 */
export async function createApprovalKeySet(options: ApprovalKeySetOptions): Promise<ApprovalKeySet> {
  const set = new LiveKeySet(options);
  try {
    await set.start();
  } catch (err) {
    set.close();
    throw err;
  }
  return set;
}
