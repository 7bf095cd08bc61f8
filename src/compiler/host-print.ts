/**
 * `print(...)` output (OPA's `internal.print`), for `arbiter test`. With print statements kept
 * (CompileOptions.printStatements), `print(a, b)` becomes `internal.print([{v | v := a}, {v | v := b}])`,
 * as OPA's compiler rewrites it: each operand is the set of its values, so an undefined one is
 * the empty set. One line is printed for each combination of values, operands joined by a space:
 * a string as is, any other value in Rego's notation, an empty set as `<undefined>` (OPA's
 * builtinPrint). In the sidecar print statements are erased (erase-print.ts); a policy that calls
 * `internal.print` itself gets this builtin answering true and printing nothing. Modules from
 * Arbiter's compiler import it as `arbiter.print` (HOST_IMPORT_NAMES): OPA's name stays free for
 * a module built by `opa build`, which passes plain values (policy-instance.ts).
 */
import { regoText } from "./host-sprintf.ts";
import { RegoSet, type TypedJson, typedIo } from "./host-typed-json.ts";
import type { HostBuiltin } from "./host-types.ts";

/** Lines one call prints at most (a cross product of operands with many values grows fast). */
export const MAX_PRINT_LINES = 1000;

/** The lines `internal.print(operands)` prints. */
export function printLines(operands: TypedJson): string[] {
  if (!Array.isArray(operands)) return [];
  const texts = operands.map((o) => {
    const values = o instanceof RegoSet ? o.items : [o];
    return values.length === 0 ? ["<undefined>"] : values.map((v) => (typeof v === "string" ? v : regoText(v)));
  });
  let lines = [""];
  texts.forEach((options, i) => {
    const next: string[] = [];
    for (const line of lines)
      for (const t of options) {
        if (next.length === MAX_PRINT_LINES) break;
        next.push(i === 0 ? t : `${line} ${t}`);
      }
    lines = next;
  });
  return lines;
}

/** The builtin, printing each line to `sink`. */
export function printBuiltin(sink: (line: string) => void): HostBuiltin {
  return typedIo((operands) => {
    for (const line of printLines(operands)) sink(line);
    return true;
  });
}

export const printHostBuiltins: Record<string, HostBuiltin> = {
  "arbiter.print": printBuiltin(() => {}),
};
