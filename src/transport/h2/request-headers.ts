/**
 * RFC 9113 8.2-8.3 rules for a request's header list, applied after HPACK decoding.
 */
import type { HeaderList } from "./hpack.ts";

/** Request headers: lowercase names; repeated fields joined with ", " ("; " for cookie). */
export type H2Headers = Record<string, string | undefined>;

const CONNECTION_SPECIFIC = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);
const PSEUDO_REQUEST = new Set([":method", ":scheme", ":authority", ":path"]);

/**
 * The request's header list as an object, or undefined when it is malformed (RFC 9113 8.2-8.3):
 * unknown or repeated pseudo-headers, pseudo-headers after regular ones, connection-specific
 * fields, `te` other than "trailers", missing :method/:scheme/:path, a content-length that is
 * not a number or that a request ending with its HEADERS (`endStream`) cannot have (8.1.1).
 * Invalid names and values (8.2.1) are flagged by the HPACK decoder (`malformed`) before this runs.
 */
export function requestHeaders(list: HeaderList, endStream = false): H2Headers | undefined {
  const out: H2Headers = Object.create(null) as H2Headers;
  let regular = false;
  for (let i = 0; i < list.length; i++) {
    const [name, value] = list[i]!;
    if (name.charCodeAt(0) === 58 /* ':' */) {
      if (regular || !PSEUDO_REQUEST.has(name) || out[name] !== undefined) return undefined;
      out[name] = value;
      continue;
    }
    regular = true;
    if (CONNECTION_SPECIFIC.has(name) || (name === "te" && value !== "trailers")) return undefined;
    const prev = out[name];
    out[name] = prev === undefined ? value : prev + (name === "cookie" ? "; " : ", ") + value;
  }
  if (out[":method"] === undefined || out[":scheme"] === undefined || !out[":path"]) return undefined;
  const length = out["content-length"];
  if (length !== undefined) {
    const n = requestContentLength(length);
    if (n < 0 || (endStream && n > 0)) return undefined;
  }
  return out;
}

/** `contentLength` of a request without a content-length field. */
export const NO_LENGTH = Number.MAX_SAFE_INTEGER;

/**
 * The request's content-length: NO_LENGTH when absent, -1 when malformed (not a decimal
 * number, or repeated with different values, which the header join makes "5, 6").
 */
export function requestContentLength(value: string | undefined): number {
  if (value === undefined) return NO_LENGTH;
  if (!/^\d{1,15}$/.test(value)) {
    // Repeated identical values are allowed (RFC 9110 8.6): "5, 5".
    const parts = value.split(/\s*,\s*/);
    if (parts.length < 2 || !parts.every((p) => p === parts[0]) || !/^\d{1,15}$/.test(parts[0]!)) return -1;
    return Number(parts[0]);
  }
  return Number(value);
}
