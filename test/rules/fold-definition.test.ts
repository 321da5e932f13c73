/**
 * The rule `fold-definition` made from a spec's steps (compiler/simplify/definitions.ts): the data it
 * is (patterns built from each step's definition, with its guard), input ⇒ expected, the cases its
 * guard must block, and the value kept where the steps take their defined values.
 */
import { describe, expect, it } from "vitest";
import { definitionsOf, foldDefinitionRules } from "../../compiler/simplify/definitions.js";
import { ctx, expectNoRewrite, expectRewrite, normDefs, normSteps as steps, programWith } from "./helpers.js";

const literal = foldDefinitionRules(normDefs.filter((d) => !d.monomial));

describe("fold-definition", () => {
  it("is data: patterns built from each step's definition, with its indices as variables", () => {
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

  it("a step holding a where folds by instance: the definition renamed to the node's indices, the same comparison only", () => {
    const choice = ["w1[n,d] = where(x[n,d] > 0, exp(x[n,d]), 0)"];
    const rules = foldDefinitionRules(definitionsOf(programWith("x[n,d]", "[n,d]", choice), ctx).filter((d) => !d.monomial));
    expect(rules.map((r) => [r.name, r.lhs])).toEqual([["fold-definition", undefined]]);
    expectRewrite(rules, "y[n,d]*where(x[n,d] > 0, exp(x[n,d]), 0)", "y[n,d]*w1[n,d]", "[n,d]", choice);
    expectRewrite(rules, "sum(g[d]*where(x[m,d] > 0, exp(x[m,d]), 0), m)", "sum(g[d]*w1[m,d], m)", "[d]", choice);
    expectNoRewrite(rules, "where(x[n,d] >= 0, exp(x[n,d]), 0)", "[n,d]", choice);
    expectNoRewrite(rules, "where(x[n,d] > 0, exp(y[n,d]), 0)", "[n,d]", choice);
  });

  it("a step that broadcasts its definition makes no rule: its indices cannot be bound from it", () => {
    const broadcast = ["r1[d] = sum(x[n,d], n)", "y1[n,d] = exp(-r1[d]^2)"];
    const p = programWith("y1[n,d]", "[n,d]", broadcast);
    expect(foldDefinitionRules([{ step: p.steps[1]!, basis: p.steps[1]!.rhs, monomial: false }])).toEqual([]);
  });
});
