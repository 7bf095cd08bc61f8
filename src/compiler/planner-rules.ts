/**
 * Planning of rule groups and package documents into IR functions: each clause of a rule (and
 * its `else` chain) is resolved by the checker and planned by a BodyPlanner; the default rule
 * applies when no clause produced a value.
 */
import { CheckFailure, ClauseResolver, type RuleIndex } from "./checker.ts";
import type { Diagnostic } from "./diagnostics.ts";
import type { Func, Stmt } from "./ir.ts";
import { BodyPlanner } from "./planner-body.ts";
import {
  dataName,
  FnBuilder,
  type Group,
  MSG_COMPLETE,
  MSG_FUNCTION,
  MSG_MERGE,
  MSG_OBJECT_KEYS,
  PlanFailure,
  type PlannerServices,
  type RuleRef,
  type TreeNode,
} from "./planner-context.ts";

/** What rule planning needs of the policy planner besides the body planner's services. */
export interface RuleContext extends PlannerServices {
  readonly index: RuleIndex;
  /** Where diagnostics go now (the policy planner swaps it while checking unreached rules). */
  readonly diags: Diagnostic[];
  ensureGroup(g: Group): string;
  ensureDoc(node: TreeNode): string;
  ensureTree(node: TreeNode): string;
  edge(from: string, to: string): void;
}

/** The document of a package path: its rules' values merged over the base data at that path. */
export function planDoc(ctx: RuleContext, node: TreeNode, name: string): Func {
  const fb = new FnBuilder(2);
  const from = dataName(node.path);
  const obj = fb.newLocal();
  fb.emit({ op: "makeObject", target: obj });
  for (const [key, child] of [...node.children].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (child.group?.kind === "function") continue;
    const k = fb.newLocal();
    const v = fb.newLocal();
    const func = child.tree ? ctx.ensureTree(child) : child.group ? ctx.ensureGroup(child.group) : ctx.ensureDoc(child);
    ctx.edge(from, dataName(child.path));
    fb.emit({
      op: "block",
      blocks: [
        [
          { op: "call", target: v, func, args: [0, 1] },
          { op: "const", target: k, json: JSON.stringify(key) },
          { op: "objectInsert", object: obj, key: k, value: v },
        ],
      ],
    });
  }
  const result = fb.newLocal();
  const base = fb.newLocal();
  const baseStmts: Stmt[] = [{ op: "assign", target: base, source: 1 }];
  for (const p of node.path) {
    const k = fb.newLocal();
    baseStmts.push(
      { op: "const", target: k, json: JSON.stringify(p) },
      { op: "dot", target: base, source: base, key: k },
    );
  }
  baseStmts.push({ op: "objectMerge", target: result, a: base, b: obj, message: MSG_MERGE });
  fb.emit({ op: "block", blocks: [baseStmts] });
  fb.emit({
    op: "block",
    blocks: [
      [
        { op: "isUndefined", source: result },
        { op: "assign", target: result, source: obj },
      ],
    ],
  });
  return { name, params: 2, locals: fb.locals, body: fb.body, result, memoize: true };
}

/** One function for a rule group: every clause, `else` chains and the default. */
export function planGroup(ctx: RuleContext, g: Group): Func {
  const params = 2 + g.arity;
  const fb = new FnBuilder(params);
  const result = fb.newLocal();
  const from = dataName(g.path);
  if (g.kind === "set") fb.emit({ op: "makeSet", target: result });
  if (g.kind === "object") fb.emit({ op: "makeObject", target: result });
  const message = g.kind === "function" ? MSG_FUNCTION : MSG_COMPLETE;
  let failed = false;
  let defaultRule: RuleRef | undefined;
  for (const rr of g.rules) {
    if (rr.rule.isDefault) {
      defaultRule = rr;
      continue;
    }
    const clauses = [
      { value: rr.rule.value, body: rr.rule.body, loc: rr.rule.loc },
      ...rr.rule.elses.map((e) => ({ value: e.value, body: e.body, loc: e.loc })),
    ];
    const hasElse = clauses.length > 1;
    const target = hasElse ? fb.newLocal() : result;
    for (let ci = 0; ci < clauses.length; ci++) {
      const c = clauses[ci]!;
      try {
        const resolver = new ClauseResolver(rr.module, ctx.index, ctx.diags);
        const resolved = resolver.resolveClause(rr.rule.args, rr.rule.key, c.value, c.body);
        const bp = new BodyPlanner(ctx, fb, resolved, from);
        const inner = fb.nest(() => {
          if (ci > 0) fb.emit({ op: "isUndefined", source: target });
          bp.bindArgs(resolved.args, 2, () =>
            bp.planBody(resolved.body, () => {
              bp.checkHeadSafety([resolved.key, resolved.value], c.loc);
              bp.cover(c.loc);
              switch (g.kind) {
                case "set":
                  bp.planTerm(resolved.key!, (v) => fb.emit({ op: "setAdd", set: result, value: v }));
                  break;
                case "object":
                  bp.planTerm(resolved.key!, (k) =>
                    bp.planValue(resolved.value, (v) =>
                      fb.emit({ op: "objectInsertOnce", object: result, key: k, value: v, message: MSG_OBJECT_KEYS }),
                    ),
                  );
                  break;
                default:
                  bp.planValue(resolved.value, (v) => fb.emit({ op: "assignOnce", target, source: v, message }));
              }
            }),
          );
        });
        fb.emit({ op: "block", blocks: [inner] });
      } catch (e) {
        if (!(e instanceof PlanFailure) && !(e instanceof CheckFailure)) throw e;
        failed = true;
      }
    }
    if (hasElse) {
      fb.emit({
        op: "block",
        blocks: [
          [
            { op: "isDefined", source: target },
            { op: "assignOnce", target: result, source: target, message },
          ],
        ],
      });
    }
  }
  if (defaultRule) {
    try {
      const resolver = new ClauseResolver(defaultRule.module, ctx.index, ctx.diags);
      const resolved = resolver.resolveClause(defaultRule.rule.args, undefined, defaultRule.rule.value, []);
      const bp = new BodyPlanner(ctx, fb, resolved, from);
      const inner = fb.nest(() => {
        fb.emit({ op: "isUndefined", source: result });
        bp.checkHeadSafety([resolved.value], defaultRule.rule.loc, true);
        bp.cover(defaultRule.rule.loc);
        bp.planValue(resolved.value, (v) => fb.emit({ op: "assign", target: result, source: v }));
      });
      fb.emit({ op: "block", blocks: [inner] });
    } catch (e) {
      if (!(e instanceof PlanFailure) && !(e instanceof CheckFailure)) throw e;
      failed = true;
    }
  }
  if (failed) throw new PlanFailure();
  return { name: g.funcName, params, locals: fb.locals, body: fb.body, result, memoize: g.arity === 0 };
}
