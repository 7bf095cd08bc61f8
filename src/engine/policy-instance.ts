/**
 * One evaluable instance of a deadline-instrumented policy module (`wasm-deadline.ts`).
 *
 * The SDK's `loadPolicy` builds its own import object (`env.*` only), so a module importing
 * `arbiter.deadline_check` cannot link through it. This file instantiates the module itself with
 * the same `env` imports the SDK provides (memory, `opa_abort`, `opa_println`, `opa_builtin0..4`
 * dispatching to the SDK's own builtins and then to Arbiter's host builtins, arguments and results
 * as JSON exactly as the SDK passes them) plus the deadline check, and hands the instance to the
 * SDK's exported `LoadedPolicy`, so evaluation, `setData` and the ABI 1.2 fast path stay the SDK's.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { DEADLINE_IMPORT, DEFAULT_FUEL_INTERVAL } from "./wasm-deadline.ts";
import { EvaluationTimeoutError } from "./errors.ts";
import { yamlBuiltinsByValue } from "../compiler/host-yaml.ts";
import { HOST_IMPORT_NAMES, HOST_JSON_IO, HOST_TYPED_JSON } from "../compiler/builtins.ts";
import { goSprintfValues } from "../compiler/host-sprintf.ts";

type Builtin = (...args: unknown[]) => unknown;

const require = createRequire(import.meta.url);
/** The SDK's `LoadedPolicy` class (exported by its CommonJS entry; its typings omit it). */
const { LoadedPolicy } = require("@open-policy-agent/opa-wasm") as {
  LoadedPolicy: new (
    instance: WebAssembly.Instance,
    memory: WebAssembly.Memory,
    minorVersion: number | undefined,
  ) => SdkPolicy;
};
/** The SDK's builtin implementations (`src/builtins`), which its package exports do not expose. */
const sdkBuiltins = require(
  join(dirname(require.resolve("@open-policy-agent/opa-wasm")), "builtins", "index.js"),
) as Record<string, Builtin>;

/**
 * Builtins the SDK implements otherwise than OPA (HOST_IMPORT_NAMES: its YAML is 1.2, its
 * regex.split JavaScript's, its sprintf sprintf-js), by OPA's name, for a module that calls them so
 * (`opa build -t wasm`) with plain values: Arbiter's host builtin of the other name where it takes
 * plain values, and a plain-value form of the ones that exchange JSON or typed text.
 */
const OPA_BY_VALUE: ReadonlyMap<string, string | Builtin> = new Map<string, string | Builtin>([
  ...[...HOST_IMPORT_NAMES].filter(([opa]) => !HOST_TYPED_JSON.has(opa) && !HOST_JSON_IO.has(opa)),
  ...Object.entries(yamlBuiltinsByValue),
  ["sprintf", goSprintfValues as Builtin],
  // Arbiter's (arbiter.print) takes typed text, for `arbiter test`; a module built by OPA calls
  // internal.print with plain values, and in the sidecar print writes nothing.
  ["internal.print", () => true],
]);

/**
 * A builtin a module imports, by name: Arbiter's in place of the SDK's above, then the SDK's, then
 * Arbiter's host builtins. Modules from Arbiter's compiler import those under Arbiter's names, so
 * the first table serves modules built by `opa build -t wasm`.
 */
export function builtinImpl(name: string, hostBuiltins: Record<string, Builtin>): Builtin | undefined {
  const own = OPA_BY_VALUE.get(name);
  return (typeof own === "string" ? hostBuiltins[own] : own) ?? sdkBuiltins[name] ?? hostBuiltins[name];
}

/** What the engine uses of the SDK's `LoadedPolicy`. */
export interface SdkPolicy {
  evaluate(input: unknown, entrypoint: string): unknown;
  setData(data: object | ArrayBuffer): void;
  readonly entrypoints: Record<string, number>;
}

/** An instantiated policy and the builtins its module declares (`builtins()` of the ABI). */
export type InstantiatedPolicy = SdkPolicy & { readonly builtinNames: readonly string[] };

/**
 * The deadline shared by an instance's host check: `Infinity` outside evaluations (loading data,
 * the SDK's own calls), `performance.now()`-based ms during one.
 */
export class Deadline {
  at = Number.POSITIVE_INFINITY;
  /** The limit of the evaluation in progress, for the error message. */
  limitMs = 0;
  fuel = DEFAULT_FUEL_INTERVAL;
  /** Host check; throws to unwind the evaluation once the deadline has passed. */
  readonly check = (): number => {
    if (performance.now() > this.at) {
      this.at = Number.POSITIVE_INFINITY;
      throw new EvaluationTimeoutError(this.limitMs);
    }
    return this.fuel;
  };
}

interface Exports {
  opa_json_dump(addr: number): number;
  opa_json_parse(addr: number, len: number): number;
  opa_malloc(len: number): number;
  builtins(): number;
  opa_wasm_abi_version?: WebAssembly.Global | number;
  opa_wasm_abi_minor_version?: WebAssembly.Global | number;
}

function readCString(memory: WebAssembly.Memory, addr: number): string {
  const buf = new Uint8Array(memory.buffer);
  let end = addr;
  while (end < buf.length && buf[end] !== 0) end++;
  return new TextDecoder().decode(buf.subarray(addr, end));
}

function dumpJSON(exports: Exports, memory: WebAssembly.Memory, addr: number): unknown {
  return JSON.parse(readCString(memory, exports.opa_json_dump(addr)));
}

function loadJSON(exports: Exports, memory: WebAssembly.Memory, value: unknown): number {
  if (value === undefined) return 0;
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  const addr = exports.opa_malloc(bytes.length);
  new Uint8Array(memory.buffer).set(bytes, addr);
  const parsed = exports.opa_json_parse(addr, bytes.length);
  if (parsed === 0) throw new Error("failed to parse json value");
  return parsed;
}

function globalValue(g: WebAssembly.Global | number | undefined): number | undefined {
  return typeof g === "number" ? g : (g?.value as number | undefined);
}

export interface InstanceOptions {
  readonly memory: { readonly initial: number; readonly maximum: number };
  readonly hostBuiltins: Record<string, Builtin>;
  readonly deadline: Deadline;
}

/**
 * Instantiates `module` (instrumented) synchronously — cheap once compiled — and wraps it in the
 * SDK's `LoadedPolicy`. Throws an `Error` naming the problem (ABI version, link error).
 */
export function instantiatePolicy(module: WebAssembly.Module, options: InstanceOptions): InstantiatedPolicy {
  const memory = new WebAssembly.Memory({ initial: options.memory.initial, maximum: options.memory.maximum });
  // eslint-disable-next-line prefer-const -- set once the instance exists, after the import closures that read it
  let exports: Exports | undefined;
  let names: Record<number, string> = {};
  const call = (id: number, ...argAddrs: number[]): number => {
    const name = names[id];
    const impl = name === undefined ? undefined : builtinImpl(name, options.hostBuiltins);
    if (impl === undefined) throw new Error(`not implemented: built-in function ${id}: ${name}`);
    const args = argAddrs.map((a) => dumpJSON(exports!, memory, a));
    return loadJSON(exports!, memory, impl(...args));
  };
  const imports: WebAssembly.Imports = {
    env: {
      memory,
      opa_abort: (addr: number): never => {
        throw new Error(readCString(memory, addr));
      },
      // Policies' print() output is not part of a decision; dropped like any payload.
      opa_println: (): void => undefined,
      opa_builtin0: (id: number) => call(id),
      opa_builtin1: (id: number, _ctx: number, a: number) => call(id, a),
      opa_builtin2: (id: number, _ctx: number, a: number, b: number) => call(id, a, b),
      opa_builtin3: (id: number, _ctx: number, a: number, b: number, c: number) => call(id, a, b, c),
      opa_builtin4: (id: number, _ctx: number, a: number, b: number, c: number, d: number) => call(id, a, b, c, d),
    },
    [DEADLINE_IMPORT.module]: { [DEADLINE_IMPORT.name]: options.deadline.check },
  };
  const instance = new WebAssembly.Instance(module, imports);
  exports = instance.exports as unknown as Exports;
  const abi = globalValue(exports.opa_wasm_abi_version);
  if (abi !== undefined && abi !== 1) throw new Error(`unsupported OPA wasm ABI version ${abi}`);
  const minor = globalValue(exports.opa_wasm_abi_minor_version);
  const declared = dumpJSON(exports, memory, exports.builtins()) as Record<string, number>;
  names = {};
  for (const [name, id] of Object.entries(declared)) names[id] = name;
  return Object.assign(new LoadedPolicy(instance, memory, minor), { builtinNames: Object.keys(declared) });
}
