/**
 * Small value helpers shared by every layer (issue 16: they were copied into six modules).
 * Leaf module: it imports nothing, so any layer may use it without creating a cycle.
 */

/** A plain JSON object: not null, not an array. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The JSON type name of a value for error messages: `null`, `array`, or its `typeof`. */
export function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

/**
 * Freezes a value and everything reachable from it, so a shared snapshot (config, bundle data,
 * a cached decision) cannot be mutated by one caller under another. Already-frozen subtrees are
 * not walked again, which keeps re-freezing a cached value O(1).
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}
