/**
 * The pass `inline` (compiler/simplify/inline.ts), the first phase: every intermediate adjoint of the
 * naive backward substituted into the input gradients, one expression per input in the upstream
 * gradient and forward values; an input without a gradient gets 0. It records no rewrite.
 */
import { describe, expect, it } from "vitest";
import { derive } from "../../compiler/driver.js";
import { collect, num, print, rewrite, type Expr } from "../../compiler/ir/expr.js";
import { inlineGradients } from "../../compiler/simplify/inline.js";

describe("inline", () => {
  it("substitutes the adjoint of each step into the gradients that read it", async () => {
    const d = await derive({
      name: "t",
      indices: { n: "N", d: "D" },
      inputs: ["x[n,d]", "y[n,d]", "g[d]: nograd"],
      steps: ["e1[n,d] = exp(x[n,d])*g[d]", "o[n,d] = e1[n,d]*y[n,d]"],
      output: "o",
    });
    const bw = d.backward;
    const statements = bw.blocks.flatMap((b) => b.statements);
    const of = (name: string) => statements.find((s) => s.target.name === name)!.expr;
    const isAdjoint = (e: Expr) => e.kind === "ref" && e.space === "grad" && e !== bw.upstream;
    // the naive dx reads the adjoint de1 (same indices [n,d]), dy only the upstream gradient
    expect(collect(of("x"), isAdjoint).length).toBeGreaterThan(0);
    const out = inlineGradients(bw, d.program.inputs, d.program.sizeOf);
    const dx = rewrite(of("x"), d.program.sizeOf, { before: (e) => (e.kind === "ref" && e.space === "grad" && e.name === "e1" ? of("e1") : undefined) });
    expect(print(out[0]!)).toBe(print(dx));
    expect(out[0]).toBe(dx);
    expect(out[1]).toBe(of("y"));
    expect(out[2]).toBe(num(0));
    for (const g of out) expect(collect(g, isAdjoint), print(g)).toEqual([]);
    // the phase the derivation starts from, with no rewrite of its own
    expect(d.fused.phases[0]).toMatchObject({ name: "inline", rewrites: [] });
    expect(d.fused.phases[0]!.gradients).toEqual(out);
  });
});
