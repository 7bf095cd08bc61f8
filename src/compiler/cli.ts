/**
 * `arbiter build`, `arbiter eval` and `arbiter test`: the compiler's command line.
 * Each returns the process exit code; output goes to stdout, problems to stderr.
 */
import { readFileSync } from "node:fs";
import { buildBundle, BundleError, checkDataConflicts, manifestSaysV0, readBundle, writeBundle } from "./bundle.ts";
import { loadPolicyTree, PolicyLoadError } from "./data.ts";
import { type Diagnostic, RegoCompileError } from "./diagnostics.ts";
import { COVER_BUILTIN, coverableLines, coverageReport } from "./coverage.ts";
import type { Module } from "./ast.ts";
import { compile } from "./index.ts";
import { loadCompiledPolicy } from "../engine/load-policy.ts";
import { parseModule } from "./parser.ts";
import { isObject } from "../util/object.ts";
import { printBuiltin } from "./host-print.ts";
import { yamlData } from "./host-yaml.ts";
import {
  loadBundleKey,
  SIGNATURE_ALGORITHMS,
  SIGNATURES_FILE,
  signBundleFiles,
  type BundleSigningOptions,
  type SignatureAlgorithm,
} from "../engine/bundle-signature.ts";

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: Io = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
};

class UsageError extends Error {}

/**
 * Minimal flag parser: `flags` maps each flag (and alias) to its canonical name; all take a
 * value except the canonical names in `booleans`, which are set to "true" when present.
 */
function parseArgs(
  args: readonly string[],
  flags: Record<string, string>,
  booleans: ReadonlySet<string> = new Set(),
): { opts: Map<string, string[]>; rest: string[] } {
  const opts = new Map<string, string[]>();
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--") {
      rest.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith("-") && a !== "-") {
      const eq = a.indexOf("=");
      const flag = eq > 0 ? a.slice(0, eq) : a;
      const name = flags[flag];
      if (!name) throw new UsageError(`unknown flag ${flag}`);
      if (booleans.has(name)) {
        if (eq > 0) throw new UsageError(`flag ${flag} takes no value`);
        opts.set(name, ["true"]);
        continue;
      }
      const value: string | undefined = eq > 0 ? a.slice(eq + 1) : args[++i];
      if (value === undefined) throw new UsageError(`flag ${flag} needs a value`);
      opts.set(name, [...(opts.get(name) ?? []), value]);
      continue;
    }
    rest.push(a);
  }
  return { opts, rest };
}

function report(io: Io, command: string, e: unknown): number {
  if (e instanceof RegoCompileError) {
    io.err(`${e.message}\n`);
    return 1;
  }
  if (e instanceof UsageError || e instanceof BundleError || e instanceof PolicyLoadError) {
    io.err(`arbiter ${command}: ${e.message}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
  io.err(`arbiter ${command}: ${e instanceof Error ? e.message : String(e)}\n`);
  return 1;
}

const BUILD_USAGE =
  "usage: arbiter build [-e ENTRYPOINT]... [-o bundle.tar.gz] [--revision R] [--no-sources] [--strict-builtin-errors] [--v0-compatible]\n" +
  "                     [--signing-key KEY [--signing-alg RS256] [--signing-key-id ID] [--signing-scope S]] DIR...\n" +
  "  --signing-key: a PEM private key (RS*, PS*, ES*, EdDSA) or a file holding the HMAC secret (HS*);\n" +
  "  writes /.signatures.json as `opa build --signing-key` does (docs/engine.md, Signed bundles)\n" +
  "  --no-sources: leave the Rego sources out (a flat bundle that fits a ConfigMap)\n" +
  '  --v0-compatible: the sources are Rego v0 (a .manifest with "rego_version": 0 says so too)\n';

export interface BuildCliOptions {
  /**
   * Built when no `-e` is given: those of these packages the sources define. `arbiter build`
   * passes Arbiter's four from `decision/contract.ts` (src/cli.ts); the compiler has none.
   */
  readonly defaultEntrypoints?: readonly string[];
}

/** `arbiter build`: compile policy directories into an OPA wasm bundle. */
export async function runBuild(args: string[], io: Io = stdio, options: BuildCliOptions = {}): Promise<number> {
  try {
    if (args.includes("-h") || args.includes("--help")) {
      io.out(BUILD_USAGE);
      return 0;
    }
    // The one flag without a value.
    const sources = !args.includes("--no-sources");
    args = args.filter((a) => a !== "--no-sources");
    const { opts, rest } = parseArgs(
      args,
      {
        "-e": "entrypoint",
        "--entrypoint": "entrypoint",
        "-o": "output",
        "--output": "output",
        "--revision": "revision",
        "--signing-key": "signing-key",
        "--signing-alg": "signing-alg",
        "--signing-key-id": "signing-key-id",
        "--signing-scope": "signing-scope",
        "--strict-builtin-errors": "strict",
        "--v0-compatible": "v0",
      },
      new Set(["strict", "v0"]),
    );
    if (rest.length === 0) throw new UsageError(`no policy directory given\n${BUILD_USAGE}`);
    const out = opts.get("output")?.at(-1) ?? "bundle.tar.gz";
    const signing = signingOptions(opts);
    const bundle = buildBundle(rest, {
      entrypoints: opts.get("entrypoint")?.map(normalizeEntrypoint),
      ...(options.defaultEntrypoints !== undefined ? { defaultEntrypoints: options.defaultEntrypoints } : {}),
      revision: opts.get("revision")?.at(-1),
      sources,
      strictBuiltinErrors: opts.has("strict"),
      ...(opts.has("v0") ? { v0Compatible: true } : {}),
    });
    if (signing) {
      const files = new Map([...bundle.files].map(([name, bytes]) => [name.replace(/^\/+/, ""), bytes]));
      bundle.files.set(`/${SIGNATURES_FILE}`, await signBundleFiles(files, signing));
    }
    await writeBundle(bundle, out);
    const eps = bundle.manifest.wasm.map((w) => w.entrypoint).join(", ");
    const signed = signing
      ? `; signed ${signing.algorithm}${signing.keyId !== undefined ? ` key id ${signing.keyId}` : ""}`
      : "";
    io.out(`wrote ${out} (revision ${bundle.manifest.revision}; entrypoints: ${eps}${signed})\n`);
    return 0;
  } catch (e) {
    return report(io, "build", e);
  }
}

/** `--signing-*` flags as signing options; undefined without `--signing-key`. */
function signingOptions(opts: Map<string, string[]>): BundleSigningOptions | undefined {
  const keyPath = opts.get("signing-key")?.at(-1);
  const alg = opts.get("signing-alg")?.at(-1);
  const keyId = opts.get("signing-key-id")?.at(-1);
  const scope = opts.get("signing-scope")?.at(-1);
  if (keyPath === undefined) {
    if (alg !== undefined || keyId !== undefined || scope !== undefined) {
      throw new UsageError("--signing-alg, --signing-key-id and --signing-scope need --signing-key");
    }
    return undefined;
  }
  const algorithm = (alg ?? "RS256") as SignatureAlgorithm;
  if (!(SIGNATURE_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw new UsageError(`--signing-alg: expected one of ${SIGNATURE_ALGORITHMS.join(", ")}, got "${alg}"`);
  }
  let material: Buffer;
  try {
    material = readFileSync(keyPath);
  } catch (e) {
    throw new UsageError(
      `--signing-key ${keyPath}: cannot read file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  let key;
  try {
    key = loadBundleKey(material, algorithm, "private");
  } catch (e) {
    throw new UsageError(`--signing-key ${keyPath}: not usable for ${algorithm}: ${(e as Error).message}`);
  }
  return { key, algorithm, ...(keyId !== undefined ? { keyId } : {}), ...(scope !== undefined ? { scope } : {}) };
}

/** Accepts `a/b`, `/a/b` and `data.a.b`. */
function normalizeEntrypoint(ep: string): string {
  if (ep.startsWith("data.")) return ep.slice(5).split(".").join("/");
  return ep.replace(/^\/+/, "");
}

function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    throw new UsageError(`${what} ${path}: cannot read file`);
  }
  try {
    return path.endsWith(".yaml") || path.endsWith(".yml") ? yamlData(text) : JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${what} ${path}: malformed: ${(e as Error).message}`);
  }
}

const EVAL_USAGE =
  "usage: arbiter eval -b BUNDLE -e ENTRYPOINT [-i input.json] [-d data.json]... [--strict-builtin-errors] [--v0-compatible]\n";

/** `arbiter eval`: evaluate one entrypoint of a bundle and print the result set. */
export async function runEval(args: string[], io: Io = stdio): Promise<number> {
  try {
    if (args.includes("-h") || args.includes("--help")) {
      io.out(EVAL_USAGE);
      return 0;
    }
    const { opts, rest } = parseArgs(
      args,
      {
        "-b": "bundle",
        "--bundle": "bundle",
        "-e": "entrypoint",
        "--entrypoint": "entrypoint",
        "-i": "input",
        "--input": "input",
        "-d": "data",
        "--data": "data",
        "--strict-builtin-errors": "strict",
        "--v0-compatible": "v0",
      },
      new Set(["strict", "v0"]),
    );
    if (rest.length > 0) throw new UsageError(`unexpected argument ${rest[0]}\n${EVAL_USAGE}`);
    const bundlePath = opts.get("bundle")?.at(-1);
    const entry = opts.get("entrypoint")?.at(-1);
    if (!bundlePath) throw new UsageError(`-b BUNDLE is required\n${EVAL_USAGE}`);
    if (!entry) throw new UsageError(`-e ENTRYPOINT is required\n${EVAL_USAGE}`);
    const entrypoint = normalizeEntrypoint(entry);
    const bundle = await readBundle(bundlePath);
    const data = bundle.data;
    for (const d of opts.get("data") ?? []) mergeOver(data, readJsonFile(d, "data file"), d);
    const inputPath = opts.get("input")?.at(-1);
    const input = inputPath === undefined ? undefined : readJsonFile(inputPath, "input file");
    let wasm = bundle.wasm;
    if (opts.has("strict")) {
      // Strictness is compiled into the module: rebuild it from the bundle's Rego sources.
      if (bundle.regoFiles.size === 0) {
        throw new UsageError(
          "--strict-builtin-errors needs the bundle's Rego sources (this bundle holds only policy.wasm)",
        );
      }
      const sources = [...bundle.regoFiles].map(([path, text]) => ({ path, text }));
      const v0 = opts.has("v0") || bundle.manifest.rego_version === 0;
      wasm = compile(sources, { entrypoints: [entrypoint], strictBuiltinErrors: true, v0Compatible: v0 }).wasm;
    }
    const policy = await loadCompiledPolicy(wasm, data);
    const known = Object.keys(policy.entrypoints);
    if (!known.includes(entrypoint)) {
      throw new UsageError(`entrypoint "${entrypoint}" is not in the bundle (it has: ${known.join(", ") || "none"})`);
    }
    const rs = policy.evaluate(input as never, entrypoint);
    io.out(`${JSON.stringify(rs, null, 2)}\n`);
    return 0;
  } catch (e) {
    return report(io, "eval", e);
  }
}

/** `-d` data wins over bundle data: objects merge recursively, anything else replaces. */
function mergeOver(target: Record<string, unknown>, doc: unknown, file: string): void {
  if (!isObject(doc)) throw new UsageError(`data file ${file}: must hold a JSON object`);
  for (const [k, v] of Object.entries(doc)) {
    const cur = Object.hasOwn(target, k) ? target[k] : undefined;
    if (isObject(cur) && isObject(v)) mergeOver(cur, v, file);
    else Object.defineProperty(target, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
}

interface TestRule {
  readonly entrypoint: string;
  readonly name: string;
  readonly file: string;
  readonly line: number;
}

const TEST_USAGE =
  "usage: arbiter test [--run REGEX] [--verbose] [--v0-compatible] [--coverage [--threshold PERCENT]] DIR...\n";

/**
 * `arbiter test`: compiles the policies with their `*_test.rego` files once, with every `test_*`
 * rule as an entrypoint, and evaluates each with no input (tests mock input and data with
 * `with`). Exit codes as `opa test`: 0 when all pass, 2 on a failure or evaluation error, 1 when
 * the policies do not compile or the command is misused. `--run REGEX` selects tests by their
 * full name (`data.pkg.test_x`), `--verbose` prints every result. `--coverage` prints OPA's JSON
 * coverage report on stdout instead of the results (which go to stderr), and with `--threshold P`
 * exits 2 when the coverage is below P percent, as `opa test --coverage --threshold` does.
 */
export async function runTest(args: string[], io: Io = stdio): Promise<number> {
  let tree;
  let sources: { path: string; text: string }[];
  let run: RegExp | undefined;
  let verbose = false;
  let v0 = false;
  let coverage = false;
  let threshold = 0;
  try {
    if (args.includes("-h") || args.includes("--help")) {
      io.out(TEST_USAGE);
      return 0;
    }
    const { opts, rest } = parseArgs(
      args,
      {
        "-r": "run",
        "--run": "run",
        "-v": "verbose",
        "--verbose": "verbose",
        "--v0-compatible": "v0",
        "--coverage": "coverage",
        "-c": "coverage",
        "--threshold": "threshold",
      },
      new Set(["verbose", "v0", "coverage"]),
    );
    if (rest.length === 0) throw new UsageError(`no policy directory given\n${TEST_USAGE}`);
    const pattern = opts.get("run")?.at(-1);
    if (pattern !== undefined) {
      try {
        run = new RegExp(pattern);
      } catch (e) {
        throw new UsageError(`--run ${pattern}: invalid regular expression: ${(e as Error).message}`);
      }
    }
    verbose = opts.has("verbose");
    coverage = opts.has("coverage");
    const t = opts.get("threshold")?.at(-1);
    if (t !== undefined) {
      threshold = Number(t);
      if (!coverage) throw new UsageError(`--threshold needs --coverage\n${TEST_USAGE}`);
      if (t.trim() === "" || !Number.isFinite(threshold) || threshold < 0 || threshold > 100) {
        throw new UsageError(`--threshold ${t}: not a percentage between 0 and 100`);
      }
    }
    tree = loadPolicyTree(rest);
    v0 = opts.has("v0") || manifestSaysV0(rest);
    sources = [...tree.rego, ...tree.tests].map((f) => ({ path: f.path, text: f.text }));
  } catch (e) {
    return report(io, "test", e) === 0 ? 0 : 1;
  }
  const tests: TestRule[] = [];
  const modules: Module[] = [];
  try {
    // A test defined in several places (same package, several files) is one rule: run it once.
    const seen = new Set<string>();
    const problems: Diagnostic[] = [];
    for (const src of sources) {
      let module;
      try {
        module = parseModule(src.path, src.text, { v0 }).module;
        modules.push(module);
      } catch (e) {
        if (!(e instanceof RegoCompileError)) throw e;
        problems.push(...e.diagnostics);
        continue;
      }
      for (const r of module.rules) {
        const key = [...module.pkg, r.name].join("/");
        if (!r.name.startsWith("test_") || r.ref || r.dynRef || r.kind !== "complete" || seen.has(key)) continue;
        if (run && !run.test(["data", ...module.pkg, r.name].join("."))) continue;
        seen.add(key);
        tests.push({
          entrypoint: [...module.pkg, r.name].join("/"),
          name: ["data", ...module.pkg, r.name].join("."),
          file: src.path,
          line: r.loc.line,
        });
      }
    }
    if (problems.length > 0) throw new RegoCompileError(problems);
  } catch (e) {
    io.err(`${(e as Error).message}\n`);
    return 1;
  }
  if (tests.length === 0) {
    io.err(`arbiter test: no test rules (test_*)${run ? ` matching ${run.source}` : ""} found in ${args.join(" ")}\n`);
    return 1;
  }
  let compiled;
  try {
    compiled = compile(sources, {
      entrypoints: [...new Set(tests.map((t) => t.entrypoint))],
      v0Compatible: v0,
      coverage,
      printStatements: true,
    });
    checkDataConflicts(sources, tree.data, v0);
  } catch (e) {
    if (e instanceof RegoCompileError) {
      io.err(`${e.message}\n`);
      return 1;
    }
    return report(io, "test", e) === 0 ? 0 : 1;
  }
  let passed = 0;
  let failed = 0;
  let policy: Awaited<ReturnType<typeof loadCompiledPolicy>> | undefined;
  const hits = new Set<number>();
  // print() output of the test being run: shown under a failing test, and under every test with --verbose.
  let printed: string[] = [];
  const extraBuiltins = {
    [COVER_BUILTIN]: (id: unknown) => {
      hits.add(Number(id));
      return true;
    },
    "arbiter.print": printBuiltin((line) => printed.push(line)),
  };
  // With --coverage, stdout is the JSON report alone; the results go to stderr.
  const say = coverage ? io.err : io.out;
  const showPrinted = () => {
    for (const line of printed) say(`  ${line}\n`);
  };
  for (const t of tests) {
    try {
      printed = [];
      policy ??= await loadCompiledPolicy(compiled.wasm, tree.data, { extraBuiltins });
      const rs = policy.evaluate(undefined as never, t.entrypoint) as { result: unknown }[];
      if (rs.length === 1 && rs[0]!.result === true) {
        passed++;
        if (verbose) {
          say(`PASS ${t.file}:${t.line}: ${t.name}\n`);
          showPrinted();
        }
      } else {
        failed++;
        say(`FAIL ${t.file}:${t.line}: ${t.name}\n`);
        showPrinted();
      }
    } catch (e) {
      failed++;
      // A fresh instance after an abort: a failed evaluation must leave nothing behind.
      policy = undefined;
      say(`ERROR ${t.file}:${t.line}: ${t.name}: ${e instanceof Error ? e.message : String(e)}\n`);
      showPrinted();
    }
  }
  say(`${passed} passed, ${failed} failed\n`);
  if (coverage) {
    const report = coverageReport(coverableLines(modules), compiled.ir.coverage ?? [], hits);
    io.out(`${JSON.stringify(report, null, 2)}\n`);
    if (report.coverage < threshold) {
      io.err(`Code coverage threshold not met: got ${report.coverage} instead of ${threshold}\n`);
      return 2;
    }
  }
  return failed > 0 ? 2 : 0;
}
