/**
 * Renders an SVG to PNG with resvg (a maintained SVG rasterizer): used for docs/batchnorm.png, the
 * picture of the batchnorm graph that the README shows.
 *   npx tsx scripts/png.ts docs/batchnorm.svg docs/batchnorm.png [width]
 */
import { Resvg } from "@resvg/resvg-js";
import { readFileSync, writeFileSync } from "node:fs";

const [src, dst, width] = process.argv.slice(2);
if (!src || !dst) {
  process.stderr.write("usage: npx tsx scripts/png.ts <in.svg> <out.png> [width]\n");
  process.exit(2);
}
const r = new Resvg(readFileSync(src, "utf8"), {
  fitTo: { mode: "width", value: Number(width ?? 1800) },
  background: "white",
  font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" },
});
writeFileSync(dst, r.render().asPng());
