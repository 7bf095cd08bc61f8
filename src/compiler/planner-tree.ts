/**
 * Planning of a partial object tree (OPA v1 "general references in rule heads"): the document
 * at a node holding rules like `p[x].y := z` or `p[x][y] contains z`, or a partial object rule
 * `p[k] := v` with other rules below it (`p.q.r := 1`). One function builds the whole tree from
 * every rule at or below the node; queries below it look into that value.
 *
 * While building, a leaf value is kept wrapped in a one-element array, a set leaf is a set and an
 * inner node is an object, so a rule that writes below a value, or a value over an inner node,
 * is told apart from two rules writing the same value (fine, as in OPA). Conflicts abort the
 * evaluation with OPA's "object keys must be unique" (eval_conflict_error). The wrapping is
 * removed at the end, down to the deepest path any rule writes.
 */
import type { Term } from "./ast.ts";
import { CheckFailure, ClauseResolver } from "./checker.ts";
import type { Func, Local, Stmt } from "./ir.ts";
import { BodyPlanner } from "./planner-body.ts";
import {
  dataName,
  FnBuilder,
  type Group,
  MSG_OBJECT_KEYS,
  PlanFailure,
  type RuleRef,
  type TreeNode,
} from "./planner-context.ts";
import type { RuleContext } from "./planner-rules.ts";

/** Every rule group and general rule at or below `node`, with its path relative to `node`. */
function collect(node: TreeNode): {
  groups: { rel: string[]; g: Group }[];
  generals: { rel: string[]; rr: RuleRef }[];
} {
  const groups: { rel: string[]; g: Group }[] = [];
  const generals: { rel: string[]; rr: RuleRef }[] = [];
  const walk = (n: TreeNode): void => {
    const rel = n.path.slice(node.path.length);
    if (n.group && n.group.kind !== "function") groups.push({ rel, g: n.group });
    for (const rr of n.generals ?? []) generals.push({ rel, rr });
    for (const [, c] of [...n.children].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) walk(c);
  };
  walk(node);
  return { groups, generals };
}

/** The function building the document of tree node `node`. */
export function planTree(ctx: RuleContext, node: TreeNode, name: string): Func {
  const fb = new FnBuilder(2);
  const from = dataName(node.path);
  const root = fb.newLocal();
  fb.emit({ op: "makeObject", target: root });
  const { groups, generals } = collect(node);
  let depth = 1;
  let failed = false;

  const constKey = (s: string): Local => {
    const l = fb.newLocal();
    fb.emit({ op: "const", target: l, json: JSON.stringify(s) });
    return l;
  };

  for (const { rel, g } of groups) {
    const func = ctx.ensureGroup(g);
    // The partial object at the tree's own node is part of this function, not a call into it.
    if (g.path.length > node.path.length) ctx.edge(from, dataName(g.path));
    depth = Math.max(depth, rel.length + (g.kind === "object" ? 1 : 0));
    const inner = fb.nest(() => {
      const v = fb.newLocal();
      fb.emit({ op: "call", target: v, func, args: [0, 1] });
      const keys = rel.map(constKey);
      if (g.kind === "complete") {
        insertValue(fb, root, keys, v);
      } else if (g.kind === "set") {
        const [k, e] = [fb.newLocal(), fb.newLocal()];
        const body = fb.nest(() => insertElement(fb, root, keys, e));
        fb.emit({ op: "scan", source: v, key: k, value: e, body });
        // An empty partial set is still a document.
        if (keys.length > 0) insertElement(fb, root, keys, undefined);
      } else {
        const [k, x] = [fb.newLocal(), fb.newLocal()];
        const body = fb.nest(() => insertValue(fb, root, [...keys, k], x));
        fb.emit({ op: "scan", source: v, key: k, value: x, body });
      }
    });
    fb.emit({ op: "block", blocks: [inner] });
  }

  for (const { rel, rr } of generals) {
    const rule = rr.rule;
    const isSet = rule.kind === "set";
    const parts = rule.dynRef!;
    depth = Math.max(depth, rel.length + parts.length);
    // The head's reference parts (and a set's element) are resolved as one array term, so their
    // variables are checked and bound like any head term.
    const head: Term = { type: "array", items: isSet ? [...parts, rule.key!] : parts, loc: rule.loc };
    try {
      const resolved = new ClauseResolver(rr.module, ctx.index, ctx.diags).resolveClause(
        [],
        head,
        rule.value,
        rule.body,
      );
      const bp = new BodyPlanner(ctx, fb, resolved, from);
      const items = (resolved.key as Extract<Term, { type: "array" }>).items;
      const inner = fb.nest(() =>
        bp.planBody(resolved.body, () => {
          bp.checkHeadSafety([resolved.key, resolved.value], rule.loc);
          const planAll = (i: number, ls: Local[]): void => {
            if (i < items.length) return bp.planTerm(items[i]!, (l) => planAll(i + 1, [...ls, l]));
            const keys = [...rel.map(constKey), ...ls];
            if (isSet) insertElement(fb, root, keys.slice(0, -1), keys[keys.length - 1]);
            else bp.planValue(resolved.value, (v) => insertValue(fb, root, keys, v));
          };
          planAll(0, []);
        }),
      );
      fb.emit({ op: "block", blocks: [inner] });
    } catch (e) {
      if (!(e instanceof PlanFailure) && !(e instanceof CheckFailure)) throw e;
      failed = true;
    }
  }
  if (failed) throw new PlanFailure();
  const result = unwrap(fb, root, depth);
  return { name, params: 2, locals: fb.locals, body: fb.body, result, memoize: true };
}

/**
 * The child of `parent` at `key` when it is of `kind`; created (empty) when there is none; the
 * evaluation aborts with OPA's conflict error when something else is there.
 */
function childOfKind(fb: FnBuilder, parent: Local, key: Local, kind: "object" | "set"): Local {
  const [t, child] = [fb.newLocal(), fb.newLocal()];
  fb.emit({ op: "reset", target: t });
  fb.emit({ op: "reset", target: child });
  fb.emit({
    op: "block",
    blocks: [
      [
        { op: "dot", target: t, source: parent, key },
        { op: "isKind", source: t, kind },
        { op: "assign", target: child, source: t },
      ],
    ],
  });
  fb.emit({
    op: "block",
    blocks: [
      [
        { op: "isUndefined", source: child },
        { op: "dot", target: t, source: parent, key },
        { op: "abort", message: MSG_OBJECT_KEYS },
      ],
    ],
  });
  fb.emit({
    op: "block",
    blocks: [
      [
        { op: "isUndefined", source: child },
        kind === "object" ? { op: "makeObject", target: child } : { op: "makeSet", target: child },
        { op: "objectInsert", object: parent, key, value: child },
      ],
    ],
  });
  return child;
}

/** Walks from `root` along keys, creating inner nodes; aborts where a value or set is in the way. */
function descend(fb: FnBuilder, root: Local, keys: readonly Local[]): Local {
  let cur = root;
  for (const key of keys) cur = childOfKind(fb, cur, key, "object");
  return cur;
}

/** Writes the value `v` at the path `keys`; an equal value there already is fine. */
function insertValue(fb: FnBuilder, root: Local, keys: readonly Local[], v: Local): void {
  const parent = descend(fb, root, keys.slice(0, -1));
  const key = keys[keys.length - 1]!;
  const [t, x, zero, done, w] = [fb.newLocal(), fb.newLocal(), fb.newLocal(), fb.newLocal(), fb.newLocal()];
  fb.emit({ op: "reset", target: done });
  fb.emit({
    op: "block",
    blocks: [
      [
        { op: "dot", target: t, source: parent, key },
        { op: "isArrayOfLength", source: t, length: 1 },
        { op: "const", target: zero, json: "0" },
        { op: "dot", target: x, source: t, key: zero },
        { op: "equal", a: x, b: v },
        { op: "assign", target: done, source: t },
      ],
    ],
  });
  fb.emit({
    op: "block",
    blocks: [
      [
        { op: "isUndefined", source: done },
        { op: "dot", target: t, source: parent, key },
        { op: "abort", message: MSG_OBJECT_KEYS },
      ],
    ],
  });
  fb.emit({
    op: "block",
    blocks: [
      [
        { op: "isUndefined", source: done },
        { op: "makeArray", target: w, capacity: 1 },
        { op: "arrayAppend", array: w, value: v },
        { op: "objectInsert", object: parent, key, value: w },
      ],
    ],
  });
}

/** Adds element `e` (none: only makes sure the set exists) to the set at the path `keys`. */
function insertElement(fb: FnBuilder, root: Local, keys: readonly Local[], e: Local | undefined): void {
  const parent = descend(fb, root, keys.slice(0, -1));
  const s = childOfKind(fb, parent, keys[keys.length - 1]!, "set");
  if (e !== undefined) fb.emit({ op: "setAdd", set: s, value: e });
}

/** A copy of the tree at `src` without the leaf wrapping, `levels` deep. */
function unwrap(fb: FnBuilder, src: Local, levels: number): Local {
  const out = fb.newLocal();
  fb.emit({ op: "makeObject", target: out });
  const [k, v, x, zero] = [fb.newLocal(), fb.newLocal(), fb.newLocal(), fb.newLocal()];
  const body: Stmt[] = [
    {
      op: "block",
      blocks: [
        [
          { op: "isKind", source: v, kind: "array" },
          { op: "const", target: zero, json: "0" },
          { op: "dot", target: x, source: v, key: zero },
          { op: "objectInsert", object: out, key: k, value: x },
        ],
      ],
    },
    {
      op: "block",
      blocks: [
        [
          { op: "isKind", source: v, kind: "set" },
          { op: "objectInsert", object: out, key: k, value: v },
        ],
      ],
    },
  ];
  if (levels > 1) {
    const inner = fb.nest(() => {
      fb.emit({ op: "isKind", source: v, kind: "object" });
      const o = unwrap(fb, v, levels - 1);
      fb.emit({ op: "objectInsert", object: out, key: k, value: o });
    });
    body.push({ op: "block", blocks: [inner] });
  }
  fb.emit({ op: "scan", source: src, key: k, value: v, body });
  return out;
}
