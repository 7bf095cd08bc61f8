/**
 * Helpers for checking the Helm chart without a helm binary: merge values the way Helm does,
 * collect the `.Values.*` paths templates reference, and turn a template into YAML that parses
 * by replacing template actions with placeholders.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

export type Values = { [key: string]: unknown };

function isMap(v: unknown): v is Values {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Helm's coalescing of a user values file over the chart defaults: maps merge, everything else
 * replaces, and null deletes the key. */
export function mergeValues(base: Values, override: Values): Values {
  const out: Values = structuredClone(base);
  for (const [k, v] of Object.entries(override)) {
    if (v === null) delete out[k];
    else if (isMap(v) && isMap(out[k])) out[k] = mergeValues(out[k] as Values, v);
    else out[k] = structuredClone(v);
  }
  return out;
}

/** Every `.Values.a.b.c` path in a template source, as "a.b.c". */
export function valuesPaths(source: string): string[] {
  const paths = new Set<string>();
  const code = source.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, "");
  for (const m of code.matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
    paths.add(m[1]!.slice(1));
  }
  return [...paths].sort();
}

/** True when the dotted path names a key (possibly empty-valued) in the values. */
export function hasPath(values: Values, path: string): boolean {
  let node: unknown = values;
  for (const key of path.split(".")) {
    if (!isMap(node) || !Object.hasOwn(node, key)) return false;
    node = node[key];
  }
  return true;
}

const CONTROL = /^\s*\{\{-?\s*(if|else|else if|end|with|range|define|fail|\/\*)\b.*\}\}\s*$/;
const CONTROL_OPEN = /^\s*\{\{-?\s*(if|else|end|with|range|define)\b/;

/**
 * Make a template parseable as YAML: comments and control-only lines go, a block inserted with
 * `nindent N` becomes a one-key mapping at column N, and every other action becomes a scalar.
 * Both branches of an if/else are kept, which is still valid YAML for conventional templates.
 */
export function stripTemplate(source: string): string {
  const noComments = source.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, "");
  const out: string[] = [];
  let blocks = 0;
  for (const line of noComments.split("\n")) {
    if (CONTROL.test(line) || (CONTROL_OPEN.test(line) && line.trim().endsWith("}}"))) continue;
    const block = /^(\s*(?:- )?)\{\{-?\s*(?:include|toYaml)\b.*\|\s*nindent\s+(\d+)\s*-?\}\}\s*$/.exec(line);
    if (block) {
      const [, lead, n] = block;
      const pad = " ".repeat(Number(n));
      const key = `placeholder_${++blocks}: included`;
      if (lead!.trimEnd().length > 0) {
        // "- {{ include ... | nindent 10 }}" opens a list item whose body is the block.
        out.push(`${lead}\n${pad}${key}`);
      } else {
        // A block appended to a list (e.g. extra env entries) becomes one more list item.
        const sibling = [...out].reverse().find((l) => l.trim() !== "" && l.length - l.trimStart().length <= Number(n));
        const inList =
          sibling !== undefined &&
          sibling.length - sibling.trimStart().length === Number(n) &&
          sibling.trimStart().startsWith("- ");
        out.push(inList ? `${pad}- ${key}` : `${pad}${key}`);
      }
      continue;
    }
    out.push(line.replace(/\{\{-?[\s\S]*?-?\}\}/g, "PLACEHOLDER"));
  }
  return out.join("\n");
}

/** Body of a `{{- define "name" -}}` block of a helpers file (ends at a column-0 `{{- end }}`
 * followed by a blank line or the end of the file). */
export function defineBody(helpers: string, name: string): string {
  const start = helpers.indexOf(`{{- define "${name}" -}}\n`);
  if (start < 0) throw new Error(`no define "${name}"`);
  const from = helpers.indexOf("\n", start) + 1;
  const end = /\n\{\{- end \}\}\n(?:\n|$)/g;
  end.lastIndex = from;
  const m = end.exec(helpers);
  if (!m) throw new Error(`define "${name}" has no closing end`);
  return helpers.slice(from, m.index);
}

export interface ParsedDoc {
  readonly file: string;
  readonly value: unknown;
}

/** Parse every document of a YAML text; throws with the file name on the first syntax error. */
export function parseYamlDocs(file: string, text: string): ParsedDoc[] {
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  const out: ParsedDoc[] = [];
  for (const doc of list) {
    if (doc.errors.length > 0) {
      throw new Error(`${file}: ${doc.errors[0]!.message}`);
    }
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push({ file, value });
  }
  return out;
}

/** Files under dir (recursively) whose name passes the filter, relative paths sorted. */
export function listFiles(dir: string, filter: (name: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of readdirSync(join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (filter(e.name)) out.push(r);
    }
  };
  walk("");
  return out.sort();
}

export function readText(path: string): string {
  return readFileSync(path, "utf8");
}
