/**
 * Test fixtures shared by the engine and decision tests: a real policy set compiled by the
 * project's compiler, and writers for the bundle layouts the engine loads (directory, .tar.gz via
 * the `tar` package, ConfigMap `..data` symlink layout).
 */
import { POLICY_ENTRYPOINTS } from "../../src/decision/contract.ts";
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create as createTar } from "tar";
import { compile } from "../../src/compiler/index.ts";

/** Arbiter's four entrypoints, from the policy contract. */
export const ENTRYPOINTS = POLICY_ENTRYPOINTS;

/**
 * A policy set exercising every entrypoint; every Decide/Finalize answer carries
 * `rev_<data.test.marker>` so a test can tell which bundle's data produced it.
 */
export const POLICY_SOURCES: Record<string, string> = {
  "decide.rego": `package arbiter.decide
import rego.v1

default allow := false
allow if {
  some role in input.subject.roles
  role == "admin"
}
allow if input.action == "read"
allow if input.approval.valid

reasons contains concat("", ["rev_", data.test.marker])
reasons contains "role_admin" if {
  some role in input.subject.roles
  role == "admin"
}
reasons contains input.approval.reason if input.approval.reason != ""

default risk_tier := 0
risk_tier := 3 if input.action == "delete"
risk_tier := 7 if input.context.bad_tier == true

requires_approval if risk_tier >= 2

obligations := {"redact_fields": ["ssn"], "allow_fields": []} if input.action == "read"

cacheable := false if input.context.volatile == true

boom := 1 if input.context.boom == true
boom := 2 if input.context.boom == true
`,
  "route.rego": `package arbiter
import rego.v1

route := {"provider": "local", "model": "llama", "reasons": ["cost_under_threshold", json.marshal(input.prompt), json.marshal(input.tenant)], "fallbacks": []} if {
  input.prompt.chars <= 10
  input.requested_model != "undefined-please"
}
route := {"provider": "cloud", "model": input.requested_model, "reasons": ["default_provider"], "fallbacks": [{"provider": "local", "model": "llama"}]} if {
  input.prompt.chars > 10
  input.requested_model != "undefined-please"
}
`,
  "guard_memory.rego": `package arbiter.guard_memory
import rego.v1

default allow := false
allow if input.operation != "WRITE"
allow if {
  input.operation == "WRITE"
  input.session.writes < data.test.quota
  input.content.bytes <= 100
}
reasons contains "session_quota_exceeded" if {
  input.operation == "WRITE"
  input.session.writes >= data.test.quota
}
reasons contains "content_too_large" if input.content.bytes > 100
reasons contains concat("", ["writes_", json.marshal(input.session.writes)])
`,
  "finalize.rego": `package arbiter.finalize
import rego.v1

mode := "SOURCE_UNAVAILABLE" if input.signals.source_unavailable
mode := "INSUFFICIENT_EVIDENCE" if {
  not input.signals.source_unavailable
  input.coverage < 1
}
mode := "SUPPORTED" if {
  not input.signals.source_unavailable
  input.coverage == 1
}
reasons contains concat("", ["rev_", data.test.marker])
reasons contains "coverage_below_threshold" if input.coverage < 1
`,
};

let compiled: Uint8Array | undefined;

/** The compiled wasm of POLICY_SOURCES (compiled once per test file). */
export function policyWasm(): Uint8Array {
  compiled ??= compile(
    Object.entries(POLICY_SOURCES).map(([path, text]) => ({ path, text })),
    { entrypoints: ENTRYPOINTS },
  ).wasm;
  return compiled;
}

export function compileSources(sources: Record<string, string>, entrypoints = ENTRYPOINTS): Uint8Array {
  return compile(
    Object.entries(sources).map(([path, text]) => ({ path, text })),
    { entrypoints },
  ).wasm;
}

export interface BundleSpec {
  readonly revision: string;
  readonly data?: unknown;
  readonly wasm?: Uint8Array;
  readonly entrypoints?: readonly string[];
}

export function dataFor(marker: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { test: { marker, quota: 3 }, ...extra };
}

/** Writes `.manifest`, `policy.wasm`, `data.json` into `dir` (created). */
export async function writeBundleDir(dir: string, spec: BundleSpec): Promise<void> {
  await mkdir(dir, { recursive: true });
  const entrypoints = spec.entrypoints ?? ENTRYPOINTS;
  const manifest = {
    revision: spec.revision,
    roots: [""],
    wasm: entrypoints.map((entrypoint) => ({ entrypoint, module: "/policy.wasm" })),
  };
  await writeFile(join(dir, "policy.wasm"), spec.wasm ?? policyWasm());
  await writeFile(join(dir, "data.json"), JSON.stringify(spec.data ?? dataFor(spec.revision)));
  await writeFile(join(dir, ".manifest"), JSON.stringify(manifest));
}

/** The bytes of a bundle .tar.gz built with the `tar` package (entries `/.manifest`, ...). */
export async function bundleTarGz(spec: BundleSpec): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), "arb-bundle-src-"));
  try {
    await writeBundleDir(dir, spec);
    const out = join(dir, "..", `${dir.split("/").pop()}.tar.gz`);
    await createTar({ gzip: true, cwd: dir, file: out, portable: true }, [".manifest", "policy.wasm", "data.json"]);
    const { readFile } = await import("node:fs/promises");
    const bytes = await readFile(out);
    await rm(out, { force: true });
    return bytes;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes a bundle archive to `file` atomically (temp file + rename). */
export async function writeTarGzAtomically(file: string, spec: BundleSpec): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  await writeFile(tmp, await bundleTarGz(spec));
  await rename(tmp, file);
}

/**
 * Kubernetes ConfigMap layout: `dir/..<ts>/` holds the files, `dir/..data -> ..<ts>`, and
 * `dir/<file> -> ..data/<file>`. A new generation is swapped in by renaming a new symlink over
 * `..data`, as kubelet's atomic writer does.
 */
export async function writeConfigMapGeneration(dir: string, generation: string, spec: BundleSpec): Promise<void> {
  await mkdir(dir, { recursive: true });
  const genDir = `..${generation}`;
  await writeBundleDir(join(dir, genDir), spec);
  const tmpLink = join(dir, "..data_tmp");
  await rm(tmpLink, { force: true });
  await symlink(genDir, tmpLink);
  await rename(tmpLink, join(dir, "..data"));
  for (const f of [".manifest", "policy.wasm", "data.json"]) {
    await symlink(join("..data", f), join(dir, f)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
  }
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `arb-${prefix}-`));
}
