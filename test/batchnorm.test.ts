/**
 * The generated batchnorm kernels: naive against fused, both against finite differences, and both
 * against TensorFlow.js's autodiff of the same layer (an implementation no one here wrote).
 */
import { describe, expect, it, beforeAll } from "vitest";
import fc from "fast-check";
import * as tf from "@tensorflow/tfjs";
import * as bn from "../generated/batchnorm.js";
import spec from "../specs/batchnorm.spec.js";
import { checkSpec } from "../compiler/parse/check.js";
import { addCount, checkModule, expectFewSkips, relErr, type FdCount, type Kernels } from "./harness.js";
import { prng } from "../compiler/ir/random.js";

const program = checkSpec(spec);
const mod = bn as unknown as Kernels;

type Kind = "normal" | "constant-column" | "large-mean" | "tiny";

function makeInputs(N: number, D: number, kind: Kind, rand: () => number): Record<string, Float64Array> {
  const x = new Float64Array(N * D);
  for (let n = 0; n < N; n++)
    for (let d = 0; d < D; d++) {
      const u = rand() * 2 - 1;
      x[n * D + d] = kind === "large-mean" ? 1e4 + 1e-2 * u : kind === "tiny" ? 1e-3 * u : 3 * u + d;
    }
  if (kind === "constant-column") for (let n = 0; n < N; n++) x[n * D] = 2.5;
  const gamma = Float64Array.from({ length: D }, () => 0.5 + rand());
  const beta = Float64Array.from({ length: D }, () => rand() - 0.5);
  return { x, gamma, beta };
}

describe("generated/batchnorm.ts", () => {
  it("exports the contract's functions", () => {
    expect(typeof bn.forward).toBe("function");
    expect(typeof bn.backwardNaive).toBe("function");
    expect(typeof bn.backwardFused).toBe("function");
  });

  it("agrees with finite differences, and fused agrees with naive, on random shapes and awkward data", () => {
    const count: FdCount = { judged: 0, skipped: 0 };
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 7 }),
        fc.constantFrom<Kind>("normal", "constant-column", "large-mean", "tiny"),
        fc.integer(),
        (N, D, kind, seed) => {
          const rand = prng(seed);
          const inputs = makeInputs(N, D, kind, rand);
          if (kind !== "large-mean") {
            addCount(count, checkModule(mod, program, { N, D }, inputs, rand));
            return;
          }
          // mean/std = 1e6: x - mu keeps ~10 of 16 digits in any float64 algorithm, so finite differences
          // cannot resolve the layer there. Batchnorm is shift-invariant: the gradients at x must equal
          // those at the centred x - 1e4, which are checked against finite differences.
          const centred = { ...inputs, x: inputs.x!.map((v) => v - 1e4) };
          addCount(count, checkModule(mod, program, { N, D }, centred, rand));
          const dout = Float64Array.from({ length: N * D }, () => rand() * 2 - 1);
          const far = bn.backwardFused(dout, bn.forward(inputs as never, { N, D }).cache);
          const near = bn.backwardNaive(dout, bn.forward(centred as never, { N, D }).cache);
          const farNaive = bn.backwardNaive(dout, bn.forward(inputs as never, { N, D }).cache);
          const largest = Math.max(...near.dgamma.map(Math.abs), ...near.dbeta.map(Math.abs), ...near.dx.map(Math.abs));
          for (const g of ["dx", "dgamma", "dbeta"] as const) {
            expect(relErr(far[g], near[g], 1e-6 * largest)).toBeLessThan(1e-6);
            expect(relErr(far[g], farNaive[g], 1e-6 * largest)).toBeLessThan(1e-8);
          }
        },
      ),
      { numRuns: 150 },
    );
    expectFewSkips(count, "batchnorm");
  });

  it("N = 1 gives zero dx and dgamma, dbeta = dout", () => {
    const rand = prng(7);
    const inputs = makeInputs(1, 4, "normal", rand);
    const { cache } = bn.forward(inputs as never, { N: 1, D: 4 });
    const dout = Float64Array.from({ length: 4 }, () => rand());
    for (const k of [bn.backwardNaive, bn.backwardFused]) {
      const g = k(dout, cache);
      expect(Array.from(g.dx)).toEqual([0, 0, 0, 0]);
      expect(Array.from(g.dbeta)).toEqual(Array.from(dout));
      for (const v of g.dgamma) expect(v).toBe(0);
    }
  });
});

describe("against TensorFlow.js autodiff (float32)", () => {
  beforeAll(async () => {
    await tf.setBackend("cpu");
  });

  function tfGrads(N: number, D: number, inputs: Record<string, Float64Array>, dout: Float64Array, eps: number) {
    const f = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => {
      const mu = tf.mean(x, 0);
      const xmu = tf.sub(x, mu);
      const v = tf.mean(tf.square(xmu), 0);
      return tf.add(tf.mul(gamma, tf.div(xmu, tf.sqrt(tf.add(v, eps)))), beta);
    };
    const g = tf.grads(f as (...a: tf.Tensor[]) => tf.Tensor);
    const [dx, dgamma, dbeta] = g(
      [tf.tensor2d(Float32Array.from(inputs.x!), [N, D]), tf.tensor1d(Float32Array.from(inputs.gamma!)), tf.tensor1d(Float32Array.from(inputs.beta!))],
      tf.tensor2d(Float32Array.from(dout), [N, D]),
    );
    return { dx: Float64Array.from(dx!.dataSync()), dgamma: Float64Array.from(dgamma!.dataSync()), dbeta: Float64Array.from(dbeta!.dataSync()) };
  }

  it("both backward kernels match TensorFlow.js's gradients", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 12 }), fc.integer({ min: 1, max: 6 }), fc.integer(), (N, D, seed) => {
        const rand = prng(seed);
        const f32 = (a: Float64Array) => Float64Array.from(Float32Array.from(a));
        const raw = makeInputs(N, D, "normal", rand);
        const inputs = { x: f32(raw.x!), gamma: f32(raw.gamma!), beta: f32(raw.beta!) };
        const dout = f32(Float64Array.from({ length: N * D }, () => rand() * 2 - 1));
        const { cache } = bn.forward(inputs, { N, D });
        tf.engine().startScope();
        const want = tfGrads(N, D, inputs, dout, 1e-5);
        tf.engine().endScope();
        // dx is a difference of terms of size gamma*ivar*dout that can cancel almost exactly (N = 2
        // makes dx vanish): float32 error is relative to those terms, not to dx itself
        let terms = 0;
        for (let n = 0; n < N; n++)
          for (let d = 0; d < D; d++) terms = Math.max(terms, Math.abs(inputs.gamma[d]! * cache.values.ivar[d]! * dout[n * D + d]!));
        const dxScale = Float64Array.from([...want.dx, terms]);
        for (const k of [bn.backwardNaive, bn.backwardFused]) {
          const got = k(dout, cache);
          // float32 has 24 bits: a few ulps through ~10 operations
          expect(relErr(Float64Array.from([...got.dx, terms]), dxScale)).toBeLessThan(1e-4);
          expect(relErr(got.dgamma, want.dgamma)).toBeLessThan(1e-4);
          expect(relErr(got.dbeta, want.dbeta)).toBeLessThan(1e-4);
        }
      }),
      { numRuns: 25 },
    );
  });
});
