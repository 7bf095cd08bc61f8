/** Helpers of the checker for `with` targets and values (OPA's validateWith). */
import type { Loc, Term } from "./ast.ts";

/** `a`, `a.b.c` for a variable or a reference of constant names; undefined otherwise. */
export function dottedName(t: Term): string | undefined {
  if (t.type === "var") return t.name;
  if (t.type !== "ref" || t.head.type !== "var") return undefined;
  const parts = [t.head.name];
  for (const p of t.path) {
    if (p.type !== "string") return undefined;
    parts.push(p.value);
  }
  return parts.join(".");
}

/** OPA's validateWithBuiltinTarget, plus the operators this planner inlines (never called as builtins). */
export function checkMockableBuiltin(name: string, loc: Loc, error: (loc: Loc, message: string) => never): void {
  const prefix = "with keyword replacing built-in function:";
  if (name === "eq" || name === "rego.metadata.chain" || name === "rego.metadata.rule") {
    error(loc, `${prefix} replacement of "${name}" invalid`);
  }
  if (name.startsWith("internal.")) error(loc, `${prefix} replacement of internal function "${name}" invalid`);
  if (name === "walk") error(loc, `${prefix} target must not be a relation`);
  if (name === "print") error(loc, `${prefix} target must not be a void function`);
  if (name === "assign" || name === "equal" || name === "neq") error(loc, `unsupported: with replacing ${name}`);
}
