/**
 * Times one library spec's two backward kernels in a fresh process, so that no other kernel's
 * compiled code or garbage affects it: `node --expose-gc --import tsx bench/spec-timing.ts <spec> '<sizes JSON>' [--quick]`.
 * Prints `{"naive": ms, "fused": ms, "ratio": naive/fused, "rounds": n, "inputMiB": n}`: medians of the
 * samples of alternating rounds, and the median of the rounds' ratios.
 */
import { Bench } from "tinybench";
import { join } from "node:path";
import { checkSpec } from "../compiler/parse/check.js";
import { shapeOf } from "../compiler/ir/program.js";

const [name, sizesJson] = process.argv.slice(2);
const quick = process.argv.includes("--quick");
const sizes = JSON.parse(sizesJson!) as Record<string, number>;
const root = join(import.meta.dirname, "..");
const mod = (await import(join(root, "generated", `${name}.ts`))) as {
  forward(i: Record<string, Float64Array>, s: Record<string, number>): Record<string, unknown> & { cache: unknown };
  backwardNaive(d: Float64Array, c: unknown): unknown;
  backwardFused(d: Float64Array, c: unknown): unknown;
};
const p = checkSpec((await import(join(root, "specs", `${name}.spec.ts`))).default);
let seed = 17;
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const inputs = Object.fromEntries(p.inputs.map((t) => [t.name, Float64Array.from({ length: shapeOf(p, t).reduce((a, s) => a * sizes[s]!, 1) }, () => 0.2 + (rand() * 2 - 1))]));
const inputMiB = Object.values(inputs).reduce((a, v) => a + v.byteLength, 0) / 2 ** 20;
const { cache, ...outs } = mod.forward(inputs, sizes);
const dout = Float64Array.from({ length: (outs[p.output] as Float64Array).length }, () => rand() * 2 - 1);
// naive and fused are timed in alternating rounds (each a short tinybench run), so that a slow
// spell of the machine (a shared VM drifts by up to 1.8x within seconds) falls on both kernels:
// the ratio is the median of the rounds' ratios, the times the medians of all samples
const kernels = [
  ["naive", () => mod.backwardNaive(dout, cache)],
  ["fused", () => mod.backwardFused(dout, cache)],
] as const;
const samples: Record<string, number[]> = { naive: [], fused: [] };
const ratios: number[] = [];
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const budget = quick ? 300 : 6000;
const started = performance.now();
for (let round = 0; round < (quick ? 1 : 6) || (round < 40 && performance.now() - started < budget); round++) {
  const roundMs: Record<string, number> = {};
  for (const [kernel, fn] of kernels) {
    (globalThis as { gc?: () => void }).gc?.();
    const bench = new Bench({ time: 50, iterations: 1, warmupIterations: round === 0 ? 5 : 1, retainSamples: true });
    bench.add(kernel, fn);
    await bench.run();
    const r = bench.tasks[0]!.result as { latency: { samples?: readonly number[]; p50: number } };
    samples[kernel]!.push(...(r.latency.samples ?? []));
    roundMs[kernel] = r.latency.p50;
  }
  ratios.push(roundMs["naive"]! / roundMs["fused"]!);
}
const ms = { naive: median(samples["naive"]!), fused: median(samples["fused"]!), ratio: median(ratios), rounds: ratios.length };
process.stdout.write(`${JSON.stringify({ ...ms, inputMiB: Math.round(inputMiB * 100) / 100 })}\n`);
