/**
 * OPA's `regex.globs_match(g1, g2)`: whether two glob-like patterns have a common non-empty string,
 * answered as OPA's library (github.com/yashtewari/glob-intersection v0.2.0, `NonEmpty`) answers
 * it, quirks included, so a policy gets OPA's answer and not a different, "more correct" one.
 *
 * A pattern is a list of tokens, each a character, `.` (any character) or a set `[a-z0-9]`, with
 * an optional `*` or `+` after it; `\` escapes the next character; ranges are expanded by code
 * point. The library trims a common unflagged prefix and suffix, then walks both lists: unflagged
 * tokens must match pairwise, and a flagged token "gobbles" tokens of the other pattern while they
 * match it. It is a heuristic (for example `.` matches an empty set `[]`); this module keeps its
 * answers. Its recursion can try the same pair of positions many times, which a hostile pair of
 * patterns could make exponential; the answers are memoized by position, which changes no answer
 * (each step is a pure function of the two positions). What is left is polynomial; past MAX_STEPS
 * token comparisons or MAX_DEPTH nested steps (JavaScript's stack is smaller than Go's) the call
 * fails the evaluation, a limit of Arbiter's and never an answer, rather than hold the event loop.
 *
 * A bad pattern is OPA's builtin error (undefined, or with strict builtin errors a failed
 * evaluation); its text is the library's, `input:<pattern>, pos:<n>, <problem>: the input provided
 * is invalid`, with `n` counted in code points.
 */
import type { HostBuiltin } from "./host-types.ts";

type Flag = 0 | 1 | 2; // none, plus, star
const NONE = 0;
const PLUS = 1;
const STAR = 2;

/** A token: `char` one code point, `dot`, or `set` as sorted, merged code point ranges. */
type Token =
  | { kind: "char"; cp: number; flag: Flag }
  | { kind: "dot"; flag: Flag }
  | { kind: "set"; ranges: [number, number][]; flag: Flag };

class GlobError extends Error {
  override readonly name = "GlobError";
}

const invalid = (input: readonly number[], pos: number, problem: string): GlobError =>
  new GlobError(
    `input:${input.map((c) => String.fromCodePoint(c)).join("")}, pos:${pos}, ${problem}: the input provided is invalid`,
  );

/** Go's []rune(s): code points, a lone surrogate (not UTF-8 at all) as U+FFFD. */
function runes(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    out.push(cp >= 0xd800 && cp <= 0xdfff ? 0xfffd : cp);
  }
  return out;
}

interface Rune {
  readonly next: number;
  readonly r: number;
  readonly escaped: boolean;
}

/** The library's nextRune: undefined at the end of the input. */
function nextRune(input: readonly number[], index: number): Rune | undefined {
  if (index >= input.length) return undefined;
  if (input[index] !== 0x5c) return { next: index + 1, r: input[index]!, escaped: false };
  if (index === input.length - 1) throw invalid(input, index, "input ends with a \\ (escape) character");
  return { next: index + 2, r: input[index + 1]!, escaped: true };
}

/** The library's nextTokenSet, from just after `[`. */
function nextSet(input: readonly number[], index: number): { next: number; token: Token } {
  const ranges: [number, number][] = [];
  let prev = 0;
  let prevExists = false;
  let at = index;
  for (let c = nextRune(input, at); c !== undefined; c = nextRune(input, at)) {
    at = c.next;
    if (c.escaped || (c.r !== 0x2d && c.r !== 0x5d)) {
      ranges.push([c.r, c.r]);
      prev = c.r;
      prevExists = true;
    } else if (c.r === 0x5d) {
      return { next: at, token: { kind: "set", ranges: normalize(ranges), flag: NONE } };
    } else {
      if (!prevExists) throw invalid(input, at, "range character '-' must be preceded by a Unicode character");
      if (at >= input.length - 1)
        throw invalid(input, at, "range character '-' must be followed by a Unicode character");
      const end = nextRune(input, at)!;
      at = end.next;
      if (!end.escaped && (end.r === 0x5d || end.r === 0x2d))
        throw invalid(input, at, "range character '-' cannot be followed by a special symbol");
      if (end.r < prev) {
        const [a, b] = [String.fromCodePoint(end.r), String.fromCodePoint(prev)];
        throw invalid(input, at, `range is out of order: '${a}' comes before '${b}' in Unicode`);
      }
      ranges.push([prev, end.r]);
      prevExists = false;
    }
  }
  throw invalid(input, at, "found [ without matching ]");
}

function normalize(ranges: [number, number][]): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

/** The library's Tokenize: tokens with their flags. */
function tokenize(input: readonly number[]): Token[] {
  const tokens: Token[] = [];
  let at = 0;
  for (let c = nextRune(input, at); c !== undefined; c = nextRune(input, at)) {
    at = c.next;
    let token: Token;
    if (c.escaped) token = { kind: "char", cp: c.r, flag: NONE };
    else if (c.r === 0x2e) token = { kind: "dot", flag: NONE };
    else if (c.r === 0x5d) throw invalid(input, at, "set-close ']' with no preceding '['");
    else if (c.r === 0x5b) ({ next: at, token } = nextSet(input, at));
    else if (c.r === 0x2a || c.r === 0x2b)
      throw invalid(input, at, `flag '${String.fromCodePoint(c.r)}' must be preceded by a non-flag`);
    else token = { kind: "char", cp: c.r, flag: NONE };
    const f = nextRune(input, at);
    if (f !== undefined && !f.escaped && (f.r === 0x2a || f.r === 0x2b)) {
      token.flag = f.r === 0x2a ? STAR : PLUS;
      at = f.next;
    }
    tokens.push(token);
  }
  return tokens;
}

const sameRanges = (a: [number, number][], b: [number, number][]): boolean =>
  a.length === b.length && a.every(([lo, hi], i) => lo === b[i]![0] && hi === b[i]![1]);

/** Token.Equal: the same content, flags aside. */
function equal(a: Token, b: Token): boolean {
  if (a.kind === "char") return b.kind === "char" && a.cp === b.cp;
  if (a.kind === "dot") return b.kind === "dot";
  return b.kind === "set" && sameRanges(a.ranges, b.ranges);
}

/** The library's Simplify: a flagged token right after an equal flagged one merges into it. */
function simplify(tokens: Token[]): Token[] {
  if (tokens.length === 0) return tokens;
  const out = [tokens[0]!];
  for (const t of tokens.slice(1)) {
    const latest = out[out.length - 1]!;
    if (t.flag !== NONE && latest.flag !== NONE && equal(t, latest)) {
      latest.flag = t.flag === PLUS || latest.flag === PLUS ? PLUS : STAR;
    } else {
      out.push(t);
    }
  }
  return out;
}

const inRanges = (cp: number, ranges: [number, number][]): boolean => ranges.some(([lo, hi]) => cp >= lo && cp <= hi);

/** The library's Match, flags aside: can the two tokens match one same character. */
function match(a: Token, b: Token): boolean {
  if (a.kind === "dot" || b.kind === "dot") return true; // even against an empty set, as the library
  if (a.kind === "char") return b.kind === "char" ? a.cp === b.cp : inRanges(a.cp, b.ranges);
  if (b.kind === "char") return inRanges(b.cp, a.ranges);
  return a.ranges.some(([lo, hi]) => b.ranges.some(([lo2, hi2]) => lo <= hi2 && lo2 <= hi));
}

/** Token comparisons one call may make, and how deep its recursion may go (each well under 0.1 s). */
export const MAX_STEPS = 2_000_000;
export const MAX_DEPTH = 1_000;

class GlobLimitError extends Error {
  override readonly name = "GlobLimitError";
}

/**
 * The library's intersectNormal / intersectSpecial / intersectPlus / intersectStar over suffixes
 * of the two globs: `x` names one glob (0 or 1) and `i` where its suffix starts, `j` where the
 * other glob's suffix starts.
 */
class Intersector {
  readonly #g: readonly [readonly Token[], readonly Token[]];
  readonly #memo = new Map<number, boolean>();
  readonly #width: number;
  #steps = 0;
  #depth = 0;

  constructor(g0: readonly Token[], g1: readonly Token[]) {
    this.#g = [g0, g1];
    this.#width = Math.max(g0.length, g1.length) + 1;
  }

  #step(): void {
    if (++this.#steps > MAX_STEPS)
      throw new GlobLimitError(`regex.globs_match: the patterns need more than ${MAX_STEPS} steps`);
  }

  #enter(): void {
    if (++this.#depth > MAX_DEPTH)
      throw new GlobLimitError(`regex.globs_match: the patterns nest more than ${MAX_DEPTH} deep`);
  }

  /** intersectNormal(g[x][i:], g[1-x][j:]), memoized. */
  normal(x: number, i: number, j: number): boolean {
    const key = ((x * this.#width + i) * this.#width + j) * 2;
    let answer = this.#memo.get(key);
    if (answer !== undefined) return answer;
    this.#enter();
    const [a, b] = [this.#g[x]!, this.#g[1 - x]!];
    answer = false;
    for (let k = 0; ; k++) {
      if (i + k >= a.length || j + k >= b.length) {
        answer = i + k === a.length && j + k === b.length;
        break;
      }
      this.#step();
      const [t, u] = [a[i + k]!, b[j + k]!];
      if (t.flag === NONE && u.flag === NONE) {
        if (!match(t, u)) break;
        continue;
      }
      // intersectSpecial: the glob whose token is flagged leads.
      if (t.flag !== NONE) answer = t.flag === PLUS ? this.#plus(x, i + k, j + k) : this.#star(x, i + k, j + k);
      else answer = u.flag === PLUS ? this.#plus(1 - x, j + k, i + k) : this.#star(1 - x, j + k, i + k);
      break;
    }
    this.#depth--;
    this.#memo.set(key, answer);
    return answer;
  }

  /** intersectPlus(g[x][i:], g[1-x][j:]). */
  #plus(x: number, i: number, j: number): boolean {
    const [plussed, other] = [this.#g[x]!, this.#g[1 - x]!];
    if (!match(plussed[i]!, other[j]!)) return false;
    if (this.#star(x, i, j + 1)) return true;
    return other[j]!.flag !== NONE && this.normal(x, i + 1, j);
  }

  /** intersectStar(g[x][i:], g[1-x][j:]), memoized. */
  #star(x: number, i: number, j: number): boolean {
    const key = ((x * this.#width + i) * this.#width + j) * 2 + 1;
    let answer = this.#memo.get(key);
    if (answer !== undefined) return answer;
    this.#enter();
    const [starred, other] = [this.#g[x]!, this.#g[1 - x]!];
    const [star, next] = [starred[i]!, starred[i + 1]];
    answer = next === undefined;
    for (let k = j; k < other.length; k++) {
      this.#step();
      const t = other[k]!;
      if (next !== undefined && match(t, next) && this.normal(x, i + 1, k)) {
        answer = true;
        break;
      }
      if (!match(t, star)) {
        answer = false;
        break;
      }
    }
    this.#depth--;
    this.#memo.set(key, answer);
    return answer;
  }
}

/** The library's trimGlobs: the common unflagged prefix and suffix, less one token each; null on a mismatch. */
function trim(g1: Token[], g2: Token[]): [Token[], Token[]] | null {
  let l = 0;
  for (; l < g1.length && l < g2.length && g1[l]!.flag === NONE && g2[l]!.flag === NONE; l++) {
    if (!match(g1[l]!, g2[l]!)) return null;
  }
  if (l > 0) l--;
  let r1 = g1.length - 1;
  let r2 = g2.length - 1;
  for (; r1 >= 0 && r1 >= l && r2 >= 0 && r2 >= l && g1[r1]!.flag === NONE && g2[r2]!.flag === NONE; r1--, r2--) {
    if (!match(g1[r1]!, g2[r2]!)) return null;
  }
  if (r1 < g1.length - 1) {
    r1++;
    r2++;
  }
  return [g1.slice(l, r1 + 1), g2.slice(l, r2 + 1)];
}

/** NonEmpty(lhs, rhs); throws GlobError for a bad pattern. */
export function globsIntersect(lhs: string, rhs: string): boolean {
  const g1 = simplify(tokenize(runes(lhs)));
  const g2 = simplify(tokenize(runes(rhs)));
  const trimmed = trim(g1, g2);
  if (trimmed === null) return false;
  return new Intersector(trimmed[0], trimmed[1]).normal(0, 0, 0);
}

/** regex.globs_match: undefined (OPA's builtin error) for a non-string operand or a bad pattern. */
function globsMatch(lhs: unknown, rhs: unknown): boolean | undefined {
  if (typeof lhs !== "string" || typeof rhs !== "string") return undefined;
  try {
    return globsIntersect(lhs, rhs);
  } catch (err) {
    if (err instanceof GlobError) return undefined;
    throw err;
  }
}

export const globHostBuiltins: Record<string, HostBuiltin> = {
  "regex.globs_match": globsMatch,
};
