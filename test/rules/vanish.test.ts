/**
 * The pass `vanish` (compiler/simplify/vanish.ts) and the rule it records, `expand-definitions`:
 * input ⇒ expected, and the case it must leave alone.
 */
import { describe, expect, it } from "vitest";
import { print, replaceNode } from "../../compiler/ir/expr.js";
import { vanish } from "../../compiler/simplify/vanish.js";
import { centredSteps as steps, ctx, expr, programWith, sizeOf, valuesAgree } from "./helpers.js";

const program = programWith("x[n,d]", "[n,d]", steps);
const limited = <T>(_k: number | undefined, f: () => T) => f();

describe("vanish (expand-definitions)", () => {
  it("replaces a reduction by its cheaper expansion through the definitions: a centred sum is 0", () => {
    const g = expr("y[n,d] + g[d]*sum(xmu[n,d], n)", "[n,d]", steps);
    const out = vanish([g], program, ctx, limited);
    expect(print(out.gradients[0]!)).toBe(print(expr("y[n,d]", "[n,d]", steps)));
    expect(out.rewrites.map((r) => r.rule)).toEqual(["expand-definitions"]);
    for (const r of out.rewrites) expect(valuesAgree(r.before, r.after, 3, program)).toBe(true);
  });

  it("records the normalization after the replacement too, so that its rewrites replay to its result", () => {
    const g = expr("sum(y[n,d]*g[d]*(sum(xmu[m,d], m) + 1), n)", "[d]", steps);
    const out = vanish([g], program, ctx, limited);
    expect(print(out.gradients[0]!)).toBe(print(expr("g[d]*sum(y[n,d], n)", "[d]", steps)));
    expect(out.rewrites.map((r) => r.rule)).toEqual(["expand-definitions", "sum-factor"]);
    let cur = g;
    for (const r of out.rewrites) {
      expect(r.gradients).toEqual([0]);
      const next = replaceNode(cur, r.before, r.after, sizeOf);
      expect(next, r.rule).not.toBe(cur);
      cur = next;
    }
    expect(cur).toBe(out.gradients[0]);
  });

  it("leaves a reduction that expands to nothing cheaper alone", () => {
    const g = expr("sum(y[n,d]*xmu[n,d], n)", "[d]", steps);
    expect(vanish([g], program, ctx, limited)).toEqual({ gradients: [g], rewrites: [] });
  });
});
