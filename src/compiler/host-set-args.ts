/**
 * Host builtins that take any value (an object, a request, a payload) and so may meet a set
 * nested in an argument. They are HOST_TYPED_JSON builtins (builtins.ts): sets arrive as RegoSet
 * and are handed to the JSON implementation as arrays in Rego's order, which is what OPA's
 * `ast.JSON` makes of a set (its Iter walks the sorted keys). `object.union_n` merges typed values,
 * so a set inside an object stays a set. `yaml.marshal` (host-yaml.ts) is imported as
 * `arbiter.yaml.marshal` (HOST_IMPORT_NAMES) so that it goes through here;
 * `providers.aws.sign_req` echoes its request with the set left a set, as OPA does.
 */
import type { HostBuiltin } from "./host-types.ts";
import { isTypedObject, toPlainJson, typedIo, type TypedJson } from "./host-typed-json.ts";
import { yamlMarshal } from "./host-yaml.ts";

type Obj = { [k: string]: TypedJson };

/** An own member, also for the key "__proto__". */
function put(o: Obj, k: string, v: TypedJson): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** OPA's mergeWithOverwrite: objects merge recursively, the right side wins otherwise (sets kept). */
function merge(a: TypedJson, b: TypedJson): TypedJson {
  if (!isTypedObject(a) || !isTypedObject(b)) return b;
  const out: Obj = {};
  for (const [k, v] of Object.entries(a)) put(out, k, v);
  for (const [k, v] of Object.entries(b)) put(out, k, Object.hasOwn(a, k) ? merge(a[k]!, v) : v);
  return out;
}

/** object.union_n(array of objects); OPA refuses a set or a non-object element. */
function unionN(objs: TypedJson): TypedJson | undefined {
  if (!Array.isArray(objs) || !objs.every(isTypedObject)) return undefined;
  return objs.reduce<TypedJson>((acc, o) => merge(acc, o), {});
}

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
    "arbiter.yaml.marshal": plainArgs("yaml.marshal", yamlMarshal),
    "json.marshal_with_options": plainArgs("json.marshal_with_options", table["json.marshal_with_options"]!),
    "object.union_n": typedIo(unionN),
    "providers.aws.sign_req": typedIo((req, ...rest) => {
      const out = aws(...[req, ...rest].map((a) => toPlainJson(a!, "providers.aws.sign_req"))) as unknown;
      if (out === undefined) return undefined;
      if (!isTypedObject(req) || typeof out !== "object" || out === null)
        throw new Error("providers.aws.sign_req: internal error");
      return { ...req, headers: (out as { headers: TypedJson }).headers };
    }),
  };
}
