/**
 * `print(...)` statements. By default they are erased at build time, as OPA's compiler erases them
 * when print output is not enabled (its default for library embeddings; ast/compile.go
 * erasePrintCalls): a body literal that is a call to `print` is removed, wherever a body is:
 * rules, `else` clauses, comprehensions and `every`; a body left empty becomes `true`. So a policy
 * written with print debugging loads and decides exactly as it would without the prints, and the
 * sidecar's decision path writes nothing. `print` used as a value (`x := print(1)`) is still
 * refused, as OPA refuses a void function there.
 *
 * With print output enabled (`arbiter test`), each statement becomes a call of `internal.print`
 * with the set of each operand's values (host-print.ts), as OPA's RewritePrintCalls does.
 */
import type { Literal, Module, Term } from "./ast.ts";
import { rewriteAst } from "./ast-rewrite.ts";

const isPrint = (lit: Literal): boolean => lit.kind === "expr" && lit.term.type === "call" && lit.term.name === "print";

/** `print(a, b)` as `internal.print([{v | v := a}, {v | v := b}])`, the same position. */
function toInternalPrint(lit: Literal): Literal {
  if (lit.kind !== "expr" || lit.term.type !== "call") return lit;
  const { loc } = lit.term;
  const sets = lit.term.args.map((arg, i): Term => {
    const name = `__print_${loc.line}_${loc.col}_${i}`;
    const v: Term = { type: "var", name, orig: name, loc };
    const assign: Term = { type: "call", name: "assign", args: [v, arg], loc };
    return { type: "setCompr", head: v, body: [{ kind: "expr", negated: false, term: assign, loc }], loc };
  });
  const call: Term = { type: "call", name: "internal.print", args: [{ type: "array", items: sets, loc }], loc };
  return { ...lit, term: call };
}

/** A body with its print statements erased (or, with `keep`, made calls of internal.print). */
function rewriteBody(body: readonly Literal[], keep: boolean): readonly Literal[] {
  if (!body.some(isPrint)) return body;
  if (keep) return body.map((lit) => (isPrint(lit) ? toInternalPrint(lit) : lit));
  const rest = body.filter((lit) => !isPrint(lit));
  if (rest.length > 0) return rest;
  const loc = body[0]!.loc;
  return [{ kind: "expr", negated: false, term: { type: "boolean", value: true, loc }, loc }];
}

/** The modules without print statements, or with `keep`, with them calling internal.print. */
export function erasePrintCalls(modules: readonly Module[], keep = false): Module[] {
  return modules.map((m) => {
    const rules = rewriteAst(m.rules, (node, key) =>
      key === "body" && Array.isArray(node) ? rewriteBody(node as Literal[], keep) : undefined,
    ) as Module["rules"];
    return rules === m.rules ? m : { ...m, rules };
  });
}
