/**
 * Every generated kernel guards its callers: a wrong array length, a size that is not a positive
 * integer, a non-finite constant or a cache from another module ends in a RangeError that names
 * the argument. No kernel modifies its arguments.
 */
import { describe, expect, it } from "vitest";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { checkSpec } from "../compiler/parse/check.js";
import type { Program } from "../compiler/ir/program.js";
import { prng } from "../compiler/differentiate/cas.js";
import { lengthOf, type Kernels } from "./harness.js";

const specDir = join(import.meta.dirname, "../specs");
const files = readdirSync(specDir).filter((f) => f.endsWith(".spec.ts")).sort();

async function load(file: string): Promise<{ p: Program; mod: Kernels }> {
  const p = checkSpec((await import(join(specDir, file))).default);
  return { p, mod: (await import(`../generated/${p.name}.ts`)) as unknown as Kernels };
}

function setup(p: Program) {
  const rand = prng(99);
  const sizes = Object.fromEntries(p.sizes.map((s, k) => [s, 2 + (k % 2)]));
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
      const broken = { ...(cache as Record<string, unknown>), [p.inputs[0]!.name]: new Float64Array(1e3 + 7) };
      expect(() => kernel(new Float64Array(n), broken)).toThrow(`cache.${p.inputs[0]!.name} has length`);
    }
  });

  it("never modifies its arguments", async () => {
    const { p, mod } = await load(file);
    const { sizes, inputs, rand } = setup(p);
    const before = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, Float64Array.from(v)]));
    const { cache, ...outs } = mod.forward(inputs, sizes);
    const dout = Float64Array.from({ length: (outs[p.output] as Float64Array).length }, () => rand() - 0.5);
    const doutBefore = Float64Array.from(dout);
    const cacheBefore = Object.fromEntries(Object.entries(cache as Record<string, unknown>).filter(([, v]) => v instanceof Float64Array).map(([k, v]) => [k, Float64Array.from(v as Float64Array)]));
    mod.backwardNaive(dout, cache);
    mod.backwardFused(dout, cache);
    mod.backwardFused(dout, cache);
    expect(dout).toEqual(doutBefore);
    for (const [k, v] of Object.entries(before)) expect(inputs[k]).toEqual(v);
    for (const [k, v] of Object.entries(cacheBefore)) expect((cache as Record<string, unknown>)[k]).toEqual(v);
  });
});
