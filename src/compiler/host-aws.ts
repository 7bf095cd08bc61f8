/**
 * OPA's providers.aws.sign_req(request, aws_config, time_ns) as a host builtin (issue #13):
 * AWS Signature Version 4 over node:crypto, following OPA's topdown/providers.go and
 * internal/providers/aws (the request's own headers are signed too, except authorization,
 * user-agent and x-amzn-trace-id; s3 and glacier get x-amz-content-sha256; a session token
 * adds x-amz-security-token; `disable_payload_signing` signs "UNSIGNED-PAYLOAD").
 *
 * Only what can be reproduced exactly is signed: URLs of the plain form
 * `http(s)://host[:port][/path][?query]` with unreserved characters (Go's url.Parse and
 * EscapedPath are not re-implemented), request keys http.send certainly accepts, and no two
 * header names equal but for case (Go would pick one at random). Anything else fails the
 * evaluation. Known gap: a time written with an exponent in the policy (`1.4e18`) is an error
 * in OPA (not an int64 literal) but reaches JavaScript as the same number as `14000...`.
 */
import { createHash, createHmac } from "node:crypto";
import { goJsonMarshal } from "./host-jwt.ts";
import type { HostBuiltin } from "./host-types.ts";
import { isObject } from "../util/object.ts";
import { compareCodePoints } from "../util/json-text.ts";

type Json = Record<string, unknown>;

class AwsBuiltinError extends Error {
  override readonly name = "AwsBuiltinError";
}

const fail = (message: string): never => {
  throw new AwsBuiltinError(`providers.aws.sign_req: ${message}`);
};

const REQUIRED_CONFIG = ["aws_access_key", "aws_region", "aws_secret_access_key", "aws_service"];

/** http.send request keys (validateHTTPRequestOperand); a key outside this list is not guessed at. */
const HTTP_SEND_KEYS = new Set([
  "method",
  "url",
  "body",
  "enable_redirect",
  "force_json_decode",
  "force_yaml_decode",
  "headers",
  "raw_body",
  "tls_use_system_certs",
  "tls_ca_cert",
  "tls_ca_cert_file",
  "tls_ca_cert_env_variable",
  "tls_client_cert",
  "tls_client_cert_file",
  "tls_client_cert_env_variable",
  "tls_client_key",
  "tls_client_key_file",
  "tls_client_key_env_variable",
  "tls_insecure_skip_verify",
  "tls_server_name",
  "timeout",
  "cache",
  "force_cache",
  "force_cache_duration_seconds",
  "raise_error",
  "caching_mode",
  "max_retry_attempts",
  "cache_ignored_headers",
]);

const IGNORED_HEADERS = new Set(["authorization", "user-agent", "x-amzn-trace-id"]);

/** The plain URLs whose Go url.Parse host, escaped path and raw query are certain. */
const PLAIN_URL = /^https?:\/\/([A-Za-z0-9.-]+(?::\d+)?)(\/[A-Za-z0-9\-._~/]*)?(?:\?([A-Za-z0-9\-._~=&]*))?$/;

const sha256Hex = (b: Buffer | string): string => createHash("sha256").update(b).digest("hex");
const mac = (key: Buffer | string, msg: string): Buffer => createHmac("sha256", key).update(msg, "utf8").digest();
const str = (v: unknown): string => (typeof v === "string" ? v : "");

/** time_ns -> ["20151228", "20151228T140825Z"] (Go's time.Unix(0, ns).UTC()). */
function stamps(ns: number): [string, string] {
  const ms = BigInt(ns) / 1_000_000n - (BigInt(ns) % 1_000_000n < 0n ? 1n : 0n);
  const d = new Date(Number(ms));
  const y = d.getUTCFullYear();
  if (!(y >= 0 && y <= 9999))
    throw new Error(`providers.aws.sign_req: year ${y} is not signed (Go formats it otherwise)`);
  const iso = d
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}Z$/, "Z");
  return [iso.slice(0, 8), iso];
}

function signReq(req: unknown, config: unknown, timeNs: unknown): Json {
  if (!isObject(req)) return fail("operand 1 must be an object");
  if (!isObject(config)) return fail("operand 2 must be an object");
  const missing = REQUIRED_CONFIG.filter((k) => !(k in config));
  if (missing.length > 0) fail(`operand 2 missing required AWS config parameters(s): ${missing.join(", ")}`);
  const invalid = REQUIRED_CONFIG.filter((k) => typeof config[k] !== "string");
  if (invalid.length > 0) fail(`operand 2 invalid values for required AWS config parameters(s): ${invalid.join(", ")}`);
  if (typeof timeNs !== "number") return fail("operand 3 must be a number");
  if (!Number.isInteger(timeNs) || Math.abs(timeNs) > 2 ** 63)
    fail("operand 3 could not convert time_ns value into a unix timestamp");
  const missingReq = ["method", "url"].filter((k) => !(k in req));
  if (missingReq.length > 0) fail(`operand 1 missing required request parameters(s): ${missingReq.join(", ")}`);
  for (const k of Object.keys(req)) {
    if (!HTTP_SEND_KEYS.has(k))
      throw new Error(`providers.aws.sign_req: request key "${k}" is not signed (not known to be accepted by OPA)`);
  }
  const headers = req.headers === undefined ? {} : req.headers;
  if (!isObject(headers)) return fail("operand 1 headers must be an object");
  if (typeof req.url !== "string" || typeof req.method !== "string")
    fail("operand 1 invalid values for required request parameters(s)");
  const url = PLAIN_URL.exec(req.url as string);
  if (!url)
    throw new Error(
      `providers.aws.sign_req: the URL ${JSON.stringify(req.url)} is not of the plain form signed exactly`,
    );
  const body = req.raw_body !== undefined ? str(req.raw_body) : req.body !== undefined ? goJsonMarshal(req.body) : "";
  const dps = config.disable_payload_signing;
  if (dps !== undefined && typeof dps !== "boolean")
    fail("operand 2 invalid value for 'disable_payload_signing' in AWS config");
  const service = config.aws_service as string;
  const region = config.aws_region as string;
  if (dps === true && service !== "s3" && service !== "glacier") {
    throw new Error("providers.aws.sign_req: disable_payload_signing is signed exactly only for s3 and glacier");
  }
  const bodyHash = dps === true ? "UNSIGNED-PAYLOAD" : sha256Hex(Buffer.from(body, "utf8"));
  const [date, iso] = stamps(timeNs as number);
  const aws: Record<string, string> = { host: url[1]!, "x-amz-date": iso };
  if (service === "s3" || service === "glacier") aws["x-amz-content-sha256"] = bodyHash;
  const token = str(config.aws_session_token);
  if (token !== "") aws["x-amz-security-token"] = token;
  const toSign = new Map<string, string>(Object.entries(aws));
  const seen = new Set<string>();
  for (const [k, v] of Object.entries(headers)) {
    const lower = k.toLowerCase();
    if (seen.has(lower))
      throw new Error(
        `providers.aws.sign_req: two headers named ${JSON.stringify(lower)} but for case (OPA picks one at random)`,
      );
    seen.add(lower);
    if (!IGNORED_HEADERS.has(lower)) toSign.set(lower, str(v));
  }
  const names = [...toSign.keys()].sort(compareCodePoints);
  const canonical = [
    req.method as string,
    url[2] ?? "",
    url[3] ?? "",
    ...names.map((k) => `${k}:${toSign.get(k)}`),
    "",
    names.join(";"),
    bodyHash,
  ].join("\n");
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = `AWS4-HMAC-SHA256\n${iso}\n${scope}\n${sha256Hex(canonical)}`;
  let key = mac(`AWS4${config.aws_secret_access_key as string}`, date);
  for (const part of [region, service, "aws4_request"]) key = mac(key, part);
  const signature = mac(key, stringToSign).toString("hex");
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = str(v);
  out.Authorization = `AWS4-HMAC-SHA256 Credential=${config.aws_access_key as string}/${scope},SignedHeaders=${names.join(";")},Signature=${signature}`;
  Object.assign(out, aws);
  return { ...req, headers: out };
}

export const awsHostBuiltins: Record<string, HostBuiltin> = {
  // A builtin error becomes undefined (OPA's non-strict mode); any other throw fails the evaluation.
  "providers.aws.sign_req": (req: unknown, config: unknown, timeNs: unknown) => {
    try {
      return signReq(req, config, timeNs);
    } catch (err) {
      if (err instanceof AwsBuiltinError) return undefined;
      throw err;
    }
  },
};
