/** Public surface of the policy engine host. */
export { createEngineHost } from "./engine-host.ts";
export { EvaluationTimeoutError } from "./errors.ts";
export type {
  ActivePolicy,
  DataValidator,
  EngineHost,
  EngineHostOptions,
  EngineListener,
  EngineStatus,
  LoadResult,
} from "./types.ts";
