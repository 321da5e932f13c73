/**
 * The reference interpreter of whole programs: the forward steps, the naive backward and a fused
 * gradient, evaluated element by element with `evaluate` on concrete sizes and data. The checks
 * (verify.ts), the simplifier's numeric guards and the tests compare against it.
 */
import { evaluator, gradKey, tensorEnv } from "./evaluate.js";
import { collect, type Delta, type Expr, type Where } from "./expr.js";
import { isDifferentiable, shapeOf, tensorOf, type Program } from "./program.js";
import type { Backward } from "./backward.js";
import { checkBudget } from "../limits.js";

/** Tensors by name (a gradient as `d<name>`), each a flat row-major array with its dimensions. */
export type Tensors = Map<string, { data: Float64Array; dims: number[] }>;

/**
 * The sizes each integer input indexes: for every gather `t[..., ids[...], ...]` in the steps, the
 * size of the position `ids` stands in. Its values must lie in `[0, size)` for each of them.
 */
export function gatherSizes(p: Program): Map<string, string[]> {
  const out = new Map<string, string[]>();
  // the operands of a where's comparison are not children (see Where): walked here too
  const roots: Expr[] = p.steps.map((s) => s.rhs);
  const deltas: Delta[] = [];
  for (let k = 0; k < roots.length; k++)
    for (const x of collect(roots[k]!, (y): y is Delta | Where => y.kind === "delta" || y.kind === "where")) {
      if (x.kind === "delta") deltas.push(x);
      else roots.push(x.left, x.right);
    }
  for (const d of deltas) {
    if (d.form.kind !== "gather") continue; // an affine index out of range reads 0: nothing to check
    const name = d.form.from.name;
    const size = p.sizeOf(d.index);
    const list = out.get(name) ?? [];
    if (!list.includes(size)) list.push(size);
    out.set(name, list);
  }
  return out;
}

/**
 * Refuses an integer input with a value outside the range of a position it indexes, naming the
 * input, the element and the size, before anything is computed (CONTRACT §4.3).
 */
export function checkGathers(p: Program, inputs: Readonly<Record<string, ArrayLike<number>>>, sizes: Readonly<Record<string, number>>): void {
  for (const [name, syms] of gatherSizes(p)) {
    const t = tensorOf(p, name);
    const dims = shapeOf(p, t).map((s) => sizes[s]!);
    const data = inputs[name]!;
    const bound = Math.min(...syms.map((s) => sizes[s]!));
    for (let k = 0; k < data.length; k++) {
      const v = data[k]!;
      if (Number.isInteger(v) && v >= 0 && v < bound) continue;
      const at: number[] = [];
      let r = k;
      for (let j = dims.length - 1; j >= 0; j--) {
        at.unshift(r % dims[j]!);
        r = Math.floor(r / dims[j]!);
      }
      const size = syms.find((s) => !(v >= 0 && v < sizes[s]!)) ?? syms[0]!;
      throw new RangeError(`${name}[${at.join(",")}] is ${v}, outside [0, ${size}) = [0, ${sizes[size]}) of the position it indexes`);
    }
  }
}

/**
 * Random inputs for a program: `value()` for each float element, and for an integer input values
 * drawn uniformly from the range every position it indexes allows.
 */
export function randomInputs(p: Program, sizes: Readonly<Record<string, number>>, rand: () => number, value: () => number): Record<string, Float64Array | Int32Array> {
  const ranges = gatherSizes(p);
  const out: Record<string, Float64Array | Int32Array> = Object.create(null) as Record<string, Float64Array | Int32Array>;
  for (const t of p.inputs) {
    const n = shapeOf(p, t).reduce((a, s) => a * sizes[s]!, 1);
    if (t.kind === "int") {
      const bound = Math.min(...(ranges.get(t.name) ?? []).map((s) => sizes[s]!), 2 ** 31 - 1);
      out[t.name] = Int32Array.from({ length: n }, () => Math.floor(rand() * bound));
    } else out[t.name] = Float64Array.from({ length: n }, value);
  }
  return out;
}

/** Evaluates the forward program with the interpreter. Out-of-range gather ids are a RangeError. */
export function interpretForward(
  p: Program,
  inputs: Readonly<Record<string, Float64Array | Int32Array>>,
  sizes: Readonly<Record<string, number>>,
  constants: Readonly<Record<string, number>>,
): Tensors {
  checkGathers(p, inputs, sizes);
  const tensors: Tensors = new Map();
  // an integer input's values are exact in a Float64Array
  for (const t of p.inputs) {
    const data = inputs[t.name]!;
    tensors.set(t.name, { data: data instanceof Float64Array ? data : Float64Array.from(data), dims: shapeOf(p, t).map((s) => sizes[s]!) });
  }
  const env = tensorEnv({ tensors, sizes, constants, sizeOf: p.sizeOf });
  for (const s of p.steps) {
    const dims = shapeOf(p, s).map((x) => sizes[x]!);
    const at = evaluator(env);
    tensors.set(s.name, { data: fill(dims, (b) => at(s.rhs, b), s.indices), dims });
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

/**
 * The upstream gradients: `dout` for a spec's one output, or by output name (CONTRACT §4.4; an
 * output left out has zero gradient).
 */
export type Dout = Float64Array | Readonly<Record<string, Float64Array | undefined>>;

/** Sets the upstream gradient arrays of `bw` in `all` from `dout`. */
export function setUpstreams(p: Program, bw: Backward, all: Tensors, sizes: Readonly<Record<string, number>>, dout: Dout): void {
  for (const u of bw.upstreams) {
    const dims = shapeOf(p, tensorOf(p, u.output)).map((s) => sizes[s]!);
    const given = dout instanceof Float64Array ? (u.output === p.output ? dout : undefined) : Object.hasOwn(dout, u.output) ? dout[u.output] : undefined;
    all.set(gradKey(u.grad.name), { data: given ?? new Float64Array(dims.reduce((a, b) => a * b, 1)), dims });
  }
}

/** Evaluates the naive backward statements with the interpreter; returns every gradient array. */
export function interpretBackward(
  p: Program,
  bw: Backward,
  tensors: Tensors,
  sizes: Readonly<Record<string, number>>,
  constants: Readonly<Record<string, number>>,
  dout: Dout,
  magnitude = false,
): Tensors {
  const all: Tensors = new Map(tensors);
  setUpstreams(p, bw, all, sizes, dout);
  const env = tensorEnv({ tensors: all, sizes, constants, sizeOf: p.sizeOf });
  for (const b of bw.blocks)
    for (const s of b.statements) {
      const base = tensorOf(p, s.target.name.replace(/#\d+$/, ""));
      const dims = shapeOf(p, base).map((x) => sizes[x]!);
      const at = evaluator(env, magnitude);
      all.set(gradKey(s.target.name), { data: fill(dims, (bind) => at(s.expr, bind), s.target.indices), dims });
    }
  return all;
}

/** Whether input `k` has a gradient (neither `int` nor `nograd`). */
export function hasGradient(p: Program, k: number): boolean {
  return isDifferentiable(p.inputs[k]!);
}

/** Evaluates the gradient `e` of input `k` over that input's indices, reading the tensors in `all`. */
export function evaluateGradient(p: Program, e: Expr, k: number, all: Tensors, sizes: Readonly<Record<string, number>>, constants: Readonly<Record<string, number>>): Float64Array {
  const t = p.inputs[k]!;
  const at = evaluator(tensorEnv({ tensors: all, sizes, constants, sizeOf: p.sizeOf }));
  return fill(
    shapeOf(p, t).map((s) => sizes[s]!),
    (b) => at(e, b),
    t.indices,
  );
}
