/**
 * The one way a compiled policy module is loaded (issue 16): instrumented for the evaluation
 * deadline (`wasm-deadline.ts`) and instantiated in a bounded memory (`instantiatePolicy`),
 * exactly as the engine host loads a bundle. The CLI (`arbiter eval`, `arbiter test`) and the
 * compiler's conformance tests load through here, so they exercise the production path.
 */
import { hostBuiltinMap, prepareHostBuiltins } from "./compiler-bridge.ts";
import { Deadline, instantiatePolicy, type SdkPolicy } from "./policy-instance.ts";
import { instrumentDeadline } from "./wasm-deadline.ts";

/** Wasm memory bounds in 64 KiB pages: 320 KiB initial, 64 MiB maximum (`EngineHostOptions.memory`). */
export const DEFAULT_POLICY_MEMORY: { readonly initial: number; readonly maximum: number } = Object.freeze({
  initial: 5,
  maximum: 1024,
});

/** A loaded policy: the SDK's `LoadedPolicy`, whose every throw is an `Error`. */
export interface LoadedPolicy extends SdkPolicy {
  /** Evaluates `entrypoint` (name or id; default id 0) and returns the result set. */
  evaluate(input: unknown, entrypoint?: string | number): unknown;
}

export interface LoadPolicyOptions {
  /** Wasm memory bounds in 64 KiB pages. Default `DEFAULT_POLICY_MEMORY`. */
  readonly memory?: { readonly initial: number; readonly maximum: number };
  /** Further host builtins by name (`arbiter test --coverage` adds `arbiter.cover`). */
  readonly extraBuiltins?: Record<string, (...args: unknown[]) => unknown>;
}

/**
 * Compiles, instruments and instantiates `wasm` with Arbiter's host builtins in a bounded
 * memory, then sets `data` when given. Evaluations run without a deadline (the engine host sets
 * one per evaluation on its own `Deadline`). Every failure is an `Error` naming its step.
 */
export async function loadCompiledPolicy(
  wasm: Uint8Array,
  data?: unknown,
  options: LoadPolicyOptions = {},
): Promise<LoadedPolicy> {
  let policy: SdkPolicy;
  try {
    const module = await WebAssembly.compile(instrumentDeadline(wasm));
    const instance = instantiatePolicy(module, {
      memory: options.memory ?? DEFAULT_POLICY_MEMORY,
      hostBuiltins: options.extraBuiltins ? { ...hostBuiltinMap(), ...options.extraBuiltins } : hostBuiltinMap(),
      deadline: new Deadline(),
    });
    await prepareHostBuiltins(instance.builtinNames);
    policy = instance;
  } catch (e) {
    throw toError(e, "loading the policy module failed");
  }
  if (data !== undefined) {
    try {
      policy.setData(data as object);
    } catch (e) {
      throw toError(e, "setting policy data failed");
    }
  }
  const evaluate = policy.evaluate.bind(policy) as LoadedPolicy["evaluate"];
  // The SDK throws bare strings from some paths: turn them into Errors (the library boundary).
  (policy as LoadedPolicy).evaluate = (input, entrypoint) => {
    try {
      return evaluate(input, entrypoint);
    } catch (e) {
      throw toError(e, "policy evaluation failed");
    }
  };
  return policy as LoadedPolicy;
}

function toError(e: unknown, context: string): Error {
  if (e instanceof Error) return e;
  if (typeof e === "string") return new Error(e);
  let detail: string;
  try {
    detail = JSON.stringify(e) ?? String(e);
  } catch {
    detail = String(e);
  }
  return new Error(`${context}: ${detail}`, { cause: e });
}
