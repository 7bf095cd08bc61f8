/**
 * `print(...)` statements, erased at build time as OPA's compiler erases them when print output
 * is not enabled (its default for library embeddings; ast/compile.go erasePrintCalls). A body
 * literal that is a call to `print` is removed, wherever a body is: rules, `else` clauses,
 * comprehensions and `every`; a body left empty becomes `true`. So a policy written with print
 * debugging loads and decides exactly as it would without the prints, and the sidecar's decision
 * path writes nothing. `print` used as a value (`x := print(1)`) is still refused, as OPA refuses
 * a void function there.
 */
import type { Literal, Module } from "./ast.ts";

const isPrint = (lit: Literal): boolean => lit.kind === "expr" && lit.term.type === "call" && lit.term.name === "print";

/** `node` (any AST value) with print statements erased from its bodies; the same object when it has none. */
function erase(node: unknown, inBody = false): unknown {
  if (Array.isArray(node)) {
    const items = inBody ? (node as Literal[]).filter((lit) => !isPrint(lit)) : node;
    let changed = items.length !== node.length;
    const out = items.map((x) => {
      const y = erase(x);
      changed ||= y !== x;
      return y;
    });
    if (inBody && out.length === 0 && node.length > 0) {
      const loc = (node[0] as Literal).loc;
      return [{ kind: "expr", negated: false, term: { type: "boolean", value: true, loc }, loc } satisfies Literal];
    }
    return changed ? out : node;
  }
  if (node === null || typeof node !== "object") return node;
  let changed = false;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
    const y = k === "loc" ? v : erase(v, k === "body");
    changed ||= y !== v;
    out[k] = y;
  }
  return changed ? out : node;
}

/** The modules without print statements. */
export function erasePrintCalls(modules: readonly Module[]): Module[] {
  return modules.map((m) => {
    const rules = erase(m.rules) as Module["rules"];
    return rules === m.rules ? m : { ...m, rules };
  });
}
