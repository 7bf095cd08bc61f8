/**
 * `walk(x)`: every `[path, value]` pair of x, x itself first with path `[]`, then depth-first,
 * array elements in index order, object members in key order and set elements in Rego's order
 * with the element itself as the path key, as OPA's walk yields them. The parser turns the
 * relation forms (`walk(x, [p, v])`, `[p, v] := walk(x)`) into an iteration over this array
 * (parser-template.ts), so each pair unifies in turn. A HOST_TYPED_JSON builtin: sets cross the
 * boundary as sets, in the argument and in the answer.
 */
import type { HostBuiltin } from "./host-types.ts";
import { isTypedObject, RegoSet, typedIo, type TypedJson } from "./host-typed-json.ts";
import { compareCodePoints } from "../util/json-text.ts";

function walkPairs(x: TypedJson): TypedJson[] {
  const out: TypedJson[] = [];
  const visit = (path: TypedJson[], v: TypedJson): void => {
    out.push([path, v]);
    if (Array.isArray(v)) v.forEach((item, i) => visit([...path, BigInt(i)], item));
    else if (v instanceof RegoSet) for (const item of v.items) visit([...path, item], item);
    else if (isTypedObject(v)) for (const k of Object.keys(v).sort(compareCodePoints)) visit([...path, k], v[k]!);
  };
  visit([], x);
  return out;
}

/** The parser passes `[x]` (see `walkRelation`). */
export const walkHostBuiltins: Record<string, HostBuiltin> = {
  walk: typedIo((boxed) => walkPairs((boxed as TypedJson[])[0]!)),
};
