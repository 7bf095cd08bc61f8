/**
 * Rego conformance table for Arbiter's own compiler.
 *
 * Every case in `test/compiler/cases/*.yaml` is compiled with `compile()`, loaded through
 * `@open-policy-agent/opa-wasm` and evaluated; the expected values were derived from OPA's
 * language reference and builtin documentation (and OPA's own `test/cases/testdata`), never from
 * this compiler's output. Known gaps are data: constructs we do not support are asserted as exact
 * compile errors in `unsupported.yaml`, and cases we still get wrong are listed in
 * `conformance-failing.txt`, where each one must still fail (the list only shrinks).
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { compile } from "../../src/compiler/index.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";
import { formatReport, loadOpaFailing, loadOpaSuite, OPA_PREFIX, OPA_SUITE_DIR, runOpaSuite } from "./opa-suite.ts";

const here = dirname(fileURLToPath(import.meta.url));
const casesDir = join(here, "cases");
const failingFile = join(here, "conformance-failing.txt");

/** The fewest cases the table may hold (failing ones included) and the fewest that must pass. */
const MIN_CASES = 150;
const MIN_PASSING = 150;

interface Case {
  readonly note: string;
  readonly modules: readonly string[];
  readonly entrypoint: string;
  readonly data?: unknown;
  readonly input?: unknown;
  readonly want_result?: unknown;
  readonly want_compile_error?: string;
  readonly want_eval_error?: string;
  readonly reason?: string;
}

interface LoadedCase extends Case {
  readonly file: string;
  readonly key: string;
}

const CASE_KEYS = new Set([
  "note",
  "modules",
  "entrypoint",
  "data",
  "input",
  "want_result",
  "want_compile_error",
  "want_eval_error",
  "reason",
]);

/** Reads and validates every case file; a malformed case is a test failure, not a silent skip. */
function loadCases(): LoadedCase[] {
  const files = readdirSync(casesDir)
    .filter((f) => f.endsWith(".yaml"))
    .sort();
  const out: LoadedCase[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    const doc = parseYaml(readFileSync(join(casesDir, file), "utf8")) as { cases?: unknown };
    if (!doc || !Array.isArray(doc.cases)) throw new Error(`${file}: expected a top-level "cases" list`);
    for (const [i, raw] of doc.cases.entries()) {
      const c = raw as Record<string, unknown>;
      const where = `${file}: case #${i + 1}`;
      for (const k of Object.keys(c)) if (!CASE_KEYS.has(k)) throw new Error(`${where}: unknown field "${k}"`);
      if (typeof c.note !== "string" || c.note === "") throw new Error(`${where}: "note" must be a non-empty string`);
      if (!Array.isArray(c.modules) || c.modules.length === 0 || !c.modules.every((m) => typeof m === "string")) {
        throw new Error(`${where} (${c.note}): "modules" must be a non-empty list of strings`);
      }
      if (typeof c.entrypoint !== "string") throw new Error(`${where} (${c.note}): "entrypoint" must be a string`);
      const wants = ["want_result", "want_compile_error", "want_eval_error"].filter((k) => k in c);
      if (wants.length !== 1)
        throw new Error(`${where} (${c.note}): exactly one of want_result, want_compile_error, want_eval_error`);
      if (file === "unsupported.yaml" && (typeof c.reason !== "string" || !("want_compile_error" in c))) {
        throw new Error(`${where} (${c.note}): unsupported cases need "reason" and "want_compile_error"`);
      }
      const key = `${file}: ${c.note}`;
      if (seen.has(key)) throw new Error(`${key}: duplicate note`);
      seen.add(key);
      out.push({ ...(c as unknown as Case), file, key });
    }
  }
  return out;
}

/** `file.yaml: note # reason` lines; blank lines and lines starting with # are comments. */
function loadFailing(): Map<string, string> {
  const list = new Map<string, string>();
  let text = "";
  try {
    text = readFileSync(failingFile, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  for (const line of text.split("\n")) {
    const t = line.trim();
    // Lines for OPA's own suite are read by opa-suite.ts.
    if (t === "" || t.startsWith("#") || line.startsWith(OPA_PREFIX)) continue;
    const cut = t.lastIndexOf(" # ");
    const key = cut >= 0 ? t.slice(0, cut).trim() : t;
    list.set(key, cut >= 0 ? t.slice(cut + 3).trim() : "");
  }
  return list;
}

/** opa-wasm throws bare strings; make every throwable readable. */
function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Runs one case; throws (an assertion error) when the outcome differs from the expectation. */
async function runCase(c: Case): Promise<void> {
  const sources = c.modules.map((text, i) => ({ path: i === 0 ? "test.rego" : `test${i + 1}.rego`, text }));
  let compiled: ReturnType<typeof compile>;
  try {
    compiled = compile(sources, { entrypoints: [c.entrypoint] });
  } catch (err) {
    if (c.want_compile_error === undefined) throw new Error(`unexpected compile error: ${messageOf(err)}`);
    expect((err as Error).name, "compile errors are RegoCompileError").toBe("RegoCompileError");
    expect(messageOf(err).split("\n")[0]).toBe(c.want_compile_error);
    return;
  }
  if (c.want_compile_error !== undefined) {
    throw new Error(`expected compile error ${JSON.stringify(c.want_compile_error)}, but it compiled`);
  }
  expect(compiled.entrypoints).toContain(c.entrypoint);
  const policy = await loadCompiledPolicy(compiled.wasm, c.data ?? {});
  let result: unknown;
  let again: unknown;
  try {
    result = policy.evaluate(c.input, c.entrypoint);
    // A second evaluation on the same instance must give the same answer: the heap is reset
    // between evaluations and memoized rule values must not leak from one to the next.
    again = policy.evaluate(c.input, c.entrypoint);
  } catch (err) {
    if (c.want_eval_error === undefined) throw new Error(`unexpected evaluation error: ${messageOf(err)}`);
    // loadCompiledPolicy turns the SDK's thrown strings into Errors (the library boundary).
    expect(err, "evaluation errors are Errors").toBeInstanceOf(Error);
    expect(messageOf(err)).toContain(c.want_eval_error);
    // An abort must leave the instance usable: the same evaluation fails the same way again.
    expect(() => policy.evaluate(c.input, c.entrypoint), "evaluation after an abort").toThrow(c.want_eval_error);
    return;
  }
  if (c.want_eval_error !== undefined) {
    throw new Error(`expected evaluation error ${JSON.stringify(c.want_eval_error)}, got ${JSON.stringify(result)}`);
  }
  // Arrays (and so sets, which OPA serializes as sorted arrays) compare in order; object keys do not.
  expect(result).toStrictEqual(c.want_result);
  expect(again, "second evaluation of the same instance").toStrictEqual(result);
}

const cases = loadCases();
const failing = loadFailing();

describe("Rego conformance table", () => {
  it(`holds at least ${MIN_CASES} cases, at least ${MIN_PASSING} of them expected to pass`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(MIN_CASES);
    expect(
      cases.length - [...failing.keys()].filter((k) => cases.some((c) => c.key === k)).length,
    ).toBeGreaterThanOrEqual(MIN_PASSING);
  });

  it("lists in conformance-failing.txt only cases that exist", () => {
    const keys = new Set(cases.map((c) => c.key));
    expect([...failing.keys()].filter((k) => !keys.has(k))).toEqual([]);
  });

  for (const file of [...new Set(cases.map((c) => c.file))]) {
    describe(file, () => {
      for (const c of cases.filter((x) => x.file === file)) {
        if (failing.has(c.key)) {
          it(`${c.note} [known failing: ${failing.get(c.key)}]`, async () => {
            let passed = false;
            try {
              await runCase(c);
              passed = true;
            } catch {
              // Expected: this case is listed as still failing.
            }
            if (passed) throw new Error(`"${c.key}" passes now: remove it from the failing list`);
          });
        } else {
          it(c.note, async () => {
            await runCase(c);
          });
        }
      }
    });
  }
});

/**
 * OPA's own v1 conformance suite (see opa-suite.ts). CI fails on any wrong answer or crash at
 * all, on any case failing outside the `opa ...` lines of conformance-failing.txt (or failing
 * with another class than listed), and on a listed case that passes now.
 */
describe("OPA v1 conformance suite", () => {
  if (!existsSync(OPA_SUITE_DIR)) {
    console.log(
      `OPA conformance suite not found at ${OPA_SUITE_DIR}: skipped (see ../shared/opa-conformance/NOTICE.md)`,
    );
    it.skip("OPA v1 conformance suite (folder absent)", () => {});
    return;
  }
  it("answers like OPA, and fails only where conformance-failing.txt says", async () => {
    const cases = loadOpaSuite();
    expect(cases.length, "the suite's case count (NOTICE.md)").toBeGreaterThanOrEqual(2000);
    const t0 = performance.now();
    const outcomes = await runOpaSuite(cases);
    const report = formatReport(outcomes);
    console.log(`${report.table}\n(${outcomes.length} cases in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    const never = outcomes
      .filter((o) => o.cls === "wrong" || o.cls === "crash")
      .map((o) => `${o.cls}: ${o.key}: ${o.detail}`);
    expect(never, "wrong answers and crashes are never allowed").toEqual([]);
    const listed = loadOpaFailing();
    const keys = new Set(outcomes.map((o) => o.key));
    expect(
      [...listed.keys()].filter((k) => !keys.has(k)),
      "listed cases that do not exist",
    ).toEqual([]);
    const unexpected: string[] = [];
    for (const o of outcomes) {
      const want = listed.get(o.key);
      if (o.cls === "pass" || o.cls === "inexpressible") {
        if (want !== undefined) unexpected.push(`passes now, remove from the list: ${o.key}`);
      } else if (want !== o.cls) {
        unexpected.push(`${o.cls}${want ? ` (listed as ${want})` : ""}: ${o.key}: ${o.detail}`);
      }
    }
    expect(
      unexpected,
      "regenerate with `npx tsx test/compiler/opa-suite.ts --write` after a deliberate change",
    ).toEqual([]);
  }, 300_000);
});
