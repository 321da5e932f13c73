/**
 * The rule `keep-cheapest` that the last phase, `cheapest` (compiler/simplify/fused.ts), records: a
 * gradient goes back to the form an earlier phase gave when that costs clearly less, and no gradient
 * is left clearly costlier than a form an earlier phase produced (beyond its margin).
 */
import { describe, expect, it } from "vitest";
import { derive } from "../../compiler/driver.js";
import { print } from "../../compiler/ir/expr.js";
import { kernelCost } from "../../compiler/simplify/cost.js";
import { GRU } from "./helpers.js";

describe("keep-cheapest", () => {
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
});
