/**
 * The expand rule `sum-linear` (compiler/simplify/rules.ts) alone: input ⇒ expected in spec syntax,
 * the case it must leave alone, and the value kept at random points.
 */
import { describe, expect, it } from "vitest";
import { EXPAND_RULES } from "../../compiler/simplify/rules.js";
import { expectNoRewrite, expectRewrite, itKeepsValueAndIsIdempotent } from "./helpers.js";

const only = EXPAND_RULES.filter((r) => r.name === "sum-linear");

describe("sum-linear", () => {
  it("sum-linear: a reduction of a sum is a sum of reductions", () => {
    expect(expectRewrite(only, "sum(x[n,d] + y[n,d] + g[d], n)", "sum(x[n,d], n) + sum(y[n,d], n) + sum(g[d], n)")).toEqual(["sum-linear", "sum-linear"]);
    expectNoRewrite(only, "sum(x[n,d]*(y[n,d] + g[d]), n)");
  });

  itKeepsValueAndIsIdempotent(only[0]!);
});
