/**
 * The canonical form OPA hashes a structured bundle file over (`bundle/hash.go`): the file parsed
 * (JSON keeping number literals as written, or YAML for `data.yaml`) and re-serialised with
 * object keys sorted by their UTF-8 bytes, no whitespace, strings escaped as Go's encoding/json
 * does with HTML escaping off. Used by `bundle-signature.ts` to hash and verify bundle files.
 */
import { yamlData } from "../compiler/host-yaml.ts";

function baseName(name: string): string {
  return name.slice(name.lastIndexOf("/") + 1);
}

/** OPA's `IsStructuredDoc`: these files are hashed over their canonical JSON form. */
export function isStructuredFile(name: string): boolean {
  const base = baseName(name);
  return base === "data.json" || base === "data.yaml" || base === ".manifest" || base === "signatures.json";
}

/** A JSON number kept as written (OPA decodes with `UseNumber` and re-encodes the literal). */
class NumberLiteral {
  constructor(readonly text: string) {}
}

class MalformedJson extends Error {}

/** A strict RFC 8259 parser (what Go's `json.Valid` accepts) keeping number literals. */
function parseJsonKeepingNumbers(text: string): unknown {
  let i = 0;
  const fail = (what: string): never => {
    throw new MalformedJson(`${what} at offset ${i}`);
  };
  const ws = (): void => {
    while (i < text.length && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")) i++;
  };
  const value = (depth: number): unknown => {
    if (depth > 10_000) fail("nesting too deep");
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const obj: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
      ws();
      if (text[i] === "}") {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail("expected a string key");
        const key = string();
        ws();
        if (text[i++] !== ":") fail("expected ':'");
        obj[key] = value(depth + 1); // duplicate keys: the last wins, as in Go and JSON.parse
        ws();
        const d = text[i++];
        if (d === "}") return obj;
        if (d !== ",") fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === "]") {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        const d = text[i++];
        if (d === "]") return arr;
        if (d !== ",") fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    if (text.startsWith("true", i)) {
      i += 4;
      return true;
    }
    if (text.startsWith("false", i)) {
      i += 5;
      return false;
    }
    if (text.startsWith("null", i)) {
      i += 4;
      return null;
    }
    const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (!m || m[0].length === 400) fail("expected a value");
    i += m![0].length;
    return new NumberLiteral(m![0]);
  };
  const string = (): string => {
    const start = i;
    i++;
    for (;;) {
      if (i >= text.length) fail("unterminated string");
      const ch = text.charCodeAt(i);
      if (ch === 0x22) break;
      if (ch < 0x20) fail("control character in string");
      if (ch === 0x5c) {
        const e = text[i + 1];
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail("bad \\u escape");
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          i += 2;
        } else {
          fail("bad escape");
        }
        continue;
      }
      i++;
    }
    i++;
    const s = JSON.parse(text.slice(start, i)) as string;
    // Go replaces a lone surrogate with U+FFFD, JSON.parse keeps it: refuse rather than let two
    // different loaded values share one hash.
    if (!isWellFormed(s)) fail("lone UTF-16 surrogate in string");
    return s;
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail("trailing data");
  return v;
}

/** No lone UTF-16 surrogate (String.prototype.isWellFormed, outside the ES2022 lib). */
function isWellFormed(s: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

/** A string as Go's encoding/json writes it with `SetEscapeHTML(false)`. */
function goString(s: string): string {
  return JSON.stringify(s)
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

const utf8 = new TextEncoder();

function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** The bytes OPA's `walk` feeds to the hash for a parsed structured document. */
function canonical(v: unknown, out: string[]): void {
  if (v instanceof NumberLiteral) {
    out.push(v.text);
  } else if (v === null) {
    out.push("null");
  } else if (typeof v === "boolean") {
    out.push(v ? "true" : "false");
  } else if (typeof v === "string") {
    if (!isWellFormed(v)) throw new MalformedJson("lone UTF-16 surrogate in string");
    out.push(goString(v));
  } else if (typeof v === "number") {
    // YAML values: Go formats float64 as JavaScript does (shortest round trip, exponent from 1e21
    // and below 1e-6); NaN and infinities have no JSON form (OPA's YAML-to-JSON fails too).
    if (!Number.isFinite(v)) throw new MalformedJson(`${v} has no JSON form`);
    out.push(Object.is(v, -0) ? "-0" : String(v));
  } else if (Array.isArray(v)) {
    out.push("[");
    v.forEach((e, n) => {
      if (n > 0) out.push(",");
      canonical(e, out);
    });
    out.push("]");
  } else if (typeof v === "object") {
    out.push("{");
    const obj = v as Record<string, unknown>;
    Object.keys(obj)
      .sort(byUtf8)
      .forEach((k, n) => {
        if (n > 0) out.push(",");
        out.push(goString(k), ":");
        canonical(obj[k], out);
      });
    out.push("}");
  } else {
    throw new MalformedJson(`a ${typeof v} has no JSON form`);
  }
}

/**
 * The canonical bytes OPA hashes for a structured file: JSON text (a leading UTF-8 BOM dropped,
 * as OPA's `util.Unmarshal`), or YAML for `data.yaml` that is not JSON.
 */
export function canonicalStructuredBytes(name: string, bytes: Uint8Array): Uint8Array {
  let text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  text = text.replace(/^\uFEFF/, "");
  let value: unknown;
  try {
    value = parseJsonKeepingNumbers(text);
  } catch (err) {
    if (baseName(name) !== "data.yaml") throw err;
    // The same YAML reading the bundle loader uses, so equal hashes mean equal loaded data.
    value = yamlData(text);
  }
  const out: string[] = [];
  canonical(value, out);
  return utf8.encode(out.join(""));
}
