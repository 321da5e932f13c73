/**
 * The pass `outputs` (compiler/simplify/outputs.ts): a local partial written through the step's own
 * value (`throughOwnValue`, the naive backward's), and the rule the pass records, `invert-definition`,
 * in a derivation; input ⇒ expected, and the partial it must leave alone.
 */
import { describe, expect, it } from "vitest";
import { derive } from "../../compiler/driver.js";
import { collect, print, rewrite, type Expr } from "../../compiler/ir/expr.js";
import { definitionsOf, foldOrder } from "../../compiler/simplify/definitions.js";
import { outputs, throughOwnValue } from "../../compiler/simplify/outputs.js";
import { expr, letters, programWith, sizeOf } from "./helpers.js";

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

  it("invert-definition: a gradient that computes a sigmoid step again is written through the step's value", async () => {
    const d = await derive({
      name: "t",
      indices: { n: "N", d: "D" },
      inputs: ["x[n,d]", "y[n,d]"],
      steps: ["s1[n,d] = 1/(1 + exp(-x[n,d]))", "o[n,d] = s1[n,d]*y[n,d]"],
      output: "o",
    });
    const s1 = d.program.steps.find((st) => st.name === "s1")!;
    const inlined = d.fused.phases[0]!.gradients;
    // the gradients with the step's value written as its definition: every s1 computed again
    const literal = inlined.map((g) => rewrite(g, sizeOf, { before: (x) => (x.kind === "ref" && x.name === "s1" ? s1.rhs : undefined) }));
    const defs = definitionsOf(d.program, { sizeOf: d.program.sizeOf });
    const out = outputs(literal, defs, foldOrder(defs), d.program, d.backward);
    expect(out.rewrites.map((r) => [r.rule, r.gradients])).toEqual([
      ["invert-definition", [0]],
      ["invert-definition", [1]],
    ]);
    const exps = (e: Expr) => collect(e, (x) => x.kind === "call" && x.fn === "exp");
    for (const g of literal) expect(exps(g).length, print(g)).toBeGreaterThan(0);
    for (const g of out.gradients) expect(exps(g), print(g)).toEqual([]);
    // dy = do*sigmoid(x) is the step's value itself
    expect(out.gradients[1]).toBe(inlined[1]);
    // gradients already written through the step's value are left alone
    expect(outputs(inlined, defs, foldOrder(defs), d.program, d.backward)).toEqual({ gradients: inlined, rewrites: [] });
  });
});
