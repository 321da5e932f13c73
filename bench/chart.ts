/**
 * A small log-log line chart as SVG text: one line per variant, time against size. Deterministic,
 * no dependencies; the benchmark writes it to docs/bench/.
 */
const COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#1f78b4", "#b15928"];

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function chart(title: string, xs: readonly { label: string; x: number }[], series: readonly { name: string; values: readonly (number | undefined)[] }[]): string {
  const W = 860;
  const H = 480;
  const left = 70;
  const right = 250;
  const top = 40;
  const bottom = 60;
  const pw = W - left - right;
  const ph = H - top - bottom;
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== undefined && v > 0));
  const yMin = Math.pow(10, Math.floor(Math.log10(Math.min(...all))));
  const yMax = Math.pow(10, Math.ceil(Math.log10(Math.max(...all))));
  // sizes on a log axis, in order; equal sizes (4096×256 and 256×4096) sit side by side
  const order = xs.map((x, k) => ({ ...x, k })).sort((a, b) => a.x - b.x || a.k - b.k);
  const xPos = new Map(order.map((o, j) => [o.k, left + (pw * j) / Math.max(1, order.length - 1)]));
  const y = (v: number) => top + ph * (1 - (Math.log10(v) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin)));
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${left}" y="24" font-size="15" font-weight="bold">${esc(title)}</text>`);
  for (let e = Math.log10(yMin); e <= Math.log10(yMax); e++) {
    const yy = y(Math.pow(10, e)).toFixed(1);
    out.push(`<line x1="${left}" x2="${left + pw}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 8}" y="${yy}" text-anchor="end" dominant-baseline="middle">${esc(Math.pow(10, e) >= 1 ? `${Math.pow(10, e)} ms` : `${Math.pow(10, e).toPrecision(1)} ms`)}</text>`);
  }
  for (const o of order) {
    const xx = xPos.get(o.k)!.toFixed(1);
    out.push(`<line x1="${xx}" x2="${xx}" y1="${top}" y2="${top + ph}" stroke="#eee"/>`);
    out.push(`<text x="${xx}" y="${top + ph + 18}" text-anchor="middle">${esc(o.label)}</text>`);
  }
  out.push(`<text x="${left + pw / 2}" y="${H - 14}" text-anchor="middle">N×D (ordered by element count)</text>`);
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length]!;
    const pts = order.flatMap((o) => {
      const v = s.values[o.k];
      return v === undefined || v <= 0 ? [] : [`${xPos.get(o.k)!.toFixed(1)},${y(v).toFixed(1)}`];
    });
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(" ")}"/>`);
    for (const p of pts) {
      const [px, py] = p.split(",");
      out.push(`<circle cx="${px}" cy="${py}" r="3" fill="${color}"/>`);
    }
    const ly = top + 10 + k * 20;
    out.push(`<line x1="${left + pw + 16}" x2="${left + pw + 40}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${left + pw + 46}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
