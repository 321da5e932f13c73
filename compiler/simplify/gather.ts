/**
 * Phase `gather`: the gradient of an affine read, a scatter-add in the naive kernel
 * (`dx[n,c,l] = sum(dy[n,o,i]*w[o,c,k]*delta(l, i + k - 1), o, i, k)`: every output position adds
 * into the inputs it read), becomes a gather: the delta is solved for one bound index of its form
 * (`delta(i, l - k + 1)`), so that the sum over it is a read (`dx[n,c,l] = sum(w[o,c,k]*dy[n,o,l -
 * k + 1], o, k)`, zero where `l - k + 1` is outside the output). Each element of `dx` is then
 * written once, in one pass, instead of zeroed and added into from every position that read it.
 * This is Halide's scatter-to-gather (`src/Derivative.cpp`), on the index algebra of `ir/affine.ts`.
 *
 * The index solved for is the one with the largest extent when the delta's own letter is long and
 * the other sizes short (a convolution's output position `i`, never its kernel offset `k`): the
 * loop left over the others is then short, and a read out of range is rare. The gather is taken
 * only where it visits about as many positions as the scatter (stride 1): with a stride or a pooling
 * window the target is longer than the solved index, most positions the gather visits fail its
 * divisibility test, and the scatter stays (`SCATTER_MARGIN`). Timings are in the README
 * ("Convolution and pooling").
 */
import { add, canonicalSize, mapBottomUp, mul, num, renameFree, splitCoefficient, sum, type Delta, type Expr, type SizeOf } from "../ir/expr.js";
import type { Rewrite } from "../ir/backward.js";
import type { Program } from "../ir/program.js";
import { flattenAll, gatherSum } from "../ir/affine.js";
import { nameTable } from "../ir/table.js";
import { FACTOR_RULE } from "./factor.js";
import { runRules } from "./runner.js";
import { withDerived } from "../ir/sizes.js";
import { holders, type PhaseResult } from "./phases.js";

/**
 * How much longer than the solved index the target index may be and the gather still be taken: a
 * gather writes each element once, where a scatter reads and writes it once per contribution, which
 * pays for a few skipped positions (stride 1 with padding: L against L - K + 3).
 */
const SCATTER_MARGIN = 1.25;

/**
 * The terms of a sum `c1*sum(d*b1, R) + c2*sum(d*b2, R) + ...` whose sums, flattened, scatter
 * through the same affine deltas `d` over the same indices `R`, as one `sum(d*(c1*b1 + c2*b2), R)`
 * (the coefficients free of `R`). Exact: multiplication distributes over the sum. Unchanged where
 * no two terms share their deltas.
 */
function mergeScatters(e: Expr & { kind: "add" }, sizeOf: SizeOf): Expr {
  const groups = new Map<string, { indices: readonly string[]; deltas: Delta[]; parts: Expr[]; at: number }>();
  const rest: { at: number; term: Expr }[] = [];
  e.terms.forEach((t, at) => {
    const [c, r] = splitCoefficient(t);
    const factors = r.kind === "mul" ? r.factors : [r];
    const sums = factors.filter((f) => f.kind === "sum");
    const flat = sums.length === 1 ? flattenAll(sums[0]!, sizeOf) : undefined;
    const coef = factors.filter((f) => f !== sums[0]);
    if (flat === undefined || flat.kind !== "sum" || coef.some((f) => f.free.some((i) => flat.indices.includes(i)))) return void rest.push({ at, term: t });
    const found = flat.body.kind === "mul" ? flat.body.factors : [flat.body];
    const own = found.filter((f): f is Delta => f.kind === "delta" && f.form.kind === "affine" && !flat.indices.includes(f.index));
    if (own.length === 0) return void rest.push({ at, term: t });
    // the bound indices named by their role, so that two sums that name them apart still match:
    // by the delta they stand in and their coefficient there, else by their size alone
    const role = nameTable<string>();
    for (const d of own)
      if (d.form.kind === "affine") for (const x of d.form.terms) if (flat.indices.includes(x.index) && role[x.index] === undefined) role[x.index] = `${sizeOf(x.index)}:@${d.index}*${x.coef}`;
    for (const i of flat.indices) if (role[i] === undefined) role[i] = `${sizeOf(i)}:@`;
    const names = flat.indices.map((i) => role[i]!);
    if (new Set(names).size !== names.length) return void rest.push({ at, term: t });
    const renamed = renameFree(flat.body, role, sizeOf);
    const body = renamed.kind === "mul" ? renamed.factors : [renamed];
    const deltas = body.filter((f): f is Delta => f.kind === "delta" && f.form.kind === "affine" && !names.includes(f.index));
    const key = `${[...names].sort().join(",")}|${deltas.map((d) => d.id).sort().join(",")}`;
    const part = mul(num(c), ...coef, ...body.filter((f) => !deltas.includes(f as Delta)));
    const g = groups.get(key);
    if (g) g.parts.push(part);
    else groups.set(key, { indices: names, deltas, parts: [part], at });
  });
  if (![...groups.values()].some((g) => g.parts.length > 1)) return e;
  // the merged parts with their common factors taken out (the factor phase's rule, `factor.ts`)
  const merged = (parts: readonly Expr[]) => runRules(add(...parts), [FACTOR_RULE], { sizeOf });
  const terms = [...rest, ...[...groups.values()].map((g) => ({ at: g.at, term: sum(mul(...g.deltas, merged(g.parts)), g.indices, sizeOf) }))];
  return add(...terms.sort((a, b) => a.at - b.at).map((x) => x.term));
}

/** Every affine scatter of the gradients rewritten as a gather, each rewrite recorded. */
export function gather(start: readonly Expr[], p: Program): PhaseResult {
  const rewrites: Rewrite[] = [];
  const choose = (d: Delta, candidates: readonly string[]): string | undefined => {
    if (candidates.length === 0) return undefined;
    const long = p.sizeOf(d.index);
    const base: Record<string, number> = Object.create(null) as Record<string, number>;
    for (const s of p.sizes) base[s] = s === long ? 256 : 4;
    const sizes = withDerived(p, base);
    const extent = (i: string) => sizes[canonicalSize(i) ?? p.sizeOf(i)] ?? 0;
    const coef = (i: string) => Math.abs(d.form.kind === "affine" ? (d.form.terms.find((t) => t.index === i)?.coef ?? 1) : 1);
    // the longest extent per step of the index (a stride-2 index covers its extent in half the positions)
    const best = [...candidates].sort((a, b) => extent(b) * coef(b) - extent(a) * coef(a) || coef(a) - coef(b) || (a < b ? -1 : 1))[0]!;
    // the gather visits every element of the target for each value of the other indices, the scatter
    // every value of the solved index: where the target is longer (a stride, a pooling window), the
    // gather would test and skip most of what it visits, and the scatter stays
    return extent(d.index) <= SCATTER_MARGIN * extent(best) ? best : undefined;
  };
  let grads = [...start];
  for (let k = 0; k < grads.length; k++) {
    // terms that scatter through the same deltas are one scatter: each element's contributions
    // added first, then added once where they go (a convolution's input gradient after a norm)
    const g = mapBottomUp(
      grads[k]!,
      (x0) => {
        const x = x0.kind === "add" ? mergeScatters(x0, p.sizeOf) : x0;
        if (x !== x0) rewrites.push({ rule: "merge-scatters", before: x0, after: x, gradients: [k] });
        return x;
      },
      p.sizeOf,
    );
    const next = mapBottomUp(
      g,
      (x) => {
        if (x.kind !== "sum") return x;
        let cur: Expr = x;
        // one delta solved per round: a 2-D convolution has one per spatial axis
        for (let n = 0; n < 8; n++) {
          const y = gatherSum(cur, p.sizeOf, choose);
          if (y === undefined) break;
          cur = y;
        }
        if (cur !== x) rewrites.push({ rule: "scatter-to-gather", before: x, after: cur, gradients: [k] });
        return cur;
      },
      p.sizeOf,
    );
    grads[k] = next;
  }
  void holders;
  return { gradients: grads, rewrites };
}
