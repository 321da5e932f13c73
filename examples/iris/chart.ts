/** The loss curve of the iris example as a small SVG line chart (no dependencies, deterministic). */
export function lossChart(losses: readonly number[], caption: string): string {
  const W = 640;
  const H = 360;
  const left = 60;
  const right = 20;
  const top = 40;
  const bottom = 50;
  const pw = W - left - right;
  const ph = H - top - bottom;
  const yMax = Math.ceil(Math.max(...losses) * 10) / 10;
  const x = (k: number) => left + (pw * k) / Math.max(1, losses.length - 1);
  const y = (v: number) => top + ph * (1 - v / yMax);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${left}" y="24" font-size="15" font-weight="bold">Iris, linear → batchnorm → relu → linear → cross-entropy: training loss</text>`);
  for (let k = 0; k <= 4; k++) {
    const v = (yMax * k) / 4;
    const yy = y(v).toFixed(1);
    out.push(`<line x1="${left}" x2="${left + pw}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`);
    out.push(`<text x="${left - 8}" y="${yy}" text-anchor="end" dominant-baseline="middle">${v.toFixed(2)}</text>`);
  }
  const ticks = 5;
  for (let k = 0; k <= ticks; k++) {
    const s = Math.round(((losses.length - 1) * k) / ticks);
    out.push(`<text x="${x(s).toFixed(1)}" y="${top + ph + 18}" text-anchor="middle">${s}</text>`);
  }
  out.push(`<text x="${left + pw / 2}" y="${H - 12}" text-anchor="middle">${caption}</text>`);
  out.push(`<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  const points = losses.map((v, k) => `${x(k).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  out.push(`<polyline fill="none" stroke="#d95f02" stroke-width="2" points="${points}"/>`);
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
