/**
 * Real Postgres for tests. `ARBITER_TEST_DATABASE_URL` when set (a server the tests may create
 * databases on); otherwise one embedded server per test file (fresh temp data dir, random
 * port, fsync off since the cluster is thrown away). Each `createTestDatabase()` makes a new
 * uniquely named database, so tests never see each other's rows.
 *
 *   const pgt = await startTestPostgres();       // beforeAll
 *   const url = await pgt.createTestDatabase();  // per test
 *   await pgt.stop();                            // afterAll
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "../../src/audit/embedded-postgres.ts";

export interface TestPostgres {
  /** URL of the server's maintenance database (superuser). */
  readonly adminUrl: string;
  /** The embedded server, when one was started (absent with ARBITER_TEST_DATABASE_URL). */
  readonly embedded: EmbeddedPostgres | undefined;
  /** Creates a fresh database and returns its URL. */
  createTestDatabase(prefix?: string): Promise<string>;
  stop(): Promise<void>;
}

/** Replaces the database name in a Postgres URL. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = "/" + database;
  return u.toString();
}

/** Creates a fresh uniquely named database on the server of `adminUrl`; returns its URL. */
export async function createDatabase(adminUrl: string, prefix = "arbiter_test"): Promise<string> {
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  const c = new pg.Client(adminUrl);
  await c.connect();
  try {
    await c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`);
  } finally {
    await c.end();
  }
  return withDatabase(adminUrl, name);
}

export async function startTestPostgres(): Promise<TestPostgres> {
  const external = process.env.ARBITER_TEST_DATABASE_URL;
  let embedded: EmbeddedPostgres | undefined;
  let tmp: string | undefined;
  let adminUrl: string;
  if (external) {
    adminUrl = external;
  } else {
    tmp = await mkdtemp(join(tmpdir(), "arbiter-pg-"));
    embedded = await startEmbeddedPostgres({
      dataDir: join(tmp, "pg"),
      postgresFlags: ["-c", "fsync=off", "-c", "full_page_writes=off"],
    });
    adminUrl = embedded.url;
  }
  const created: string[] = [];
  return {
    adminUrl,
    embedded,
    async createTestDatabase(prefix = "arbiter_test") {
      const url = await createDatabase(adminUrl, prefix);
      created.push(new URL(url).pathname.slice(1));
      return url;
    },
    async stop() {
      if (external) {
        const c = new pg.Client(adminUrl);
        await c.connect();
        try {
          for (const name of created) {
            await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`);
          }
        } finally {
          await c.end();
        }
      }
      await embedded?.stop();
      if (tmp) await rm(tmp, { recursive: true, force: true });
    },
  };
}
