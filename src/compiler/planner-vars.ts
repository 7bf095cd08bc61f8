/**
 * Static analysis of terms for the planner: which variables a term uses, binds by iteration
 * (`xs[i]`) or by unification, and the JSON text of ground terms.
 */
import type { Body, Loc, Term } from "./ast.ts";

export interface VarUse {
  readonly name: string;
  readonly orig: string;
  readonly loc: Loc | undefined;
}

export function scalarJson(t: Term): string {
  switch (t.type) {
    case "null":
      return "null";
    case "boolean":
      return String(t.value);
    case "number":
      return t.text;
    case "string":
      return JSON.stringify(t.value);
    default:
      throw new Error(`not a scalar: ${t.type}`);
  }
}

/**
 * Ground: no variables. With `jsonOnly`, also JSON-shaped all the way down (string object
 * keys), so it can be planned as one JSON constant.
 */
export function isGround(t: Term, jsonOnly = false): boolean {
  switch (t.type) {
    case "null":
    case "boolean":
    case "number":
    case "string":
      return true;
    case "array":
      return t.items.every((i) => isGround(i, jsonOnly));
    case "object":
      return t.pairs.every(([k, v]) => (jsonOnly ? k.type === "string" : isGround(k)) && isGround(v, jsonOnly));
    default:
      return false;
  }
}

export const isJsonConst = (t: Term): boolean => isGround(t, true);

/** A default rule's value: ground apart from comprehensions, which OPA allows (closures). */
export function isDefaultValue(t: Term): boolean {
  switch (t.type) {
    case "arrayCompr":
    case "setCompr":
    case "objectCompr":
      return true;
    case "array":
    case "set":
      return t.items.every(isDefaultValue);
    case "object":
      return t.pairs.every(([k, v]) => isDefaultValue(k) && isDefaultValue(v));
    default:
      return isGround(t);
  }
}

/** `input`, `input.a.b`, `data.a.b` (string keys) -> root and path; undefined for anything else. */
export function withTarget(t: Term): { root: "input" | "data"; path: string[] } | undefined {
  const head = t.type === "ref" ? t.head : t;
  if (head.type !== "var" || (head.name !== "input" && head.name !== "data")) return undefined;
  const path: string[] = [];
  for (const p of t.type === "ref" ? t.path : []) {
    if (p.type !== "string") return undefined;
    path.push(p.value);
  }
  return { root: head.name, path };
}

/** Exact JSON text of a ground term (number literals keep their source text). */
export function groundJson(t: Term): string {
  switch (t.type) {
    case "array":
      return `[${t.items.map(groundJson).join(",")}]`;
    case "object":
      return `{${t.pairs.map(([k, v]) => `${JSON.stringify((k as { value: string }).value)}:${groundJson(v)}`).join(",")}}`;
    default:
      return scalarJson(t);
  }
}

/** Variables in pattern position: the term itself, or inside arrays / object values. */
export function patternVars(t: Term, out: string[] = []): string[] {
  if (t.type === "var" && t.name !== "input" && t.name !== "data") out.push(t.name);
  else if (t.type === "array") for (const i of t.items) patternVars(i, out);
  else if (t.type === "object") for (const [, v] of t.pairs) patternVars(v, out);
  return out;
}

/**
 * Unbound variables a reference iterates over (variable path elements and the variables of
 * composite keys), outside closures.
 */
export function refOutputs(t: Term, isBound: (n: string) => boolean, out = new Set<string>()): Set<string> {
  switch (t.type) {
    case "ref":
      refOutputs(t.head, isBound, out);
      for (const p of t.path) {
        if (p.type === "var" && p.name !== "input" && p.name !== "data" && !isBound(p.name)) out.add(p.name);
        else if (p.type === "array" || p.type === "object") {
          // A composite key (`s[[1, x]]`) is unified with each key of the collection.
          for (const v of patternVars(p)) if (!isBound(v)) out.add(v);
          refOutputs(p, isBound, out);
        } else refOutputs(p, isBound, out);
      }
      break;
    case "array":
    case "set":
      for (const i of t.items) refOutputs(i, isBound, out);
      break;
    case "object":
      for (const [a, b] of t.pairs) {
        refOutputs(a, isBound, out);
        refOutputs(b, isBound, out);
      }
      break;
    case "call":
      for (const a of t.args) refOutputs(a, isBound, out);
      break;
    default:
      break;
  }
  return out;
}

export function unifyOutputs(
  a: Term,
  b: Term,
  isBound: (n: string) => boolean,
  d: number,
  vd: ReadonlyMap<string, number>,
): Set<string> {
  const out = new Set<string>();
  const bound = (n: string) => isBound(n) || out.has(n);
  const ready = (t: Term) => termVars(t, d, vd).every((v) => bound(v.name));
  const go = (x: Term, y: Term) => {
    const pairs = pairUp(x, y);
    if (Array.isArray(pairs)) {
      // Two passes so that [x, y] = [1, x] style cross references settle.
      for (let pass = 0; pass < 2; pass++) for (const [p, q] of pairs) go(p, q);
      return;
    }
    if (ready(y)) for (const v of patternVars(x)) out.add(v);
    else if (ready(x)) for (const v of patternVars(y)) out.add(v);
  };
  go(a, b);
  return out;
}

/** All variables used in a term, including those captured by closures, declared at depth <= d. */
export function termVars(t: Term, d: number, vd: ReadonlyMap<string, number>, out: VarUse[] = []): VarUse[] {
  switch (t.type) {
    case "var":
      if (t.name !== "input" && t.name !== "data" && (vd.get(t.name) ?? 0) <= d)
        out.push({ name: t.name, orig: t.orig, loc: t.loc });
      break;
    case "ref":
      termVars(t.head, d, vd, out);
      for (const p of t.path) termVars(p, d, vd, out);
      break;
    case "array":
    case "set":
      for (const i of t.items) termVars(i, d, vd, out);
      break;
    case "object":
      for (const [a, b] of t.pairs) {
        termVars(a, d, vd, out);
        termVars(b, d, vd, out);
      }
      break;
    case "call":
      for (const a of t.args) termVars(a, d, vd, out);
      break;
    case "arrayCompr":
    case "setCompr":
      termVars(t.head, d, vd, out);
      out.push(...bodyVars(t.body, d, vd));
      break;
    case "objectCompr":
      termVars(t.key, d, vd, out);
      termVars(t.value, d, vd, out);
      out.push(...bodyVars(t.body, d, vd));
      break;
    default:
      break;
  }
  return out;
}

export function bodyVars(body: Body, d: number, vd: ReadonlyMap<string, number>): VarUse[] {
  const out: VarUse[] = [];
  for (const lit of body) {
    for (const w of lit.withs ?? []) if (!w.by) termVars(w.value, d, vd, out);
    switch (lit.kind) {
      case "expr":
        termVars(lit.term, d, vd, out);
        break;
      case "some":
        break;
      case "someIn":
        for (const t of [lit.key, lit.value, lit.collection]) if (t) termVars(t, d, vd, out);
        break;
      case "every":
        termVars(lit.domain, d, vd, out);
        out.push(...bodyVars(lit.body, d, vd));
        break;
    }
  }
  return out;
}

/**
 * The element pairs that unifying two array terms, or two object terms with constant scalar
 * keys, comes down to; "mismatch" when their shapes differ (they never unify); undefined when
 * the terms are not two such collections.
 */
export function pairUp(a: Term, b: Term): (readonly [Term, Term])[] | "mismatch" | undefined {
  if (a.type === "array" && b.type === "array") {
    if (a.items.length !== b.items.length) return "mismatch";
    return a.items.map((x, i) => [x, b.items[i]!] as const);
  }
  if (a.type !== "object" || b.type !== "object") return undefined;
  const scalar = (t: Term) => t.type === "string" || t.type === "number" || t.type === "boolean" || t.type === "null";
  if (![...a.pairs, ...b.pairs].every(([key]) => scalar(key))) return undefined;
  if (a.pairs.length !== b.pairs.length) return "mismatch";
  const other = new Map(b.pairs.map(([key, v]) => [scalarJson(key), v]));
  const out: (readonly [Term, Term])[] = [];
  for (const [key, v] of a.pairs) {
    const w = other.get(scalarJson(key));
    if (w === undefined) return "mismatch";
    out.push([v, w]);
  }
  return out;
}
