/**
 * The rule `unfold-product` made from a spec's product steps (compiler/simplify/definitions.ts): the
 * data it is (patterns built from each step's definition), input ⇒ expected, the case its guard must
 * block, and the value kept where the steps take their defined values.
 */
import { describe, expect, it } from "vitest";
import { unfoldRules } from "../../compiler/simplify/definitions.js";
import { expectNoRewrite, expectRewrite, normDefs, normSteps as steps, programWith } from "./helpers.js";

const unfold = unfoldRules(normDefs);

describe("unfold-product", () => {
  it("is data: patterns built from each product step's definition, with its indices as variables", () => {
    expect(unfold.map((r) => r.pattern)).toEqual(["ivar[?d] ⇒ sqrtvar[?d]^(-1)", "xhat[?n,?d] ⇒ sqrtvar[?d]^(-1)*xmu[?n,?d]"]);
  });

  it("unfold-product: a product step is unfolded into the atom basis", () => {
    expectRewrite(unfold, "xhat[n,d]*g[d]", "xmu[n,d]/sqrtvar[d]*g[d]", "[n,d]", steps);
    expectRewrite(unfold, "sum(xhat[n,d], n)", "sum(xmu[n,d]/sqrtvar[d], n)", "[d]", steps);
  });

  it("unfold-product is blocked on a step that is not a product of powers", () => {
    expectNoRewrite(unfold, "sqrtvar[d]*xmu[n,d]", "[n,d]", steps);
  });

  it("a step that broadcasts its definition makes no rule: its indices cannot be bound from it", () => {
    const broadcast = ["r1[d] = sum(x[n,d], n)", "y1[n,d] = exp(-r1[d]^2)"];
    const p = programWith("y1[n,d]", "[n,d]", broadcast);
    expect(unfoldRules([{ step: p.steps[1]!, basis: p.steps[1]!.rhs, monomial: true }])).toEqual([]);
  });
});
