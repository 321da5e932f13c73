/**
 * The expand rule `distribute-in-sum` (compiler/simplify/rules.ts) alone: input ⇒ expected in spec
 * syntax, the cases it must leave alone, and the value kept at random points.
 */
import { describe, it } from "vitest";
import { EXPAND_RULES } from "../../compiler/simplify/rules.js";
import { expectNoRewrite, expectRewrite, itKeepsValueAndIsIdempotent } from "./helpers.js";

const only = EXPAND_RULES.filter((r) => r.name === "distribute-in-sum");

describe("distribute-in-sum", () => {
  it("distribute-in-sum: a reduction over a product of a sum", () => {
    expectRewrite(only, "sum(x[n,d]*(y[n,d] + g[d]), n)", "sum(x[n,d]*y[n,d], n) + sum(x[n,d]*g[d], n)");
    expectNoRewrite(only, "sum(x[n,d]*y[n,d], n)");
    expectNoRewrite(only, "sum(exp(x[n,d] + y[n,d]), n)");
  });

  itKeepsValueAndIsIdempotent(only[0]!);
});
