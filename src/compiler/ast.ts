/** The parsed Rego module. Operators are calls with OPA's internal names (`plus`, `equal`, ...). */
export interface Loc {
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

export type Term =
  | { readonly type: "null"; readonly loc: Loc }
  | { readonly type: "boolean"; readonly value: boolean; readonly loc: Loc }
  /** `text` is the JSON text of the number. */
  | { readonly type: "number"; readonly text: string; readonly loc: Loc }
  | { readonly type: "string"; readonly value: string; readonly loc: Loc }
  /**
   * A variable. After resolution `name` is unique within its rule (`x#3`) and `orig` is the
   * name written in the source; `input` and `data` keep their names.
   */
  | { readonly type: "var"; readonly name: string; readonly orig: string; readonly loc: Loc }
  /** head[path[0]][path[1]]...; `a.b` is written as a string path element. */
  | { readonly type: "ref"; readonly head: Term; readonly path: readonly Term[]; readonly loc: Loc }
  | { readonly type: "array"; readonly items: readonly Term[]; readonly loc: Loc }
  | { readonly type: "object"; readonly pairs: readonly (readonly [Term, Term])[]; readonly loc: Loc }
  | { readonly type: "set"; readonly items: readonly Term[]; readonly loc: Loc }
  | { readonly type: "arrayCompr"; readonly head: Term; readonly body: Body; readonly loc: Loc }
  | { readonly type: "setCompr"; readonly head: Term; readonly body: Body; readonly loc: Loc }
  | { readonly type: "objectCompr"; readonly key: Term; readonly value: Term; readonly body: Body; readonly loc: Loc }
  /**
   * A call. `name` is the dotted name as written (`count`, `regex.match`, `data.lib.f`, or an
   * operator's internal name); after resolution `target` says what it calls.
   */
  | {
      readonly type: "call";
      readonly name: string;
      readonly args: readonly Term[];
      readonly loc: Loc;
      readonly target?: CallTarget;
    };

export type CallTarget =
  { readonly kind: "builtin"; readonly name: string } | { readonly kind: "function"; readonly path: readonly string[] };

export type Body = readonly Literal[];

/** `with target as value`: target is `input...`, `data...` (a reference), a function or a builtin. */
export interface WithModifier {
  readonly target: Term;
  readonly value: Term;
  readonly loc: Loc;
  /** After resolution, when the target is a function or builtin (a mock): what it replaces. */
  readonly fn?: CallTarget;
  /** After resolution, when the value names a function or builtin rather than a value. */
  readonly by?: CallTarget;
}

export type Literal = (
  | { readonly kind: "expr"; readonly negated: boolean; readonly term: Term; readonly loc: Loc }
  | { readonly kind: "some"; readonly vars: readonly Term[]; readonly loc: Loc }
  | {
      readonly kind: "someIn";
      readonly key: Term | undefined;
      readonly value: Term;
      readonly collection: Term;
      readonly loc: Loc;
    }
  | {
      readonly kind: "every";
      readonly key: Term | undefined;
      readonly value: Term;
      readonly domain: Term;
      readonly body: Body;
      readonly loc: Loc;
    }
) & { readonly withs?: readonly WithModifier[] };

export type RuleKind = "complete" | "set" | "object" | "function";

export interface ElseClause {
  /** undefined means `true`. */
  readonly value: Term | undefined;
  readonly body: Body;
  readonly loc: Loc;
}

export interface Rule {
  readonly loc: Loc;
  readonly name: string;
  /**
   * Further constant parts of a rule head reference (`a.b.c := 1` has name `a` and ref
   * `["b", "c"]`); the rule's path is package + name + ref. Absent for a one-part head.
   */
  readonly ref?: readonly string[];
  /**
   * A general head reference from its first variable part on (`p[x].y := z` has name `p` and
   * dynRef `[x, "y"]`): a complete rule (or, with `contains`, a set) at a path computed per
   * binding, inside the partial object tree at package + name + ref.
   */
  readonly dynRef?: readonly Term[];
  readonly kind: RuleKind;
  readonly isDefault: boolean;
  /** Function arguments. */
  readonly args: readonly Term[];
  /** Partial object key or partial set element. */
  readonly key: Term | undefined;
  /** Value; undefined means `true` (complete rules and functions). */
  readonly value: Term | undefined;
  readonly body: Body;
  readonly elses: readonly ElseClause[];
}

export interface Import {
  /** `input`, `data`, followed by the path. */
  readonly path: readonly string[];
  readonly alias: string;
  readonly loc: Loc;
}

/** A METADATA block (annotations.ts) and the statement it applies to. */
export interface Annotation {
  readonly loc: Loc;
  readonly scope: "rule" | "document" | "package" | "subpackages";
  /** OPA's `Annotations.toObject()`. */
  readonly value: Record<string, unknown>;
  /** Whether it declares `schemas`, which rego.metadata.* does not reproduce. */
  readonly hasSchemas: boolean;
  /** The rule it applies to (scopes rule and document); undefined for a package. */
  readonly rule: Rule | undefined;
}

export interface Module {
  readonly file: string;
  readonly pkg: readonly string[];
  readonly pkgLoc: Loc;
  readonly imports: readonly Import[];
  readonly rules: readonly Rule[];
  /** Its METADATA blocks, when it has any. */
  readonly annotations?: readonly Annotation[];
}
