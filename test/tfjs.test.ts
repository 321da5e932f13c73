/**
 * Library layers against TensorFlow.js: each layer written with tfjs ops by hand, differentiated by
 * tfjs's own autodiff (an implementation no one here wrote), on float32-representable data; both
 * generated backward kernels must agree at float32 tolerance. Batchnorm has its own in
 * batchnorm.test.ts. Integer inputs and several outputs are checked against tfjs in
 * layers-tfjs.test.ts (its own class-label cross-entropy, mlp and gated cell, interpreted and built).
 */
import { beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { checkSpec } from "../compiler/parse/check.js";
import { prng } from "../compiler/ir/random.js";
import type { Kernels } from "./harness.js";
import { againstTfjs } from "./against-tfjs.js";
import { generatedModule } from "./harness.js";

type T = tf.Tensor;
interface Case {
  /** The layer in tfjs ops, inputs in the spec's order, shapes from the sizes. */
  readonly f: (sizes: Record<string, number>) => (...xs: T[]) => T;
  readonly shapes: (sizes: Record<string, number>) => number[][];
}

const CASES: Record<string, Case> = {
  layernorm: {
    f: () => (x, gamma, beta) => {
      const mu = tf.mean(x!, 1, true);
      const xmu = tf.sub(x!, mu);
      const v = tf.mean(tf.square(xmu), 1, true);
      return tf.add(tf.mul(gamma!, tf.div(xmu, tf.sqrt(tf.add(v, 1e-5)))), beta!);
    },
    shapes: ({ N, D }) => [[N!, D!], [D!], [D!]],
  },
  softmax: {
    f: () => (z) => tf.softmax(z!),
    shapes: ({ N, C }) => [[N!, C!]],
  },
  softmax_xent: {
    f: ({ N }) => (z, t) => tf.div(tf.neg(tf.sum(tf.mul(t!, tf.logSoftmax(z!)))), N!),
    shapes: ({ N, C }) => [[N!, C!], [N!, C!]],
  },
  linear: {
    f: () => (x, w, b) => tf.add(tf.matMul(x!, w!), b!),
    shapes: ({ N, D, K }) => [[N!, D!], [D!, K!], [K!]],
  },
  relu: {
    f: () => (x) => tf.relu(x!),
    shapes: ({ N, D }) => [[N!, D!]],
  },
  leaky_relu: {
    f: () => (x) => tf.leakyRelu(x!, 0.01),
    shapes: ({ N, D }) => [[N!, D!]],
  },
  elu: {
    f: () => (x) => tf.elu(x!),
    shapes: ({ N, D }) => [[N!, D!]],
  },
  gelu_erf: {
    f: () => (x) => tf.mul(tf.mul(0.5, x!), tf.add(1, tf.erf(tf.div(x!, Math.SQRT2)))),
    shapes: ({ N, D }) => [[N!, D!]],
  },
  attention: {
    f: ({ E }) => (q, k, v) => tf.matMul(tf.softmax(tf.div(tf.matMul(q!, k!, false, true), Math.sqrt(E!))), v!),
    shapes: ({ L, E, F }) => [[L!, E!], [L!, E!], [L!, F!]],
  },
};

beforeAll(async () => {
  await tf.setBackend("cpu");
});

describe.each(Object.keys(CASES))("%s against TensorFlow.js autodiff (float32)", (name) => {
  it("both backward kernels match tfjs's gradients", async () => {
    const p = checkSpec((await import(join(import.meta.dirname, `../specs/${name}.spec.ts`))).default);
    const mod = (await generatedModule(name)) as unknown as Kernels;
    const c = CASES[name]!;
    fc.assert(
      fc.property(fc.tuple(...p.sizes.map(() => fc.integer({ min: 1, max: 6 }))), fc.integer(), (dims, seed) => {
        const rand = prng(seed);
        const sizes = Object.fromEntries(p.sizes.map((s, k) => [s, dims[k]!]));
        againstTfjs(p, mod, { f: c.f(sizes) as (...xs: T[]) => T, shapes: c.shapes(sizes) }, sizes, rand);
      }),
      { numRuns: 20 },
    );
  });
});
