/**
 * Host builtins that take any value (an object, a request, a payload) and so may meet a set
 * nested in an argument. They are HOST_TYPED_JSON builtins (builtins.ts): sets arrive as RegoSet
 * and are handed to the JSON implementation as arrays in Rego's order, which is what OPA's
 * `ast.JSON` makes of a set (its Iter walks the sorted keys). `yaml.marshal` is the SDK's own
 * implementation, imported as `arbiter.yaml.marshal` (HOST_IMPORT_NAMES) so that it goes
 * through here; `providers.aws.sign_req` echoes its request with the set left a set, as OPA does.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { HostBuiltin } from "./host-types.ts";
import { isTypedObject, toPlainJson, typedIo, type TypedJson } from "./host-typed-json.ts";

const require = createRequire(import.meta.url);
/** The SDK's yaml.marshal, so that the text stays the one it printed before sets were allowed. */
const sdkYamlMarshal = (
  require(join(dirname(require.resolve("@open-policy-agent/opa-wasm")), "builtins", "index.js")) as Record<
    string,
    HostBuiltin
  >
)["yaml.marshal"]!;

/** `f` on plain JSON values (sets as arrays, integers as exact doubles, else refused). */
function plainArgs(name: string, f: HostBuiltin): HostBuiltin {
  return typedIo((...args) => f(...args.map((a) => toPlainJson(a, name))) as TypedJson | undefined);
}

/**
 * Wraps the listed implementations of `table` for typed text. `providers.aws.sign_req` answers
 * its request with the headers replaced: the other members are put back as they came, typed.
 */
export function withSetArgs(table: Record<string, HostBuiltin>): Record<string, HostBuiltin> {
  const aws = table["providers.aws.sign_req"]!;
  return {
    ...table,
    "urlquery.encode_object": plainArgs("urlquery.encode_object", table["urlquery.encode_object"]!),
    "io.jwt.encode_sign": plainArgs("io.jwt.encode_sign", table["io.jwt.encode_sign"]!),
    "arbiter.yaml.marshal": plainArgs("yaml.marshal", sdkYamlMarshal),
    "providers.aws.sign_req": typedIo((req, ...rest) => {
      const out = aws(...[req, ...rest].map((a) => toPlainJson(a!, "providers.aws.sign_req"))) as unknown;
      if (out === undefined) return undefined;
      if (!isTypedObject(req) || typeof out !== "object" || out === null)
        throw new Error("providers.aws.sign_req: internal error");
      return { ...req, headers: (out as { headers: TypedJson }).headers };
    }),
  };
}
