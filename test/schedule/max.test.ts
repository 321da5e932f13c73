/**
 * compiler/schedule/passes.ts: a max reduction in a gradient (the tie test of a max's gradient,
 * inside a where's comparison) is a scheduled reduction, computed once per row by a reduce pass
 * before the passes that read it, input ⇒ expected; and the kernel built from it agrees with the
 * naive one and computes each max once.
 */
import { describe, expect, it } from "vitest";
import { print, ZERO } from "../../compiler/ir/expr.js";
import { schedule } from "../../compiler/schedule/passes.js";
import { scheduledWork } from "../../compiler/schedule/work.js";
import { expr, programWith, sizeOf } from "../rules/helpers.js";

describe("max reductions in the schedule", () => {
  const p = programWith("x[n,d]", "[n,d]");
  // dx of r[n] = max(x[n,d], d) spread over a [n,d] pass: the test reads the row's max, the divisor counts its ties
  const dx = expr("y[n,d]*where(x[n,d] == max(x[n,e], e), 1, 0)/sum(where(x[n,e] == max(x[n,d], d), 1, 0), e)", "[n,d]");
  const gradients = p.inputs.map((t) => (t.name === "x" ? dx : ZERO));
  const sched = schedule(gradients, p.inputs, sizeOf, p.inputs.map((t) => t.name !== "x"));

  it("the max is computed into a temporary over [n] by a pass of its own, then the sum that tests against it, then the elementwise pass", () => {
    const shown = sched.passes.map((pass) => (pass.kind === "reduce" ? `reduce ${pass.reductions.map((r) => print(r.node)).join("; ")}` : `map ${pass.outputs.map((o) => o.input).join(",")}`));
    expect(shown).toEqual([`reduce ${print(expr("max(x[n,d], d)", "[n]"))}`, `reduce ${print(expr("sum(where(x[n,d] == max(x[n,e], e), 1, 0), d)", "[n]"))}`, "map 0"]);
    const max = sched.reductions.find((r) => r.node.kind === "max")!;
    expect(max.indices).toEqual(["n"]);
    expect(max.output).toBeUndefined();
  });

  it("the work counts each max once per element of its loops, not once per element of the pass that reads it", () => {
    const w = scheduledWork(p, sched, 256);
    expect(w.passes.map((ps) => ps.loops)).toEqual([["N", "D"], ["N", "D"], ["N", "D"]]);
    // the elementwise pass: a test, a product, a division, read values only (no loop inside)
    expect(w.passes[2]!.ops).toBeLessThan(10);
    expect(w.temporaries.map((t) => t.shape)).toEqual([["N"], ["N"]]);
  });
});
