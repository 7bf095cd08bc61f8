/**
 * The OPA standard-library families added for the conformance suite (issue #13), each in its
 * own module; merged into `hostBuiltins` (host-builtins.ts) with one spread.
 */
import { jsonHostBuiltins } from "./host-json.ts";
import { netHostBuiltins } from "./host-net.ts";
import { timeHostBuiltins } from "./host-time.ts";
import { uuidHostBuiltins } from "./host-uuid.ts";
import { regexMoreHostBuiltins } from "./host-regex-more.ts";
import { graphHostBuiltins } from "./host-graph.ts";
import { graphqlHostBuiltins } from "./host-graphql.ts";
import { timeParseHostBuiltins } from "./host-time-parse.ts";
import { subsetHostBuiltins } from "./host-subset.ts";
import type { HostBuiltin } from "./host-types.ts";
import { walkHostBuiltins } from "./host-walk.ts";
import { templateHostBuiltins } from "./host-template.ts";
import { jsonSchemaHostBuiltins } from "./host-jsonschema.ts";
import { jsonPatchHostBuiltins } from "./host-jsonpatch.ts";

export const opaHostBuiltins: Record<string, HostBuiltin> = {
  ...jsonHostBuiltins,
  ...netHostBuiltins,
  ...timeHostBuiltins,
  ...uuidHostBuiltins,
  ...regexMoreHostBuiltins,
  ...graphHostBuiltins,
  ...graphqlHostBuiltins,
  ...timeParseHostBuiltins,
  ...subsetHostBuiltins,
  ...walkHostBuiltins,
  ...templateHostBuiltins,
  ...jsonSchemaHostBuiltins,
  ...jsonPatchHostBuiltins,
};
