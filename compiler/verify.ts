/**
 * Checks the driver runs after each stage. Structural checks (indices in scope, gradients defined
 * before use) catch compiler bugs early; the numeric check evaluates the naive and the fused
 * backward with the reference interpreter on small random data and refuses a fused form that
 * disagrees, so a wrong rewrite can never reach a generated kernel.
 */
import { refsOf, print } from "./ir/expr.js";
import { shapeOf, tensorOf, type Program } from "./ir/program.js";
import type { Backward, Fused } from "./ir/backward.js";
import { evaluateGradient, fill, hasGradient, interpretBackward, interpretForward, randomInputs, type Tensors } from "./ir/interpret.js";
import { evaluator, gradKey, tensorEnv } from "./ir/evaluate.js";
import { prng } from "./ir/random.js";
import { nameTable } from "./ir/table.js";
import { randomSizes } from "./ir/sizes.js";

export class InternalError extends Error {}

export function verifyProgram(p: Program): void {
  const seen = new Set(p.inputs.map((t) => t.name));
  for (const s of p.steps) {
    for (const i of s.rhs.free) if (!s.indices.includes(i)) throw new InternalError(`step ${s.name}: index ${i} free on the right`);
    for (const r of refsOf(s.rhs)) if (!seen.has(r.name)) throw new InternalError(`step ${s.name}: ${r.name} is not defined before it`);
    seen.add(s.name);
  }
}

export function verifyBackward(p: Program, bw: Backward): void {
  const defined = new Set([bw.upstream.name, ...bw.upstreams.map((u) => u.grad.name)]);
  for (const b of bw.blocks)
    for (const s of b.statements) {
      for (const i of s.expr.free) if (!s.target.indices.includes(i)) throw new InternalError(`${print(s.target)}: index ${i} free on the right`);
      for (const r of refsOf(s.expr)) if (r.space === "grad" && !defined.has(r.name)) throw new InternalError(`${print(s.target)} reads d${r.name} before it is computed`);
      defined.add(s.target.name);
    }
  for (const g of bw.gradients) if (!defined.has(g.grad.name)) throw new InternalError(`no gradient for ${g.input.name}`);
}

/**
 * The forward values recomputed step by step with every step's elements moved by up to 8 ulps of
 * the terms they were computed from (the inputs stay): a value that cancelled to rounding noise
 * moves by as much as its noise, not by a few ulps of itself, and the steps after it compute from
 * the moved value, so noise that a later step amplifies (a normalization of a sum that cancelled)
 * is amplified here too.
 */
function shake(p: Program, tensors: Tensors, sizes: Readonly<Record<string, number>>, constants: Readonly<Record<string, number>>, rand: () => number): Tensors {
  const out: Tensors = new Map(tensors);
  const env = tensorEnv({ tensors: out, sizes, constants, sizeOf: p.sizeOf });
  for (const s of p.steps) {
    const t = tensors.get(s.name)!;
    const [plain, size] = [evaluator(env), evaluator(env, true)];
    const value = fill(t.dims, (b) => plain(s.rhs, b), s.indices);
    const terms = fill(t.dims, (b) => size(s.rhs, b), s.indices);
    out.set(s.name, { dims: t.dims, data: value.map((v, i) => v + 8 * Number.EPSILON * terms[i]! * (rand() * 2 - 1)) });
  }
  return out;
}

/** One random point of the numeric check: the naive gradients there, and how much rounding moves them. */
interface Trial {
  readonly sizes: Readonly<Record<string, number>>;
  readonly constants: Readonly<Record<string, number>>;
  /** The forward values and every naive gradient array. */
  readonly all: Tensors;
  /** 1e-6 of the layer's largest finite naive gradient: the floor a cancelled gradient is measured against. */
  readonly floor: number;
  /** The size of the terms each naive gradient element sums (its rounding noise is a few ulps of it). */
  readonly terms: () => Tensors;
  /** The naive gradients again, on forward values moved by a few ulps (`shake`). */
  readonly shaken: () => Tensors;
}

/**
 * The naive side of the numeric check, by backward and seed: the driver checks the fused gradients
 * and then the scheduled ones against the same naive backward at the same points, so the reference
 * interpreter runs the naive backward once for both. The two noise measures are made only when a
 * comparison needs them: they only widen the tolerance, and nearly every element agrees without.
 */
const trialsOf = new WeakMap<Backward, Map<number, readonly Trial[]>>();

function naiveTrials(p: Program, bw: Backward, seed: number): readonly Trial[] {
  let bySeed = trialsOf.get(bw);
  if (!bySeed) trialsOf.set(bw, (bySeed = new Map()));
  const known = bySeed.get(seed);
  if (known) return known;
  const rand = prng(seed);
  const trials: Trial[] = [];
  for (let trial = 0; trial < 3; trial++) {
    const sizes = randomSizes(p, rand, 2, 3);
    const constants = nameTable(p.constants.map((c) => [c.name, c.value]));
    // positive values first, then mixed signs: a rewrite must hold for both
    const inputs = randomInputs(p, sizes, rand, () => (trial === 0 ? 0.5 + rand() : (rand() < 0.5 ? -1 : 1) * (0.5 + rand())));
    const tensors = interpretForward(p, inputs, sizes, constants);
    const dout = nameTable<Float64Array>();
    for (const o of p.outputs) dout[o] = Float64Array.from({ length: shapeOf(p, tensorOf(p, o)).reduce((a, s) => a * sizes[s]!, 1) }, () => rand() * 2 - 1);
    const all = interpretBackward(p, bw, tensors, sizes, constants, dout);
    // a gradient that cancels to rounding noise (batchnorm's dx with eps = 0 and N = 2) is measured
    // against 1e-6 of the layer's largest gradient, as in the tests
    let largest = 1e-300;
    for (const g of bw.gradients) for (const v of all.get(gradKey(g.input.name))!.data) if (Number.isFinite(v)) largest = Math.max(largest, Math.abs(v));
    const shakeSeed = Math.floor(rand() * 2 ** 32);
    let terms: Tensors | undefined;
    let shaken: Tensors | undefined;
    trials.push({
      sizes,
      constants,
      all,
      floor: 1e-6 * largest,
      terms: () => (terms ??= interpretBackward(p, bw, tensors, sizes, constants, dout, true)),
      // rounding in the forward values reaches the naive gradient too: a step that is 0 up to
      // rounding (a sum of x - mean(x)) gives a naive gradient of pure noise where the fused one is
      // exactly 0. That noise is measured: the naive gradient again, on forward values moved by a few ulps
      shaken: () => (shaken ??= interpretBackward(p, bw, shake(p, tensors, sizes, constants, prng(shakeSeed)), sizes, constants, dout)),
    });
  }
  bySeed.set(seed, trials);
  return trials;
}

export function verifyFused(p: Program, bw: Backward, fused: Fused, seed = 12345): void {
  for (const { sizes, constants, all, floor, terms, shaken } of naiveTrials(p, bw, seed)) {
    p.inputs.forEach((t, k) => {
      if (!hasGradient(p, k)) return;
      const naive = all.get(gradKey(t.name))!.data;
      const fast = evaluateGradient(p, fused.gradients[k]!, k, all, sizes, constants);
      // where the naive gradient is not finite (a spec may take log of a negative value) there is
      // nothing to compare; where it is finite, the fused one must be finite and equal
      const scale = naive.reduce((a, v) => (Number.isFinite(v) ? Math.max(a, Math.abs(v)) : a), floor);
      for (let i = 0; i < naive.length; i++) {
        if (!Number.isFinite(naive[i]!)) continue;
        const off = Math.abs(naive[i]! - fast[i]!);
        if (off <= 1e-9 * scale) continue;
        const noise = terms().get(gradKey(t.name))!.data[i]!;
        const moved = shaken().get(gradKey(t.name))!.data[i]!;
        if (!(off <= 1e-9 * scale + 1e3 * Number.EPSILON * noise + 64 * Math.abs(naive[i]! - moved)))
          throw new InternalError(`the fused gradient d${t.name} = ${print(fused.gradients[k]!, p.letters)} disagrees with the naive one (${fast[i]} vs ${naive[i]} at element ${i}); this is a bug in backpass`);
      }
    });
  }
}
