/**
 * deploy/grafana/arbiter.json: an importable dashboard whose queries use exactly the metric names
 * of docs/architecture.md, all through the ${DS_PROMETHEUS} input.
 */
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { readText } from "./helm-lite.ts";

const repo = join(import.meta.dirname, "../..");

interface Target {
  expr: string;
  datasource: { uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
}

const dash = JSON.parse(readText(join(repo, "deploy/grafana/arbiter.json"))) as {
  __inputs: { name: string; type: string; pluginId: string }[];
  panels: Panel[];
  templating: { list: { name: string }[] };
  uid: string;
  title: string;
};

/** Metric names listed in the architecture note's Metrics section. */
function documentedMetrics(): string[] {
  const md = readText(join(repo, "docs/architecture.md"));
  const section = md.slice(md.indexOf("## Metrics"));
  return [...new Set([...section.matchAll(/`(arbiter_[a-z_]+)/g)].map((m) => m[1]!))];
}

describe("grafana dashboard", () => {
  const queries = dash.panels.flatMap((p) => p.targets ?? []);

  it("declares the Prometheus datasource input and uses it everywhere", () => {
    expect(dash.__inputs).toEqual([
      expect.objectContaining({ name: "DS_PROMETHEUS", type: "datasource", pluginId: "prometheus" }),
    ]);
    for (const p of dash.panels.filter((p) => p.type !== "row")) {
      expect(p.datasource?.uid, p.title).toBe("${DS_PROMETHEUS}");
      for (const t of p.targets!) expect(t.datasource.uid, p.title).toBe("${DS_PROMETHEUS}");
    }
    expect(dash.uid).toBe("arbiter-sidecar");
  });

  it("queries every documented metric and no undocumented one", () => {
    const documented = documentedMetrics();
    expect(documented.length).toBeGreaterThanOrEqual(15);
    const used = new Set<string>();
    for (const q of queries) {
      for (const m of q.expr.matchAll(/\b(arbiter_[a-z_]+)/g)) {
        // Histogram series carry _bucket/_sum/_count suffixes.
        used.add(m[1]!.replace(/_(bucket|sum|count)$/, ""));
      }
    }
    expect([...used].filter((m) => !documented.includes(m))).toEqual([]);
    expect(documented.filter((m) => !used.has(m))).toEqual([]);
  });

  it("shows per-RPC quantiles with histogram_quantile over buckets by le", () => {
    const quantiles = queries.filter(
      (q) => q.expr.startsWith("histogram_quantile(") && q.expr.includes("arbiter_request_duration_seconds_bucket"),
    );
    expect(quantiles.map((q) => q.expr.slice(19, 23)).sort()).toEqual(["0.50", "0.95", "0.99", "0.99"]);
    for (const q of quantiles) {
      expect(q.expr).toMatch(/sum by \(le(, rpc)?\) \(rate\(arbiter_request_duration_seconds_bucket\{/);
    }
    // The state's latency quantile, by operation.
    const state = queries.filter(
      (q) => q.expr.startsWith("histogram_quantile(") && !q.expr.includes("arbiter_request_duration_seconds_bucket"),
    );
    expect(state.map((q) => q.expr)).toEqual([
      expect.stringMatching(
        /^histogram_quantile\(0\.99, sum by \(le, operation\) \(rate\(arbiter_state_operation_seconds_bucket\{/,
      ),
    ]);
  });

  it("uses only the template variables it defines, balanced braces and parentheses", () => {
    const vars = dash.templating.list.map((v) => v.name);
    for (const q of queries) {
      for (const m of q.expr.matchAll(/\$(\w+)/g)) {
        if (m[1]!.startsWith("__")) continue;
        expect(vars, q.expr).toContain(m[1]);
      }
      const count = (c: string) => q.expr.split(c).length - 1;
      expect(count("("), q.expr).toBe(count(")"));
      expect(count("{") - count("{{"), q.expr).toBe(count("}") - count("}}"));
    }
  });

  it("has unique panel ids and no overlapping panels", () => {
    const ids = dash.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const p of dash.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const cell = `${i},${j}`;
          expect(cells.has(cell), `${p.title} overlaps at ${cell}`).toBe(false);
          cells.add(cell);
        }
      }
    }
  });
});
