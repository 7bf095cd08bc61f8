/**
 * The OPA standard-library families added for the conformance suite (issue #13), each in its
 * own module; merged into `hostBuiltins` (host-builtins.ts) with one spread.
 *
 * Two families stand on large libraries: graphql.* on graphql-js (~120 ms to import) and the JSON
 * Schema builtins on ajv (~40 ms). They are imported only when a loaded policy declares one of
 * their builtins: the table holds stubs for them, and the policy loaders (engine/load-policy.ts,
 * engine/snapshot.ts) call `loadLazyHostBuiltins` with the policy's declared builtins before its
 * first evaluation. A stub whose family was never loaded fails the evaluation with an error (never
 * an answer).
 */
import { jsonHostBuiltins } from "./host-json.ts";
import { netHostBuiltins } from "./host-net.ts";
import { timeHostBuiltins } from "./host-time.ts";
import { uuidHostBuiltins } from "./host-uuid.ts";
import { globHostBuiltins } from "./host-glob-intersect.ts";
import { printHostBuiltins } from "./host-print.ts";
import { regexMoreHostBuiltins } from "./host-regex-more.ts";
import { graphHostBuiltins } from "./host-graph.ts";
import { timeParseHostBuiltins } from "./host-time-parse.ts";
import { subsetHostBuiltins } from "./host-subset.ts";
import type { HostBuiltin } from "./host-types.ts";
import { walkHostBuiltins } from "./host-walk.ts";
import { templateHostBuiltins } from "./host-template.ts";
import { jsonPatchHostBuiltins } from "./host-jsonpatch.ts";

interface LazyFamily {
  readonly names: readonly string[];
  readonly load: () => Promise<Record<string, HostBuiltin>>;
}

export const LAZY_FAMILIES: readonly LazyFamily[] = [
  {
    names: [
      "graphql.is_valid",
      "graphql.parse",
      "graphql.parse_and_verify",
      "graphql.parse_query",
      "graphql.parse_schema",
      "graphql.schema_is_valid",
    ],
    load: async () => (await import("./host-graphql.ts")).graphqlHostBuiltins,
  },
  {
    names: ["json.match_schema", "json.verify_schema"],
    load: async () => (await import("./host-jsonschema.ts")).jsonSchemaHostBuiltins,
  },
];

const lazyLoaded = new Map<string, HostBuiltin>();

function lazyStub(name: string): HostBuiltin {
  return (...args: unknown[]) => {
    const impl = lazyLoaded.get(name);
    if (impl === undefined) {
      throw new Error(
        `${name}: its implementation was not loaded (loadLazyHostBuiltins was not called for this policy)`,
      );
    }
    return impl(...args);
  };
}

/** Imports the lazy families any of `names` (a policy's declared builtins) belong to. */
export async function loadLazyHostBuiltins(names: Iterable<string>): Promise<void> {
  const wanted = new Set(names);
  for (const family of LAZY_FAMILIES) {
    if (!family.names.some((n) => wanted.has(n)) || family.names.every((n) => lazyLoaded.has(n))) continue;
    const impls = await family.load();
    for (const n of family.names) {
      const impl = impls[n];
      if (impl === undefined) throw new Error(`host builtins: the lazily loaded family has no ${n}`);
      lazyLoaded.set(n, impl);
    }
  }
}

export const opaHostBuiltins: Record<string, HostBuiltin> = {
  ...Object.fromEntries(LAZY_FAMILIES.flatMap((f) => f.names.map((n) => [n, lazyStub(n)]))),
  ...jsonHostBuiltins,
  ...netHostBuiltins,
  ...timeHostBuiltins,
  ...uuidHostBuiltins,
  ...regexMoreHostBuiltins,
  ...globHostBuiltins,
  ...printHostBuiltins,
  ...graphHostBuiltins,
  ...timeParseHostBuiltins,
  ...subsetHostBuiltins,
  ...walkHostBuiltins,
  ...templateHostBuiltins,
  ...jsonPatchHostBuiltins,
};
