/**
 * Runner for OPA's own v1 conformance cases (`../shared/opa-conformance/v1/`, OPA's
 * `test/cases/testdata/v1`): each case is compiled with Arbiter's compiler, evaluated through
 * `@open-policy-agent/opa-wasm` with Arbiter's host builtins, and compared exactly with OPA's
 * expected answer. Used by `conformance.test.ts` (the CI gate) and runnable on its own:
 *
 *   npx tsx test/compiler/opa-suite.ts            # per-topic table and totals
 *   npx tsx test/compiler/opa-suite.ts --write    # rewrite the OPA part of conformance-failing.txt
 *
 * Classes: `pass`; `wrong` (an answer, or undefined, that differs from OPA's — never allowed);
 * `error` (evaluation fails where OPA answers, or a strict-builtin-error case answers undefined);
 * `refused` (the compiler refuses the case with a diagnostic); `crash` (anything else thrown by
 * the compiler or the loader — never allowed). Cases whose query is not a single
 * `data.path = var` cannot be expressed as an entrypoint and are counted as `inexpressible`.
 *
 * Numbers are compared exactly: the YAML is read with integers as BigInt and results are read
 * from the module's raw JSON output (the SDK's `JSON.parse` would round integers beyond 2^53).
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml, parseDocument } from "yaml";
import { compile, RegoCompileError } from "../../src/compiler/index.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";

const here = dirname(fileURLToPath(import.meta.url));

/** Where the suite lives relative to the repository (a sibling `shared/` folder). */
export const OPA_SUITE_DIR = resolve(here, "../../../shared/opa-conformance/v1");
export const FAILING_FILE = join(here, "conformance-failing.txt");
/** Lines of conformance-failing.txt that belong to this suite start with this prefix. */
export const OPA_PREFIX = "opa ";

export type CaseClass = "pass" | "wrong" | "error" | "refused" | "crash" | "inexpressible";

export interface OpaCase {
  /** `topic/file.yaml: note` (with ` #n` appended when a file repeats a note). */
  readonly key: string;
  readonly topic: string;
  readonly note: string;
  readonly query: string;
  readonly modules: readonly string[];
  readonly data?: unknown;
  /** Input as JSON text (exact integers), or undefined when the case has none. */
  readonly inputText?: string;
  /** The input was given as a Rego term (`input_term`). */
  readonly inputIsTerm?: boolean;
  readonly dataText?: string;
  readonly wantResult?: readonly Record<string, unknown>[];
  readonly wantError?: string;
  readonly wantErrorCode?: string;
  readonly strictError: boolean;
  readonly sortBindings: boolean;
  /** The case's input_term holds a set, which JSON input cannot carry. */
  readonly inputNotJson?: boolean;
}

export interface CaseOutcome {
  readonly key: string;
  readonly topic: string;
  readonly cls: CaseClass;
  readonly detail: string;
}

/** JSON text with BigInt integers written exactly and object keys sorted (a canonical form). */
export function canonicalJson(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number") {
    if (Number.isInteger(v) && Math.abs(v) < 1e21) return BigInt(v).toString();
    return JSON.stringify(v);
  }
  if (typeof v === "string" || typeof v === "boolean") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v instanceof Set) return `[${[...v].map(canonicalJson).sort().join(",")}]`;
  const obj = v as Record<string, unknown>;
  return `{${Object.keys(obj)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
    .join(",")}}`;
}

/** True when a Rego term's text holds a set (`set()` or braces without a top-level colon). */
export function holdsSet(term: string): boolean {
  const colon: boolean[] = [];
  const empty: boolean[] = [];
  for (let i = 0; i < term.length; i++) {
    const ch = term[i]!;
    if (ch === '"') {
      if (empty.length > 0) empty[empty.length - 1] = false;
      for (i++; i < term.length && term[i] !== '"'; i++) if (term[i] === "\\") i++;
    } else if (ch === "{") {
      colon.push(false);
      empty.push(true);
    } else if (ch === "}") {
      const c = colon.pop();
      if (empty.pop() === false && c === false) return true;
    } else if (ch === ":" && colon.length > 0) {
      colon[colon.length - 1] = true;
    } else if (!/\s|,/.test(ch) && empty.length > 0) {
      empty[empty.length - 1] = false;
    }
  }
  return /\bset\(\s*\)/.test(term);
}

/** Parses JSON keeping integers exact (as BigInt); YAML 1.2 core reads JSON. */
function parseExact(text: string): unknown {
  return parseYaml(text, { intAsBigInt: true, schema: "core" });
}

/** `data.a.b.c = x` or `x = data.a.b.c` -> `{ path: "a/b/c", variable: "x" }`. */
export function entrypointOf(query: string): { path: string; variable: string } | undefined {
  const q = query.trim();
  const ref = String.raw`data((?:\.[A-Za-z_][A-Za-z0-9_]*)+)`;
  const v = String.raw`([A-Za-z_][A-Za-z0-9_]*)`;
  let m = new RegExp(`^${ref}\\s*=\\s*${v}$`).exec(q);
  // `input` and `data` are documents, not variables: `data.x.p = input` is a check, not an entrypoint.
  if (m && (m[2] === "input" || m[2] === "data")) return undefined;
  if (m) return { path: m[1]!.slice(1).split(".").join("/"), variable: m[2]! };
  m = new RegExp(`^${v}\\s*=\\s*${ref}$`).exec(q);
  if (m && (m[1] === "input" || m[1] === "data")) return undefined;
  if (m) return { path: m[2]!.slice(1).split(".").join("/"), variable: m[1]! };
  return undefined;
}

/** True when a value read with `mapAsMap` has only string object keys (so it is JSON). */
function jsonShaped(v: unknown): boolean {
  if (v instanceof Map) return [...v].every(([k, x]) => typeof k === "string" && jsonShaped(x));
  if (Array.isArray(v)) return v.every(jsonShaped);
  return true;
}

/** Reads every case of the suite; throws on a malformed file (a broken copy is not a pass). */
export function loadOpaSuite(dir = OPA_SUITE_DIR): OpaCase[] {
  const out: OpaCase[] = [];
  for (const topic of readdirSync(dir).sort()) {
    const tdir = join(dir, topic);
    let files: string[];
    try {
      files = readdirSync(tdir)
        .filter((f) => f.endsWith(".yaml"))
        .sort();
    } catch {
      continue; // NOTICE.md and other plain files
    }
    for (const f of files) {
      const text = readFileSync(join(tdir, f), "utf8");
      // logLevel: a few cases have non-string object keys in data (refused or inexpressible anyway).
      const doc = parseDocument(text, { intAsBigInt: true, logLevel: "error" });
      if (doc.errors.length > 0) throw new Error(`${topic}/${f}: ${doc.errors[0]!.message}`);
      const js = doc.toJS() as { cases?: Record<string, unknown>[] };
      if (!js || !Array.isArray(js.cases)) throw new Error(`${topic}/${f}: expected a "cases" list`);
      const seen = new Map<string, number>();
      for (const c of js.cases) {
        const note = String(c.note);
        const n = (seen.get(note) ?? 0) + 1;
        seen.set(note, n);
        const key = `${relative(dir, join(tdir, f))}: ${note}${n > 1 ? ` #${n}` : ""}`;
        let inputText: string | undefined;
        let inputNotJson = false;
        if (c.input_term !== undefined) {
          // A Rego term; JSON-shaped except for a few with sets (`{"foo": {{1}}}`, `{"b"}`), which
          // YAML reads as maps (with non-string keys, or null values): not expressible as JSON input.
          const term = parseDocument(String(c.input_term), {
            intAsBigInt: true,
            schema: "core",
            logLevel: "error",
          }).toJS({ mapAsMap: true });
          inputNotJson = holdsSet(String(c.input_term)) || !jsonShaped(term);
          inputText = canonicalJson(parseExact(String(c.input_term)));
        } else if (c.input !== undefined) {
          inputText = canonicalJson(c.input);
        }
        out.push({
          key,
          topic,
          note,
          query: String(c.query),
          modules: (c.modules as string[] | undefined) ?? [],
          data: c.data,
          dataText: c.data === undefined ? undefined : canonicalJson(c.data),
          inputText,
          inputIsTerm: c.input_term !== undefined,
          wantResult: c.want_result as Record<string, unknown>[] | undefined,
          wantError: c.want_error as string | undefined,
          wantErrorCode: c.want_error_code as string | undefined,
          strictError: c.strict_error === true,
          inputNotJson,
          sortBindings: c.sort_bindings === true,
        });
      }
    }
  }
  return out;
}

/** OPA's order of JSON-shaped values: null < boolean < number < string < array < object. */
export function compareValues(a: unknown, b: unknown): number {
  const rank = (v: unknown): number =>
    v === null || v === undefined
      ? 0
      : typeof v === "boolean"
        ? 1
        : typeof v === "number" || typeof v === "bigint"
          ? 2
          : typeof v === "string"
            ? 3
            : Array.isArray(v)
              ? 4
              : 5;
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  switch (ra) {
    case 0:
      return 0;
    case 1:
      return Number(a) - Number(b);
    case 2: {
      const x = a as number | bigint;
      const y = b as number | bigint;
      return x < y ? -1 : x > y ? 1 : 0;
    }
    case 3:
      return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0;
    case 4: {
      const x = a as unknown[];
      const y = b as unknown[];
      for (let i = 0; i < Math.min(x.length, y.length); i++) {
        const d = compareValues(x[i], y[i]);
        if (d !== 0) return d;
      }
      return x.length - y.length;
    }
    default: {
      const x = a as Record<string, unknown>;
      const y = b as Record<string, unknown>;
      const kx = Object.keys(x).sort();
      const ky = Object.keys(y).sort();
      for (let i = 0; i < Math.min(kx.length, ky.length); i++) {
        const d = compareValues(kx[i], ky[i]) || compareValues(x[kx[i]!], y[ky[i]!]);
        if (d !== 0) return d;
      }
      return kx.length - ky.length;
    }
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

type Loaded = Awaited<ReturnType<typeof loadCompiledPolicy>>;

/**
 * Evaluates through the SDK's own ABI 1.2 path but returns the raw JSON text, so integers the
 * runtime prints exactly are compared exactly.
 */
function evaluateRaw(policy: Loaded, inputText: string | undefined, entrypoint: string): string {
  const p = policy as unknown as {
    mem: WebAssembly.Memory;
    wasmInstance: WebAssembly.Instance;
    dataAddr: number;
    dataHeapPtr: number;
    entrypoints: Record<string, number>;
  };
  const buf = inputText === undefined ? undefined : new TextEncoder().encode(inputText);
  const inputAddr = buf ? p.dataHeapPtr : 0;
  const len = buf ? buf.byteLength : 0;
  if (buf) {
    const delta = inputAddr + len - p.mem.buffer.byteLength;
    if (delta > 0) p.mem.grow(Math.ceil(delta / 65536));
    new Uint8Array(p.mem.buffer).set(buf, inputAddr);
  }
  const exports = p.wasmInstance.exports as Record<string, (...a: number[]) => number>;
  const ret = exports.opa_eval!(0, p.entrypoints[entrypoint]!, p.dataAddr, inputAddr, len, p.dataHeapPtr + len, 0);
  const mem = new Uint8Array(p.mem.buffer);
  let end = ret;
  while (mem[end] !== 0) end++;
  return new TextDecoder().decode(mem.subarray(ret, end));
}

export interface RunOptions {
  /** Evaluate `strict_error` cases with strict builtin errors (OPA's harness does); default true. */
  readonly strict?: boolean;
}

/** Runs one case and classifies the outcome; never throws. */
export async function runOpaCase(c: OpaCase, options: RunOptions = {}): Promise<CaseOutcome> {
  const out = (cls: CaseClass, detail: string): CaseOutcome => ({
    key: c.key,
    topic: c.topic,
    cls,
    detail: detail.split("\n")[0]!.slice(0, 200),
  });
  const ep = entrypointOf(c.query);
  if (!ep) return out("inexpressible", `query ${JSON.stringify(c.query)} is not data.path = var`);
  if (c.inputNotJson) return out("inexpressible", "input_term holds a set, which JSON input cannot carry");
  const sources = c.modules.map((text, i) => ({ path: `mod${i}.rego`, text }));
  let wasm: Uint8Array;
  try {
    // As OPA's harness: strict builtin errors only for the cases that ask for them.
    wasm = compile(sources, {
      entrypoints: [ep.path],
      strictBuiltinErrors: options.strict !== false && c.strictError,
    }).wasm;
  } catch (err) {
    if (err instanceof RegoCompileError) return out("refused", messageOf(err));
    return out("crash", `${(err as Error)?.name ?? "throw"}: ${messageOf(err)}`);
  }
  let policy: Loaded;
  try {
    policy = await loadCompiledPolicy(wasm);
    if (c.dataText !== undefined) policy.setData(new TextEncoder().encode(c.dataText).buffer as never);
  } catch (err) {
    if (c.wantResult === undefined) return out("pass", `load error as expected: ${messageOf(err)}`);
    return out("error", `load: ${messageOf(err)}`);
  }
  let raw: string;
  try {
    raw = evaluateRaw(policy, c.inputText, ep.path);
  } catch (err) {
    if (c.wantResult === undefined) return out("pass", `error as expected: ${messageOf(err)}`);
    return out("error", messageOf(err));
  }
  const rs = parseExact(raw) as { result: unknown }[];
  // sort_bindings: OPA's harness treats array values of the bindings as sets (order-free).
  const norm = (v: unknown): unknown => (c.sortBindings && Array.isArray(v) ? [...v].sort(compareValues) : v);
  const got = rs.map((r) => canonicalJson({ [ep.variable]: norm(r.result) }));
  if (c.wantResult === undefined) {
    if (c.strictError && got.length === 0)
      return out("error", `undefined where strict builtin errors give: ${c.wantError ?? c.wantErrorCode}`);
    return out(
      "wrong",
      `got ${got.join(" ") || "undefined"}, want error ${c.wantErrorCode ?? ""}: ${c.wantError ?? ""}`,
    );
  }
  const want = c.wantResult.map((b) =>
    canonicalJson(Object.fromEntries(Object.entries(b).map(([k, v]) => [k, norm(v)]))),
  );
  const same = c.sortBindings
    ? canonicalJson([...got].sort()) === canonicalJson([...want].sort())
    : got.join("\n") === want.join("\n");
  if (same) return out("pass", "");
  return out("wrong", `got ${got.join(" ") || "undefined"}, want ${want.join(" ") || "undefined"}`);
}

export interface SuiteReport {
  readonly outcomes: CaseOutcome[];
  readonly table: string;
  readonly totals: Record<CaseClass, number>;
}

const CLASSES: CaseClass[] = ["pass", "wrong", "error", "refused", "crash", "inexpressible"];

/** Per-topic table (topics with any non-pass first) and totals, as printed by the runner. */
export function formatReport(outcomes: readonly CaseOutcome[]): SuiteReport {
  const byTopic = new Map<string, Record<CaseClass, number>>();
  const totals = Object.fromEntries(CLASSES.map((k) => [k, 0])) as Record<CaseClass, number>;
  for (const o of outcomes) {
    let row = byTopic.get(o.topic);
    if (!row) byTopic.set(o.topic, (row = Object.fromEntries(CLASSES.map((k) => [k, 0])) as Record<CaseClass, number>));
    row[o.cls]++;
    totals[o.cls]++;
  }
  const head = ["topic", ...CLASSES.map((k) => (k === "inexpressible" ? "inexpr" : k))];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`];
  for (const [topic, row] of [...byTopic].sort((a, b) => a[0].localeCompare(b[0]))) {
    lines.push(`| ${topic} | ${CLASSES.map((k) => row[k]).join(" | ")} |`);
  }
  lines.push(`| **total** | ${CLASSES.map((k) => `**${totals[k]}**`).join(" | ")} |`);
  const expressible = outcomes.length - totals.inexpressible;
  const pct = expressible === 0 ? 0 : (100 * totals.pass) / expressible;
  lines.push(
    "",
    `${totals.pass} of ${expressible} expressible cases pass (${pct.toFixed(1)}%); ${totals.wrong} wrong, ${totals.error} error, ${totals.refused} refused, ${totals.crash} crash; ${totals.inexpressible} inexpressible of ${outcomes.length}.`,
  );
  return { outcomes: [...outcomes], table: lines.join("\n"), totals };
}

/** The OPA part of conformance-failing.txt: key -> class. */
export function loadOpaFailing(file = FAILING_FILE): Map<string, string> {
  const list = new Map<string, string>();
  if (!existsSync(file)) return list;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.startsWith(OPA_PREFIX)) continue;
    const t = line.slice(OPA_PREFIX.length);
    const cut = t.lastIndexOf(" # ");
    const key = (cut >= 0 ? t.slice(0, cut) : t).trim();
    const cls =
      cut >= 0
        ? t
            .slice(cut + 3)
            .trim()
            .split(":")[0]!
            .trim()
        : "";
    list.set(key, cls);
  }
  return list;
}

/** Runs every case in order (one compile and one wasm instance per case). */
export async function runOpaSuite(cases: readonly OpaCase[], options: RunOptions = {}): Promise<CaseOutcome[]> {
  const outcomes: CaseOutcome[] = [];
  for (const c of cases) outcomes.push(await runOpaCase(c, options));
  return outcomes;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (!existsSync(OPA_SUITE_DIR)) {
    console.log(`OPA conformance suite not found at ${OPA_SUITE_DIR}`);
    return;
  }
  const only = args.find((a) => !a.startsWith("--"));
  let cases = loadOpaSuite();
  if (only) cases = cases.filter((c) => c.key.startsWith(only));
  const t0 = performance.now();
  const outcomes = await runOpaSuite(cases, { strict: true });
  const ms = performance.now() - t0;
  const report = formatReport(outcomes);
  console.log(report.table);
  console.log(`${outcomes.length} cases in ${(ms / 1000).toFixed(1)} s`);
  if (args.includes("--list")) {
    for (const o of outcomes) if (o.cls !== "pass") console.log(`${o.cls}\t${o.key}\t${o.detail}`);
  }
  if (args.includes("--write")) {
    const { writeFileSync } = await import("node:fs");
    const kept = existsSync(FAILING_FILE)
      ? readFileSync(FAILING_FILE, "utf8")
          .split("\n")
          .filter(
            (l) => !l.startsWith(OPA_PREFIX) && !l.startsWith("# OPA suite") && !l.startsWith("# Regenerate with"),
          )
      : [];
    while (kept.length > 0 && kept.at(-1) === "") kept.pop();
    const lines = outcomes
      .filter((o) => o.cls === "error" || o.cls === "refused")
      .map((o) => `${OPA_PREFIX}${o.key} # ${o.cls}: ${o.detail.replace(/\s+/g, " ")}`);
    writeFileSync(
      FAILING_FILE,
      [
        ...kept,
        "",
        "# OPA suite (../shared/opa-conformance/v1): `opa topic/file.yaml: note # class: first line of the problem`.",
        "# Regenerate with `npx tsx test/compiler/opa-suite.ts --write`; wrong answers and crashes are never listed.",
        ...lines,
        "",
      ].join("\n"),
    );
    console.log(`wrote ${lines.length} lines to ${FAILING_FILE}`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
