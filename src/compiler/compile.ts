/**
 * The compiler's front door: Rego sources -> IR (`planPolicy`) -> wasm (`compile`). Kept apart
 * from `index.ts` so the bundle builder can use it without importing the index that re-exports
 * the bundle builder (an import cycle, issue 16).
 */
import { rewriteMetadataCalls } from "./annotations.ts";
import { erasePrintCalls } from "./erase-print.ts";
import type { Module } from "./ast.ts";
import { isHostBuiltin } from "./builtins.ts";
import { generateWasm } from "./codegen.ts";
import { COVER_BUILTIN, CoverageTable } from "./coverage.ts";
import { type Diagnostic, RegoCompileError } from "./diagnostics.ts";
import type { Policy } from "./ir.ts";
import { parseModule } from "./parser.ts";
import { planModules } from "./planner.ts";

/** One Rego module; `path` is used in error positions. */
export interface PolicySource {
  readonly path: string;
  readonly text: string;
}

export interface CompileOptions {
  /**
   * Entrypoints as slash paths (`arbiter/decide`, `arbiter/decide/allow`). A package path
   * evaluates to the package document. When empty, `defaultEntrypoints` applies.
   */
  readonly entrypoints?: readonly string[];
  /**
   * Package paths compiled as entrypoints when `entrypoints` is empty: those of them whose
   * package some source declares (the `arbiter build` default, given by the CLI layer from
   * `decision/contract.ts`). Default none: then an entrypoint is required.
   */
  readonly defaultEntrypoints?: readonly string[];
  /**
   * OPA's `--strict-builtin-errors`: a builtin that fails (wrong operand type, out of range,
   * invalid input) aborts the evaluation with an error instead of making its expression
   * undefined. Default false, as in OPA.
   */
  readonly strictBuiltinErrors?: boolean;
  /** Parse the sources as Rego v0 (`--v0-compatible`); see ParseOptions.v0. Default false. */
  readonly v0Compatible?: boolean;
  /**
   * Instrument the module for `arbiter test --coverage` (coverage.ts): the host builtin
   * `arbiter.cover` is called at each body expression and rule head reached. Default false.
   */
  readonly coverage?: boolean;
  /**
   * Keep `print(...)` statements as calls of the host builtin `internal.print` (host-print.ts),
   * for `arbiter test`; by default they are erased, as OPA erases them without a print hook.
   */
  readonly printStatements?: boolean;
}

export interface CompileResult {
  readonly wasm: Uint8Array;
  /** Entrypoint names in id order (id = index). */
  readonly entrypoints: string[];
  /** Builtins the module imports from the host, in id order. */
  readonly hostBuiltins: string[];
  readonly ir: Policy;
}

/** Parses, checks and plans the sources into IR. Throws `RegoCompileError`. */
export function planPolicy(sources: readonly PolicySource[], options: CompileOptions = {}): Policy {
  const diags: Diagnostic[] = [];
  let modules: Module[] = [];
  const seen = new Set<string>();
  for (const src of sources) {
    if (seen.has(src.path)) {
      diags.push({ file: src.path, line: 1, col: 1, message: `duplicate module path ${src.path}` });
      continue;
    }
    seen.add(src.path);
    try {
      const { module, diagnostics } = parseModule(src.path, src.text, { v0: options.v0Compatible });
      diags.push(...diagnostics);
      modules.push(module);
    } catch (e) {
      if (!(e instanceof RegoCompileError)) throw e;
      diags.push(...e.diagnostics);
    }
  }
  if (diags.length > 0) throw new RegoCompileError(diags);
  // After the metadata calls: annotations name their rules by identity, and erasing copies rules.
  modules = erasePrintCalls(rewriteMetadataCalls(modules, diags), options.printStatements === true);
  if (diags.length > 0) throw new RegoCompileError(diags);
  const entrypoints =
    options.entrypoints !== undefined && options.entrypoints.length > 0
      ? options.entrypoints
      : definedDefaults(modules, options.defaultEntrypoints ?? [], diags);
  if (diags.length > 0) throw new RegoCompileError(diags);
  const coverage = options.coverage === true ? new CoverageTable() : undefined;
  const policy = planModules(modules, entrypoints, diags, coverage);
  if (diags.length > 0) throw new RegoCompileError(diags);
  const used = new Set<string>();
  for (const f of policy.funcs) collectBuiltins(f.body, used);
  return {
    ...policy,
    hostBuiltins: [...used].filter((n) => isHostBuiltin(n) || n === COVER_BUILTIN).sort(),
    strictBuiltinErrors: options.strictBuiltinErrors === true,
    ...(coverage ? { coverage: coverage.points } : {}),
  };
}

/** The default entrypoints whose package some module declares; a diagnostic when there is none. */
function definedDefaults(modules: readonly Module[], defaults: readonly string[], diags: Diagnostic[]): string[] {
  const packages = new Set(modules.map((m) => m.pkg.join("/")));
  const eps = defaults.filter((e) => packages.has(e));
  if (eps.length === 0) {
    const message =
      defaults.length === 0
        ? "no entrypoint given"
        : `no entrypoint given and none of the default packages (${defaults.join(", ")}) is defined`;
    diags.push({ file: "", line: 0, col: 0, message });
  }
  return eps;
}

function collectBuiltins(block: Policy["funcs"][number]["body"], out: Set<string>): void {
  for (const s of block) {
    switch (s.op) {
      case "builtin":
        out.add(s.name);
        break;
      case "block":
        for (const b of s.blocks) collectBuiltins(b, out);
        break;
      case "scan":
      case "not":
        collectBuiltins(s.body, out);
        break;
      default:
        break;
    }
  }
}

/** Compiles Rego sources to a wasm module. Throws `RegoCompileError` on any problem in the sources. */
export function compile(sources: readonly PolicySource[], options: CompileOptions = {}): CompileResult {
  const ir = planPolicy(sources, options);
  const wasm = generateWasm(ir);
  return { wasm, entrypoints: ir.plans.map((p) => p.name), hostBuiltins: [...ir.hostBuiltins], ir };
}
