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

/** CPU time (µs) per profile node: each sample's time is the delta to the next sample. */
export function selfTimes(p: CpuProfile): Map<number, number> {
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i + 1] ?? 0));
  }
  return self;
}

interface Box {
  name: string;
  x: number;
  w: number;
  level: number;
  us: number;
}

export function flameSvg(p: CpuProfile, title: string): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = selfTimes(p);
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
  const boxes: Box[] = [];
  const place = (id: number, x: number, level: number): void => {
    const n = byId.get(id)!;
    const us = total.get(id) ?? 0;
    const w = (us / busy) * WIDTH;
    if (w < 0.5) return;
    if (level > 0) boxes.push({ name: frameName(n), x, w, level, us });
    const kids = (n.children ?? []).filter((c) => !idle(byId.get(c)!));
    kids.sort((a, b) => frameName(byId.get(a)!).localeCompare(frameName(byId.get(b)!)));
    let cx = x;
    for (const c of kids) {
      place(c, cx, level + 1);
      cx += ((total.get(c) ?? 0) / busy) * WIDTH;
    }
  };
  place(root.id, 0, 0);
  const depth = Math.max(0, ...boxes.map((b) => b.level));
  const height = TOP + depth * ROW + 4;
  const body = boxes.map((b) => {
    // Callers below callees: level 1 sits at the bottom.
    const y = height - 4 - b.level * ROW;
    const fit = Math.floor((b.w - 4) / CHAR);
    const label = fit >= 3 ? (b.name.length > fit ? b.name.slice(0, fit - 2) + ".." : b.name) : "";
    return (
      `<g><title>${escape(b.name)}: ${(b.us / 1000).toFixed(1)} ms, ${((b.us / busy) * 100).toFixed(2)}%</title>` +
      `<rect x="${b.x.toFixed(1)}" y="${y}" width="${b.w.toFixed(1)}" height="${ROW - 1}" fill="${colour(b.name)}" rx="2"/>` +
      (label ? `<text x="${(b.x + 2).toFixed(1)}" y="${y + 11.5}">${escape(label)}</text>` : "") +
      `</g>`
    );
  });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="monospace" font-size="11">\n` +
    `<rect width="100%" height="100%" fill="#ffffff"/>\n` +
    `<text x="4" y="16" font-size="13">${escape(title)} (${(busy / 1e6).toFixed(2)} s on the CPU)</text>\n` +
    `<text x="4" y="29" fill="#555">orange: src/audit, yellow: src/decision, blue: src/transport, red: GC, green: node_modules, grey: Node and V8</text>\n` +
    body.join("\n") +
    `\n</svg>\n`
  );
}
