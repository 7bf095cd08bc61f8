/**
 * OPA's `time.parse_ns(layout, value)`: Go's time.Parse with its reference-time layouts
 * (`2006-01-02T15:04:05Z07:00`) and OPA's named layouts (`RFC822Z`, ...), answering int64
 * nanoseconds (a HOST_JSON_IO builtin). Supported layout elements: years, months (numbers and
 * names), days, weekday names (checked, ignored), 12/24-hour clocks, minutes, seconds,
 * fractions, AM/PM and numeric zones (`Z07:00`, `-0700`, ...). A zone abbreviation (`MST`)
 * reads as UTC+0, as Go does for a zone it does not know on a UTC host. Day-of-year and
 * GMT+h forms are refused with an error rather than guessed.
 */
import { builtinError, type ExactJson, jsonIo } from "./host-exact-json.ts";
import { daysFromCivil } from "./host-time.ts";
import type { HostBuiltin } from "./host-types.ts";

const NAMED: Record<string, string> = {
  ANSIC: "Mon Jan _2 15:04:05 2006",
  UnixDate: "Mon Jan _2 15:04:05 MST 2006",
  RubyDate: "Mon Jan 02 15:04:05 -0700 2006",
  RFC822: "02 Jan 06 15:04 MST",
  RFC822Z: "02 Jan 06 15:04 -0700",
  RFC850: "Monday, 02-Jan-06 15:04:05 MST",
  RFC1123: "Mon, 02 Jan 2006 15:04:05 MST",
  RFC1123Z: "Mon, 02 Jan 2006 15:04:05 -0700",
  RFC3339: "2006-01-02T15:04:05Z07:00",
  RFC3339Nano: "2006-01-02T15:04:05.999999999Z07:00",
  Kitchen: "3:04PM",
  Stamp: "Jan _2 15:04:05",
  StampMilli: "Jan _2 15:04:05.000",
  StampMicro: "Jan _2 15:04:05.000000",
  StampNano: "Jan _2 15:04:05.000000000",
  DateTime: "2006-01-02 15:04:05",
  DateOnly: "2006-01-02",
  TimeOnly: "15:04:05",
};

const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/** Layout elements, longest first where one is a prefix of another (Go's nextStdChunk order). */
const ELEMENTS = [
  "January",
  "Jan",
  "Monday",
  "Mon",
  "MST",
  "2006",
  "002",
  "01",
  "02",
  "03",
  "04",
  "05",
  "06",
  "15",
  "1",
  "2",
  "_2006",
  "__2",
  "_2",
  "3",
  "4",
  "5",
  "PM",
  "pm",
  "-07:00:00",
  "-070000",
  "-0700",
  "-07:00",
  "-07",
  "Z07:00:00",
  "Z070000",
  "Z0700",
  "Z07:00",
  "Z07",
];

interface Chunk {
  readonly lit: string;
  readonly el?: string;
}

/** Splits a layout into literal text and elements (fractions: `.000` / `.999` after a digit element). */
function chunks(layout: string): Chunk[] {
  const out: Chunk[] = [];
  let lit = "";
  for (let i = 0; i < layout.length;) {
    const frac = /^[.,](0+|9+)(?!\d)/.exec(layout.slice(i));
    if (frac && out.length + 1 > 0 && /[0-9]$/.test(layout.slice(0, i))) {
      out.push({ lit, el: frac[0][0] + frac[1]![0] + frac[1]!.length });
      lit = "";
      i += frac[0].length;
      continue;
    }
    const el = ELEMENTS.find((e) => layout.startsWith(e, i));
    // Go: "Jan"/"Mon" only when not followed by a lower-case letter ("Janet" is literal).
    if (el && !((el === "Jan" || el === "Mon") && /^[a-z]/.test(layout.slice(i + 3)))) {
      out.push({ lit, el });
      lit = "";
      i += el.length;
    } else {
      lit += layout[i];
      i++;
    }
  }
  out.push({ lit });
  return out;
}

/** A limit of Arbiter's (not an OPA error): the evaluation fails. */
function unsupported(name: string, message: string): never {
  throw new Error(`${name}: ${message}`);
}

function parse(layoutArg: ExactJson, valueArg: ExactJson): ExactJson {
  const name = "time.parse_ns";
  if (typeof layoutArg !== "string" || typeof valueArg !== "string") builtinError(name, "operands must be strings");
  const layout = NAMED[layoutArg] ?? layoutArg;
  let v = valueArg;
  const bad = (): never =>
    builtinError(name, `parsing time ${JSON.stringify(valueArg)} as ${JSON.stringify(layout)}: cannot parse`);
  const num = (min: number, max: number, fixed: boolean): number => {
    const m = (fixed ? /^\d{2}/ : /^\d{1,2}/).exec(v);
    if (!m) bad();
    v = v.slice(m![0].length);
    const n = Number(m![0]);
    if (n < min || n > max) builtinError(name, `parsing time ${JSON.stringify(valueArg)}: value out of range`);
    return n;
  };
  const lookup = (names: string[], len?: number): number => {
    const i = names.findIndex(
      (n) => v.slice(0, len ?? n.length).toLowerCase() === (len ? n.slice(0, len) : n).toLowerCase(),
    );
    if (i < 0) bad();
    v = v.slice(len ?? names[i]!.length);
    return i;
  };
  let year = 0;
  let month = 1;
  let day = 1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let nanos = 0n;
  let pm: boolean | undefined;
  let offset = 0;
  const cs = chunks(layout);
  for (let ci = 0; ci < cs.length; ci++) {
    const { lit, el } = cs[ci]!;
    if (!v.startsWith(lit)) bad();
    v = v.slice(lit.length);
    if (el === undefined) break;
    switch (el) {
      case "2006": {
        const m = /^\d{4}/.exec(v) ?? bad();
        year = Number(m[0]);
        v = v.slice(4);
        break;
      }
      case "06": {
        const y = num(0, 99, true);
        year = y >= 69 ? 1900 + y : 2000 + y;
        break;
      }
      case "January":
        month = lookup(MONTHS) + 1;
        break;
      case "Jan":
        month = lookup(MONTHS, 3) + 1;
        break;
      case "Monday":
        lookup(DAYS);
        break;
      case "Mon":
        lookup(DAYS, 3);
        break;
      case "01":
        month = num(1, 12, true);
        break;
      case "1":
        month = num(1, 12, false);
        break;
      case "02":
        day = num(1, 31, true);
        break;
      case "_2":
        if (v.startsWith(" ")) v = v.slice(1);
        day = num(1, 31, false);
        break;
      case "2":
        day = num(1, 31, false);
        break;
      case "15":
        hour = num(0, 23, false);
        break;
      case "03":
        hour = num(1, 12, true);
        break;
      case "3":
        hour = num(1, 12, false);
        break;
      case "04":
        minute = num(0, 59, true);
        break;
      case "4":
        minute = num(0, 59, false);
        break;
      case "05":
      case "5": {
        second = num(0, 59, el === "05");
        // Go: a fraction after the seconds is read even when the layout has none.
        const nextIsFrac = cs[ci + 1]?.lit === "" && /^[.,][09]/.test(cs[ci + 1]?.el ?? "");
        const f = /^[.,](\d+)/.exec(v);
        if (f && !nextIsFrac) {
          nanos = BigInt(f[1]!.slice(0, 9).padEnd(9, "0"));
          v = v.slice(f[0].length);
        }
        break;
      }
      case "PM":
      case "pm": {
        const t = v.slice(0, 2);
        if (t === (el === "PM" ? "PM" : "pm")) pm = true;
        else if (t === (el === "PM" ? "AM" : "am")) pm = false;
        else bad();
        v = v.slice(2);
        break;
      }
      case "MST": {
        // Go's Parse and parseTimeZone: "UTC"; "ChST" and "MeST"; "GMT" (its offset refused);
        // a signed offset (refused); else 3 upper-case letters, 4 ending in T (or WITA), 5 ending
        // in T. An abbreviation is read as UTC+0, as OPA does on a UTC host.
        if (/^[+-]/.test(v)) unsupported(name, "numeric zone offsets in an MST field are not supported by Arbiter");
        if (v.startsWith("GMT") && /^[+-]/.test(v.slice(3)))
          unsupported(name, "GMT offsets are not supported by Arbiter");
        const upper = /^[A-Z]{0,6}/.exec(v)![0];
        const n =
          upper.startsWith("UTC") || upper.startsWith("GMT")
            ? 3
            : v.startsWith("ChST") || v.startsWith("MeST")
              ? 4
              : upper.length === 3 ||
                  (upper.length === 4 && (upper[3] === "T" || upper === "WITA")) ||
                  (upper.length === 5 && upper[4] === "T")
                ? upper.length
                : bad();
        v = v.slice(n);
        offset = 0;
        break;
      }
      default: {
        if (el.startsWith("Z") && v.startsWith("Z")) {
          v = v.slice(1);
          offset = 0;
          break;
        }
        if (/^[.,][09]/.test(el)) {
          const digits = Number(el.slice(2));
          const m = el[1] === "0" ? new RegExp(`^[.,](\\d{${digits}})(?!\\d)`).exec(v) : /^[.,](\d+)/.exec(v);
          if (!m) {
            if (el[1] === "9") break; // optional
            bad();
          }
          nanos = BigInt(m![1]!.slice(0, 9).padEnd(9, "0"));
          v = v.slice(m![0].length);
          break;
        }
        if (el === "002" || el === "__2" || el === "_2006")
          unsupported(name, `layout element ${el} is not supported by Arbiter`);
        // numeric zones: -07, -0700, -07:00, -070000, -07:00:00 (and the Z forms)
        const shape = el.replace(/^Z/, "-");
        const re = {
          "-07": /^([+-])(\d{2})/,
          "-0700": /^([+-])(\d{2})(\d{2})/,
          "-07:00": /^([+-])(\d{2}):(\d{2})/,
          "-070000": /^([+-])(\d{2})(\d{2})(\d{2})/,
          "-07:00:00": /^([+-])(\d{2}):(\d{2}):(\d{2})/,
        }[shape];
        const m = re?.exec(v) ?? bad();
        // Go: an offset's hour above 24, or minute or second above 60, is out of range.
        if (Number(m[2]) > 24 || Number(m[3] ?? 0) > 60 || Number(m[4] ?? 0) > 60) bad();
        const secs = Number(m[2]) * 3600 + Number(m[3] ?? 0) * 60 + Number(m[4] ?? 0);
        offset = m[1] === "-" ? -secs : secs;
        v = v.slice(m[0].length);
      }
    }
  }
  if (v !== "") builtinError(name, `parsing time ${JSON.stringify(valueArg)}: extra text`);
  if (pm !== undefined) {
    if (hour > 12) bad();
    if (pm && hour < 12) hour += 12;
    if (!pm && hour === 12) hour = 0;
  }
  const dim = [
    31,
    year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28,
    31,
    30,
    31,
    30,
    31,
    31,
    30,
    31,
    30,
    31,
  ][month - 1]!;
  if (day > dim) builtinError(name, `parsing time ${JSON.stringify(valueArg)}: day out of range`);
  const days = BigInt(daysFromCivil(year, month, day));
  const ns = (days * 86_400n + BigInt(hour * 3600 + minute * 60 + second - offset)) * 1_000_000_000n + nanos;
  if (ns < -(1n << 63n) || ns > (1n << 63n) - 1n) builtinError(name, "time outside of valid range");
  return ns;
}

export const timeParseHostBuiltins: Record<string, HostBuiltin> = {
  "time.parse_ns": jsonIo(parse),
};
