/**
 * `arbiter test --coverage`: which lines of the policies the tests evaluated, reported in the
 * shape of `opa test --coverage`.
 *
 * Compiled with `CompileOptions.coverage`, the planner puts a call to the host builtin
 * `arbiter.cover(id)` before each body expression it plans (the expression's line is reached)
 * and at the point where a rule body has succeeded (the head's line: the rule produced a
 * value), as OPA's coverage tracer marks an expression when it is evaluated and a rule head when
 * its body exits. The builtin answers `true` and changes nothing else. Without the option the
 * module has no such calls.
 *
 * Coverable lines come from the source, not from what was planned: the heads and the body
 * expressions (at any depth) of every rule, so a rule no test reaches (and that the compiler
 * therefore leaves out of the module) counts as not covered rather than vanishing from the total.
 */
import type { Loc, Module } from "./ast.ts";

/** The host builtin the instrumented module calls. Not a Rego name a policy can call. */
export const COVER_BUILTIN = "arbiter.cover";

export interface CoveragePoint {
  readonly file: string;
  readonly line: number;
}

/** Coverage points (file and line) by id, as the planner assigns them. */
export class CoverageTable {
  readonly points: CoveragePoint[] = [];
  readonly #ids = new Map<string, number>();

  id(loc: Loc): number {
    const key = `${loc.file}\0${loc.line}`;
    let id = this.#ids.get(key);
    if (id === undefined) {
      id = this.points.length;
      this.points.push({ file: loc.file, line: loc.line });
      this.#ids.set(key, id);
    }
    return id;
  }
}

interface Range {
  start: { row: number };
  end: { row: number };
}

export interface FileCoverage {
  covered?: Range[];
  not_covered?: Range[];
  covered_lines: number;
  not_covered_lines: number;
  coverage: number;
}

export interface CoverageReport {
  files: Record<string, FileCoverage>;
  covered_lines: number;
  not_covered_lines: number;
  coverage: number;
}

/**
 * Lines holding a rule head (and its `else`s) or a body expression, at any depth: in the rule's
 * body, and in comprehension and `every` bodies inside it.
 */
export function coverableLines(modules: readonly Module[]): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  const add = (loc: Loc) => {
    let lines = out.get(loc.file);
    if (!lines) out.set(loc.file, (lines = new Set()));
    lines.add(loc.line);
  };
  // Literals (and rules) are the AST objects with both a `kind` and a `loc`; terms have a `type`.
  const visit = (x: unknown): void => {
    if (Array.isArray(x)) {
      for (const v of x) visit(v);
    } else if (typeof x === "object" && x !== null) {
      const o = x as { kind?: unknown; loc?: Loc };
      if (typeof o.kind === "string" && o.loc) add(o.loc);
      for (const [k, v] of Object.entries(x)) if (k !== "loc") visit(v);
    }
  };
  for (const m of modules) {
    for (const r of m.rules) {
      add(r.loc);
      for (const e of r.elses) add(e.loc);
      visit(r);
    }
  }
  return out;
}

/** OPA's percentage: covered / all coverable lines, 2 decimals; 0 when there is nothing to cover. */
const percent = (covered: number, total: number) => (total === 0 ? 0 : Math.round((covered / total) * 10_000) / 100);

function ranges(lines: number[]): Range[] {
  const out: Range[] = [];
  for (const l of lines) {
    const last = out.at(-1);
    if (last && last.end.row === l - 1) last.end.row = l;
    else out.push({ start: { row: l }, end: { row: l } });
  }
  return out;
}

/**
 * The report for `hits` (ids of `points` the evaluations reached). A line is covered when any
 * point on it was reached; coverable lines with no point reached are not covered.
 */
export function coverageReport(
  coverable: ReadonlyMap<string, ReadonlySet<number>>,
  points: readonly CoveragePoint[],
  hits: ReadonlySet<number>,
): CoverageReport {
  const hitLines = new Map<string, Set<number>>();
  for (const id of hits) {
    const p = points[id];
    if (!p) continue;
    let lines = hitLines.get(p.file);
    if (!lines) hitLines.set(p.file, (lines = new Set()));
    lines.add(p.line);
  }
  const files: Record<string, FileCoverage> = {};
  let covered = 0;
  let notCovered = 0;
  for (const file of [...new Set([...coverable.keys(), ...hitLines.keys()])].sort()) {
    const hit = hitLines.get(file) ?? new Set<number>();
    const all = new Set([...(coverable.get(file) ?? []), ...hit]);
    const yes = [...all].filter((l) => hit.has(l)).sort((a, b) => a - b);
    const no = [...all].filter((l) => !hit.has(l)).sort((a, b) => a - b);
    const fc: FileCoverage = {
      covered_lines: yes.length,
      not_covered_lines: no.length,
      coverage: percent(yes.length, yes.length + no.length),
    };
    if (yes.length > 0) fc.covered = ranges(yes);
    if (no.length > 0) fc.not_covered = ranges(no);
    files[file] = fc;
    covered += yes.length;
    notCovered += no.length;
  }
  return {
    files,
    covered_lines: covered,
    not_covered_lines: notCovered,
    coverage: percent(covered, covered + notCovered),
  };
}
