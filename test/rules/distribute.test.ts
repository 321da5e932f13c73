/**
 * The expand rule `distribute` (compiler/simplify/rules.ts) alone: input ⇒ expected in spec syntax,
 * the guard that must block it (and that `everywhere` lifts), and the value kept at random points.
 */
import { describe, expect, it } from "vitest";
import { EXPAND_RULES, expandRules } from "../../compiler/simplify/rules.js";
import { expectNoRewrite, expectRewrite, itKeepsValueAndIsIdempotent } from "./helpers.js";

const only = (everywhere = false) => expandRules({ everywhere }).filter((r) => r.name === "distribute");

describe("distribute", () => {
  it("distribute: around a reduction, or where the result costs no more", () => {
    expect(expectRewrite(only(), "g[d]*(sum(x[n,d], n) + s)", "g[d]*sum(x[n,d], n) + g[d]*s")).toEqual(["distribute"]);
    expectRewrite(only(), "s*(g[d] + 1/s)", "s*g[d] + 1", "[d]");
    expectRewrite(only(), "(sum(x[n,d], n) + s)*(g[d] + c)", "c*sum(x[n,d], n) + g[d]*sum(x[n,d], n) + s*(g[d] + c)");
  });

  it("distribute is blocked where it only grows an elementwise term; everywhere, it is not", () => {
    expectNoRewrite(only(), "x[n,d]*(g[d] + s)", "[n,d]");
    expectNoRewrite(only(), "exp(x[n,d])*y[n,d]*(1 + g[d]^2)", "[n,d]");
    expectRewrite(only(true), "x[n,d]*(g[d] + s)", "x[n,d]*g[d] + x[n,d]*s", "[n,d]");
  });

  itKeepsValueAndIsIdempotent(EXPAND_RULES.find((r) => r.name === "distribute")!);
});
