/**
 * A rewrite of any AST value (module rules, a rule, a term, a body) by a visitor, for the passes
 * that run between parsing and planning (annotations.ts, erase-print.ts). `visit(node, key)` sees
 * every array and object first (`key`: the property that holds it, undefined for an array
 * element) and may answer a replacement, whose parts are then rewritten in turn. Objects and
 * arrays are copied only where something below them changed, so an untouched tree comes back as
 * the very same object. Locations are not walked.
 */
export type AstVisitor = (node: unknown, key: string | undefined) => unknown;

export function rewriteAst(node: unknown, visit: AstVisitor, key?: string): unknown {
  if (node === null || typeof node !== "object") return node;
  const start = visit(node, key) ?? node;
  if (Array.isArray(start)) {
    let changed = start !== node;
    const out = start.map((x: unknown) => {
      const y = rewriteAst(x, visit);
      changed ||= y !== x;
      return y;
    });
    return changed ? out : node;
  }
  if (start === null || typeof start !== "object") return start;
  let changed = start !== node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(start as Record<string, unknown>)) {
    const y = k === "loc" ? v : rewriteAst(v, visit, k);
    changed ||= y !== v;
    out[k] = y;
  }
  return changed ? out : node;
}
