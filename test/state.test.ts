/**
 * Training and inference (CONTRACT §4.5): running statistics and the inference backward.
 *
 * - batchnorm, instancenorm and groupnorm keep PyTorch's running statistics: checked step by step
 *   against the formulas computed here, independently of the spec (two-pass mean and variance);
 * - a spec written in Keras's convention trains for several steps beside TensorFlow.js's
 *   `tf.layers.batchNormalization`, and its inference output and dx match the layer's;
 * - the inference kernels against finite differences (harness.ts) and a hand-written inference
 *   batchnorm; the state is never written by forward, forwardInference or a backward kernel;
 * - updateState refuses a non-finite result (N = 1) and leaves the state as it was;
 * - every kind of mistake in the three fields, with its exact message.
 */
import { describe, expect, it, beforeAll, afterAll } from "vitest";
import fc from "fast-check";
import * as tf from "@tensorflow/tfjs";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as bn from "../generated/batchnorm.js";
import * as bn32 from "../generated/float32/batchnorm.js";
import * as inorm from "../generated/instancenorm.js";
import * as gnorm from "../generated/groupnorm.js";
import bnSpec from "../specs/batchnorm.spec.js";
import inSpec from "../specs/instancenorm.spec.js";
import gnSpec from "../specs/groupnorm.spec.js";
import { checkSpec, SpecError } from "../compiler/parse/check.js";
import { checkTraining } from "../compiler/parse/state.js";
import { compile } from "../compiler/driver.js";
import { prng } from "../compiler/ir/random.js";
import { addCount, checkModule, expectFewSkips, relErr, type FdCount, type Kernels, loadModule } from "./harness.js";

type Arrays = Record<string, Float64Array>;
const randoms = (n: number, rand: () => number, lo = -1, hi = 1) => Float64Array.from({ length: n }, () => lo + (hi - lo) * rand());
const copy = (s: Arrays): Arrays => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.slice()]));

/** Mean and unbiased variance of each row of a [rows, R] view, two-pass. */
function rowStats(x: Float64Array, rows: number, R: number, at: (row: number, r: number) => number): { mean: Float64Array; unbiased: Float64Array; biased: Float64Array } {
  const mean = new Float64Array(rows);
  const unbiased = new Float64Array(rows);
  const biased = new Float64Array(rows);
  for (let k = 0; k < rows; k++) {
    let s = 0;
    for (let r = 0; r < R; r++) s += x[at(k, r)]!;
    const m = s / R;
    let q = 0;
    for (let r = 0; r < R; r++) q += (x[at(k, r)]! - m) ** 2;
    mean[k] = m;
    biased[k] = q / R;
    unbiased[k] = q / (R - 1);
  }
  return { mean, unbiased, biased };
}

describe("PyTorch's running statistics (momentum 0.1, unbiased variance, initial mean 0 and variance 1)", () => {
  it("batchnorm: per feature over the batch", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 7 }), fc.integer({ min: 1, max: 5 }), fc.integer(), (N, D, seed) => {
        const rand = prng(seed);
        const state = bn.initState({ N, D });
        expect(state.running_mean).toEqual(new Float64Array(D));
        expect(state.running_var).toEqual(new Float64Array(D).fill(1));
        const want = { mean: new Float64Array(D), var: new Float64Array(D).fill(1) };
        for (let step = 0; step < 3; step++) {
          const x = randoms(N * D, rand, -3, 3);
          const { cache } = bn.forward({ x, gamma: randoms(D, rand), beta: randoms(D, rand) }, { N, D });
          expect(bn.updateState(state, cache)).toBe(state);
          const s = rowStats(x, D, N, (d, n) => n * D + d);
          for (let d = 0; d < D; d++) {
            want.mean[d] = 0.9 * want.mean[d]! + 0.1 * s.mean[d]!;
            want.var[d] = 0.9 * want.var[d]! + 0.1 * s.unbiased[d]!;
          }
          expect(relErr(state.running_mean, want.mean)).toBeLessThan(1e-13);
          expect(relErr(state.running_var, want.var)).toBeLessThan(1e-13);
        }
      }),
      { numRuns: 15 },
    );
  });

  // instance and group norm: each sample's statistics over the reduced extent, averaged over the batch
  const perSample = [
    { name: "instancenorm", mod: inorm, sizes: (B: number, K: number, R: number) => ({ B, C: K, S: R }), K: "C", extent: (s: Record<string, number>) => s["S"]! },
    { name: "groupnorm", mod: gnorm, sizes: (B: number, K: number, R: number) => ({ B, G: K, C: R, S: 2 }), K: "G", extent: (s: Record<string, number>) => s["C"]! * s["S"]! },
  ] as const;
  for (const layer of perSample)
    it(`${layer.name}: per ${layer.K === "C" ? "channel" : "group"}, the batch's mean of each sample's statistics`, () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 2, max: 4 }), fc.integer(), (B, K, r, seed) => {
          const rand = prng(seed);
          const sizes = layer.sizes(B, K, r);
          const R = layer.extent(sizes);
          const mod = layer.mod as unknown as { initState(s: object): Arrays; forward(i: Arrays, s: object): { cache: unknown }; updateState(s: Arrays, c: unknown): Arrays };
          const state = mod.initState(sizes);
          const want = { mean: new Float64Array(K), var: new Float64Array(K).fill(1) };
          const params = layer.name === "groupnorm" ? K * sizes.C! : K;
          for (let step = 0; step < 3; step++) {
            const x = randoms(B * K * R, rand, -2, 4);
            const { cache } = mod.forward({ x, gamma: randoms(params, rand), beta: randoms(params, rand) }, sizes);
            mod.updateState(state, cache);
            // x is [B, K, R] in memory: sample b's block k is contiguous
            const s = rowStats(x, B * K, R, (row, i) => row * R + i);
            for (let k = 0; k < K; k++) {
              let m = 0;
              let v = 0;
              for (let b = 0; b < B; b++) {
                m += s.mean[b * K + k]! / B;
                v += s.unbiased[b * K + k]! / B;
              }
              want.mean[k] = 0.9 * want.mean[k]! + 0.1 * m;
              want.var[k] = 0.9 * want.var[k]! + 0.1 * v;
            }
            expect(relErr(state["running_mean"]!, want.mean)).toBeLessThan(1e-13);
            expect(relErr(state["running_var"]!, want.var)).toBeLessThan(1e-13);
          }
        }),
        { numRuns: 10 },
      );
    });
});

describe("a training loop against TensorFlow.js's tf.layers.batchNormalization (Keras's convention)", () => {
  // Keras: moving = moving*momentum + batch*(1 - momentum), with the batch's biased variance (tf.moments,
  // tfjs-layers normalization.ts); momentum 0.99 and epsilon 1e-3 are its defaults
  const kerasSpec = {
    ...bnSpec,
    name: "bn_keras",
    constants: { eps: 1e-3, momentum: 0.99 },
    updates: ["running_mean[d] = momentum*running_mean[d] + (1 - momentum)*mu[d]", "running_var[d] = momentum*running_var[d] + (1 - momentum)*var[d]"],
  };
  type Module = typeof bn;
  let mod: Module;
  const work = mkdtempSync(join(tmpdir(), "backpass-state-"));
  beforeAll(async () => {
    await tf.setBackend("cpu");
    mod = await loadModule<Module>((await compile(kerasSpec, { format: false, doubleBackward: false })).code, join(work, "bn_keras.ts"));
  }, 60_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("five SGD steps: outputs and moving statistics agree at every step; then inference output and dx", () => {
    const N = 6;
    const D = 4;
    const rand = prng(2024);
    const f32 = (a: Float64Array) => a.map(Math.fround);
    const layer = tf.layers.batchNormalization({ axis: -1, momentum: 0.99, epsilon: 1e-3 });
    layer.build([null, D]);
    let gamma = f32(randoms(D, rand, 0.5, 1.5));
    let beta = f32(randoms(D, rand, -0.5, 0.5));
    const state = mod.initState({ N, D });
    const tensor = (a: Float64Array, shape: number[]) => tf.tensor(Float32Array.from(a), shape);
    for (let step = 0; step < 5; step++) {
      const [, , movingMean, movingVar] = layer.getWeights();
      layer.setWeights([tensor(gamma, [D]), tensor(beta, [D]), movingMean!, movingVar!]);
      const x = f32(randoms(N * D, rand, -2, 3).map((v, k) => v + (k % D)));
      const theirs = (layer.apply(tensor(x, [N, D]), { training: true }) as tf.Tensor).dataSync();
      const { out, cache } = mod.forward({ x, gamma, beta }, { N, D });
      expect(relErr(out, Float64Array.from(theirs))).toBeLessThan(2e-6);
      mod.updateState(state, cache);
      const w = layer.getWeights();
      expect(relErr(state.running_mean, Float64Array.from(w[2]!.dataSync())), `moving mean after step ${step + 1}`).toBeLessThan(2e-6);
      expect(relErr(state.running_var, Float64Array.from(w[3]!.dataSync())), `moving variance after step ${step + 1}`).toBeLessThan(2e-6);
      // an SGD step with the fused gradients of a random upstream
      const g = mod.backwardFused(randoms(N * D, rand), cache);
      gamma = f32(gamma.map((v, d) => v - 0.1 * g.dgamma[d]!));
      beta = f32(beta.map((v, d) => v - 0.1 * g.dbeta[d]!));
    }
    // inference: the layer's moving statistics against ours (just checked), its output and its dx
    const [, , movingMean, movingVar] = layer.getWeights();
    layer.setWeights([tensor(gamma, [D]), tensor(beta, [D]), movingMean!, movingVar!]);
    const x = f32(randoms(N * D, rand, -2, 3));
    const dout = f32(randoms(N * D, rand));
    const before = copy(state as unknown as Arrays);
    const { out, cache } = mod.forwardInference({ x, gamma, beta }, state, { N, D });
    const theirs = (layer.apply(tensor(x, [N, D]), { training: false }) as tf.Tensor).dataSync();
    expect(relErr(out, Float64Array.from(theirs))).toBeLessThan(2e-6);
    const dxTheirs = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(layer.apply(t, { training: false }) as tf.Tensor, tensor(dout, [N, D]))))(tensor(x, [N, D])).dataSync();
    for (const k of [mod.backwardInferenceNaive, mod.backwardInferenceFused]) expect(relErr(k(dout, cache).dx, Float64Array.from(dxTheirs))).toBeLessThan(2e-6);
    // the layer's statistics did not move in inference, and neither did ours
    expect(Float64Array.from(layer.getWeights()[2]!.dataSync())).toEqual(Float64Array.from(movingMean!.dataSync()));
    expect(state).toEqual(before);
  });
});

describe("batchnorm's inference kernels", () => {
  const p = checkSpec(bnSpec);
  const inference = checkTraining(bnSpec, p)!.inference;
  const buffers = ["running_mean", "running_var"];
  const split = (inputs: Arrays) => {
    const rest: Arrays = {};
    const state: Arrays = {};
    for (const [k, v] of Object.entries(inputs)) (buffers.includes(k) ? state : rest)[k] = v;
    return { rest, state };
  };
  // the inference graph as a module of its own: its state buffers are its nograd inputs
  const kernels: Kernels = {
    forward: (inputs, sizes, constants) => {
      const { rest, state } = split(inputs as Arrays);
      return bn.forwardInference(rest as never, state as never, sizes as never, constants) as never;
    },
    backwardNaive: (dout, cache) => bn.backwardInferenceNaive(dout as Float64Array, cache as never) as never,
    backwardFused: (dout, cache) => bn.backwardInferenceFused(dout as Float64Array, cache as never) as never,
  };

  it("agree with finite differences and with a hand-written inference batchnorm; the state is never written", () => {
    const count: FdCount = { judged: 0, skipped: 0 };
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 }), fc.integer(), (N, D, seed) => {
        const rand = prng(seed);
        const eps = 1e-5;
        const inputs = { x: randoms(N * D, rand, -3, 3), gamma: randoms(D, rand, 0.5, 1.5), beta: randoms(D, rand), running_mean: randoms(D, rand), running_var: randoms(D, rand, 0.1, 2) };
        addCount(count, checkModule(kernels, inference, { N, D }, inputs, rand));
        // y = gamma*(x - running_mean)/sqrt(running_var + eps) + beta, and its gradients, by hand
        const { rest, state } = split(inputs);
        const before = copy(state);
        const { out, cache } = bn.forwardInference(rest as never, state as never, { N, D });
        const dout = randoms(N * D, rand);
        const want = { out: new Float64Array(N * D), dx: new Float64Array(N * D), dgamma: new Float64Array(D), dbeta: new Float64Array(D) };
        for (let n = 0; n < N; n++)
          for (let d = 0; d < D; d++) {
            const k = n * D + d;
            const inv = 1 / Math.sqrt(inputs.running_var[d]! + eps);
            const xhat = (inputs.x[k]! - inputs.running_mean[d]!) * inv;
            want.out[k] = inputs.gamma[d]! * xhat + inputs.beta[d]!;
            want.dx[k] = dout[k]! * inputs.gamma[d]! * inv;
            want.dgamma[d] = want.dgamma[d]! + dout[k]! * xhat;
            want.dbeta[d] = want.dbeta[d]! + dout[k]!;
          }
        expect(relErr(out, want.out)).toBeLessThan(1e-13);
        for (const k of [bn.backwardInferenceNaive, bn.backwardInferenceFused]) {
          const g = k(dout, cache);
          expect(relErr(g.dx, want.dx)).toBeLessThan(1e-13);
          expect(relErr(g.dgamma, want.dgamma)).toBeLessThan(1e-13);
          expect(relErr(g.dbeta, want.dbeta)).toBeLessThan(1e-13);
          expect(Object.keys(g).sort()).toEqual(["dbeta", "dgamma", "dx"]);
        }
        // the training kernels never see the state; the inference ones only read it
        const t = bn.forward(rest as never, { N, D });
        bn.backwardNaive(dout, t.cache);
        bn.backwardFused(dout, t.cache);
        expect(state).toEqual(before);
      }),
      { numRuns: 20 },
    );
    expectFewSkips(count, "batchnorm inference");
  });

  it("float32: the same kernels on Float32Arrays, within float32 rounding of float64", () => {
    const rand = prng(11);
    const [N, D] = [5, 3];
    const f32 = (a: Float64Array) => Float32Array.from(a);
    const x = randoms(N * D, rand, -3, 3);
    const gamma = randoms(D, rand, 0.5, 1.5);
    const beta = randoms(D, rand);
    const dout = randoms(N * D, rand);
    const s64 = bn.initState({ N, D });
    const s32 = bn32.initState({ N, D });
    expect(s32.running_var).toBeInstanceOf(Float32Array);
    for (let step = 0; step < 2; step++) {
      bn.updateState(s64, bn.forward({ x, gamma, beta }, { N, D }).cache);
      bn32.updateState(s32, bn32.forward({ x: f32(x), gamma: f32(gamma), beta: f32(beta) }, { N, D }).cache);
    }
    expect(relErr(Float64Array.from(s32.running_var), s64.running_var)).toBeLessThan(1e-6);
    const a = bn.forwardInference({ x, gamma, beta }, s64, { N, D });
    const b = bn32.forwardInference({ x: f32(x), gamma: f32(gamma), beta: f32(beta) }, s32, { N, D });
    expect(relErr(Float64Array.from(b.out), a.out)).toBeLessThan(1e-6);
    const ga = bn.backwardInferenceFused(dout, a.cache);
    const gb = bn32.backwardInferenceFused(f32(dout), b.cache);
    for (const k of ["dx", "dgamma", "dbeta"] as const) expect(relErr(Float64Array.from(gb[k]), ga[k])).toBeLessThan(1e-6);
  });

  it("the fused kernel is one pass with no reduction into a temporary (docs/batchnorm.md, written from explain and stats)", () => {
    const doc = readFileSync(join(import.meta.dirname, "../docs/batchnorm.md"), "utf8");
    const section = doc.slice(doc.indexOf("## Inference: the backward of the inference graph"));
    expect(section.length).toBeLessThan(doc.length);
    expect(section).toContain("dx[n,d] = dout[n,d]*gamma[d]*ivar[d]");
    // dx, dgamma and dbeta in one pass over the data: the two reductions accumulate beside dx
    expect(section).toMatch(/\| `backwardInferenceFused` \| 1 \| 1 \| 2 \(0 into temporaries\) \| 0 \(0 of size \[N,D\]\) \|/);
  });
});

describe("instancenorm's and groupnorm's inference kernels", () => {
  for (const [name, mod, spec] of [
    ["instancenorm", inorm, inSpec],
    ["groupnorm", gnorm, gnSpec],
  ] as const)
    it(`${name}: against finite differences, naive against fused`, () => {
      const inference = checkTraining(spec, checkSpec(spec))!.inference;
      const m = mod as unknown as { forwardInference: (...a: unknown[]) => never; backwardInferenceNaive: (...a: unknown[]) => never; backwardInferenceFused: (...a: unknown[]) => never };
      const kernels: Kernels = {
        forward: (inputs, sizes, constants) => {
          const { running_mean, running_var, ...rest } = inputs as Arrays;
          return m.forwardInference(rest, { running_mean, running_var }, sizes, constants);
        },
        backwardNaive: (dout, cache) => m.backwardInferenceNaive(dout, cache),
        backwardFused: (dout, cache) => m.backwardInferenceFused(dout, cache),
      };
      const count: FdCount = { judged: 0, skipped: 0 };
      fc.assert(
        fc.property(fc.tuple(...inference.sizes.map(() => fc.integer({ min: 1, max: 3 }))), fc.integer(), (dims, seed) => {
          const rand = prng(seed);
          const sizes = Object.fromEntries(inference.sizes.map((s, k) => [s, dims[k]!]));
          const len = (t: string) => inference.inputs.find((x) => x.name === t)!.indices.reduce((a, i) => a * sizes[inference.letters[i]!]!, 1);
          const inputs = Object.fromEntries(inference.inputs.map((t) => [t.name, randoms(len(t.name), rand, t.name === "running_var" ? 0.1 : -1, t.name === "running_var" ? 2 : 1)]));
          addCount(count, checkModule(kernels, inference, sizes, inputs, rand));
        }),
        { numRuns: 10 },
      );
      expectFewSkips(count, `${name} inference`);
    });
});

describe("updateState's guards", () => {
  it("a non-finite new value (the unbiased variance at N = 1) is a RangeError that says why, and the state is unchanged", () => {
    for (const mod of [bn, bn32] as unknown as (typeof bn)[]) {
      const A = mod === bn ? Float64Array : Float32Array;
      const state = mod.initState({ N: 1, D: 3 });
      const before = copy(state as unknown as Arrays);
      const { cache } = mod.forward({ x: A.from([1, 2, 3]), gamma: A.from([1, 1, 1]), beta: A.from([0, 0, 0]) } as never, { N: 1, D: 3 });
      expect(() => mod.updateState(state, cache)).toThrow(
        new RangeError("batchnorm: updateState: the new running_var[0] would be NaN: the update divides by N - 1, which is 0 at N = 1, D = 3; the state is left unchanged"),
      );
      expect(state).toEqual(before);
    }
    const state = inorm.initState({ B: 2, C: 2, S: 1 });
    const { cache } = inorm.forward({ x: randoms(4, prng(1)), gamma: randoms(2, prng(2)), beta: randoms(2, prng(3)) }, { B: 2, C: 2, S: 1 });
    expect(() => inorm.updateState(state, cache)).toThrow(/running_var\[0\] would be NaN: the update divides by S - 1, which is 0 at B = 2, C = 2, S = 1/);
  });

  it("a non-finite value read is named as the reason; bad state arrays and foreign caches are refused", () => {
    const state = bn.initState({ N: 2, D: 2 });
    const { cache } = bn.forward({ x: Float64Array.from([1, Infinity, 3, 4]), gamma: Float64Array.from([1, 1]), beta: Float64Array.from([0, 0]) }, { N: 2, D: 2 });
    expect(() => bn.updateState(state, cache)).toThrow(/the new running_mean\[1\] would be Infinity: a value the update reads is not finite, or the result overflows \(N = 2, D = 2\)/);
    expect(state.running_mean).toEqual(new Float64Array(2));
    const good = bn.forward({ x: Float64Array.from([1, 2, 3, 4]), gamma: Float64Array.from([1, 1]), beta: Float64Array.from([0, 0]) }, { N: 2, D: 2 });
    expect(() => bn.updateState({ running_mean: new Float64Array(3), running_var: new Float64Array(2) }, good.cache)).toThrow("batchnorm: state.running_mean has length 3, expected 2");
    expect(() => bn.updateState({ running_mean: new Float64Array(2) } as never, good.cache)).toThrow("batchnorm: state.running_var must be a Float64Array");
    expect(() => bn.updateState(state, { ...good.cache, spec: "other" } as never)).toThrow("batchnorm: the cache was not made by this module's forward()");
    expect(() => bn.updateState({ running_mean: good.cache.values.mu, running_var: new Float64Array(2) }, good.cache)).toThrow(/state\.running_mean shares memory with cache\.values\.mu/);
    expect(() => bn.updateState(state, good.cache, { momentum: NaN })).toThrow("batchnorm: constants.momentum must be a finite number, got NaN");
    // outputs given in `into` that share memory with what a kernel reads are refused, as in the other kernels
    const inf = bn.forwardInference({ x: Float64Array.from([1, 2, 3, 4]), gamma: Float64Array.from([1, 1]), beta: Float64Array.from([0, 0]) }, bn.initState({ N: 2, D: 2 }), { N: 2, D: 2 });
    const dout = Float64Array.from([1, 2, 3, 4]);
    expect(() => bn.backwardInferenceFused(dout, inf.cache, { dx: dout })).toThrow("batchnorm: into.dx shares memory with dout; the kernel never writes its arguments");
    expect(() => bn.backwardInferenceNaive(dout, inf.cache, { dgamma: inf.cache.values.running_var as Float64Array })).toThrow(
      "batchnorm: into.dgamma shares memory with cache.values.running_var; the kernel never writes its arguments",
    );
    const st = bn.initState({ N: 2, D: 2 });
    expect(() => bn.forwardInference({ x: new Float64Array(4), gamma: new Float64Array(2), beta: new Float64Array(2) }, st, { N: 2, D: 2 }, undefined, { mu: st.running_mean })).toThrow(
      "batchnorm: into.mu shares memory with state.running_mean; the kernel never writes its arguments",
    );
    expect(() => bn.initState({ N: 2, D: 0 })).toThrow("batchnorm: sizes.D must be a positive integer, got 0");
    // a constant given overrides the one the cache was made with
    const s1 = bn.updateState(bn.initState({ N: 2, D: 2 }), good.cache, { momentum: 1 });
    expect(s1.running_mean).toEqual(good.cache.values.mu);
    // inference kernels take inference caches only, and forwardInference checks its state
    expect(() => bn.backwardInferenceFused(new Float64Array(4), good.cache as never)).toThrow("batchnorm: the cache was not made by this module's forwardInference()");
    expect(() => bn.forwardInference({ x: new Float64Array(4), gamma: new Float64Array(2), beta: new Float64Array(2) }, { running_mean: new Float64Array(2) } as never, { N: 2, D: 2 })).toThrow(
      "batchnorm: state.running_var must be a Float64Array",
    );
  });
});

describe("spec errors in state, updates and inference", () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ["a field that is not a list", { state: "running_mean[d] = 0" }, `state: must be a list of strings like ["running_mean[d] = 0", "running_var[d] = 1"]`],
    ["a state name already taken", { state: ["mu[d] = 0"] }, "state[0]: 'mu' is already a step; a state buffer needs a name of its own"],
    ["an unknown index", { state: ["r[k] = 0"] }, "state[0]: 'r[k] = 0': unknown index 'k' (declared: n, d)"],
    ["an initial value that is not a number", { state: ["r[d] = eps"] }, "state[0]: 'r[d] = eps': an initial value must be a number or an expression of numbers, like 0 or 1/2; 'eps' is not one"],
    ["no initial value", { state: ["r[d]"] }, "state[0]: 'r[d]' must have the form 'name[indices] = initial value', like \"running_mean[d] = 0\""],
    ["an update of a name that is not state", { updates: ["mu[d] = 0"] }, "updates[0]: 'mu' is not a state buffer (declared in state: running_mean, running_var); an update's left side names one"],
    ["an update with other indices", { updates: ["running_mean[n] = 0"] }, "updates[0]: 'running_mean[n] = 0': the left side must be running_mean[d], with the indices the state declares"],
    ["an update of a buffer twice", { updates: ["running_mean[d] = 0", "running_mean[d] = 1"] }, "updates[1]: 'running_mean' is updated twice"],
    ["an update reading an unknown name", { updates: ["running_mean[d] = muu[d]"] }, "updates[0]: 'running_mean[d] = muu[d]': unknown name 'muu' (not an input, step, constant or size symbol)"],
    ["an update with a free index", { updates: ["running_mean[d] = x[n,d]"] }, "updates[0]: 'running_mean[d] = x[n,d]': index 'n' is free on the right but not on the left; sum over it or add it to the left"],
    ["an inference entry for a name that is not a step", { inference: ["running_mean[d] = 0"] }, "inference[0]: 'running_mean' is not a step (it is a state buffer; updates change state buffers); an inference entry replaces a step of the spec"],
    ["an inference entry with other indices", { inference: ["xmu[d,n] = 0"] }, "inference[0]: 'xmu[d,n] = 0': the left side must be xmu[n,d], with the indices of the step it replaces"],
    ["too many entries", { state: Array.from({ length: 1001 }, (_, k) => `r${k}[d] = 0`) }, "state: 1001 entries; the limit is 1000, as for steps"],
    ["a step replaced twice", { inference: ["mu[d] = 0", "mu[d] = 1"] }, "inference[1]: step 'mu' is replaced twice"],
    ["a replacement reading a later step by name", { inference: ["mu[d] = ivar[d]"] }, "inference[0]: 'mu[d] = ivar[d]': 'ivar' is used before its definition in step 6"],
    ["a replacement with a wrong shape", { inference: ["mu[d] = running_mean[d,d]"] }, "inference[0]: 'mu[d] = running_mean[d,d]': 'running_mean' has 1 index, written here with 2; write it as running_mean[d]"],
  ];
  for (const [what, change, message] of cases)
    it(what, () => {
      const spec = { ...bnSpec, ...change };
      let error: unknown;
      try {
        checkTraining(spec, checkSpec(spec));
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SpecError);
      expect((error as SpecError).message).toBe(message);
    });

  it("the problems of updates and inference are reported at once", () => {
    const spec = { ...bnSpec, updates: ["running_mean[d] = mu[n]"], inference: ["mu[d] = rmm[d]"] };
    expect(() => checkTraining(spec, checkSpec(spec))).toThrow(
      new SpecError([
        { where: { field: "updates[0]" }, message: "'running_mean[d] = mu[n]': index 'n' has size N, but dimension 1 of 'mu' has size D" },
        { where: { field: "inference[0]" }, message: "'mu[d] = rmm[d]': unknown name 'rmm' (not an input, step, constant or size symbol)" },
      ]).message,
    );
  });

  it("a spec without the fields has no training, and its module none of the five exports", async () => {
    const { state, updates, inference, ...plain } = bnSpec;
    void [state, updates, inference];
    expect(checkTraining(plain, checkSpec(plain))).toBeUndefined();
    const layernorm = await import("../generated/layernorm.js");
    expect(Object.keys(layernorm).filter((k) => /State|Inference/.test(k))).toEqual([]);
  });
});
