/**
 * Which gradients the fused kernel computes the staged way. A derivation is judged by the work of
 * the kernel it gives, not by how short it prints: for each gradient, the fused kernel that computes
 * it alone (its schedule, counted pass by pass in work.ts) against the part of the staged backward
 * it reads (the statements it needs, and the temporaries they write and read back). Where the
 * derived form is more work, no derived form beat the staged one, and the fused kernel runs those
 * statements for that gradient instead (lower.ts lowers them as the naive kernel does). So the
 * fused kernel is never more work than the naive one, by the measure `backpass stats` reports.
 *
 * Why it can happen: a derivation that expands a gradient through the forward definitions may put
 * work that the staged form does once per element inside a loop over more indices (a gather's
 * gradient the scheduler cannot scatter runs over every row of the table), or recompute per term
 * what a staged adjoint computed once.
 *
 * A derived form whose schedule stores a temporary of higher rank than every tensor of the program
 * is never taken: the staged backward's arrays all have a tensor's shape, and such a temporary
 * (max pooling's window sum of deltas over [n,c,h,w,i,j]) is a product of sizes that no tensor
 * holds together. Weighed with every size 256 it can look cheaper than a staged statement that
 * loops over a window, but a window is a few elements and the temporary is then far larger than
 * the work it saves (maxpool2d: 200 times slower).
 */
import { ZERO, type Expr } from "../ir/expr.js";
import { statementsRead, type Backward } from "../ir/backward.js";
import { isDifferentiable, type Program } from "../ir/program.js";
import { schedule } from "./passes.js";
import { scheduledWork, stagedWork, workTotal } from "./work.js";

export interface StagedChoice {
  /** Per input, in input order: whether the fused kernel computes its gradient the staged way. */
  readonly staged: readonly boolean[];
  /** The staged statements the fused kernel runs for them (undefined when none is staged). */
  readonly part: Backward | undefined;
  /** Per input: the work of its derived form and of its staged part, at `at` (0 for an input without a gradient). */
  readonly work: readonly { readonly derived: number; readonly staged: number; readonly oversized?: boolean }[];
}

/** The size every symbol is given when the two forms are weighed (as `backpass stats` does). */
const AT = 256;

export function chooseStaged(p: Program, bw: Backward, gradients: readonly Expr[]): StagedChoice {
  const rank = Math.max(0, ...[...p.inputs, ...p.steps].map((t) => t.indices.length));
  const work = p.inputs.map((t, k) => {
    if (!isDifferentiable(t)) return { derived: 0, staged: 0 };
    const alone = gradients.map((g, j) => (j === k ? g : ZERO));
    const others = gradients.map((_, j) => j !== k);
    const scheduled = scheduledWork(p, schedule(alone, p.inputs, p.sizeOf, others), AT);
    const oversized = scheduled.temporaries.some((tmp) => tmp.shape.length > rank);
    const derived = workTotal(scheduled, AT);
    const staged = workTotal(stagedWork(p, stagedPart(bw, [t.name]), AT), AT);
    return oversized ? { derived, staged, oversized } : { derived, staged };
  });
  const staged = work.map((w) => w.derived > w.staged || w.oversized === true);
  const names = p.inputs.filter((_, k) => staged[k]).map((t) => t.name);
  return { staged, part: names.length ? stagedPart(bw, names) : undefined, work };
}

/** The staged backward cut down to what the gradients of the inputs named in `inputs` read. */
export function stagedPart(bw: Backward, inputs: readonly string[]): Backward {
  const gradients = bw.gradients.filter((g) => inputs.includes(g.input.name));
  const needed = statementsRead(bw, inputs);
  const blocks = bw.blocks.map((b) => ({ ...b, statements: b.statements.filter((s) => needed.has(s.target.name)) })).filter((b) => b.statements.length > 0);
  return { ...bw, blocks, gradients };
}
