/**
 * A flame graph of a V8 CPU profile (`node --cpu-prof`) as a static SVG, for docs that GitHub
 * renders inline (`bench/cpu-profile-top.ts FILE --svg OUT`). The flame graph libraries on npm
 * (d3-flame-graph, 0x, clinic) draw in a browser; this writes the picture itself, in the usual
 * form: one box per call path, width = time on the CPU (idle left out), callers below callees,
 * siblings in name order, boxes narrower than half a pixel left out (their time stays in the
 * caller's width). Each box's tooltip gives the frame, its milliseconds and its share of the busy
 * time.
 */

export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const WIDTH = 1200;
const ROW = 16;
const TOP = 34;
const CHAR = 6.6; // average glyph width of 11 px monospace, to fit labels in their box

/** A frame's name: function, and file:line under src/, node_modules/ or bench/ (or node:...). */
export function frameName(n: ProfileNode): string {
  const url = n.callFrame.url.replace(/^file:\/\/.*?\/(src|node_modules|bench)\//, "$1/");
  return `${n.callFrame.functionName || "(anonymous)"}${url ? " " + url + ":" + (n.callFrame.lineNumber + 1) : ""}`;
}

/** Colour by where the frame lives, so the audit's share stands out. */
function colour(name: string): string {
  if (name.includes("/audit/")) return "#e8743b";
  if (name.includes("/decision/")) return "#e8c23b";
  if (name.includes("/transport/")) return "#5b9bd5";
  if (name.startsWith("(garbage collector)")) return "#d9534f";
  if (name.includes("node_modules/")) return "#8fbc5a";
  return "#b8b8b8";
}

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function flameSvg(p: CpuProfile, title: string): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i + 1] ?? 0));
  }
  const total = new Map<number, number>();
  const idle = (n: ProfileNode) => n.callFrame.functionName === "(idle)";
  const sum = (id: number): number => {
    const n = byId.get(id)!;
    if (idle(n)) return 0;
    let t = self.get(id) ?? 0;
    for (const c of n.children ?? []) t += sum(c);
    total.set(id, t);
    return t;
  };
  const root = p.nodes[0]!;
  const busy = sum(root.id);
  const boxes: string[] = [];
  let depth = 0;
  const place = (id: number, x: number, level: number): void => {
    const n = byId.get(id)!;
    const w = ((total.get(id) ?? 0) / busy) * WIDTH;
    if (w < 0.5) return;
    depth = Math.max(depth, level);
    if (level > 0) {
      const name = frameName(n);
      const ms = (total.get(id)! / 1000).toFixed(1);
      const pct = ((total.get(id)! / busy) * 100).toFixed(2);
      const fit = Math.floor((w - 4) / CHAR);
      const label = fit >= 3 ? (name.length > fit ? name.slice(0, fit - 2) + ".." : name) : "";
      boxes.push(
        `<g><title>${escape(name)}: ${ms} ms, ${pct}%</title>` +
          `<rect x="${x.toFixed(1)}" y="@${level}" width="${w.toFixed(1)}" height="${ROW - 1}" fill="${colour(name)}" rx="2"/>` +
          (label ? `<text x="${(x + 2).toFixed(1)}" y="@${level}+">${escape(label)}</text>` : "") +
          `</g>`,
      );
    }
    const kids = (n.children ?? []).filter((c) => !idle(byId.get(c)!));
    kids.sort((a, b) => frameName(byId.get(a)!).localeCompare(frameName(byId.get(b)!)));
    let cx = x;
    for (const c of kids) {
      place(c, cx, level + 1);
      cx += ((total.get(c) ?? 0) / busy) * WIDTH;
    }
  };
  place(root.id, 0, 0);
  const height = TOP + depth * ROW + 4;
  // Callers below callees: level 1 sits at the bottom.
  const y = (level: number) => height - 4 - level * ROW;
  const body = boxes
    .join("\n")
    .replace(/y="@(\d+)\+"/g, (_, l: string) => `y="${y(+l) + 11.5}"`)
    .replace(/y="@(\d+)"/g, (_, l: string) => `y="${y(+l)}"`);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="monospace" font-size="11">\n` +
    `<rect width="100%" height="100%" fill="#ffffff"/>\n` +
    `<text x="4" y="16" font-size="13">${escape(title)} (${(busy / 1e6).toFixed(2)} s on the CPU)</text>\n` +
    `<text x="4" y="29" fill="#555">orange: src/audit, yellow: src/decision, blue: src/transport, red: GC, green: node_modules, grey: Node and V8</text>\n` +
    body +
    `\n</svg>\n`
  );
}
