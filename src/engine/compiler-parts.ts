/**
 * The engine's light door into `src/compiler/`: the pieces the load worker needs (the data-file
 * merge of the bundle layout, the wasm byte writer) from modules with no compiler dependencies,
 * so a worker starts without loading and transforming the parser, planner and code generator.
 * Bundles are read by the engine's bounded reader (`bundle-reader.ts`, issue #12), which
 * interprets OPA's layout as the compiler's `readBundle` does.
 */
export { mergeAt, PolicyLoadError } from "../compiler/data.ts";
export { Bytes } from "../compiler/wasm-module.ts";
