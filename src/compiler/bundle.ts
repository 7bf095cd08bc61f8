export interface BundleManifest { revision: string; roots: string[]; wasm: { entrypoint: string; module: string }[]; rego_version?: number }
export interface Bundle { files: Map<string, Uint8Array>; manifest: BundleManifest }
export interface BuildBundleOptions { entrypoints?: string[]; revision?: string }
export interface LoadedBundle { wasm: Uint8Array; data: unknown; manifest: BundleManifest; regoFiles: Map<string, string> }
export function readBundle(): never { throw new Error("not implemented"); }
export function writeBundle(): never { throw new Error("not implemented"); }
export function buildBundle(): never { throw new Error("not implemented"); }
