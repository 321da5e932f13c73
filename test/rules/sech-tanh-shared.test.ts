/**
 * The rule `sech-tanh-shared` (compiler/simplify/tanh.ts), run after the cheapest forms are chosen:
 * input ⇒ expected where the kernel computes tanh(u) anyway, and no rewrite where it does not.
 */
import { describe, expect, it } from "vitest";
import { print } from "../../compiler/ir/expr.js";
import { sechThroughTanh, tanhArguments, tanhShare } from "../../compiler/simplify/tanh.js";
import { ctx, expectNoRewrite, expectRewrite, expr, sizeOf } from "./helpers.js";
import { derive } from "../../compiler/driver.js";

/** The rule with the tanh arguments of `others` (spec syntax, over [n,d]). */
const withTanhOf = (...others: string[]) => [sechThroughTanh(tanhArguments(others.map((o) => expr(o, "[n,d]")), sizeOf))];

describe("sech-tanh-shared", () => {
  it("sech-tanh-shared: sech(?u)^2 ⇒ 1 - tanh(?u)^2 where tanh(?u) is computed, also read in a reduction under its bound name", () => {
    expectRewrite(withTanhOf("g[d]*tanh(x[n,d])"), "y[n,d]*sech(x[n,d])^2", "y[n,d]*(1 - tanh(x[n,d])^2)", "[n,d]");
    // the same value inside a sum over n, where x[n,d] is read at the bound index
    expectRewrite(withTanhOf("tanh(x[n,d])"), "sum(y[n,d]*sech(x[n,d])^2, n)", "sum(y[n,d]*(1 - tanh(x[n,d])^2), n)");
  });

  it("leaves sech(u)^2 where the kernel has no tanh(u), and other powers", () => {
    expectNoRewrite(withTanhOf("tanh(y[n,d])"), "g[d]*sech(x[n,d])^2", "[n,d]");
    expectNoRewrite(withTanhOf("tanh(x[n,d])"), "sech(x[n,d])^3", "[n,d]");
    expectNoRewrite(withTanhOf(), "sech(x[n,d])^2", "[n,d]");
  });

  it("the phase shares across gradients: tanh(u) in one gradient lets sech(u)^2 in another go through it", () => {
    const a = expr("y[n,d]*tanh(x[n,d])", "[n,d]");
    const b = expr("g[d]*sech(x[n,d])^2", "[n,d]");
    const out = tanhShare([a, b], ctx, (_k, f) => f(), 10);
    expect(out.gradients[0]).toBe(a);
    expect(print(out.gradients[1]!)).toBe(print(expr("g[d]*(1 - tanh(x[n,d])^2)", "[n,d]")));
    expect(out.rewrites.map((r) => [r.rule, r.gradients])).toEqual([["sech-tanh-shared", [1]]]);
  });

  it("all or nothing: a gradient whose rewritten form gives other numbers keeps every gradient's form", () => {
    const a = expr("y[n,d]*tanh(x[n,d]) + sech(x[n,d])^2", "[n,d]");
    const b = expr("g[d]*sech(x[n,d])^2", "[n,d]");
    const out = tanhShare([a, b], ctx, (_k, f) => f(), 10, (_before, _after, k) => k !== 1);
    expect(out.gradients).toEqual([a, b]);
    expect(out.rewrites).toEqual([]);
  });

  it("a gradient scaled as a whole by sech(r)^2 with r near 10 (a fuzzed spec) keeps sech: 1 - tanh(r)^2 would be off by 1e-9 of it", async () => {
    const spec = { name: "random", indices: { n: "N", d: "D" }, inputs: ["x[n,d]"], steps: ["a[n,d] = 2*x[n,d] + 0.78", "r[d] = sum(sqrt(1 + (a[n,d] + x[n,d])^2), n)", "y[n,d] = sin(tanh(r[d]))"], output: "y" };
    const d = await derive(spec);
    expect(print(d.fused.gradients[0]!)).toContain("sech(r[d])^2");
    expect(d.fused.phases.find((ph) => ph.name === "tanh")!.rewrites).toEqual([]);
  });
});
