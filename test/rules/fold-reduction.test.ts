/**
 * The function rule `fold-reduction` (compiler/simplify/regroup.ts), a documented exception to rules
 * as data: input ⇒ expected, and the cases it must leave alone.
 */
import { describe, it } from "vitest";
import { foldReductionRule, reductionDefinition } from "../../compiler/simplify/regroup.js";
import { expectNoRewrite, expectRewrite, programWith } from "./helpers.js";

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
