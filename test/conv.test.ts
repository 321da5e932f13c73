/**
 * Convolution and pooling (issue 14; CONTRACT §4.3 affine indices, §4.1 max): the library's conv1d,
 * conv2d (stride 2, padding 1), depthwise_conv2d, dilated_conv1d, avgpool2d, maxpool2d and
 * conv_bn_relu against TensorFlow.js's own ops and autodiff (NHWC: the specs are NCHW, so tfjs's
 * side transposes), at random shapes with kernel size 1, a single output position and windows that
 * are mostly padding; a spec with padding wider than its input; max pooling's ties split evenly
 * (finite differences cannot judge a tie); and the computed extents' run-time checks. Finite
 * differences of every spec run in specs.test.ts.
 */
import { beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { checkSpec, SpecError } from "../compiler/parse/check.js";
import { compile } from "../compiler/driver.js";
import { prng } from "../compiler/ir/random.js";
import { withDerived } from "../compiler/ir/sizes.js";
import type { Kernels } from "./harness.js";
import { againstTfjs } from "./against-tfjs.js";
import type { Program } from "../compiler/ir/program.js";
import { loadModule, generatedModule } from "./harness.js";

type T = tf.Tensor;
type Sizes = Record<string, number>;

/** NCHW <-> NHWC, and OIHW weights as tfjs's [kh, kw, in, out]. */
const nhwc = (x: T) => tf.transpose(x, [0, 2, 3, 1]);
const nchw = (x: T) => tf.transpose(x, [0, 3, 1, 2]);
const ncl2nlc = (x: T) => tf.transpose(x, [0, 2, 1]);
/**
 * tfjs's conv1d in NCL with zero padding `pad` and dilation `d`. tfjs 4 fails on a numeric conv1d
 * padding and has no gradient for dilation, so the input is padded with `tf.pad` and a dilated
 * filter is the filter with zeros put between its taps (both differentiable tfjs ops).
 */
function conv1d(x: T, w: T, pad: number, d = 1): T {
  const [O, C, K] = w.shape as [number, number, number];
  let f = tf.transpose(w, [2, 1, 0]); // [K, C, O]
  if (d > 1) f = tf.slice(tf.reshape(tf.stack([f, ...Array.from({ length: d - 1 }, () => tf.zerosLike(f))], 1), [K * d, C, O]), 0, (K - 1) * d + 1);
  const xp = tf.pad(ncl2nlc(x), [[0, 0], [pad, pad], [0, 0]]);
  return ncl2nlc(tf.conv1d(xp as tf.Tensor3D, f as tf.Tensor3D, 1, "valid"));
}

interface Case {
  /** The layer in tfjs ops on the spec's layouts, inputs in the spec's order. */
  readonly f: (s: Sizes) => (...xs: T[]) => T;
  readonly shapes: (s: Sizes) => number[][];
  /** Random caller sizes: small, kernel size 1 included, extents may come out 1 (one output position). */
  readonly sizes: fc.Arbitrary<Sizes>;
}

const small = (max: number) => fc.integer({ min: 1, max });

const CASES: Record<string, Case> = {
  conv1d: {
    f: () => (x, w, b) => tf.add(conv1d(x!, w!, 1), tf.reshape(b!, [1, -1, 1])),
    shapes: ({ N, C, O, L, K }) => [[N!, C!, L!], [O!, C!, K!], [O!]],
    sizes: fc.record({ N: small(2), C: small(3), O: small(3), L: small(5), K: fc.constantFrom(1, 3) }),
  },
  dilated_conv1d: {
    f: () => (x, w) => conv1d(x!, w!, 0, 2),
    shapes: ({ N, C, O, L, K }) => [[N!, C!, L!], [O!, C!, K!]],
    sizes: fc.record({ N: small(2), C: small(3), O: small(3), L: fc.integer({ min: 5, max: 8 }), K: fc.constantFrom(1, 2, 3) }),
  },
  conv2d: {
    f: () => (x, w, b) => tf.add(nchw(tf.conv2d(nhwc(x!) as tf.Tensor4D, tf.transpose(w!, [2, 3, 1, 0]) as tf.Tensor4D, 2, 1)), tf.reshape(b!, [1, -1, 1, 1])),
    shapes: ({ N, C, O, H, W, K }) => [[N!, C!, H!, W!], [O!, C!, K!, K!], [O!]],
    sizes: fc.record({ N: small(2), C: small(2), O: small(2), H: small(5), W: small(5), K: fc.constantFrom(1, 3) }),
  },
  depthwise_conv2d: {
    f: () => (x, w) => nchw(tf.depthwiseConv2d(nhwc(x!) as tf.Tensor4D, tf.expandDims(tf.transpose(w!, [1, 2, 0]), 3) as tf.Tensor4D, 1, 1)),
    shapes: ({ N, C, H, W, K }) => [[N!, C!, H!, W!], [C!, K!, K!]],
    sizes: fc.record({ N: small(2), C: small(3), H: small(4), W: small(4), K: fc.constantFrom(1, 3) }),
  },
  avgpool2d: {
    f: () => (x) => nchw(tf.avgPool(nhwc(x!) as tf.Tensor4D, 2, 2, "valid")),
    shapes: ({ N, C, H, W }) => [[N!, C!, H!, W!]],
    sizes: fc.record({ N: small(2), C: small(2), H: fc.integer({ min: 2, max: 5 }), W: fc.integer({ min: 2, max: 5 }) }),
  },
  maxpool2d: {
    f: () => (x) => nchw(tf.maxPool(nhwc(x!) as tf.Tensor4D, 2, 2, "valid")),
    shapes: ({ N, C, H, W }) => [[N!, C!, H!, W!]],
    sizes: fc.record({ N: small(2), C: small(2), H: fc.integer({ min: 2, max: 5 }), W: fc.integer({ min: 2, max: 5 }) }),
  },
  conv_bn_relu: {
    f: () => (x, w, gamma, beta) => {
      const z = tf.conv2d(nhwc(x!) as tf.Tensor4D, tf.transpose(w!, [2, 3, 1, 0]) as tf.Tensor4D, 1, 1);
      const { mean, variance } = tf.moments(z, [0, 1, 2]);
      return nchw(tf.relu(tf.add(tf.mul(gamma!, tf.div(tf.sub(z, mean), tf.sqrt(tf.add(variance, 1e-5)))), beta!)));
    },
    shapes: ({ N, C, O, H, W, K }) => [[N!, C!, H!, W!], [O!, C!, K!, K!], [O!], [O!]],
    sizes: fc.record({ N: small(2), C: small(2), O: small(2), H: fc.integer({ min: 2, max: 4 }), W: fc.integer({ min: 2, max: 4 }), K: fc.constantFrom(1, 3) }),
  },
};

beforeAll(async () => {
  await tf.setBackend("cpu");
});

/** Forward and both kernels of `mod` against tfjs's gradients of the case's forward, at float32 tolerance. */
function checkCase(p: Program, mod: Kernels, c: Case, base: Sizes, seed: number): void {
  const sizes = withDerived(p, base);
  againstTfjs(p, mod, { f: c.f(sizes) as (...xs: T[]) => T, shapes: c.shapes(sizes) }, sizes, prng(seed), { callSizes: base, forward: true, label: `sizes ${JSON.stringify(base)}` });
}

describe.each(Object.keys(CASES))("%s against TensorFlow.js (float32)", (name) => {
  it("forward and both backward kernels match tfjs", async () => {
    const p = checkSpec((await import(join(import.meta.dirname, `../specs/${name}.spec.ts`))).default);
    const mod = (await generatedModule(name)) as unknown as Kernels;
    const c = CASES[name]!;
    fc.assert(
      fc.property(c.sizes, fc.integer(), (base, seed) => {
        fc.pre(Object.values(withDerived(p, base)).every((v) => v >= 1));
        checkCase(p, mod, c, base, seed);
      }),
      { numRuns: 12 },
    );
  });
});

describe("affine indices at the edges", () => {
  it("padding wider than the input: every output position reads mostly zeros, and their gradients are dropped", async () => {
    const spec = {
      name: "conv1d_pad3",
      indices: { n: "N", c: "C", o: "O", l: "L", k: "K", i: "L - K + 7" },
      inputs: ["x[n,c,l]", "w[o,c,k]"],
      steps: ["y[n,o,i] = sum(w[o,c,k] * x[n,c,i + k - 3], c, k)"],
      output: "y",
    };
    const dir = mkdtempSync(join(tmpdir(), "backpass-conv-"));
    try {
      const mod = await loadModule<Kernels>((await compile(spec, { format: false, doubleBackward: false })).code, join(dir, "conv1d_pad3.ts"));
      const p = checkSpec(spec);
      const c: Case = {
        f: () => (x, w) => conv1d(x!, w!, 3),
        shapes: ({ N, C, O, L, K }) => [[N!, C!, L!], [O!, C!, K!]],
        sizes: fc.constant({}),
      };
      // L = 1 and 2 under padding 3, kernel sizes 1 to 3
      for (const [L, K, seed] of [[1, 1, 1], [1, 3, 2], [2, 3, 3], [2, 2, 4]] as const) checkCase(p, mod, c, { N: 2, C: 2, O: 3, L, K }, seed);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("one scatter of a hoisted closed form is a rule, not a layer: a 1-D convolution into a batchnorm written afresh gets it, and both kernels match tfjs", async () => {
    const spec = {
      name: "conv1d_norm",
      indices: { n: "N", c: "C", o: "O", l: "L", k: "K", i: "L - K + 3" },
      inputs: ["x[n,c,l]", "w[o,c,k]", "g[o]"],
      constants: { eps: 1e-5 },
      steps: ["a[n,o,i] = sum(w[o,c,k] * x[n,c,i + k - 1], c, k)", "m[o] = mean(a[n,o,i], n, i)", "v[o] = mean((a[n,o,i] - m[o])^2, n, i)", "y[n,o,i] = g[o] * (a[n,o,i] - m[o]) / sqrt(v[o] + eps)"],
      output: "y",
    };
    const built = await compile(spec, { doubleBackward: false, format: false });
    const f = built.stats.fused;
    // dx and dw in one nest over the activation and the taps, the adjoint of a never stored
    expect(f.detail.filter((ps) => ps.computes.includes("dx")).map((ps) => [ps.loops.join(","), ps.computes.join(",")])).toEqual([["N,O,I,C,K", "dx,dw"]]);
    expect(f.detail.filter((ps) => ps.computes.some((c) => c.startsWith("da "))).map((ps) => ps.loops.join(","))).toEqual(["N,O,I"]);
    expect(f.temporaries.filter((t) => t.shape.join(",") === "N,O,I")).toEqual([]);
    expect(built.stats.naive.temporaries.filter((t) => t.shape.join(",") === "N,O,I").length).toBeGreaterThan(1);
    const dir = mkdtempSync(join(tmpdir(), "backpass-conv-"));
    try {
      const mod = await loadModule<Kernels>(built.code, join(dir, "conv1d_norm.ts"));
      const p = checkSpec(spec);
      const c: Case = {
        f: () => (x, w, g) => {
          const a = conv1d(x!, w!, 1);
          const { mean, variance } = tf.moments(a, [0, 2], true);
          return tf.mul(tf.reshape(g!, [1, -1, 1]), tf.div(tf.sub(a, mean), tf.sqrt(tf.add(variance, 1e-5))));
        },
        shapes: ({ N, C, O, L, K }) => [[N!, C!, L!], [O!, C!, K!], [O!]],
        sizes: fc.constant({}),
      };
      // one sample, one position, kernel sizes 1 and 3
      for (const [N, L, K, seed] of [[1, 4, 3, 1], [2, 1, 1, 2], [3, 5, 3, 3], [2, 2, 3, 4]] as const) checkCase(p, mod, c, { N, C: 2, O: 3, L, K }, seed);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("max pooling splits the gradient evenly among tied maxima (CONTRACT §4.1)", async () => {
    const mod = (await generatedModule("maxpool2d")) as unknown as Kernels;
    // one 2x2 window with values [1, 3; 3, 2] and one with all four equal, then a trailing odd row
    const x = Float64Array.from([1, 3, 5, 5, 3, 2, 5, 5, 9, 9, 9, 9]);
    const sizes = { N: 1, C: 1, H: 3, W: 4 };
    const { y, cache } = mod.forward({ x }, sizes) as { y: Float64Array; cache: unknown };
    expect(Array.from(y)).toEqual([3, 5]);
    for (const kernel of [mod.backwardNaive, mod.backwardFused]) {
      const { dx } = kernel(Float64Array.from([2, 8]), cache);
      expect(Array.from(dx!)).toEqual([0, 1, 2, 2, 1, 0, 2, 2, 0, 0, 0, 0]);
    }
  });

  it("a malformed affine index or extent is a spec error naming what and where", async () => {
    const base = { name: "bad", indices: { n: "N", l: "L", k: "K", i: "L - K + 1" }, inputs: ["x[n,l]", "w[k]"], output: "y" };
    const refuse = async (spec: object, message: RegExp) => {
      const e = await compile(spec).then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e, JSON.stringify(spec)).toBeInstanceOf(SpecError);
      expect((e as SpecError).message).toMatch(message);
    };
    await refuse({ ...base, steps: ["y[n,i] = sum(w[k] * x[n, i + 1.5*k], k)"] }, /step 1 .*an index expression takes integer literals and index letters, like 2\*i \+ k - 1; found '1\.5'/);
    await refuse({ ...base, steps: ["y[n,i] = sum(w[k] * x[n, i + z], k)"] }, /step 1 .*unknown index 'z'/);
    await refuse({ ...base, steps: ["y[n,i] = x[n, i + k]"] }, /step 1 .*index 'k' is free on the right but not on the left/);
    await refuse({ ...base, steps: ["y[n, i + 1] = x[n, i]"] }, /step 1 .*declares a tensor: its index positions hold letters only, not 'i \+ 1'/);
    await refuse({ ...base, indices: { ...base.indices, i: "L ^ 2" }, steps: ["y[n,i] = x[n,i]"] }, /^indices: the size of 'i', "L \^ 2", has '\^'/);
    await refuse({ ...base, indices: { ...base.indices, i: "L / 0" }, steps: ["y[n,i] = x[n,i]"] }, /^indices: the size of 'i', "L \/ 0", divides by zero/);
    await refuse({ ...base, indices: { ...base.indices, i: "sqrt(L)" }, steps: ["y[n,i] = x[n,i]"] }, /^indices: the size of 'i', "sqrt\(L\)", calls 'sqrt'/);
  });

  it("a computed extent that is not positive is a RangeError naming the index and its expression", async () => {
    const mod = (await generatedModule("dilated_conv1d")) as unknown as Kernels;
    const x = new Float64Array(1 * 1 * 3);
    const w = new Float64Array(1 * 1 * 3);
    // L - 2*K + 2 = 3 - 6 + 2 = -1
    expect(() => mod.forward({ x, w }, { N: 1, C: 1, O: 1, L: 3, K: 3 })).toThrow(/^dilated_conv1d: the extent of index i, L - 2\*K \+ 2, is -1 for these sizes; it must be a positive integer$/);
  });
});
