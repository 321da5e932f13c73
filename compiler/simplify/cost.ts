/**
 * The simplifier's one cost measure, which every cost-guided choice uses (vanish keeps a cheaper
 * expansion, merge and regroup keep a cheaper form, outputs a cheaper way through a step's value,
 * expand distributes only where that does not cost more).
 */
import { assertNever, children, collect, isReduction, isTranscendental, refsOf, treeSize, type Expr } from "../ir/expr.js";
import type { Backward } from "../ir/backward.js";
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
  /** The one figure two kernels are compared by: `ops + TRANSCENDENTAL_WEIGHT * transcendentals`. */
  readonly total: number;
}

/** How many arithmetic operations one transcendental function is worth when kernels are compared. */
export const TRANSCENDENTAL_WEIGHT = 10;

/** The size every symbol is given when kernels are compared (`backpass stats` uses the same). */
export const COST_AT = 256;

const kernelCostOf = (ops: number, transcendentals: number): KernelCost => ({ ops, transcendentals, total: ops + TRANSCENDENTAL_WEIGHT * transcendentals });

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
    const own = nodeArithmetic(x);
    ops += count * own.ops;
    tr += count * own.transcendentals;
    for (const c of children(x)) evaluate(c, count);
  };
  const reduction = (r: Expr & { kind: "sum" | "max" }): void => {
    if (seen.has(r)) return;
    seen.add(r);
    const loops = [...r.free, ...r.indices];
    const iterations = Math.pow(at, loops.length);
    ops += iterations;
    const body = r.body;
    if (body.kind !== "mul") return evaluate(body, iterations);
    const split = invariantPart(body.factors, loops);
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
  const needed = only === undefined ? undefined : neededStatements(bw, only);
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

/** The targets of the statements that the gradients of the inputs named in `only` are computed from. */
function neededStatements(bw: Backward, only: readonly string[]): Set<string> {
  const byTarget = new Map(bw.blocks.flatMap((b) => b.statements.map((s) => [s.target.name, s] as const)));
  const needed = new Set<string>();
  const stack = bw.gradients.filter((g) => only.includes(g.input.name)).map((g) => g.grad.name);
  while (stack.length) {
    const name = stack.pop()!;
    if (needed.has(name)) continue;
    needed.add(name);
    const s = byTarget.get(name);
    if (s) for (const r of refsOf(s.expr)) if (r.space === "grad" && byTarget.has(r.name)) stack.push(r.name);
  }
  return needed;
}

/** Arithmetic of one evaluation of `e`, reductions computed where they stand. */
function inlineArithmetic(e: Expr, at: number): { ops: number; transcendentals: number } {
  let ops = 0;
  let transcendentals = 0;
  const go = (x: Expr, weight: number): void => {
    if (x.kind === "sum" || x.kind === "max") {
      const n = weight * Math.pow(at, x.indices.length);
      ops += n;
      return go(x.body, n);
    }
    const own = nodeArithmetic(x);
    ops += weight * own.ops;
    transcendentals += weight * own.transcendentals;
    for (const c of children(x)) go(c, weight);
  };
  go(e, 1);
  return { ops, transcendentals };
}

/** Arithmetic of one node, its operands apart (as `backpass stats` counts it). */
function nodeArithmetic(x: Exclude<Expr, { kind: "sum" | "max" }>): { ops: number; transcendentals: number } {
  switch (x.kind) {
    case "num":
    case "sym":
    case "ref":
    case "delta":
      return { ops: 0, transcendentals: 0 };
    case "add":
      return { ops: x.terms.length - 1, transcendentals: 0 };
    case "mul":
      return { ops: x.factors.length - 1, transcendentals: 0 };
    case "pow": {
      const k = x.exp.kind === "num" ? x.exp.value : NaN;
      if (k === -1 || k === 2) return { ops: 1, transcendentals: 0 };
      if (Number.isInteger(k) && Math.abs(k) <= 4) return { ops: Math.abs(k), transcendentals: 0 };
      return { ops: 1, transcendentals: 1 };
    }
    case "call":
      return x.fn === "stop" ? { ops: 0, transcendentals: 0 } : { ops: 1, transcendentals: 1 };
    case "where":
      return { ops: 1, transcendentals: 0 };
    case "stored":
      return { ops: 0, transcendentals: 0 };
    default:
      return assertNever(x);
  }
}

/**
 * The factors of a reduction's product body over `loops` that the scheduler stores once
 * (schedule's `materialize`, whose choice this follows): those whose indices all lie in one strict
 * subset of the loops, when they hold work; of several subsets, the one that takes the most factors
 * (then the largest).
 */
function invariantPart(factors: readonly Expr[], loops: readonly string[]): { part: Expr[]; rest: Expr[]; width: number } | undefined {
  let best: { part: Expr[]; rest: Expr[]; width: number } | undefined;
  for (const f of factors) {
    const own = f.free;
    if (own.length === 0 || own.length >= loops.length) continue;
    const part = factors.filter((g) => g.free.every((i) => own.includes(i)));
    if (part.length === factors.length) continue;
    const indexed = part.filter((g) => g.free.length > 0);
    if (indexed.length < 2 && !indexed.some((g) => g.kind !== "ref" && g.kind !== "sum")) continue;
    if (best && (part.length < best.part.length || (part.length === best.part.length && own.length <= best.width))) continue;
    best = { part, rest: factors.filter((g) => !part.includes(g)), width: own.length };
  }
  return best;
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
