/** Emitting a builtin call in the IR, with the host boundary conversions its builtin needs. */
import { HOST_BOXED_RESULTS, HOST_JSON_IO, HOST_SET_RESULTS, HOST_TYPED_ARGS, HOST_TYPED_JSON } from "./builtins.ts";
import type { Local } from "./ir.ts";
import type { FnBuilder } from "./planner-context.ts";

/**
 * A builtin call into `out`. Host builtins in HOST_JSON_IO take each argument as its JSON text
 * (the native json.marshal, exact for integers beyond 2^53) and answer JSON text (parsed by the
 * native json.unmarshal); those in HOST_SET_RESULTS answer an array rebuilt here as a set; those
 * in HOST_TYPED_ARGS also receive each argument's type name (sets reach the host as arrays);
 * those in HOST_TYPED_JSON exchange typed text (JSON with sets marked), the same way.
 * those in HOST_BOXED_RESULTS answer `[value]` or `[]`, unboxed here with a lookup.
 */
export function emitBuiltin(fb: FnBuilder, name: string, args: readonly Local[], out: Local): void {
  const typed = HOST_TYPED_JSON.has(name);
  const jsonIo = typed || HOST_JSON_IO.has(name);
  const toSet = HOST_SET_RESULTS.has(name);
  const viaBuiltin =
    (builtin: string) =>
    (a: Local): Local => {
      const l = fb.newLocal();
      fb.emit({ op: "builtin", target: l, name: builtin, args: [a] });
      return l;
    };
  const callArgs = jsonIo ? args.map(viaBuiltin(typed ? "internal.typed_marshal" : "json.marshal")) : args;
  const types = HOST_TYPED_ARGS.has(name) ? args.map(viaBuiltin("type_name")) : [];
  const boxed = HOST_BOXED_RESULTS.has(name);
  let value = jsonIo || toSet || boxed ? fb.newLocal() : out;
  fb.emit({ op: "builtin", target: value, name, args: [...callArgs, ...types] });
  if (boxed) {
    // `[]` is an undefined result without an error, even under strict builtin errors.
    const zero = fb.newLocal();
    fb.emit({ op: "const", target: zero, json: "0" });
    fb.emit({ op: "dot", target: out, source: value, key: zero });
    return;
  }
  if (jsonIo) {
    const parsed = toSet ? fb.newLocal() : out;
    fb.emit({
      op: "builtin",
      target: parsed,
      name: typed ? "internal.typed_unmarshal" : "json.unmarshal",
      args: [value],
    });
    value = parsed;
  }
  if (toSet) {
    const [key, val] = [fb.newLocal(), fb.newLocal()];
    fb.emit({ op: "makeSet", target: out });
    fb.emit({ op: "scan", source: value, key, value: val, body: [{ op: "setAdd", set: out, value: val }] });
  }
}
