/**
 * What each backward kernel does, as emitted: its passes over memory (loop nests), the reductions it
 * computes, the arrays it allocates besides its outputs, and its arithmetic. `backpass stats`
 * prints this as JSON; the optimum tests and the docs read it. The work itself is counted pass by
 * pass in schedule/work.ts (with the one operation counter, ir/cost.ts), which the choice of
 * staged gradients weighs too; this file sums it up per element of the largest tensor.
 */
import { shapeOf, tensorOf, type Program, type TensorDecl } from "./ir/program.js";
import type { Backward } from "./ir/backward.js";
import type { Schedule } from "./schedule/passes.js";
import { scheduledWork, stagedWork, type PassStats, type ReductionStats } from "./schedule/work.js";

export type { PassStats, ReductionStats } from "./schedule/work.js";

export interface KernelStats {
  readonly passes: number;
  /** Passes whose loops cover every element of the largest tensor. */
  readonly passesOverLargest: number;
  readonly reductions: readonly ReductionStats[];
  /** Arrays besides the outputs; `in` names the temporary whose array a stored product takes over. */
  readonly temporaries: readonly { readonly name: string; readonly shape: readonly string[]; readonly in?: string }[];
  /** Temporaries as large as the largest tensor. */
  readonly largeTemporaries: number;
  /** Total arithmetic divided by the largest tensor's size, with every size symbol set to `at`. */
  readonly opsPerElement: number;
  readonly transcendentalsPerElement: number;
  readonly detail: readonly PassStats[];
}

export interface SpecStats {
  readonly spec: string;
  /** The largest tensor among the inputs and the output, and its shape. */
  readonly largest: { readonly name: string; readonly shape: readonly string[] };
  /** The size every symbol is given for the per-element figures. */
  readonly at: number;
  readonly naive: KernelStats;
  readonly fused: KernelStats;
  /** The kernels of the inference graph (CONTRACT §4.5), for a spec with `inference`: `backwardInferenceNaive` and `backwardInferenceFused`. */
  readonly inference?: SpecStats;
  /**
   * The double backward's kernels (CONTRACT §4.6), counted the same way over the derived program
   * (compiler/double.ts); the naive one's figures leave out its recomputation of the first backward.
   */
  readonly double?: { readonly naive: KernelStats; readonly fused: KernelStats };
}

function covers(loops: readonly string[], shape: readonly string[]): boolean {
  const pool = [...loops];
  for (const s of shape) {
    const k = pool.indexOf(s);
    if (k < 0) return false;
    pool.splice(k, 1);
  }
  return true;
}

function summarize(p: Program, largest: readonly string[], at: number, passes: PassStats[], reductions: ReductionStats[], temporaries: { name: string; shape: string[]; in?: string }[]): KernelStats {
  const size = (shape: readonly string[]) => Math.pow(at, shape.length);
  let ops = 0;
  let tr = 0;
  for (const ps of passes) {
    ops += ps.ops * size(ps.loops);
    tr += ps.transcendentals * size(ps.loops);
  }
  return {
    passes: passes.length,
    passesOverLargest: passes.filter((ps) => covers(ps.loops, largest)).length,
    reductions,
    temporaries,
    largeTemporaries: temporaries.filter((t) => t.in === undefined && covers(t.shape, largest)).length,
    opsPerElement: round(ops / size(largest)),
    transcendentalsPerElement: round(tr / size(largest)),
    detail: passes,
  };
}

const round = (x: number) => Math.round(x * 1000) / 1000;

export function kernelStats(p: Program, bw: Backward, sched: Schedule, staged?: Backward, at = 256): SpecStats {
  const candidates: TensorDecl[] = [...p.inputs, ...p.outputs.map((o) => tensorOf(p, o))];
  const largestDecl = candidates.reduce((a, b) => (shapeOf(p, b).length > shapeOf(p, a).length ? b : a));
  const largest = shapeOf(p, largestDecl);
  const naive = stagedWork(p, bw, at);
  const fused = scheduledWork(p, sched, at);
  // gradients the fused kernel computes the staged way (schedule/staged.ts): their statements too
  if (staged) {
    const part = stagedWork(p, staged, at);
    fused.passes.push(...part.passes);
    fused.reductions.push(...part.reductions);
    fused.temporaries.push(...part.temporaries);
  }
  return {
    spec: p.name,
    largest: { name: largestDecl.name, shape: largest },
    at,
    naive: summarize(p, largest, at, naive.passes, naive.reductions, naive.temporaries),
    fused: summarize(p, largest, at, fused.passes, fused.reductions, fused.temporaries),
  };
}
