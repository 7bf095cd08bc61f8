/**
 * OPA's `graph.reachable` and `graph.reachable_paths` (issue #13, `topdown/reachable.go`),
 * including reachable_paths' quirks: a path ends where it meets a node already reached on the
 * way (`reached` is shared by the branches under one start edge) or a node outside the graph. Graphs are objects of sets, which a host builtin
 * cannot receive as values, so both are HOST_JSON_IO builtins (sets arrive as arrays in the
 * runtime's sorted order, the order OPA iterates them) answering sets (HOST_SET_RESULTS).
 *
 * Known limit: JSON text writes a non-string object key as its JSON text, so a graph key that
 * reads as a non-string JSON value ("1", "true", ...) is refused with an error rather than
 * matched against the wrong node; nodes that are themselves sets arrive as arrays.
 */
import { builtinError, type ExactJson, jsonIo } from "./host-exact-json.ts";
import type { HostBuiltin } from "./host-types.ts";

type Graph = { [k: string]: ExactJson };

const isObj = (v: ExactJson): v is Graph => typeof v === "object" && v !== null && !Array.isArray(v);
const key = (v: ExactJson): string => JSON.stringify(v, (_, x: unknown) => (typeof x === "bigint" ? x.toString() : x));

function checkKeys(name: string, graph: Graph): void {
  for (const k of Object.keys(graph)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(k);
    } catch {
      continue;
    }
    if (typeof parsed !== "string") {
      throw new Error(
        `${name}: the graph key ${JSON.stringify(k)} may stand for a non-string key, which Arbiter cannot tell apart; refusing rather than answering for another graph`,
      );
    }
  }
}

/** graph.Get(node): only string nodes can name an object member here. */
const edgesOf = (graph: Graph, node: ExactJson): ExactJson | undefined =>
  typeof node === "string" && Object.hasOwn(graph, node) ? graph[node] : undefined;

/** foreachVertex: the elements of a set (an array here) or array; nothing for anything else. */
const vertices = (c: ExactJson | undefined): ExactJson[] => (Array.isArray(c) ? c : []);

/** OPA's operand checks: the graph an object, the start nodes a set or an array. */
function operands(name: string, graph: ExactJson, initial: ExactJson): Graph {
  if (!isObj(graph)) builtinError(name, "operand 1 must be object");
  if (!Array.isArray(initial)) builtinError(name, "operand 2 must be one of {set, array}");
  checkKeys(name, graph);
  return graph;
}

function reachable(g: ExactJson, initial: ExactJson): ExactJson {
  const graph = operands("graph.reachable", g, initial);
  const queue = [...vertices(initial)];
  const reached = new Map<string, ExactJson>();
  for (let i = 0; i < queue.length; i++) {
    const node = queue[i]!;
    const edges = edgesOf(graph, node);
    if (edges === undefined) continue;
    for (const n of vertices(edges)) if (!reached.has(key(n))) queue.push(n);
    reached.set(key(node), node);
  }
  return [...reached.values()];
}

/** OPA's pathBuilder: adds to `out` every path from `root`; `reached` is shared and grows. */
function pathBuilder(
  graph: Graph,
  root: ExactJson,
  path: readonly ExactJson[],
  out: Map<string, ExactJson>,
  reached: Set<string>,
): void {
  const add = (p: ExactJson[]) => out.set(key(p), p);
  const edges = edgesOf(graph, root);
  // A node outside the graph: the path so far, without it.
  if (edges === undefined) return void add([...path]);
  const here = [...path, root];
  const next = vertices(edges);
  if (next.length === 0) return void add(here);
  // OPA accumulates into one list per call: a second already-reached neighbour adds the path twice over.
  let acc: ExactJson[] = [];
  for (const n of next) {
    if (reached.has(key(n))) {
      acc = [...acc, ...here];
      add(acc);
    } else {
      reached.add(key(root));
      pathBuilder(graph, n, here, out, reached);
    }
  }
}

function reachablePaths(g: ExactJson, initial: ExactJson): ExactJson {
  const graph = operands("graph.reachable_paths", g, initial);
  const results = new Map<string, ExactJson>();
  for (const node of vertices(initial)) {
    const edges = edgesOf(graph, node);
    if (edges === undefined) continue;
    const next = vertices(edges);
    if (next.length === 0) results.set(key([node]), [node]);
    for (const n of next) pathBuilder(graph, n, [node], results, new Set([key(node)]));
  }
  return [...results.values()];
}

export const graphHostBuiltins: Record<string, HostBuiltin> = {
  "graph.reachable": jsonIo(reachable),
  "graph.reachable_paths": jsonIo(reachablePaths),
};
