/**
 * Builtins supplied by the host (JavaScript) through the ABI's `opa_builtinN` imports, in the
 * shape `loadPolicy(wasm, memory, customBuiltins)` expects. Placeholder until filled in.
 */
export const hostBuiltins: Record<string, (...args: any[]) => unknown> = {};
