/**
 * The invariants of an elementwise pass: which values do not depend on all the pass's loop indices,
 * each named by a ref `%h<k>` in the body. lower.ts writes each one as a `let` in the innermost
 * loop, and the loop pass loop/hoist.ts moves it out: to its own loop level as a scalar, or into
 * an array over its indices before the nest.
 *
 * There are two candidate forms, and the one with less work in the innermost loop (cost.ts) wins:
 * - the expression as it is, with each maximal invariant part hoisted: the invariant factors of a
 *   product, and the invariant terms of a sum;
 * - the expression expanded and grouped by its per-element parts, each with one hoisted coefficient.
 *   For batchnorm this is `dx = dx_offset[d] + dx_xhat[d]*xhat + dx_dout[d]*dout`.
 * Reductions are atoms here: they were computed by earlier passes and are only read.
 */
import { add, call, mul, num, pow, ref, type Expr, type Ref } from "../ir/expr.js";
import { cost, weight } from "./cost.js";

export interface Hoisted {
  /** A value-space ref `%h<k>[indices]` that stands for `expr` in the body. */
  readonly ref: Ref;
  readonly expr: Expr;
  /** For a coefficient of the grouped form: the per-element part it multiplies (`xhat[n,d]`). */
  readonly element?: Expr;
}

export interface HoistResult {
  readonly body: Expr;
  readonly hoisted: readonly Hoisted[];
}

/** Work in the innermost loop: reductions and hoisted values are only read there. */
function innerWork(e: Expr): number {
  return weight(cost(e, { known: (x) => x.kind === "sum" || x.kind === "max" || x.kind === "stored" }));
}

const trivial = (e: Expr) => e.kind === "num" || e.kind === "sym" || e.kind === "ref" || e.kind === "sum" || e.kind === "max" || e.kind === "stored";

/** `tag` keeps the hoisted refs of several expressions emitted in one pass apart. */
export function hoist(e: Expr, loops: readonly string[], tag = ""): HoistResult {
  const a = licm(e, loops, [], tag);
  const b = grouped(e, loops, tag);
  if (b && innerWork(b.body) < innerWork(a.body)) return b;
  return a;
}

function variesWithAll(e: Expr, loops: readonly string[]): boolean {
  return loops.every((i) => e.free.includes(i));
}

/** Hoists maximal invariant parts of `e` into `hoisted` (shared by identity). */
function licm(e: Expr, loops: readonly string[], hoisted: Hoisted[], tag: string): HoistResult {
  const take = (x: Expr): Expr => {
    if (trivial(x)) return x;
    const found = hoisted.find((h) => h.expr === x);
    if (found) return found.ref;
    const indices = loops.filter((i) => x.free.includes(i));
    const h = { ref: ref(`%h${tag}${hoisted.length}`, indices), expr: x };
    hoisted.push(h);
    return h.ref;
  };
  const go = (x: Expr): Expr => {
    if (!variesWithAll(x, loops)) return take(x);
    if (x.kind === "mul" || x.kind === "add") {
      const parts = x.kind === "mul" ? x.factors : x.terms;
      const invariant = parts.filter((f) => !variesWithAll(f, loops));
      const varying = parts.filter((f) => variesWithAll(f, loops)).map(go);
      // invariant parts go together into one hoisted value while they do not span every loop index;
      // otherwise they are grouped by their index sets (rstd[n] and gamma[d] apart)
      const bySet = new Map<string, Expr[]>();
      const union = loops.filter((i) => invariant.some((f) => f.free.includes(i)));
      for (const f of invariant) {
        const key = union.length < loops.length ? "all" : loops.filter((i) => f.free.includes(i)).join(",");
        bySet.set(key, [...(bySet.get(key) ?? []), f]);
      }
      // numbers and scalars join the first group rather than standing alone
      const scalars = bySet.get("");
      if (scalars && bySet.size > 1) {
        bySet.delete("");
        const first = [...bySet.keys()][0]!;
        bySet.set(first, [...bySet.get(first)!, ...scalars]);
      }
      const moved = [...bySet.values()].map((fs) => take(x.kind === "mul" ? mul(...fs) : add(...fs)));
      return x.kind === "mul" ? mul(...moved, ...varying) : add(...moved, ...varying);
    }
    if (x.kind === "pow") return pow(go(x.base), x.exp.free.length ? go(x.exp) : x.exp);
    if (x.kind === "call") return call(x.fn, go(x.arg));
    return x;
  };
  return { body: go(e), hoisted };
}

/** Sum of products, treating reductions, calls and non-integer powers as atoms; undefined if large. */
function expand(e: Expr, limit = 48): Expr[] | undefined {
  if (e.kind === "add") {
    const out: Expr[] = [];
    for (const t of e.terms) {
      const x = expand(t, limit);
      if (!x) return undefined;
      out.push(...x);
      if (out.length > limit) return undefined;
    }
    return out;
  }
  if (e.kind === "mul") {
    let acc: Expr[] = [num(1)];
    for (const f of e.factors) {
      const x = expand(f, limit);
      if (!x) return undefined;
      const next: Expr[] = [];
      for (const a of acc) for (const b of x) next.push(mul(a, b));
      if (next.length > limit) return undefined;
      acc = next;
    }
    return acc;
  }
  return [e];
}

/** The expanded form grouped by per-element parts, each with one hoisted coefficient. */
function grouped(e: Expr, loops: readonly string[], tag: string): HoistResult | undefined {
  const terms = expand(e);
  if (!terms || terms.length < 2) return undefined;
  const groups = new Map<Expr, Expr[]>();
  for (const t of terms) {
    const fs = t.kind === "mul" ? t.factors : [t];
    const element = mul(...fs.filter((f) => variesWithAll(f, loops)));
    const coefficient = mul(...fs.filter((f) => !variesWithAll(f, loops)));
    groups.set(element, [...(groups.get(element) ?? []), coefficient]);
  }
  const hoisted: Hoisted[] = [];
  const body: Expr[] = [];
  for (const [element, cs] of groups) {
    const coefficient = add(...cs);
    // a coefficient over every loop index (rstd[n]*gamma[d]) is hoisted factor by factor
    const before = hoisted.length;
    const h = licm(mul(coefficient, element), loops, hoisted, tag);
    for (let k = before; k < hoisted.length; k++) hoisted[k] = { ...hoisted[k]!, element };
    body.push(h.body);
  }
  return { body: add(...body), hoisted };
}
