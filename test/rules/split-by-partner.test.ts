/**
 * The function rule `split-by-partner` of the phase `partners` (partners.ts) groups a reduction's
 * terms by the factors that carry one free index, so that each coefficient does not move with that
 * index; input ⇒ expected, and the cases it must leave alone (one product, nothing saved).
 */
import { describe, expect, it } from "vitest";
import { kernelCost } from "../../compiler/simplify/cost.js";
import { SPLIT_BY_PARTNER_RULE } from "../../compiler/simplify/partners.js";
import { expectNoRewrite, expectRewrite, expr } from "./helpers.js";

describe("split-by-partner", () => {
  it("groups the terms by the factor that carries a free index, the coefficients summed", () => {
    expectRewrite(
      [SPLIT_BY_PARTNER_RULE],
      "sum(exp(x[n,d])*y[m,d] + exp(y[n,d])*x[m,d] + g[d]*x[n,d]*y[m,d], d)",
      "sum(y[m,d]*(exp(x[n,d]) + g[d]*x[n,d]), d) + sum(x[m,d]*exp(y[n,d]), d)",
      "[n,m]",
    );
  });

  it("expands a product over a sum first", () => {
    expectRewrite([SPLIT_BY_PARTNER_RULE], "sum(exp(x[n,d])*(y[m,d] + x[m,d]*exp(y[n,d])), d)", "sum(y[m,d]*exp(x[n,d]), d) + sum(x[m,d]*exp(x[n,d])*exp(y[n,d]), d)", "[n,m]");
  });

  it("factors a coefficient where that is cheaper", () => {
    expectRewrite([SPLIT_BY_PARTNER_RULE], "sum(exp(x[n,d])*y[m,d]*g[d] + exp(x[n,d])*y[m,d]*x[n,d] + exp(y[n,d])*x[m,d], d)", "sum(y[m,d]*exp(x[n,d])*(g[d] + x[n,d]), d) + sum(x[m,d]*exp(y[n,d]), d)", "[n,m]");
  });

  it("lowers the kernel's cost: the coefficients no longer move with the partner's index", () => {
    const before = expr("sum(exp(x[n,d])*y[m,d] + exp(y[n,d])*x[m,d], d)", "[n,m]");
    const after = SPLIT_BY_PARTNER_RULE.apply(before, { sizeOf: (i) => (i === "n" || i === "m" ? "N" : "D") })!;
    expect(after).toBeDefined();
    // each exp once per [n,d], not once per [n,m,d]
    expect(kernelCost([after], 16).transcendentals).toBe(kernelCost([expr("exp(x[n,d]) + exp(y[n,d])", "[n,d]")], 16).transcendentals);
    expect(kernelCost([before], 16).transcendentals).toBe(16 * kernelCost([after], 16).transcendentals);
  });

  it("leaves a single product, and a split that saves nothing, alone", () => {
    expectNoRewrite([SPLIT_BY_PARTNER_RULE], "sum(exp(x[n,d])*y[m,d], d)", "[n,m]");
    expectNoRewrite([SPLIT_BY_PARTNER_RULE], "sum(x[n,d]*y[m,d] + y[n,d]*x[m,d], d)", "[n,m]");
  });
});
