/**
 * The expand rule `sum-invariant` (compiler/simplify/rules.ts) alone: input ⇒ expected in spec
 * syntax, the guard that must block it, and the value kept at random points.
 */
import { describe, expect, it } from "vitest";
import { EXPAND_RULES } from "../../compiler/simplify/rules.js";
import { expectNoRewrite, expectRewrite, itKeepsValueAndIsIdempotent } from "./helpers.js";

const only = EXPAND_RULES.filter((r) => r.name === "sum-invariant");

describe("sum-invariant", () => {
  it("sum-invariant: a reduction over indices its body does not use is a size times less", () => {
    expectRewrite(only, "sum(g[d], n)", "N*g[d]");
    expectRewrite(only, "sum(x[m,d], n, m)", "N*sum(x[m,d], m)");
    expectNoRewrite(only, "sum(x[n,d], n)");
  });

  it("every rewrite the runner records replays, also where sum-invariant lowers the reduction around it and renames its index", () => {
    // sum-invariant takes the inner sum over m away: the sum over d holding it is one level lower,
    // its bound index is renamed (D:3 to D:2), and the sum over n beside it is met under the new name
    const from = "sum(g[d]*sum(x[n,d]*sum(g[d], m), n) + sum(y[n,d]*g[d], n)*s, d)";
    const fired = expectRewrite(EXPAND_RULES, from, "N*sum(g[d]^2*sum(x[n,d], n), d) + s*sum(g[d]*sum(y[n,d], n), d)", "[]");
    // the lowering comes first, so the rewrites after it in the same pass meet the renamed index
    expect(fired[0]).toBe("sum-invariant");
    expect(fired.filter((r) => r === "sum-factor").length).toBe(4);
  });

  itKeepsValueAndIsIdempotent(only[0]!);
});
