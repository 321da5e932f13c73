/**
 * Rules made from a spec's own steps (compiler/simplify/definitions.ts): the data rules
 * unfold-product and fold-definition, and the function rule fold-product, each with input ⇒
 * expected, the case its guard must block, and the value kept where the steps take their defined
 * values.
 */
import { describe, expect, it } from "vitest";
import { definitionsOf, foldDefinitionRules, foldOrder, foldRule, unfoldRules } from "../../compiler/simplify/definitions.js";
import { ctx, expectNoRewrite, expectRewrite, programWith, sizeOf } from "./helpers.js";

const steps = [
  "mu[d] = sum(x[n,d], n)/N",
  "xmu[n,d] = x[n,d] - mu[d]",
  "var[d] = sum(xmu[n,d]^2, n)/N",
  "sqrtvar[d] = sqrt(var[d] + eps)",
  "ivar[d] = 1/sqrtvar[d]",
  "xhat[n,d] = xmu[n,d]*ivar[d]",
];
const defs = definitionsOf(programWith("x[n,d]", "[n,d]", steps), ctx).filter((d) => d.step.name !== "r");
const unfold = unfoldRules(defs);
const literal = foldDefinitionRules(defs.filter((d) => !d.monomial));
const fold = [foldRule(foldOrder(defs), sizeOf, "mul")];

describe("rules from the steps", () => {
  it("are data: patterns built from each step's definition, with its indices as variables", () => {
    expect(unfold.map((r) => r.pattern)).toEqual(["ivar[?d] ⇒ sqrtvar[?d]^(-1)", "xhat[?n,?d] ⇒ sqrtvar[?d]^(-1)*xmu[?n,?d]"]);
    expect(literal.map((r) => r.pattern)).toEqual([
      "N^(-1)*sum(x[N:1,?d], N:1) ⇒ mu[?d]",
      "(N^(-1)*sum(x[N:1,?d], N:1))^?k ⇒ mu[?d]^?k",
      "x[?n,?d] + -1*mu[?d] ⇒ xmu[?n,?d]",
      "(x[?n,?d] + -1*mu[?d])^?k ⇒ xmu[?n,?d]^?k",
      "N^(-1)*sum(xmu[N:1,?d]^2, N:1) ⇒ var[?d]",
      "(N^(-1)*sum(xmu[N:1,?d]^2, N:1))^?k ⇒ var[?d]^?k",
      "(eps + var[?d])^0.5 ⇒ sqrtvar[?d]",
      "(eps + var[?d])^?k ⇒ sqrtvar[?d]^?r",
    ]);
    expect(literal.map((r) => r.guard)).toContain("?k/0.5 is a whole number ?r");
    expect(literal.every((r) => r.lhs !== undefined && r.rhs !== undefined)).toBe(true);
  });

  it("unfold-product: a product step is unfolded into the atom basis", () => {
    expectRewrite(unfold, "xhat[n,d]*g[d]", "xmu[n,d]/sqrtvar[d]*g[d]", "[n,d]", steps);
    expectRewrite(unfold, "sum(xhat[n,d], n)", "sum(xmu[n,d]/sqrtvar[d], n)", "[d]", steps);
  });

  it("unfold-product is blocked on a step that is not a product of powers", () => {
    expectNoRewrite(unfold, "sqrtvar[d]*xmu[n,d]", "[n,d]", steps);
  });

  it("fold-definition: a step's definition becomes the step, also under a reduction", () => {
    expectRewrite(literal, "g[d]/sqrt(var[d] + eps)", "g[d]/sqrtvar[d]", "[d]", steps);
    expectRewrite(literal, "sum(x[n,d], n)/N + g[d]", "mu[d] + g[d]", "[d]", steps);
    expectRewrite(literal, "sum(y[n,d]*(x[n,d] - mu[d]), n)", "sum(y[n,d]*xmu[n,d], n)", "[d]", steps);
  });

  it("fold-definition in powers: t = g^b folds g^k when k/b is whole; any other step in any power", () => {
    expectRewrite(literal, "(var[d] + eps)^-1.5", "sqrtvar[d]^-3", "[d]", steps);
    expectRewrite(literal, "(x[n,d] - mu[d])^3", "xmu[n,d]^3", "[n,d]", steps);
    expectNoRewrite(literal, "(var[d] + eps)^0.75", "[d]", steps);
    expectNoRewrite(literal, "(var[d] + eps)^g[d]", "[d]", steps);
  });

  it("a step that broadcasts its definition makes no rule: its indices cannot be bound from it", () => {
    const broadcast = ["r1[d] = sum(x[n,d], n)", "y1[n,d] = exp(-r1[d]^2)"];
    const p = programWith("y1[n,d]", "[n,d]", broadcast);
    expect(foldDefinitionRules([{ step: p.steps[1]!, basis: p.steps[1]!.rhs, monomial: false }])).toEqual([]);
    expect(unfoldRules([{ step: p.steps[1]!, basis: p.steps[1]!.rhs, monomial: true }])).toEqual([]);
  });

  it("fold-product: a product step folds into a monomial holding a power of it, the larger product first", () => {
    expectRewrite(fold, "xmu[n,d]*sqrtvar[d]^-3*g[d]", "xhat[n,d]*ivar[d]^2*g[d]", "[n,d]", steps);
    expectRewrite(fold, "xmu[n,d]^2/sqrtvar[d]^2", "xhat[n,d]^2", "[n,d]", steps);
  });

  it("fold-product is blocked where the powers do not line up", () => {
    expectNoRewrite(fold, "xmu[n,d]*sqrtvar[d]", "[n,d]", steps);
    expectNoRewrite(fold, "xmu[n,d]*g[d]", "[n,d]", steps);
  });
});
