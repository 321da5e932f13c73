/**
 * The expand rules (compiler/simplify/rules.ts), each alone: input ⇒ expected in spec syntax, the
 * guard that must block it, and the value kept at random points.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { EXPAND_RULES, expandRules } from "../../compiler/simplify/rules.js";
import { runRules } from "../../compiler/simplify/runner.js";
import { ctx, expectNoRewrite, expectRewrite, expr, valuesAgree } from "./helpers.js";

const only = (name: string, everywhere = false) => expandRules({ everywhere }).filter((r) => r.name === name);

describe("expand rules", () => {
  it("distribute: around a reduction, or where the result costs no more", () => {
    expect(expectRewrite(only("distribute"), "g[d]*(sum(x[n,d], n) + s)", "g[d]*sum(x[n,d], n) + g[d]*s")).toEqual(["distribute"]);
    expectRewrite(only("distribute"), "s*(g[d] + 1/s)", "s*g[d] + 1", "[d]");
    expectRewrite(only("distribute"), "(sum(x[n,d], n) + s)*(g[d] + c)", "c*sum(x[n,d], n) + g[d]*sum(x[n,d], n) + s*(g[d] + c)");
  });

  it("distribute is blocked where it only grows an elementwise term; everywhere, it is not", () => {
    expectNoRewrite(only("distribute"), "x[n,d]*(g[d] + s)", "[n,d]");
    expectNoRewrite(only("distribute"), "exp(x[n,d])*y[n,d]*(1 + g[d]^2)", "[n,d]");
    expectRewrite(only("distribute", true), "x[n,d]*(g[d] + s)", "x[n,d]*g[d] + x[n,d]*s", "[n,d]");
  });

  it("distribute-in-sum: a reduction over a product of a sum", () => {
    expectRewrite(only("distribute-in-sum"), "sum(x[n,d]*(y[n,d] + g[d]), n)", "sum(x[n,d]*y[n,d], n) + sum(x[n,d]*g[d], n)");
    expectNoRewrite(only("distribute-in-sum"), "sum(x[n,d]*y[n,d], n)");
    expectNoRewrite(only("distribute-in-sum"), "sum(exp(x[n,d] + y[n,d]), n)");
  });

  it("sum-linear: a reduction of a sum is a sum of reductions", () => {
    expect(expectRewrite(only("sum-linear"), "sum(x[n,d] + y[n,d] + g[d], n)", "sum(x[n,d], n) + sum(y[n,d], n) + sum(g[d], n)")).toEqual(["sum-linear", "sum-linear"]);
    expectNoRewrite(only("sum-linear"), "sum(x[n,d]*(y[n,d] + g[d]), n)");
  });

  it("sum-factor: every factor free of the reduction's indices comes out at once", () => {
    expect(expectRewrite(only("sum-factor"), "sum(2*g[d]*s*x[n,d], n)", "2*g[d]*s*sum(x[n,d], n)")).toEqual(["sum-factor"]);
    expectRewrite(only("sum-factor"), "sum(g[d]*x[n,d]*y[m,d], n, m)", "g[d]*sum(x[n,d]*y[m,d], n, m)");
  });

  it("sum-factor is blocked when every factor uses the indices", () => {
    expectNoRewrite(only("sum-factor"), "sum(x[n,d]*y[n,d], n)");
    expectNoRewrite(only("sum-factor"), "sum(x[n,d]*y[m,d], n, m)");
  });

  it("sum-invariant: a reduction over indices its body does not use is a size times less", () => {
    expectRewrite(only("sum-invariant"), "sum(g[d], n)", "N*g[d]");
    expectRewrite(only("sum-invariant"), "sum(x[m,d], n, m)", "N*sum(x[m,d], m)");
    expectNoRewrite(only("sum-invariant"), "sum(x[n,d], n)");
  });

  it("every rewrite the runner records replays, also where one lowers the reduction around it and renames its index", () => {
    // sum-invariant takes the inner sum over m away: the sum over d holding it is one level lower,
    // its bound index is renamed (D:3 to D:2), and the sum over n beside it is met under the new name
    const from = "sum(g[d]*sum(x[n,d]*sum(g[d], m), n) + sum(y[n,d]*g[d], n)*s, d)";
    const fired = expectRewrite(EXPAND_RULES, from, "N*sum(g[d]^2*sum(x[n,d], n), d) + s*sum(g[d]*sum(y[n,d], n), d)", "[]");
    // the lowering comes first, so the rewrites after it in the same pass meet the renamed index
    expect(fired[0]).toBe("sum-invariant");
    expect(fired.filter((r) => r === "sum-factor").length).toBe(4);
  });

  const bodies = ["x[n,d]*g[d]", "x[n,d] + y[n,d]*s", "(x[n,d] - g[d])*(y[n,d] + c)", "g[d]*s + x[n,d]^2", "exp(g[d])*x[n,d]*(1 + y[n,d])"];
  for (const rule of EXPAND_RULES) {
    it(`${rule.name} keeps the value at random points and is idempotent`, () => {
      fc.assert(
        fc.property(fc.constantFrom(...bodies), fc.constantFrom(...bodies), fc.integer(), (a, b, seed) => {
          const e = expr(`sum(${a}, n) * (${b}) + g[d]*sum(${b}, n)`, "[n,d]");
          const once = runRules(e, [rule], ctx);
          expect(valuesAgree(e, once, seed)).toBe(true);
          expect(runRules(once, [rule], ctx)).toBe(once);
        }),
        { numRuns: 30 },
      );
    });
  }
});
