/**
 * `npm run bench:double`: batchnorm's double backward (CONTRACT §4.6) at the sizes of bench/run.ts,
 * float64: the generated `doubleBackwardFused` against `doubleBackwardNaive` (alternating in short
 * rounds, as bench/run.ts times the first backward), TensorFlow.js's nested gradients (`tf.grads` of
 * a function that calls `tf.grads`, cpu backend, float32) and, where `/usr/bin/python3` has torch,
 * PyTorch's hand-written batchnorm double backward (one thread, float64; bench/double_torch.py).
 * Prints a table of medians and writes docs/bench/double.json and docs/bench/double.md.
 * `--quick` takes fewer samples; `--sizes 1024x1024,...` picks sizes.
 */
import { Bench } from "tinybench";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import * as bn from "../generated/batchnorm.js";
import { prng } from "../compiler/ir/random.js";

const root = join(import.meta.dirname, "..");
const quick = process.argv.includes("--quick");
const sizesArg = process.argv[process.argv.indexOf("--sizes") + 1];
const SIZES: [number, number][] = process.argv.includes("--sizes")
  ? sizesArg!.split(",").map((s) => s.split("x").map(Number) as [number, number])
  : [
      [64, 64],
      [256, 256],
      [1024, 1024],
      [4096, 256],
      [256, 4096],
    ];

const filled = (n: number, rand: () => number, scale = 1, offset = 0) => Float64Array.from({ length: n }, () => offset + scale * (rand() * 2 - 1));

function medianOf(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Medians of tasks timed in short alternating rounds (about 10 ms each) for `budgetMs` (see bench/run.ts). */
async function interleaved(tasks: readonly (readonly [string, () => unknown])[], budgetMs: number): Promise<Record<string, number>> {
  (globalThis as { gc?: () => void }).gc?.();
  const samples = new Map<string, number[]>(tasks.map(([name]) => [name, []]));
  const started = performance.now();
  for (let round = 0; round < (quick ? 1 : 5) || performance.now() - started < budgetMs; round++) {
    for (const [name, fn] of tasks) {
      const bench = new Bench({ time: quick ? 5 : 10, iterations: 1, warmup: round === 0, warmupIterations: 3, retainSamples: true });
      bench.add(name, fn);
      await bench.run();
      const r = bench.tasks[0]!.result as { latency?: { samples?: readonly number[] } } | undefined;
      if (!r?.latency?.samples) throw new Error(`${name}: no result`);
      samples.get(name)!.push(...r.latency.samples);
    }
  }
  return Object.fromEntries([...samples].map(([name, xs]) => [name, medianOf(xs)]));
}

/** TensorFlow.js's double backward of the same batchnorm: the gradient of sum(gg · grads) by nested tf.grads. */
function tfjsDouble(N: number, D: number, x: Float64Array, gamma: Float64Array, beta: Float64Array, dout: Float64Array, gg: { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array }): () => void {
  const t = (a: Float64Array, shape: number[]) => tf.tensor(Float32Array.from(a), shape);
  const [tx, tg, tb, td, gx, gG, gB] = [t(x, [N, D]), t(gamma, [D]), t(beta, [D]), t(dout, [N, D]), t(gg.dx, [N, D]), t(gg.dgamma, [D]), t(gg.dbeta, [D])];
  const f = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const mu = tf.mean(xx, 0);
    const xmu = tf.sub(xx, mu);
    const v = tf.mean(tf.square(xmu), 0);
    return tf.add(tf.mul(g, tf.div(xmu, tf.sqrt(tf.add(v, 1e-5)))), b);
  };
  const scalar = (xx: tf.Tensor, g: tf.Tensor, d: tf.Tensor) => {
    const [dx, dg, db] = tf.grads(((a: tf.Tensor, c: tf.Tensor, e: tf.Tensor) => tf.sum(tf.mul(d, f(a, c, e)))) as (...a: tf.Tensor[]) => tf.Tensor)([xx, g, tb]);
    return tf.addN([tf.sum(tf.mul(gx, dx!)), tf.sum(tf.mul(gG, dg!)), tf.sum(tf.mul(gB, db!))]);
  };
  const second = tf.grads(scalar as (...a: tf.Tensor[]) => tf.Tensor);
  return () => {
    tf.engine().startScope();
    for (const r of second([tx, tg, td])) r.dataSync();
    tf.engine().endScope();
  };
}

/** PyTorch's medians by size, or undefined when /usr/bin/python3 has no torch. */
function torchMs(): Map<string, number> | undefined {
  if (!existsSync("/usr/bin/python3")) return undefined;
  const r = spawnSync("/usr/bin/python3", [join(root, "bench/double_torch.py"), ...SIZES.flat().map(String)], { encoding: "utf8" });
  if (r.status !== 0) {
    if (r.status !== 3) process.stderr.write(`PyTorch row skipped: ${r.stderr}\n`);
    return undefined;
  }
  return new Map(
    r.stdout
      .trim()
      .split("\n")
      .map((l) => l.split(" "))
      .map(([n, d, ms]) => [`${n}×${d}`, Number(ms)]),
  );
}

const fmt = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));

async function main(): Promise<void> {
  await tf.setBackend("cpu");
  const rows: { size: string; N: number; D: number; ms: Record<string, number> }[] = [];
  for (const [N, D] of SIZES) {
    const rand = prng(N * 7919 + D);
    const inputs = { x: filled(N * D, rand, 2, 0.5), gamma: filled(D, rand, 0.5, 1), beta: filled(D, rand) };
    const { cache } = bn.forward(inputs, { N, D });
    const dout = filled(N * D, rand);
    const gg = { dx: filled(N * D, rand), dgamma: filled(D, rand), dbeta: filled(D, rand) };
    const into = { dx: new Float64Array(N * D), dgamma: new Float64Array(D), dbeta: new Float64Array(D), ddout: new Float64Array(N * D) };
    const big = N * D >= 1 << 20;
    const ms = await interleaved(
      [
        ["fused, preallocated", () => bn.doubleBackwardFused(gg, dout, cache, into)],
        ["fused", () => bn.doubleBackwardFused(gg, dout, cache)],
        ["naive", () => bn.doubleBackwardNaive(gg, dout, cache)],
      ],
      quick ? 200 : big ? 8000 : 3000,
    );
    const tfRun = tfjsDouble(N, D, inputs.x, inputs.gamma, inputs.beta, dout, gg);
    tfRun();
    const times: number[] = [];
    const until = performance.now() + (quick ? 300 : 3000);
    while (times.length < 3 || (performance.now() < until && times.length < 200)) {
      const t = performance.now();
      tfRun();
      times.push(performance.now() - t);
    }
    ms["TensorFlow.js cpu (float32)"] = medianOf(times);
    rows.push({ size: `${N}×${D}`, N, D, ms });
    process.stderr.write(`batchnorm double backward ${N}×${D} done\n`);
  }
  const torch = torchMs();
  if (torch) for (const r of rows) if (torch.has(r.size)) r.ms["PyTorch (1 thread)"] = torch.get(r.size)!;
  const variants = [...new Set(rows.flatMap((r) => Object.keys(r.ms)))];
  const lines = [
    `batchnorm double backward (CONTRACT §4.6), float64 unless noted, median ms (ratio to fused, preallocated); ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}`,
    "",
    `| variant | ${rows.map((r) => r.size).join(" | ")} |`,
    `| --- | ${rows.map(() => "---").join(" | ")} |`,
    ...variants.map((v) => `| ${v} | ${rows.map((r) => (r.ms[v] === undefined ? "–" : `${fmt(r.ms[v]!)} (${(r.ms[v]! / r.ms["fused, preallocated"]!).toFixed(2)}×)`)).join(" | ")} |`),
  ];
  const at = rows.find((r) => r.N === 1024 && r.D === 1024)?.ms;
  if (at) {
    lines.push("", `naive / fused at 1024²: ${(at["naive"]! / at["fused"]!).toFixed(2)}`);
    if (at["PyTorch (1 thread)"] !== undefined) lines.push(`PyTorch / fused at 1024²: ${(at["PyTorch (1 thread)"]! / at["fused"]!).toFixed(2)} (target ≥ 5: ${at["PyTorch (1 thread)"]! / at["fused"]! >= 5 ? "met" : "**not met**"})`);
    else lines.push("PyTorch: not measured (/usr/bin/python3 has no torch)");
  }
  const text = lines.join("\n");
  process.stdout.write(`${text}\n`);
  if (!process.argv.includes("--sizes")) {
    const dir = join(root, "docs/bench");
    mkdirSync(dir, { recursive: true });
    const meta = { date: new Date().toISOString().slice(0, 10), node: process.version, cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, quick };
    writeFileSync(join(dir, "double.json"), `${JSON.stringify({ meta, batchnorm: rows }, null, 2)}\n`);
    writeFileSync(join(dir, "double.md"), `${text}\n`);
    process.stderr.write("wrote docs/bench/double.json, double.md\n");
  }
}

await main();
