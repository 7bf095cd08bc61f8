/**
 * Rego lexer. Newlines are not tokens: each token records whether whitespace or a newline came
 * before it, which is what the parser needs to separate body literals and to tell `a[0]` (a
 * reference) from `a [0]` (two terms).
 */
import { diagnostic, RegoCompileError } from "./diagnostics.ts";

/**
 * A template string `$"a{x}b"` lexes as `tmplStart`, then its literal parts as `string` tokens and
 * each `{expr}` as a `{` punct, the expression's own tokens and a `}` punct, then `tmplEnd`.
 */
export type TokenKind = "ident" | "number" | "string" | "punct" | "tmplStart" | "tmplEnd" | "eof";

export interface Token {
  readonly kind: TokenKind;
  /** Source text for ident/number/punct; the decoded value for strings. */
  readonly text: string;
  readonly line: number;
  readonly col: number;
  readonly spaceBefore: boolean;
  readonly newlineBefore: boolean;
  /** For strings: true when written as a raw (backtick) string. */
  readonly raw?: boolean;
}

const PUNCT2 = [":=", "==", "!=", "<=", ">="];
const PUNCT1 = "<>=+-*/%|&()[]{},;.:";

export function describeToken(t: Token): string {
  switch (t.kind) {
    case "eof":
      return "end of file";
    case "string":
      return "string";
    case "tmplStart":
    case "tmplEnd":
      return "template string";
    case "number":
      return `number ${t.text}`;
    case "ident":
      return `"${t.text}"`;
    default:
      return `"${t.text}"`;
  }
}

/** `comments`, when given, receives every comment: where its `#` is and the text after it. */
export function tokenize(file: string, src: string, comments?: { line: number; col: number; text: string }[]): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  let col = 1;
  let space = false;
  let newline = false;
  const fail = (msg: string, l = line, c = col): never => {
    throw new RegoCompileError([diagnostic(file, l, c, msg)]);
  };
  const advance = (n: number) => {
    for (let k = 0; k < n; k++) {
      if (src[i] === "\n") {
        line++;
        col = 1;
      } else {
        col++;
      }
      i++;
    }
  };
  /** Decodes the escape at `src[j]` (a backslash): its text and its length in the source. */
  const unescape = (j: number, template: boolean): [string, number] => {
    const e = src[j + 1];
    if (template && e === "{") return ["{", 2];
    const simple: Record<string, string> = {
      '"': '"',
      "\\": "\\",
      "/": "/",
      b: "\b",
      f: "\f",
      n: "\n",
      r: "\r",
      t: "\t",
    };
    if (e !== undefined && e in simple) return [simple[e]!, 2];
    if (e === "u") {
      const hex = src.slice(j + 2, j + 6);
      if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail("invalid escape in string", line, col + (j - i));
      return [String.fromCharCode(parseInt(hex, 16)), 6];
    }
    return fail(`invalid escape "\\${e ?? ""}" in string`, line, col + (j - i));
  };
  /** Scans a template string's text up to its next `{expr}` or its end, emitting the tokens. */
  const scanTemplateText = (tmpl: { raw: boolean; literal: boolean; line: number; col: number }): void => {
    const emit = (kind: TokenKind, text: string, l: number, c: number) =>
      out.push({ kind, text, line: l, col: c, spaceBefore: false, newlineBefore: false });
    const [l0, c0] = [line, col];
    const close = tmpl.raw ? "`" : '"';
    let j = i;
    let value = "";
    for (;;) {
      if (j >= src.length || (!tmpl.raw && src[j] === "\n")) fail("unterminated template string", tmpl.line, tmpl.col);
      const c = src[j]!;
      if (c === close || c === "{") break;
      if (c === "\\" && tmpl.raw) {
        const brace = src[j + 1] === "{";
        value += brace ? "{" : "\\";
        j += brace ? 2 : 1;
      } else if (c === "\\") {
        const [text, n] = unescape(j, true);
        value += text;
        j += n;
      } else {
        value += c;
        j++;
      }
    }
    advance(j - i);
    if (value !== "") emit("string", value, l0, c0);
    const [l1, c1] = [line, col];
    advance(1);
    if (src[j] === close) {
      emit("tmplEnd", close, l1, c1);
      templates.pop();
    } else {
      emit("punct", "{", l1, c1);
      tmpl.literal = false;
    }
  };
  /** Open template strings, innermost last: `literal` while scanning text, `depth` counts `{`. */
  const templates: { raw: boolean; literal: boolean; depth: number; line: number; col: number }[] = [];
  while (i < src.length) {
    const ch = src[i]!;
    const tmpl = templates[templates.length - 1];
    if (tmpl?.literal) {
      scanTemplateText(tmpl);
      continue;
    }
    if (ch === "\n") {
      newline = true;
      space = true;
      advance(1);
      continue;
    }
    if (ch === " " || ch === "\t" || ch === "\r") {
      space = true;
      advance(1);
      continue;
    }
    if (ch === "#") {
      const [at, atLine, atCol] = [i, line, col];
      while (i < src.length && src[i] !== "\n") advance(1);
      comments?.push({ line: atLine, col: atCol, text: src.slice(at + 1, i).replace(/\r$/, "") });
      continue;
    }
    const startLine = line;
    const startCol = col;
    const push = (kind: TokenKind, text: string, raw?: boolean) => {
      out.push({ kind, text, line: startLine, col: startCol, spaceBefore: space, newlineBefore: newline, raw });
      space = false;
      newline = false;
    };
    if (/[A-Za-z_]/.test(ch)) {
      let j = i;
      while (j < src.length && /[A-Za-z0-9_]/.test(src[j]!)) j++;
      const text = src.slice(i, j);
      advance(j - i);
      push("ident", text);
      continue;
    }
    if (/[0-9]/.test(ch)) {
      const m = /^(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(src.slice(i, i + 400));
      if (!m) fail(`invalid number`);
      const text = m![0];
      if (/^[A-Za-z0-9_.]/.test(src[i + text.length] ?? ""))
        fail(`invalid number "${src.slice(i, i + text.length + 1)}"`);
      advance(text.length);
      push("number", text);
      continue;
    }
    if (ch === '"') {
      let j = i + 1;
      let value = "";
      for (;;) {
        if (j >= src.length || src[j] === "\n") fail("unterminated string");
        const c = src[j]!;
        if (c === '"') break;
        if (c === "\\") {
          const [text, n] = unescape(j, false);
          value += text;
          j += n;
          continue;
        }
        value += c;
        j++;
      }
      advance(j + 1 - i);
      push("string", value);
      continue;
    }
    if (ch === "$" && (src[i + 1] === '"' || src[i + 1] === "`")) {
      advance(2);
      push("tmplStart", "$");
      templates.push({ raw: src[i - 1] === "`", literal: true, depth: 0, line: startLine, col: startCol });
      continue;
    }
    if (tmpl && ch === "{") tmpl.depth++;
    if (tmpl && ch === "}" && tmpl.depth-- === 0) {
      advance(1);
      push("punct", "}");
      tmpl.literal = true;
      tmpl.depth = 0;
      continue;
    }
    if (ch === "`") {
      const j = src.indexOf("`", i + 1);
      if (j < 0) fail("unterminated raw string");
      const value = src.slice(i + 1, j);
      advance(j + 1 - i);
      push("string", value, true);
      continue;
    }
    const two = src.slice(i, i + 2);
    if (PUNCT2.includes(two)) {
      advance(2);
      push("punct", two);
      continue;
    }
    if (PUNCT1.includes(ch)) {
      advance(1);
      push("punct", ch);
      continue;
    }
    fail(`unexpected character "${ch}"`);
  }
  const open = templates[templates.length - 1];
  if (open) fail("unterminated template string", open.line, open.col);
  out.push({ kind: "eof", text: "", line, col, spaceBefore: space, newlineBefore: true });
  return out;
}
