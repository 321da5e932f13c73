/**
 * `npm run numerics`: the worst errors of the generated kernels on adversarial data, written to
 * docs/numerics.md. For every library spec and each data kind (normal, constant first input, mean
 * 1e4 with spread 1e-2, values of 1e-3), over random sizes including 1:
 * - fused against naive (float64), relative to the largest gradient of the layer;
 * - naive against a 4-point central difference of the forward (float64), relative to the sum of
 *   |gradient × direction| (skipped for mean 1e4, where differences cannot resolve the layer);
 * - float32 kernels against float64 kernels on the same float32-exact inputs, relative to the largest
 *   gradient.
 */
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkSpec } from "../compiler/parse/check.js";
import { prng } from "../compiler/ir/random.js";
import { gradientError, gradientNoise, randomInputs, type DataKind } from "../test/measure.js";
import { isDifferentiable, type Program } from "../compiler/ir/program.js";

type Dout = ArrayLike<number> | Record<string, ArrayLike<number>>;
type Mod = {
  forward(i: Record<string, ArrayLike<number>>, s: Record<string, number>): Record<string, unknown> & { cache: unknown };
  backwardNaive(d: Dout, c: unknown): Record<string, ArrayLike<number>>;
  backwardFused(d: Dout, c: unknown): Record<string, ArrayLike<number>>;
};

const root = join(import.meta.dirname, "..");
const KINDS: DataKind[] = ["normal", "constant", "large-mean", "tiny"];

function maxAbs(xs: Iterable<number>): number {
  let m = 0;
  for (const x of xs) m = Math.max(m, Math.abs(x));
  return m;
}

function measure(p: Program, m64: Mod, m32: Mod, kind: DataKind, seed: number) {
  const rand = prng(seed);
  const sizes = Object.fromEntries(p.sizes.map((s) => [s, 1 + Math.floor(rand() * (p.sizes.length > 3 ? 3 : 5))]));
  const raw = randomInputs(p, sizes, kind, rand);
  // integer ids stay as they are; float inputs are made float32-exact
  const inputs = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v instanceof Int32Array ? v : Float64Array.from(Float32Array.from(v))]));
  const { cache, ...outs } = m64.forward(inputs, sizes);
  // one upstream gradient per output (an object keyed by output name when the spec has several)
  const douts = Object.fromEntries(p.outputs.map((o) => [o, Float64Array.from(Float32Array.from({ length: (outs[o] as Float64Array).length }, () => rand() * 2 - 1))]));
  const pack = <T>(d: Record<string, T>): T | Record<string, T> => (p.outputs.length === 1 ? d[p.output]! : d);
  const dout = pack(douts);
  const naive = m64.backwardNaive(dout, cache);
  const fused = m64.backwardFused(dout, cache);
  const f32 = m32.forward(Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v instanceof Int32Array ? v : Float32Array.from(v)])), sizes);
  const g32 = m32.backwardFused(pack(Object.fromEntries(Object.entries(douts).map(([k, v]) => [k, Float32Array.from(v)]))), f32.cache);
  const noise = gradientNoise(p, inputs, sizes, dout as Float64Array | Record<string, Float64Array>);
  const largest = Math.max(1e-300, ...Object.values(naive).map((g) => maxAbs(Array.from(g))));
  let fusedErr = 0;
  let f32Err = 0;
  let fusedRaw = 0;
  let f32Raw = 0;
  let fdErr = 0;
  let finite = true;
  for (const t of p.inputs.filter(isDifferentiable)) {
    const a = Float64Array.from(fused[`d${t.name}`]!);
    const b = Float64Array.from(naive[`d${t.name}`]!);
    const c = Float64Array.from(g32[`d${t.name}`]!);
    finite &&= [...a, ...b, ...c].every(Number.isFinite);
    // rounding of cancelling terms is forgiven as in the tests: 64 ulps (of float64, of float32)
    fusedErr = Math.max(fusedErr, gradientError(a, b, largest, noise.get(t.name)!));
    f32Err = Math.max(f32Err, gradientError(c, b, largest, noise.get(t.name)!.map((v) => v * 2 ** 29)));
    const zeros = new Float64Array(b.length);
    fusedRaw = Math.max(fusedRaw, gradientError(a, b, largest, zeros));
    f32Raw = Math.max(f32Raw, gradientError(c, b, largest, zeros));
    if (kind === "large-mean") continue;
    // directional derivative against a 4-point central difference, at the step where neighbours agree best
    const x = inputs[t.name] as Float64Array;
    const v = Float64Array.from({ length: x.length }, () => rand() * 2 - 1);
    const loss = (h: number) => {
      const o = m64.forward({ ...inputs, [t.name]: x.map((xi, i) => xi + h * v[i]!) }, sizes);
      return p.outputs.reduce((s, name) => s + (o[name] as Float64Array).reduce((a, oi, i) => a + oi * douts[name]![i]!, 0), 0);
    };
    const step0 = 1e-3 * Math.max(1e-3, maxAbs(x));
    const fds = Array.from({ length: 8 }, (_, k) => {
      const h = step0 / 4 ** k;
      return (-loss(2 * h) + 8 * loss(h) - 8 * loss(-h) + loss(-2 * h)) / (12 * h);
    });
    let best = 1;
    for (let k = 1; k + 1 < fds.length; k++) if (Math.abs(fds[k]! - fds[k + 1]!) < Math.abs(fds[best - 1]! - fds[best]!)) best = k + 1;
    let an = 0;
    let scale = 0;
    for (let i = 0; i < x.length; i++) {
      an += b[i]! * v[i]!;
      scale += Math.abs(b[i]! * v[i]!);
    }
    const terms = p.outputs.reduce((s, name) => s + (outs[name] as Float64Array).reduce((a, oi, i) => a + Math.abs(oi * douts[name]![i]!), 0), 0);
    const roundoff = (10 * Number.EPSILON * terms) / (step0 / 4 ** best);
    fdErr = Math.max(fdErr, Math.max(0, Math.abs(fds[best]! - an) - roundoff) / Math.max(scale, 1e-6 * largest * maxAbs(v)));
  }
  return { fusedErr, f32Err, fdErr, finite, fusedRaw, f32Raw };
}

const lines: string[] = [];
lines.push("# Numerics: worst errors on adversarial data");
lines.push("");
lines.push("Written by `npm run numerics` (scripts/numerics.ts); 40 random cases per spec and data kind, sizes 1 to 5 (1 to 3 for four-index specs).");
lines.push("");
lines.push("- *fused vs naive*: the largest difference between the two float64 kernels, relative to the larger of the gradient and 1e-6 of the layer's largest gradient. Rounding of terms that cancel is forgiven up to 64 ulps of the size of those terms, as in the tests. For example, cosine with D = 1 is constant, so its gradient is pure rounding.");
lines.push("- *naive vs differences*: the directional derivative against a 4-point central difference of the forward, at the step size where neighbouring steps agree best, less the forward's rounding, relative to the sum of |gradient × direction|. It is not measured at mean 1e4: differences cannot resolve a layer there, and `test/specs.test.ts` holds the kernels to each other instead.");
lines.push("- *float32 vs float64*: the float32 fused kernel against the float64 naive one on the same float32-exact inputs, measured the same way with float32 ulps. At mean 1e4 with spread 1e-2, storing the mean as float32 (ulp 1e-3) moves it by 5% of the spread, so every float32 normalization is off by percents there.");
lines.push("- The *beyond rounding* columns give what is left after forgiving 64 ulps of the size of the terms behind each element. The tests hold these columns to 1e-10 (float64) and 1e-4 (float32). The other columns are the raw differences.");
lines.push("- *finite*: every gradient of both kernels, in both precisions, was finite.");
lines.push("");
lines.push("| spec | data | fused vs naive | beyond rounding of the terms | naive vs differences | float32 vs float64 | beyond float32 rounding of the terms | finite |");
lines.push("| --- | --- | --- | --- | --- | --- | --- | --- |");
const fmt = (x: number) => (x === 0 ? "0" : x.toExponential(1));
for (const file of readdirSync(join(root, "specs")).filter((f) => f.endsWith(".spec.ts")).sort()) {
  const p = checkSpec((await import(join(root, "specs", file))).default);
  const m64 = (await import(join(root, "generated", `${p.name}.ts`))) as Mod;
  const m32 = (await import(join(root, "generated", "float32", `${p.name}.ts`))) as Mod;
  for (const kind of KINDS) {
    let w = { fusedErr: 0, f32Err: 0, fdErr: 0, finite: true, fusedRaw: 0, f32Raw: 0 };
    for (let seed = 1; seed <= 40; seed++) {
      const r = measure(p, m64, m32, kind, seed * 7919 + kind.length);
      w = {
        fusedErr: Math.max(w.fusedErr, r.fusedErr),
        f32Err: Math.max(w.f32Err, r.f32Err),
        fdErr: Math.max(w.fdErr, r.fdErr),
        finite: w.finite && r.finite,
        fusedRaw: Math.max(w.fusedRaw, r.fusedRaw),
        f32Raw: Math.max(w.f32Raw, r.f32Raw),
      };
    }
    lines.push(`| ${p.name} | ${kind} | ${fmt(w.fusedRaw)} | ${fmt(w.fusedErr)} | ${kind === "large-mean" ? "–" : fmt(w.fdErr)} | ${fmt(w.f32Raw)} | ${fmt(w.f32Err)} | ${w.finite ? "yes" : "**no**"} |`);
  }
}
writeFileSync(join(root, "docs", "numerics.md"), `${lines.join("\n")}\n`);
process.stdout.write(`${lines.join("\n")}\n`);
