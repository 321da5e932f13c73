/**
 * Times one library spec's two backward kernels in a fresh process, so that no other kernel's
 * compiled code or garbage affects it: `node --expose-gc --import tsx bench/spec-timing.ts <spec> '<sizes JSON>' [--quick]`.
 * `<spec>` is a library spec's name (its module in generated/), or `test:<key>` for a spec of the
 * tests (test/layers-cases.ts), compiled here into a temporary folder.
 * Prints `{"naive": ms, "fused": ms, "ratio": naive/fused, "rounds": n, "inputMiB": n}`: the medians of
 * all samples of many short alternating rounds, and their ratio.
 */
import { Bench } from "tinybench";
import { join } from "node:path";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { checkSpec } from "../compiler/parse/check.js";
import { shapeOf } from "../compiler/ir/program.js";
import { gatherSizes } from "../compiler/ir/interpret.js";

const [name, sizesJson] = process.argv.slice(2);
const quick = process.argv.includes("--quick");
const sizes = JSON.parse(sizesJson!) as Record<string, number>;
const root = join(import.meta.dirname, "..");
interface Module {
  forward(i: Record<string, Float64Array | Int32Array>, s: Record<string, number>): Record<string, unknown> & { cache: unknown };
  backwardNaive(d: Float64Array | Record<string, Float64Array>, c: unknown): unknown;
  backwardFused(d: Float64Array | Record<string, Float64Array>, c: unknown): unknown;
}

/** A library spec's committed module, or a test spec built as `backpass build` would. */
async function load(): Promise<{ mod: Module; spec: unknown }> {
  if (!name!.startsWith("test:")) {
    const mod = (await import(join(root, "generated", `${name}.ts`))) as Module;
    return { mod, spec: (await import(join(root, "specs", `${name}.spec.ts`))).default };
  }
  const { SPECS } = await import("../test/layers-cases.js");
  const spec = SPECS[name!.slice("test:".length)];
  if (!spec) throw new Error(`no spec '${name}' in test/layers-cases.ts`);
  const { compile } = await import("../compiler/driver.js");
  const dir = mkdtempSync(join(tmpdir(), "backpass-bench-"));
  const file = join(dir, "module.ts");
  writeFileSync(file, (await compile(spec, { format: false })).code);
  const mod = (await import(file)) as Module;
  rmSync(dir, { recursive: true, force: true });
  return { mod, spec };
}

const loaded = await load();
const mod = loaded.mod;
const p = checkSpec(loaded.spec);
let seed = 17;
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
// integer inputs get valid ids: uniform in the range of every position they index
const ranges = gatherSizes(p);
const inputs: Record<string, Float64Array | Int32Array> = Object.fromEntries(
  p.inputs.map((t): [string, Float64Array | Int32Array] => {
    const n = shapeOf(p, t).reduce((a, s) => a * sizes[s]!, 1);
    if (t.kind === "int") {
      const bound = Math.min(...(ranges.get(t.name) ?? []).map((s) => sizes[s]!), 2 ** 31 - 1);
      return [t.name, Int32Array.from({ length: n }, () => Math.floor(rand() * bound))];
    }
    return [t.name, Float64Array.from({ length: n }, () => 0.2 + (rand() * 2 - 1))];
  }),
);
const inputMiB = Object.values(inputs).reduce((a, v) => a + v.byteLength, 0) / 2 ** 20;
const { cache, ...outs } = mod.forward(inputs, sizes);
// one upstream gradient per output: an object by output name when the spec has several
const douts = p.outputs.map((o) => Float64Array.from({ length: (outs[o] as Float64Array).length }, () => rand() * 2 - 1));
const dout = p.outputs.length === 1 ? douts[0]! : Object.fromEntries(p.outputs.map((o, k) => [o, douts[k]!]));
// naive and fused are timed in many short alternating rounds (a tinybench run of about 10 ms each,
// without a forced collection between them, which would leave each round measuring a cold heap),
// so that the slow spells of this shared machine (every kernel 3x slower for a while) fall on both
// kernels alike: absolute times still move between runs, their ratio much less
const kernels = [
  ["naive", () => mod.backwardNaive(dout, cache)],
  ["fused", () => mod.backwardFused(dout, cache)],
] as const;
const samples: Record<string, number[]> = { naive: [], fused: [] };
let rounds = 0;
const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const budget = quick ? 300 : 6000;
const started = performance.now();
for (let round = 0; round < (quick ? 1 : 6) || (round < 200 && performance.now() - started < budget); round++) {
  for (const [kernel, fn] of kernels) {
    if (round === 0) (globalThis as { gc?: () => void }).gc?.();
    const bench = new Bench({ time: 10, iterations: 1, warmup: round === 0, warmupIterations: 5, retainSamples: true });
    bench.add(kernel, fn);
    await bench.run();
    const r = bench.tasks[0]!.result as { latency: { samples?: readonly number[] } };
    samples[kernel]!.push(...(r.latency.samples ?? []));
  }
  rounds++;
}
const ms = { naive: median(samples["naive"]!), fused: median(samples["fused"]!), ratio: median(samples["naive"]!) / median(samples["fused"]!), rounds };
process.stdout.write(`${JSON.stringify({ ...ms, inputMiB: Math.round(inputMiB * 100) / 100 })}\n`);
