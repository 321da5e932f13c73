/**
 * The double backward (CONTRACT §4.6), derived by the same stages as the first one: the naive
 * backward written as a program (differentiate/double.ts), reverse mode through it (the naive double
 * backward, staged like the first), the simplifier on that (the fused double backward), the staged
 * choice, the scheduler and the numeric checks. The driver calls it after the first backward; the
 * emitter writes `doubleBackwardNaive` and `doubleBackwardFused` from what it returns.
 */
import { ZERO } from "./ir/expr.js";
import type { Backward } from "./ir/backward.js";
import type { Program } from "./ir/program.js";
import { differentiate } from "./differentiate/reverse.js";
import { doubleProgram, forFusedDerivation } from "./differentiate/double.js";
import { deriveFused, throughOwnValue } from "./simplify/fused.js";
import { schedule } from "./schedule/passes.js";
import { chooseStaged, stagedPart, type StagedChoice } from "./schedule/staged.js";
import { LimitExceeded } from "./limits.js";
import { SimplifyLimit } from "./simplify/runner.js";
import type { Fused } from "./ir/backward.js";
import { isDifferentiable } from "./ir/program.js";
import type { DoubleBackward } from "./emit/double.js";
import { kernelStats } from "./stats.js";
import { verifyBackward, verifyFused, verifyProgram } from "./verify.js";

export type { DoubleBackward } from "./emit/double.js";

/** `run` is the driver's: each stage within the build's time budget, named for its errors. */
export function deriveDouble(p: Program, bw: Backward, run: <T>(stage: string, f: () => T) => T): DoubleBackward {
  const derived = run("double backward", () => doubleProgram(p, bw));
  const p2 = derived.program;
  verifyProgram(p2);
  const backward = run("double backward: differentiate", () => differentiate(p2, throughOwnValue));
  verifyBackward(p2, backward);
  // the fused form reads only the cache, dout and gg: the first backward's statements are inlined
  const view = forFusedDerivation(derived, backward);
  let derivedForm: Fused;
  try {
    derivedForm = run("double backward: simplify", () => deriveFused(view.program, view.backward));
  } catch (e) {
    // past a simplifier limit the fused kernel runs the staged statements, as the naive one does
    if (!(e instanceof LimitExceeded) && !(e instanceof SimplifyLimit)) throw e;
    return staged(p2, derived, backward, run, e.message);
  }
  const fused = derivedForm;
  run("double backward: verify", () => verifyFused(p2, backward, fused));
  const choice = run("double backward: schedule", () => chooseStaged(p2, backward, fused.gradients));
  const sched = run("double backward: schedule", () => schedule(fused.gradients.map((g, k) => (choice.staged[k] ? ZERO : g)), p2.inputs, p2.sizeOf, choice.staged));
  run("double backward: verify", () => verifyFused(p2, backward, { ...fused, gradients: sched.gradients.map((g, k) => (choice.staged[k] ? fused.gradients[k]! : g)) }));
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
