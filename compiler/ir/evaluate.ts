/**
 * A direct interpreter of the IR: the reference semantics every rewrite, CAS answer and kernel is
 * checked against. Slow and obvious on purpose.
 */
import { assertNever, collect, compare, evalFn, isReduction, print, type Delta, type Expr, type Ref, type SizeOf } from "./expr.js";
import { own } from "./table.js";

export interface Env {
  /** Value of a ref at concrete index values (in the ref's own index order). */
  readonly ref: (r: Ref, at: readonly number[]) => number;
  /** Value of a scalar symbol (constant or size). */
  readonly sym: (name: string) => number;
  /** Extent of an index. */
  readonly extent: (index: string) => number;
}

/**
 * Evaluates `e` at one binding of its free indices. With `magnitude`, every sum and product is
 * taken over absolute values: the size of the terms that rounding acts on, which bounds the
 * rounding error of any evaluation order (used to tell a gradient that is 0 from rounding noise).
 */
export function evaluate(e: Expr, env: Env, binding: ReadonlyMap<string, number> = new Map(), magnitude = false): number {
  const memo: Memo = [new Map(), new Map()];
  if (magnitude) return Math.abs(evaluateIn(e, env, binding, true, memo));
  return evaluateIn(e, env, binding, false, memo);
}

/**
 * An evaluator for many bindings in one environment (every cell of a tensor): a reduction is
 * evaluated once per value of its free indices across all the calls, not once per call (a
 * gradient's per-column sum is computed once for the column, not once per element).
 */
export function evaluator(env: Env, magnitude = false): (e: Expr, binding: ReadonlyMap<string, number>) => number {
  const memo: Memo = [new Map(), new Map()];
  return magnitude ? (e, b) => Math.abs(evaluateIn(e, env, b, true, memo)) : (e, b) => evaluateIn(e, env, b, false, memo);
}

/**
 * The value of each reduction at each binding of its free indices, for plain and magnitude
 * evaluation: a reduction nested in another is evaluated once per value of its own free indices,
 * not once per iteration of every loop around it (whose cost would grow as size^depth).
 */
type Memo = [Map<Expr, Map<number, number>>, Map<Expr, Map<number, number>>];

/** The binding of a reduction's free indices as one number (mixed radix by their extents): its key in the memo. */
function cellOf(free: readonly string[], env: Env, binding: ReadonlyMap<string, number>): number {
  let cell = 0;
  for (const i of free) {
    const v = binding.get(i);
    if (v === undefined) throw new Error(`index '${i}' is unbound`);
    cell = cell * env.extent(i) + v;
  }
  return cell;
}

/** A part of a sum or product: its value, or its size with `magnitude`. */
function part(x: Expr, env: Env, b: ReadonlyMap<string, number>, magnitude: boolean, memo: Memo): number {
  const v = evaluateIn(x, env, b, magnitude, memo);
  return magnitude ? Math.abs(v) : v;
}

/** The concrete values of indices at a binding. */
function bound(indices: readonly string[], binding: ReadonlyMap<string, number>): number[] {
  const at = new Array<number>(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const v = binding.get(indices[k]!);
    if (v === undefined) throw new Error(`index '${indices[k]}' is unbound`);
    at[k] = v;
  }
  return at;
}

// no closure is made per node: this runs for every node at every binding of every check
function evaluateIn(e: Expr, env: Env, binding: ReadonlyMap<string, number>, magnitude: boolean, memo: Memo): number {
  switch (e.kind) {
    case "num":
      return e.value;
    case "sym":
      return env.sym(e.name);
    case "ref":
      return env.ref(e, bound(e.indices, binding));
    case "add": {
      let s = 0;
      for (const t of e.terms) s += part(t, env, binding, magnitude, memo);
      return s;
    }
    case "mul": {
      let p = 1;
      for (const f of e.factors) p *= part(f, env, binding, magnitude, memo);
      return p;
    }
    case "pow": {
      // exponents, divisors and function arguments are values, not term sizes: 1/(a - b) is as
      // large as it is, and the terms a, b only matter through it
      const exp = evaluateIn(e.exp, env, binding, false, memo);
      const base = magnitude && exp > 0 ? part(e.base, env, binding, magnitude, memo) : evaluateIn(e.base, env, binding, false, memo);
      return Math.pow(base, exp);
    }
    case "call":
      return evalFn(e.fn, evaluateIn(e.arg, env, binding, false, memo));
    case "sum":
    case "max":
    case "stored": {
      // a stored product is its body, computed once per cell like a reduction over no index
      const indices = e.kind === "stored" ? [] : e.indices;
      const table = memo[magnitude ? 1 : 0];
      let values = table.get(e);
      if (!values) table.set(e, (values = new Map()));
      const key = cellOf(e.free, env, binding);
      const known = values.get(key);
      if (known !== undefined) return known;
      const isMax = e.kind === "max";
      const extents = indices.map((i) => env.extent(i));
      const b = new Map(binding);
      let total = isMax ? -Infinity : 0;
      // every binding of the reduced indices, the last one fastest
      const at = indices.map(() => 0);
      const empty = extents.some((n) => n <= 0);
      for (let k = 0; k < indices.length; k++) b.set(indices[k]!, 0);
      while (!empty) {
        const v = part(e.body, env, b, magnitude, memo);
        total = isMax ? Math.max(total, v) : total + v;
        let k = indices.length - 1;
        while (k >= 0 && ++at[k]! === extents[k]!) {
          at[k] = 0;
          b.set(indices[k]!, 0);
          k--;
        }
        if (k < 0) break;
        b.set(indices[k]!, at[k]!);
      }
      values.set(key, total);
      return total;
    }
    case "where": {
      // the comparison on values, then only the chosen branch (the other may be undefined there)
      const l = evaluateIn(e.left, env, binding, false, memo);
      const r = evaluateIn(e.right, env, binding, false, memo);
      return part(compare(e.op, l, r) ? e.then : e.else, env, binding, magnitude, memo);
    }
    case "delta":
      return deltaValue(e, env, binding);
    default:
      return assertNever(e, "expression");
  }
}

/** The value of a delta: 1 where its letter equals its index form's value. */
function deltaValue(e: Delta, env: Env, binding: ReadonlyMap<string, number>): number {
  const at = binding.get(e.index);
  if (at === undefined) throw new Error(`index '${e.index}' is unbound`);
  return at === formValue(e, env, binding) ? 1 : 0;
}

/** The value of a delta's index form at a binding: for a gather, the integer element it reads. */
function formValue(e: Delta, env: Env, binding: ReadonlyMap<string, number>): number {
  const f = e.form;
  switch (f.kind) {
    case "gather":
      return env.ref(f.from, bound(f.from.indices, binding));
    case "affine": {
      // the numerator; a value that the divisor does not divide matches no index (NaN)
      let v = f.offset;
      for (const t of f.terms) {
        const x = binding.get(t.index);
        if (x === undefined) throw new Error(`index '${t.index}' is unbound`);
        v += t.coef * x;
      }
      return v % f.divisor === 0 ? v / f.divisor : NaN;
    }
    default:
      return assertNever(f, "index form");
  }
}

/** Tensors as flat row-major arrays with their index order, sizes and constants. */
export interface TensorEnv {
  readonly tensors: ReadonlyMap<string, { readonly data: ArrayLike<number>; readonly dims: readonly number[] }>;
  readonly sizes: Readonly<Record<string, number>>;
  readonly constants: Readonly<Record<string, number>>;
  readonly sizeOf: SizeOf;
}

/**
 * The key of a gradient in a table of tensors beside the values. Not `d<name>`: a spec may name an
 * input `x` and another `dx`, and a gradient must never take a value's place.
 */
export function gradKey(name: string): string {
  return `∂${name}`;
}

export function tensorEnv(t: TensorEnv): Env {
  // each ref's tensor, found once: this runs for every element read of every check
  const tensorOf = new Map<Ref, { readonly data: ArrayLike<number>; readonly dims: readonly number[] }>();
  return {
    ref: (r, at) => {
      let x = tensorOf.get(r);
      if (!x) {
        const key = r.space === "grad" ? gradKey(r.name) : r.name;
        x = t.tensors.get(key);
        if (!x) throw new Error(`no tensor '${key}'`);
        tensorOf.set(r, x);
      }
      let off = 0;
      for (let k = 0; k < at.length; k++) off = off * x.dims[k]! + at[k]!;
      return x.data[off]!;
    },
    sym: (n) => {
      const v = own(t.constants, n) ?? own(t.sizes, n);
      if (v === undefined) throw new Error(`no value for '${n}'`);
      return v;
    },
    extent: (i) => {
      const v = own(t.sizes, t.sizeOf(i));
      if (v === undefined) throw new Error(`no size for index '${i}'`);
      return v;
    },
  };
}

/**
 * The leaves (refs, symbols and deltas) of a flat expression, each once, in the order first met,
 * those of a where's comparison included (its operands are not children, but evalLeaves reads them).
 */
export function leavesOf(e: Expr): Expr[] {
  const out: Expr[] = [];
  const roots = [e];
  for (let k = 0; k < roots.length; k++)
    for (const x of collect(roots[k]!, (y) => {
      if (isReduction(y)) throw new Error("leavesOf(): reduction in a flat expression");
      return y.kind === "ref" || y.kind === "sym" || y.kind === "delta" || y.kind === "where";
    }))
      if (x.kind === "where") roots.push(x.left, x.right);
      else if (!out.includes(x)) out.push(x);
  return out;
}

/** Evaluates a flat expression with given leaf values. */
export function evalLeaves(e: Expr, values: ReadonlyMap<Expr, number>): number {
  const v = values.get(e);
  if (v !== undefined) return v;
  switch (e.kind) {
    case "num":
      return e.value;
    case "sym":
    case "ref":
    case "delta":
      throw new Error(`no value for ${print(e)}`);
    case "add":
      return e.terms.reduce((a, t) => a + evalLeaves(t, values), 0);
    case "mul":
      return e.factors.reduce((a, t) => a * evalLeaves(t, values), 1);
    case "pow":
      return Math.pow(evalLeaves(e.base, values), evalLeaves(e.exp, values));
    case "call":
      return evalFn(e.fn, evalLeaves(e.arg, values));
    case "where":
      return compare(e.op, evalLeaves(e.left, values), evalLeaves(e.right, values)) ? evalLeaves(e.then, values) : evalLeaves(e.else, values);
    case "sum":
    case "max":
    case "stored":
      throw new Error("evalLeaves(): reduction in a flat expression");
    default:
      return assertNever(e, "expression");
  }
}
