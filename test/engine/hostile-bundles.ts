/**
 * Hostile bundle archives for the bundle resource limits (issue #12), generated as streams so a
 * test never holds the decompressed content:
 *
 * - `hugeArrayBundle()`: a valid manifest and policy, and a data.json that is one array of
 *   250,000,000 zeros (500 MB of JSON, about 2.2 MB gzipped) — what killed the process in V8's
 *   JSON parser before the limits;
 * - `gzipBombBundle()`: a valid bundle plus one 1 GiB file of zeros (about 1 MB gzipped).
 *
 * Each is built once per process and cached (building takes a few seconds of CPU).
 */
import { createGzip } from "node:zlib";
import { Header } from "tar";
import { ENTRYPOINTS, dataFor, policyWasm } from "./fixtures.ts";

type Chunks = () => Generator<Buffer>;

function header(path: string, size: number): Buffer {
  const h = new Header({ path, size, type: "File", mode: 0o644, mtime: new Date(0) });
  const block = Buffer.alloc(512);
  h.encode(block, 0);
  return block;
}

function padding(size: number): Buffer {
  return Buffer.alloc((512 - (size % 512)) % 512);
}

function* smallFile(path: string, bytes: Uint8Array): Generator<Buffer> {
  yield header(path, bytes.length);
  yield Buffer.from(bytes);
  yield padding(bytes.length);
}

/** Streams `entries` as a tar through gzip level 9 and returns the archive bytes. */
async function gzipTar(entries: Chunks[]): Promise<Buffer> {
  const gz = createGzip({ level: 9 });
  const out: Buffer[] = [];
  gz.on("data", (c: Buffer) => out.push(c));
  const done = new Promise<void>((resolve, reject) => {
    gz.on("end", resolve);
    gz.on("error", reject);
  });
  for (const entry of entries) {
    for (const chunk of entry()) {
      if (!gz.write(chunk)) await new Promise((r) => gz.once("drain", r));
    }
  }
  gz.end(Buffer.alloc(1024));
  await done;
  return Buffer.concat(out);
}

function validFiles(revision: string, withData = true): Chunks[] {
  const manifest = {
    revision,
    roots: [""],
    wasm: ENTRYPOINTS.map((entrypoint) => ({ entrypoint, module: "/policy.wasm" })),
  };
  return [
    () => smallFile(".manifest", Buffer.from(JSON.stringify(manifest))),
    () => smallFile("policy.wasm", policyWasm()),
    ...(withData ? [() => smallFile("data.json", Buffer.from(JSON.stringify(dataFor(revision))))] : []),
  ];
}

export const HUGE_ARRAY_ZEROS = 250_000_000;

const zerosCache = new Map<number, Promise<Buffer>>();
/** The 250-million-zeros data.json bundle (revision "huge"); `zeros` smaller for cheap tests. */
export function hugeArrayBundle(zeros = HUGE_ARRAY_ZEROS): Promise<Buffer> {
  const cached = zerosCache.get(zeros);
  if (cached) return cached;
  const built = gzipTar([
    ...validFiles("huge", false),
    function* () {
      const size = 2 * zeros + 1; // "[" + "0," * (n-1) + "0" + "]"
      yield header("data.json", size);
      const chunk = Buffer.from("0,".repeat(1 << 19));
      yield Buffer.from("[");
      let left = zeros - 1;
      while (left > 0) {
        const n = Math.min(left, chunk.length / 2);
        yield n === chunk.length / 2 ? chunk : chunk.subarray(0, 2 * n);
        left -= n;
      }
      yield Buffer.from("0]");
      yield padding(size);
    },
  ]);
  zerosCache.set(zeros, built);
  return built;
}

export const BOMB_BYTES = 1 << 30;

const bombCache = new Map<number, Promise<Buffer>>();
/** A valid bundle plus a 1 GiB file of zeros (revision "bomb"); `bytes` smaller for cheap tests. */
export function gzipBombBundle(bytes = BOMB_BYTES): Promise<Buffer> {
  const cached = bombCache.get(bytes);
  if (cached) return cached;
  const built = gzipTar([
    ...validFiles("bomb"),
    function* () {
      yield header("filler.bin", bytes);
      const zeros = Buffer.alloc(1 << 20);
      for (let i = 0; i < bytes / zeros.length; i++) yield zeros;
    },
  ]);
  bombCache.set(bytes, built);
  return built;
}

/** A bundle whose data.json holds `elements` zeros in an array under `data.big` (small gzipped). */
export function manyElementsBundle(elements: number): Promise<Buffer> {
  return gzipTar([
    ...validFiles("many", false),
    () =>
      smallFile("data.json", Buffer.from(`{"test":{"marker":"many","quota":3},"big":[${"0,".repeat(elements - 1)}0]}`)),
  ]);
}

/**
 * A bundle within element and byte limits opened wide that still needs far more heap to parse
 * than the load worker has: `count` distinct strings of 1,000 characters (about 1 GB as JS
 * strings and text together for 400,000), highly compressible.
 */
export function heapHungryBundle(count: number): Promise<Buffer> {
  return gzipTar([
    ...validFiles("hungry", false),
    function* () {
      const pad = "a".repeat(990);
      const item = (i: number): string => `"${pad}${String(i).padStart(10, "0")}"`;
      const size = 2 + count * 1002 + (count - 1);
      yield header("data.json", size + 8);
      yield Buffer.from('{"big":[');
      for (let i = 0; i < count; i += 1000) {
        const parts: string[] = [];
        for (let k = i; k < Math.min(count, i + 1000); k++) parts.push(item(k));
        yield Buffer.from((i === 0 ? "" : ",") + parts.join(","));
      }
      yield Buffer.from("]}");
      yield padding(size + 8);
    },
  ]);
}

/** A bundle with the given extra raw entries (name -> bytes) besides a valid one. */
export function bundleWithEntries(revision: string, extra: Record<string, Uint8Array>): Promise<Buffer> {
  return gzipTar([
    ...validFiles(revision),
    ...Object.entries(extra).map(
      ([name, bytes]) =>
        () =>
          smallFile(name, bytes),
    ),
  ]);
}
