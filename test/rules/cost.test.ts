/**
 * The kernel cost (cost.ts) and what the derivation does with it: a sigmoid step's partial goes
 * through its own value, a reduction shared by gradients is computed once, and the phase `cheapest`
 * never leaves a gradient costlier than a form an earlier phase produced (beyond its margin).
 */
import { describe, expect, it } from "vitest";
import { derive } from "../../compiler/driver.js";
import { collect, print } from "../../compiler/ir/expr.js";
import { derivedAndStagedCost, kernelCost, stagedCost } from "../../compiler/simplify/cost.js";
import { expr } from "./helpers.js";

/** A GRU cell written as people write it: every pre-activation and every gate its own step. */
const GRU = {
  name: "gru_cell",
  indices: { b: "B", i: "I", k: "K", j: "K" },
  inputs: ["x[b,i]", "h[b,j]", "wr[i,k]", "ur[j,k]", "wz[i,k]", "uz[j,k]", "wn[i,k]", "un[j,k]"],
  steps: [
    "ar[b,k] = sum(x[b,i] * wr[i,k], i) + sum(h[b,j] * ur[j,k], j)",
    "r[b,k] = sigmoid(ar[b,k])",
    "az[b,k] = sum(x[b,i] * wz[i,k], i) + sum(h[b,j] * uz[j,k], j)",
    "z[b,k] = sigmoid(az[b,k])",
    "hn[b,k] = sum(h[b,j] * un[j,k], j)",
    "an[b,k] = sum(x[b,i] * wn[i,k], i) + r[b,k] * hn[b,k]",
    "n[b,k] = tanh(an[b,k])",
    "hnew[b,k] = (1 - z[b,k]) * n[b,k] + z[b,k] * h[b,k]",
  ],
  output: "hnew",
};

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

  it("keep-cheapest: the gradients of a two-layer perceptron go back to the cheaper form an earlier phase gave", async () => {
    const d = await derive({
      name: "mlp_block",
      indices: { n: "N", f: "F", h: "H", c: "C" },
      inputs: ["x[n,f]", "w1[f,h]", "w2[h,c]", "label[n]: int"],
      steps: [
        "a[n,h] = sum(x[n,f] * w1[f,h], f)",
        "r[n,h] = relu(a[n,h])",
        "z[n,c] = sum(r[n,h] * w2[h,c], h)",
        "m[n] = max(z[n,c], c)",
        "lse[n] = log(sum(exp(z[n,c] - stop(m[n])), c)) + stop(m[n])",
        "loss = sum(lse[n] - z[n, label[n]], n) / N",
      ],
      output: "loss",
    });
    const phases = d.fused.phases;
    const kept = phases.find((ph) => ph.name === "cheapest")!.rewrites;
    expect(kept.map((r) => r.rule)).toContain("keep-cheapest");
    for (const r of kept) {
      const k = r.gradients![0]!;
      // the form kept is an earlier phase's, clearly cheaper than the last phase's, and it is the result
      expect(phases.slice(0, -2).some((ph) => ph.gradients[k] === r.after), print(r.after)).toBe(true);
      expect(kernelCost([r.after]).total).toBeLessThan(0.9 * kernelCost([r.before]).total);
      expect(d.fused.gradients[k]).toBe(r.after);
    }
  });

  it("keeps no gradient clearly costlier than a form an earlier phase produced", async () => {
    const d = await derive(GRU);
    d.fused.gradients.forEach((g, k) => {
      const best = Math.min(...d.fused.phases.map((ph) => kernelCost([ph.gradients[k]!]).total));
      expect(0.9 * kernelCost([g]).total).toBeLessThanOrEqual(best);
    });
  });

  it("keep-cheapest: a gradient's last form => the form of an earlier phase whose kernel costs clearly less", async () => {
    // the library's mlp: the phases leave its gradients costlier than an earlier form (docs/mlp.md)
    const d = await derive((await import("../../specs/mlp.spec.ts")).default);
    const phases = d.fused.phases;
    const cheapest = phases[phases.length - 1]!;
    const last = phases[phases.length - 2]!.gradients;
    expect(cheapest.name).toBe("cheapest");
    expect(cheapest.rewrites.length).toBeGreaterThan(0);
    for (const r of cheapest.rewrites) {
      expect(r.rule).toBe("keep-cheapest");
      const k = r.gradients![0]!;
      expect(r.before).toBe(last[k]);
      expect(r.after).toBe(cheapest.gradients[k]);
      expect(phases.slice(0, -2).some((ph) => ph.gradients[k] === r.after)).toBe(true);
      expect(kernelCost([r.after]).total).toBeLessThan(0.9 * kernelCost([r.before]).total);
    }
  });
});
