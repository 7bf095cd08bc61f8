/**
 * Arbiter's Rego compiler: Rego v1 sources -> an OPA wasm ABI module that
 * `@open-policy-agent/opa-wasm` loads exactly like one built by `opa build -t wasm`.
 *
 * Pipeline: lexer -> parser -> checker (names, arity, scopes) -> planner (IR, `ir.ts`) ->
 * codegen (wasm). Anything outside the supported subset fails the build with
 * `file:line:col: message`; the compiler never guesses.
 */
export { compile, planPolicy } from "./compile.ts";
export type { CompileOptions, CompileResult, PolicySource } from "./compile.ts";
export { RegoCompileError } from "./diagnostics.ts";
export type { Diagnostic } from "./diagnostics.ts";
export type { Policy } from "./ir.ts";
export { readBundle, writeBundle, buildBundle, unpackBundle, parseBundleFiles } from "./bundle.ts";
export { hostBuiltins } from "./host-builtins.ts";
export { loadLazyHostBuiltins } from "./host-builtins-opa.ts";
/** RE2 patterns as the host builtins compile them (the default pack validates its regexes with it). */
export { compileRe2 } from "./host-re2.ts";
export type { Bundle, BuildBundleOptions, LoadedBundle, BundleManifest } from "./bundle.ts";
