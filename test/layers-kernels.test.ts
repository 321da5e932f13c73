/**
 * The generated kernels of issue 13's constructs: the module's erf against a high-precision
 * reference, exact values at kinks and ties (both kernels, against the interpreter), gathers with
 * repeated and out-of-range ids (a RangeError before anything is written), integer and nograd inputs
 * (no gradient, guarded kinds), and several outputs with one upstream gradient left out.
 */
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compile } from "../compiler/driver.js";
import { checkSpec } from "../compiler/parse/check.js";
import { gradKey } from "../compiler/ir/evaluate.js";
import { checkGathers, interpretBackward, interpretForward, randomInputs, type Dout } from "../compiler/ir/interpret.js";
import type { Program } from "../compiler/ir/program.js";
import { differentiate } from "../compiler/differentiate/reverse.js";
import { throughOwnValue } from "../compiler/simplify/fused.js";
import { prng } from "../compiler/ir/random.js";
import { SPECS } from "./layers-cases.js";
import { loadModule, generatedModule } from "./harness.js";

type Module = {
  forward(inputs: Record<string, unknown>, sizes: Record<string, number>, constants?: Record<string, number>, into?: Record<string, unknown>): Record<string, Float64Array> & { cache: { values: Record<string, Float64Array | Int32Array> } };
  backwardNaive(dout: unknown, cache: unknown, into?: Record<string, unknown>): Record<string, Float64Array>;
  backwardFused(dout: unknown, cache: unknown, into?: Record<string, unknown>): Record<string, Float64Array>;
};

const work = mkdtempSync(join(tmpdir(), "backpass-layers-kernels-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let built = 0;
async function build(spec: unknown): Promise<Module> {
  return loadModule<Module>((await compile(spec, { format: false, doubleBackward: false })).code, join(work, `m${built++}.ts`));
}

async function library(name: string): Promise<{ p: Program; mod: Module }> {
  const p = checkSpec((await import(join(import.meta.dirname, `../specs/${name}.spec.ts`))).default);
  return { p, mod: (await generatedModule(name)) as Module };
}

/** The interpreter's naive gradient of every differentiable input. */
function interpreted(p: Program, inputs: Record<string, Float64Array | Int32Array>, sizes: Record<string, number>, dout: Dout): Map<string, Float64Array> {
  const constants = Object.fromEntries(p.constants.map((c) => [c.name, c.value]));
  const bw = differentiate(p, throughOwnValue);
  const all = interpretBackward(p, bw, interpretForward(p, inputs, sizes, constants), sizes, constants, dout);
  return new Map(bw.gradients.map((g) => [g.input.name, all.get(gradKey(g.grad.name))!.data]));
}

/** erf(x) to about 40 digits: its Taylor series in exact rational arithmetic (BigInt fixed point, 80 digits). */
function erfReference(x: number): number {
  const SCALE = 10n ** 80n;
  // x is a double: exactly m * 2^(e - 52) with an integer m
  if (x === 0) return 0;
  const e = Math.floor(Math.log2(Math.abs(x)));
  const m = BigInt(x * 2 ** (52 - e));
  const X = 52 - e >= 0 ? (m * SCALE) / 2n ** BigInt(52 - e) : m * 2n ** BigInt(e - 52) * SCALE; // x * SCALE
  const X2 = (X * X) / SCALE;
  // sum_n (-1)^n x^(2n+1) / (n! (2n+1))
  let power = X; // x^(2n+1) / n!
  let total = 0n;
  for (let n = 0n; n < 400n; n++) {
    const term = power / (2n * n + 1n);
    total += n % 2n === 0n ? term : -term;
    power = (power * X2) / SCALE / (n + 1n);
    if (power === 0n) break;
  }
  // 2/sqrt(pi), with sqrt(pi) by Newton's method on pi's first 60 digits
  const PI = 314159265358979323846264338327950288419716939937510582097494459n * 10n ** 18n; // pi * 10^80
  let r = 177245385090551602729816748334n * 10n ** 51n; // a start near sqrt(pi) * 10^80
  for (let k = 0; k < 10; k++) r = (r + (PI * SCALE) / r) / 2n;
  const value = (2n * total * SCALE) / r;
  return Number(value) / 1e80;
}

describe("the generated erf", () => {
  it("is within 1e-15 relative of the series evaluated in exact arithmetic, odd, and exact at 0", async () => {
    const mod = await build({ name: "erf1", indices: { n: "N" }, inputs: ["x[n]"], steps: ["y[n] = erf(x[n])"], output: "y" });
    const rand = prng(13);
    // a grid across both branches (|x| < 3 the series, beyond the continued fraction), and random points
    const xs = [0, 1e-30, 1e-8, 0.1, 0.5, 1, 1.5, 2, 2.5, 2.999, 3, 3.001, 3.5, 4, 4.5, 5, 5.5, 5.9];
    for (let k = 0; k < 200; k++) xs.push(rand() * 6);
    const x = Float64Array.from([...xs, ...xs.map((v) => -v)]);
    const { y } = mod.forward({ x }, { N: x.length });
    let worst = 0;
    for (let i = 0; i < x.length; i++) {
      const want = erfReference(x[i]!);
      if (want !== 0) worst = Math.max(worst, Math.abs(y![i]! - want) / Math.abs(want));
    }
    // 4 ulps of the worst point measured here (near |x| = 3, where the series is longest): 9e-16
    expect(worst, "relative error of erf").toBeLessThanOrEqual(1e-15);
    for (let i = 0; i < xs.length; i++) expect(y![i + xs.length] === -y![i]!, `erf(-${xs[i]}) = -erf(${xs[i]})`).toBe(true);
    expect(y![0]).toBe(0);
    expect(Array.from(mod.forward({ x: Float64Array.from([6, 40, -40, Infinity]) }, { N: 4 }).y!)).toEqual([1, 1, -1, 1]);
    expect(mod.forward({ x: Float64Array.from([Number.NaN]) }, { N: 1 }).y![0]).toBeNaN();
  });
});

describe("kinks and ties in the kernels", () => {
  it("relu'(0) = 0: dx is exactly 0 where x <= 0 and exactly dout where x > 0, in both kernels", async () => {
    const { mod } = await library("relu");
    const x = Float64Array.from([-1, -0, 0, 1e-300, 2, -3]);
    const dout = Float64Array.from([0.5, 0.25, 3, 7, -2, 1]);
    const { cache } = mod.forward({ x }, { N: 2, D: 3 });
    for (const k of [mod.backwardNaive, mod.backwardFused]) expect(Array.from(k(dout, cache).dx!)).toEqual([0, 0, 0, 7, -2, 0]);
  });

  it("leaky relu and elu at 0 take the else branch's slope, exactly as the interpreter", async () => {
    for (const name of ["leaky_relu", "elu"]) {
      const { p, mod } = await library(name);
      const x = Float64Array.from([0, -0, 1, -1]);
      const dout = Float64Array.from([1, 1, 1, 1]);
      const sizes = { N: 2, D: 2 };
      const want = interpreted(p, { x }, sizes, dout).get("x")!;
      const { cache } = mod.forward({ x }, sizes);
      for (const k of [mod.backwardNaive, mod.backwardFused]) expect(k(dout, cache).dx).toEqual(want);
    }
  });

  it("a tie of maximum/minimum splits the gradient, and where's unchosen log(0) costs nothing: both kernels equal the interpreter", async () => {
    const mod = await build(SPECS.choices);
    const p = checkSpec(SPECS.choices);
    const a = Float64Array.from([1, 2, -1, 0.5, 3]);
    const b = Float64Array.from([1, 1, -1, 0.25, 3]); // ties at 0, 2 and 4 (a = b), at 3 minimum's a = 2b
    const sizes = { N: 5 };
    const dout = { y: Float64Array.from([1, -2, 0.5, 3, 1]), z: Float64Array.from([2, 1, -1, 0.5, 4]) };
    const want = interpreted(p, { a, b }, sizes, dout);
    const { cache } = mod.forward({ a, b }, sizes);
    for (const k of [mod.backwardNaive, mod.backwardFused]) {
      const got = k(dout, cache);
      for (const g of ["a", "b"]) {
        for (const v of got[`d${g}`]!) expect(Number.isFinite(v)).toBe(true);
        expect(got[`d${g}`]).toEqual(want.get(g));
      }
    }
  });
});

describe("gathers", () => {
  const sizes = { B: 2, S: 3, V: 3, D: 4 };
  const setup = () => {
    const rand = prng(5);
    const E = Float64Array.from({ length: sizes.V * sizes.D }, () => rand() * 2 - 1);
    const gamma = Float64Array.from({ length: sizes.D }, () => rand() + 0.5);
    const beta = Float64Array.from({ length: sizes.D }, () => rand() - 0.5);
    const dout = Float64Array.from({ length: sizes.B * sizes.S * sizes.D }, () => rand() * 2 - 1);
    return { E, gamma, beta, dout };
  };

  it("repeated ids add up: dE equals the interpreter's, in both kernels", async () => {
    const { p, mod } = await library("embedding_layernorm");
    const { E, gamma, beta, dout } = setup();
    for (const ids of [Int32Array.from([1, 1, 1, 1, 1, 1]), Int32Array.from([0, 2, 0, 2, 2, 0])]) {
      const inputs = { ids, E, gamma, beta };
      const want = interpreted(p, inputs, sizes, dout);
      const { cache } = mod.forward(inputs, sizes);
      for (const k of [mod.backwardNaive, mod.backwardFused]) {
        const got = k(dout, cache);
        expect(got.dids).toBeUndefined();
        for (const g of ["E", "gamma", "beta"]) {
          const w = want.get(g)!;
          const scale = w.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-300);
          for (let i = 0; i < w.length; i++) expect(Math.abs(got[`d${g}`]![i]! - w[i]!), `d${g}[${i}]`).toBeLessThanOrEqual(1e-14 * scale);
        }
        // a row no id selects gets no gradient
        if (ids.every((v) => v === 1)) for (const v of [0, 2]) for (let d = 0; d < sizes.D; d++) expect(got.dE![v * sizes.D + d]).toBe(0);
      }
    }
  });

  it("an id outside [0, V) is a RangeError naming the input and position, as the interpreter says, before anything is written", async () => {
    const { p, mod } = await library("embedding_layernorm");
    const { E, gamma, beta, dout } = setup();
    for (const [bad, at] of [
      [3, 4],
      [-1, 0],
      [2 ** 31 - 1, 5],
    ] as const) {
      const ids = Int32Array.from([0, 1, 2, 0, 1, 2]);
      ids[at] = bad;
      let message = "";
      try {
        checkGathers(p, { ids, E, gamma, beta }, sizes);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(/^ids\[\d,\d\] is -?\d+, outside \[0, V\) = \[0, 3\)/);
      // forward: the step arrays given in `into` are untouched
      const into = Object.fromEntries(p.steps.map((s) => [s.name, new Float64Array(s.indices.reduce((n, i) => n * sizes[p.sizeOf(i) as keyof typeof sizes], 1)).fill(7)]));
      expect(() => mod.forward({ ids, E, gamma, beta }, sizes, undefined, into)).toThrow(RangeError);
      expect(() => mod.forward({ ids, E, gamma, beta }, sizes, undefined, into)).toThrow(`embedding_layernorm: ${message}`);
      for (const v of Object.values(into)) expect(v.every((x) => x === 7)).toBe(true);
      // backward: a cache whose ids were changed after forward
      const good = Int32Array.from([0, 1, 2, 0, 1, 2]);
      const { cache } = mod.forward({ ids: good, E, gamma, beta }, sizes);
      good[at] = bad;
      for (const k of [mod.backwardNaive, mod.backwardFused]) {
        const dE = new Float64Array(E.length).fill(9);
        expect(() => k(dout, cache, { dE })).toThrow(`embedding_layernorm: ${message}`);
        expect(dE.every((x) => x === 9)).toBe(true);
      }
    }
  });

  it("ids must be an Int32Array of the right length, and take no gradient array", async () => {
    const { mod } = await library("embedding_layernorm");
    const { E, gamma, beta } = setup();
    for (const ids of [Float64Array.from([0, 1, 2, 0, 1, 2]), new Int32Array(5), [0, 1, 2, 0, 1, 2], new Uint32Array(6)])
      expect(() => mod.forward({ ids, E, gamma, beta }, sizes)).toThrow(/^embedding_layernorm: inputs\.ids (must be an Int32Array|has length 5, expected 6)$/);
    const { cache } = mod.forward({ ids: new Int32Array(6), E, gamma, beta }, sizes);
    const c = cache as unknown as { values: Record<string, unknown> };
    expect(() => mod.backwardFused(new Float64Array(24), { ...c, values: { ...c.values, ids: new Float64Array(6) } })).toThrow("embedding_layernorm: cache.values.ids must be an Int32Array");
  });
});

describe("gathers and scatter-adds in unrolled loops (sizes past the unroll factor of 4)", () => {
  it("embedding_layernorm and mlp: both kernels equal the interpreter, with repeated ids", async () => {
    for (const [name, sizes] of [
      ["embedding_layernorm", { B: 6, S: 5, V: 3, D: 5 }],
      ["mlp", { N: 9, F: 3, H: 6, C: 4 }],
    ] as const) {
      const { p, mod } = await library(name);
      const rand = prng(77);
      const inputs = randomInputs(p, sizes, rand, () => rand() * 2 - 1);
      const outs = mod.forward(inputs, sizes);
      const dout = Float64Array.from({ length: outs[p.output]!.length }, () => rand() * 2 - 1);
      const want = interpreted(p, inputs, sizes, dout);
      for (const k of [mod.backwardNaive, mod.backwardFused])
        for (const [g, w] of want) {
          const got = k(dout, outs.cache)[`d${g}`]!;
          const scale = w.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-300);
          for (let i = 0; i < w.length; i++) expect(Math.abs(got[i]! - w[i]!), `${name} d${g}[${i}]`).toBeLessThanOrEqual(1e-13 * scale);
        }
    }
  });
});

describe("nograd inputs", () => {
  it("get no gradient output in either kernel (huber's t, dropout's mask, masked softmax's mask)", async () => {
    for (const [name, input] of [
      ["huber", "t"],
      ["dropout", "mask"],
      ["masked_softmax", "mask"],
    ] as const) {
      const { p, mod } = await library(name);
      const sizes = Object.fromEntries(p.sizes.map((s) => [s, 3]));
      const inputs = Object.fromEntries(p.inputs.map((t) => [t.name, Float64Array.from({ length: 9 }, (_, i) => (i % 2) + 0.5)]));
      const outs = mod.forward(inputs, sizes);
      const dout = new Float64Array(outs[p.output]!.length).fill(1);
      for (const k of [mod.backwardNaive, mod.backwardFused]) {
        const got = k(dout, outs.cache);
        expect(Object.keys(got).sort()).toEqual(p.inputs.filter((t) => t.kind === undefined).map((t) => `d${t.name}`).sort());
        expect(got[`d${input}`]).toBeUndefined();
      }
    }
  });
});

describe("several outputs", () => {
  const setup = async () => {
    const { p, mod } = await library("lstm");
    const sizes = { B: 2, I: 3, K: 2 };
    const rand = prng(21);
    const inputs = Object.fromEntries(p.inputs.map((t) => [t.name, Float64Array.from({ length: t.indices.reduce((n, i) => n * sizes[p.sizeOf(i) as keyof typeof sizes], 1) }, () => rand() * 2 - 1)]));
    const outs = mod.forward(inputs, sizes);
    const dh = Float64Array.from({ length: 4 }, () => rand() * 2 - 1);
    const dc = Float64Array.from({ length: 4 }, () => rand() * 2 - 1);
    return { p, mod, sizes, inputs, outs, dh, dc };
  };

  it("forward returns every output; a dout left out is a zero gradient; both kernels equal the interpreter", async () => {
    const { p, mod, sizes, inputs, outs, dh, dc } = await setup();
    expect(outs.hnew).toBe(outs.cache.values.hnew);
    expect(outs.cnew).toBe(outs.cache.values.cnew);
    for (const dout of [{ hnew: dh }, { cnew: dc }, { hnew: dh, cnew: dc }, {}]) {
      const want = interpreted(p, inputs, sizes, dout);
      const zeros = { hnew: new Float64Array(4), cnew: new Float64Array(4), ...dout };
      for (const k of [mod.backwardNaive, mod.backwardFused]) {
        const got = k(dout, outs.cache);
        // left out is the same as zeros, bit for bit
        expect(got).toEqual(k(zeros, outs.cache));
        for (const t of p.inputs) {
          const w = want.get(t.name)!;
          const scale = w.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-300);
          for (let i = 0; i < w.length; i++) expect(Math.abs(got[`d${t.name}`]![i]! - w[i]!), `d${t.name}[${i}]`).toBeLessThanOrEqual(1e-13 * scale);
        }
      }
    }
  });

  it("guards each upstream gradient by name, and an output over one of them", async () => {
    const { mod, outs, dh } = await setup();
    for (const k of [mod.backwardNaive, mod.backwardFused]) {
      expect(() => k({ hnew: new Float64Array(5) }, outs.cache)).toThrow("lstm: dout.hnew has length 5, expected 4");
      expect(() => k({ cnew: new Float32Array(4) }, outs.cache)).toThrow("lstm: dout.cnew must be a Float64Array");
      // an inherited key is not read
      expect(k(Object.create({ hnew: dh }), outs.cache)).toEqual(k({}, outs.cache));
      const before = Float64Array.from(dh);
      expect(() => k({ hnew: dh }, outs.cache, { dc: new Float64Array(dh.buffer, 0, 4) })).toThrow("lstm: into.dc shares memory with dout.hnew; the kernel never writes its arguments");
      expect(dh).toEqual(before);
    }
  });
});
