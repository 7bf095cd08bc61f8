/**
 * OPA's `time.date`, `time.clock`, `time.weekday`, `time.add_date`, `time.diff`,
 * `time.parse_duration_ns` and `time.format` (RFC 3339 layouts only) with Go's semantics
 * (issue #13, `topdown/time.go`). Nanosecond timestamps are int64 and exceed 2^53, so these are
 * HOST_JSON_IO builtins (builtins.ts): arguments and answers are JSON text with BigInt integers.
 *
 * Time zones: "" and "UTC" are UTC; other IANA names are resolved through Intl (ICU's copy of
 * the tz database, as Go's is). "Local" (the host's zone) and names Go would not load (Intl
 * ignores case; Go does not) are errors. A timestamp that is not an int64 is OPA's
 * "timestamp too big" error; a result outside int64 nanoseconds is "time outside of valid
 * range"; both throw here (an error, never another value).
 */
import { builtinError, type ExactJson, jsonIo } from "./host-exact-json.ts";
import type { HostBuiltin } from "./host-types.ts";

const NS_PER_S = 1_000_000_000n;
const NS_PER_DAY = 86_400n * NS_PER_S;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/** A limit of Arbiter's (not an OPA error): the evaluation fails. */
function unsupported(name: string, message: string): never {
  throw new Error(`${name}: ${message}`);
}

/** An OPA builtin error (undefined, or a failed evaluation under strict builtin errors). */
function fail(name: string, message: string): never {
  builtinError(name, message);
}

const floorDiv = (a: bigint, b: bigint) => (a >= 0n ? a / b : -((-a + b - 1n) / b));

/** Days since 1970-01-01 -> [year, month, day] (proleptic Gregorian, H. Hinnant's algorithm). */
function civilFromDays(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

/** [year, month (any integer, normalized as Go's time.Date does), day (any)] -> days since epoch. */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y0 = year + Math.floor((month - 1) / 12);
  const m = ((((month - 1) % 12) + 12) % 12) + 1;
  const y = y0 - (m <= 2 ? 1 : 0);
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5);
  return era * 146097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719468 + (day - 1);
}

const MAX_ZONES = 200;
const zones = new Map<string, Intl.DateTimeFormat>();

function zone(name: string, tz: string): Intl.DateTimeFormat {
  let f = zones.get(tz);
  if (f) return f;
  if (tz === "Local") unsupported(name, "the Local time zone is the host's and is not supported");
  try {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
  } catch {
    fail(name, `unknown time zone ${tz}`);
  }
  const resolved = f.resolvedOptions().timeZone;
  // Intl ignores case, Go's LoadLocation does not: "america/new_york" is an error in OPA.
  if (resolved !== tz && resolved.toLowerCase() === tz.toLowerCase()) fail(name, `unknown time zone ${tz}`);
  if (zones.size >= MAX_ZONES) zones.clear();
  zones.set(tz, f);
  return f;
}

/** A moment: nanoseconds since the epoch, and its UTC offset in seconds in the chosen zone. */
interface Moment {
  readonly ns: bigint;
  readonly offset: number;
  readonly tz: string;
}

function offsetAt(name: string, ns: bigint, tz: string): number {
  if (tz === "" || tz === "UTC") return 0;
  const ms = floorDiv(ns, 1_000_000n);
  const parts = Object.fromEntries(
    zone(name, tz)
      .formatToParts(new Date(Number(ms)))
      .map((p) => [p.type, p.value]),
  );
  const wall = Date.UTC(
    Number(parts.year),
    Number(parts.month) - 1,
    Number(parts.day),
    Number(parts.hour),
    Number(parts.minute),
    Number(parts.second),
  );
  const secs = Number(floorDiv(ms, 1000n));
  return Math.round((wall - secs * 1000) / 1000);
}

/** OPA's tzTime: a number (ns, UTC) or [ns, tz] (the layout element is read by time.format). */
function moment(name: string, a: ExactJson): Moment {
  let n: ExactJson = a;
  let tz = "";
  if (Array.isArray(a)) {
    if (a.length === 0) fail(name, "operand 1 must be either number (ns) or [number (ns), string (tz)]");
    n = a[0]!;
    if (a.length > 1) {
      if (typeof a[1] !== "string") fail(name, "operand 1: the time zone must be a string");
      tz = a[1];
    }
  }
  if (typeof n === "number") fail(name, "timestamp too big"); // not an integer (Go: inexact Int64)
  if (typeof n !== "bigint") fail(name, "operand 1 must be a number");
  if (n < INT64_MIN || n > INT64_MAX) fail(name, "timestamp too big");
  return { ns: n, offset: offsetAt(name, n, tz), tz };
}

/** Wall-clock fields of a moment in its zone. */
function fields(m: Moment) {
  const local = m.ns + BigInt(m.offset) * NS_PER_S;
  const days = floorDiv(local, NS_PER_DAY);
  const inDay = local - days * NS_PER_DAY;
  const secs = Number(inDay / NS_PER_S);
  const [year, month, day] = civilFromDays(Number(days));
  return {
    year,
    month,
    day,
    days: Number(days),
    hour: Math.floor(secs / 3600),
    minute: Math.floor(secs / 60) % 60,
    second: secs % 60,
    nanos: inDay % NS_PER_S,
  };
}

function checkRange(name: string, ns: bigint): bigint {
  if (ns < INT64_MIN || ns > INT64_MAX) fail(name, "time outside of valid range");
  return ns;
}

function int(name: string, v: ExactJson, pos: number): number {
  if (typeof v !== "bigint") fail(name, `operand ${pos} must be an integer`);
  return Number(v);
}

function addDate(ns: ExactJson, years: ExactJson, months: ExactJson, days: ExactJson): ExactJson {
  const name = "time.add_date";
  if (Array.isArray(ns)) fail(name, "operand 1 must be a number"); // no time zone here
  const f = fields(moment(name, ns));
  const y = int(name, years, 2);
  const mo = int(name, months, 3);
  const d = int(name, days, 4);
  const day = daysFromCivil(f.year + y, f.month + mo, f.day + d);
  const secs = BigInt(day) * 86_400n + BigInt(f.hour * 3600 + f.minute * 60 + f.second);
  return checkRange(name, secs * NS_PER_S + f.nanos);
}

/** time.diff: icza/gox's algorithm as OPA uses it. */
function diff(a: ExactJson, b: ExactJson): ExactJson {
  const name = "time.diff";
  let m1 = moment(name, a);
  let m2 = moment(name, b);
  m2 = { ns: m2.ns, tz: m1.tz, offset: offsetAt(name, m2.ns, m1.tz) };
  if (m1.ns > m2.ns) [m1, m2] = [{ ...m2 }, { ...m1 }];
  const f1 = fields(m1);
  const f2 = fields(m2);
  let [year, month, day] = [f2.year - f1.year, f2.month - f1.month, f2.day - f1.day];
  let [hour, min, sec] = [f2.hour - f1.hour, f2.minute - f1.minute, f2.second - f1.second];
  if (sec < 0) [sec, min] = [sec + 60, min - 1];
  if (min < 0) [min, hour] = [min + 60, hour - 1];
  if (hour < 0) [hour, day] = [hour + 24, day - 1];
  if (day < 0) {
    const d32 = civilFromDays(daysFromCivil(f1.year, f1.month, 32))[2];
    [day, month] = [day + 32 - d32, month - 1];
  }
  if (month < 0) [month, year] = [month + 12, year - 1];
  return [year, month, day, hour, min, sec].map(BigInt);
}

const UNITS: Record<string, bigint> = {
  ns: 1n,
  us: 1000n,
  "\u00b5s": 1000n,
  "\u03bcs": 1000n,
  ms: 1_000_000n,
  s: NS_PER_S,
  m: 60n * NS_PER_S,
  h: 3600n * NS_PER_S,
};

/** Go's time.ParseDuration, exactly (including its float64 rounding of fractions). */
function parseDuration(text: ExactJson): ExactJson {
  const name = "time.parse_duration_ns";
  if (typeof text !== "string") fail(name, "operand 1 must be a string");
  let s = text;
  const bad = () => fail(name, `time: invalid duration "${text}"`);
  let neg = false;
  if (s !== "" && (s[0] === "-" || s[0] === "+")) [neg, s] = [s[0] === "-", s.slice(1)];
  if (s === "0") return 0n;
  if (s === "") bad();
  let total = 0n;
  const limit = 1n << 63n;
  while (s !== "") {
    const lead = /^(\d*)(?:\.(\d*))?/.exec(s)!;
    const pre = lead[1]!;
    const post = lead[2];
    if (pre === "" && (post === undefined || post === "")) bad();
    s = s.slice(lead[0].length);
    const unitText = /^[^.0-9]*/.exec(s)![0];
    if (unitText === "") fail(name, `time: missing unit in duration "${text}"`);
    const unit = UNITS[unitText];
    if (unit === undefined) fail(name, `time: unknown unit "${unitText}" in duration "${text}"`);
    s = s.slice(unitText.length);
    let v = BigInt(pre || "0");
    if (v > limit / unit) bad();
    v *= unit;
    if (post) {
      // Go's leadingFraction: digits until the value would overflow, then ignored.
      let f = 0n;
      let scale = 1n;
      let overflow = false;
      for (const c of post) {
        if (overflow) continue;
        if (f > (limit - 1n) / 10n) {
          overflow = true;
          continue;
        }
        const y = f * 10n + BigInt(c);
        if (y > limit) {
          overflow = true;
          continue;
        }
        f = y;
        scale *= 10n;
      }
      if (f > 0n) {
        v += BigInt(Math.trunc(Number(f) * (Number(unit) / Number(scale))));
        if (v > limit) bad();
      }
    }
    total += v;
    if (total > limit) bad();
  }
  if (neg) return -total;
  if (total > limit - 1n) bad();
  return total;
}

const pad = (n: number | bigint, w: number) => String(n).padStart(w, "0");

/** time.format with the RFC 3339 layouts (the default is RFC3339Nano); other layouts are refused. */
function format(a: ExactJson): ExactJson {
  const name = "time.format";
  const m = moment(name, a);
  let layout = "RFC3339Nano";
  if (Array.isArray(a) && a.length > 2) {
    if (typeof a[2] !== "string") fail(name, "operand 1: the layout must be a string");
    layout = a[2];
  }
  const nano = layout === "RFC3339Nano" || layout === "2006-01-02T15:04:05.999999999Z07:00";
  if (!nano && layout !== "RFC3339" && layout !== "2006-01-02T15:04:05Z07:00") {
    unsupported(name, `layout ${JSON.stringify(layout)} is not supported by Arbiter (RFC 3339 layouts only)`);
  }
  const f = fields(m);
  if (f.year < 0 || f.year > 9999) unsupported(name, "a year outside of [0,9999]");
  const frac = nano && f.nanos > 0n ? `.${pad(f.nanos, 9).replace(/0+$/, "")}` : "";
  const off = Math.abs(m.offset);
  const zoneText =
    m.offset === 0
      ? "Z"
      : `${m.offset < 0 ? "-" : "+"}${pad(Math.floor(off / 3600), 2)}:${pad(Math.floor(off / 60) % 60, 2)}`;
  return `${pad(f.year, 4)}-${pad(f.month, 2)}-${pad(f.day, 2)}T${pad(f.hour, 2)}:${pad(f.minute, 2)}:${pad(f.second, 2)}${frac}${zoneText}`;
}

export const timeHostBuiltins: Record<string, HostBuiltin> = {
  "time.date": jsonIo((a) => {
    const f = fields(moment("time.date", a));
    return [BigInt(f.year), BigInt(f.month), BigInt(f.day)];
  }),
  "time.clock": jsonIo((a) => {
    const f = fields(moment("time.clock", a));
    return [BigInt(f.hour), BigInt(f.minute), BigInt(f.second)];
  }),
  "time.weekday": jsonIo((a) => WEEKDAYS[(((fields(moment("time.weekday", a)).days + 4) % 7) + 7) % 7]!),
  "time.add_date": jsonIo(addDate),
  "time.diff": jsonIo(diff),
  "time.parse_duration_ns": jsonIo(parseDuration),
  "time.format": jsonIo(format),
};
