/**
 * Bundles: build from real directories, write `.tar.gz`, read back; read bundles laid out as
 * `opa build` writes them (leading `/` paths, nested data files, directory bundles); reject
 * broken ones with errors that name the problem.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import * as tar from "tar";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBundle, compile, readBundle, writeBundle } from "../../src/compiler/index.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";
import { POLICY_ENTRYPOINTS } from "../../src/decision/contract.ts";

let dir: string;

function write(path: string, text: string | Uint8Array): void {
  const p = join(dir, path);
  mkdirSync(join(p, ".."), { recursive: true });
  writeFileSync(p, text);
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "arbiter-bundle-"));
  write(
    "policy/arbiter/decide/decide.rego",
    'package arbiter.decide\n\nallow if data.roles[input.role][_] == "read"\n',
  );
  write("policy/arbiter/decide/decide_test.rego", "package arbiter.decide\n\ntest_x if allow\n");
  write("policy/roles/data.json", '{"viewer": ["read"]}');
  write("policy/limits/data.yaml", "max: 3\n");
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("buildBundle / writeBundle / readBundle", () => {
  it("round-trips a bundle through a tarball and evaluates it", async () => {
    const bundle = buildBundle([join(dir, "policy")], { defaultEntrypoints: POLICY_ENTRYPOINTS, revision: "r1" });
    expect(bundle.manifest).toEqual({
      revision: "r1",
      roots: [""],
      wasm: [{ entrypoint: "arbiter/decide", module: "/policy.wasm" }],
      rego_version: 1,
    });
    expect([...bundle.files.keys()].sort()).toEqual([
      "/.manifest",
      "/arbiter/decide/decide.rego",
      "/data.json",
      "/policy.wasm",
    ]);
    const out = join(dir, "out", "b.tar.gz");
    await writeBundle(bundle, out);

    // The tarball holds OPA's paths, with the leading slash.
    const names: string[] = [];
    await tar.t({ file: out, onReadEntry: (e) => void names.push(e.path) });
    expect(names.sort()).toEqual(["/.manifest", "/arbiter/decide/decide.rego", "/data.json", "/policy.wasm"]);

    const loaded = await readBundle(out);
    expect(loaded.manifest.revision).toBe("r1");
    expect(loaded.data).toEqual({ roles: { viewer: ["read"] }, limits: { max: 3 } });
    expect([...loaded.regoFiles.keys()]).toEqual(["arbiter/decide/decide.rego"]);
    const policy = await loadCompiledPolicy(loaded.wasm, loaded.data);
    expect(policy.evaluate({ role: "viewer" } as never, "arbiter/decide")).toEqual([{ result: { allow: true } }]);
    expect(policy.evaluate({ role: "nobody" } as never, "arbiter/decide")).toEqual([{ result: {} }]);
    // Same bytes from the same bytes: reading the file or its contents agree.
    expect((await readBundle(readFileSync(out))).data).toEqual(loaded.data);
  });

  it("defaults the revision to a short content hash that changes with the contents", () => {
    const a = buildBundle([join(dir, "policy")], { defaultEntrypoints: POLICY_ENTRYPOINTS }).manifest.revision;
    expect(a).toMatch(/^[0-9a-f]{12}$/);
    expect(buildBundle([join(dir, "policy")], { defaultEntrypoints: POLICY_ENTRYPOINTS }).manifest.revision).toBe(a);
    write("policy2/p.rego", "package arbiter.decide\nallow := false\n");
    expect(buildBundle([join(dir, "policy2")], { defaultEntrypoints: POLICY_ENTRYPOINTS }).manifest.revision).not.toBe(
      a,
    );
  });

  it("refuses base data that defines a document a rule defines", () => {
    write("conflict/p.rego", "package arbiter.decide\n\nallow := true\n");
    write("conflict/arbiter/decide/data.json", '{"allow": false}');
    expect(() => buildBundle([join(dir, "conflict")], { defaultEntrypoints: POLICY_ENTRYPOINTS })).toThrow(
      `${join(dir, "conflict", "p.rego")}:3:1: rule data.arbiter.decide.allow conflicts with base data at arbiter.decide.allow`,
    );
    write("conflict2/p.rego", "package arbiter.decide\n\nallow := true\n");
    write("conflict2/arbiter/data.json", '{"decide": 5}');
    expect(() => buildBundle([join(dir, "conflict2")], { defaultEntrypoints: POLICY_ENTRYPOINTS })).toThrow(
      "rule data.arbiter.decide.allow conflicts with base data at arbiter.decide",
    );
  });

  it("reads a tarball made by another tar writer, with nested data files merged at their path", async () => {
    const { wasm } = compile([{ path: "p.rego", text: "package x\nv := data.a.b.c\n" }], { entrypoints: ["x/v"] });
    const root = join(dir, "opa-layout");
    mkdirSync(join(root, "a", "b"), { recursive: true });
    writeFileSync(join(root, "policy.wasm"), wasm);
    writeFileSync(join(root, "data.json"), '{"top": 1}');
    writeFileSync(join(root, "a", "b", "data.json"), '{"c": 42}');
    writeFileSync(
      join(root, ".manifest"),
      JSON.stringify({ revision: "opa-1", roots: [""], wasm: [{ entrypoint: "x/v", module: "/policy.wasm" }] }),
    );
    const file = join(dir, "opa.tar.gz");
    await tar.c({ gzip: true, file, cwd: root, portable: true }, [
      "policy.wasm",
      "data.json",
      "a/b/data.json",
      ".manifest",
    ]);
    for (const source of [file, root]) {
      const b = await readBundle(source);
      expect(b.data).toEqual({ top: 1, a: { b: { c: 42 } } });
      expect(b.manifest.revision).toBe("opa-1");
      const p = await loadCompiledPolicy(b.wasm, b.data);
      expect(p.evaluate(undefined as never, "x/v")).toEqual([{ result: 42 }]);
    }
  });
});

describe("broken bundles", () => {
  async function tarGz(files: Record<string, string | Uint8Array>): Promise<Uint8Array> {
    const root = mkdtempSync(join(dir, "t-"));
    for (const [name, body] of Object.entries(files)) {
      mkdirSync(join(root, name, ".."), { recursive: true });
      writeFileSync(join(root, name), body);
    }
    const file = join(root, "b.tar.gz");
    await tar.c({ gzip: true, file, cwd: root, portable: true }, Object.keys(files));
    return new Uint8Array(readFileSync(file));
  }
  const wasm = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);

  it("names a missing policy.wasm", async () => {
    await expect(readBundle(await tarGz({ "data.json": "{}" }))).rejects.toThrow("bundle has no policy.wasm");
  });

  it("names a malformed manifest", async () => {
    await expect(readBundle(await tarGz({ "policy.wasm": wasm, ".manifest": "{nope" }))).rejects.toThrow(
      /^bundle \.manifest is malformed: /,
    );
    await expect(readBundle(await tarGz({ "policy.wasm": wasm, ".manifest": '{"wasm": {}}' }))).rejects.toThrow(
      'bundle .manifest is malformed: "wasm" must be a list',
    );
  });

  it("names the malformed data file", async () => {
    await expect(readBundle(await tarGz({ "policy.wasm": wasm, "x/y/data.json": "[1," }))).rejects.toThrow(
      /^bundle file x\/y\/data\.json is malformed: /,
    );
  });

  it("rejects data files that collide", async () => {
    await expect(
      readBundle(await tarGz({ "policy.wasm": wasm, "data.json": '{"a": 1}', "a/data.json": "{}" })),
    ).rejects.toThrow("bundle file data.json: conflicts with data at a");
  });

  it("rejects truncated and non-gzip input", async () => {
    const good = await tarGz({ "policy.wasm": wasm, "data.json": "{}" });
    await expect(readBundle(good.subarray(0, good.length - 20))).rejects.toThrow(
      /^bundle gzip data is corrupt or truncated: /,
    );
    await expect(readBundle(new TextEncoder().encode("hello"))).rejects.toThrow("bundle is not a gzip file");
    // Valid gzip around a cut-off tar archive.
    const raw = new Uint8Array(700);
    await expect(readBundle(gzipSync(raw.fill(0x41)))).rejects.toThrow(
      "bundle tar data is corrupt (bad header checksum)",
    );
  });

  it("rejects a missing path", async () => {
    await expect(readBundle(join(dir, "nope.tar.gz"))).rejects.toThrow(
      `bundle ${join(dir, "nope.tar.gz")}: no such file or directory`,
    );
  });
});
