// Hand-written IR helpers for the back-end tests (no front end involved).
import { loadPolicy } from "@open-policy-agent/opa-wasm";
import { generateWasm } from "../../src/compiler/codegen.ts";
import { hostBuiltins } from "../../src/compiler/host-builtins.ts";
import { HOST_JSON_IO, HOST_TYPED_JSON } from "../../src/compiler/builtins.ts";
import type { Func, Policy, Stmt } from "../../src/compiler/ir.ts";

export type LoadedPolicy = Awaited<ReturnType<typeof loadPolicy>>;

/** A memoized 2-parameter rule function. */
export function rule(name: string, locals: number, result: number, body: Stmt[], memoize = true): Func {
  return { name, params: 2, locals, result, body, memoize };
}

export function policyOf(funcs: Func[], entrypoints: Record<string, string>, hostBuiltinNames: string[] = []): Policy {
  return {
    funcs,
    plans: Object.entries(entrypoints).map(([name, func]) => ({ name, func })),
    hostBuiltins: hostBuiltinNames,
  };
}

export async function load(
  policy: Policy,
  memory: WebAssembly.MemoryDescriptor = { initial: 5 },
): Promise<LoadedPolicy> {
  return loadPolicy(generateWasm(policy), memory, hostBuiltins);
}

/** Evaluates one entrypoint; returns the result value or undefined for an empty result set. */
export function result(p: LoadedPolicy, input: unknown, entrypoint: string | number = 0): unknown {
  const rs = p.evaluate(input, entrypoint) as Array<{ result: unknown }>;
  if (rs.length === 0) return undefined;
  return rs[0]!.result;
}

/**
 * A policy whose single entrypoint `t/out` evaluates one builtin on constant JSON arguments
 * (or on input fields when an argument is `"$input.<field>"`).
 */
export function builtinPolicy(name: string, args: string[], hostBuiltinNames: string[] = []): Policy {
  const body: Stmt[] = [];
  const argLocals: number[] = [];
  let next = 2;
  for (const a of args) {
    const l = next++;
    if (a.startsWith("$input.")) {
      const k = next++;
      body.push({ op: "const", target: k, json: JSON.stringify(a.slice(7)) });
      body.push({ op: "dot", target: l, source: 0, key: k });
    } else {
      body.push({ op: "const", target: l, json: a });
    }
    argLocals.push(l);
  }
  const out = next++;
  const typed = HOST_TYPED_JSON.has(name);
  if (typed || HOST_JSON_IO.has(name)) {
    // as the planner does: (typed) JSON text in and out (integers exact; sets marked when typed)
    const texts = argLocals.map((a) => {
      const t = next++;
      body.push({ op: "builtin", target: t, name: typed ? "internal.typed_marshal" : "json.marshal", args: [a] });
      return t;
    });
    const raw = next++;
    body.push({ op: "builtin", target: raw, name, args: texts });
    body.push({ op: "builtin", target: out, name: typed ? "internal.typed_unmarshal" : "json.unmarshal", args: [raw] });
    return policyOf([rule("out", next, out, body)], { "t/out": "out" }, hostBuiltinNames);
  }
  body.push({ op: "builtin", target: out, name, args: argLocals });
  return policyOf([rule("out", next, out, body)], { "t/out": "out" }, hostBuiltinNames);
}

export interface BuiltinCase {
  /** Builtin name as in the IR. */
  readonly name: string;
  /** JSON texts of the arguments. */
  readonly args: readonly string[];
  /** The expected result, or undefined when the builtin must be undefined. */
  readonly want: unknown;
}

/** One policy with an entrypoint `c<i>` per case, so a whole table compiles once. */
export function casesPolicy(cases: readonly BuiltinCase[], hostBuiltinNames: string[] = []): Policy {
  const funcs = cases.map((c, i) => {
    const one = builtinPolicy(c.name, [...c.args]).funcs[0]!;
    return { ...one, name: `c${i}` };
  });
  return policyOf(funcs, Object.fromEntries(cases.map((_, i) => [`c${i}`, `c${i}`])), hostBuiltinNames);
}

/** Runs every case; returns the ones that did not produce the expected result. */
export function failures(p: LoadedPolicy, cases: readonly BuiltinCase[]): string[] {
  const bad: string[] = [];
  cases.forEach((c, i) => {
    let got: unknown;
    try {
      got = result(p, {}, `c${i}`);
    } catch (e) {
      got = `threw ${String(e)}`;
    }
    if (JSON.stringify(got) !== JSON.stringify(c.want)) {
      bad.push(`${c.name}(${c.args.join(", ")}) = ${JSON.stringify(got)}, want ${JSON.stringify(c.want)}`);
    }
  });
  return bad;
}
