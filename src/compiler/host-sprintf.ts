/**
 * OPA's `sprintf` with Go `fmt` semantics, for the host side of the wasm ABI.
 *
 * OPA hands Go's fmt.Sprintf integral numbers as ints, other numbers as float64, strings as
 * strings and every other value as its Rego text (`["a", 1]`, `{"k": true}`, `null`), so
 * `%v` of an array prints Rego syntax and `%d` of a float prints `%!d(float64=1.5)`.
 * Supported: flags `-+# 0`, width, precision (also `*`), verbs `v s q d b o O x X c U e E f F g G t`
 * and `%%`; missing and extra arguments are reported the way Go does.
 * A HOST_TYPED_JSON builtin: sets arrive as sets (printed `{1, 2}`, `set()` when empty, in
 * Rego's order as OPA's String() does) and integers exactly, as BigInt.
 * Known gap: `%q` of a string and strings inside composite values use JSON escaping.
 */
import { isTypedObject, RegoSet, typedIo, type TypedJson } from "./host-typed-json.ts";
import { compareCodePoints } from "../util/json-text.ts";

type GoArg =
  | { readonly kind: "int"; readonly v: bigint }
  | { readonly kind: "float64"; readonly v: number }
  | { readonly kind: "string"; readonly v: string };

/** Rego's text for a value (`ast.Term.String()`): sets in Rego's order, `set()` when empty. */
export function regoText(v: TypedJson): string {
  if (v === null) return "null";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (v instanceof RegoSet) return v.items.length === 0 ? "set()" : `{${v.items.map(regoText).join(", ")}}`;
  if (Array.isArray(v)) return `[${v.map(regoText).join(", ")}]`;
  if (isTypedObject(v)) {
    const keys = Object.keys(v).sort(compareCodePoints);
    return `{${keys.map((k) => `${JSON.stringify(k)}: ${regoText(v[k]!)}`).join(", ")}}`;
  }
  return String(v);
}

function toGoArg(v: TypedJson): GoArg {
  if (typeof v === "bigint") return { kind: "int", v };
  if (typeof v === "number") return Number.isInteger(v) ? { kind: "int", v: BigInt(v) } : { kind: "float64", v };
  if (typeof v === "string") return { kind: "string", v };
  return { kind: "string", v: regoText(v) };
}

interface Spec {
  minus: boolean;
  plus: boolean;
  sharp: boolean;
  space: boolean;
  zero: boolean;
  width?: number;
  prec?: number;
}

/** Go's %g / %v text of a float64 (shortest digits unless a precision is given). */
export function goFloatG(x: number, prec: number | undefined, upper: boolean): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "+Inf" : "-Inf";
  let digits: string;
  let exp: number;
  const neg = x < 0 || Object.is(x, -0);
  const ax = Math.abs(x);
  if (prec === undefined) {
    const [m, e] = ax.toExponential().split("e");
    digits = m!.replace(".", "");
    exp = Number(e);
  } else {
    const p = Math.max(prec, 1);
    const [m, e] = ax.toExponential(p - 1).split("e");
    digits = m!.replace(".", "").replace(/0+$/, "") || "0";
    exp = Number(e);
  }
  // strconv's rule: exponent form when exp < -4 || exp >= eprec, where eprec is 6 for the
  // shortest representation, else the precision (or the digit count when that is smaller and
  // covers the integer part).
  let eprec = prec === undefined ? 6 : Math.max(prec, 1);
  if (prec !== undefined && eprec > digits.length && digits.length >= exp + 1) eprec = digits.length;
  let body: string;
  if (exp < -4 || exp >= eprec) {
    const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const es = Math.abs(exp) < 10 ? `0${Math.abs(exp)}` : String(Math.abs(exp));
    body = `${mant}${upper ? "E" : "e"}${exp < 0 ? "-" : "+"}${es}`;
  } else if (exp < 0) {
    body = `0.${"0".repeat(-exp - 1)}${digits}`;
  } else if (digits.length <= exp + 1) {
    body = digits + "0".repeat(exp + 1 - digits.length);
  } else {
    body = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  }
  return (neg ? "-" : "") + body;
}

function goExp(x: number, prec: number, upper: boolean): string {
  if (!Number.isFinite(x)) return goFloatG(x, undefined, upper);
  const s = x.toExponential(prec);
  const [m, e] = s.split("e");
  const ev = Number(e);
  const es = Math.abs(ev) < 10 ? `0${Math.abs(ev)}` : String(Math.abs(ev));
  return `${m}${upper ? "E" : "e"}${ev < 0 ? "-" : "+"}${es}`;
}

function goFixed(x: number, prec: number): string {
  if (!Number.isFinite(x)) return goFloatG(x, undefined, false);
  if (Math.abs(x) < 1e21) return x.toFixed(prec);
  const int = BigInt(x).toString();
  return prec > 0 ? `${int}.${"0".repeat(prec)}` : int;
}

function pad(s: string, spec: Spec, numeric: boolean): string {
  const w = spec.width ?? 0;
  const len = [...s].length;
  if (len >= w) return s;
  if (spec.minus) return s + " ".repeat(w - len);
  if (spec.zero && numeric) {
    const sign = /^[+\- ]/.test(s) ? s[0]! : "";
    return sign + "0".repeat(w - len) + s.slice(sign.length);
  }
  return " ".repeat(w - len) + s;
}

function signed(body: string, negative: boolean, spec: Spec): string {
  if (negative) return `-${body}`;
  if (spec.plus) return `+${body}`;
  if (spec.space) return ` ${body}`;
  return body;
}

function badVerb(verb: string, a: GoArg): string {
  const text = a.kind === "float64" ? goFloatG(a.v, undefined, false) : String(a.v);
  return `%!${verb}(${a.kind}=${text})`;
}

function formatInt(a: { v: bigint }, verb: string, spec: Spec): string | undefined {
  const neg = a.v < 0n;
  const abs = neg ? -a.v : a.v;
  let body: string;
  switch (verb) {
    case "v":
    case "d":
      body = abs.toString(10);
      break;
    case "b":
      body = abs.toString(2);
      break;
    case "o":
      body = (spec.sharp ? "0" : "") + abs.toString(8);
      break;
    case "O":
      body = `0o${abs.toString(8)}`;
      break;
    case "x":
      body = (spec.sharp ? "0x" : "") + abs.toString(16);
      break;
    case "X":
      body = (spec.sharp ? "0X" : "") + abs.toString(16).toUpperCase();
      break;
    case "c":
      return pad(String.fromCodePoint(Number(a.v)), spec, false);
    case "q":
      return pad(`'${String.fromCodePoint(Number(a.v))}'`, spec, false);
    case "U":
      return pad(`U+${abs.toString(16).toUpperCase().padStart(4, "0")}`, spec, false);
    default:
      return undefined;
  }
  if (spec.prec !== undefined) body = body.padStart(spec.prec, "0");
  return pad(signed(body, neg, spec), { ...spec, zero: spec.zero && spec.prec === undefined }, true);
}

function formatFloat(x: number, verb: string, spec: Spec): string | undefined {
  let s: string;
  switch (verb) {
    case "v":
    case "g":
      s = goFloatG(x, spec.prec, false);
      break;
    case "G":
      s = goFloatG(x, spec.prec, true);
      break;
    case "e":
    case "E":
      s = goExp(x, spec.prec ?? 6, verb === "E");
      break;
    case "f":
    case "F":
      s = goFixed(x, spec.prec ?? 6);
      break;
    default:
      return undefined;
  }
  const neg = s.startsWith("-");
  return pad(signed(neg ? s.slice(1) : s, neg, spec), spec, true);
}

function formatString(v: string, verb: string, spec: Spec): string | undefined {
  switch (verb) {
    case "v":
    case "s": {
      const s = spec.prec !== undefined ? [...v].slice(0, spec.prec).join("") : v;
      return pad(s, spec, false);
    }
    case "q":
      return pad(JSON.stringify(v), spec, false);
    case "x":
    case "X": {
      const hex = Buffer.from(v, "utf8").toString("hex");
      return pad(verb === "X" ? hex.toUpperCase() : hex, spec, false);
    }
    default:
      return undefined;
  }
}

/**
 * fmt.Sprintf(format, args...) over OPA's argument conversion; undefined for bad operands (the
 * values must be an array: OPA refuses a set).
 */
function goSprintfTyped(format: TypedJson, values: TypedJson): string | undefined {
  if (typeof format !== "string" || !Array.isArray(values)) return undefined;
  const args = values.map(toGoArg);
  let out = "";
  let argi = 0;
  let i = 0;
  const n = format.length;
  while (i < n) {
    const ch = format[i]!;
    if (ch !== "%") {
      out += ch;
      i++;
      continue;
    }
    i++;
    const spec: Spec = { minus: false, plus: false, sharp: false, space: false, zero: false };
    for (; i < n; i++) {
      const f = format[i];
      if (f === "-") spec.minus = true;
      else if (f === "+") spec.plus = true;
      else if (f === "#") spec.sharp = true;
      else if (f === " ") spec.space = true;
      else if (f === "0") spec.zero = !spec.minus;
      else break;
    }
    const num = (): number | undefined => {
      if (format[i] === "*") {
        i++;
        const a = args[argi++];
        return a && a.kind === "int" ? Number(a.v) : undefined;
      }
      const m = /^\d+/.exec(format.slice(i));
      if (!m) return undefined;
      i += m[0].length;
      return Number(m[0]);
    };
    spec.width = num();
    if (spec.width !== undefined && spec.width < 0) {
      spec.minus = true;
      spec.width = -spec.width;
    }
    if (format[i] === ".") {
      i++;
      spec.prec = num() ?? 0;
    }
    if (i >= n) {
      out += "%!(NOVERB)";
      break;
    }
    const verb = String.fromCodePoint(format.codePointAt(i)!);
    i += verb.length;
    if (verb === "%") {
      out += "%";
      continue;
    }
    const a = args[argi++];
    if (a === undefined) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    let s: string | undefined;
    if (a.kind === "int") s = formatInt(a, verb, spec);
    else if (a.kind === "float64") s = formatFloat(a.v, verb, spec);
    else s = formatString(a.v, verb, spec);
    out += s ?? badVerb(verb, a);
  }
  if (argi < args.length) {
    const extra = args
      .slice(argi)
      .map((a) => `${a.kind}=${a.kind === "float64" ? goFloatG(a.v, undefined, false) : String(a.v)}`);
    out += `%!(EXTRA ${extra.join(", ")})`;
  }
  return out;
}

/** `sprintf` as a HOST_TYPED_JSON builtin (typed texts in, typed text out). */
export const goSprintf = typedIo(goSprintfTyped);

/**
 * `sprintf` on plain values, for a module from `opa build`, which calls OPA's name with the
 * arguments the SDK dumps as JSON (engine/policy-instance.ts): an integer beyond 2^53 arrived
 * rounded, so it is refused rather than printed; a set arrives as an array and prints as one.
 */
export function goSprintfValues(format: unknown, values: unknown): string | undefined {
  const check = (v: unknown): void => {
    if (typeof v === "number" && Number.isInteger(v) && !Number.isSafeInteger(v)) {
      throw new Error("sprintf: an integer beyond 2^53 reached a module built by opa rounded; not printed");
    }
    if (v !== null && typeof v === "object") for (const x of Object.values(v)) check(x);
  };
  check(values);
  return goSprintfTyped(format as TypedJson, values as TypedJson);
}
