/**
 * Measurements shared by the tests and scripts/numerics.ts, with no test-runner dependency: random
 * inputs of the awkward kinds, and gradient errors judged against the rounding of their terms.
 */
import { gradKey } from "../compiler/ir/evaluate.js";
import type { Program } from "../compiler/ir/program.js";
import { isDifferentiable, shapeOf, tensorOf } from "../compiler/ir/program.js";
import { gatherSizes, interpretBackward, interpretForward, type Dout } from "../compiler/ir/interpret.js";
import type { Backward } from "../compiler/ir/backward.js";
import { differentiate } from "../compiler/differentiate/reverse.js";
import { throughOwnValue } from "../compiler/simplify/fused.js";

export function lengthOf(p: Program, name: string, sizes: Record<string, number>): number {
  return shapeOf(p, tensorOf(p, name)).reduce((a, s) => a * sizes[s]!, 1);
}

/**
 * Error of gradient `f` against `g` relative to the larger of |g| and 1e-6 of the largest gradient
 * of the layer, after discounting rounding noise: `noise[i]` is the size of the terms that the
 * naive gradient's element `i` sums (the interpreter's magnitude evaluation), and 64 ulps of it are
 * forgiven. So a gradient that cancels to almost nothing (softmax_xent with one class) is compared
 * with the rounding of its terms, never with its own rounding. `noise` may be a function that
 * measures it (the reference interpreter, far slower than the kernels): it is called only when the
 * error before forgiving anything is over 1e-13 of the scale.
 */
export function gradientError(f: Float64Array, g: Float64Array, largest: number, noise: Float64Array | (() => Float64Array)): number {
  let scale = Math.max(1e-6 * largest, 1e-300);
  for (const v of g) scale = Math.max(scale, Math.abs(v));
  if (typeof noise === "function") {
    // noise given as a function is measured only when needed: an error within 1e-13 of the scale is
    // under every tolerance a gradient is judged by, and forgiving rounding can only lower it
    let raw = 0;
    for (let i = 0; i < g.length; i++) raw = Math.max(raw, Math.abs(f[i]! - g[i]!) / scale);
    if (raw <= 1e-13) return raw;
    noise = noise();
  }
  let err = 0;
  for (let i = 0; i < g.length; i++) err = Math.max(err, Math.max(0, Math.abs(f[i]! - g[i]!) - 64 * Number.EPSILON * noise[i]!) / scale);
  return err;
}

const backwards = new Map<Program, Backward>();
/** The size of the terms behind each naive gradient element, from the reference interpreter. */
export function gradientNoise(p: Program, inputs: Inputs, sizes: Record<string, number>, dout: Dout): Map<string, Float64Array> {
  let bw = backwards.get(p);
  if (!bw) backwards.set(p, (bw = differentiate(p, throughOwnValue)));
  const constants = Object.fromEntries(p.constants.map((c) => [c.name, c.value]));
  const all = interpretBackward(p, bw, interpretForward(p, inputs, sizes, constants), sizes, constants, dout, true);
  return new Map(p.inputs.filter(isDifferentiable).map((t) => [t.name, all.get(gradKey(t.name))!.data]));
}

/** Inputs of a spec: Float64Arrays, and Int32Arrays for its integer inputs. */
export type Inputs = Record<string, Float64Array | Int32Array>;

export type DataKind = "normal" | "constant" | "large-mean" | "tiny";

/**
 * Random inputs: `constant` fills the first float input with one value (zero variance along every axis),
 * `large-mean` puts it at 1e4 with a spread of 1e-2, `tiny` scales it to 1e-3.
 */
export function randomInputs(p: Program, sizes: Record<string, number>, kind: DataKind, rand: () => number): Inputs {
  const ranges = gatherSizes(p);
  // the data kinds shape the first float input
  const first = p.inputs.findIndex((t) => t.kind !== "int");
  return Object.fromEntries(
    p.inputs.map((t, k) => {
      const n = lengthOf(p, t.name, sizes);
      if (t.kind === "int") {
        // valid ids: uniform in the range of every position the input indexes
        const bound = Math.min(...(ranges.get(t.name) ?? []).map((s) => sizes[s]!), 2 ** 31 - 1);
        return [t.name, Int32Array.from({ length: n }, () => Math.floor(rand() * bound))];
      }
      const u = () => rand() * 2 - 1;
      const c = 3 * u();
      let f = (i: number) => 2 * u() + (i % 3) * 0.5;
      if (k === first && kind === "constant") f = () => c;
      if (k === first && kind === "large-mean") f = () => 1e4 + 1e-2 * u();
      if (k === first && kind === "tiny") f = () => 1e-3 * u();
      return [t.name, Float64Array.from({ length: n }, (_, i) => f(i))];
    }),
  );
}


