/**
 * One HTTP bundle download, OPA bundle-protocol style: `If-None-Match` with the ETag of the
 * active bundle; `304 Not Modified` keeps it. Bounded by a timeout and a maximum body size.
 */
import { BundleError, describe } from "./errors.ts";

export type FetchOutcome =
  { readonly status: 304 } | { readonly status: 200; readonly bytes: Uint8Array; readonly etag: string | undefined };

export interface FetchBundleOptions {
  readonly etag: string | undefined;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  /** How the URL appears in error messages (credentials masked). Default: the URL. */
  readonly label?: string;
  /** Aborts the download early (host closing). */
  readonly signal?: AbortSignal;
}

/** Downloads `url`; throws a `BundleError` with the URL and the reason on any failure. */
export async function fetchBundle(url: string, options: FetchBundleOptions): Promise<FetchOutcome> {
  const shown = options.label ?? url;
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const headers: Record<string, string> = { accept: "application/gzip, application/octet-stream" };
  if (options.etag !== undefined) headers["if-none-match"] = options.etag;
  // fetch() refuses URLs with credentials; `https://user:pass@host/...` becomes Basic auth.
  let target = url;
  const parsed = new URL(url);
  if (parsed.username !== "" || parsed.password !== "") {
    const user = decodeURIComponent(parsed.username);
    const pass = decodeURIComponent(parsed.password);
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
    parsed.username = "";
    parsed.password = "";
    target = parsed.toString();
  }
  let response: Response;
  try {
    response = await fetch(target, { headers, signal, redirect: "follow" });
  } catch (err) {
    if (timeout.aborted)
      throw new BundleError(`bundle: GET ${shown} timed out after ${options.timeoutMs} ms`, { cause: err });
    throw new BundleError(`bundle: GET ${shown} failed: ${describe(err)}`, { cause: err });
  }
  if (response.status === 304) {
    await response.body?.cancel();
    return { status: 304 };
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new BundleError(`bundle: GET ${shown} answered HTTP ${response.status}`);
  }
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (Number.isFinite(declared) && declared > options.maxBytes) {
    await response.body?.cancel();
    throw new BundleError(`bundle: GET ${shown} body of ${declared} bytes exceeds the limit of ${options.maxBytes}`);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    if (response.body) {
      for await (const chunk of response.body) {
        total += chunk.byteLength;
        if (total > options.maxBytes) {
          await response.body.cancel().catch(() => undefined); // already failing; the size error is the one to report
          throw new BundleError(`bundle: GET ${shown} body exceeds the limit of ${options.maxBytes} bytes`);
        }
        chunks.push(chunk);
      }
    }
  } catch (err) {
    if (err instanceof BundleError) throw err;
    if (timeout.aborted)
      throw new BundleError(`bundle: GET ${shown} timed out after ${options.timeoutMs} ms`, { cause: err });
    throw new BundleError(`bundle: GET ${shown} body failed: ${describe(err)}`, { cause: err });
  }
  return { status: 200, bytes: Buffer.concat(chunks), etag: response.headers.get("etag") ?? undefined };
}
