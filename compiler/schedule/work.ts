/**
 * The work of a backward kernel as emitted, pass by pass: its loop nests with the arithmetic per
 * iteration of each (counted by the one operation counter, cost.ts), the reductions it computes
 * and the arrays it allocates besides its outputs. `backpass stats` summarizes it (stats.ts), and
 * the choice of the staged computation for a gradient (staged.ts) weighs it. The counts follow
 * the lowering exactly: the staged (naive) backward runs one loop nest per statement and
 * allocates an array per statement, except a statement that copies another gradient array cell
 * for cell (`aliasOf`); the fused kernel runs the schedule's passes.
 */
import { canonicalSize, collect, isReduction, isStored, print, renameFree, type Expr, type SizeOf, type Sum } from "../ir/expr.js";
import type { Program } from "../ir/program.js";
import type { Backward } from "../ir/backward.js";
import { boundOf, type Schedule } from "./passes.js";
import { cost, TRANSCENDENTAL_WEIGHT } from "../ir/cost.js";
import { aliasOf, ownTemporaries, scatterLoopsOf, scatterOf } from "./lower.js";
import { commonParts } from "./common.js";

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

export interface Work {
  readonly passes: PassStats[];
  readonly reductions: ReductionStats[];
  /** Arrays besides the outputs; `in` names the temporary whose array a stored product takes over. */
  readonly temporaries: { name: string; shape: string[]; in?: string }[];
}

/**
 * A size for each size symbol, where the work is weighed with sizes that differ (scatter.ts weighs
 * its choice over several); without one, every size is `at`.
 */
export type SizePoint = (size: string) => number;

/** Arithmetic of an expression per evaluation (the one counter, cost.ts): reductions count their body once per iteration. */
function arithmetic(e: Expr, known: (x: Expr) => boolean, at: number, atOf?: (index: string) => number): { ops: number; transcendentals: number } {
  return cost(e, atOf ? { known, at, atOf } : { known, at });
}

/** Iterations of an index at a size point (undefined without one). */
function indexAt(p: Program, point: SizePoint | undefined): ((index: string) => number) | undefined {
  return point && ((i) => point(canonicalSize(i) ?? p.sizeOf(i)));
}

export function sizesOf(indices: readonly string[], sizeOf: SizeOf): string[] {
  return indices.map((i) => canonicalSize(i) ?? sizeOf(i));
}

const round = (x: number) => Math.round(x * 1000) / 1000;

/** The staged backward's passes: one loop nest per statement, one array per statement. */
export function stagedWork(p: Program, bw: Backward, at: number, point?: SizePoint): Work {
  const atOf = indexAt(p, point);
  const show = (e: Expr) => print(e, p.letters);
  const passes: PassStats[] = [];
  const reductions: ReductionStats[] = [];
  const temporaries: { name: string; shape: string[] }[] = [];
  const finals = new Set(bw.gradients.map((g) => g.grad.name));
  for (const b of bw.blocks)
    for (const s of b.statements) {
      const shape = sizesOf(s.target.indices, p.sizeOf);
      const name = `d${s.target.name.replace("#", "")}`;
      if (aliasOf(s, finals) !== undefined) continue; // the same array as another: no copy
      if (!finals.has(s.target.name)) temporaries.push({ name, shape });
      if (s.expr.kind === "num") continue; // zeros: allocation only
      // a scatter-add runs over the sum's indices and the target's others (lower.ts: scatterOf)
      const scatter = scatterOf(s.expr, s.target.indices, p.sizeOf);
      if (scatter) {
        const a = arithmetic(scatter.body, () => false, at, atOf);
        const loops = [...sizesOf(scatter.over, p.sizeOf), ...sizesOf(s.target.indices.filter((i) => !(scatter.deltas ?? [scatter.delta]).some((d) => d.index === i)), p.sizeOf)];
        // an affine scatter also tests its index and reads back the cell it adds to (AFFINE_SCATTER)
        passes.push({ loops, ops: a.ops + 1 + (scatter.delta.form.kind === "affine" ? AFFINE_SCATTER : 0), transcendentals: a.transcendentals, computes: [name] });
        continue;
      }
      // reductions that move with fewer indices than the statement's are computed once per their own (ownTemporaries)
      const own = ownTemporaries(s.expr, s.target.indices);
      const hoisted = new Set(own.map((r) => r.node));
      const a = arithmetic(s.expr, (x) => hoisted.has(x), at, atOf);
      let ops = a.ops;
      let tr = a.transcendentals;
      for (const r of own) {
        const b = arithmetic(r.node, () => false, at, atOf);
        const share = atOf ? r.node.free.reduce((x, i) => x * atOf(i), 1) / s.target.indices.reduce((x, i) => x * atOf(i), 1) : Math.pow(at, r.node.free.length - s.target.indices.length);
        ops += b.ops * share;
        tr += b.transcendentals * share;
        if (!r.prefix) temporaries.push({ name: show(r.node), shape: sizesOf(r.node.free, p.sizeOf) });
      }
      passes.push({ loops: shape, ops: round(ops), transcendentals: round(tr), computes: [name] });
      for (const r of collect(s.expr, isReduction))
        reductions.push({ expr: show(r), shape: sizesOf(r.free, p.sizeOf), over: sizesOf(r.indices, p.sizeOf), into: r === s.expr && finals.has(s.target.name) ? name : "temporary" });
    }

  return { passes, reductions, temporaries };
}

/** The fused kernel's passes: the schedule's. */
export function scheduledWork(p: Program, sched: Schedule, at: number, point?: SizePoint): Work {
  const atOf = indexAt(p, point);
  const show = (e: Expr) => print(e, p.letters);
  const passes: PassStats[] = [];
  const reductions: ReductionStats[] = [];
  const temporaries: { name: string; shape: string[]; in?: string }[] = [];
  const scheduled = new Set<Expr>([...sched.reductions.map((r) => r.node), ...sched.aliases.keys()]);
  for (const r of sched.reductions) {
    if (isStored(r.node)) {
      // a stored product: an array, not a reduction
      const donor = sched.reuse.get(r.node);
      temporaries.push({ name: show(r.node), shape: sizesOf(r.indices, p.sizeOf), ...(donor ? { in: show(donor) } : {}) });
      continue;
    }
    const into = r.output !== undefined ? `d${p.inputs[r.output]!.name}` : "temporary";
    const shape = sizesOf(r.indices, p.sizeOf);
    reductions.push({ expr: show(r.node), shape, over: sizesOf(boundOf(r.node), p.sizeOf), into });
    if (r.output === undefined) temporaries.push({ name: show(r.node), shape });
  }
  for (const pass of sched.passes) {
    if (pass.kind === "reduce") {
      let ops = 0;
      let tr = 0;
      for (const r of pass.reductions) {
        const a = arithmetic(r.node.body, (x) => scheduled.has(x), at, atOf);
        ops += a.ops + (isStored(r.node) ? 0 : 1); // the accumulation
        tr += a.transcendentals;
      }
      // a pass of scatter-adds has no loop over the index they scatter along (lower.ts)
      const scattered = scatterLoopsOf(pass);
      passes.push({ loops: sizesOf(pass.loops.filter((l) => !scattered.includes(l)), p.sizeOf), ops, transcendentals: tr, computes: pass.reductions.map((r) => show(r.node)) });
    } else {
      let ops = 0;
      let tr = 0;
      // a part the outputs compute more than once is computed once (common.ts, as lower.ts does)
      const known = new Set(scheduled);
      const once = (e: Expr) => {
        const a = arithmetic(e, (x) => known.has(x), at, atOf);
        ops += a.ops;
        tr += a.transcendentals;
      };
      // reductions accumulated in the pass: their bodies in the pass's letters, plus the accumulation
      const sums = (pass.accumulates?.reductions ?? []).map((r, k) => renameFree((r.node as Sum).body, pass.accumulates!.bindings[k]!, p.sizeOf));
      for (const x of commonParts([...pass.outputs.map((o) => o.expr), ...sums], (y) => known.has(y))) {
        once(x);
        known.add(x);
      }
      for (const o of pass.outputs) once(o.expr);
      for (const b of sums) {
        once(b);
        ops += 1;
      }
      const computes = [...pass.outputs.map((o) => o.input), ...(pass.accumulates?.reductions ?? []).map((r) => r.output!)];
      passes.push({ loops: sizesOf(pass.loops, p.sizeOf), ops, transcendentals: tr, computes: computes.map((k) => `d${p.inputs[k]!.name}`) });
    }
  }
  // one-scatter passes (scatter.ts): the closed form once per element, then each gradient's term per tap
  for (const el of sched.elements ?? []) {
    const a = arithmetic(el.element, (x) => scheduled.has(x), at, atOf);
    passes.push({ loops: sizesOf(el.elements, p.sizeOf), ops: a.ops, transcendentals: a.transcendentals, computes: [`d${el.adjoint} (a local, never stored over the activation: at most one row of it in scratch, loop/rows.ts)`] });
    let ops = 0;
    let tr = 0;
    for (const o of el.outputs) {
      const b = arithmetic(o.body, (x) => x === o.read, at, atOf);
      ops += b.ops + 1 + (o.deltas.some((d) => d.form.kind === "affine") ? AFFINE_SCATTER : 0);
      tr += b.transcendentals;
    }
    passes.push({ loops: [...sizesOf(el.elements, p.sizeOf), ...el.taps.map((t) => t.size)], ops, transcendentals: tr, computes: el.outputs.map((o) => `d${p.inputs[o.input]!.name}`) });
  }
  return { passes, reductions, temporaries };
}

/**
 * What an affine scatter-add (the naive gradient of `x[n,c,i + k - 1]`) costs per iteration beyond
 * its arithmetic: the test that its index is in range, the clamped index, and the load and store of
 * the cell it adds to, which a gather keeps in a register (`simplify/gather.ts`). Two operations:
 * with it the fused kernel takes the gather, which was faster when both were timed (README).
 */
export const AFFINE_SCATTER = 2;

/**
 * How much a load and a store of one element of an array cost, in operations: a pass over a
 * temporary that does not fit in cache is paid in memory traffic, not arithmetic (what fusing
 * passes saves). Eight, as a transcendental: a measured order of magnitude, not a tuned constant.
 */
export const MEMORY_WEIGHT = 8;

/** One number to compare kernels by, every size symbol set to `at` (or to its size at `point`): arithmetic (a transcendental weighs as `TRANSCENDENTAL_WEIGHT`) plus each element of a temporary written and read back. */
export function workTotal(w: Work, at: number, point?: SizePoint): number {
  const size = (shape: readonly string[]) => (point ? shape.reduce((a, s) => a * point(s), 1) : Math.pow(at, shape.length));
  let total = 0;
  for (const ps of w.passes) total += size(ps.loops) * (ps.ops + (TRANSCENDENTAL_WEIGHT - 1) * ps.transcendentals);
  for (const t of w.temporaries) if (t.in === undefined) total += 2 * MEMORY_WEIGHT * size(t.shape);
  return total;
}
