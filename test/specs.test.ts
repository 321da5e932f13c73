/**
 * One property suite for every spec in specs/: the committed generated module's forward against the
 * reference interpreter's evaluation of the spec, and both backward kernels against each other and
 * against finite differences, over random sizes (1 included) and awkward data. A new spec gets all
 * of this by being added to specs/.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { checkSpec } from "../compiler/parse/check.js";
import { interpretForward } from "../compiler/verify.js";
import { prng } from "../compiler/differentiate/cas.js";
import type { Program } from "../compiler/ir/program.js";
import { checkModule, gradientError, lengthOf, relErr, type Kernels } from "./harness.js";

const specDir = join(import.meta.dirname, "../specs");
const files = readdirSync(specDir).filter((f) => f.endsWith(".spec.ts")).sort();

export type DataKind = "normal" | "constant" | "large-mean" | "tiny";

/**
 * Random inputs: `constant` fills the first input with one value (zero variance along every axis),
 * `large-mean` puts it at 1e4 with a spread of 1e-2, `tiny` scales it to 1e-3.
 */
export function randomInputs(p: Program, sizes: Record<string, number>, kind: DataKind, rand: () => number): Record<string, Float64Array> {
  return Object.fromEntries(
    p.inputs.map((t, k) => {
      const n = lengthOf(p, t.name, sizes);
      const u = () => rand() * 2 - 1;
      const c = 3 * u();
      let f = (i: number) => 2 * u() + (i % 3) * 0.5;
      if (k === 0 && kind === "constant") f = () => c;
      if (k === 0 && kind === "large-mean") f = () => 1e4 + 1e-2 * u();
      if (k === 0 && kind === "tiny") f = () => 1e-3 * u();
      return [t.name, Float64Array.from({ length: n }, (_, i) => f(i))];
    }),
  );
}

describe.each(files)("specs/%s", (file) => {
  it("forward matches the spec's evaluation; naive, fused and finite differences agree", async () => {
    const p = checkSpec((await import(join(specDir, file))).default, file);
    const mod = (await import(`../generated/${p.name}.ts`)) as unknown as Kernels;
    const maxSize = p.sizes.length > 3 ? 3 : 5;
    const worst = { fused: 0, fd: 0, forward: 0 };
    fc.assert(
      fc.property(
        fc.tuple(...p.sizes.map(() => fc.integer({ min: 1, max: maxSize }))),
        fc.constantFrom<DataKind>("normal", "constant", "large-mean", "tiny"),
        fc.integer(),
        (dims, kind, seed) => {
          const rand = prng(seed);
          const sizes = Object.fromEntries(p.sizes.map((s, k) => [s, dims[k]!]));
          const inputs = randomInputs(p, sizes, kind, rand);
          const constants = Object.fromEntries(p.constants.map((c) => [c.name, c.value]));
          // forward: every cached step and the output against the interpreter
          const { cache, ...outs } = mod.forward(inputs, sizes) as Record<string, unknown> & { cache: Record<string, unknown> };
          const ref = interpretForward(p, inputs, sizes, constants);
          const out = outs[p.output] as Float64Array;
          const want = ref.get(p.output)!.data;
          for (const v of out) expect(Number.isFinite(v), `${kind}: forward gives a non-finite value`).toBe(true);
          const e = relErr(out, want, 1e-300);
          worst.forward = Math.max(worst.forward, e);
          // 1e4 with a spread of 1e-2 loses 6 of 16 digits to cancellation in any summation order
          const forwardTol = kind === "large-mean" ? 1e-8 : 1e-12;
          expect(e, "forward against the interpreter").toBeLessThanOrEqual(forwardTol);
          for (const [name, value] of Object.entries(cache)) {
            if (!(value instanceof Float64Array) || !ref.has(name)) continue;
            expect(relErr(value, ref.get(name)!.data, 1e-300), `cached ${name}`).toBeLessThanOrEqual(forwardTol);
          }
          if (kind === "large-mean") {
            // a spread of 1e-6 of the mean: finite differences cannot resolve the layer there, so the
            // two kernels are held to each other and to finiteness
            const dout = Float64Array.from({ length: out.length }, () => rand() * 2 - 1);
            const naive = mod.backwardNaive(dout, cache);
            const fused = mod.backwardFused(dout, cache);
            let largest = 1e-300;
            for (const g of Object.values(naive)) for (const v of g) largest = Math.max(largest, Math.abs(v));
            for (const [g, v] of Object.entries(fused)) {
              for (const x of v) expect(Number.isFinite(x), `${g} finite`).toBe(true);
              const x = inputs[g.slice(1)]!;
              expect(gradientError(v, naive[g]!, largest, dout, out, x), `${g}: fused against naive`).toBeLessThanOrEqual(1e-6);
            }
            return;
          }
          const r = checkModule(mod, p, sizes, inputs, rand);
          worst.fused = Math.max(worst.fused, r.fused);
          worst.fd = Math.max(worst.fd, r.fd);
        },
      ),
      { numRuns: 40 },
    );
    expect(worst.forward).toBeLessThanOrEqual(1e-8);
  });
});
