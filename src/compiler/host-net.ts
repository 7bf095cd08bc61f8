/**
 * OPA's `net.cidr_merge` and `net.cidr_expand` (issue #13), following `topdown/cidr.go` and
 * `internal/cidr/merge`: addresses live in one 128-bit space where IPv4 is IPv4-mapped
 * (`::ffff:a.b.c.d`), ranges are sorted by last then first address and merged from the end, and
 * a merged range is written as the fewest CIDRs that cover it exactly. Go quirks kept: a bare
 * IPv4 address takes its classful default mask (`10.1.2.3` is `10.1.2.3/8`, printed unmasked
 * when nothing merges with it), and a bare IPv6 address is an error ("needs prefix length").
 * Inputs whose Go handling is byte-length dependent (IPv6 notation of IPv4-mapped networks, a
 * merge across the IPv4-mapped boundary) are refused with an error instead of guessed.
 * Both answer sets; the planner turns the JSON array into one (HOST_SET_RESULTS).
 */
import { cidrContains, parseCidr, parseIp } from "./host-builtins-more.ts";
import type { HostBuiltin } from "./host-types.ts";

const V4_MAPPED = 0xffffn << 32n;
const isV4Mapped = (a: bigint) => a >> 32n === 0xffffn;

/** net.cidr_expand answers at most this many addresses (OPA has no bound but a deadline). */
const MAX_EXPAND = 65536;

function dotted(v: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join(".");
}

/** Go's net.IP.String(): IPv4-mapped addresses as dotted IPv4, else RFC 5952. */
function ipText(addr: bigint): string {
  if (isV4Mapped(addr)) return dotted(addr & 0xffffffffn);
  const groups = Array.from({ length: 8 }, (_, i) => Number((addr >> BigInt(112 - 16 * i)) & 0xffffn));
  let [e0, e1] = [-1, -1];
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j > i && j - i > e1 - e0) [e0, e1] = [i, j];
    if (j > i) i = j;
  }
  if (e1 - e0 <= 1) [e0, e1] = [-1, -1];
  const hex = (g: number[]) => g.map((x) => x.toString(16)).join(":");
  if (e0 < 0) return hex(groups);
  return `${hex(groups.slice(0, e0))}::${hex(groups.slice(e1))}`;
}

interface Range {
  first: bigint; // in the 128-bit space
  last: bigint;
  /** The network's own text (Go's IPNet.String()) while it is not merged with another. */
  text?: string;
}

function fail(name: string, message: string): never {
  throw new Error(`${name}: ${message}`);
}

/** OPA's generateIPNet + GetAddressRange for one element of net.cidr_merge's operand. */
function toRange(e: unknown): Range | undefined {
  if (typeof e !== "string") return undefined; // "element must be string"
  if (!e.includes("/")) {
    const ip = parseIp(e);
    if (!ip) return undefined;
    if (ip[0] === 128 && !isV4Mapped(ip[1])) return undefined; // IPv6 invalid: needs prefix length
    const v = ip[1] & 0xffffffffn;
    const first8 = Number(v >> 24n);
    const prefix = first8 < 0x80 ? 8 : first8 < 0xc0 ? 16 : 24;
    const host = (1n << BigInt(32 - prefix)) - 1n;
    return { first: V4_MAPPED | (v & ~host), last: V4_MAPPED | (v & ~host) | host, text: `${dotted(v)}/${prefix}` };
  }
  const net = parseCidr(e);
  if (!net) return undefined;
  const [bits, first, last] = net;
  const prefix = bits - (last - first + 1n).toString(2).length + 1;
  if (bits === 32) return { first: V4_MAPPED | first, last: V4_MAPPED | last, text: `${dotted(first)}/${prefix}` };
  if (isV4Mapped(first)) fail("net.cidr_merge", `${e}: an IPv4-mapped network in IPv6 notation is not supported`);
  return { first, last, text: `${ipText(first)}/${prefix}` };
}

/** The fewest CIDRs covering [first, last] exactly (internal/cidr/merge.RangeToCIDRs). */
function rangeToCidrs(first: bigint, last: bigint): string[] {
  const v4 = isV4Mapped(first);
  if (v4 !== isV4Mapped(last)) fail("net.cidr_merge", "a range across the IPv4-mapped boundary is not supported");
  const bits = v4 ? 32 : 128;
  const base = v4 ? V4_MAPPED : 0n;
  let lo = first - base;
  const hi = last - base;
  const out: string[] = [];
  while (lo <= hi) {
    let size = 0;
    while (size < bits && (lo & ((1n << BigInt(size + 1)) - 1n)) === 0n && lo + (1n << BigInt(size + 1)) - 1n <= hi)
      size++;
    out.push(`${v4 ? dotted(lo) : ipText(lo)}/${bits - size}`);
    lo += 1n << BigInt(size);
  }
  return out;
}

function cidrMerge(addrs: unknown): string[] | undefined {
  if (!Array.isArray(addrs)) return undefined;
  const ranges: Range[] = [];
  for (const e of addrs) {
    const r = toRange(e);
    if (!r) return undefined;
    ranges.push(r);
  }
  ranges.sort((a, b) =>
    a.last < b.last ? -1 : a.last > b.last ? 1 : a.first < b.first ? -1 : a.first > b.first ? 1 : 0,
  );
  for (let i = ranges.length - 1; i > 0; i--) {
    const cur = ranges[i]!;
    const prev = ranges[i - 1]!;
    const before = cur.first === 0n || cur.first === V4_MAPPED ? cur.first : cur.first - 1n;
    if (before <= prev.last) {
      ranges[i - 1] = { first: prev.first < cur.first ? prev.first : cur.first, last: cur.last };
      ranges.splice(i, 1);
    }
  }
  return ranges.flatMap((r) => (r.text !== undefined ? [r.text] : rangeToCidrs(r.first, r.last)));
}

function cidrExpand(cidr: unknown): string[] | undefined {
  const net = parseCidr(cidr);
  if (!net) return undefined;
  const [bits, first, last] = net;
  if (last - first >= BigInt(MAX_EXPAND)) {
    fail("net.cidr_expand", `${String(cidr)} has more than ${MAX_EXPAND} addresses (Arbiter's bound)`);
  }
  const out: string[] = [];
  for (let a = first; a <= last; a++) out.push(bits === 32 ? dotted(a) : ipText(a));
  return out;
}

export const netHostBuiltins: Record<string, HostBuiltin> = {
  "net.cidr_merge": cidrMerge,
  "net.cidr_expand": cidrExpand,
};

/** OPA's getCIDRMatchTerm: a string, or the first element of a non-empty array. */
function matchTerm(v: unknown): unknown {
  if (typeof v === "string") return v;
  if (Array.isArray(v) && v.length > 0) return v[0];
  return undefined;
}

/** [cidr, index] pairs of one operand: a string is its own index; arrays by position, sets by element, objects by key. */
function matchOperand(v: unknown, type: unknown): [unknown, unknown][] | undefined {
  if (typeof v === "string") return [[v, v]];
  const out: [unknown, unknown][] = [];
  const entries: [unknown, unknown][] =
    type === "array"
      ? (v as unknown[]).map((x, i) => [x, i])
      : type === "set"
        ? (v as unknown[]).map((x) => [x, x])
        : type === "object"
          ? Object.entries(v as object).map(([k, x]) => [x, k])
          : [];
  for (const [x, index] of entries) {
    const cidr = matchTerm(x);
    if (cidr === undefined) return undefined; // "element must be string or non-empty array"
    out.push([cidr, index]);
  }
  return out;
}

/** net.cidr_contains_matches: every [index1, index2] whose CIDR contains the other's CIDR or address. */
function cidrContainsMatches(a: unknown, b: unknown, typeA: unknown, typeB: unknown): unknown[] | undefined {
  const left = matchOperand(a, typeA);
  const right = matchOperand(b, typeB);
  if (!left || !right) return undefined;
  const out: unknown[] = [];
  for (const [c1, i1] of left) {
    for (const [c2, i2] of right) {
      const r = cidrContains(c1, c2);
      if (r === undefined) return undefined; // OPA: the net.cidr_contains error
      if (r) out.push([i1, i2]);
    }
  }
  return out;
}

netHostBuiltins["net.cidr_contains_matches"] = cidrContainsMatches;
