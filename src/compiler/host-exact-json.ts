/**
 * JSON text with exact integers, for the host builtins listed in HOST_JSON_IO (builtins.ts):
 * they receive every argument as the JSON text the runtime's native json.marshal wrote and
 * answer JSON text the native json.unmarshal parses, so an integer beyond 2^53 (a nanosecond
 * timestamp) crosses the JavaScript boundary as a BigInt instead of a rounded number.
 */

/** A JSON value whose integers (no fraction, no exponent) are BigInt. */
export type ExactJson = null | boolean | number | bigint | string | ExactJson[] | { [k: string]: ExactJson };

/** Parses the runtime's JSON text; integers become BigInt, other numbers stay numbers. */
export function parseExactJson(text: string): ExactJson {
  let i = 0;
  const ws = () => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  const value = (): ExactJson => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const out: Record<string, ExactJson> = {};
      ws();
      if (text[i] === "}") return (i++, out);
      for (;;) {
        ws();
        const k = value();
        ws();
        i++; // ':'
        out[k as string] = value();
        ws();
        if (text[i++] === "}") return out;
      }
    }
    if (c === "[") {
      i++;
      const out: ExactJson[] = [];
      ws();
      if (text[i] === "]") return (i++, out);
      for (;;) {
        out.push(value());
        ws();
        if (text[i++] === "]") return out;
      }
    }
    if (c === '"') {
      const m = /^"(?:[^"\\]|\\.)*"/.exec(text.slice(i))!;
      i += m[0].length;
      return JSON.parse(m[0]) as string;
    }
    const m = /^(?:true|false|null|-?\d+(\.\d+)?([eE][+-]?\d+)?)/.exec(text.slice(i));
    if (!m) throw new Error(`malformed JSON from the runtime at ${i}`);
    i += m[0].length;
    if (m[0] === "true" || m[0] === "false" || m[0] === "null") return JSON.parse(m[0]) as ExactJson;
    return m[1] === undefined && m[2] === undefined ? BigInt(m[0]) : Number(m[0]);
  };
  return value();
}

/** JSON text with BigInt integers written exactly. */
export function exactJsonText(v: ExactJson): string {
  if (typeof v === "bigint") return v.toString();
  if (Array.isArray(v)) return `[${v.map(exactJsonText).join(",")}]`;
  if (v !== null && typeof v === "object") {
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}:${exactJsonText(x)}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

/**
 * An error OPA's builtin raises (bad operand, out of range): the call is undefined, or with
 * strict builtin errors the evaluation fails. Any other throw is a limit of Arbiter's and
 * always fails the evaluation.
 */
export class OpaBuiltinError extends Error {}

/** Throws OpaBuiltinError with OPA's `name: message`. */
export function builtinError(name: string, message: string): never {
  throw new OpaBuiltinError(`${name}: ${message}`);
}

/**
 * `f`, answering undefined where it throws OpaBuiltinError (OPA's "undefined"; with strict
 * builtin errors the planner turns that into a failure); any other throw fails the evaluation.
 */
export function undefinedOnBuiltinError<A extends unknown[], R>(f: (...args: A) => R): (...args: A) => R | undefined {
  return (...args) => {
    try {
      return f(...args);
    } catch (err) {
      if (err instanceof OpaBuiltinError) return undefined;
      throw err;
    }
  };
}

/** A builtin exchanging texts: every argument read by `parse`, the answer written by `print`. */
export function textIo<T>(
  parse: (text: string) => T,
  print: (v: T) => string,
  f: (...args: T[]) => T | undefined,
): (...texts: unknown[]) => string | undefined {
  const run = undefinedOnBuiltinError((texts: string[]) => {
    const out = f(...texts.map(parse));
    return out === undefined ? undefined : print(out);
  });
  return (...texts) => (texts.every((t) => typeof t === "string") ? run(texts as string[]) : undefined);
}

/** Wraps an implementation on exact values as a HOST_JSON_IO builtin (texts in, text out). */
export function jsonIo(
  f: (...args: ExactJson[]) => ExactJson | undefined,
): (...texts: unknown[]) => string | undefined {
  return textIo(parseExactJson, exactJsonText, f);
}
