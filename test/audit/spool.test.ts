import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { constants } from "node:fs";
import { appendFile, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Spool, SpoolInUseError, decodeFrames, encodeFrames, type SpoolCursor } from "../../src/audit/spool.ts";
import { chainRecord, GENESIS_HASH } from "../../src/audit/record.ts";
import { makeEvent } from "./helpers.ts";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "arbiter-spool-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function chained(n: number, instanceId = "i-1"): { payloads: string[]; hashes: string[] } {
  let prev = GENESIS_HASH;
  const payloads: string[] = [];
  const hashes: string[] = [];
  for (let i = 1; i <= n; i++) {
    const c = chainRecord(makeEvent(i), instanceId, i, prev);
    payloads.push(c.payload);
    hashes.push(c.hash);
    prev = c.hash;
  }
  return { payloads, hashes };
}

async function segmentFiles(): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith(".seg")).sort();
}

describe("spool frames", () => {
  it("round-trips payloads and stops at a cut or corrupt frame", () => {
    const buf = encodeFrames(['{"a":1}', '{"b":"é"}']);
    expect(decodeFrames(buf)).toMatchObject({ consumed: buf.length, invalid: false });
    expect(decodeFrames(buf).payloads.map((p) => p.toString())).toEqual(['{"a":1}', '{"b":"é"}']);
    const cut = decodeFrames(buf.subarray(0, buf.length - 3));
    expect(cut.payloads.length).toBe(1);
    expect(cut.invalid).toBe(false);
    const bad = Buffer.from(buf);
    bad[bad.length - 2] ^= 0xff;
    const corrupt = decodeFrames(bad);
    expect(corrupt.payloads.length).toBe(1);
    expect(corrupt.invalid).toBe(true);
  });
});

describe("spool", () => {
  it("truncates a torn final record on open and reports the chain head before it", async () => {
    const { payloads, hashes } = chained(10);
    const s1 = new Spool({ dir, segmentMaxBytes: 1 << 20 });
    await s1.open();
    await s1.write(encodeFrames(payloads));
    await s1.close();
    const [seg] = await segmentFiles();
    const goodSize = (await stat(join(dir, seg!))).size;
    // A crash in the middle of the 11th record: its header and half its payload reached disk.
    const torn = encodeFrames([chained(11).payloads[10]!]);
    await appendFile(join(dir, seg!), torn.subarray(0, 8 + 40));

    const s2 = new Spool({ dir, segmentMaxBytes: 1 << 20 });
    const opened = await s2.open();
    expect(opened.truncatedBytes).toBe(48);
    expect(opened.heads.get("i-1")).toEqual({ seq: 10, hash: hashes[9] });
    expect((await stat(join(dir, seg!))).size).toBe(goodSize);
    const read = await s2.read(s2.start, 100);
    expect(read.payloads.map((p) => p.toString())).toEqual(payloads);
    await s2.close();
  });

  it("preallocates the active segment with zeros, which a restart after a crash cuts without calling them torn", async () => {
    const { payloads, hashes } = chained(10);
    const s1 = new Spool({ dir, segmentMaxBytes: 1 << 20 });
    await s1.open();
    const frames = encodeFrames(payloads);
    await s1.write(frames);
    await s1.sync();
    const [seg] = await segmentFiles();
    // Zeros ahead of the frames (the process "crashes" here: no close).
    expect((await stat(join(dir, seg!))).size).toBe(1 << 20);
    expect(s1.bytes).toBe(frames.length);
    const s2 = new Spool({ dir, segmentMaxBytes: 1 << 20 });
    const opened = await s2.open();
    expect(opened.truncatedBytes).toBe(0);
    expect(opened.heads.get("i-1")).toEqual({ seq: 10, hash: hashes[9] });
    expect((await stat(join(dir, seg!))).size).toBe(frames.length);
    const read = await s2.read(s2.start, 100);
    expect(read.payloads.map((p) => p.toString())).toEqual(payloads);
    await s2.close();
    // The "crashed" spool's descriptor, closed here rather than by the GC (Node's DEP0137 warning).
    await s1.close();
  });

  it("with syncWrites, writes every segment through an O_DSYNC descriptor (durable on return); else not", async () => {
    /** The status flags of this process's descriptors open on `path` (/proc/self/fdinfo, octal). */
    const flagsOf = async (path: string): Promise<number[]> => {
      const out: number[] = [];
      for (const fd of await readdir("/proc/self/fd")) {
        const target = await readlink(`/proc/self/fd/${fd}`).catch(() => "");
        if (target !== path) continue;
        const info = await readFile(`/proc/self/fdinfo/${fd}`, "utf8").catch(() => "");
        const m = /^flags:\s+([0-7]+)$/m.exec(info);
        if (m) out.push(parseInt(m[1]!, 8));
      }
      return out;
    };
    const { payloads } = chained(40);
    for (const syncWrites of [true, false]) {
      const sub = join(dir, String(syncWrites));
      const s = new Spool({ dir: sub, segmentMaxBytes: 4096, syncWrites });
      await s.open();
      for (const p of payloads) await s.write(encodeFrames([p]));
      expect(s.segmentCount).toBeGreaterThan(3); // rotated: the new segments too
      const active = (await readdir(sub))
        .filter((f) => f.endsWith(".seg"))
        .sort()
        .at(-1)!;
      const flags = await flagsOf(join(sub, active));
      expect(flags).toHaveLength(1);
      expect((flags[0]! & constants.O_DSYNC) !== 0).toBe(syncWrites);
      expect(s.writesSynced).toBe(syncWrites);
      await s.close();
      const again = new Spool({ dir: sub, segmentMaxBytes: 4096 });
      await again.open();
      const seen: string[] = [];
      for (let c = again.start; !again.caughtUp(c);) {
        const r = await again.read(c, 100);
        seen.push(...r.payloads.map((b) => b.toString()));
        c = r.next;
      }
      expect(seen).toEqual(payloads);
      await again.close();
    }
  });

  it("truncates at a record whose CRC does not match, never replaying garbage", async () => {
    const { payloads, hashes } = chained(5);
    const s1 = new Spool({ dir, segmentMaxBytes: 1 << 20 });
    await s1.open();
    await s1.write(encodeFrames(payloads));
    await s1.close();
    const [seg] = await segmentFiles();
    const path = join(dir, seg!);
    const data = await readFile(path);
    data[data.length - 10] ^= 0x01; // flip a bit inside the last record's payload
    await writeFile(path, data);
    const s2 = new Spool({ dir, segmentMaxBytes: 1 << 20 });
    const opened = await s2.open();
    expect(opened.heads.get("i-1")).toEqual({ seq: 4, hash: hashes[3] });
    const read = await s2.read(s2.start, 100);
    expect(read.payloads.map((p) => p.toString())).toEqual(payloads.slice(0, 4));
    await s2.close();
  });

  it("rotates segments by size, reads across them and deletes only fully consumed sealed ones", async () => {
    const { payloads } = chained(40);
    const s = new Spool({ dir, segmentMaxBytes: 4096 });
    await s.open();
    for (const p of payloads) await s.write(encodeFrames([p]));
    expect(s.segmentCount).toBeGreaterThan(3);
    const total = s.bytes;
    let cursor = s.start;
    const seen: string[] = [];
    const read1 = await s.read(cursor, 3);
    seen.push(...read1.payloads.map((p) => p.toString()));
    cursor = read1.next;
    // Nothing released while the first segment still has unread records.
    expect(await s.release(cursor)).toBe(0);
    expect(s.bytes).toBe(total);
    while (!s.caughtUp(cursor)) {
      const r = await s.read(cursor, 7);
      seen.push(...r.payloads.map((p) => p.toString()));
      cursor = r.next;
      await s.release(cursor);
    }
    expect(seen).toEqual(payloads);
    // Only the active segment is left.
    expect(s.segmentCount).toBe(1);
    expect(await segmentFiles()).toHaveLength(1);
    await s.close();
  });

  it("moves a cursor from the end of a sealed segment to the next one, and only then", async () => {
    const { payloads } = chained(40);
    const s = new Spool({ dir, segmentMaxBytes: 4096 });
    await s.open();
    const starts: SpoolCursor[] = [];
    for (const p of payloads) starts.push(await s.write(encodeFrames([p])));
    const second = starts.find((c) => c.segmentId !== starts[0]!.segmentId)!;
    // The last write into the first segment ends where the first segment is sealed.
    const lastIndex = starts.filter((c) => c.segmentId === starts[0]!.segmentId).length - 1;
    const lastOfFirst = starts[lastIndex]!;
    const sealedEnd = {
      segmentId: lastOfFirst.segmentId,
      offset: lastOfFirst.offset + encodeFrames([payloads[lastIndex]!]).length,
    };
    expect(s.skipSealedEnd(sealedEnd)).toEqual({ segmentId: second.segmentId, offset: 0 });
    // Inside a sealed segment, and anywhere in the active one, the cursor stays.
    expect(s.skipSealedEnd(lastOfFirst)).toEqual(lastOfFirst);
    const active = starts.at(-1)!;
    expect(s.skipSealedEnd(active)).toEqual(active);
    await s.close();
  });

  it("refuses a spool held by a live process and takes over one left by a dead process", async () => {
    const s1 = new Spool({ dir, segmentMaxBytes: 4096 });
    await s1.open();
    await writeFile(join(dir, "LOCK"), "1"); // pid 1 is alive
    const s2 = new Spool({ dir, segmentMaxBytes: 4096 });
    await expect(s2.open()).rejects.toThrow(new SpoolInUseError(`audit spool ${dir} is in use by process 1`));
    await writeFile(join(dir, "LOCK"), "2147483646"); // no such process
    const s3 = new Spool({ dir, segmentMaxBytes: 4096 });
    await expect(s3.open()).resolves.toMatchObject({ truncatedBytes: 0 });
    expect((await readFile(join(dir, "LOCK"), "utf8")).trim()).toBe(String(process.pid));
    await s3.close();
    await s1.close();
  });
});
