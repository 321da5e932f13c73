/**
 * The double backward (CONTRACT §4.6) of every library spec, from the committed generated module:
 * `doubleBackwardNaive` against `doubleBackwardFused`, and both against central differences of
 * `sum(gg · backwardFused(dout, cache))` along random directions of every differentiable input and
 * of `dout`, with random `gg` (a result left out is zero gradient) at random sizes (1 included), on
 * normal data and with a constant first input (batchnorm's constant columns). Batchnorm's is also
 * held to TensorFlow.js's nested gradients (`tf.grads` of a function that calls `tf.grads`).
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import * as tf from "@tensorflow/tfjs";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { checkSpec } from "../compiler/parse/check.js";
import { isDifferentiable, type Program } from "../compiler/ir/program.js";
import { prng } from "../compiler/ir/random.js";
import { extentsPositive, randomSizes, withDerived } from "../compiler/ir/sizes.js";
import { addCount, expectFewSkips, expectFinite, lengthOf, randomInputs, settle, type FdCount, type Inputs, generatedModule } from "./harness.js";

type Arrays = Record<string, Float64Array>;
type Dout = Float64Array | Arrays;
interface DoubleKernels {
  forward(inputs: Inputs, sizes: Record<string, number>): Record<string, unknown> & { cache: unknown };
  backwardFused(dout: Dout, cache: unknown): Arrays;
  doubleBackwardNaive(gg: Arrays, dout: Dout, cache: unknown): Record<string, Float64Array | Arrays>;
  doubleBackwardFused(gg: Arrays, dout: Dout, cache: unknown): Record<string, Float64Array | Arrays>;
}

const specDir = join(import.meta.dirname, "../specs");
const files = readdirSync(specDir).filter((f) => f.endsWith(".spec.ts")).sort();

/** The double backward's results flattened: `dx`, ..., and `ddout` (or `ddout.<output>`). */
function flat(r: Record<string, Float64Array | Arrays>): Arrays {
  const out: Arrays = {};
  for (const [k, v] of Object.entries(r)) {
    if (v instanceof Float64Array) out[k] = v;
    else for (const [o, a] of Object.entries(v)) out[`${k}.${o}`] = a;
  }
  return out;
}

const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i]!, 0);
const absDot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + Math.abs(v * b[i]!), 0);

/** One random point of one spec: naive against fused, then each gradient against finite differences. */
function checkPoint(p: Program, mod: DoubleKernels, sizes: Record<string, number>, kind: "normal" | "constant", rand: () => number): FdCount {
  const count: FdCount = { judged: 0, skipped: 0 };
  const inputs = randomInputs(p, sizes, kind, rand);
  const several = p.outputs.length > 1;
  const douts = p.outputs.map((o) => Float64Array.from({ length: lengthOf(p, o, sizes) }, () => rand() * 2 - 1));
  const doutOf = (ds: Float64Array[]): Dout => (several ? Object.fromEntries(p.outputs.map((o, k) => [o, ds[k]!])) : ds[0]!);
  const diff = p.inputs.filter(isDifferentiable);
  // gg: a random cotangent per result, the last one left out (zero) at every other point
  const leaveOut = diff.length > 1 && rand() < 0.5 ? `d${diff[diff.length - 1]!.name}` : undefined;
  const gg: Arrays = {};
  for (const t of diff) if (`d${t.name}` !== leaveOut) gg[`d${t.name}`] = Float64Array.from({ length: lengthOf(p, t.name, sizes) }, () => rand() * 2 - 1);
  const { cache } = mod.forward(inputs, sizes);
  const before = JSON.stringify([...douts.map((d) => [...d]), ...Object.values(gg).map((g) => [...g])]);
  const naive = flat(mod.doubleBackwardNaive(gg, doutOf(douts), cache));
  const fused = flat(mod.doubleBackwardFused(gg, doutOf(douts), cache));
  expect(JSON.stringify([...douts.map((d) => [...d]), ...Object.values(gg).map((g) => [...g])]), "the kernels never write their arguments").toBe(before);
  const keys = [...diff.map((t) => `d${t.name}`), ...(several ? p.outputs.map((o) => `ddout.${o}`) : ["ddout"])];
  expect(Object.keys(naive).sort()).toEqual([...keys].sort());
  expect(Object.keys(fused).sort()).toEqual([...keys].sort());
  let largest = 1e-300;
  for (const v of Object.values(naive)) for (const x of v) largest = Math.max(largest, Math.abs(x));
  // the naive kernel's own rounding, measured: it again at every input, dout and gg moved by up to
  // 4 ulps (a result that cancels, like layernorm's dx at D = 1, moves by as much as its noise)
  const shake = (a: Float64Array) => a.map((v) => v * (1 + 4 * Number.EPSILON * (rand() * 2 - 1)));
  const noise: Arrays = Object.fromEntries(keys.map((k) => [k, new Float64Array(naive[k]!.length)]));
  for (let trial = 0; trial < 2; trial++) {
    const ins = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v instanceof Float64Array ? shake(v) : v]));
    const movedFused = flat(mod.doubleBackwardFused(Object.fromEntries(Object.entries(gg).map(([k, v]) => [k, shake(v)])), doutOf(douts.map(shake)), mod.forward(ins, sizes).cache));
    for (const k of keys) movedFused[k]!.forEach((v, i) => (noise[k]![i] = Math.max(noise[k]![i]!, Math.abs(v - fused[k]![i]!))));
    const moved = flat(mod.doubleBackwardNaive(Object.fromEntries(Object.entries(gg).map(([k, v]) => [k, shake(v)])), doutOf(douts.map(shake)), mod.forward(ins, sizes).cache));
    for (const k of keys) moved[k]!.forEach((v, i) => (noise[k]![i] = Math.max(noise[k]![i]!, Math.abs(v - naive[k]![i]!))));
  }
  // 256 ulps of the largest product of a cached value, a gg and a dout: the size of the terms a
  // result sums, below which a result that cancels to nothing is rounding (layernorm's at D = 1)
  const most = (as: Iterable<ArrayLike<number>>) => {
    let m = 0;
    for (const a of as) for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
    return m;
  };
  const values = Object.values((cache as { values: Record<string, Float64Array | Int32Array> }).values).filter((v) => v instanceof Float64Array);
  const floor = 256 * Number.EPSILON * most(values) * Math.max(most(Object.values(gg)), 1) * Math.max(most(douts), 1);
  for (const k of keys) {
    expectFinite(naive[k]!, `naive ${k}`);
    // relative to the result (or 1e-6 of the largest of the layer, as the first backward's are
    // judged in harness.ts), after forgiving 16 times the rounding measured above and the floor
    let scale = 1e-6 * largest;
    for (const v of naive[k]!) scale = Math.max(scale, Math.abs(v));
    let err = 0;
    naive[k]!.forEach((v, i) => (err = Math.max(err, Math.max(0, Math.abs(fused[k]![i]! - v) - 16 * noise[k]![i]! - floor))));
    expect(err / scale, `fused ${k} against naive`).toBeLessThanOrEqual(1e-9);
  }
  // the scalar whose gradients these are, as a function of one input (or dout) moved along v
  const loss = (ins: Inputs, ds: Float64Array[]) => {
    const g = mod.backwardFused(doutOf(ds), mod.forward(ins, sizes).cache);
    let s = 0;
    let terms = 0;
    for (const [k, w] of Object.entries(gg)) {
      s += dot(w, g[k]!);
      terms += absDot(w, g[k]!);
    }
    return { s, terms };
  };
  const terms = loss(inputs, douts).terms;
  const check = (name: string, grad: Float64Array, move: (h: number, v: Float64Array) => number, length: number) => {
    const v = Float64Array.from({ length }, () => rand() * 2 - 1);
    const an = dot(grad, v);
    const scale = absDot(grad, v);
    // a result below the floor is rounding (cosine's at N = D = 1, where the layer is constant)
    const below = floor * v.reduce((a, x) => a + Math.abs(x), 0);
    const fd = settle((h) => move(h, v), terms, 1e-6 * scale + below);
    if (!fd) {
      count.skipped++;
      return;
    }
    count.judged++;
    expect(Math.abs(fd.fd - an), `${name} against finite differences (fd ${fd.fd} at step ${fd.h}, analytic ${an})`).toBeLessThanOrEqual(1e-6 * scale + below + fd.noise);
  };
  for (const t of diff) {
    const x = inputs[t.name] as Float64Array;
    check(`d${t.name}`, naive[`d${t.name}`]!, (h, v) => loss({ ...inputs, [t.name]: x.map((xi, i) => xi + h * v[i]!) }, douts).s, x.length);
  }
  p.outputs.forEach((o, k) => {
    const name = several ? `ddout.${o}` : "ddout";
    check(name, naive[name]!, (h, v) => loss(inputs, douts.map((d, j) => (j === k ? d.map((di, i) => di + h * v[i]!) : d))).s, douts[k]!.length);
  });
  return count;
}

describe.each(files)("double backward of specs/%s", (file) => {
  it("naive and fused agree with each other and with finite differences of backwardFused", async () => {
    const p = checkSpec((await import(join(specDir, file))).default, file);
    const mod = (await generatedModule(p.name)) as unknown as DoubleKernels;
    const count: FdCount = { judged: 0, skipped: 0 };
    const maxSize = p.sizes.length > 3 ? 3 : 4;
    fc.assert(
      fc.property(
        fc.tuple(...p.sizes.map(() => fc.integer({ min: 1, max: maxSize }))),
        // max pooling of constant data ties every window, where the first backward jumps: finite
        // differences of it judge nothing there (as in specs.test.ts)
        p.name === "maxpool2d" ? fc.constant<"normal" | "constant">("normal") : fc.constantFrom<"normal" | "constant">("normal", "constant"),
        fc.integer(),
        (dims, kind, seed) => {
          const rand = prng(seed);
          // the computed extents added (a convolution's output length); sizes that make one of them
          // not positive are drawn again
          const full = withDerived(p, Object.fromEntries(p.sizes.map((s, k) => [s, dims[k]!])));
          const sizes = extentsPositive(p, full) ? full : randomSizes(p, rand, 1, maxSize);
          addCount(count, checkPoint(p, mod, sizes, kind, rand));
        },
      ),
      { numRuns: 8, examples: [[p.sizes.map(() => 1), "normal", 1]] },
    );
    expectFewSkips(count, p.name);
  });
});

describe("batchnorm's double backward against TensorFlow.js", () => {
  it("matches tf.grads of a function that calls tf.grads (float32), at random sizes", async () => {
    await tf.setBackend("cpu");
    const p = checkSpec((await import(join(specDir, "batchnorm.spec.ts"))).default, "batchnorm.spec.ts");
    const mod = (await generatedModule("batchnorm")) as unknown as DoubleKernels;
    const eps = p.constants.find((c) => c.name === "eps")!.value;
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 6 }), fc.integer({ min: 1, max: 5 }), fc.integer(), (N, D, seed) => {
        const rand = prng(seed);
        const u = (n: number) => Float64Array.from({ length: n }, () => rand() * 2 - 1);
        const x = u(N * D).map((v, i) => 2 * v + (i % 3)), gamma = u(D), beta = u(D), dout = u(N * D);
        const gg = { dx: u(N * D), dgamma: u(D), dbeta: u(D) };
        const { cache } = mod.forward({ x, gamma, beta }, { N, D });
        const ours = flat(mod.doubleBackwardFused(gg, dout, cache));
        const t = (a: Float64Array, shape: number[]) => tf.tensor(Float32Array.from(a), shape);
        const bn = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
          const mu = tf.mean(xx, 0);
          const xmu = tf.sub(xx, mu);
          const v = tf.mean(tf.square(xmu), 0);
          return tf.add(tf.mul(g, tf.div(xmu, tf.sqrt(tf.add(v, eps)))), b);
        };
        tf.engine().startScope();
        const b = t(beta, [D]);
        // dout enters the inner loss, so that the outer gradient reaches it; beta's double gradient
        // is 0 (no path), which tf.grads refuses to take: it is checked to be 0 below
        const scalar = (xx: tf.Tensor, g: tf.Tensor, d: tf.Tensor) => {
          const [dx, dg, db] = tf.grads(((a: tf.Tensor, c: tf.Tensor, e: tf.Tensor) => tf.sum(tf.mul(d, bn(a, c, e)))) as (...a: tf.Tensor[]) => tf.Tensor)([xx, g, b]);
          return tf.addN([tf.sum(tf.mul(t(gg.dx, [N, D]), dx!)), tf.sum(tf.mul(t(gg.dgamma, [D]), dg!)), tf.sum(tf.mul(t(gg.dbeta, [D]), db!))]);
        };
        const [tx, tg, td] = tf.grads(scalar as (...a: tf.Tensor[]) => tf.Tensor)([t(x, [N, D]), t(gamma, [D]), t(dout, [N, D])]).map((r) => Float64Array.from(r.dataSync()));
        tf.engine().endScope();
        let largest = 0;
        for (const a of [tx!, tg!, td!]) for (const v of a) largest = Math.max(largest, Math.abs(v));
        // float32 against float64: within 1e-3 of the largest gradient of the layer
        for (const [k, theirs] of [["dx", tx!], ["dgamma", tg!], ["ddout", td!]] as const)
          ours[k]!.forEach((v, i) => expect(Math.abs(v - theirs[i]!), `${k}[${i}] ${v} against TensorFlow.js ${theirs[i]}`).toBeLessThanOrEqual(1e-3 * largest));
        for (const v of ours.dbeta!) expect(v).toBe(0);
      }),
      { numRuns: 4 },
    );
  });
});

/**
 * More specs against TensorFlow.js's nested gradients, each forward written with tfjs ops: the
 * outer gradient is taken for the inputs the first backward depends on and for dout (an input with
 * no path, a bias, gets a double gradient of 0, which tf.grads refuses to take: checked to be 0).
 */
const TFJS_FORWARDS: Record<string, { sizes: (rand: () => number) => Record<string, number>; connected: readonly string[]; f: (ins: Record<string, tf.Tensor>, eps: number) => tf.Tensor }> = {
  layernorm: {
    sizes: (rand) => ({ N: 1 + Math.floor(rand() * 5), D: 2 + Math.floor(rand() * 5) }),
    connected: ["x", "gamma"],
    f: ({ x, gamma, beta }, eps) => {
      const xmu = tf.sub(x!, tf.mean(x!, 1, true));
      return tf.add(tf.mul(gamma!, tf.div(xmu, tf.sqrt(tf.add(tf.mean(tf.square(xmu), 1, true), eps)))), beta!);
    },
  },
  rmsnorm: {
    sizes: (rand) => ({ N: 1 + Math.floor(rand() * 5), D: 1 + Math.floor(rand() * 6) }),
    connected: ["x", "w"],
    f: ({ x, w }, eps) => tf.div(tf.mul(w!, x!), tf.sqrt(tf.add(tf.mean(tf.square(x!), 1, true), eps))),
  },
  l2normalize: {
    sizes: (rand) => ({ N: 1 + Math.floor(rand() * 5), D: 1 + Math.floor(rand() * 6) }),
    connected: ["x"],
    f: ({ x }, eps) => tf.div(x!, tf.sqrt(tf.add(tf.sum(tf.square(x!), 1, true), eps))),
  },
  linear: {
    sizes: (rand) => ({ N: 1 + Math.floor(rand() * 4), D: 1 + Math.floor(rand() * 4), K: 1 + Math.floor(rand() * 4) }),
    connected: ["x", "w"],
    f: ({ x, w, b }) => tf.add(tf.matMul(x!, w!), b!),
  },
};

describe.each(Object.keys(TFJS_FORWARDS))("%s's double backward against TensorFlow.js", (name) => {
  it("matches tf.grads of a function that calls tf.grads (float32), at random sizes", async () => {
    await tf.setBackend("cpu");
    const spec = TFJS_FORWARDS[name]!;
    const p = checkSpec((await import(join(specDir, `${name}.spec.ts`))).default, `${name}.spec.ts`);
    const mod = (await generatedModule(name)) as unknown as DoubleKernels;
    const eps = p.constants.find((c) => c.name === "eps")?.value ?? 0;
    const diff = p.inputs.filter(isDifferentiable);
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const rand = prng(seed);
        const sizes = spec.sizes(rand);
        const shape = (t: { name: string }) => p.inputs.find((x) => x.name === t.name)!.indices.map((i) => sizes[p.letters[i]!]!);
        const u = (n: number) => Float64Array.from({ length: n }, () => rand() * 2 - 1);
        const inputs = Object.fromEntries(p.inputs.map((t) => [t.name, u(lengthOf(p, t.name, sizes)).map((v, i) => v + (i % 3) * 0.5)]));
        const { cache, ...outs } = mod.forward(inputs, sizes);
        const y = outs[p.output] as Float64Array;
        const outShape = p.steps.find((st) => st.name === p.output)!.indices.map((i) => sizes[p.letters[i]!]!);
        const dout = u(y.length);
        const gg = Object.fromEntries(diff.map((t) => [`d${t.name}`, u(lengthOf(p, t.name, sizes))]));
        const ours = flat(mod.doubleBackwardFused(gg, dout, cache));
        const t32 = (a: Float64Array, s: number[]) => tf.tensor(Float32Array.from(a), s);
        tf.engine().startScope();
        const fixed = Object.fromEntries(diff.map((t) => [t.name, t32(inputs[t.name]!, shape(t))]));
        const scalar = (...vs: tf.Tensor[]) => {
          const d = vs[vs.length - 1]!;
          const at = { ...fixed, ...Object.fromEntries(spec.connected.map((n, k) => [n, vs[k]!])) };
          const inner = (...ws: tf.Tensor[]) => tf.sum(tf.mul(d, spec.f({ ...at, ...Object.fromEntries(diff.map((t, k) => [t.name, ws[k]!])) }, eps)));
          const firsts = tf.grads(inner as (...a: tf.Tensor[]) => tf.Tensor)(diff.map((t) => at[t.name]!));
          return tf.addN(diff.map((t, k) => tf.sum(tf.mul(t32(gg[`d${t.name}`]!, shape(t)), firsts[k]!))));
        };
        const theirs = tf.grads(scalar)([...spec.connected.map((n) => fixed[n]!), t32(dout, outShape)]).map((r) => Float64Array.from(r.dataSync()));
        tf.engine().endScope();
        const keyed = new Map([...spec.connected.map((n, k) => [`d${n}`, theirs[k]!] as const), ["ddout", theirs[theirs.length - 1]!] as const]);
        let largest = 0;
        for (const a of keyed.values()) for (const v of a) largest = Math.max(largest, Math.abs(v));
        // float32 against float64: within 1e-3 of the largest double gradient of the layer
        for (const [k, want] of keyed) ours[k]!.forEach((v, i) => expect(Math.abs(v - want[i]!), `${name} ${k}[${i}] ${v} against TensorFlow.js ${want[i]}`).toBeLessThanOrEqual(1e-3 * largest + 1e-6));
        for (const t of diff) if (!spec.connected.includes(t.name)) for (const v of ours[`d${t.name}`]!) expect(v).toBe(0);
      }),
      { numRuns: 4 },
    );
  });
});

describe("double backward guards", () => {
  it("rejects gg, dout and into arrays of the wrong length or type, overlapping outputs and a foreign cache, naming them", async () => {
    const bnm = (await generatedModule("batchnorm")) as unknown as DoubleKernels & { doubleBackwardFused: (gg: unknown, dout: unknown, cache: unknown, into?: unknown) => unknown; doubleBackwardNaive: (gg: unknown, dout: unknown, cache: unknown, into?: unknown) => unknown };
    const ln = (await generatedModule("layernorm")) as unknown as DoubleKernels;
    const N = 3, D = 2;
    const rand = prng(7);
    const u = (n: number) => Float64Array.from({ length: n }, () => rand() * 2 - 1);
    const { cache } = bnm.forward({ x: u(N * D), gamma: u(D), beta: u(D) }, { N, D });
    const other = ln.forward({ x: u(N * D), gamma: u(D), beta: u(D) }, { N, D }).cache;
    for (const kernel of [bnm.doubleBackwardNaive, bnm.doubleBackwardFused]) {
      const dout = u(N * D);
      expect(() => kernel({ dx: u(N * D + 1) }, dout, cache)).toThrow(/^batchnorm: gg\.dx has length 7, expected 6$/);
      expect(() => kernel({ dgamma: new Float32Array(D) }, dout, cache)).toThrow(/^batchnorm: gg\.dgamma must be a Float64Array$/);
      expect(() => kernel({}, u(N * D - 1), cache)).toThrow(/^batchnorm: dout has length 5, expected 6$/);
      expect(() => kernel({}, dout, other)).toThrow(/batchnorm: the cache was not made by this module's forward\(\)/);
      expect(() => kernel({}, dout, cache, { ddout: u(1) })).toThrow(/^batchnorm: into\.ddout has length 1, expected 6$/);
      const shared = new Float64Array(N * D);
      expect(() => kernel({}, dout, cache, { dx: shared, ddout: shared })).toThrow(/^batchnorm: into\.ddout shares memory with into\.dx/);
      expect(() => kernel({}, dout, cache, { ddout: dout })).toThrow(/^batchnorm: into\.ddout shares memory with dout; the kernel never writes its arguments$/);
      const gx = u(N * D);
      expect(() => kernel({ dx: gx }, dout, cache, { dx: gx })).toThrow(/^batchnorm: into\.dx shares memory with gg\.dx/);
      // every result lands in the arrays given, whatever they held; gg left out entirely is zero
      const into = { dx: u(N * D), dgamma: u(D), dbeta: u(D), ddout: u(N * D) };
      const r = kernel({}, dout, cache, into) as Record<string, Float64Array>;
      for (const k of Object.keys(into) as (keyof typeof into)[]) {
        expect(r[k]).toBe(into[k]);
        expect(into[k].every((v) => v === 0), `${k} is zero`).toBe(true);
      }
    }
  });
});

describe("double backward: several outputs and float32", () => {
  it("lstm: dout and ddout by output name, one dout left out is zero, into.ddout by output name", async () => {
    const p = checkSpec((await import(join(specDir, "lstm.spec.ts"))).default, "lstm.spec.ts");
    const mod = (await generatedModule("lstm")) as unknown as DoubleKernels & { doubleBackwardFused: (gg: unknown, dout: unknown, cache: unknown, into?: unknown) => Record<string, Float64Array | Arrays> };
    const sizes = { B: 2, I: 2, K: 3 };
    const rand = prng(11);
    const inputs = randomInputs(p, sizes, "normal", rand);
    const { cache } = mod.forward(inputs, sizes);
    const u = (n: number) => Float64Array.from({ length: n }, () => rand() * 2 - 1);
    const gg = { dx: u(lengthOf(p, "x", sizes)), dwi: u(lengthOf(p, "wi", sizes)) };
    const dh = u(lengthOf(p, "hnew", sizes));
    const naive = flat(mod.doubleBackwardNaive(gg, { hnew: dh }, cache));
    const zeros = flat(mod.doubleBackwardNaive(gg, { hnew: dh, cnew: new Float64Array(lengthOf(p, "cnew", sizes)) }, cache));
    expect(Object.keys(naive).filter((k) => k.startsWith("ddout.")).sort()).toEqual(["ddout.cnew", "ddout.hnew"]);
    for (const k of Object.keys(naive)) expect(naive[k], k).toEqual(zeros[k]);
    const into = { ddout: { cnew: u(lengthOf(p, "cnew", sizes)) } };
    const r = mod.doubleBackwardFused(gg, { hnew: dh }, cache, into) as { ddout: Arrays };
    expect(r.ddout.cnew).toBe(into.ddout.cnew);
    const fused = flat(r);
    for (const k of Object.keys(naive)) naive[k]!.forEach((v, i) => expect(Math.abs(fused[k]![i]! - v), `${k}[${i}]`).toBeLessThanOrEqual(1e-12 * (1 + Math.abs(v))));
  });

  it("batchnorm's float32 kernels stay within float32 rounding of the float64 ones", async () => {
    const m64 = (await generatedModule("batchnorm")) as unknown as DoubleKernels;
    const m32 = (await generatedModule("batchnorm", "float32")) as unknown as { forward: (i: unknown, s: unknown) => { cache: unknown }; doubleBackwardNaive: (gg: unknown, d: unknown, c: unknown) => Record<string, Float32Array>; doubleBackwardFused: (gg: unknown, d: unknown, c: unknown) => Record<string, Float32Array> };
    const N = 5, D = 3;
    const rand = prng(3);
    // values exact in float32, so both modules see the same data
    const u = (n: number) => Float64Array.from({ length: n }, () => Math.fround(rand() * 2 - 1));
    const x = u(N * D), gamma = u(D), beta = u(D), dout = u(N * D);
    const gg = { dx: u(N * D), dgamma: u(D), dbeta: u(D) };
    const f32 = (a: Float64Array) => Float32Array.from(a);
    const want = flat(m64.doubleBackwardFused(gg, dout, m64.forward({ x, gamma, beta }, { N, D }).cache));
    const c32 = m32.forward({ x: f32(x), gamma: f32(gamma), beta: f32(beta) }, { N, D }).cache;
    const gg32 = { dx: f32(gg.dx), dgamma: f32(gg.dgamma), dbeta: f32(gg.dbeta) };
    for (const got of [m32.doubleBackwardNaive(gg32, f32(dout), c32), m32.doubleBackwardFused(gg32, f32(dout), c32)]) {
      let largest = 0;
      for (const v of Object.values(want)) for (const y of v) largest = Math.max(largest, Math.abs(y));
      for (const [k, w] of Object.entries(want)) {
        expect(got[k]).toBeInstanceOf(Float32Array);
        w.forEach((v, i) => expect(Math.abs(got[k]![i]! - v), `${k}[${i}]`).toBeLessThanOrEqual(1e-4 * largest));
      }
    }
  });
});
