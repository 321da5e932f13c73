/**
 * What each backward kernel does, as emitted: its passes over memory (loop nests), the reductions it
 * computes, the arrays it allocates besides its outputs, and its arithmetic. `backpass stats`
 * prints this as JSON; the optimum tests and the docs read it.
 *
 * Arithmetic is counted by the scheduler's one counter (schedule/cost.ts). The counts follow the emitter exactly: the naive kernel runs one loop nest per statement of the
 * staged backward and allocates an array per statement, except a statement that copies another
 * gradient array cell for cell (it reads that array: `aliasOf`); the fused kernel runs the
 * schedule's passes.
 */
import { canonicalSize, collect, isReduction, isStored, print, type Expr, type SizeOf } from "./ir/expr.js";
import { shapeOf, tensorOf, type Program, type TensorDecl } from "./ir/program.js";
import type { Backward } from "./ir/backward.js";
import { boundOf, type Schedule } from "./schedule/passes.js";
import { cost } from "./schedule/cost.js";
import { aliasOf, ownTemporaries, scatterLoopOf, scatterOf } from "./schedule/lower.js";

export interface ReductionStats {
  /** The reduction, in the spec language. */
  readonly expr: string;
  /** Sizes of its result (its free indices) and of the indices it sums over. */
  readonly shape: readonly string[];
  readonly over: readonly string[];
  /** The gradient it is written into, or "temporary". */
  readonly into: string;
}

export interface PassStats {
  /** Loop extents, outermost first. */
  readonly loops: readonly string[];
  /** Arithmetic operations per iteration of the innermost loop (a transcendental counts as one). */
  readonly ops: number;
  readonly transcendentals: number;
  /** What the pass computes. */
  readonly computes: readonly string[];
}

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
}

/** Arithmetic of an expression per evaluation (the scheduler's counter, schedule/cost.ts): reductions count their body once per iteration. */
function arithmetic(e: Expr, known: (x: Expr) => boolean, at: number): { ops: number; transcendentals: number } {
  return cost(e, { known, at });
}

function sizesOf(indices: readonly string[], sizeOf: SizeOf): string[] {
  return indices.map((i) => canonicalSize(i) ?? sizeOf(i));
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

export function kernelStats(p: Program, bw: Backward, sched: Schedule, at = 256): SpecStats {
  const show = (e: Expr) => print(e, p.letters);
  const candidates: TensorDecl[] = [...p.inputs, tensorOf(p, p.output)];
  const largestDecl = candidates.reduce((a, b) => (shapeOf(p, b).length > shapeOf(p, a).length ? b : a));
  const largest = shapeOf(p, largestDecl);

  // naive: one loop nest per statement, one array per statement
  const nPasses: PassStats[] = [];
  const nReductions: ReductionStats[] = [];
  const nTemps: { name: string; shape: string[] }[] = [];
  const finals = new Set(bw.gradients.map((g) => g.grad.name));
  for (const b of bw.blocks)
    for (const s of b.statements) {
      const shape = sizesOf(s.target.indices, p.sizeOf);
      const name = `d${s.target.name.replace("#", "")}`;
      if (aliasOf(s, finals) !== undefined) continue; // the same array as another: no copy
      if (!finals.has(s.target.name)) nTemps.push({ name, shape });
      if (s.expr.kind === "num") continue; // zeros: allocation only
      // a scatter-add runs over the sum's indices and the target's others (lower.ts: scatterOf)
      const scatter = scatterOf(s.expr, s.target.indices);
      if (scatter) {
        const a = arithmetic(scatter.body, () => false, at);
        const loops = [...sizesOf(scatter.over, p.sizeOf), ...sizesOf(s.target.indices.filter((i) => i !== scatter.delta.index), p.sizeOf)];
        nPasses.push({ loops, ops: a.ops + 1, transcendentals: a.transcendentals, computes: [name] });
        continue;
      }
      // reductions that move with fewer indices than the statement's are computed once per their own (ownTemporaries)
      const own = ownTemporaries(s.expr, s.target.indices);
      const hoisted = new Set(own.map((r) => r.node));
      const a = arithmetic(s.expr, (x) => hoisted.has(x), at);
      let ops = a.ops;
      let tr = a.transcendentals;
      for (const r of own) {
        const b = arithmetic(r.node, () => false, at);
        const share = Math.pow(at, r.node.free.length - s.target.indices.length);
        ops += b.ops * share;
        tr += b.transcendentals * share;
        if (!r.prefix) nTemps.push({ name: show(r.node), shape: sizesOf(r.node.free, p.sizeOf) });
      }
      nPasses.push({ loops: shape, ops: round(ops), transcendentals: round(tr), computes: [name] });
      for (const r of collect(s.expr, isReduction))
        nReductions.push({ expr: show(r), shape: sizesOf(r.free, p.sizeOf), over: sizesOf(r.indices, p.sizeOf), into: r === s.expr && finals.has(s.target.name) ? name : "temporary" });
    }

  // fused: the schedule's passes
  const fPasses: PassStats[] = [];
  const fReductions: ReductionStats[] = [];
  const fTemps: { name: string; shape: string[]; in?: string }[] = [];
  const scheduled = new Set<Expr>([...sched.reductions.map((r) => r.node), ...sched.aliases.keys()]);
  for (const r of sched.reductions) {
    if (isStored(r.node)) {
      // a stored product: an array, not a reduction
      const donor = sched.reuse.get(r.node);
      fTemps.push({ name: show(r.node), shape: sizesOf(r.indices, p.sizeOf), ...(donor ? { in: show(donor) } : {}) });
      continue;
    }
    const into = r.output !== undefined ? `d${p.inputs[r.output]!.name}` : "temporary";
    const shape = sizesOf(r.indices, p.sizeOf);
    fReductions.push({ expr: show(r.node), shape, over: sizesOf(boundOf(r.node), p.sizeOf), into });
    if (r.output === undefined) fTemps.push({ name: show(r.node), shape });
  }
  for (const pass of sched.passes) {
    if (pass.kind === "reduce") {
      let ops = 0;
      let tr = 0;
      for (const r of pass.reductions) {
        const a = arithmetic(r.node.body, (x) => scheduled.has(x), at);
        ops += a.ops + (isStored(r.node) ? 0 : 1); // the accumulation
        tr += a.transcendentals;
      }
      // a pass of scatter-adds has no loop over the index they scatter along (lower.ts)
      const scattered = scatterLoopOf(pass);
      fPasses.push({ loops: sizesOf(pass.loops.filter((l) => l !== scattered), p.sizeOf), ops, transcendentals: tr, computes: pass.reductions.map((r) => show(r.node)) });
    } else {
      let ops = 0;
      let tr = 0;
      for (const o of pass.outputs) {
        const a = arithmetic(o.expr, (x) => scheduled.has(x), at);
        ops += a.ops;
        tr += a.transcendentals;
      }
      fPasses.push({ loops: sizesOf(pass.loops, p.sizeOf), ops, transcendentals: tr, computes: pass.outputs.map((o) => `d${p.inputs[o.input]!.name}`) });
    }
  }
  return {
    spec: p.name,
    largest: { name: largestDecl.name, shape: largest },
    at,
    naive: summarize(p, largest, at, nPasses, nReductions, nTemps),
    fused: summarize(p, largest, at, fPasses, fReductions, fTemps),
  };
}
