/**
 * The expand rule `sum-factor` (compiler/simplify/rules.ts) alone: input ⇒ expected in spec syntax,
 * the guard that must block it, and the value kept at random points.
 */
import { describe, expect, it } from "vitest";
import { EXPAND_RULES } from "../../compiler/simplify/rules.js";
import { expectNoRewrite, expectRewrite, itKeepsValueAndIsIdempotent } from "./helpers.js";

const only = EXPAND_RULES.filter((r) => r.name === "sum-factor");

describe("sum-factor", () => {
  it("sum-factor: every factor free of the reduction's indices comes out at once", () => {
    expect(expectRewrite(only, "sum(2*g[d]*s*x[n,d], n)", "2*g[d]*s*sum(x[n,d], n)")).toEqual(["sum-factor"]);
    expectRewrite(only, "sum(g[d]*x[n,d]*y[m,d], n, m)", "g[d]*sum(x[n,d]*y[m,d], n, m)");
  });

  it("sum-factor is blocked when every factor uses the indices", () => {
    expectNoRewrite(only, "sum(x[n,d]*y[n,d], n)");
    expectNoRewrite(only, "sum(x[n,d]*y[m,d], n, m)");
  });

  itKeepsValueAndIsIdempotent(only[0]!);
});
