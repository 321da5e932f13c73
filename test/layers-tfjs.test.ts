/**
 * Issue 13's constructs against TensorFlow.js autodiff, an implementation no one here wrote: each
 * spec of layers-cases.ts that tfjs has the ops for, written again with tfjs ops (relu, maximum,
 * minimum, where, erf, gather, softmaxCrossEntropy of oneHot labels), differentiated by tfjs, and
 * compared with backpass's interpreted naive and fused gradients on float32-representable data at
 * float32 tolerance. Points are random, so no tie or kink is hit (tfjs's maximum gives a tie's
 * whole gradient to its first argument; PyTorch, and backpass, split it: layers.test.ts holds those).
 * The generated module of each spec (both kernels, float64) is held to the same tfjs gradients.
 */
import { beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import * as tf from "@tensorflow/tfjs";
import { randomInputs } from "../compiler/ir/interpret.js";
import { isDifferentiable } from "../compiler/ir/program.js";
import { prng } from "../compiler/ir/random.js";
import { derived, gradients, lengthOf, SPECS } from "./layers-cases.js";
import { compile } from "../compiler/driver.js";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import type { Kernels } from "./harness.js";
import { loadModule } from "./harness.js";

const work = mkdtempSync(join(tmpdir(), "backpass-layers-tfjs-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

type T = tf.Tensor;
type Sizes = Record<string, number>;
interface Case {
  /**
   * The spec's outputs by name, from its inputs by name, in tfjs ops (shapes as the spec declares).
   * tfjs has no gradient for a comparison, even one whose gradient is 0: a condition is computed
   * from `data`, the same values outside the differentiated function.
   */
  readonly f: (x: Record<string, T>, sizes: Sizes, data: Record<string, T>) => Record<string, T>;
}

const CASES: Record<string, Case> = {
  relu: { f: (x) => ({ y: tf.relu(x.x!) }) },
  leaky: { f: (x, _, data) => ({ y: tf.where(tf.greater(data.x!, 0), x.x!, tf.mul(0.01, x.x!)) }) },
  elu: { f: (x) => ({ y: tf.elu(x.x!) }) },
  choices: {
    f: ({ a, b }, _, data) => {
      const d = tf.sub(a!, b!);
      return {
        y: tf.add(tf.mul(tf.maximum(a!, b!), tf.minimum(a!, tf.mul(2, b!))), tf.abs(d)),
        z: tf.add(tf.where(tf.notEqual(data.a!, data.b!), tf.log(tf.abs(d)), tf.zerosLike(a!)), tf.mul(tf.sign(a!), b!)),
      };
    },
  },
  huber: {
    f: ({ x, t }, _, data) => {
      const r = tf.sub(x!, t!);
      const l = tf.where(tf.lessEqual(tf.abs(tf.sub(data.x!, data.t!)), 1), tf.mul(0.5, tf.square(r)), tf.sub(tf.abs(r), 0.5));
      return { loss: tf.mean(l) };
    },
  },
  functions: {
    f: ({ x }) => ({
      y: tf.addN([tf.erf(x!), tf.log1p(tf.square(x!)), tf.sub(tf.exp(tf.div(x!, 2)), 1), tf.softplus(tf.mul(3, x!)), tf.mul(tf.mul(0.5, x!), tf.add(1, tf.erf(tf.div(x!, Math.SQRT2))))]),
    }),
  },
  xent: {
    // tf.oneHot refuses a depth of 1; the same one-hot rows by comparison with 0..C-1
    f: ({ z, label }, { C }) => ({ loss: tf.losses.softmaxCrossEntropy(tf.cast(tf.equal(tf.expandDims(label!, 1), tf.range(0, C!)), "float32"), z!) }),
  },
  embedding: {
    f: ({ E, ids, g }, { B, S, D }) => {
      const h = tf.reshape(tf.gather(E!, tf.reshape(ids!, [-1]).asType("int32")), [B!, S!, D!]);
      return { y: tf.mul(g!, tf.sub(h, tf.mean(h, 2, true))) };
    },
  },
  dropout: { f: ({ x, mask }) => ({ y: tf.mul(x!, tf.div(mask!, 0.75)) }) },
  mlp: {
    f: ({ x, w1, b1, w2, b2, label }, { C }) => {
      const z = tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x!, w1!), b1!)), w2!), b2!);
      return { loss: tf.losses.softmaxCrossEntropy(tf.cast(tf.equal(tf.expandDims(label!, 1), tf.range(0, C!)), "float32"), z) };
    },
  },
  cell: {
    f: ({ x, c0, w }) => {
      const f = tf.sigmoid(tf.mul(w!, x!));
      const c = tf.add(tf.mul(f, c0!), tf.mul(tf.sub(1, f), tf.tanh(x!)));
      return { h: tf.mul(tf.tanh(c), tf.relu(tf.add(x!, 0.5))), c };
    },
  },
};

beforeAll(async () => {
  await tf.setBackend("cpu");
});

describe.each(Object.keys(CASES))("%s against TensorFlow.js autodiff (float32)", (key) => {
  it("the naive and fused gradients match tfjs's", async () => {
    const d = await derived(key);
    const p = d.program;
    const c = CASES[key]!;
    const mod = await loadModule<Kernels>((await compile(SPECS[key], { format: false, doubleBackward: false })).code, join(work, `${key}.ts`));
    const shape = (name: string, sizes: Sizes) => p.inputs.concat(p.steps).find((t) => t.name === name)!.indices.map((i) => sizes[p.sizeOf(i)]!);
    fc.assert(
      fc.property(fc.tuple(...p.sizes.map(() => fc.integer({ min: 1, max: 4 }))), fc.integer(), (dims, seed) => {
        const sizes: Sizes = Object.fromEntries(p.sizes.map((s, k) => [s, dims[k]!]));
        const rand = prng(seed);
        const inputs = randomInputs(p, sizes, rand, () => Math.fround(rand() * 4 - 2));
        const dout = Object.fromEntries(p.outputs.map((o) => [o, Float64Array.from({ length: lengthOf(p, o, sizes) }, () => Math.fround(rand() * 2 - 1))]));
        const ours = gradients(d, inputs, sizes, dout);
        const { cache } = mod.forward(inputs, sizes);
        const upstream = p.outputs.length === 1 ? dout[p.output]! : dout;
        const kernels = { naive: mod.backwardNaive(upstream, cache), fused: mod.backwardFused(upstream, cache) };
        const wrt = p.inputs.filter(isDifferentiable);
        const fixed = Object.fromEntries(p.inputs.filter((t) => !isDifferentiable(t)).map((t) => [t.name, tf.tensor(Array.from(inputs[t.name]!), shape(t.name, sizes))]));
        const data = Object.fromEntries(p.inputs.map((t) => [t.name, tf.tensor(Array.from(inputs[t.name]!), shape(t.name, sizes))]));
        const theirs = tf.tidy(() =>
          tf
            .grads((...xs: T[]) => {
              const outs = c.f({ ...fixed, ...Object.fromEntries(wrt.map((t, k) => [t.name, xs[k]!])) }, sizes, data);
              return tf.addN(p.outputs.map((o) => tf.sum(tf.mul(tf.tensor(Array.from(dout[o]!), shape(o, sizes)), outs[o]!))));
            })(wrt.map((t) => tf.tensor(Array.from(inputs[t.name]!), shape(t.name, sizes))))
            .map((g) => g.dataSync().slice()),
        );
        for (const t of [...Object.values(fixed), ...Object.values(data)]) t.dispose();
        wrt.forEach((t, k) => {
          const want = theirs[k]!;
          let scale = 1e-6;
          for (const v of want) scale = Math.max(scale, Math.abs(v));
          for (const [which, got] of [
            ["naive", ours.naive.get(t.name)!],
            ["fused", ours.fused.get(t.name)!],
            ["naive kernel", kernels.naive[`d${t.name}`]!],
            ["fused kernel", kernels.fused[`d${t.name}`]!],
          ] as const)
            for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!), `${which} d${t.name}[${i}]: ${got[i]} vs tfjs ${want[i]}`).toBeLessThanOrEqual(2e-4 * scale);
        });
      }),
      { numRuns: 10 },
    );
  });
});
