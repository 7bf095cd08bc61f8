// Real compile + evaluate of Rego expressions for the host-builtin family tests.
import { compile } from "../../src/compiler/index.ts";
import { loadCompiledPolicy } from "../../src/engine/load-policy.ts";

/** An expression and what `r := <expr>` must answer (undefined: no result; Error: the evaluation fails). */
export type RegoCase = readonly [expr: string, want: unknown];

export interface CaseFailure {
  readonly expr: string;
  readonly got: unknown;
  readonly want: unknown;
}

/**
 * Compiles one module with a rule per case (`r<i> := <expr>`) and evaluates each through the
 * SDK; returns the cases whose answer differs. A want of `Error` expects the evaluation to throw.
 */
export async function regoFailures(
  cases: readonly RegoCase[],
  options: { strict?: boolean; input?: unknown } = {},
): Promise<CaseFailure[]> {
  const text = ["package t", ...cases.map(([expr], i) => `r${i} := __x if { __x := ${expr} }`)].join("\n");
  const { wasm } = compile([{ path: "t.rego", text }], {
    entrypoints: cases.map((_, i) => `t/r${i}`),
    strictBuiltinErrors: options.strict === true,
  });
  const policy = await loadCompiledPolicy(wasm);
  const bad: CaseFailure[] = [];
  cases.forEach(([expr, want], i) => {
    let got: unknown;
    try {
      const rs = policy.evaluate(options.input, `t/r${i}`) as Array<{ result: unknown }>;
      got = rs.length === 0 ? undefined : rs[0]!.result;
    } catch (err) {
      got = Error;
      if (want !== Error) got = `throws: ${(err as Error).message}`;
    }
    if (JSON.stringify(got) !== JSON.stringify(want) || (got === Error) !== (want === Error))
      bad.push({ expr, got, want });
  });
  return bad;
}
