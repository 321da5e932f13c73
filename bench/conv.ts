/**
 * Convolution backward timings (issue 14): the generated conv2d (stride 2, padding 1) and
 * conv_bn_relu (stride 1, padding 1) kernels, naive and fused, against TensorFlow.js's autodiff of
 * the same forward on its cpu and wasm backends, at N=8, C=O=32, 32×32, K=3 (float64 kernels,
 * float32 tfjs in its own NHWC layout, no transposes timed). The variants run in alternating
 * rounds, so a slow spell of the machine falls on all of them; medians in ms. `npm run bench:conv`
 * prints the table and writes docs/bench/conv.md.
 */
import * as tf from "@tensorflow/tfjs";
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import * as conv2d from "../generated/conv2d.js";
import * as cbr from "../generated/conv_bn_relu.js";
import { prng } from "../compiler/ir/random.js";

const N = 8, C = 32, O = 32, H = 32, W = 32, K = 3;
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 9);

/** What a backend could not run, with its message (printed under the table). */
const unsupported = new Set<string>();

const filled = (n: number, rand: () => number) => Float64Array.from({ length: n }, () => rand() * 2 - 1);

/** Median ms of each variant over `ROUNDS` rounds, each round running every variant once (after two warm-up rounds). */
function alternate(variants: readonly (readonly [string, () => void])[]): Record<string, number> {
  const times = new Map<string, number[]>(variants.map(([n]) => [n, []]));
  for (let r = 0; r < ROUNDS + 2; r++)
    for (const [name, f] of variants) {
      const t = performance.now();
      f();
      if (r >= 2) times.get(name)!.push(performance.now() - t);
    }
  return Object.fromEntries([...times].map(([n, xs]) => [n, [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!]));
}

async function tfjsTimes(f: (x: tf.Tensor, w: tf.Tensor, ...rest: tf.Tensor[]) => tf.Tensor, shapes: number[][], dyShape: number[], rand: () => number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const backends = ["cpu"];
  try {
    await import("@tensorflow/tfjs-backend-wasm");
    if (await tf.setBackend("wasm")) backends.push("wasm");
  } catch (e) {
    process.stderr.write(`TensorFlow.js WebAssembly backend unavailable: ${(e as Error).message}\n`);
  }
  for (const backend of backends) {
    await tf.setBackend(backend);
    const xs = shapes.map((s) => tf.tensor(Float32Array.from(filled(s.reduce((a, b) => a * b, 1), rand)), s));
    const dy = tf.tensor(Float32Array.from(filled(dyShape.reduce((a, b) => a * b, 1), rand)), dyShape);
    const grads = tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor);
    const run = () => {
      tf.engine().startScope();
      try {
        for (const g of grads(xs, dy)) g.dataSync();
      } finally {
        tf.engine().endScope();
      }
    };
    try {
      run();
      Object.assign(out, alternate([[`TensorFlow.js ${backend}`, run]]));
    } catch (e) {
      // tfjs 4's wasm backend has no Conv2DBackpropFilter kernel: its autodiff of a conv2d fails
      unsupported.add(`TensorFlow.js ${backend}: ${(e as Error).message}`);
    }
    tf.dispose([...xs, dy]);
  }
  await tf.setBackend("cpu");
  return out;
}

async function main(): Promise<void> {
  const rand = prng(14);
  const rows: { layer: string; ms: Record<string, number> }[] = [];
  {
    const inputs = { x: filled(N * C * H * W, rand), w: filled(O * C * K * K, rand), b: filled(O, rand) };
    const { y, cache } = conv2d.forward(inputs, { N, C, O, H, W, K });
    const dy = filled(y.length, rand);
    const ms = alternate([["naive", () => conv2d.backwardNaive(dy, cache)], ["fused", () => conv2d.backwardFused(dy, cache)]]);
    const I = (H + 2 - K) / 2 + 1;
    Object.assign(ms, await tfjsTimes((x, w, b) => tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 1), b!), [[N, H, W, C], [K, K, C, O], [O]], [N, Math.floor(I), Math.floor(I), O], rand));
    rows.push({ layer: "conv2d (stride 2, padding 1)", ms });
  }
  {
    const inputs = { x: filled(N * C * H * W, rand), w: filled(O * C * K * K, rand), gamma: filled(O, rand), beta: filled(O, rand) };
    const { y, cache } = cbr.forward(inputs, { N, C, O, H, W, K });
    const dy = filled(y.length, rand);
    const ms = alternate([["naive", () => cbr.backwardNaive(dy, cache)], ["fused", () => cbr.backwardFused(dy, cache)]]);
    const f = (x: tf.Tensor, w: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => {
      const z = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 1);
      const { mean, variance } = tf.moments(z, [0, 1, 2]);
      return tf.relu(tf.add(tf.mul(gamma, tf.div(tf.sub(z, mean), tf.sqrt(tf.add(variance, 1e-5)))), beta));
    };
    Object.assign(ms, await tfjsTimes(f as never, [[N, H, W, C], [K, K, C, O], [O], [O]], [N, H, W, O], rand));
    rows.push({ layer: "conv2d → batchnorm → relu (stride 1, padding 1)", ms });
  }
  const cols = ["naive", "fused", "TensorFlow.js cpu", "TensorFlow.js wasm"];
  const fmt = (v: number | undefined) => (v === undefined ? "fails" : v.toPrecision(3));
  const lines = [
    `| layer (N=${N}, C=O=${C}, ${H}×${W}, K=${K}) | ${cols.join(" | ")} | naive / fused |`,
    `| --- | ${cols.map(() => "---").join(" | ")} | --- |`,
    ...rows.map((r) => `| ${r.layer} | ${cols.map((c) => fmt(r.ms[c])).join(" | ")} | ${(r.ms["naive"]! / r.ms["fused"]!).toFixed(2)} |`),
  ];
  const notes = [...unsupported].map((u) => `- ${u}`);
  const table = [...lines, ...(notes.length ? ["", ...notes] : [])].join("\n");
  process.stdout.write(`${table}\n`);
  mkdirSync(join(import.meta.dirname, "../docs/bench"), { recursive: true });
  writeFileSync(join(import.meta.dirname, "../docs/bench/conv.md"), `# Convolution backward (ms, medians of ${ROUNDS} alternating rounds)\n\n${table}\n`);
}

await main();
