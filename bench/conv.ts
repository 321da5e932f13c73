/**
 * Convolution backward timings (issue 14): the generated conv2d (stride 2, padding 1) and
 * conv_bn_relu (stride 1, padding 1) kernels, naive and fused, against TensorFlow.js's autodiff of
 * the same forward on its cpu and wasm backends, at N=8, C=O=32, 32×32, K=3 (float64 kernels,
 * float32 tfjs in its own NHWC layout, no transposes timed). The fused kernel is also timed as
 * WebAssembly (`--target wasm`, built here with `compile()`), float32 (the peer of tfjs's float32
 * wasm) and float64, with its arrays in the module's memory (`alloc`: used in place, as
 * bench/wasm-timing.ts does). The variants run in alternating
 * rounds, so a slow spell of the machine falls on all of them; medians in ms. `npm run bench:conv`
 * prints the table and writes docs/bench/conv.md.
 */
import * as tf from "@tensorflow/tfjs";
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import * as conv2d from "../generated/conv2d.js";
import * as cbr from "../generated/conv_bn_relu.js";
import { prng } from "../compiler/ir/random.js";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { compile } from "../compiler/driver.js";
import { checkSpec } from "../compiler/parse/check.js";
import { shapeOf } from "../compiler/ir/program.js";
import { withDerived } from "../compiler/ir/sizes.js";
import conv2dSpec from "../specs/conv2d.spec.js";
import cbrSpec from "../specs/conv_bn_relu.spec.js";

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

/**
 * TensorFlow.js wasm with a backward written by hand from kernels the wasm backend has, since its
 * autodiff of a conv2d fails (no Conv2DBackpropFilter): dx is `conv2dTranspose` (Conv2DBackpropInput),
 * dw a conv2d of the input with channels and batch swapped by the upstream gradient (a strided
 * convolution's as a dilated one, cut to K×K), and batchnorm and relu by their closed forms in tf
 * ops. The forward values it reads are computed once, outside the timing (as the generated kernels
 * read their cache). `bn` adds batchnorm + relu in front of the convolution's backward.
 */
async function tfjsWasmByHand(shapes: { x: number[]; w: number[]; dy: number[] }, stride: number, bn: boolean, rand: () => number): Promise<Record<string, number>> {
  try {
    await import("@tensorflow/tfjs-backend-wasm");
    if (!(await tf.setBackend("wasm"))) return {};
  } catch {
    return {};
  }
  const t = (shape: number[]) => tf.tensor(Float32Array.from(filled(shape.reduce((a, b) => a * b, 1), rand)), shape);
  const x = t(shapes.x) as tf.Tensor4D, w = t(shapes.w) as tf.Tensor4D, dy = t(shapes.dy) as tf.Tensor4D;
  const [, , , O] = w.shape;
  const Kh = w.shape[0];
  const gamma = t([O]), beta = t([O]);
  // the forward values a backward reads (batchnorm's zhat, 1/std and the relu's input)
  const z = tf.conv2d(x, w, stride, 1);
  const { mean, variance } = tf.moments(z, [0, 1, 2]);
  const rstd = tf.rsqrt(tf.add(variance, 1e-5));
  const zhat = tf.mul(tf.sub(z, mean), rstd);
  const out = tf.add(tf.mul(gamma, zhat), beta);
  const M = z.shape[0] * z.shape[1] * z.shape[2];
  const run = () => {
    tf.engine().startScope();
    try {
      let dz = dy as tf.Tensor4D;
      const grads: tf.Tensor[] = [];
      if (bn) {
        const dout = tf.mul(dy, tf.cast(tf.greater(out, 0), "float32"));
        const dbeta = tf.sum(dout, [0, 1, 2]);
        const dgamma = tf.sum(tf.mul(dout, zhat), [0, 1, 2]);
        dz = tf.mul(tf.div(tf.mul(gamma, rstd), M), tf.sub(tf.sub(tf.mul(dout, M), dbeta), tf.mul(zhat, dgamma))) as tf.Tensor4D;
        grads.push(dbeta, dgamma);
      } else grads.push(tf.sum(dy, [0, 1, 2]));
      grads.push(tf.conv2dTranspose(dz, w, x.shape, stride, 1 as never));
      const full = tf.conv2d(tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D, tf.transpose(dz, [1, 2, 0, 3]) as tf.Tensor4D, 1, 1, "NHWC", stride);
      grads.push(tf.transpose(tf.slice(full, [0, 0, 0, 0], [-1, Kh, Kh, -1]), [1, 2, 0, 3]));
      for (const g of grads) g.dataSync();
    } finally {
      tf.engine().endScope();
    }
  };
  const ms = alternate([["TensorFlow.js wasm, hand-written backward", run]]);
  tf.dispose([x, w, dy, gamma, beta, z, mean, variance, rstd, zhat, out]);
  await tf.setBackend("cpu");
  return ms;
}

type Floats = Float64Array | Float32Array;
interface WasmModule {
  forward(i: Record<string, Floats>, s: Record<string, number>, c?: object, into?: object): { cache: unknown };
  backwardFused(d: Floats, c: unknown, into?: object): unknown;
  alloc(n: number): Floats;
  reserveMemory(bytes: number): void;
}
const scratch = mkdtempSync(join(tmpdir(), "backpass-conv-bench-"));

/**
 * The fused backward of `spec` as WebAssembly (`dtype`), with the inputs, the forward's steps, dy
 * and the gradients all in the module's memory: a call that times the kernel alone.
 */
async function wasmFused(spec: Parameters<typeof checkSpec>[0], dtype: "float32" | "float64", inputs: Record<string, Float64Array>, sizes: Record<string, number>, dy: Float64Array): Promise<() => void> {
  const p = checkSpec(spec);
  const all = withDerived(p, sizes);
  const length = (t: Parameters<typeof shapeOf>[1]) => shapeOf(p, t).reduce((a, d) => a * all[d]!, 1);
  const file = join(scratch, `${p.name}-${dtype}.ts`);
  writeFileSync(file, (await compile(spec, { dtype, target: "wasm", format: false })).code);
  const mod = (await import(file)) as WasmModule;
  const elements = Object.values(inputs).reduce((a, v) => a + v.length, 0) + dy.length + p.steps.reduce((a, st) => a + length(st), 0);
  // room for everything and the calls' scratch up front: no growth detaches a view
  mod.reserveMemory(elements * 8 * 4);
  const copy = (v: Float64Array) => {
    const a = mod.alloc(v.length);
    a.set(v);
    return a;
  };
  const ins = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, copy(v)]));
  const steps = Object.fromEntries(p.steps.map((st) => [st.name, mod.alloc(length(st))]));
  const { cache } = mod.forward(ins, sizes, undefined, steps);
  const d = copy(dy);
  const into = Object.fromEntries(p.inputs.map((t) => [`d${t.name}`, mod.alloc(length(t))]));
  return () => void mod.backwardFused(d, cache, into);
}

async function main(): Promise<void> {
  const rand = prng(14);
  const rows: { layer: string; ms: Record<string, number> }[] = [];
  {
    const inputs = { x: filled(N * C * H * W, rand), w: filled(O * C * K * K, rand), b: filled(O, rand) };
    const { y, cache } = conv2d.forward(inputs, { N, C, O, H, W, K });
    const dy = filled(y.length, rand);
    const w32 = await wasmFused(conv2dSpec, "float32", inputs, { N, C, O, H, W, K }, dy);
    const w64 = await wasmFused(conv2dSpec, "float64", inputs, { N, C, O, H, W, K }, dy);
    const ms = alternate([["naive", () => conv2d.backwardNaive(dy, cache)], ["fused", () => conv2d.backwardFused(dy, cache)], ["fused, wasm float64", w64], ["fused, wasm float32", w32]]);
    const I = (H + 2 - K) / 2 + 1;
    Object.assign(ms, await tfjsTimes((x, w, b) => tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 1), b!), [[N, H, W, C], [K, K, C, O], [O]], [N, Math.floor(I), Math.floor(I), O], rand));
    Object.assign(ms, await tfjsWasmByHand({ x: [N, H, W, C], w: [K, K, C, O], dy: [N, Math.floor(I), Math.floor(I), O] }, 2, false, rand));
    rows.push({ layer: "conv2d (stride 2, padding 1)", ms });
  }
  {
    const inputs = { x: filled(N * C * H * W, rand), w: filled(O * C * K * K, rand), gamma: filled(O, rand), beta: filled(O, rand) };
    const { y, cache } = cbr.forward(inputs, { N, C, O, H, W, K });
    const dy = filled(y.length, rand);
    const w32 = await wasmFused(cbrSpec, "float32", inputs, { N, C, O, H, W, K }, dy);
    const w64 = await wasmFused(cbrSpec, "float64", inputs, { N, C, O, H, W, K }, dy);
    const ms = alternate([["naive", () => cbr.backwardNaive(dy, cache)], ["fused", () => cbr.backwardFused(dy, cache)], ["fused, wasm float64", w64], ["fused, wasm float32", w32]]);
    const f = (x: tf.Tensor, w: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => {
      const z = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 1);
      const { mean, variance } = tf.moments(z, [0, 1, 2]);
      return tf.relu(tf.add(tf.mul(gamma, tf.div(tf.sub(z, mean), tf.sqrt(tf.add(variance, 1e-5)))), beta));
    };
    Object.assign(ms, await tfjsTimes(f as never, [[N, H, W, C], [K, K, C, O], [O], [O]], [N, H, W, O], rand));
    Object.assign(ms, await tfjsWasmByHand({ x: [N, H, W, C], w: [K, K, C, O], dy: [N, H, W, O] }, 1, true, rand));
    rows.push({ layer: "conv2d → batchnorm → relu (stride 1, padding 1)", ms });
  }
  const cols = ["naive", "fused", "fused, wasm float64", "fused, wasm float32", "TensorFlow.js cpu", "TensorFlow.js wasm", "TensorFlow.js wasm, hand-written backward"];
  const peer = "TensorFlow.js wasm, hand-written backward";
  const fmt = (v: number | undefined) => (v === undefined ? "fails" : v.toPrecision(3));
  const lines = [
    `| layer (N=${N}, C=O=${C}, ${H}×${W}, K=${K}) | ${cols.join(" | ")} | naive / fused | tfjs wasm hand-written / fused wasm float32 |`,
    `| --- | ${cols.map(() => "---").join(" | ")} | --- | --- |`,
    ...rows.map((r) => `| ${r.layer} | ${cols.map((c) => fmt(r.ms[c])).join(" | ")} | ${(r.ms["naive"]! / r.ms["fused"]!).toFixed(2)} | ${r.ms[peer] === undefined ? "-" : (r.ms[peer] / r.ms["fused, wasm float32"]!).toFixed(2)} |`),
  ];
  const notes = [...unsupported].map((u) => `- ${u}`);
  const table = [...lines, ...(notes.length ? ["", ...notes] : [])].join("\n");
  process.stdout.write(`${table}\n`);
  mkdirSync(join(import.meta.dirname, "../docs/bench"), { recursive: true });
  writeFileSync(join(import.meta.dirname, "../docs/bench/conv.md"), `# Convolution backward (ms, medians of ${ROUNDS} alternating rounds)\n\n${table}\n`);
}

await main();
