/**
 * Checks the driver runs after each stage. Structural checks (indices in scope, gradients defined
 * before use) catch compiler bugs early; the numeric check evaluates the naive and the fused
 * backward with the reference interpreter on small random data and refuses a fused form that
 * disagrees, so a wrong rewrite can never reach a generated kernel.
 */
import { evaluate, tensorEnv } from "./ir/evaluate.js";
import { refsOf, print, type Expr } from "./ir/expr.js";
import { shapeOf, tensorOf, type Program } from "./ir/program.js";
import type { Backward } from "./differentiate/reverse.js";
import type { Fused } from "./simplify/fused.js";
import { prng } from "./differentiate/cas.js";
import { nameTable } from "./ir/table.js";
import { checkBudget } from "./limits.js";

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
  const defined = new Set([bw.upstream.name]);
  for (const b of bw.blocks)
    for (const s of b.statements) {
      for (const i of s.expr.free) if (!s.target.indices.includes(i)) throw new InternalError(`${print(s.target)}: index ${i} free on the right`);
      for (const r of refsOf(s.expr)) if (r.space === "grad" && !defined.has(r.name)) throw new InternalError(`${print(s.target)} reads d${r.name} before it is computed`);
      defined.add(s.target.name);
    }
  for (const g of bw.gradients) if (!defined.has(g.grad.name)) throw new InternalError(`no gradient for ${g.input.name}`);
}

type Tensors = Map<string, { data: Float64Array; dims: number[] }>;

/** Evaluates the forward program with the interpreter. */
export function interpretForward(p: Program, inputs: Readonly<Record<string, Float64Array>>, sizes: Readonly<Record<string, number>>, constants: Readonly<Record<string, number>>): Tensors {
  const tensors: Tensors = new Map();
  for (const t of p.inputs) tensors.set(t.name, { data: inputs[t.name]!, dims: shapeOf(p, t).map((s) => sizes[s]!) });
  const env = tensorEnv({ tensors, sizes, constants, sizeOf: p.sizeOf });
  for (const s of p.steps) {
    const dims = shapeOf(p, s).map((x) => sizes[x]!);
    tensors.set(s.name, { data: fill(dims, (b) => evaluate(s.rhs, env, b), s.indices), dims });
  }
  return tensors;
}

/** Evaluates `e` at every index combination of `indices`, row-major. */
export function fill(dims: readonly number[], f: (b: Map<string, number>) => number, indices: readonly string[]): Float64Array {
  const n = dims.reduce((a, b) => a * b, 1);
  const out = new Float64Array(n);
  const b = new Map<string, number>();
  for (let k = 0; k < n; k++) {
    checkBudget();
    let r = k;
    for (let j = indices.length - 1; j >= 0; j--) {
      b.set(indices[j]!, r % dims[j]!);
      r = Math.floor(r / dims[j]!);
    }
    out[k] = f(b);
  }
  return out;
}

/** Evaluates the naive backward statements with the interpreter; returns every gradient array. */
export function interpretBackward(
  p: Program,
  bw: Backward,
  tensors: Tensors,
  sizes: Readonly<Record<string, number>>,
  constants: Readonly<Record<string, number>>,
  dout: Float64Array,
  magnitude = false,
): Tensors {
  const all: Tensors = new Map(tensors);
  const out = tensorOf(p, p.output);
  all.set(`d${bw.upstream.name}`, { data: dout, dims: shapeOf(p, out).map((s) => sizes[s]!) });
  const env = tensorEnv({ tensors: all, sizes, constants, sizeOf: p.sizeOf });
  for (const b of bw.blocks)
    for (const s of b.statements) {
      const base = tensorOf(p, s.target.name.replace(/#\d+$/, ""));
      const dims = shapeOf(p, base).map((x) => sizes[x]!);
      all.set(`d${s.target.name}`, { data: fill(dims, (bind) => evaluate(s.expr, env, bind, magnitude), s.target.indices), dims });
    }
  return all;
}

export function evaluateGradient(p: Program, e: Expr, k: number, all: Tensors, sizes: Readonly<Record<string, number>>, constants: Readonly<Record<string, number>>): Float64Array {
  const t = p.inputs[k]!;
  const env = tensorEnv({ tensors: all, sizes, constants, sizeOf: p.sizeOf });
  return fill(
    shapeOf(p, t).map((s) => sizes[s]!),
    (b) => evaluate(e, env, b),
    t.indices,
  );
}

export function verifyFused(p: Program, bw: Backward, fused: Fused, seed = 12345): void {
  const rand = prng(seed);
  for (let trial = 0; trial < 3; trial++) {
    const sizes = nameTable<number>();
    for (const s of p.sizes) sizes[s] = 2 + Math.floor(rand() * 2);
    const constants = nameTable(p.constants.map((c) => [c.name, c.value]));
    const inputs = nameTable<Float64Array>();
    for (const t of p.inputs) {
      const n = shapeOf(p, t).reduce((a, s) => a * sizes[s]!, 1);
      // positive values first, then mixed signs: a rewrite must hold for both
      inputs[t.name] = Float64Array.from({ length: n }, () => (trial === 0 ? 0.5 + rand() : (rand() < 0.5 ? -1 : 1) * (0.5 + rand())));
    }
    const tensors = interpretForward(p, inputs, sizes, constants);
    const outLen = shapeOf(p, tensorOf(p, p.output)).reduce((a, s) => a * sizes[s]!, 1);
    const dout = Float64Array.from({ length: outLen }, () => rand() * 2 - 1);
    const all = interpretBackward(p, bw, tensors, sizes, constants, dout);
    // the size of the terms each naive gradient element sums: its rounding noise is a few ulps of it
    const terms = interpretBackward(p, bw, tensors, sizes, constants, dout, true);
    // a gradient that cancels to rounding noise (batchnorm's dx with eps = 0 and N = 2) is measured
    // against 1e-6 of the layer's largest gradient, as in the tests
    let largest = 1e-300;
    for (const t of p.inputs) for (const v of all.get(`d${t.name}`)!.data) if (Number.isFinite(v)) largest = Math.max(largest, Math.abs(v));
    p.inputs.forEach((t, k) => {
      const naive = all.get(`d${t.name}`)!.data;
      const fast = evaluateGradient(p, fused.gradients[k]!, k, all, sizes, constants);
      const noise = terms.get(`d${t.name}`)!.data;
      // where the naive gradient is not finite (a spec may take log of a negative value) there is
      // nothing to compare; where it is finite, the fused one must be finite and equal
      const scale = naive.reduce((a, v) => (Number.isFinite(v) ? Math.max(a, Math.abs(v)) : a), 1e-6 * largest);
      for (let i = 0; i < naive.length; i++)
        if (Number.isFinite(naive[i]!) && !(Math.abs(naive[i]! - fast[i]!) <= 1e-9 * scale + 1e3 * Number.EPSILON * noise[i]!))
          throw new InternalError(`the fused gradient d${t.name} = ${print(fused.gradients[k]!, p.letters)} disagrees with the naive one (${fast[i]} vs ${naive[i]} at element ${i}); this is a bug in backpass`);
    });
  }
}
