/**
 * The rule `sech-tanh` (compiler/simplify/outputs.ts), one of the forms the pass `outputs` tries on a
 * partial: input ⇒ expected, and the power it must leave alone.
 */
import { describe, it } from "vitest";
import { SECH_TANH } from "../../compiler/simplify/outputs.js";
import { expectNoRewrite, expectRewrite } from "./helpers.js";

describe("sech-tanh", () => {
  it("sech-tanh is a pattern rule: sech(?u)^2 ⇒ 1 - tanh(?u)^2, and only that power", () => {
    expectRewrite([SECH_TANH], "g[d]*sech(x[n,d])^2", "g[d]*(1 - tanh(x[n,d])^2)", "[n,d]");
    expectNoRewrite([SECH_TANH], "sech(x[n,d])^3", "[n,d]");
  });
});
