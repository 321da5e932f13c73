/**
 * Index algebra of affine deltas (CONTRACT §4.3), used by the lowering of the naive kernel and by
 * the fused kernel's `gather` phase:
 *
 * - `flattenDeltaSum`: `sum(g * sum(h * delta(v, f), K), R) = sum(g * h * delta(v, f), R, K)`, so the
 *   delta of an affine read's gradient stands at the top of one sum (the chain rule leaves it in the
 *   sum of the read's own reduction). The kernel then loops over `R` and `K`, the read's indices,
 *   and adds at `v = f`: the scatter-add a person writes.
 * - `solveDelta`: `delta(v, a*r + rest)` is `delta(r, (v - rest)/a)`, both 1 exactly where
 *   `a*r + rest = v` in integers. Under a sum over `r` that is a read at `r = (v - rest)/a`: the
 *   scatter becomes a gather (Halide's scatter-to-gather, `src/Derivative.cpp`).
 */
import { affine, mul, ONE, renameFree, sum, delta } from "./build.js";
import { canonicalSize, type Delta, type Expr, type SizeOf, type Sum } from "./node.js";
import { nameTable } from "./table.js";
import { directReads } from "./cost.js";

/**
 * Whether `e` is an affine read and nothing more: a sum whose every bound index is read at an affine
 * form (`x[n,c,i + k - 1]`). It is a value, computed where it is read, never a reduction of its own.
 */
export function isAffineRead(e: Expr): boolean {
  if (e.kind !== "sum") return false;
  const { reads } = directReads(e.body, e.indices);
  return reads.length === e.indices.length && reads.every((d) => d.form.kind === "affine");
}

/** Whether `e` is the body of an affine read: one ref times affine deltas (the product is exact in any order). */
export function isAffineReadBody(e: Expr): boolean {
  if (e.kind !== "mul") return false;
  const refs = e.factors.filter((f) => f.kind === "ref").length;
  return refs === 1 && e.factors.every((f) => f.kind === "ref" || (f.kind === "delta" && f.form.kind === "affine"));
}

/** The factors of a product, or the expression alone. */
function factorsOf(e: Expr): readonly Expr[] {
  return e.kind === "mul" ? e.factors : [e];
}

/** An affine delta over a free index (not bound by `bound`) among the factors of `e`. */
function freeAffineDelta(e: Expr, bound: readonly string[]): Delta | undefined {
  return factorsOf(e).find((f): f is Delta => f.kind === "delta" && f.form.kind === "affine" && !bound.includes(f.index));
}

/**
 * One level of `sum(g * sum(h, K), R)` merged into `sum(g * h, R, K)` where the inner sum holds an
 * affine delta over an index free in both sums; undefined where there is none.
 */
export function flattenDeltaSum(e: Sum, sizeOf: SizeOf): Expr | undefined {
  const factors = factorsOf(e.body);
  const k = factors.findIndex((f) => f.kind === "sum" && freeAffineDelta(f.body, [...f.indices, ...e.indices]) !== undefined);
  if (k < 0) return undefined;
  const inner = factors[k] as Sum;
  // the inner sum's bound indices get names of their own before they join the outer ones
  const fresh = inner.indices.map((i, j) => `${canonicalSize(i) ?? sizeOf(i)}:~f${j}`);
  const body = renameFree(inner.body, nameTable(inner.indices.map((i, j) => [i, fresh[j]!])), sizeOf);
  const rest = factors.filter((_, j) => j !== k);
  return sum(mul(...rest, body), [...e.indices, ...fresh], sizeOf);
}

/** `e` flattened until no inner sum holds an affine delta over a free index. */
export function flattenAll(e: Expr, sizeOf: SizeOf): Expr {
  let cur = e;
  for (let n = 0; n < 16 && cur.kind === "sum"; n++) {
    const next = flattenDeltaSum(cur, sizeOf);
    if (next === undefined) break;
    cur = next;
  }
  return cur;
}

/** `delta(v, a*r + rest)` as a delta over `r`: `delta(r, (divisor*v - rest)/a)` with a positive divisor. */
export function solveDelta(d: Delta, r: string): Delta {
  const f = d.form;
  if (f.kind !== "affine") throw new Error("solveDelta: not an affine delta");
  const t = f.terms.find((x) => x.index === r);
  if (t === undefined) throw new Error(`solveDelta: '${r}' is not in the form`);
  // divisor*v = a*r + rest  <=>  a*r = divisor*v - rest
  const sign = t.coef < 0 ? -1 : 1;
  const terms = [{ index: d.index, coef: sign * f.divisor }, ...f.terms.filter((x) => x !== t).map((x) => ({ index: x.index, coef: -sign * x.coef }))];
  return delta(r, affine(terms, -sign * f.offset, Math.abs(t.coef)));
}

/**
 * The gather form of a sum with an affine delta over a free index: the delta solved for the bound
 * index `choose` picks among the form's letters that the sum binds (undefined where none is bound
 * or `choose` declines).
 */
export function gatherSum(e: Expr, sizeOf: SizeOf, choose: (d: Delta, candidates: readonly string[]) => string | undefined): Expr | undefined {
  const flat = flattenAll(e, sizeOf);
  if (flat.kind !== "sum") return undefined;
  const factors = factorsOf(flat.body);
  const d = freeAffineDelta(flat.body, flat.indices);
  if (d === undefined || d.form.kind !== "affine") return undefined;
  // only where the sum binds every letter of the form: an inner sum's delta waits for the outer sum
  if (!d.form.terms.every((t) => flat.indices.includes(t.index))) return undefined;
  const candidates = d.form.terms.map((t) => t.index).filter((i) => flat.indices.includes(i));
  const r = choose(d, candidates);
  if (r === undefined) return undefined;
  const rest = factors.filter((f) => f !== d);
  return sum(mul(solveDelta(d, r), ...(rest.length ? rest : [ONE])), flat.indices, sizeOf);
}
