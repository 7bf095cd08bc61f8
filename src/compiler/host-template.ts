/**
 * OPA's `strings.render_template(template, vars)`: Go's text/template executed on the vars as
 * Go decodes them from JSON (numbers float64, sets arrays in Rego's order), then every
 * "<no value>" replaced by "<undefined>" (topdown/template.go). Arbiter renders a subset whose
 * Go semantics are certain: text, comments, trim markers, `.`, `.a.b`, `$`, `$v`, `$v.a`,
 * `if`/`else if`/`else`, `range` (optionally `$v :=` or `$i, $v :=`) and `end`. Anything else
 * (functions, pipelines, literals, `with`, `define`, assignments, a range over a scalar, a field
 * of null) fails the evaluation with an error saying so, never another text.
 */
import type { HostBuiltin } from "./host-types.ts";
import { builtinError } from "./host-exact-json.ts";
import { goFloatG } from "./host-sprintf.ts";
import { isTypedObject, RegoSet, typedIo, type TypedJson } from "./host-typed-json.ts";
import { compareCodePoints } from "../util/json-text.ts";

/** A Go value decoded from JSON: float64 numbers; `NO_VALUE` is text/template's invalid value. */
/** A range index is a Go int (bigint here), printed in decimal. */
type GoValue = null | boolean | number | bigint | string | GoValue[] | { [k: string]: GoValue } | typeof NO_VALUE;
const NO_VALUE = Symbol("no value");

type Node =
  | { kind: "text"; text: string }
  | { kind: "print"; term: string }
  | { kind: "if"; term: string; then: Node[]; else: Node[] }
  | { kind: "range"; term: string; key?: string; value?: string; body: Node[]; else: Node[] };

const refuse = (what: string): never => {
  throw new Error(`strings.render_template: ${what} is not rendered by Arbiter (only a subset of Go templates is)`);
};

const MAX_OUTPUT = 16 * 1024 * 1024;
const MAX_DEPTH = 100;

/** Splits the template into text and action bodies, applying trim markers and dropping comments. */
function lex(src: string): ({ text: string } | { action: string })[] {
  const out: ({ text: string } | { action: string })[] = [];
  let i = 0;
  let trimNext = false;
  while (i <= src.length) {
    const open = src.indexOf("{{", i);
    let text = src.slice(i, open < 0 ? src.length : open);
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, "");
    trimNext = false;
    if (open < 0) {
      out.push({ text });
      break;
    }
    let body = src.slice(open + 2);
    if (/^-[ \t\r\n]/.test(body)) {
      text = text.replace(/[ \t\r\n]+$/, "");
      body = body.slice(2);
    }
    out.push({ text });
    const close = body.indexOf("}}");
    if (close < 0) builtinError("strings.render_template", "unclosed action");
    let action = body.slice(0, close);
    i = src.length - body.length + close + 2;
    if (/[ \t\r\n]-$/.test(action)) {
      trimNext = true;
      action = action.slice(0, -2);
    }
    if (action.startsWith("/*")) {
      // Go: the comment must close right before the delimiter (or its trim marker).
      if (!action.endsWith("*/")) refuse("a comment not closed right before }}");
      continue;
    }
    out.push({ action: action.trim() });
  }
  return out;
}

const TERM = /^(\.|(\.[A-Za-z_][A-Za-z0-9_]*)+|\$[A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)$/;

function term(s: string): string {
  if (!TERM.test(s)) refuse(`the action {{${s}}}`);
  return s;
}

/** Parses the lexed items into a tree; `stop` returns which keyword ended a list. */
function parse(items: ReturnType<typeof lex>): Node[] {
  let pos = 0;
  const list = (depth: number): { nodes: Node[]; end: string } => {
    if (depth > MAX_DEPTH) refuse("nesting deeper than 100");
    const nodes: Node[] = [];
    while (pos < items.length) {
      const it = items[pos++]!;
      if ("text" in it) {
        if (it.text !== "") nodes.push({ kind: "text", text: it.text });
        continue;
      }
      const a = it.action;
      if (a === "end" || a === "else" || a.startsWith("else if ")) return { nodes, end: a };
      if (a.startsWith("if ")) {
        nodes.push(ifNode(a.slice(3).trim(), depth));
        continue;
      }
      if (a.startsWith("range ")) {
        const m = /^range\s+(?:(\$[A-Za-z0-9_]+)\s*(?:,\s*(\$[A-Za-z0-9_]+)\s*)?:=\s*)?(.+)$/.exec(a);
        if (!m) return refuse(`the action {{${a}}}`);
        const body = list(depth + 1);
        let other: Node[] = [];
        if (body.end === "else") {
          const e = list(depth + 1);
          if (e.end !== "end") refuse("a range with else if");
          other = e.nodes;
        } else if (body.end !== "end") refuse(`{{${body.end}}} in a range`);
        // One variable is the element; two are the index (or key) and the element.
        const [key, value] = m[2] === undefined ? [undefined, m[1]] : [m[1], m[2]];
        nodes.push({ kind: "range", term: term(m[3]!.trim()), key, value, body: body.nodes, else: other });
        continue;
      }
      nodes.push({ kind: "print", term: term(a) });
    }
    return { nodes, end: "" };
  };
  const ifNode = (cond: string, depth: number): Node => {
    const then = list(depth + 1);
    let other: Node[] = [];
    if (then.end.startsWith("else if ")) other = [ifNode(then.end.slice(8).trim(), depth + 1)];
    else if (then.end === "else") {
      const e = list(depth + 1);
      if (e.end !== "end") refuse("else if after else");
      other = e.nodes;
    } else if (then.end !== "end") builtinError("strings.render_template", "unexpected EOF");
    return { kind: "if", term: term(cond), then: then.nodes, else: other };
  };
  const top = list(0);
  if (top.end !== "") builtinError("strings.render_template", `unexpected {{${top.end}}}`);
  return top.nodes;
}

/** Go's json.Unmarshal into `any`: numbers become float64 (rounded to nearest, as Go parses). */
function toGo(v: TypedJson): GoValue {
  if (typeof v === "bigint") return Number(v);
  if (v instanceof RegoSet) return v.items.map(toGo);
  if (Array.isArray(v)) return v.map(toGo);
  if (isTypedObject(v)) {
    const out: { [k: string]: GoValue } = {};
    for (const [k, x] of Object.entries(v))
      Object.defineProperty(out, k, { value: toGo(x), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return v;
}

const isMap = (v: GoValue): v is { [k: string]: GoValue } => typeof v === "object" && v !== null && !Array.isArray(v);

/** fmt.Fprint of a decoded JSON value. */
function goText(v: GoValue, nested: boolean): string {
  if (v === NO_VALUE) return "<no value>";
  if (v === null) return nested ? "<nil>" : refuse("printing null");
  if (typeof v === "number") return goFloatG(v, undefined, false);
  if (typeof v === "string" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => goText(x, true)).join(" ")}]`;
  const keys = Object.keys(v).sort(compareCodePoints);
  return `map[${keys.map((k) => `${k}:${goText(v[k]!, true)}`).join(" ")}]`;
}

/** text/template's truth. */
function truth(v: GoValue): boolean {
  if (v === NO_VALUE || v === null) return false;
  if (typeof v === "boolean") return v;
  if (typeof v === "number" || typeof v === "bigint") return v !== 0 && v !== 0n;
  if (typeof v === "string" || Array.isArray(v)) return v.length > 0;
  return Object.keys(v).length > 0;
}

function render(nodes: readonly Node[], root: GoValue): string {
  let out = "";
  const vars: Map<string, GoValue>[] = [new Map([["$", root]])];
  const lookup = (name: string): GoValue => {
    for (let i = vars.length - 1; i >= 0; i--) if (vars[i]!.has(name)) return vars[i]!.get(name)!;
    return builtinError("strings.render_template", `undefined variable: ${name}`);
  };
  const evalTerm = (t: string, dot: GoValue): GoValue => {
    const parts = t.split(".");
    let v: GoValue = parts[0] === "" ? dot : lookup(parts[0]!);
    for (const f of parts.slice(1)) {
      if (f === "") continue; // `.` alone
      if (isMap(v)) v = Object.hasOwn(v, f) ? v[f]! : NO_VALUE;
      else if (v === NO_VALUE || v === null) refuse(`a field of a missing or null value (.${f})`);
      else builtinError("strings.render_template", `can't evaluate field ${f}`);
    }
    return v;
  };
  const run = (list: readonly Node[], dot: GoValue): void => {
    for (const n of list) {
      if (out.length > MAX_OUTPUT) throw new Error("strings.render_template: output beyond 16 MiB");
      if (n.kind === "text") out += n.text;
      else if (n.kind === "print") out += goText(evalTerm(n.term, dot), false);
      else if (n.kind === "if") run(truth(evalTerm(n.term, dot)) ? n.then : n.else, dot);
      else {
        const c = evalTerm(n.term, dot);
        const entries: [GoValue, GoValue][] = Array.isArray(c)
          ? c.map((x, i) => [BigInt(i), x])
          : isMap(c)
            ? Object.keys(c)
                .sort(compareCodePoints)
                .map((k) => [k, c[k]!])
            : c === NO_VALUE || c === null
              ? []
              : refuse("a range over a scalar");
        if (entries.length === 0) run(n.else, dot);
        for (const [k, x] of entries) {
          const scope = new Map<string, GoValue>();
          if (n.key !== undefined) scope.set(n.key, k);
          if (n.value !== undefined) scope.set(n.value, x);
          vars.push(scope);
          run(n.body, x);
          vars.pop();
        }
      }
    }
  };
  run(nodes, root);
  return out;
}

function renderTemplate(tpl: TypedJson, vars: TypedJson): string {
  if (typeof tpl !== "string") return builtinError("strings.render_template", "operand 1 must be a string");
  if (!isTypedObject(vars)) return builtinError("strings.render_template", "operand 2 must be an object");
  return render(parse(lex(tpl)), toGo(vars)).replaceAll("<no value>", "<undefined>");
}

export const templateHostBuiltins: Record<string, HostBuiltin> = {
  "strings.render_template": typedIo(renderTemplate),
};
