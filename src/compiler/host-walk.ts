/**
 * `walk(x)`: every `[path, value]` pair of x, x itself first with path `[]`, then depth-first,
 * array elements in index order and object members in key order, as OPA's walk yields them. The
 * parser turns the relation forms (`walk(x, [p, v])`, `[p, v] := walk(x)`) into an iteration
 * over this array (parser-template.ts), so each pair unifies in turn. Values reach the host as JSON,
 * so walking a value that holds a set fails the evaluation instead of walking it as an array.
 */
import type { HostBuiltin } from "./host-types.ts";

function walkPairs(x: unknown): unknown[] {
  const out: unknown[] = [];
  const visit = (path: unknown[], v: unknown): void => {
    out.push([path, v]);
    if (Array.isArray(v)) v.forEach((item, i) => visit([...path, i], item));
    else if (v !== null && typeof v === "object") {
      const obj = v as Record<string, unknown>;
      for (const k of Object.keys(obj).sort()) visit([...path, k], obj[k]);
    }
  };
  visit([], x);
  return out;
}

/** The parser passes `[x]` (see `walkRelation`), so a set anywhere in x fails at the boundary. */
export const walkHostBuiltins: Record<string, HostBuiltin> = { walk: (boxed: unknown[]) => walkPairs(boxed[0]) };
