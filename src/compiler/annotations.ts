/**
 * OPA's METADATA annotations (ast/parser.go, ast/annotations.go) and the two builtins that read
 * them, `rego.metadata.rule()` and `rego.metadata.chain()`. OPA's compiler replaces each call by
 * a constant (its rewriteRegoMetadataCalls stage), and so does this module, before planning.
 *
 * A block starts with a comment in column 1 whose text begins with `METADATA`; the comments on
 * the following lines, each in column 1, hold its YAML (one leading space of each dropped). It
 * applies to the first statement (package, import or rule) on a later line. Its scope is `rule`
 * before a rule and `package` before a package unless it says `document` (every rule at that
 * path) or `subpackages` (the package and those below it). YAML is read as go-yaml v3 reads it
 * (YAML 1.2's core schema; a scalar where a string is expected is taken as its text).
 *
 * `rego.metadata.rule()` is the rule's own annotation closest above it (as OPA's
 * `toObject`), `{}` when there is none; `rego.metadata.chain()` is the list of
 * `{"path", "annotations"}` from the rule outwards: the rule's own blocks, closest first (an
 * entry with only `path` when it has none), its document's, its package's, then `subpackages`
 * blocks from the closest package up. An `else` clause is a rule of its own to OPA, with no
 * annotations. Schemas (`schemas:`) are parsed but not reproduced: a call that would return them
 * fails the build.
 */
import { isMap, isScalar, isSeq, parseDocument, type Scalar } from "yaml";
import type { Annotation, Loc, Module, Rule, Term } from "./ast.ts";
import { rewriteAst } from "./ast-rewrite.ts";
import type { Diagnostic } from "./diagnostics.ts";

/** A comment: where its `#` is, and the text after it. */
export interface Comment {
  readonly line: number;
  readonly col: number;
  readonly text: string;
}

class AnnotationError extends Error {
  override readonly name = "AnnotationError";
}

const fail = (message: string): never => {
  throw new AnnotationError(message);
};

/** The METADATA blocks among a module's comments: where each starts and its YAML text. */
function blocks(comments: readonly Comment[]): { line: number; yaml: string }[] {
  const isStart = (c: Comment) => c.col === 1 && c.text.trim().startsWith("METADATA");
  const out: { line: number; yaml: string }[] = [];
  for (let i = 0; i < comments.length; i++) {
    if (!isStart(comments[i]!)) continue;
    const start = comments[i]!;
    const lines: string[] = [];
    for (; i + 1 < comments.length; i++) {
      const [prev, next] = [comments[i]!, comments[i + 1]!];
      if (next.col !== 1 || next.line !== prev.line + 1 || isStart(next)) break;
      lines.push(next.text.startsWith(" ") ? next.text.slice(1) : next.text);
    }
    out.push({ line: start.line, yaml: lines.map((l) => `${l}\n`).join("") });
  }
  return out;
}

/** A scalar where go-yaml v3 decodes into a string field: its text; null is "". */
function text(node: unknown, field: string): string {
  if (node === undefined || node === null) return "";
  if (!isScalar(node)) return fail(`${field} must be a string`);
  const s = node as Scalar;
  if (s.value === null) return "";
  return typeof s.value === "string" ? s.value : String(s.source ?? s.value);
}

/** go-yaml v3 into `any`: maps with string keys only, integers exact. */
function plain(v: unknown, path: string[]): unknown {
  if (v instanceof Map) {
    const entries: [string, unknown][] = [];
    for (const [k, x] of v) {
      if (typeof k !== "string") return fail(`invalid map key type(s): ${path.join("/")}`);
      entries.push([k, plain(x, [...path, k])]);
    }
    // fromEntries defines each key as its own property, `__proto__` included.
    return Object.fromEntries(entries);
  }
  if (Array.isArray(v)) return v.map((x, i) => plain(x, [...path, String(i)]));
  if (typeof v === "bigint") {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER))
      return fail(`the integer ${v} in ${path.join("/") || "a value"} cannot be held exactly`);
    return Number(v);
  }
  if (typeof v === "number" && !Number.isFinite(v)) return fail(`${v} in ${path.join("/")} is not a JSON number`);
  return v;
}

/** OPA's parseAuthorString: the last word in `<...>` is the email. */
function authorOf(v: unknown): { name?: string; email?: string } {
  if (typeof v === "string") {
    const parts = v
      .split(/[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/)
      .filter(Boolean);
    if (parts.length === 0) return fail("invalid author definition: author is an empty string");
    const last = parts[parts.length - 1]!;
    let email = "";
    if (last.length >= 2 && last.startsWith("<") && last.endsWith(">")) {
      email = last.slice(1, -1);
      parts.pop();
    }
    return nonEmpty({ name: parts.join(" "), email });
  }
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    const name = typeof o.name === "string" ? o.name.trim() : "";
    const email = typeof o.email === "string" ? o.email.trim() : "";
    if (name === "" && email === "") return fail("invalid author definition: 'name' and/or 'email' values required");
    return nonEmpty({ name, email });
  }
  return fail("invalid author definition: invalid value type, must be string or map");
}

const nonEmpty = (o: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== ""));

/** A URL Go's url.Parse + String gives back unchanged (printable ASCII, no space or `%`). */
const PLAIN_URL = /^[\x21-\x24\x26-\x7e]+$/;

function relatedOf(v: unknown): Record<string, string> {
  let ref: string;
  let description = "";
  if (typeof v === "string") ref = v;
  else if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    ref = typeof o.ref === "string" ? o.ref.trim() : "";
    description = typeof o.description === "string" ? o.description.trim() : "";
    if (ref === "") return fail("invalid related-resource definition: 'ref' value required in object");
  } else return fail("invalid related-resource definition: invalid value type, must be string or map");
  if (ref === "") return fail("invalid related-resource definition: ref URL may not be empty string");
  if (!PLAIN_URL.test(ref))
    return fail(`related resource ${JSON.stringify(ref)}: Arbiter does not reproduce Go's URL form`);
  return nonEmpty({ ref, description });
}

/** Parses one block's YAML into OPA's annotation object (scope not yet defaulted). */
function parseBlock(yaml: string): { scope: string; value: Record<string, unknown>; hasSchemas: boolean } {
  if (yaml.trim() === "") return fail("expected METADATA block, found whitespace");
  const doc = parseDocument(yaml, { version: "1.2", schema: "core", intAsBigInt: true, uniqueKeys: true });
  if (doc.errors.length > 0) return fail(`yaml: ${doc.errors[0]!.message.split("\n")[0]}`);
  if (doc.contents !== null && !isMap(doc.contents)) return fail("yaml: the METADATA block must be a map");
  const get = (k: string) => doc.get(k, true) as unknown;
  let js: Map<unknown, unknown> | null;
  try {
    // The yaml library refuses a block whose aliases expand past its bound (as go-yaml does).
    js = doc.toJS({ mapAsMap: true }) as Map<unknown, unknown> | null;
  } catch (e) {
    return fail(`yaml: ${(e as Error).message}`);
  }
  const list = (k: string): unknown[] => {
    const v = plain(js?.get(k) ?? null, [k]);
    if (v === null) return [];
    return Array.isArray(v) ? v : fail(`${k} must be a list`);
  };
  const value: Record<string, unknown> = {};
  const scope = text(get("scope"), "scope");
  for (const key of ["title", "description"]) {
    const s = text(get(key), key);
    if (s !== "") value[key] = s;
  }
  const entrypoint = get("entrypoint");
  if (entrypoint !== undefined && isScalar(entrypoint) && entrypoint.value !== null) {
    if (typeof entrypoint.value !== "boolean") fail("entrypoint must be a boolean");
    if (entrypoint.value) value.entrypoint = true;
  }
  const orgsNode = get("organizations");
  if (orgsNode !== undefined && !isSeq(orgsNode) && !(isScalar(orgsNode) && orgsNode.value === null))
    fail("organizations must be a list");
  const orgs = isSeq(orgsNode) ? orgsNode.items.map((o) => text(o, "organizations")) : [];
  if (orgs.length > 0) value.organizations = orgs;
  const related = list("related_resources").map(relatedOf);
  if (related.length > 0) value.related_resources = related;
  const authors = list("authors").map(authorOf);
  if (authors.length > 0) value.authors = authors;
  const custom = plain(js?.get("custom") ?? null, ["custom"]);
  if (custom !== null && (typeof custom !== "object" || Array.isArray(custom))) fail("custom must be a map");
  if (custom !== null && Object.keys(custom as object).length > 0) value.custom = custom;
  return { scope, value, hasSchemas: list("schemas").length > 0 };
}

/** Parses a module's METADATA blocks and attaches each to its statement, as OPA's parser does. */
export function moduleAnnotations(
  file: string,
  comments: readonly Comment[],
  module: Pick<Module, "pkgLoc" | "imports" | "rules">,
  diags: Diagnostic[],
): Annotation[] {
  type Stmt = { line: number; kind: "package" | "import" | "rule"; rule?: Rule };
  const stmts: Stmt[] = [
    { line: module.pkgLoc.line, kind: "package" } as Stmt,
    ...module.imports.map((i): Stmt => ({ line: i.loc.line, kind: "import" })),
    ...module.rules.map((r): Stmt => ({ line: r.loc.line, kind: "rule", rule: r })),
  ].sort((a, b) => a.line - b.line);
  const out: Annotation[] = [];
  for (const b of blocks(comments)) {
    const loc: Loc = { file, line: b.line, col: 1 };
    try {
      const parsed = parseBlock(b.yaml);
      const stmt = stmts.find((s) => s.line > b.line);
      const have = stmt?.kind;
      const scope = parsed.scope || (have === "rule" ? "rule" : have === "package" ? "package" : (have ?? ""));
      const wants: Record<string, string> = {
        rule: "rule",
        document: "rule",
        package: "package",
        subpackages: "package",
      };
      const want = wants[scope];
      if (want === undefined)
        fail(`invalid annotation scope '${scope}'. Use one of 'rule', 'document', 'package', or 'subpackages'`);
      if (want !== have) fail(`annotation scope '${scope}' must be applied to ${want}${have ? ` (have ${have})` : ""}`);
      if (parsed.value.entrypoint === true && scope !== "rule" && scope !== "package")
        fail(`annotation entrypoint applied to non-rule or package scope '${scope}'`);
      out.push({
        loc,
        scope: scope as Annotation["scope"],
        value: { scope, ...parsed.value },
        hasSchemas: parsed.hasSchemas,
        rule: stmt?.rule,
      });
    } catch (e) {
      if (!(e instanceof AnnotationError)) throw e;
      diags.push({ file, line: b.line, col: 1, message: e.message });
    }
  }
  return out;
}

/** OPA's rule.Ref().GroundPrefix() without `data`: package, name, constant head parts and key. */
function rulePath(m: Module, r: Rule): unknown[] {
  const path: unknown[] = [...m.pkg, r.name, ...(r.ref ?? [])];
  if (r.dynRef === undefined && r.kind === "object" && r.key !== undefined) {
    const k = r.key;
    if (k.type === "string") path.push(k.value);
    else if (k.type === "boolean") path.push(k.value);
    else if (k.type === "null") path.push(null);
    else if (k.type === "number" && /^-?\d+$/.test(k.text)) path.push(Number(k.text));
  }
  return path;
}

const keyOf = (path: readonly unknown[]) => JSON.stringify(path);

/** The annotations of all modules, indexed as OPA's AnnotationSet; redeclarations are diagnostics. */
class AnnotationSet {
  readonly byRule = new Map<Rule, Annotation[]>();
  readonly byPackage = new Map<string, Annotation>();
  /** Document (rule path) and subpackages (package path) annotations, by path. */
  readonly byPath = new Map<string, Annotation>();

  constructor(modules: readonly Module[], diags: Diagnostic[]) {
    const redeclared = (a: Annotation, other: Annotation) =>
      diags.push({ ...a.loc, message: `${a.scope} annotation redeclared: ${other.loc.file}:${other.loc.line}` });
    for (const m of modules) {
      for (const a of m.annotations ?? []) {
        if (a.scope === "rule") this.byRule.set(a.rule!, [...(this.byRule.get(a.rule!) ?? []), a]);
        else if (a.scope === "package") {
          const k = keyOf(m.pkg);
          const other = this.byPackage.get(k);
          if (other) redeclared(a, other);
          else this.byPackage.set(k, a);
        } else {
          const k = keyOf(a.scope === "document" ? rulePath(m, a.rule!) : m.pkg);
          const other = this.byPath.get(k);
          if (other) redeclared(a, other);
          else this.byPath.set(k, a);
        }
      }
    }
  }

  /** rego.metadata.rule() and rego.metadata.chain() for one clause (`own` false for an else clause). */
  metadata(m: Module, r: Rule, own: boolean): { rule: Annotation | undefined; chain: [unknown[], Annotation?][] } {
    const path = rulePath(m, r);
    const mine = own ? [...(this.byRule.get(r) ?? [])].sort((a, b) => b.loc.line - a.loc.line) : [];
    const chain: [unknown[], Annotation?][] = mine.length > 0 ? mine.map((a) => [path, a]) : [[path]];
    const doc = this.byPath.get(keyOf(path));
    if (doc) chain.push([path, doc]);
    const pkg = this.byPackage.get(keyOf(m.pkg));
    if (pkg) chain.push([[...m.pkg], pkg]);
    for (let n = m.pkg.length; n >= 1; n--) {
      const sub = this.byPath.get(keyOf(m.pkg.slice(0, n)));
      if (sub) chain.push([m.pkg.slice(0, n), sub]);
    }
    return { rule: mine[0], chain };
  }
}

/** A JSON value as a constant term. */
function termOf(v: unknown, loc: Loc): Term {
  if (v === null) return { type: "null", loc };
  if (typeof v === "boolean") return { type: "boolean", value: v, loc };
  if (typeof v === "number") return { type: "number", text: JSON.stringify(v), loc };
  if (typeof v === "string") return { type: "string", value: v, loc };
  if (Array.isArray(v)) return { type: "array", items: v.map((x) => termOf(x, loc)), loc };
  const pairs = Object.entries(v as Record<string, unknown>).map(
    ([k, x]) => [{ type: "string", value: k, loc } as Term, termOf(x, loc)] as const,
  );
  return { type: "object", pairs, loc };
}

const METADATA_CALLS = new Set(["rego.metadata.rule", "rego.metadata.chain"]);

/** Replaces every call `f()` of METADATA_CALLS in `node` for which `replace` answers a term. */
function mapCalls(node: unknown, replace: (name: string, loc: Loc) => Term | undefined): unknown {
  return rewriteAst(node, (n) => {
    const o = n as Record<string, unknown>;
    if (o.type !== "call" || typeof o.name !== "string" || !METADATA_CALLS.has(o.name)) return undefined;
    return (o.args as unknown[]).length === 0 ? replace(o.name, o.loc as Loc) : undefined;
  });
}

/**
 * The modules with every `rego.metadata.rule()` and `rego.metadata.chain()` replaced by its
 * constant; problems (redeclared annotations, schemas asked for) are added to `diags`.
 */
export function rewriteMetadataCalls(modules: readonly Module[], diags: Diagnostic[]): Module[] {
  const set = new AnnotationSet(modules, diags);
  const annotationsOf = (a: Annotation, loc: Loc) => {
    if (a.hasSchemas)
      diags.push({ ...loc, message: "rego.metadata: annotations with schemas are not reproduced by Arbiter" });
    return a.value;
  };
  return modules.map((m) => {
    const rules = m.rules.map((r) => {
      const replacer = (own: boolean) => (name: string, loc: Loc) => {
        const meta = set.metadata(m, r, own);
        if (name === "rego.metadata.rule") return termOf(meta.rule ? annotationsOf(meta.rule, loc) : {}, loc);
        const chain = meta.chain.map(([path, a]) => (a ? { path, annotations: annotationsOf(a, loc) } : { path }));
        return termOf(chain, loc);
      };
      const { elses, ...clause } = r;
      const head = mapCalls(clause, replacer(true)) as Omit<Rule, "elses">;
      const rest = mapCalls(elses, replacer(false)) as Rule["elses"];
      return head === clause && rest === elses ? r : { ...head, elses: rest };
    });
    return rules.every((r, i) => r === m.rules[i]) ? m : { ...m, rules };
  });
}
