/**
 * Verifies signed approval grants: compact JWS (JWT) issued by an approver with `arbiter approve`
 * (or any JOSE library) and sent in Decide's `approval_token`. The decision core asks
 * `isGrant(token)` and then `verify(token, {tenantId, digest, nowMs})`; single use on the grant's
 * `jti` is the approval store's job (`ApprovalStore.redeemGrant`), with the `expiresAtMs` given
 * here, which already includes the clock tolerance so a grant is remembered as long as it could
 * still verify.
 *
 * A grant is valid when, in this order (the first failure is the reason):
 * 1. it is at most `GRANT_MAX_LENGTH` characters (checked before any parsing) and a well-formed
 *    compact JWS whose `alg` is EdDSA, ES256 or RS256 (`alg: none` and HMAC algorithms are refused
 *    before any key is looked at: an HMAC over the PEM text of an RSA public key is the classic
 *    key-confusion forgery) -> else `approval_bad_signature`;
 * 2. its `kid` names a key of the set (no `kid`: the set holds exactly one key) ->
 *    else `approval_unknown_key`; the key's algorithm is the header's -> else `approval_bad_signature`;
 * 3. the signature verifies -> else `approval_bad_signature`;
 * 4. the claims `jti`, `sub`, `tenant_id`, `request_digest`, `exp` and `iat` are present ->
 *    else `approval_unknown` (a token signed by a trusted key that is not an approval grant
 *    approves nothing);
 * 5. when `ARBITER_APPROVAL_AUDIENCE` is set, `aud` is present and contains it -> else
 *    `approval_wrong_audience` (a grant for another deployment);
 * 6. `nbf`, if any, is not in the future -> else `approval_not_yet_valid`;
 * 7. `exp` has not passed and `iat` is at most `GRANT_MAX_LIFETIME_SECONDS` ago -> else
 *    `approval_expired` (a grant is never good for more than a day, whatever its `exp` says, so
 *    the single-use record of its `jti` is bounded in time too);
 * 8. `iat` is not in the future -> else `approval_not_yet_valid`;
 * 9. `jti`, `sub` and `tenant_id` are non-empty strings (at most 256, 256 and 128 characters) and
 *    `request_digest` is 64 lowercase hex characters -> else `approval_unknown`;
 * 10. `tenant_id` is the request's tenant -> else `approval_wrong_tenant`;
 * 11. `request_digest` is the request's approval digest (`decideApprovalDigest`) -> else
 *    `approval_wrong_action`.
 * Time checks (6, 7, 8) allow `GRANT_CLOCK_TOLERANCE_SECONDS` of clock skew between the approver and
 * the sidecar.
 */
import { errors, jwtVerify, type JWTPayload, type JWSHeaderParameters } from "jose";
import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import type { ApprovalGrantVerifier, VerifiedGrant } from "../decision/stores.ts";
import { GRANT_ALGORITHMS, type ApprovalKeySet } from "./approval-keys.ts";

/** Longest grant accepted, in characters (an RS256 grant with a 4096-bit key is about 1,100). */
export const GRANT_MAX_LENGTH = 4096;
/** Clock skew allowed between the approver's clock and the sidecar's, in seconds. */
export const GRANT_CLOCK_TOLERANCE_SECONDS = 30;
/** Longest a grant is good for after its `iat`, in seconds (one day, as CreateApproval's TTL). */
export const GRANT_MAX_LIFETIME_SECONDS = 86_400;

export type GrantReason =
  | "approval_bad_signature"
  | "approval_unknown_key"
  | "approval_unknown"
  | "approval_wrong_audience"
  | "approval_not_yet_valid"
  | "approval_expired"
  | "approval_wrong_tenant"
  | "approval_wrong_action";

/** The claims of a grant (what `arbiter approve` signs). */
export interface GrantClaims {
  readonly jti: string;
  readonly sub: string;
  readonly tenant_id: string;
  readonly request_digest: string;
  readonly iat: number;
  readonly exp: number;
  readonly nbf?: number;
  readonly aud?: string | string[];
}

export interface GrantVerifierOptions {
  readonly keys: ApprovalKeySet;
  /** Required `aud` value (`ARBITER_APPROVAL_AUDIENCE`); undefined: `aud` is not checked. */
  readonly audience?: string;
  readonly logger?: Logger;
  readonly registry?: Registry;
}

/** Three base64url parts (the signature may be empty, as in an `alg: none` token). */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const DIGEST = /^[0-9a-f]{64}$/;
const REQUIRED_CLAIMS = ["jti", "sub", "tenant_id", "request_digest", "exp", "iat"];

/** Thrown by the key resolver; mapped to a reason below. */
class GrantKeyError extends Error {
  constructor(readonly reason: GrantReason) {
    super(reason);
  }
}

function reasonOf(err: unknown): GrantReason {
  if (err instanceof GrantKeyError) return err.reason;
  if (err instanceof errors.JWTExpired) return "approval_expired";
  if (err instanceof errors.JWTClaimValidationFailed) {
    if ((err.claim === "nbf" || err.claim === "iat") && err.reason === "check_failed") return "approval_not_yet_valid";
    if (err.claim === "aud") return "approval_wrong_audience"; // another audience, or none while one is required
    return "approval_unknown"; // a required claim missing or not a NumericDate
  }
  // JWSInvalid, JWTInvalid, JOSEAlgNotAllowed, JWSSignatureVerificationFailed, JOSENotSupported,
  // a TypeError from a malformed key header: nothing trustworthy was presented.
  return "approval_bad_signature";
}

const isText = (v: unknown, max: number): v is string => typeof v === "string" && v.length > 0 && v.length <= max;

class GrantVerifier implements ApprovalGrantVerifier {
  readonly #keys: ApprovalKeySet;
  readonly #audience: string | undefined;
  readonly #log: Logger | undefined;
  readonly #results: Counter<"result"> | undefined;

  constructor(o: GrantVerifierOptions) {
    this.#keys = o.keys;
    this.#audience = o.audience;
    this.#log = o.logger?.child({ component: "approval-grants" });
    const r = o.registry;
    if (r) {
      this.#results =
        (r.getSingleMetric("arbiter_approval_grants_total") as Counter<"result"> | undefined) ??
        new Counter({
          name: "arbiter_approval_grants_total",
          help: "Signed approval grants verified, by result (valid or the reason code).",
          labelNames: ["result"],
          registers: [r],
        });
    }
  }

  isGrant(token: string): boolean {
    return typeof token === "string" && COMPACT_JWS.test(token);
  }

  async verify(
    token: string,
    expected: { readonly tenantId: string; readonly digest: string; readonly nowMs: number },
  ): Promise<VerifiedGrant | { readonly valid: false; readonly reason: string }> {
    const result = await this.#verify(token, expected);
    this.#results?.inc({ result: result.valid ? "valid" : result.reason });
    return result;
  }

  async #verify(
    token: string,
    expected: { readonly tenantId: string; readonly digest: string; readonly nowMs: number },
  ): Promise<VerifiedGrant | { readonly valid: false; readonly reason: GrantReason }> {
    if (typeof token !== "string" || token.length > GRANT_MAX_LENGTH || !COMPACT_JWS.test(token)) {
      return { valid: false, reason: "approval_bad_signature" };
    }
    let payload: JWTPayload;
    let kid: string | undefined;
    try {
      const verified = await jwtVerify(token, (header: JWSHeaderParameters) => this.#keyFor(header), {
        algorithms: [...GRANT_ALGORITHMS],
        requiredClaims: REQUIRED_CLAIMS,
        clockTolerance: GRANT_CLOCK_TOLERANCE_SECONDS,
        maxTokenAge: GRANT_MAX_LIFETIME_SECONDS,
        currentDate: new Date(expected.nowMs),
        ...(this.#audience !== undefined ? { audience: this.#audience } : {}),
      });
      payload = verified.payload;
      kid = verified.protectedHeader.kid;
    } catch (err) {
      const reason = reasonOf(err);
      this.#log?.debug({ reason, err: (err as Error)?.message }, "approval grant refused");
      return { valid: false, reason };
    }
    const c = payload as Partial<GrantClaims> & JWTPayload;
    if (
      !isText(c.jti, 256) ||
      !isText(c.sub, 256) ||
      !isText(c.tenant_id, 128) ||
      typeof c.request_digest !== "string" ||
      !DIGEST.test(c.request_digest)
    ) {
      this.#log?.debug({ reason: "approval_unknown", kid }, "approval grant refused: claims not those of a grant");
      return { valid: false, reason: "approval_unknown" };
    }
    if (c.tenant_id !== expected.tenantId) return { valid: false, reason: "approval_wrong_tenant" };
    if (c.request_digest !== expected.digest) return { valid: false, reason: "approval_wrong_action" };
    // jwtVerify checked both are NumericDates (required claims) and in range.
    const lastSecond = Math.min(c.exp!, c.iat! + GRANT_MAX_LIFETIME_SECONDS) + GRANT_CLOCK_TOLERANCE_SECONDS;
    return { valid: true, grantId: c.jti, approver: c.sub, expiresAtMs: Math.ceil(lastSecond * 1000) };
  }

  #keyFor(header: JWSHeaderParameters): CryptoKey {
    if (header.kid !== undefined && typeof header.kid !== "string") throw new GrantKeyError("approval_bad_signature");
    const key = this.#keys.find(header.kid);
    if (key === undefined) {
      this.#keys.noteUnknownKid();
      throw new GrantKeyError("approval_unknown_key");
    }
    // One key, one algorithm: an RSA key never checks an ES256 header, and so on.
    if (key.alg !== header.alg) throw new GrantKeyError("approval_bad_signature");
    return key.key;
  }
}

/** The grant verifier handed to `createDecisionService({ grants })`. */
export function createGrantVerifier(options: GrantVerifierOptions): ApprovalGrantVerifier {
  return new GrantVerifier(options);
}
