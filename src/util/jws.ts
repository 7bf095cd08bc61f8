/**
 * The JWS algorithms OPA accepts, both for `io.jwt.*` tokens and for bundle signatures: the RS,
 * PS, ES and HS families at 256/384/512 bits, and EdDSA.
 */
export const JWS_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "HS256",
  "HS384",
  "HS512",
  "EdDSA",
] as const;
export type JwsAlgorithm = (typeof JWS_ALGORITHMS)[number];
