/**
 * Translation of RE2 syntax (what OPA's `regex.*` builtins accept) into a JavaScript RegExp.
 *
 * Handled: `(?P<name>`, flag groups `(?i)`, `(?s)`, `(?m)` at the start or scoped (`(?i:...)`,
 * mid-group `(?i)`), `\A` and `\z`, `\Q...\E`, POSIX classes `[[:digit:]]`, `\pL` and script
 * names in `\p{Greek}`, RE2's ASCII `\s`, and `.` not matching only `\n` (JavaScript's also
 * stops at `\r`, U+2028 and U+2029). Case-insensitive scopes expand letters to both cases
 * (`[aA]`), which is exact for ASCII and for letters with a simple case pair.
 * Not handled: the `U` (ungreedy) flag, a scoped `m` flag (applies to the whole pattern),
 * negated POSIX classes `[[:^alpha:]]`. A pattern that still does not compile gives null.
 */

const POSIX: Record<string, string> = {
  alnum: "0-9A-Za-z",
  alpha: "A-Za-z",
  ascii: "\\x00-\\x7F",
  blank: "\\t ",
  cntrl: "\\x00-\\x1F\\x7F",
  digit: "0-9",
  graph: "!-~",
  lower: "a-z",
  print: " -~",
  punct: "!-\\/:-@\\[-`{-~",
  space: "\\t\\n\\v\\f\\r ",
  upper: "A-Z",
  word: "0-9A-Za-z_",
  xdigit: "0-9A-Fa-f",
};

const GENERAL_CATEGORIES = new Set([
  "L",
  "Lu",
  "Ll",
  "Lt",
  "Lm",
  "Lo",
  "M",
  "Mn",
  "Mc",
  "Me",
  "N",
  "Nd",
  "Nl",
  "No",
  "P",
  "Pc",
  "Pd",
  "Ps",
  "Pe",
  "Pi",
  "Pf",
  "Po",
  "S",
  "Sm",
  "Sc",
  "Sk",
  "So",
  "Z",
  "Zs",
  "Zl",
  "Zp",
  "C",
  "Cc",
  "Cf",
  "Cs",
  "Co",
  "Cn",
]);

const RE2_SPACE = "\\t\\n\\f\\r ";

interface Flags {
  i: boolean;
  s: boolean;
}

function otherCase(ch: string): string | undefined {
  const u = ch.toUpperCase();
  const l = ch.toLowerCase();
  if (u !== ch && [...u].length === 1) return u;
  if (l !== ch && [...l].length === 1) return l;
  return undefined;
}

function escapeLiteral(ch: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch;
}

function property(name: string, negated: boolean): string {
  const n = name.startsWith("^") ? name.slice(1) : name;
  const neg = negated !== name.startsWith("^");
  const body = GENERAL_CATEGORIES.has(n) || n === "Any" ? n : `Script=${n}`;
  if (n === "Any") return neg ? "[^\\s\\S]" : "[\\s\\S]";
  return `\\${neg ? "P" : "p"}{${body}}`;
}

/** Translates an RE2 pattern; returns the JS source and flags, or null for unsupported syntax. */
export function translateRe2(pattern: string): { source: string; flags: string } | null {
  const cps = [...pattern];
  let out = "";
  let multiline = false;
  const stack: Flags[] = [];
  let flags: Flags = { i: false, s: false };
  let i = 0;

  const applyFlags = (spec: string, f: Flags): Flags | null => {
    const next = { ...f };
    let on = true;
    for (const c of spec) {
      if (c === "-") on = false;
      else if (c === "i") next.i = on;
      else if (c === "s") next.s = on;
      else if (c === "m") multiline = multiline || on;
      else if (c === "U") return null;
      else return null;
    }
    return next;
  };

  /** Translates one escape at cps[i] === "\\"; `inClass` changes what some escapes become. */
  const escape = (inClass: boolean): string | null => {
    const c = cps[i + 1];
    if (c === undefined) return null;
    i += 2;
    switch (c) {
      case "A":
        return inClass ? null : "(?<![\\s\\S])";
      case "z":
        return inClass ? null : "(?![\\s\\S])";
      case "s":
        return inClass ? RE2_SPACE : `[${RE2_SPACE}]`;
      case "S":
        return inClass ? null : `[^${RE2_SPACE}]`;
      case "Q": {
        let lit = "";
        while (i < cps.length && !(cps[i] === "\\" && cps[i + 1] === "E")) lit += escapeLiteral(cps[i++]!);
        if (i < cps.length) i += 2;
        return lit;
      }
      case "p":
      case "P": {
        if (cps[i] === "{") {
          const end = cps.indexOf("}", i);
          if (end < 0) return null;
          const name = cps.slice(i + 1, end).join("");
          i = end + 1;
          return property(name, c === "P");
        }
        const name = cps[i++];
        return name === undefined ? null : property(name, c === "P");
      }
      default:
        return `\\${c}`;
    }
  };

  const charClass = (): string | null => {
    // cps[i] === "["
    i++;
    let body = "";
    let negated = false;
    if (cps[i] === "^") {
      negated = true;
      i++;
    }
    let first = true;
    while (i < cps.length) {
      const c = cps[i]!;
      if (c === "]" && !first) break;
      first = false;
      if (c === "[" && cps[i + 1] === ":") {
        const end = cps.indexOf("]", i);
        const m = /^\[:(\^?)([a-z]+):\]$/.exec(cps.slice(i, end + 1).join(""));
        if (!m || m[1] || !POSIX[m[2]!]) return null;
        body += POSIX[m[2]!];
        i = end + 1;
        continue;
      }
      if (c === "\\") {
        const e = escape(true);
        if (e === null) return null;
        body += e;
        continue;
      }
      if (c === "[" || c === "]") body += `\\${c}`;
      else body += c;
      // a range a-z under (?i) also gets its other case
      if (flags.i && cps[i + 1] === "-" && cps[i + 2] !== undefined && cps[i + 2] !== "]") {
        const to = cps[i + 2]!;
        if (to === "\\") return null;
        body += `-${to}`;
        if (/[a-z]/.test(c) && /[a-z]/.test(to)) body += `${c.toUpperCase()}-${to.toUpperCase()}`;
        else if (/[A-Z]/.test(c) && /[A-Z]/.test(to)) body += `${c.toLowerCase()}-${to.toLowerCase()}`;
        i += 3;
        continue;
      }
      if (flags.i) {
        const o = otherCase(c);
        if (o) body += o;
      }
      i++;
    }
    if (i >= cps.length) return null;
    i++;
    return `[${negated ? "^" : ""}${body}]`;
  };

  while (i < cps.length) {
    const c = cps[i]!;
    if (c === "\\") {
      const e = escape(false);
      if (e === null) return null;
      out += e;
      continue;
    }
    if (c === "[") {
      const cls = charClass();
      if (cls === null) return null;
      out += cls;
      continue;
    }
    if (c === "(") {
      if (cps[i + 1] === "?") {
        const rest = cps.slice(i + 2).join("");
        const named = /^P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
        if (named) {
          stack.push(flags);
          out += `(?<${named[1]}>`;
          i += 2 + named[0].length;
          continue;
        }
        const fl = /^([imsU-]*)([:)])/.exec(rest);
        if (fl) {
          const next = applyFlags(fl[1]!, flags);
          if (next === null) return null;
          i += 2 + fl[0].length;
          if (fl[2] === ")") {
            flags = next; // applies to the rest of the enclosing group
          } else {
            stack.push(flags);
            flags = next;
            out += "(?:";
          }
          continue;
        }
        // (?= (?! (?<= (?<! are not RE2; refuse rather than change meaning
        return null;
      }
      stack.push(flags);
      out += "(";
      i++;
      continue;
    }
    if (c === ")") {
      flags = stack.pop() ?? flags;
      out += ")";
      i++;
      continue;
    }
    if (c === ".") {
      out += flags.s ? "[\\s\\S]" : "[^\\n]";
      i++;
      continue;
    }
    if (flags.i) {
      const o = otherCase(c);
      if (o) {
        out += `[${c}${o}]`;
        i++;
        continue;
      }
    }
    out += c;
    i++;
  }
  return { source: out, flags: multiline ? "m" : "" };
}

/** Compiles an RE2 pattern to a RegExp, or null when it is invalid or unsupported. */
export function compileRe2(pattern: string): RegExp | null {
  const t = translateRe2(pattern);
  if (t === null) return null;
  for (const extra of ["u", ""]) {
    try {
      return new RegExp(t.source, t.flags + extra);
    } catch {
      // without the unicode flag some escapes RE2 accepts are valid again
    }
  }
  return null;
}
