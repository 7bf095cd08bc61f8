/**
 * The builtins the compiler knows: Rego name -> number of arguments. The front end rejects any
 * other name ("unknown builtin"); the code generator decides per name whether the runtime
 * implements it natively or the host supplies it through `opa_builtinN` (see host-builtins.ts).
 * Operators use OPA's internal names (`plus`, `lt`, `internal.member_2`, ...).
 */
/**
 * OPA builtins Arbiter does not run (network, runtime state) but lets policies call
 * where a `with` mock replaces them, as OPA tests do (`with http.send as mock`). A call no mock
 * reaches fails the build (planner-with.ts).
 */
export const MOCK_ONLY_ARITY: ReadonlyMap<string, number> = new Map([
  ["http.send", 1],
  ["opa.runtime", 0],
  ["net.lookup_ip_addr", 1],
]);

/** Arity of a builtin that may be called: one Arbiter runs or a mock-only one. */
export const builtinArity = (name: string): number | undefined => BUILTIN_ARITY.get(name) ?? MOCK_ONLY_ARITY.get(name);

export const BUILTIN_ARITY: ReadonlyMap<string, number> = new Map<string, number>([
  // operators
  ["plus", 2],
  ["minus", 2],
  ["mul", 2],
  ["div", 2],
  ["rem", 2],
  ["lt", 2],
  ["lte", 2],
  ["gt", 2],
  ["gte", 2],
  ["equal", 2],
  ["neq", 2],
  ["or", 2],
  ["and", 2],
  ["internal.member_2", 2],
  ["internal.member_3", 3],
  // aggregates
  ["count", 1],
  ["sum", 1],
  ["product", 1],
  ["max", 1],
  ["min", 1],
  ["sort", 1],
  // numbers
  ["abs", 1],
  ["round", 1],
  ["ceil", 1],
  ["floor", 1],
  ["to_number", 1],
  // strings
  ["concat", 2],
  ["contains", 2],
  ["startswith", 2],
  ["endswith", 2],
  ["lower", 1],
  ["upper", 1],
  ["trim", 2],
  ["trim_left", 2],
  ["trim_right", 2],
  ["trim_space", 1],
  ["trim_prefix", 2],
  ["trim_suffix", 2],
  ["split", 2],
  ["replace", 3],
  ["sprintf", 2],
  ["format_int", 2],
  ["substring", 3],
  ["indexof", 2],
  ["strings.replace_n", 2],
  // regex and glob
  ["regex.match", 2],
  ["glob.match", 3],
  // objects and arrays
  ["object.get", 3],
  ["object.keys", 1],
  ["object.union", 2],
  ["object.remove", 2],
  ["array.concat", 2],
  ["array.slice", 3],
  ["array.flatten", 1],
  // sets
  ["union", 1],
  ["intersection", 1],
  // types
  ["is_string", 1],
  ["is_number", 1],
  ["is_boolean", 1],
  ["is_array", 1],
  ["is_object", 1],
  ["is_set", 1],
  ["is_null", 1],
  ["type_name", 1],
  // encoding, time, crypto, units
  ["json.marshal", 1],
  ["json.unmarshal", 1],
  ["internal.typed_marshal", 1],
  ["internal.print", 1],
  ["internal.typed_unmarshal", 1],
  ["base64.encode", 1],
  ["base64.decode", 1],
  ["time.now_ns", 0],
  ["time.parse_rfc3339_ns", 1],
  ["crypto.sha256", 1],
  ["units.parse_bytes", 1],
  // more of OPA's standard library (back end): natives
  ["array.reverse", 1],
  ["strings.reverse", 1],
  ["object.filter", 2],
  ["numbers.range", 2],
  // host (host-builtins.ts)
  ["regex.replace", 3],
  ["regex.find_n", 3],
  ["regex.is_valid", 1],
  ["base64url.encode", 1],
  ["base64url.decode", 1],
  ["hex.encode", 1],
  ["hex.decode", 1],
  ["urlquery.encode", 1],
  ["urlquery.decode", 1],
  ["crypto.md5", 1],
  ["crypto.sha1", 1],
  // host (host-builtins-more.ts)
  ["units.parse", 1],
  ["strings.any_prefix_match", 2],
  ["strings.any_suffix_match", 2],
  ["bits.and", 2],
  ["bits.or", 2],
  ["bits.xor", 2],
  ["bits.negate", 1],
  ["bits.lsh", 2],
  ["bits.rsh", 2],
  ["crypto.hmac.md5", 2],
  ["crypto.hmac.sha1", 2],
  ["crypto.hmac.sha256", 2],
  ["crypto.hmac.sha512", 2],
  ["crypto.hmac.equal", 2],
  ["io.jwt.decode", 1],
  ["semver.is_valid", 1],
  ["semver.compare", 2],
  ["strings.count", 2],
  ["indexof_n", 2],
  ["object.union_n", 1],
  ["numbers.range_step", 3],
  ["urlquery.encode_object", 1],
  ["urlquery.decode_object", 1],
  ["net.cidr_contains", 2],
  ["net.cidr_intersects", 2],
  ["net.cidr_is_valid", 1],
  // host, also in the SDK (src/builtins/ of @open-policy-agent/opa-wasm), whose answers differ
  // from OPA's: imported under Arbiter's names instead (HOST_IMPORT_NAMES)
  ["json.is_valid", 1],
  ["regex.split", 2],
  ["yaml.marshal", 1],
  ["yaml.unmarshal", 1],
  ["yaml.is_valid", 1],
  // host (host-jwt.ts)
  ["io.jwt.decode_verify", 2],
  ["io.jwt.encode_sign", 3],
  ["io.jwt.encode_sign_raw", 3],
  ["io.jwt.verify_eddsa", 2],
  ["io.jwt.verify_hs256", 2],
  ["io.jwt.verify_hs384", 2],
  ["io.jwt.verify_hs512", 2],
  ["io.jwt.verify_rs256", 2],
  ["io.jwt.verify_rs384", 2],
  ["io.jwt.verify_rs512", 2],
  ["io.jwt.verify_ps256", 2],
  ["io.jwt.verify_ps384", 2],
  ["io.jwt.verify_ps512", 2],
  ["io.jwt.verify_es256", 2],
  ["io.jwt.verify_es384", 2],
  ["io.jwt.verify_es512", 2],
  // host (host-aws.ts)
  ["providers.aws.sign_req", 3],
  // host (host-x509.ts)
  ["crypto.x509.parse_rsa_private_key", 1],
  ["crypto.parse_private_keys", 1],
  // host (host-builtins-opa.ts and the family modules it merges)
  ["json.remove", 2],
  ["json.filter", 2],
  ["json.marshal_with_options", 2],
  ["net.cidr_merge", 1],
  ["net.cidr_expand", 1],
  ["time.date", 1],
  ["time.clock", 1],
  ["time.weekday", 1],
  ["time.add_date", 4],
  ["time.diff", 2],
  ["time.parse_duration_ns", 1],
  ["time.format", 1],
  ["uuid.parse", 1],
  ["uuid.rfc4122", 1],
  ["regex.find_all_string_submatch_n", 3],
  ["base64.is_valid", 1],
  ["base64url.encode_no_pad", 1],
  ["glob.quote_meta", 1],
  ["graph.reachable", 2],
  ["graph.reachable_paths", 2],
  ["time.parse_ns", 2],
  ["net.cidr_contains_matches", 2],
  ["object.subset", 2],
  ["walk", 1],
  ["regex.template_match", 4],
  ["regex.globs_match", 2],
  ["rand.intn", 2],
  ["strings.render_template", 2],
  ["graphql.parse", 2],
  ["graphql.parse_and_verify", 2],
  ["graphql.parse_query", 1],
  ["graphql.parse_schema", 1],
  ["graphql.is_valid", 2],
  ["graphql.schema_is_valid", 1],
  // host (host-jsonschema.ts)
  ["json.verify_schema", 1],
  ["json.match_schema", 2],
  // host (host-jsonpatch.ts)
  ["json.patch", 2],
]);

/**
 * Builtins the runtime implements natively (`src/compiler/runtime/builtins.ts`, exported as
 * `bi_<name with dots as underscores>`). Every other name in BUILTIN_ARITY is supplied by the
 * host through `opa_builtinN` (implementations in `host-builtins.ts`, plus the SDK's own
 * `sprintf`); the planner lists those names in `Policy.hostBuiltins`.
 *
 * Split: operators, aggregates, string, object/array/set and type builtins are native because
 * they are hot and because sets cannot cross the JSON boundary (the SDK dumps them as arrays).
 * Regex, glob, sprintf, formatting, time, crypto, encodings and units go to the host
 * (`hostBuiltins` in host-builtins.ts, passed as `loadPolicy`'s `customBuiltins`), including
 * Arbiter's own `json.is_valid`, `regex.split` and `yaml.*` in place of the SDK's
 * (HOST_IMPORT_NAMES).
 *
 * Numbers are f64 (integers print without a decimal point); non-integer arithmetic results
 * within two ulps of a 15-digit decimal snap to it (OPA's big.Float gives `0.1 + 0.2 == 0.3`).
 * Integer literals beyond 2^53 (up to i64) stay exact, as do +, - and * on such integers and
 * time.parse_rfc3339_ns; other operations on them (division, sum, host builtins, which receive
 * JSON parsed by JavaScript) go through f64 (documented gap).
 */
export const NATIVE_BUILTINS: ReadonlySet<string> = new Set([
  "plus",
  "minus",
  "mul",
  "div",
  "rem",
  "lt",
  "lte",
  "gt",
  "gte",
  "equal",
  "neq",
  "or",
  "and",
  "internal.member_2",
  "internal.member_3",
  "count",
  "sum",
  "product",
  "max",
  "min",
  "sort",
  "abs",
  "round",
  "ceil",
  "floor",
  "to_number",
  "concat",
  "contains",
  "startswith",
  "endswith",
  "lower",
  "upper",
  "trim",
  "trim_left",
  "trim_right",
  "trim_space",
  "trim_prefix",
  "trim_suffix",
  "split",
  "replace",
  "substring",
  "indexof",
  "object.get",
  "object.keys",
  "object.union",
  "object.remove",
  "array.concat",
  "array.slice",
  "array.flatten",
  "union",
  "intersection",
  "is_string",
  "is_number",
  "is_boolean",
  "is_array",
  "is_object",
  "is_set",
  "is_null",
  "type_name",
  "json.marshal",
  "json.unmarshal",
  "internal.typed_marshal",
  "internal.typed_unmarshal",
  "array.reverse",
  "strings.reverse",
  "object.filter",
  "numbers.range",
  "time.parse_rfc3339_ns",
]);

/** Builtins only the planner emits (the typed-text boundary): not OPA's, so a policy cannot call them. */
export const PLANNER_ONLY_BUILTINS: ReadonlySet<string> = new Set([
  "internal.typed_marshal",
  "internal.typed_unmarshal",
]);

/** True when `name` must be supplied by the host (listed in `Policy.hostBuiltins`). */
export function isHostBuiltin(name: string): boolean {
  return BUILTIN_ARITY.has(name) && !NATIVE_BUILTINS.has(name);
}

/**
 * Host builtins imported under another name than their Rego name. The SDK resolves a host
 * builtin in its own table before `customBuiltins`, and its `sprintf` is sprintf-js; importing
 * OPA's `sprintf` as `arbiter.sprintf` routes it to the Go-fmt implementation in
 * host-sprintf.ts instead.
 */
export const HOST_IMPORT_NAMES: ReadonlyMap<string, string> = new Map([
  ["sprintf", "arbiter.sprintf"],
  // The SDK's own json.is_valid / yaml.is_valid answer undefined for a non-string; OPA says false.
  ["json.is_valid", "arbiter.json.is_valid"],
  ["yaml.is_valid", "arbiter.yaml.is_valid"],
  // The SDK's regex.split is `s.split(RegExp(pattern))`: JavaScript's syntax, capture groups in
  // the answer; Arbiter's reads RE2 and splits as Go does (host-builtins.ts).
  ["regex.split", "arbiter.regex.split"],
  // yaml.marshal with YAML 1.1 quoting (host-yaml.ts), wrapped for typed text (host-set-args.ts).
  ["yaml.marshal", "arbiter.yaml.marshal"],
  // The SDK's yaml.unmarshal reads YAML 1.2; OPA's reads YAML 1.1 as go-yaml v2 does (host-yaml.ts).
  ["yaml.unmarshal", "arbiter.yaml.unmarshal"],
  // Arbiter's takes typed text and prints for `arbiter test` (host-print.ts); OPA's name is left
  // to a module built by `opa build`, which calls it with plain values (policy-instance.ts).
  ["internal.print", "arbiter.print"],
]);

/**
 * Host builtins whose OPA result is a set: the host can only answer JSON (an array), so the
 * planner rebuilds the answer as a set right after the call.
 */
export const HOST_SET_RESULTS: ReadonlySet<string> = new Set<string>([
  "net.cidr_merge",
  "net.cidr_expand",
  "graph.reachable",
  "graph.reachable_paths",
  "net.cidr_contains_matches",
]);

/**
 * Host builtins that exchange JSON text instead of values: the planner passes each argument
 * through the native json.marshal and parses the answer with the native json.unmarshal, so
 * integers beyond 2^53 (nanosecond timestamps) cross the JavaScript boundary exactly. Their
 * implementations take and return strings (host-exact-json.ts).
 */
export const HOST_JSON_IO: ReadonlySet<string> = new Set<string>([
  "time.date",
  "time.clock",
  "time.weekday",
  "time.add_date",
  "time.diff",
  "time.parse_duration_ns",
  "time.format",
  "uuid.parse",
  "graph.reachable",
  "graph.reachable_paths",
  "time.parse_ns",
  "io.jwt.decode_verify",
  "yaml.unmarshal",
  // GraphQL ASTs carry integer kinds that must be told from non-integers (host-graphql.ts).
  "graphql.parse",
  "graphql.parse_and_verify",
  "graphql.parse_query",
  "graphql.parse_schema",
  "graphql.is_valid",
  "graphql.schema_is_valid",
]);

/**
 * Host builtins that exchange typed text (host-typed-json.ts): JSON where a set is written
 * `<a,b>` and integers are exact. The planner passes each argument through the native
 * `internal.typed_marshal` and parses the answer with `internal.typed_unmarshal`, so sets
 * anywhere in an argument or in the answer cross the JavaScript boundary as sets (RegoSet).
 */
export const HOST_TYPED_JSON: ReadonlySet<string> = new Set<string>([
  "object.subset",
  "walk",
  "sprintf",
  "urlquery.encode_object",
  "yaml.marshal",
  "io.jwt.encode_sign",
  "providers.aws.sign_req",
  "strings.render_template",
  "json.marshal_with_options",
  "object.union_n",
  "internal.print",
]);

/**
 * Host builtins whose answer depends on whether an operand is a set or an array (both arrive
 * as arrays): the planner appends the native type_name of every argument, so the host receives
 * `(a, b, typeof a, typeof b)`.
 */
export const HOST_TYPED_ARGS: ReadonlySet<string> = new Set<string>([
  "net.cidr_contains_matches",
  "json.verify_schema",
  "json.match_schema",
  "json.patch",
]);

/**
 * Host builtins whose OPA implementation answers "undefined" without an error for some inputs
 * (json.patch: a failed operation), which strict builtin errors must not turn into one: the host
 * answers `[value]`, or `[]` for that undefined, and the planner takes element 0. A host
 * `undefined` stays a builtin error.
 */
export const HOST_BOXED_RESULTS: ReadonlySet<string> = new Set<string>(["json.patch"]);

/**
 * OPA builtin names, so that one this compiler does not implement is named as unsupported rather
 * than unknown (checker.ts).
 */
export const OPA_BUILTINS: ReadonlySet<string> = new Set(
  `all any array.reverse base64url.decode base64url.encode base64url.encode_no_pad base64.is_valid bits.and bits.lsh
  bits.negate bits.or bits.rsh bits.xor cast_array cast_boolean cast_null cast_object cast_set cast_string
  crypto.hmac.equal crypto.hmac.md5 crypto.hmac.sha1 crypto.hmac.sha256 crypto.hmac.sha512 crypto.md5 crypto.sha1
  crypto.x509.parse_and_verify_certificates crypto.x509.parse_certificate_request crypto.x509.parse_certificates
  crypto.x509.parse_keypair crypto.x509.parse_rsa_private_key graph.reachable graph.reachable_paths
  graphql.is_valid graphql.parse graphql.parse_and_verify graphql.parse_query graphql.parse_schema
  graphql.schema_is_valid glob.quote_meta hex.decode hex.encode http.send io.jwt.decode io.jwt.decode_verify
  io.jwt.encode_sign io.jwt.encode_sign_raw io.jwt.verify_es256 io.jwt.verify_es384 io.jwt.verify_es512
  io.jwt.verify_hs256 io.jwt.verify_hs384 io.jwt.verify_hs512 io.jwt.verify_ps256 io.jwt.verify_ps384
  io.jwt.verify_ps512 io.jwt.verify_rs256 io.jwt.verify_rs384 io.jwt.verify_rs512 is_valid json.filter
  json.is_valid json.match_schema json.patch json.remove json.verify_schema json.marshal_with_options
  net.cidr_contains net.cidr_contains_matches net.cidr_expand net.cidr_intersects net.cidr_is_valid
  net.cidr_merge net.cidr_overlap net.lookup_ip_addr numbers.range numbers.range_step object.filter
  object.subset opa.runtime providers.aws.sign_req rand.intn regex.find_all_string_submatch_n regex.find_n
  regex.globs_match regex.is_valid regex.replace regex.split regex.template_match rego.metadata.chain
  rego.metadata.rule rego.parse_module semver.compare semver.is_valid strings.any_prefix_match
  strings.any_suffix_match strings.count strings.reverse strings.render_template sprintf trace
  time.add_date time.clock time.date time.diff time.format time.parse_duration_ns time.parse_ns time.weekday
  units.parse urlquery.decode urlquery.decode_object urlquery.encode urlquery.encode_object uuid.parse
  uuid.rfc4122 walk yaml.is_valid yaml.marshal yaml.unmarshal split_n product`.split(/\s+/),
);
