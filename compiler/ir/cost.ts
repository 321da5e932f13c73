/**
 * The one operation counter, shared by the scheduler (which form of an elementwise pass has less
 * work in its innermost loop, invariants.ts) and `backpass stats` (stats.ts). It counts what the lowering
 * (lower.ts) writes for one evaluation of an expression: each `+ - * /` one operation, a power as
 * its multiplications (`x^2` is `x*x`, `x^-1` one division, other powers and roots a library call),
 * a function call one operation and one transcendental. A reduction runs its body once per
 * iteration, `at` iterations per bound index, plus its accumulation.
 */
import { assertNever, children, formIndices, isReduction, mul, ONE, type Delta, type Expr } from "./expr.js";

export interface Cost {
  readonly ops: number;
  readonly transcendentals: number;
}

export interface CostOptions {
  /** Nodes already computed and only read (reductions of earlier passes, hoisted values). */
  readonly known?: (x: Expr) => boolean;
  /** Iterations per bound index of a reduction (1: a reduction's body counted once). */
  readonly at?: number;
  /** Iterations of a bound index by its name, where sizes differ (schedule/work.ts's size points); `at` otherwise. */
  readonly atOf?: (index: string) => number;
}

/** A library call costs about as much as eight arithmetic operations: the weight a schedule compares. */
export const TRANSCENDENTAL_WEIGHT = 8;

/** One number for a schedule's comparisons: operations, with each transcendental weighing eight. */
export function weight(c: Cost): number {
  return c.ops + (TRANSCENDENTAL_WEIGHT - 1) * c.transcendentals;
}

export function cost(e: Expr, opts: CostOptions = {}): Cost {
  const at = opts.at ?? 1;
  let ops = 0;
  let transcendentals = 0;
  const call = (w: number) => {
    ops += w;
    transcendentals += w;
  };
  /** A power `base^k` with a number exponent, as power() in lower.ts writes it. */
  const power = (k: number, w: number): void => {
    const m = Math.abs(k);
    if (k < 0) ops += w; // 1 / ...
    if (m === 2) ops += w;
    else if (m === 3) ops += 2 * w;
    else if (m === 0.5) call(w);
    else if (m === 1.5) {
      ops += w;
      call(w);
    } else if (m !== 1) call(w);
  };
  let skip: ((x: Expr) => boolean) | undefined;
  const goSkipping = (x: Expr, w: number, also: ((y: Expr) => boolean) | undefined): void => {
    const saved = skip;
    if (also) skip = saved ? (y) => saved(y) || also(y) : also;
    go(x, w);
    skip = saved;
  };
  const go = (x: Expr, w: number): void => {
    if (opts.known?.(x) || skip?.(x)) return;
    switch (x.kind) {
      case "num":
      case "sym":
      case "ref":
        return;
      case "add":
        ops += w * (x.terms.length - 1);
        return x.terms.forEach((t) => go(t, w));
      case "mul":
        // a factor -1 counts as one operation: a negation, or the subtraction a term becomes
        ops += w * (x.factors.length - 1);
        return x.factors.forEach((f) => go(f, w));
      case "pow":
        if (x.exp.kind === "num") power(x.exp.value, w);
        else {
          call(w);
          go(x.exp, w);
        }
        return go(x.base, w);
      case "call":
        if (x.fn === "sigmoid") ops += 2 * w; // 1 / (1 + exp(-x))
        if (x.fn === "sech") ops += w; // 1 / cosh(x)
        if (x.fn === "softplus") ops += 3 * w; // a test, an addition, a negation and a second call
        if (x.fn === "softplus") call(w);
        if (x.fn !== "stop") call(w);
        return go(x.arg, w);
      case "where":
        // the comparison, its operands and both branches (only one runs: an upper bound)
        ops += w;
        [x.left, x.right, x.then, x.else].forEach((y) => go(y, w));
        return;
      case "delta":
        ops += w; // a test of the counter against the id
        return;
      case "sum":
      case "max": {
        // a delta over a bound index is a read, not a loop
        const { reads, body } = x.kind === "sum" ? directReads(x.body, x.indices) : { reads: [], body: x.body };
        const looped = x.indices.filter((i) => !reads.some((d) => d.index === i));
        const n = opts.atOf ? looped.reduce((a, i) => a * opts.atOf!(i), 1) : Math.pow(at, x.indices.length - reads.length);
        ops += w * n; // the accumulation
        // a reduction in the body that does not move with this one's loops is computed once, before them (lower.ts)
        const invariant = new Set(topReductions(body).filter((r) => !r.free.some((i) => x.indices.includes(i))));
        for (const r of invariant) go(r, w);
        const inner = invariant.size ? (y: Expr) => invariant.has(y) : undefined;
        return goSkipping(body, w * n, inner);
      }
      case "stored":
        return go(x.body, w);
      default:
        return assertNever(x, "expression");
    }
  };
  go(e, 1);
  return { ops, transcendentals };
}

/**
 * The deltas of a sum's body that make it a read: factors `delta(i, f)` of a product, with `i` among
 * the sum's `bound` indices and `f` not reading `i` (at most one per index); and the body without them.
 */
export function directReads(body: Expr, bound: readonly string[]): { reads: Delta[]; body: Expr } {
  const factors = body.kind === "mul" ? body.factors : [body];
  const reads: Delta[] = [];
  const rest: Expr[] = [];
  for (const f of factors) {
    if (f.kind === "delta" && bound.includes(f.index) && !formIndices(f.form).includes(f.index) && !reads.some((d) => d.index === f.index)) reads.push(f);
    else rest.push(f);
  }
  if (reads.length === 0) return { reads, body };
  // the ids' own indices must not be read through another delta's index
  return { reads, body: rest.length === 0 ? ONE : mul(...rest) };
}

/** The reductions of `e` not inside another reduction, each once, in order (a where's comparison operands included). */
export function topReductions(e: Expr): Expr[] {
  const out: Expr[] = [];
  const go = (x: Expr): void => {
    if (isReduction(x)) {
      if (!out.includes(x)) out.push(x);
      return;
    }
    if (x.kind === "where") [x.left, x.right].forEach(go);
    children(x).forEach(go);
  };
  go(e);
  return out;
}

/**
 * The delta that makes a reduction a scatter-add: `sum(g * delta(v, f), R)` with `v` a free index
 * that only the delta reads and `f` reading only the bound indices `R` (a gather's gradient, `dE[v,d]
 * = sum(dy[b,s,d] * delta(v, ids[b,s]), b, s)`): the kernel loops over `R` and adds `g` at `v = f`,
 * with no loop over `v`. The body without the delta comes with it.
 */
export function scatterDelta(e: Expr): { delta: Delta; body: Expr } | undefined {
  if (e.kind !== "sum") return undefined;
  const factors = e.body.kind === "mul" ? e.body.factors : [e.body];
  for (const d of factors) {
    if (d.kind !== "delta" || e.indices.includes(d.index) || !formIndices(d.form).every((i) => e.indices.includes(i))) continue;
    const rest = factors.filter((f) => f !== d);
    const body = rest.length === 0 ? ONE : rest.length === 1 ? rest[0]! : mul(...rest);
    if (!body.free.includes(d.index)) return { delta: d, body };
  }
  return undefined;
}

/**
 * The delta that makes a reduction a read, or a scatter-add: `sum(g * delta(v, f), R)` where `v` is
 * bound (a gather: the sum over `v` is `g` at `v = f`) or free and read only by the delta, with `f`
 * reading only `R` (a gather's gradient: `g` added at `v = f`). Either way no loop runs over `v`.
 */
export function loopFreeDelta(e: Expr): { delta: Delta; body: Expr } | undefined {
  if (e.kind !== "sum") return undefined;
  const scatter = scatterDelta(e);
  if (scatter) return scatter;
  const { reads, body } = directReads(e.body, e.indices);
  return reads.length === 1 ? { delta: reads[0]!, body } : undefined;
}

/**
 * Every delta that makes a reduction reads or scatter-adds, where `loopFreeDelta` finds one: an
 * affine read of a 2-D array has a delta per axis (`x[n,c,2*i + p - 1, 2*j + q - 1]`), and its
 * gradient one per axis too. A gather's answer is `loopFreeDelta`'s; affine deltas all come
 * together, scatters or reads (never a mix), with the body without them.
 */
export function loopFreeDeltas(e: Expr): { deltas: Delta[]; body: Expr } | undefined {
  if (e.kind !== "sum") return undefined;
  const one = loopFreeDelta(e);
  if (one && one.delta.form.kind === "gather") return { deltas: [one.delta], body: one.body };
  const factors = e.body.kind === "mul" ? e.body.factors : [e.body];
  const affineScatter = (d: Expr): d is Delta => d.kind === "delta" && d.form.kind === "affine" && !e.indices.includes(d.index) && formIndices(d.form).every((i) => e.indices.includes(i));
  const scatters = factors.filter(affineScatter).filter((d, k, all) => all.findIndex((x) => x.index === d.index) === k);
  const rest = (ds: readonly Delta[]) => {
    const r = factors.filter((f) => !ds.includes(f as Delta));
    return r.length === 0 ? ONE : r.length === 1 ? r[0]! : mul(...r);
  };
  if (scatters.length) {
    const body = rest(scatters);
    // the body must not read the index it adds along (then it is no scatter)
    const ok = scatters.filter((d) => !body.free.includes(d.index) && !scatters.some((x) => x !== d && formIndices(x.form).includes(d.index)));
    if (ok.length === scatters.length) return { deltas: scatters, body };
  }
  const { reads, body } = directReads(e.body, e.indices);
  if (reads.length && reads.every((d) => d.form.kind === "affine")) return { deltas: reads, body };
  return one ? { deltas: [one.delta], body: one.body } : undefined;
}

/**
 * The factors of a reduction's product body over `loops` (its free and bound indices) worth storing
 * once (schedule's `materialize`, and the simplifier's kernel cost, which must count what the
 * scheduler will do): those whose indices all lie in one strict subset of the loops, so a pass
 * would compute them again for every value of the other loops. Worth it when they hold work: two
 * indexed factors, or one that is not a plain read. Of several subsets, the one that takes the most
 * factors (then the largest) wins; `width` is its number of indices.
 */
export function invariantFactors(factors: readonly Expr[], loops: readonly string[]): { part: Expr[]; rest: Expr[]; width: number } | undefined {
  let best: { part: Expr[]; rest: Expr[]; width: number } | undefined;
  for (const f of factors) {
    const within = f.free;
    if (within.length === 0 || within.length >= loops.length) continue;
    const part = factors.filter((g) => g.free.every((i) => within.includes(i)));
    if (part.length === factors.length) continue;
    const indexed = part.filter((g) => g.free.length > 0);
    if (indexed.length < 2 && !indexed.some((g) => g.kind !== "ref" && g.kind !== "sum")) continue;
    if (best && (part.length < best.part.length || (part.length === best.part.length && within.length <= best.width))) continue;
    best = { part, rest: factors.filter((g) => !part.includes(g)), width: within.length };
  }
  return best;
}
