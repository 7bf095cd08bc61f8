/**
 * `import { createArbiter } from "arbiter"`: Arbiter in-process (docs/library.md).
 */
export { createArbiter, type Arbiter } from "./arbiter.ts";
export { ArbiterError } from "./errors.ts";
export type { ArbiterOptions } from "./options.ts";
export type { EngineStatus as ArbiterStatus } from "../engine/types.ts";
export type * from "./types.ts";
