/**
 * Every generated kernel guards its callers: a wrong array length, a size that is not a positive
 * integer, a non-finite constant or a cache from another module ends in a RangeError that names
 * the argument. No kernel modifies its arguments.
 */
import { describe, expect, it } from "vitest";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { checkSpec } from "../compiler/parse/check.js";
import { randomSizes, withDerived } from "../compiler/ir/sizes.js";
import type { Program } from "../compiler/ir/program.js";
import { prng } from "../compiler/ir/random.js";
import { lengthOf, type Kernels, generatedModule } from "./harness.js";

const specDir = join(import.meta.dirname, "../specs");
const all = readdirSync(specDir).filter((f) => f.endsWith(".spec.ts")).sort();
// specs of one output whose inputs are all float inputs with a gradient; the guards of integer and
// nograd inputs and of several outputs are tested in test/layers-kernels.test.ts
const files: string[] = [];
for (const f of all) {
  const p = checkSpec((await import(join(specDir, f))).default);
  if (p.outputs.length === 1 && p.inputs.every((t) => t.kind === undefined)) files.push(f);
}

async function load(file: string): Promise<{ p: Program; mod: Kernels }> {
  const p = checkSpec((await import(join(specDir, file))).default);
  return { p, mod: (await generatedModule(p.name)) as unknown as Kernels };
}

function setup(p: Program) {
  const rand = prng(99);
  const sizes = withDerived(p, Object.fromEntries(p.sizes.map((s, k) => [s, 2 + (k % 2)])));
  const inputs = Object.fromEntries(p.inputs.map((t) => [t.name, Float64Array.from({ length: lengthOf(p, t.name, sizes) }, () => rand() + 0.5)]));
  return { sizes, inputs, rand };
}

describe.each(files)("guards of generated/%s", (file) => {
  it("rejects arrays of the wrong length or type, naming the input", async () => {
    const { p, mod } = await load(file);
    const { sizes, inputs } = setup(p);
    for (const t of p.inputs) {
      const good = inputs[t.name]!;
      for (const bad of [new Float64Array(good.length + 1), new Float64Array(Math.max(0, good.length - 1)), Array.from(good), new Float32Array(good.length)])
        expect(() => mod.forward({ ...inputs, [t.name]: bad as Float64Array }, sizes)).toThrow(new RegExp(`^${p.name}: inputs\\.${t.name} `));
    }
  });

  it("rejects sizes that are not positive integers and non-finite constants, naming them", async () => {
    const { p, mod } = await load(file);
    const { sizes, inputs } = setup(p);
    for (const s of p.sizes)
      for (const v of [0, -1, 2.5, Number.NaN, Infinity, undefined, "2"]) {
        const call = () => mod.forward(inputs, { ...sizes, [s]: v as number });
        expect(call).toThrow(RangeError);
        expect(call).toThrow(`sizes.${s} must be a positive integer`);
      }
    for (const c of p.constants)
      for (const v of [Number.NaN, Infinity, -Infinity]) {
        const call = () => mod.forward(inputs, sizes, { [c.name]: v });
        expect(call).toThrow(RangeError);
        expect(call).toThrow(`constants.${c.name} must be a finite number`);
      }
  });

  it("rejects an upstream gradient of the wrong length and a cache from another module", async () => {
    const { p, mod } = await load(file);
    const { sizes, inputs } = setup(p);
    const { cache, ...outs } = mod.forward(inputs, sizes);
    const n = (outs[p.output] as Float64Array).length;
    for (const kernel of [mod.backwardNaive, mod.backwardFused]) {
      expect(() => kernel(new Float64Array(n + 1), cache)).toThrow(RangeError);
      expect(() => kernel(new Float64Array(n + 1), cache)).toThrow("dout has length");
      const other = files.find((f) => f !== file)!;
      const o = await load(other);
      const otherCache = o.mod.forward(setup(o.p).inputs, setup(o.p).sizes).cache;
      expect(() => kernel(new Float64Array(n), otherCache)).toThrow(`${p.name}: the cache was not made by this module's forward()`);
      expect(() => kernel(new Float64Array(n), undefined)).toThrow(RangeError);
      // a cache whose arrays were swapped for others of the wrong length
      const c = cache as { values: Record<string, unknown>; sizes: Record<string, number> };
      const broken = { ...c, values: { ...c.values, [p.inputs[0]!.name]: new Float64Array(1e3 + 7) } };
      expect(() => kernel(new Float64Array(n), broken)).toThrow(`cache.values.${p.inputs[0]!.name} has length`);
      // sizes are checked again: negative sizes whose product is the right length are refused
      if (p.sizes.length >= 2) {
        const [a, b] = p.sizes as [string, string];
        const negated = { ...c, sizes: { ...c.sizes, [a]: -c.sizes[a]!, [b]: -c.sizes[b]! } };
        expect(() => kernel(new Float64Array(n), negated)).toThrow(`${p.name}: cache.sizes.${a} must be a positive integer, got -`);
      }
      for (const s of p.sizes) for (const v of [0, 1.5, Number.NaN, "2"]) expect(() => kernel(new Float64Array(n), { ...c, sizes: { ...c.sizes, [s]: v } })).toThrow(`cache.sizes.${s} must be a positive integer`);
    }
  });

  it("never modifies its arguments", async () => {
    const { p, mod } = await load(file);
    const { sizes, inputs, rand } = setup(p);
    const before = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, Float64Array.from(v)]));
    const { cache, ...outs } = mod.forward(inputs, sizes);
    const dout = Float64Array.from({ length: (outs[p.output] as Float64Array).length }, () => rand() - 0.5);
    const doutBefore = Float64Array.from(dout);
    const values = (cache as { values: Record<string, Float64Array> }).values;
    const cacheBefore = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Float64Array.from(v)]));
    expect(Object.keys(cacheBefore).sort()).toEqual([...p.inputs, ...p.steps].map((t) => t.name).sort());
    mod.backwardNaive(dout, cache);
    mod.backwardFused(dout, cache);
    mod.backwardFused(dout, cache);
    expect(dout).toEqual(doutBefore);
    for (const [k, v] of Object.entries(before)) expect(inputs[k]).toEqual(v);
    for (const [k, v] of Object.entries(cacheBefore)) expect(values[k]).toEqual(v);
  });
});

/**
 * Outputs that share memory. Every array a kernel writes (a step given in `into` to `forward`, a
 * gradient given to a backward kernel) is checked against every other output and every argument:
 * the same buffer with intersecting byte ranges is a RangeError naming both, raised before anything
 * is written. Views that only share a buffer, side by side, are fine and give the same results.
 */
describe.each(files)("overlapping outputs of generated/%s", (file) => {
  /** Views side by side in one buffer, with the given lengths (and a gap of one element between). */
  function carve(lengths: readonly number[]): Float64Array[] {
    const total = lengths.reduce((a, n) => a + n + 1, 0);
    const buf = new ArrayBuffer(total * 8);
    let at = 0;
    return lengths.map((n) => {
      const v = new Float64Array(buf, at * 8, n);
      at += n + 1;
      return v;
    });
  }

  it("forward refuses a step array that overlaps another or an input, and accepts disjoint views of one buffer", async () => {
    const { p, mod } = await load(file);
    const { sizes, inputs } = setup(p);
    const fwd = mod.forward as (i: unknown, s: unknown, c?: unknown, into?: unknown) => Record<string, unknown> & { cache: { values: Record<string, Float64Array> } };
    const lengths = p.steps.map((s) => lengthOf(p, s.name, sizes));
    const expected = fwd(inputs, sizes);
    // disjoint views of one buffer: accepted, same values
    const views = carve(lengths);
    const into = Object.fromEntries(p.steps.map((s, k) => [s.name, views[k]!]));
    const got = fwd(inputs, sizes, undefined, into);
    for (const s of p.steps) expect(got.cache.values[s.name]).toEqual(expected.cache.values[s.name]);
    // two steps given arrays that overlap by one element
    if (p.steps.length >= 2) {
      const [a, b] = [p.steps[0]!, p.steps[p.steps.length - 1]!];
      const buf = new Float64Array(lengths[0]! + lengths[p.steps.length - 1]! - 1).fill(7);
      const overlapping = { [a.name]: buf.subarray(0, lengths[0]!), [b.name]: buf.subarray(lengths[0]! - 1) };
      const inputsBefore = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, Float64Array.from(v)]));
      expect(() => fwd(inputs, sizes, undefined, overlapping)).toThrow(new RegExp(`^${p.name}: into\\.${b.name} shares memory with into\\.${a.name}; every output needs memory of its own$`));
      expect(buf.every((v) => v === 7)).toBe(true); // nothing was written
      for (const [k, v] of Object.entries(inputsBefore)) expect(inputs[k]).toEqual(v);
    }
    // a step written over a view of an input (same buffer, different Float64Array)
    for (const t of p.inputs)
      for (const s of p.steps) {
        const x = inputs[t.name]!;
        const n = lengths[p.steps.indexOf(s)]!;
        if (n > x.length) continue;
        const view = new Float64Array(x.buffer, x.byteOffset + (x.length - n) * 8, n);
        const before = Float64Array.from(x);
        expect(() => fwd(inputs, sizes, undefined, { [s.name]: view })).toThrow(`${p.name}: into.${s.name} shares memory with inputs.${t.name}; the kernel never writes its arguments`);
        expect(x).toEqual(before);
      }
  });

  it("own properties cannot fake an array's kind, length or memory", async () => {
    const { p, mod } = await load(file);
    const { sizes, inputs } = setup(p);
    const fwd = mod.forward as (i: unknown, s: unknown, c?: unknown, into?: unknown) => unknown;
    const t = p.inputs[0]!;
    const x = inputs[t.name]!;
    // inputs and sizes are own properties: inherited ones are not read
    expect(() => fwd(Object.create(inputs), sizes)).toThrow(`${p.name}: inputs.${t.name} must be a Float64Array`);
    expect(() => fwd(inputs, Object.create(sizes))).toThrow(`${p.name}: sizes.${p.sizes[0]} must be a positive integer, got undefined`);
    // a prototype borrowed from Float64Array is not a Float64Array
    expect(() => fwd({ ...inputs, [t.name]: Object.create(Float64Array.prototype) }, sizes)).toThrow(`${p.name}: inputs.${t.name} must be a Float64Array`);
    // a length property on the instance does not change its length
    const short = new Float64Array(1);
    Object.defineProperty(short, "length", { value: x.length });
    if (x.length !== 1) expect(() => fwd({ ...inputs, [t.name]: short }, sizes)).toThrow(`${p.name}: inputs.${t.name} has length 1`);
    // a buffer property on the instance does not hide the memory it shares with an input
    // (a padded convolution's only step is longer than its input: no view of the input can hold it)
    const s = p.steps.find((q) => lengthOf(p, q.name, sizes) <= x.length);
    if (s === undefined) return;
    const view = new Float64Array(x.buffer, x.byteOffset, lengthOf(p, s.name, sizes));
    Object.defineProperty(view, "buffer", { value: new ArrayBuffer(8) });
    Object.defineProperty(view, "byteOffset", { value: 0 });
    const before = Float64Array.from(x);
    expect(() => fwd(inputs, sizes, undefined, { [s.name]: view })).toThrow(`${p.name}: into.${s.name} shares memory with inputs.${t.name}`);
    expect(x).toEqual(before);
  });

  it("backward kernels refuse gradients that overlap each other, dout or the cache, and accept disjoint views", async () => {
    const { p, mod } = await load(file);
    const { sizes, inputs, rand } = setup(p);
    const { cache, ...outs } = mod.forward(inputs, sizes);
    const values = (cache as { values: Record<string, Float64Array> }).values;
    const dout = Float64Array.from({ length: (outs[p.output] as Float64Array).length }, () => rand() - 0.5);
    const grads = p.inputs.map((t) => `d${t.name}`);
    const lengths = p.inputs.map((t) => lengthOf(p, t.name, sizes));
    for (const kernel of [mod.backwardNaive, mod.backwardFused] as ((d: Float64Array, c: unknown, into?: unknown) => Record<string, Float64Array>)[]) {
      const expected = kernel(dout, cache);
      const views = carve(lengths).map((v) => v.fill(3));
      const got = kernel(dout, cache, Object.fromEntries(grads.map((g, k) => [g, views[k]!])));
      for (const g of grads) expect(got[g]).toEqual(expected[g]);
      const snapshot = () => [Float64Array.from(dout), ...Object.values(values).map((v) => Float64Array.from(v))];
      const before = snapshot();
      // a gradient over dout, and over each array of the cache
      for (const [k, g] of grads.entries()) {
        const targets: [string, Float64Array][] = [["dout", dout], ...Object.entries(values).map(([name, v]) => [`cache.values.${name}`, v] as [string, Float64Array])];
        for (const [what, arr] of targets) {
          if (arr.length < lengths[k]!) continue;
          const view = new Float64Array(arr.buffer, arr.byteOffset + (arr.length - lengths[k]!) * 8, lengths[k]!);
          const call = () => kernel(dout, cache, { [g]: view });
          // an input array also lives in the cache: the first array found that shares memory is named
          expect(call).toThrow(RangeError);
          expect(call).toThrow(new RegExp(`^${p.name}: into\\.${g} shares memory with (dout|cache\\.values\\.\\w+); the kernel never writes its arguments$`));
          if (what === "dout") expect(call).toThrow(`into.${g} shares memory with dout;`);
        }
      }
      expect(snapshot()).toEqual(before);
      // two gradients over overlapping memory
      if (grads.length >= 2) {
        const buf = new Float64Array(lengths[0]! + lengths[1]! - 1).fill(5);
        const call = () => kernel(dout, cache, { [grads[0]!]: buf.subarray(0, lengths[0]!), [grads[1]!]: buf.subarray(lengths[0]! - 1) });
        expect(call).toThrow(`${p.name}: into.${grads[1]} shares memory with into.${grads[0]}; every output needs memory of its own`);
        expect(buf.every((v) => v === 5)).toBe(true);
      }
    }
  });
});
