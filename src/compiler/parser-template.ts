/**
 * Template strings (`$"a {x} b"`, `` $`...` ``) as plain Rego, so the planner needs nothing new.
 * OPA prints each `{expr}` the way it prints a term: a string as-is, any other value in Rego
 * notation (`[1, "a"]`, `{"a": 1}`, `set()`), and an undefined expression as `<undefined>` while
 * the template string itself stays defined. Arbiter's Go-fmt `sprintf("%v")` prints values the
 * same way; a set inside a value cannot cross to that host builtin, so evaluation fails with an
 * error there rather than printing something else.
 *
 * `{e}` becomes `concat("", array.slice(array.concat([sprintf("%v", [v]) | v := e], ["<undefined>"]), 0, 1))`:
 * the comprehension holds e's text when e is defined and nothing when it is undefined.
 */
import type { Literal, Loc, Term, WithModifier } from "./ast.ts";

/** One part of a template string: literal text, or an expression with its `with` modifiers. */
export type TemplatePart = string | { readonly term: Term; readonly withs: readonly WithModifier[] };

export function desugarTemplate(parts: readonly TemplatePart[], loc: Loc): Term {
  const str = (value: string): Term => ({ type: "string", value, loc });
  const call = (name: string, ...args: Term[]): Term => ({ type: "call", name, args, loc });
  const items = parts.map((part, i): Term => {
    if (typeof part === "string") return str(part);
    // Unique per template (its position) and part, and the same on every build of the same text.
    const name = `__template_${loc.line}_${loc.col}_${i}`;
    const v: Term = { type: "var", name, orig: name, loc };
    const lit: Literal = {
      kind: "expr",
      negated: false,
      term: call("assign", v, part.term),
      loc,
      ...(part.withs.length ? { withs: part.withs } : {}),
    };
    const printed: Term = {
      type: "arrayCompr",
      head: call("sprintf", str("%v"), { type: "array", items: [v], loc }),
      body: [lit],
      loc,
    };
    const orUndefined = call("array.concat", printed, { type: "array", items: [str("<undefined>")], loc });
    const first = call(
      "array.slice",
      orUndefined,
      { type: "number", text: "0", loc },
      { type: "number", text: "1", loc },
    );
    return call("concat", str(""), first);
  });
  if (items.length === 0) return str("");
  if (items.length === 1 && typeof parts[0] === "string") return items[0]!;
  return call("concat", str(""), { type: "array", items, loc });
}

/**
 * `walk` is a relation in OPA: `walk(x)` has one value per `[path, value]` pair. The host builtin
 * answers the array of pairs (host-walk.ts); `walk(x)` becomes `walk([x])[_]` and `walk(x, out)`
 * becomes `out = walk([x])[_]`, so the planner's scan unifies each pair in turn.
 */
export function walkRelation(args: readonly Term[], loc: Loc): Term {
  if (args.length !== 1 && args.length !== 2) return { type: "call", name: "walk", args, loc };
  const wildcard: Term = { type: "var", name: "_", orig: "_", loc };
  // x goes in a one-element array (a leftover of the JSON boundary, where a set argument arrived as
  // an array); walk now exchanges typed text (HOST_TYPED_JSON), where sets stay sets at any depth.
  const boxed: Term = { type: "array", items: [args[0]!], loc };
  const each: Term = { type: "ref", head: { type: "call", name: "walk", args: [boxed], loc }, path: [wildcard], loc };
  return args.length === 1 ? each : { type: "call", name: "eq", args: [args[1]!, each], loc };
}
