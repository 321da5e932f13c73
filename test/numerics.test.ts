/**
 * Numerics on adversarial data. The forward computes variance by the centred two-pass formula that
 * the specs state, so a mean of 1e8 costs nothing. Values near the limits of float64 give finite
 * outputs and gradients. Both backward kernels agree there, with rounding judged against the size
 * of the terms (harness.ts).
 */
import { compile } from "../compiler/driver.js";
import { verifyFused } from "../compiler/verify.js";
import { add, mul, num } from "../compiler/ir/expr.js";
import { describe, expect, it } from "vitest";
import * as bn from "../generated/batchnorm.js";
import { checkSpec } from "../compiler/parse/check.js";
import { prng } from "../compiler/ir/random.js";
import { gradientError, gradientNoise, lengthOf, type Kernels, generatedModule } from "./harness.js";

describe("variance is centred, as the spec writes it", () => {
  it("a mean of 1e8 with unit spread gives the variance of the spread", () => {
    const N = 64;
    const D = 3;
    const rand = prng(5);
    const u = Float64Array.from({ length: N * D }, () => Math.round((rand() * 2 - 1) * 1024) / 1024); // exact in binary
    const x = u.map((v) => 1e8 + v); // still exact: 1e8 + k/1024 fits in 53 bits
    const { cache } = bn.forward({ x, gamma: new Float64Array(D).fill(1), beta: new Float64Array(D) }, { N, D });
    for (let d = 0; d < D; d++) {
      let m = 0;
      for (let n = 0; n < N; n++) m += u[n * D + d]!;
      m /= N;
      let v = 0;
      for (let n = 0; n < N; n++) v += (u[n * D + d]! - m) ** 2;
      v /= N;
      // E[x^2] - E[x]^2 would be off by about 1e16 * 2^-52 = 2 here
      expect(Math.abs(cache.values.var[d]! - v) / v).toBeLessThan(1e-9);
    }
  });
});

type Case = { spec: string; mod: () => Promise<Kernels>; scale: number };
const LIMITS: Case[] = ["batchnorm", "layernorm", "rmsnorm", "softmax", "logsoftmax", "softmax_xent", "sigmoid", "tanh", "softplus", "swish", "l2normalize"].flatMap((spec) =>
  [1e100, 1e-100, 700].map((scale) => ({ spec, scale, mod: async () => (await generatedModule(spec)) as unknown as Kernels })),
);

describe("values near the limits of float64", () => {
  it.each(LIMITS.map((c) => [c.spec, c.scale, c] as const))("%s at scale %s: finite outputs, finite gradients, fused = naive", async (spec, scale, c) => {
    const p = checkSpec((await import(`../specs/${spec}.spec.ts`)).default);
    const mod = await c.mod();
    const rand = prng(11);
    const sizes = Object.fromEntries(p.sizes.map((s) => [s, 4]));
    // 1e100: the derivative of a normalization holds var^1.5, about x^3, which must stay below 1e308
    const inputs = Object.fromEntries(p.inputs.map((t, k) => [t.name, Float64Array.from({ length: lengthOf(p, t.name, sizes) }, () => (k === 0 ? scale : 1) * (rand() * 2 - 1))]));
    const { cache, ...outs } = mod.forward(inputs, sizes);
    const y = outs[p.output] as Float64Array;
    for (const v of y) expect(Number.isFinite(v)).toBe(true);
    const dout = Float64Array.from({ length: y.length }, () => rand() * 2 - 1);
    const naive = mod.backwardNaive(dout, cache);
    const fused = mod.backwardFused(dout, cache);
    const noise = gradientNoise(p, inputs, sizes, dout);
    let largest = 1e-300;
    for (const g of Object.values(naive)) for (const v of g) largest = Math.max(largest, Math.abs(v));
    for (const t of p.inputs) {
      for (const v of fused[`d${t.name}`]!) expect(Number.isFinite(v), `fused d${t.name}`).toBe(true);
      for (const v of naive[`d${t.name}`]!) expect(Number.isFinite(v), `naive d${t.name}`).toBe(true);
      expect(gradientError(fused[`d${t.name}`]!, naive[`d${t.name}`]!, largest, noise.get(t.name)!)).toBeLessThanOrEqual(1e-9);
    }
  });
});


describe("steps that are zero up to rounding", () => {
  // found by the fuzzer: sum(x - mean(x)) is 0 in exact arithmetic, so the fused gradients that go
  // through it are exactly 0, while the naive ones are the rounding noise of the forward values
  const norm = (rhs: string) => ({
    name: "zeroish",
    indices: { n: "N", d: "D" },
    inputs: ["x[n,d]", "gamma[d]"],
    steps: ["mu[d] = mean(x[n,d], n)", `xmu[n,d] = ${rhs}`, "r[d] = 1/sqrt(mean(xmu[n,d]^2, n) + 1e-5)", "y[n,d] = gamma[d] * xmu[n,d] * r[d]"],
    output: "y",
  });
  it.each(["sum(x[n,d] - mu[d], n)", "sum(x[n,d], n) - N*mu[d]"])("xmu = %s builds: the naive gradient's noise from the forward values is measured, not taken for a bug", async (rhs) => {
    const c = await compile(norm(rhs), { format: false, doubleBackward: false });
    // and a wrong fused gradient is still refused
    for (let k = 0; k < c.program.inputs.length; k++)
      expect(() => verifyFused(c.program, c.backward, { ...c.fused, gradients: c.fused.gradients.map((g, j) => (j === k ? mul(num(1.001), add(g, num(1e-3))) : g)) })).toThrow(/disagrees with the naive one/);
  });
});

describe("a reduction over an index its body does not use", () => {
  // found by the fuzzer: p = sum(a/z, f) is F*a/z; folding a/z back into p lost the factor F, and
  // the build ended in 'internal error' when verification caught the wrong fused dk
  it("p[i,j] = sum(a[i,j]/z[i], f) in attention builds: its fused gradients agree with the naive ones", async () => {
    const att = (await import("../specs/attention.spec.js")).default;
    const steps = att.steps.map((s: string) => (s.startsWith("p[i,j]") ? "p[i,j] = sum(a[i,j] / z[i], f)" : s));
    const c = await compile({ ...att, name: "attention_f", steps }, { format: false, doubleBackward: false });
    expect(c.fused.gradients).toHaveLength(3);
  });
});
