/**
 * The float32 kernels (generated/float32/) against the float64 ones on the same float32-exact
 * inputs, over every spec and the awkward data kinds. Reductions accumulate in float64, so the only
 * rounding is float32 storage: errors are held to 1e-4 of the gradient's scale plus 64 float32 ulps
 * of the size of the terms behind each element (the interpreter's magnitude evaluation).
 *
 * A mean of 1e4 with a spread of 1e-2 is the exception. Storing the mean as float32 (ulp 1e-3)
 * moves it by 5% of the spread, so every float32 implementation of a normalization is off by
 * percents there. For that data the kernels must stay finite, and the worst error is recorded in
 * docs/numerics.md.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { checkSpec } from "../compiler/parse/check.js";
import { isDifferentiable } from "../compiler/ir/program.js";
import { expectFinite, gradientNoise, randomCase, randomInputs, generatedModule } from "./harness.js";

const specDir = join(import.meta.dirname, "../specs");
const files = readdirSync(specDir).filter((f) => f.endsWith(".spec.ts")).sort();
const EPS32 = 2 ** -23;

type AnyKernels = {
  forward(inputs: Record<string, ArrayLike<number>>, sizes: Record<string, number>): Record<string, unknown> & { cache: unknown };
  backwardNaive(dout: ArrayLike<number> | Record<string, ArrayLike<number>>, cache: unknown): Record<string, ArrayLike<number>>;
  backwardFused(dout: ArrayLike<number> | Record<string, ArrayLike<number>>, cache: unknown): Record<string, ArrayLike<number>>;
};

export const worst32: Record<string, number> = {};

describe.each(files)("float32 kernels of %s", (file) => {
  it("stay within float32 rounding of the float64 kernels", async () => {
    const p = checkSpec((await import(join(specDir, file))).default);
    const m64 = (await generatedModule(p.name)) as unknown as AnyKernels;
    const m32 = (await generatedModule(p.name, "float32")) as unknown as AnyKernels;
    let worst = 0;
    fc.assert(
      fc.property(
        randomCase(p),
        ({ sizes, kind, rand }) => {
          const raw = randomInputs(p, sizes, kind, rand);
          // integer ids are Int32Arrays in both modules
          const in64 = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v instanceof Int32Array ? v : Float64Array.from(Float32Array.from(v))]));
          const in32 = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, v instanceof Int32Array ? v : Float32Array.from(v)]));
          const f64 = m64.forward(in64, sizes);
          const f32 = m32.forward(in32, sizes);
          const y64 = f64[p.output] as Float64Array;
          const y32 = f32[p.output] as Float32Array;
          expect(y32).toBeInstanceOf(Float32Array);
          // one upstream gradient per output: an object by name when there are several
          const ws = p.outputs.map((o) => Float64Array.from(Float32Array.from({ length: (f64[o] as Float64Array).length }, () => rand() * 2 - 1)));
          const several = p.outputs.length > 1;
          const dout = several ? Object.fromEntries(p.outputs.map((o, k) => [o, ws[k]!])) : ws[0]!;
          const dout32 = several ? Object.fromEntries(p.outputs.map((o, k) => [o, Float32Array.from(ws[k]!)])) : Float32Array.from(ws[0]!);
          void y64;
          const noise = gradientNoise(p, in64, sizes, dout);
          let largest = 1e-300;
          const g64 = m64.backwardNaive(dout, f64.cache);
          for (const g of Object.values(g64)) for (const v of Array.from(g)) largest = Math.max(largest, Math.abs(v));
          for (const kernel of ["backwardNaive", "backwardFused"] as const) {
            const g32 = m32[kernel](dout32, f32.cache);
            for (const t of p.inputs.filter(isDifferentiable)) {
              const a = g32[`d${t.name}`]!;
              const b = g64[`d${t.name}`]!;
              expect(a).toBeInstanceOf(Float32Array);
              let scale = 1e-6 * largest;
              for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
              const nz = noise.get(t.name)!;
              expectFinite(a, `${kernel} d${t.name}`);
              // the element furthest past float32 rounding, asserted once per array
              let most = 0;
              let at = 0;
              for (let i = 0; i < b.length; i++) {
                const err = Math.abs(a[i]! - b[i]!);
                const excess = Math.max(0, err - 64 * EPS32 * nz[i]!) / scale;
                if (kind !== "large-mean") worst = Math.max(worst, err / scale);
                if (!(excess <= most)) [most, at] = [excess, i];
              }
              if (kind !== "large-mean") expect(most, `${kind}: ${kernel} d${t.name}[${at}] float32 ${a[at]} vs float64 ${b[at]}`).toBeLessThanOrEqual(1e-4);
            }
          }
        },
      ),
      { numRuns: 30 },
    );
    worst32[p.name] = worst;
  });
});
