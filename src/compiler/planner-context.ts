/**
 * What the parts of the planner share: the rule tree's shapes, the per-function builder, the
 * continuation types, the abort messages (OPA's own texts) and the services the body planner
 * asks of the policy planner.
 */
import type { Loc, Module, Rule } from "./ast.ts";
import type { Local, Stmt } from "./ir.ts";

export const MSG_COMPLETE = "complete rules must not produce multiple outputs";
export const MSG_FUNCTION = "functions must not produce multiple outputs for same inputs";
export const MSG_OBJECT_KEYS = "object keys must be unique";
export const MSG_MERGE = "base data and rules must not define the same document";

/** Thrown after a diagnostic was recorded: abandons planning the current rule. */
export class PlanFailure extends Error {}

export interface RuleRef {
  readonly rule: Rule;
  readonly module: Module;
}

/** The rules that define one document (a data path), planned into one function. */
export interface Group {
  readonly path: readonly string[];
  readonly kind: Rule["kind"];
  readonly arity: number;
  readonly rules: RuleRef[];
  readonly funcName: string;
}

export interface TreeNode {
  readonly path: readonly string[];
  readonly children: Map<string, TreeNode>;
  group?: Group;
  /** True when a package is declared at exactly this path. */
  isPackage: boolean;
  /** Rules with a general head reference (`p[x].y := z`) whose constant prefix is this path. */
  generals?: RuleRef[];
  /**
   * Set when this node's document is one partial object tree built by planner-tree.ts: it holds
   * general rules, or a partial object rule with rules below it. The tree owns every rule below.
   */
  tree?: string;
}

export const dataName = (path: readonly string[]): string => ["data", ...path].join(".");

/** A continuation: plans the rest of the body. */
export type K = () => void;
/** A continuation that receives the local holding a term's value. */
export type KL = (l: Local) => void;

/** What the body planner asks of the policy planner (implemented by PolicyPlanner). */
export interface PlannerServices {
  report(loc: Loc, message: string): void;
  fail(loc: Loc, message: string): never;
  useBuiltin(name: string): void;
  /** The function planned for the user function at `path`; records the call edge from `from`. */
  functionFor(path: readonly string[], from: string, loc: Loc): string;
  /** Resolves the static prefix of a `data` reference (see PolicyPlanner.resolveData). */
  resolveData(
    keys: readonly string[],
    from: string,
    loc: Loc,
    baseBelowDoc?: boolean,
  ): { kind: "rule"; func: string; used: number } | { kind: "doc"; func: string; used: number } | { kind: "base" };
  /**
   * The names of the rule tree's children at `keys` when `resolveData(keys)` would build that
   * node's whole document (a package path, not a rule); undefined otherwise. Function names left out.
   */
  virtualChildren(keys: readonly string[]): string[] | undefined;
  /**
   * The functions computing the document of the package path `keys` and every document below it
   * (its own, its rules', its sub-packages'), each with its path relative to `keys`.
   */
  functionsAt(keys: readonly string[]): { func: string; rel: string[] }[];
  /** Coverage point id of `loc` when compiling for `arbiter test --coverage` (coverage.ts). */
  coverId(loc: Loc): number | undefined;
}

/** Builds one IR function: allocates locals and collects statements into nested blocks. */
export class FnBuilder {
  locals: number;
  readonly body: Stmt[] = [];
  #cur: Stmt[];
  depth = 0;

  constructor(params: number) {
    this.locals = params;
    this.#cur = this.body;
  }
  newLocal(): Local {
    return this.locals++;
  }
  emit(s: Stmt): void {
    this.#cur.push(s);
  }
  /** Runs `fn` with a fresh current block one level deeper; returns that block. */
  nest(fn: () => void): Stmt[] {
    const saved = this.#cur;
    const blk: Stmt[] = [];
    this.#cur = blk;
    this.depth++;
    try {
      fn();
    } finally {
      this.depth--;
      this.#cur = saved;
    }
    return blk;
  }
}
