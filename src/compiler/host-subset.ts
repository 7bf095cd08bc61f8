/**
 * OPA's `object.subset(super, sub)` (issue #13, `topdown/subset.go`), quirks included: objects
 * recurse, nested sets match element by element (no recursion into them), arrays match as a
 * contiguous run, a set under an array counts matches element by element (duplicates in the
 * array count twice). A HOST_TYPED_JSON builtin: sets arrive as RegoSet at any depth.
 */
import type { HostBuiltin } from "./host-types.ts";
import { builtinError } from "./host-exact-json.ts";
import { canonTyped, isTypedObject, RegoSet, typedIo, type TypedJson } from "./host-typed-json.ts";

type Obj = { [k: string]: TypedJson };

function objectSubset(sup: Obj, sub: Obj): boolean {
  for (const [k, sv] of Object.entries(sub)) {
    if (!Object.hasOwn(sup, k)) return false;
    const pv = sup[k]!;
    if (canonTyped(sv) === canonTyped(pv)) continue;
    if (isTypedObject(pv) && isTypedObject(sv)) {
      if (!objectSubset(pv, sv)) return false;
      continue;
    }
    if (pv instanceof RegoSet && sv instanceof RegoSet) {
      if (!setSubset(pv, sv)) return false;
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

/** OPA does not recurse into set elements: each element of sub must be one of super's. */
function setSubset(sup: RegoSet, sub: RegoSet): boolean {
  const have = new Set(sup.items.map(canonTyped));
  return sub.items.every((x) => have.has(canonTyped(x)));
}

function arraySubset(sup: readonly TypedJson[], sub: readonly TypedJson[]): boolean {
  if (sub.length > sup.length) return false;
  const a = sup.map(canonTyped);
  const b = sub.map(canonTyped);
  for (let start = 0; start + b.length <= a.length; start++) {
    if (b.every((x, i) => a[start + i] === x)) return true;
  }
  return false;
}

function objectSubsetBuiltin(sup: TypedJson, sub: TypedJson): boolean {
  if (isTypedObject(sup) && isTypedObject(sub)) return objectSubset(sup, sub);
  if (sup instanceof RegoSet && sub instanceof RegoSet) return setSubset(sup, sub);
  if (Array.isArray(sup) && Array.isArray(sub)) return arraySubset(sup, sub);
  if (Array.isArray(sup) && sub instanceof RegoSet) {
    // OPA's Until loop: true only once every element of sub has been seen (an empty sub set
    // against an empty array is false).
    const want = new Set(sub.items.map(canonTyped));
    let unmatched = want.size;
    for (const x of sup) {
      if (want.has(canonTyped(x))) unmatched--;
      if (unmatched === 0) return true;
    }
    return false;
  }
  return builtinError("object.subset", "both arguments object.subset must be of the same type or array and set");
}

export const subsetHostBuiltins: Record<string, HostBuiltin> = {
  "object.subset": typedIo(objectSubsetBuiltin),
};
