/**
 * The rule `softplus-exp` (EXP_FORMS, compiler/simplify/outputs.ts), one of the forms the pass
 * `outputs` tries on a partial: input ⇒ expected (the value kept at random points), and what it must
 * leave alone.
 */
import { describe, expect, it } from "vitest";
import { EXP_FORMS } from "../../compiler/simplify/outputs.js";
import { expectNoRewrite, expectRewrite } from "./helpers.js";

const only = EXP_FORMS.filter((r) => r.name === "softplus-exp");

describe("softplus-exp", () => {
  it("softplus-exp: softplus(?u) ⇒ log(1 + exp(?u)), inside a larger expression too", () => {
    expect(expectRewrite(only, "g[d]*softplus(x[n,d]*s)", "g[d]*log(1 + exp(x[n,d]*s))", "[n,d]")).toEqual(["softplus-exp"]);
  });

  it("leaves any other function, sigmoid included, alone", () => {
    expectNoRewrite(only, "sigmoid(x[n,d])*log(1 + x[n,d])", "[n,d]");
  });
});
