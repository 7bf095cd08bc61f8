/**
 * OPA's `object.subset(super, sub)` (issue #13, `topdown/subset.go`), quirks included: objects
 * recurse, arrays match as a contiguous run, a set under an array counts matches element by
 * element (duplicates in the array count twice). The top-level operand types come from
 * HOST_TYPED_ARGS (a set arrives as an array); a set nested deeper cannot reach the host (the
 * runtime refuses it with an error), so nested values are objects, arrays and scalars.
 */
import type { HostBuiltin } from "./host-types.ts";
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Rego equality on JSON values (key order ignored; 1 == 1.0 holds for JavaScript numbers). */
function canon(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canon).join(",")}]`;
  if (isObj(v))
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canon(v[k])}`)
      .join(",")}}`;
  return JSON.stringify(v);
}

function objectSubset(sup: Record<string, unknown>, sub: Record<string, unknown>): boolean {
  for (const [k, sv] of Object.entries(sub)) {
    if (!Object.hasOwn(sup, k)) return false;
    const pv = sup[k];
    if (canon(sv) === canon(pv)) continue;
    if (isObj(pv) && isObj(sv)) {
      if (!objectSubset(pv, sv)) return false;
      continue;
    }
    if (Array.isArray(pv) && Array.isArray(sv)) {
      if (!arraySubset(pv, sv)) return false;
      continue;
    }
    return false;
  }
  return true;
}

function arraySubset(sup: unknown[], sub: unknown[]): boolean {
  if (sub.length > sup.length) return false;
  const a = sup.map(canon);
  const b = sub.map(canon);
  for (let start = 0; start + b.length <= a.length; start++) {
    if (b.every((x, i) => a[start + i] === x)) return true;
  }
  return false;
}

function objectSubsetBuiltin(sup: unknown, sub: unknown, supType: unknown, subType: unknown): boolean | undefined {
  if (supType === "object" && subType === "object")
    return objectSubset(sup as Record<string, unknown>, sub as Record<string, unknown>);
  if (supType === "set" && subType === "set") {
    const have = new Set((sup as unknown[]).map(canon));
    return (sub as unknown[]).every((x) => have.has(canon(x)));
  }
  if (supType === "array" && subType === "array") return arraySubset(sup as unknown[], sub as unknown[]);
  if (supType === "array" && subType === "set") {
    const want = new Set((sub as unknown[]).map(canon));
    let unmatched = want.size;
    for (const x of sup as unknown[]) {
      if (want.has(canon(x))) unmatched--;
      if (unmatched === 0) return true;
    }
    return false;
  }
  return undefined; // OPA: both arguments must be of the same type or array and set
}

export const subsetHostBuiltins: Record<string, HostBuiltin> = {
  "object.subset": objectSubsetBuiltin,
};
