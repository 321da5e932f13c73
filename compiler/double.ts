/**
 * The double backward (CONTRACT §4.6), derived by the same stages as the first one: the naive
 * backward written as a program (differentiate/double.ts), reverse mode through it (the naive double
 * backward, staged like the first), the simplifier on that (the fused double backward), the staged
 * choice, the scheduler and the numeric checks. The driver calls it after the first backward; the
 * emitter writes `doubleBackwardNaive` and `doubleBackwardFused` from what it returns.
 */
import { refsOf, ZERO, type Expr } from "./ir/expr.js";
import { isMonomial } from "./simplify/definitions.js";
import type { Backward } from "./ir/backward.js";
import type { Program } from "./ir/program.js";
import { differentiate, NoGradient } from "./differentiate/reverse.js";
import { SpecError } from "./parse/check.js";
import { doubleProgram, forFusedDerivation } from "./differentiate/double.js";
import { deriveFused, throughOwnValue } from "./simplify/fused.js";
import { schedule, type Schedule } from "./schedule/passes.js";
import { scheduledWork, workTotal } from "./schedule/work.js";
import { shapeOf } from "./ir/program.js";
import { chooseStaged, stagedPart, type StagedChoice } from "./schedule/staged.js";
import { LimitExceeded } from "./limits.js";
import { SimplifyLimit } from "./simplify/runner.js";
import type { Fused } from "./ir/backward.js";
import { isDifferentiable } from "./ir/program.js";
import type { DoubleBackward } from "./emit/double.js";
import { kernelStats } from "./stats.js";
import { InternalError, verifyBackward, verifyFused, verifyProgram } from "./verify.js";

export type { DoubleBackward } from "./emit/double.js";

/** `run` is the driver's: each stage within the build's time budget, named for its errors. */
export function deriveDouble(p: Program, bw: Backward, run: <T>(stage: string, f: () => T) => T, first?: readonly Expr[], source?: string): DoubleBackward {
  const derived = run("double backward", () => doubleProgram(p, bw));
  const p2 = derived.program;
  verifyProgram(p2);
  let backward: Backward;
  try {
    backward = run("double backward: differentiate", () => differentiate(p2, throughOwnValue));
  } catch (e) {
    if (!(e instanceof NoGradient)) throw e;
    throw new SpecError([{ message: `the double backward (the gradient of the backward pass): ${e.message}` }], source);
  }
  verifyBackward(p2, backward);
  // the fused form reads only the cache, dout and gg: the first backward's statements are inlined
  const view = forFusedDerivation(derived, backward, first ? unread(p, first) : undefined);
  let fused: Fused, choice: StagedChoice, sched: Schedule;
  try {
    fused = run("double backward: simplify", () => deriveFused(view.program, view.backward));
    fused = run("double backward: schedule", () => fewestPasses(p2, fused));
    // verified once, as scheduled: the check below holds every gradient the kernel computes from
    // the derivation (the scheduled form, or the fused one where it is staged), and a failure falls
    // back to the staged kernel as a failure here would
    choice = run("double backward: schedule", () => chooseStaged(p2, backward, fused.gradients));
    sched = run("double backward: schedule", () => schedule(fused.gradients.map((g, k) => (choice.staged[k] ? ZERO : g)), p2.inputs, p2.sizeOf, choice.staged));
    run("double backward: verify", () => verifyFused(p2, backward, { ...fused, gradients: sched.gradients.map((g, k) => (choice.staged[k] ? fused.gradients[k]! : g)) }));
  } catch (e) {
    // the build's time budget and the stack are the driver's to report
    if ((e instanceof LimitExceeded && /time budget/.test(e.message)) || (e instanceof RangeError && /call stack/i.test(e.message))) throw e;
    // past a simplifier limit, or a derived form the numeric checks refuse (it never reaches a
    // kernel), the fused kernel runs the staged statements, as the naive one does; the first
    // backward's build is not affected
    if (e instanceof LimitExceeded || e instanceof SimplifyLimit || e instanceof InternalError) return staged(p2, derived, backward, run, e.message);
    if (e instanceof Error) return staged(p2, derived, backward, run, `the derivation failed: ${e.message}`);
    throw e;
  }
  const stats = run("double backward: stats", () => kernelStats(p2, backward, sched, choice.part));
  return { derived, backward, fused, schedule: sched, staged: choice, stats };
}

/** The double backward whose fused kernel computes every gradient the staged way (`why`: the limit it met). */
function staged(p2: Program, derived: DoubleBackward["derived"], backward: Backward, run: <T>(stage: string, f: () => T) => T, why: string): DoubleBackward {
  const diff = p2.inputs.filter(isDifferentiable).map((t) => t.name);
  const choice: StagedChoice = {
    staged: p2.inputs.map(isDifferentiable),
    part: stagedPart(backward, diff),
    work: p2.inputs.map(() => ({ derived: Infinity, staged: 0 })),
  };
  const sched = run("double backward: schedule", () => schedule(p2.inputs.map(() => ZERO), p2.inputs, p2.sizeOf, choice.staged));
  const fused: Fused = { gradients: p2.inputs.map(() => ZERO), phases: [] };
  const stats = run("double backward: stats", () => kernelStats(p2, backward, sched, choice.part));
  return { derived, backward, fused, schedule: sched, staged: choice, stats, limit: why };
}

/**
 * The forward steps that are products of powers (`gammax = gamma*xhat`) and that the fused first
 * backward does not read: folding a product back into one of them saves a multiplication, which the
 * scheduler's per-column coefficients make free anyway, and costs a pass over its array. The fused
 * double backward reads what the fused first backward reads.
 */
function unread(p: Program, first: readonly Expr[]): Set<string> {
  const read = new Set(first.flatMap((g) => refsOf(g).map((r) => r.name)));
  return new Set(p.steps.filter((s) => isMonomial(s.rhs) && !read.has(s.name)).map((s) => s.name));
}

/**
 * Each gradient's form, the simplifier's or the one before its merge phases, whichever gives the
 * kernel fewer passes over the largest tensors, then clearly less work (schedule/work.ts). The simplifier's own choice weighs
 * operations only, and its merge phase may nest one reduction in another (softmax's
 * `sum(dout*p*(2*sum(ddz*p) - ddz))`), which costs a pass over the data to save a multiplication.
 * The double backward reads more arrays than the first, so it is judged by its passes first.
 * Every phase's form is the same value (each rewrite is checked), and the result is verified.
 */
function fewestPasses(p2: Program, fused: Fused): Fused {
  const AT = 256;
  const rank = Math.max(...p2.inputs.map((t) => shapeOf(p2, t).length));
  const score = (gs: readonly Expr[]): [number, number] => {
    const w = scheduledWork(p2, schedule(gs, p2.inputs, p2.sizeOf), AT);
    return [w.passes.filter((ps) => ps.loops.length >= rank).length, workTotal(w, AT)];
  };
  const better = (a: [number, number], b: [number, number]) => a[0] < b[0] || (a[0] === b[0] && a[1] < 0.9 * b[1]);
  let best = [...fused.gradients];
  let bestScore = score(best);
  const rewrites: { rule: string; before: Expr; after: Expr; gradients: number[] }[] = [];
  best.forEach((_, k) => {
    // the form before the merge phases nest reductions (each schedule costs: one candidate)
    const forms = [...new Set(fused.phases.filter((ph) => ph.name === "regroup").map((ph) => ph.gradients[k]!))];
    for (const f of forms) {
      if (f === best[k]) continue;
      const trial = best.map((g, j) => (j === k ? f : g));
      const s = score(trial);
      if (better(s, bestScore)) {
        rewrites.push({ rule: "keep-cheapest", before: best[k]!, after: f, gradients: [k] });
        best = trial;
        bestScore = s;
      }
    }
  });
  if (!rewrites.length) return fused;
  return { gradients: best, phases: [...fused.phases, { name: "fewest-passes", rewrites, gradients: best }] };
}
