/**
 * The rule `fold-inverse` made from a spec's steps (compiler/simplify/definitions.ts): a step
 * `t[I] = log(A) + B` whose `A` holds a reduction gives `A(?I) ⇒ exp(t[?I] - B(?I))`, so that a
 * gradient reads the reduction back from the cached step instead of reducing again. Input ⇒
 * expected, the steps that make no rule, and the value kept where the steps take their values.
 */
import { describe, expect, it } from "vitest";
import { foldInverseRules } from "../../compiler/simplify/definitions.js";
import { expectNoRewrite, expectRewrite, programWith } from "./helpers.js";

// a log-sum-exp over d with the row maximum under stop(...), as cross-entropy writes it
const lse = ["m1[n] = max(x[n,d], d)", "l[n] = log(sum(exp(x[n,d] - stop(m1[n])), d)) + stop(m1[n])"];
const rules = (steps: readonly string[]) => foldInverseRules(programWith("x[n,d]", "[n,d]", steps));

describe("fold-inverse", () => {
  it("is data: the reduction under the step's log as the pattern, the step solved for it as the replacement", () => {
    const r = rules(lse);
    expect(r.map((x) => x.name)).toEqual(["fold-inverse"]);
    expect(r[0]!.pattern).toBe("sum(exp(x[?n,D:1] + -1*stop(m1[?n])), D:1) ⇒ exp(l[?n] + -1*stop(m1[?n]))");
    expect(r[0]!.lhs).toBeDefined();
  });

  it("fold-inverse: the reduction becomes exp of the cached step, also inside a quotient and under another reduction", () => {
    expectRewrite(rules(lse), "y[n,d]/sum(exp(x[n,e] - stop(m1[n])), e)", "y[n,d]/exp(l[n] - stop(m1[n]))", "[n,d]", lse);
    expectRewrite(rules(lse), "sum(g[d]*sum(exp(x[n,e] - stop(m1[n])), e), n)", "sum(g[d]*exp(l[n] - stop(m1[n])), n)", "[d]", lse);
  });

  it("a log of a plain step, or a sum over what the step keeps, makes no rule: reading it back would cost more", () => {
    expect(rules(["l2[n,d] = log(x[n,d]) + 1"])).toEqual([]);
    expect(rules(["l3[n,d] = log(sum(x[n,e], e)) + y[n,d]"])).toEqual([]);
    expect(rules(["l4[n] = sum(log(x[n,d]), d)"])).toEqual([]);
  });

  it("another reduction, or the same one over another row, is left alone", () => {
    expectNoRewrite(rules(lse), "sum(exp(x[n,e]), e)", "[n]", lse);
    expectNoRewrite(rules(lse), "sum(exp(x[n,e] - stop(m1[m])), e)", "[n,m]", lse);
  });
});
