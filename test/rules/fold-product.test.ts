/**
 * The function rule `fold-product` made from a spec's product steps (compiler/simplify/definitions.ts):
 * input ⇒ expected, the cases it must leave alone, and the value kept where the steps take their
 * defined values.
 */
import { describe, it } from "vitest";
import { foldOrder, foldRule } from "../../compiler/simplify/definitions.js";
import { expectNoRewrite, expectRewrite, normDefs, normSteps as steps, sizeOf } from "./helpers.js";

const fold = [foldRule(foldOrder(normDefs), sizeOf, "mul")];

describe("fold-product", () => {
  it("fold-product: a product step folds into a monomial holding a power of it, the larger product first", () => {
    expectRewrite(fold, "xmu[n,d]*sqrtvar[d]^-3*g[d]", "xhat[n,d]*ivar[d]^2*g[d]", "[n,d]", steps);
    expectRewrite(fold, "xmu[n,d]^2/sqrtvar[d]^2", "xhat[n,d]^2", "[n,d]", steps);
  });

  it("fold-product is blocked where the powers do not line up", () => {
    expectNoRewrite(fold, "xmu[n,d]*sqrtvar[d]", "[n,d]", steps);
    expectNoRewrite(fold, "xmu[n,d]*g[d]", "[n,d]", steps);
  });
});
