/**
 * The function rules, each the documented exception to rules as data: factor-common (factor.ts),
 * merge-sums (merge.ts) and fold-reduction (regroup.ts); input ⇒ expected, and the case each must
 * leave alone.
 */
import { describe, it } from "vitest";
import { FACTOR_RULE } from "../../compiler/simplify/factor.js";
import { MERGE_RULE } from "../../compiler/simplify/merge.js";
import { foldReductionRule, reductionDefinition } from "../../compiler/simplify/regroup.js";
import { expectNoRewrite, expectRewrite, programWith } from "./helpers.js";

describe("factor-common", () => {
  it("pulls the least power of every common factor out of a sum, and clears a size's denominator", () => {
    expectRewrite([FACTOR_RULE], "g[d]*x[n,d]^3 + g[d]*x[n,d]^2*y[n,d]", "g[d]*x[n,d]^2*(x[n,d] + y[n,d])", "[n,d]");
    expectRewrite([FACTOR_RULE], "x[n,d]/N + y[n,d]", "(x[n,d] + N*y[n,d])/N", "[n,d]");
    expectRewrite([FACTOR_RULE], "-x[n,d] - y[n,d]", "-(x[n,d] + y[n,d])", "[n,d]");
  });

  it("leaves a sum with no common factor alone", () => {
    expectNoRewrite([FACTOR_RULE], "x[n,d] + y[n,d]", "[n,d]");
    expectNoRewrite([FACTOR_RULE], "x[n,d]*g[d] - y[n,d]", "[n,d]");
  });
});

describe("merge-sums", () => {
  it("merges reductions over the same index sizes and free indices into one", () => {
    expectRewrite([MERGE_RULE], "g[d]*sum(x[n,d], n) + s*sum(y[m,d]*x[m,d], m)", "sum(g[d]*x[n,d] + s*y[n,d]*x[n,d], n)");
  });

  it("leaves reductions over different sizes, or a factor using another index, alone", () => {
    expectNoRewrite([MERGE_RULE], "sum(x[n,d], n, d) + sum(g[d], d)", "");
    expectNoRewrite([MERGE_RULE], "x[n,d]*sum(y[m,d], m) + sum(x[m,d], m)", "[n,d]");
  });
});

describe("fold-reduction", () => {
  const steps = ["o[n] = sum(x[n,d]*g[d], d)"];
  const rules = () => [foldReductionRule(programWith("x[n,d]", "[n,d]", steps).steps.flatMap((st) => reductionDefinition(st) ?? []))];

  it("rewrites a reduction that holds a reduction step's definition over that step, exchanging sums", () => {
    expectRewrite(rules(), "sum(y[n,d]*sum(x[n,e]*g[e], e), n)", "sum(y[n,d]*o[n], n)", "[d]", steps);
  });

  it("leaves a reduction whose factors use the step's bound index elsewhere alone", () => {
    expectNoRewrite(rules(), "sum(x[n,d]*g[d]*y[n,d], d)", "[n]", steps);
    expectNoRewrite(rules(), "sum(x[n,d]*y[n,d], d)", "[n]", steps);
  });
});
