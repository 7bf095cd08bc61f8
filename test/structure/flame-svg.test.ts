/**
 * The flame graph writer of bench/cpu-profile-top.ts --svg (docs/audit.md shows its output):
 * widths are CPU time over busy time, callees stand on their callers, idle time is left out.
 */
import { describe, expect, it } from "vitest";
import { flameSvg, type CpuProfile } from "../../bench/flame-svg.ts";

const frame = (functionName: string, url = "") => ({ functionName, url, lineNumber: 0 });

/** root -> (idle) 100 ms; root -> zeta 60 ms self; root -> alpha 10 ms self -> beta <i> 30 ms self. */
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame("(root)"), children: [2, 3, 4] },
    { id: 2, callFrame: frame("(idle)") },
    { id: 3, callFrame: frame("zeta", "file:///repo/src/audit/pipeline.js"), children: [] },
    { id: 4, callFrame: frame("alpha", "file:///repo/src/decision/pipeline.js"), children: [5] },
    { id: 5, callFrame: frame("beta <i>"), children: [] },
  ],
  // Each sample's time is the delta to the next one: 10 ms steps.
  samples: [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 5, 5, 5, 1],
  timeDeltas: Array.from({ length: 21 }, () => 10_000),
};

function boxes(svg: string) {
  return [...svg.matchAll(/<title>([^<]*)<\/title><rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"/g)].map((m) => ({
    title: m[1]!,
    x: Number(m[2]),
    y: Number(m[3]),
    w: Number(m[4]),
  }));
}

describe("flameSvg", () => {
  it("draws each call path as wide as its share of the busy time, callees above callers, idle left out", () => {
    const svg = flameSvg(profile, "t");
    expect(svg).toContain("t (0.10 s on the CPU)");
    const b = boxes(svg);
    expect(b.map((x) => x.title)).toEqual([
      "alpha src/decision/pipeline.js:1: 40.0 ms, 40.00%",
      "beta &lt;i&gt;: 30.0 ms, 30.00%",
      "zeta src/audit/pipeline.js:1: 60.0 ms, 60.00%",
    ]);
    const [alpha, beta, zeta] = b as [(typeof b)[0], (typeof b)[0], (typeof b)[0]];
    expect([alpha.x, alpha.w]).toEqual([0, 480]);
    expect([zeta.x, zeta.w]).toEqual([480, 720]);
    // beta stands on alpha, at its left edge.
    expect([beta.x, beta.w]).toEqual([0, 360]);
    expect(beta.y).toBe(alpha.y - 16);
    expect(zeta.y).toBe(alpha.y);
    expect(svg).not.toContain("(idle)");
    expect(svg).toMatch(/fill="#e8743b"[^>]*\/><text[^>]*>zeta src\/audit/);
  });
});
