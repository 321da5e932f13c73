/**
 * The expand rule `sum-invariant` (compiler/simplify/rules.ts) alone: input ⇒ expected in spec
 * syntax, the guard that must block it, and the value kept at random points.
 */
import { describe, it } from "vitest";
import { EXPAND_RULES } from "../../compiler/simplify/rules.js";
import { expectNoRewrite, expectRewrite, itKeepsValueAndIsIdempotent } from "./helpers.js";

const only = EXPAND_RULES.filter((r) => r.name === "sum-invariant");

describe("sum-invariant", () => {
  it("sum-invariant: a reduction over indices its body does not use is a size times less", () => {
    expectRewrite(only, "sum(g[d], n)", "N*g[d]");
    expectRewrite(only, "sum(x[m,d], n, m)", "N*sum(x[m,d], m)");
    expectNoRewrite(only, "sum(x[n,d], n)");
  });

  itKeepsValueAndIsIdempotent(only[0]!);
});
