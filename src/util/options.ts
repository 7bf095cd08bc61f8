/**
 * Option checks shared by the components that validate their own `*Options` bags (issue 16:
 * copied into three modules). Leaf module: imports nothing.
 */

/**
 * `value` when it is a whole number from 1 to `max`, `fallback` when undefined; otherwise throws
 * `fail(message)` (each component throws its own error type), the message naming the option.
 */
export function positiveInteger(
  name: string,
  value: number | undefined,
  fallback: number,
  max: number,
  fail: (message: string) => Error,
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw fail(`${name} must be a whole number from 1 to ${max}, got ${String(value)}`);
  }
  return value;
}
