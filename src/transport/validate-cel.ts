/**
 * The CEL subset of message-level rules the request-validation compiler handles (see
 * `compileCel`); anything else throws `Unsupported` and the type goes to protovalidate.
 */
import { type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import { lit, setTest, unsupported } from "./validate-support.ts";

// ---- CEL subset ------------------------------------------------------------------------------
//
// Message-level rules in arbiter.proto are small boolean expressions over `this`. This compiles
// the subset: `||`, `&&`, `!`, parentheses, `==`/`!=` between two strings or two bools,
// `has(this.a.b)`, `this.a.b` (singular message fields down to a string or bool field), string
// literals without escapes, `true`, `false`. None of it can raise a CEL error, so evaluation
// order does not matter. Anything else is Unsupported, and the type goes to protovalidate.

type CelType = "bool" | "string";

interface CelNode {
  type: CelType;
  js: string;
}

export function compileCel(d: DescMessage, expr: string, where: string): string {
  const toks = tokenize(expr, where);
  let pos = 0;
  const peek = (): string | undefined => toks[pos];
  const take = (t?: string): string => {
    const got = toks[pos];
    if (got === undefined || (t !== undefined && got !== t)) unsupported(`${where}: CEL expression "${expr}"`);
    pos++;
    return got;
  };
  const expectType = (n: CelNode, t: CelType): CelNode => {
    if (n.type !== t) unsupported(`${where}: CEL expression "${expr}"`);
    return n;
  };
  const or = (): CelNode => {
    let l = and();
    while (peek() === "||") {
      take();
      l = { type: "bool", js: `(${expectType(l, "bool").js} || ${expectType(and(), "bool").js})` };
    }
    return l;
  };
  const and = (): CelNode => {
    let l = unary();
    while (peek() === "&&") {
      take();
      l = { type: "bool", js: `(${expectType(l, "bool").js} && ${expectType(unary(), "bool").js})` };
    }
    return l;
  };
  const unary = (): CelNode => {
    if (peek() === "!") {
      take();
      return { type: "bool", js: `!${expectType(unary(), "bool").js}` };
    }
    return cmp();
  };
  const cmp = (): CelNode => {
    const l = primary();
    const op = peek();
    if (op === "==" || op === "!=") {
      take();
      const r = primary();
      if (l.type !== r.type) unsupported(`${where}: CEL expression "${expr}"`);
      return { type: "bool", js: `(${l.js} ${op === "==" ? "===" : "!=="} ${r.js})` };
    }
    return l;
  };
  const primary = (): CelNode => {
    const t = take();
    if (t === "(") {
      const n = or();
      take(")");
      return { type: n.type, js: `(${n.js})` };
    }
    if (t === "true" || t === "false") return { type: "bool", js: t };
    if (t.startsWith('"')) return { type: "string", js: lit(t.slice(1, -1)) };
    if (t === "has") {
      take("(");
      const n = select(true);
      take(")");
      return n;
    }
    if (t === "this") return select(false);
    return unsupported(`${where}: CEL expression "${expr}"`);
  };
  /** `this.a.b...` (the `this` token already taken unless `forHas`). */
  const select = (forHas: boolean): CelNode => {
    if (forHas) take("this");
    let msg = d;
    let js = "m";
    // Selecting through an unset message yields its default instance in CEL: guard with `?.`.
    let guarded = false;
    for (;;) {
      take(".");
      const name = take();
      const f = msg.fields.find((x) => x.name === name);
      if (f === undefined || f.oneof !== undefined) unsupported(`${where}: CEL field "${name}"`);
      const last = peek() !== ".";
      if (!last) {
        if (f.fieldKind !== "message") unsupported(`${where}: CEL select through ${name}`);
        js = `${js}${guarded ? "?." : ""}[${lit(f.localName)}]`;
        guarded = true;
        msg = f.message;
        continue;
      }
      if (forHas) {
        if (guarded) unsupported(`${where}: CEL has() on a nested field`);
        return { type: "bool", js: setTest(f, "m", `m[${lit(f.localName)}]`) };
      }
      if (
        f.fieldKind !== "scalar" ||
        (f.scalar !== ScalarType.STRING && f.scalar !== ScalarType.BOOL) ||
        f.proto.defaultValue
      ) {
        unsupported(`${where}: CEL field "${name}" of this kind`);
      }
      const zero = f.scalar === ScalarType.STRING ? '""' : "false";
      const access = `${js}${guarded ? "?." : ""}[${lit(f.localName)}]`;
      return {
        type: f.scalar === ScalarType.STRING ? "string" : "bool",
        js: guarded || f.presence !== FeatureSet_FieldPresence.IMPLICIT ? `(${access} ?? ${zero})` : access,
      };
    }
  };
  const root = or();
  if (pos !== toks.length || root.type !== "bool") unsupported(`${where}: CEL expression "${expr}"`);
  return root.js;
}

function tokenize(expr: string, where: string): string[] {
  const out: string[] = [];
  const re = /\s*(?:(\|\||&&|==|!=|[!().])|([A-Za-z_][A-Za-z0-9_]*)|("[^"\\\n\r\u2028\u2029]*"))/y;
  let i = 0;
  while (i < expr.length) {
    if (/^\s*$/.test(expr.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(expr);
    if (m === null) unsupported(`${where}: CEL expression "${expr}"`);
    out.push(m[1] ?? m[2] ?? m[3]!);
    i = re.lastIndex;
  }
  return out;
}
