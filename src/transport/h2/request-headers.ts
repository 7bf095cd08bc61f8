/**
 * RFC 9113 8.2-8.3 rules for a request's header list, applied after HPACK decoding.
 */
import type { HeaderList } from "./hpack.ts";
import type { H2Headers } from "./stream.ts";

const CONNECTION_SPECIFIC = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);
const PSEUDO_REQUEST = new Set([":method", ":scheme", ":authority", ":path"]);

/**
 * The request's header list as an object, or undefined when it is malformed (RFC 9113 8.2-8.3):
 * unknown or repeated pseudo-headers, pseudo-headers after regular ones, connection-specific
 * fields, `te` other than "trailers", missing :method/:scheme/:path. Invalid names and values
 * (8.2.1) are flagged by the HPACK decoder (`malformed`) before this runs.
 */
export function requestHeaders(list: HeaderList): H2Headers | undefined {
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
  return out;
}
