/**
 * Policy result set -> typed result, with the shape checks of docs/input-schema.md. Anything that
 * does not fit is a `Rejected` with the fail-closed reason and a detail for the log.
 */
import type { Fallback, Obligations, TerminalMode } from "./types.ts";
import { isObject } from "../util/object.ts";

export type FailClosedReason =
  | "no_bundle"
  | "policy_error"
  | "evaluation_timeout"
  | "policy_undefined"
  | "policy_invalid_result"
  | "audit_unavailable"
  | "usage_unavailable"
  | "state_unavailable"
  | "evaluation_timeout";

export interface Rejected {
  readonly ok: false;
  readonly reason: FailClosedReason;
  /** For the log only (never shown to the caller). */
  readonly detail: string;
}

export interface Accepted<T> {
  readonly ok: true;
  readonly value: T;
  readonly cacheable: boolean;
}

export type Parsed<T> = Accepted<T> | Rejected;

export interface DecideResult {
  readonly allow: boolean;
  readonly reasons: readonly string[];
  readonly riskTier: number;
  readonly requiresApproval: boolean;
  readonly obligations: Obligations;
}

export interface RouteResult {
  readonly provider: string;
  readonly model: string;
  readonly reasons: readonly string[];
  readonly fallbacks: readonly Fallback[];
}

export interface GuardMemoryResult {
  readonly allow: boolean;
  readonly reasons: readonly string[];
}

export interface FinalizeResult {
  readonly mode: TerminalMode;
  readonly reasons: readonly string[];
}

type Doc = Record<string, unknown>;

const invalid = (detail: string): Rejected => ({ ok: false, reason: "policy_invalid_result", detail });

/** The document of a result set: `[]` is undefined, `[{result: doc}]` is doc. */
export function unwrapResultSet(rs: unknown): { ok: true; doc: Doc } | Rejected {
  if (!Array.isArray(rs)) return invalid("result set is not an array");
  if (rs.length === 0) return { ok: false, reason: "policy_undefined", detail: "result set is empty" };
  if (rs.length > 1) return invalid(`result set has ${rs.length} entries`);
  const first = rs[0] as unknown;
  if (!isObject(first) || !("result" in first)) return invalid("result set entry has no result");
  if (!isObject(first.result)) return invalid("result is not an object");
  return { ok: true, doc: first.result };
}

class ShapeError extends Error {}

function strings(doc: Doc, key: string, required: boolean, prefix = ""): string[] {
  const v = doc[key];
  if (v === undefined && !required) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === "string")) {
    throw new ShapeError(`${prefix}${key}: expected an array of strings`);
  }
  return [...new Set(v as string[])];
}

function bool(doc: Doc, key: string, fallback?: boolean): boolean {
  const v = doc[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "boolean") throw new ShapeError(`${key}: expected a boolean`);
  return v;
}

function cacheable(doc: Doc): boolean {
  return bool(doc, "cacheable", true);
}

function parse<T>(rs: unknown, read: (doc: Doc) => T): Parsed<T> {
  const unwrapped = unwrapResultSet(rs);
  if (!unwrapped.ok) return unwrapped;
  try {
    const value = read(unwrapped.doc);
    const mayCache = cacheable(unwrapped.doc);
    return { ok: true, value, cacheable: mayCache };
  } catch (err) {
    if (err instanceof ShapeError) return invalid(err.message);
    throw err;
  }
}

export function parseDecide(rs: unknown): Parsed<DecideResult> {
  return parse(rs, (doc) => {
    const tier = doc.risk_tier ?? 0;
    if (typeof tier !== "number" || !Number.isInteger(tier) || tier < 0 || tier > 3) {
      throw new ShapeError("risk_tier: expected an integer 0..3");
    }
    const ob = doc.obligations ?? {};
    if (!isObject(ob)) throw new ShapeError("obligations: expected an object");
    return {
      allow: bool(doc, "allow"),
      reasons: strings(doc, "reasons", true),
      riskTier: tier,
      requiresApproval: bool(doc, "requires_approval", false),
      obligations: {
        redactFields: strings(ob, "redact_fields", false, "obligations."),
        allowFields: strings(ob, "allow_fields", false, "obligations."),
      },
    };
  });
}

export function parseRoute(rs: unknown): Parsed<RouteResult> {
  return parse(rs, (doc) => {
    if (typeof doc.provider !== "string" || doc.provider === "")
      throw new ShapeError("provider: expected a non-empty string");
    const model = doc.model ?? "";
    if (typeof model !== "string") throw new ShapeError("model: expected a string");
    const fb = doc.fallbacks ?? [];
    if (!Array.isArray(fb)) throw new ShapeError("fallbacks: expected an array");
    const fallbacks = fb.map((f: unknown, i) => {
      if (!isObject(f) || typeof f.provider !== "string" || f.provider === "" || typeof (f.model ?? "") !== "string") {
        throw new ShapeError(`fallbacks[${i}]: expected {provider: non-empty string, model: string}`);
      }
      return { provider: f.provider, model: (f.model ?? "") as string };
    });
    return { provider: doc.provider, model, reasons: strings(doc, "reasons", true), fallbacks };
  });
}

export function parseGuardMemory(rs: unknown): Parsed<GuardMemoryResult> {
  return parse(rs, (doc) => ({ allow: bool(doc, "allow"), reasons: strings(doc, "reasons", true) }));
}

const MODES: ReadonlySet<string> = new Set([
  "SUPPORTED",
  "INSUFFICIENT_EVIDENCE",
  "INSUFFICIENT_PERMISSION",
  "SOURCE_UNAVAILABLE",
]);

export function parseFinalize(rs: unknown): Parsed<FinalizeResult> {
  return parse(rs, (doc) => {
    if (typeof doc.mode !== "string" || !MODES.has(doc.mode)) {
      throw new ShapeError(
        "mode: expected one of SUPPORTED, INSUFFICIENT_EVIDENCE, INSUFFICIENT_PERMISSION, SOURCE_UNAVAILABLE",
      );
    }
    return { mode: doc.mode as TerminalMode, reasons: strings(doc, "reasons", true) };
  });
}
