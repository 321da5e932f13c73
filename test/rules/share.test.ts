/**
 * The pass `share` (compiler/simplify/share.ts) and the rule it records, `share-reduction`: input ⇒
 * expected, and the case it must leave alone.
 */
import { describe, expect, it } from "vitest";
import { print, replaceNode } from "../../compiler/ir/expr.js";
import { definitionsOf } from "../../compiler/simplify/definitions.js";
import { share } from "../../compiler/simplify/share.js";
import { centredSteps as steps, ctx, expr, programWith, sizeOf, valuesAgree } from "./helpers.js";

const program = programWith("x[n,d]", "[n,d]", steps);

describe("share (share-reduction)", () => {
  const defs = definitionsOf(program, ctx).filter((d) => d.step.name !== "r");

  it("rewrites a reduction over a cached product step, dividing by what cannot be 0", () => {
    const g = expr("sum(y[n,d]*xmu[n,d], n)", "[d]", steps);
    const out = share([g], defs, program);
    expect(print(out.gradients[0]!)).toBe(print(expr("sqrtvar[d]*sum(y[n,d]*xhat[n,d], n)", "[d]", steps)));
    expect(out.rewrites.map((r) => r.rule)).toEqual(["share-reduction"]);
    expect(valuesAgree(out.rewrites[0]!.before, out.rewrites[0]!.after, 4, program)).toBe(true);
  });

  it("records no rewrite of a reduction that a rewrite inside it already replaced", () => {
    const g = expr("sum(y[n,d]*xmu[n,d]*sum(y[m,d]*xmu[m,d], m), n)", "[d]", steps);
    const out = share([g], defs, program);
    expect(out.rewrites.map((r) => r.rule)).toEqual(["share-reduction"]);
    const r = out.rewrites[0]!;
    expect(replaceNode(g, r.before, r.after, sizeOf)).toBe(out.gradients[0]);
    expect(out.gradients[0]).not.toBe(g);
  });

  it("never divides by a value that may be 0", () => {
    const risky = ["w[n,d] = g[d]*x[n,d]"];
    const p = programWith("x[n,d]", "[n,d]", risky);
    const g = expr("sum(y[n,d]*x[n,d], n)", "[d]", risky);
    expect(share([g], definitionsOf(p, ctx).filter((d) => d.step.name !== "r"), p).rewrites).toEqual([]);
  });
});
