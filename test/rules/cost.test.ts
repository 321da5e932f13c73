/**
 * The kernel cost (cost.ts) and what the derivation does with it: a sigmoid step's partial goes
 * through its own value, a reduction shared by gradients is computed once, each gradient counts the
 * staged statements it reads. The phase `cheapest` that compares costs is in keep-cheapest.test.ts.
 */
import { describe, expect, it } from "vitest";
import { derive } from "../../compiler/driver.js";
import { collect, print } from "../../compiler/ir/expr.js";
import { derivedAndStagedCost, kernelCost, stagedCost } from "../../compiler/simplify/cost.js";
import { expr, GRU } from "./helpers.js";

describe("kernel cost", () => {
  it("computes a reduction that two gradients share once", () => {
    const g = expr("sum(exp(x[n,d]), n)");
    expect(kernelCost([g, g]).transcendentals).toBe(kernelCost([g]).transcendentals);
    expect(kernelCost([g], 16).transcendentals).toBe(kernelCost([expr("exp(x[n,d])", "[n,d]")], 16).transcendentals);
  });

  it("gives a sigmoid step's partial through its own value, in the naive and the fused backward", async () => {
    const d = await derive(GRU);
    const exps = (e: Parameters<typeof collect>[0]) => collect(e, (x) => x.kind === "call" && x.fn === "exp");
    for (const b of d.backward.blocks) for (const st of b.statements) expect(exps(st.expr), print(st.expr)).toEqual([]);
    for (const g of d.fused.gradients) expect(exps(g), print(g)).toEqual([]);
    // every function of the cell is a cached step: neither kernel computes one
    const { fused, staged } = derivedAndStagedCost(d.program, d.backward, d.fused.gradients);
    expect(staged.transcendentals).toBe(0);
    expect(fused.transcendentals).toBe(0);
  });

  it("gives each gradient the staged statements it reads: all of them for all gradients, none for an input without one", async () => {
    const d = await derive({ ...GRU, inputs: [...GRU.inputs.slice(0, 7), "un[j,k]: nograd"] });
    const { staged, perGradient } = derivedAndStagedCost(d.program, d.backward, d.fused.gradients);
    expect(stagedCost(d.backward, undefined, d.program.inputs.map((t) => t.name))).toEqual(staged);
    expect(perGradient.at(-1)!.staged.total).toBe(0);
    // dwn reads the statements of the last two steps and its own, not those of the gates r and z
    const wn = perGradient[d.program.inputs.findIndex((t) => t.name === "wn")]!.staged;
    expect(wn.total).toBeLessThan(perGradient[d.program.inputs.findIndex((t) => t.name === "wr")]!.staged.total);
  });
});
