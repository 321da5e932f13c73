/**
 * The function rule `factor-common` (compiler/simplify/factor.ts), a documented exception to rules as
 * data: input ⇒ expected, and the case it must leave alone.
 */
import { describe, it } from "vitest";
import { FACTOR_RULE } from "../../compiler/simplify/factor.js";
import { expectNoRewrite, expectRewrite } from "./helpers.js";

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
