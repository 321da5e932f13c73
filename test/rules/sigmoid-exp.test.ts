/**
 * The rule `sigmoid-exp` (EXP_FORMS, compiler/simplify/outputs.ts), one of the forms the pass
 * `outputs` tries on a partial: input ⇒ expected (the value kept at random points), and what it must
 * leave alone.
 */
import { describe, expect, it } from "vitest";
import { EXP_FORMS } from "../../compiler/simplify/outputs.js";
import { expectNoRewrite, expectRewrite } from "./helpers.js";

const only = EXP_FORMS.filter((r) => r.name === "sigmoid-exp");

describe("sigmoid-exp", () => {
  it("sigmoid-exp: sigmoid(?u) ⇒ (1 + exp(-?u))^-1, inside a larger expression too", () => {
    expect(expectRewrite(only, "g[d]*sigmoid(x[n,d] + s)", "g[d]/(1 + exp(-(x[n,d] + s)))", "[n,d]")).toEqual(["sigmoid-exp"]);
  });

  it("leaves any other function, softplus included, alone", () => {
    expectNoRewrite(only, "softplus(x[n,d])*exp(-x[n,d])", "[n,d]");
  });
});
