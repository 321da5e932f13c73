/**
 * The simplifier's one cost measure, which every cost-guided choice uses (vanish keeps a cheaper
 * expansion, merge and regroup keep a cheaper form, outputs a cheaper way through a step's value,
 * expand distributes only where that does not cost more), and the cost of a whole kernel
 * (`kernelCost`, `stagedCost`), whose arithmetic is the one operation counter's (ir/cost.ts).
 */
import { collect, isReduction, isTranscendental, treeSize, type Expr } from "../ir/expr.js";
import { cost as countOps, directReads, invariantFactors, topReductions, TRANSCENDENTAL_WEIGHT, weight } from "../ir/cost.js";
import { statementsRead, type Backward } from "../ir/backward.js";
import type { Program } from "../ir/program.js";

/** Size-weighted cost: nodes, with reductions and transcendental functions costing more. */
export function cost(e: Expr): number {
  return treeSize(e) + 10 * collect(e, isReduction).length + 8 * collect(e, isTranscendental).length;
}

/** Arithmetic of a whole backward kernel, every size symbol set to `at` (as `backpass stats` does). */
export interface KernelCost {
  /** Operations in all (a transcendental counts as one operation too). */
  readonly ops: number;
  readonly transcendentals: number;
  /** The one figure two kernels are compared by (ir/cost.ts `weight`): a transcendental weighs `TRANSCENDENTAL_WEIGHT` operations. */
  readonly total: number;
}

/** How many arithmetic operations one transcendental function is worth when kernels are compared (the one counter's weight). */
export { TRANSCENDENTAL_WEIGHT };

/** The size every symbol is given when kernels are compared (`backpass stats` uses the same). */
export const COST_AT = 256;

const kernelCostOf = (ops: number, transcendentals: number): KernelCost => ({ ops, transcendentals, total: weight({ ops, transcendentals }) });

/** The distinct indices that `x` depends on among `loops`. */
const within = (x: Expr, loops: readonly string[]) => x.free.filter((i) => loops.includes(i));

/**
 * The cost of the fused kernel that the scheduler makes of `gradients`: each gradient is computed
 * once per element of its own indices; each distinct reduction once per element of its free
 * indices and its bound ones (not once per element of what holds it); a factor of a reduction's
 * product body that lies in a strict subset of the reduction's loops is stored once over its own
 * indices (schedule's `materialize`), not recomputed on every iteration.
 */
export function kernelCost(gradients: readonly Expr[], at = COST_AT): KernelCost {
  const seen = new Set<Expr>();
  let ops = 0;
  let tr = 0;
  /** Adds `count` evaluations of `x` to the totals; reductions are computed once, on their own. */
  const evaluate = (x: Expr, count: number): void => {
    if (x.kind === "sum" || x.kind === "max") return reduction(x);
    // the one operation counter (ir/cost.ts), reductions read as computed
    const own = countOps(x, { known: (y) => y !== x && isReduction(y) });
    ops += count * own.ops;
    tr += count * own.transcendentals;
    for (const r of topReductions(x)) reduction(r as Expr & { kind: "sum" | "max" });
  };
  const reduction = (r: Expr & { kind: "sum" | "max" }): void => {
    if (seen.has(r)) return;
    seen.add(r);
    // a bound index an affine delta reads at is no loop (ir/cost.ts `directReads`)
    const reads = r.kind === "sum" ? directReads(r.body, r.indices).reads.filter((d) => d.form.kind === "affine") : [];
    const loops = [...r.free, ...r.indices.filter((i) => !reads.some((d) => d.index === i))];
    const iterations = Math.pow(at, loops.length);
    ops += iterations;
    const body = r.body;
    if (body.kind !== "mul") return evaluate(body, iterations);
    const split = invariantFactors(body.factors, loops);
    if (!split) {
      ops += iterations * (body.factors.length - 1);
      for (const f of body.factors) evaluate(f, iterations);
      return;
    }
    // the invariant product is stored once over its own indices, then read on every iteration
    const stored = Math.pow(at, split.width);
    ops += stored * (split.part.length - 1) + iterations * split.rest.length;
    for (const f of split.part) evaluate(f, stored);
    for (const f of split.rest) evaluate(f, iterations);
  };
  for (const g of gradients) evaluate(g, Math.pow(at, g.free.length));
  return kernelCostOf(ops, tr);
}

/**
 * The cost of the staged (naive) backward in the same units: one loop nest per statement over its
 * target's indices, with the reductions inside a statement computed where they stand, as the naive
 * kernel does (the arithmetic `backpass stats` counts for it). With `only`, the statements that
 * the gradients of the inputs so named read, directly or through others.
 */
export function stagedCost(bw: Backward, at = COST_AT, only?: readonly string[]): KernelCost {
  const statements = bw.blocks.flatMap((b) => b.statements);
  const needed = only === undefined ? undefined : statementsRead(bw, only);
  let ops = 0;
  let tr = 0;
  for (const s of statements) {
    if (s.expr.kind === "num" || (needed && !needed.has(s.target.name))) continue;
    const c = inlineArithmetic(s.expr, at);
    const n = Math.pow(at, s.target.indices.length);
    ops += n * c.ops;
    tr += n * c.transcendentals;
  }
  return kernelCostOf(ops, tr);
}

/** Arithmetic of one evaluation of `e`, reductions computed where they stand (the one counter, ir/cost.ts). */
function inlineArithmetic(e: Expr, at: number): { ops: number; transcendentals: number } {
  return countOps(e, { at });
}

/**
 * The cost of the fused gradients and of the staged backward of the same program, in the same
 * units (`KernelCost` at `at`), for the whole kernel and for each gradient alone (the statements of
 * the staged backward that it reads, shared ones counted in each): where a gradient's `fused.total`
 * is not below its `staged.total`, no derived form beat the staged computation, and lowering may
 * use the staged one for it. `fused` holds a gradient per input of `p`, in order (0 for an input
 * without one).
 */
export function derivedAndStagedCost(
  p: Program,
  bw: Backward,
  fused: readonly Expr[],
  at = COST_AT,
): { readonly fused: KernelCost; readonly staged: KernelCost; readonly perGradient: readonly { readonly fused: KernelCost; readonly staged: KernelCost }[] } {
  return {
    fused: kernelCost(fused, at),
    staged: stagedCost(bw, at),
    perGradient: fused.map((g, k) => ({ fused: kernelCost([g], at), staged: stagedCost(bw, at, [p.inputs[k]!.name]) })),
  };
}
