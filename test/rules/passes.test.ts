/**
 * The phases that are passes, not rule sets (vanish.ts, share.ts, outputs.ts), each with input ⇒
 * expected for the rule it records, and the case it must leave alone.
 */
import { describe, expect, it } from "vitest";
import { print, replaceNode } from "../../compiler/ir/expr.js";
import { definitionsOf } from "../../compiler/simplify/definitions.js";
import { SECH_TANH, throughOwnValue } from "../../compiler/simplify/outputs.js";
import { share } from "../../compiler/simplify/share.js";
import { vanish } from "../../compiler/simplify/vanish.js";
import { ctx, expectNoRewrite, expectRewrite, expr, letters, programWith, sizeOf, valuesAgree } from "./helpers.js";

const steps = ["mu[d] = sum(x[n,d], n)/N", "xmu[n,d] = x[n,d] - mu[d]", "sqrtvar[d] = sqrt(g[d]^2 + eps)", "xhat[n,d] = xmu[n,d]/sqrtvar[d]"];
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

describe("outputs (invert-definition, sech-tanh)", () => {
  it("writes a local partial through the step's own value: sigmoid's s*(1 - s)", () => {
    const sig = ["s1[n,d] = 1/(1 + exp(-x[n,d]))"];
    const p = programWith("s1[n,d]", "[n,d]", sig);
    const partial = expr("exp(-x[n,d])/(1 + exp(-x[n,d]))^2", "[n,d]", sig);
    expect(print(throughOwnValue(partial, p.steps[0]!, sizeOf), letters)).toBe(print(expr("s1[n,d]*(1 - s1[n,d])", "[n,d]", sig), letters));
  });

  it("writes sech^2 through a tanh step, and leaves a partial with no cheaper form alone", () => {
    const th = ["t[n,d] = tanh(x[n,d])"];
    const p = programWith("t[n,d]", "[n,d]", th);
    expect(print(throughOwnValue(expr("sech(x[n,d])^2", "[n,d]", th), p.steps[0]!, sizeOf))).toBe(print(expr("1 - t[n,d]^2", "[n,d]", th)));
    const plain = expr("2*x[n,d]", "[n,d]", th);
    expect(throughOwnValue(plain, p.steps[0]!, sizeOf)).toBe(plain);
  });

  it("sech-tanh is a pattern rule: sech(?u)^2 ⇒ 1 - tanh(?u)^2, and only that power", () => {
    expectRewrite([SECH_TANH], "g[d]*sech(x[n,d])^2", "g[d]*(1 - tanh(x[n,d])^2)", "[n,d]");
    expectNoRewrite([SECH_TANH], "sech(x[n,d])^3", "[n,d]");
  });
});
