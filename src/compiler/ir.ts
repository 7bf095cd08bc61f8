/**
 * The planner's output and the code generator's input: a small, structured, imperative IR in the
 * spirit of OPA's own plan IR (`internal/ir`). It is the contract between the front end
 * (lexer, parser, checker, planner) and the back end (code generation into the WebAssembly
 * runtime). Nothing here knows about Rego syntax or about wasm instructions.
 *
 * Execution model
 * - Every value lives in the runtime's memory; a `Local` holds the address of a value, or 0 when
 *   it is unset ("undefined"). Locals are numbered per function, starting at 0.
 * - A `Block` is a list of statements run in order. A statement that "fails" (its condition is
 *   false or a value it needs is undefined) abandons the rest of the innermost enclosing block;
 *   execution continues with the statement after that block. This is the only control flow
 *   besides `break`, `scan` and `not`, and maps one to one onto wasm `block`/`br`/`loop`.
 * - Statements never fail silently on a bug: conflicts and internal errors abort the evaluation
 *   through `opa_abort`, which the SDK surfaces as a thrown error.
 */

/** Index of a local variable within the current function. */
export type Local = number;

export interface Policy {
  /** Functions: one per rule group (complete rule, partial set, partial object, function). */
  readonly funcs: readonly Func[];
  /** One plan per entrypoint, in the order the entrypoint ids are assigned (0, 1, 2, ...). */
  readonly plans: readonly Plan[];
  /**
   * Builtins that are not implemented natively by the runtime and must be supplied by the host
   * through the ABI's `opa_builtinN` imports. Their position in this list is their builtin id.
   */
  readonly hostBuiltins: readonly string[];
  /**
   * OPA's strict builtin errors (`opa eval --strict-builtin-errors`): a builtin that fails
   * aborts the evaluation instead of making the expression undefined.
   */
  readonly strictBuiltinErrors?: boolean;
  /** With `CompileOptions.coverage`: the line of each `arbiter.cover(id)` point, by id (coverage.ts). */
  readonly coverage?: readonly { readonly file: string; readonly line: number }[];
}

/**
 * A function. Parameters are locals `0 .. params-1`. For every function the planner emits,
 * local 0 is `input` and local 1 is `data`; a Rego function's own arguments follow from local 2.
 */
export interface Func {
  /** Unique symbol, e.g. `g0.data.arbiter.decide.allow`; also used as the wasm function name. */
  readonly name: string;
  readonly params: number;
  /** Total number of locals including the parameters. */
  readonly locals: number;
  readonly body: Block;
  /** The local whose value (or 0 for undefined) the function returns after running `body`. */
  readonly result: Local;
  /**
   * When true (zero-argument rules only: params === 2), the result is computed at most once per
   * evaluation (`opa_eval` call) and cached, including an undefined result.
   */
  readonly memoize: boolean;
}

/** An entrypoint: `name` uses slashes (`arbiter/decide`); evaluating it calls `func`. */
export interface Plan {
  readonly name: string;
  /** Name of a two-parameter function (input, data) computing the document for this entrypoint. */
  readonly func: string;
}

export type Block = readonly Stmt[];

export type Stmt =
  // ---- values -----------------------------------------------------------------------------
  /** target = the value of a JSON literal (parsed once per module instance, then reused). */
  | { readonly op: "const"; readonly target: Local; readonly json: string }
  /** target = source (both are addresses; values are immutable unless made by make*). */
  | { readonly op: "assign"; readonly target: Local; readonly source: Local }
  /**
   * If target is unset: target = source. If target is set to an equal value: nothing.
   * If target is set to a different value: abort with `message` (e.g. the conflict of a complete
   * rule, "complete rules must not produce multiple outputs").
   */
  | { readonly op: "assignOnce"; readonly target: Local; readonly source: Local; readonly message: string }
  /** target = unset (0). Used to reset loop-carried variables. */
  | { readonly op: "reset"; readonly target: Local }
  // ---- conditions (fail the enclosing block) ---------------------------------------------------
  /** Fails unless a == b by Rego equality (1 == 1.0; deep for collections). Fails if either is unset. */
  | { readonly op: "equal"; readonly a: Local; readonly b: Local }
  /** Fails unless a != b. Fails if either is unset. */
  | { readonly op: "notEqual"; readonly a: Local; readonly b: Local }
  /** Fails if the local is unset. */
  | { readonly op: "isDefined"; readonly source: Local }
  /** Fails if the local is set. */
  | { readonly op: "isUndefined"; readonly source: Local }
  /** Fails if the local is unset or holds the boolean false (a Rego body expression's test). */
  | { readonly op: "notFalse"; readonly source: Local }
  /** Fails unless the value is of the given kind (used for safe destructuring). */
  | { readonly op: "isKind"; readonly source: Local; readonly kind: ValueKind }
  /** Fails unless the value is an array of exactly `length` elements. */
  | { readonly op: "isArrayOfLength"; readonly source: Local; readonly length: number }
  // ---- lookup ------------------------------------------------------------------------------------
  /**
   * target = source[key]: object member, array element (key must be an integral number in
   * range), or set membership (target = key when key is in the set). Fails otherwise, including
   * when source is not a collection.
   */
  | {
      readonly op: "dot";
      readonly target: Local;
      readonly source: Local;
      readonly key: Local;
      /**
       * A lookup in base data: a number key also finds the object member named by its decimal
       * text (OPA's storage reads `data.x[2]` as the key "2").
       */
      readonly data?: boolean;
    }
  /** Fails unless source is an array, object or set. Then: target = its length. */
  | { readonly op: "len"; readonly target: Local; readonly source: Local }
  // ---- calls ---------------------------------------------------------------------------------
  /**
   * target = func(args...). Fails when the function returns undefined. args[0] and args[1] are
   * the caller's input and data locals.
   */
  | {
      readonly op: "call";
      readonly target: Local;
      readonly func: string;
      readonly args: readonly Local[];
      readonly site?: CallSite;
    }
  /**
   * target = builtin(args...). `name` is the Rego builtin name (`count`, `regex.match`) or an
   * operator's internal name (`plus`, `minus`, `mul`, `div`, `rem`, `lt`, `lte`, `gt`, `gte`,
   * `equal`, `neq`, `or` (set union), `and` (set intersection), `internal.member_2`).
   * Fails when the builtin is undefined for these arguments (type errors included).
   * The code generator dispatches to a native runtime implementation when one exists, otherwise
   * to the host through `opa_builtinN` using the id from `Policy.hostBuiltins`.
   */
  | {
      readonly op: "builtin";
      readonly target: Local;
      readonly name: string;
      readonly args: readonly Local[];
      readonly site?: CallSite;
    }
  // ---- collections under construction -------------------------------------------------------------
  | { readonly op: "makeArray"; readonly target: Local; readonly capacity: number }
  | { readonly op: "makeObject"; readonly target: Local }
  | { readonly op: "makeSet"; readonly target: Local }
  | { readonly op: "arrayAppend"; readonly array: Local; readonly value: Local }
  | { readonly op: "setAdd"; readonly set: Local; readonly value: Local }
  /** Insert or overwrite. */
  | { readonly op: "objectInsert"; readonly object: Local; readonly key: Local; readonly value: Local }
  /** `with`: target = a copy of `object` (a new object when it is undefined or not one) with key = value. */
  | {
      readonly op: "objectWith";
      readonly target: Local;
      readonly object: Local;
      readonly key: Local;
      readonly value: Local;
    }
  /** Insert; an existing equal value is fine; a different existing value aborts with `message`. */
  | {
      readonly op: "objectInsertOnce";
      readonly object: Local;
      readonly key: Local;
      readonly value: Local;
      readonly message: string;
    }
  /**
   * Deep-merge object `b` into a copy of object `a` (used to combine base data with rules under
   * the same package path); on a non-object conflict abort with `message`. target = the merge.
   */
  | {
      readonly op: "objectMerge";
      readonly target: Local;
      readonly a: Local;
      readonly b: Local;
      readonly message: string;
    }
  // ---- control flow -------------------------------------------------------------------------
  /** Runs each block in turn; a failure inside one block only ends that block. */
  | { readonly op: "block"; readonly blocks: readonly Block[] }
  /**
   * Iterates source (array: key = index; object: key = member key; set: key = value = element)
   * in the runtime's canonical order, running `body` once per element with key and value set.
   * A failure inside body ends that iteration only. Fails if source is not a collection;
   * an empty collection runs the body zero times and does not fail.
   */
  | { readonly op: "scan"; readonly source: Local; readonly key: Local; readonly value: Local; readonly body: Block }
  /** Runs body; fails if body runs to its end, succeeds if body failed. */
  | { readonly op: "not"; readonly body: Block }
  /**
   * Leaves `index + 1` enclosing blocks: 0 leaves the innermost block (as a failure would),
   * 1 also leaves the block around it, and so on. `scan` bodies, `not` bodies and each block of
   * a `block` statement count as blocks; the function body counts as the outermost block.
   */
  | { readonly op: "break"; readonly index: number }
  /** Aborts the evaluation with `message` (a conflict found while building a document). */
  | { readonly op: "abort"; readonly message: string };

/**
 * Planner bookkeeping on a call written in Rego, gone before code generation: planner-with.ts
 * lowers each such call into plain statements once it knows which `with` mocks reach it.
 */
export interface CallSite {
  /** Inside a `with`: rules and functions run through unmemoized twins. */
  readonly under: boolean;
  /** The `with` mocks written around the call in its own function, innermost last. */
  readonly mocks: readonly Mock[];
  /** The caller's `input` and `data` locals (a mock function is called with them). */
  readonly input: Local;
  readonly data: Local;
  /** Where the call is written (for a build error when it cannot be lowered). */
  readonly loc: { readonly file: string; readonly line: number; readonly col: number };
}

/** `with target as replacement` on a builtin, a function, a rule's document or a package's. */
export interface Mock {
  /** `b:<builtin name>`, or `f:<func>` for the planned function of a rule or function. */
  readonly target: string;
  /** A rule's document stays replaced inside a mock function; function mocks do not (as OPA). */
  readonly persist: boolean;
  readonly by:
    | { readonly kind: "builtin"; readonly name: string }
    | { readonly kind: "func"; readonly func: string }
    /** `path`: the replacement is that path of the value (a rule below a replaced package). */
    | { readonly kind: "value"; readonly local: Local; readonly path?: readonly string[] };
}

export type ValueKind = "null" | "boolean" | "number" | "string" | "array" | "object" | "set";
