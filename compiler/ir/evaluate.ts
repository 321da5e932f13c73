/**
 * A direct interpreter of the IR: the reference semantics every rewrite, CAS answer and kernel is
 * checked against. Obvious on purpose: each node kind's meaning is one case of `Evaluation.read`,
 * which reads a node once into a function of the binding instead of walking it again per cell.
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
  const v = new Evaluation(env).of(e, magnitude)(binding);
  return magnitude ? Math.abs(v) : v;
}

/**
 * An evaluator for many bindings in one environment (every cell of a tensor): a reduction is
 * evaluated once per value of its free indices across all the calls, not once per call (a
 * gradient's per-column sum is computed once for the column, not once per element).
 */
export function evaluator(env: Env, magnitude = false): (e: Expr, binding: ReadonlyMap<string, number>) => number {
  const ev = new Evaluation(env);
  return magnitude ? (e, b) => Math.abs(ev.of(e, true)(b)) : (e, b) => ev.of(e, false)(b);
}

type Binding = ReadonlyMap<string, number>;
/** A node's value at a binding of its free indices. */
type Value = (b: Binding) => number;

/** The value of an index at a binding. */
function indexAt(b: Binding, i: string): number {
  const v = b.get(i);
  if (v === undefined) throw new Error(`index '${i}' is unbound`);
  return v;
}

/**
 * The evaluation of nodes in one environment. Each node is read once into a function of the
 * binding (per mode: plain, or magnitude), which then runs for every binding it is asked at; each
 * reduction keeps its value per binding of its free indices, so that a reduction nested in another
 * is evaluated once per value of its own free indices, not once per iteration of every loop around
 * it (whose cost would grow as size^depth). The cases below are the whole semantics.
 */
class Evaluation {
  private readonly values: [Map<Expr, Value>, Map<Expr, Value>] = [new Map(), new Map()];

  constructor(private readonly env: Env) {}

  /** `e`'s value; with `magnitude`, the size of its terms (a part of a sum or product counts by its absolute value). */
  of(e: Expr, magnitude: boolean): Value {
    const table = this.values[magnitude ? 1 : 0];
    let f = table.get(e);
    if (!f) table.set(e, (f = this.read(e, magnitude)));
    return f;
  }

  private read(e: Expr, magnitude: boolean): Value {
    const env = this.env;
    switch (e.kind) {
      case "num": {
        const v = e.value;
        return () => v;
      }
      case "sym": {
        const name = e.name;
        return () => env.sym(name);
      }
      case "ref": {
        const idx = e.indices;
        // one array per ref, refilled at each read (env.ref reads it at once)
        const at = new Array<number>(idx.length);
        return (b) => {
          for (let k = 0; k < idx.length; k++) at[k] = indexAt(b, idx[k]!);
          return env.ref(e, at);
        };
      }
      case "add": {
        const terms = e.terms.map((t) => this.of(t, magnitude));
        return magnitude
          ? (b) => {
              let s = 0;
              for (const t of terms) s += Math.abs(t(b));
              return s;
            }
          : (b) => {
              let s = 0;
              for (const t of terms) s += t(b);
              return s;
            };
      }
      case "mul": {
        const factors = e.factors.map((f) => this.of(f, magnitude));
        return magnitude
          ? (b) => {
              let p = 1;
              for (const f of factors) p *= Math.abs(f(b));
              return p;
            }
          : (b) => {
              let p = 1;
              for (const f of factors) p *= f(b);
              return p;
            };
      }
      case "pow": {
        // exponents, divisors and function arguments are values, not term sizes: 1/(a - b) is as
        // large as it is, and the terms a, b only matter through it
        const exp = this.of(e.exp, false);
        const base = this.of(e.base, false);
        if (!magnitude) return (b) => Math.pow(base(b), exp(b));
        const size = this.of(e.base, true);
        return (b) => {
          const x = exp(b);
          return Math.pow(x > 0 ? Math.abs(size(b)) : base(b), x);
        };
      }
      case "call": {
        const fn = e.fn;
        const arg = this.of(e.arg, false);
        return (b) => evalFn(fn, arg(b));
      }
      case "sum":
      case "max":
      case "stored": {
        // a stored product is its body, computed once per cell like a reduction over no index
        const indices = e.kind === "stored" ? [] : e.indices;
        const isMax = e.kind === "max";
        const free = e.free;
        const body = this.of(e.body, magnitude);
        const known = new Map<number, number>();
        let extents: number[] | undefined;
        let freeExtents: number[] | undefined;
        return (binding) => {
          // the binding of the free indices as one number (mixed radix by their extents)
          freeExtents ??= free.map((i) => env.extent(i));
          let cell = 0;
          for (let k = 0; k < free.length; k++) cell = cell * freeExtents[k]! + indexAt(binding, free[k]!);
          const hit = known.get(cell);
          if (hit !== undefined) return hit;
          extents ??= indices.map((i) => env.extent(i));
          const b = new Map(binding);
          let total = isMax ? -Infinity : 0;
          // every binding of the reduced indices, the last one fastest
          const at = indices.map(() => 0);
          const empty = extents.some((n) => n <= 0);
          for (let k = 0; k < indices.length; k++) b.set(indices[k]!, 0);
          while (!empty) {
            const v = magnitude ? Math.abs(body(b)) : body(b);
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
          known.set(cell, total);
          return total;
        };
      }
      case "where": {
        // the comparison on values, then only the chosen branch (the other may be undefined there)
        const op = e.op;
        const left = this.of(e.left, false);
        const right = this.of(e.right, false);
        const then = this.of(e.then, magnitude);
        const otherwise = this.of(e.else, magnitude);
        return (b) => {
          const v = compare(op, left(b), right(b)) ? then(b) : otherwise(b);
          return magnitude ? Math.abs(v) : v;
        };
      }
      case "delta":
        return (b) => deltaValue(e, env, b);
      default:
        return assertNever(e, "expression");
    }
  }
}

/** The value of a delta: 1 where its letter equals its index form's value. */
function deltaValue(e: Delta, env: Env, binding: ReadonlyMap<string, number>): number {
  return indexAt(binding, e.index) === formValue(e, env, binding) ? 1 : 0;
}

/** The value of a delta's index form at a binding: for a gather, the integer element it reads. */
function formValue(e: Delta, env: Env, binding: ReadonlyMap<string, number>): number {
  const f = e.form;
  switch (f.kind) {
    case "gather":
      return env.ref(f.from, f.from.indices.map((i) => indexAt(binding, i)));
    case "affine": {
      // the numerator; a value that the divisor does not divide matches no index (NaN)
      let v = f.offset;
      for (const t of f.terms) v += t.coef * indexAt(binding, t.index);
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
