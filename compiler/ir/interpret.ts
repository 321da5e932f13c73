/**
 * The reference interpreter of whole programs: the forward steps, the naive backward and a fused
 * gradient, evaluated element by element with `evaluate` on concrete sizes and data. The checks
 * (verify.ts), the simplifier's numeric guards and the tests compare against it.
 */
import { evaluate, gradKey, tensorEnv } from "./evaluate.js";
import type { Expr } from "./expr.js";
import { shapeOf, tensorOf, type Program } from "./program.js";
import type { Backward } from "./backward.js";
import { checkBudget } from "../limits.js";

/** Tensors by name (a gradient as `d<name>`), each a flat row-major array with its dimensions. */
export type Tensors = Map<string, { data: Float64Array; dims: number[] }>;

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
  all.set(gradKey(bw.upstream.name), { data: dout, dims: shapeOf(p, out).map((s) => sizes[s]!) });
  const env = tensorEnv({ tensors: all, sizes, constants, sizeOf: p.sizeOf });
  for (const b of bw.blocks)
    for (const s of b.statements) {
      const base = tensorOf(p, s.target.name.replace(/#\d+$/, ""));
      const dims = shapeOf(p, base).map((x) => sizes[x]!);
      all.set(gradKey(s.target.name), { data: fill(dims, (bind) => evaluate(s.expr, env, bind, magnitude), s.target.indices), dims });
    }
  return all;
}

/** Evaluates the gradient `e` of input `k` over that input's indices, reading the tensors in `all`. */
export function evaluateGradient(p: Program, e: Expr, k: number, all: Tensors, sizes: Readonly<Record<string, number>>, constants: Readonly<Record<string, number>>): Float64Array {
  const t = p.inputs[k]!;
  const env = tensorEnv({ tensors: all, sizes, constants, sizeOf: p.sizeOf });
  return fill(
    shapeOf(p, t).map((s) => sizes[s]!),
    (b) => evaluate(e, env, b),
    t.indices,
  );
}
