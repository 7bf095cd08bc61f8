import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chmod, mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { userInfo } from "node:os";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbeddedPostgres } from "../../src/audit/embedded-postgres.ts";
import { query } from "./helpers.ts";

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "arbiter-embedded-"));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("embedded Postgres", () => {
  it("initialises a data dir, listens on loopback, and reuses the cluster and its data on restart", async () => {
    const dataDir = join(tmp, "nested", "pg");
    const first = await startEmbeddedPostgres({ dataDir });
    try {
      expect(first.url).toMatch(new RegExp(`^postgres://postgres:[^@]+@127\\.0\\.0\\.1:${first.port}/postgres$`));
      await query(first.url, "CREATE TABLE kept (v text)");
      await query(first.url, "INSERT INTO kept VALUES ('still here')");
      const [addr] = await query<{ a: string }>(first.url, "SELECT inet_server_addr()::text AS a");
      expect(addr!.a).toBe("127.0.0.1/32");
    } finally {
      await first.stop();
    }
    expect((await stat(join(dataDir, "PG_VERSION"))).isFile()).toBe(true);
    const second = await startEmbeddedPostgres({ dataDir });
    try {
      expect(await query(second.url, "SELECT v FROM kept")).toEqual([{ v: "still here" }]);
    } finally {
      await second.stop();
    }
  }, 60_000);

  it("names the data dir and port when the server cannot start", async () => {
    const a = await startEmbeddedPostgres({ dataDir: join(tmp, "a") });
    try {
      // A second cluster on the same data dir: Postgres refuses (its lock file is held).
      await expect(startEmbeddedPostgres({ dataDir: join(tmp, "a") })).rejects.toThrow(
        new RegExp(
          `^embedded Postgres did not start on 127\\.0\\.0\\.1:\\d+ with data in ${join(tmp, "a")}: .*lock file`,
          "s",
        ),
      );
    } finally {
      await a.stop();
    }
  }, 60_000);
  // As root the server runs as `postgres`, which must traverse every parent directory; a clone
  // made by `mktemp -d` (mode 0700) made initdb fail with EACCES before prepareDirs added o+x.
  it.runIf(userInfo().uid === 0)(
    "starts under a 0700 parent by granting only o+x to it",
    async () => {
      const locked = join(tmp, "locked");
      await mkdir(locked, { mode: 0o700 });
      await chmod(locked, 0o700);
      const pg = await startEmbeddedPostgres({ dataDir: join(locked, "pg") });
      try {
        expect(await query(pg.url, "SELECT 1 AS one")).toEqual([{ one: 1 }]);
      } finally {
        await pg.stop();
      }
      expect((await stat(locked)).mode & 0o777).toBe(0o701);
    },
    60_000,
  );
});
