/**
 * The TypeScript backend prints the loop IR and never reads back what it wrote: offsets are
 * row-major over the declared dimensions, a cell added into is read with `!`, a comment's text is
 * escaped.
 */
import { describe, expect, it } from "vitest";
import { tsStatements } from "../compiler/emit/code.js";
import { parseStmts } from "../compiler/loop/parse.js";
import { ir } from "./loop/run.js";

const print = (text: string, dims: Record<string, readonly string[]>) => tsStatements(parseStmts(ir(text)), new Map(Object.entries(dims))).join("\n");

describe("TypeScript backend", () => {
  it("prints loops, lets and stores with row-major offsets", () => {
    const out = print(
      `
      alloc c: f64[D, 2] {a, b} // coefficients
      counter n
      for n in n..N by 2 {
        for d in 0..D {
          var s: f64 = 0
          s max= x[n + 1, d]
          y[n, d] += c[d, 1] * s - -2
          c[d, 0] = exp(s) / sqrt(N)
        }
      }
      `,
      { x: ["N", "D"], y: ["N", "D"] },
    );
    expect(out).toBe(
      [
        "const c = new Float64Array(D * 2); // coefficients",
        "let n = 0;",
        "for (; n + 2 <= N; n += 2) {",
        "for (let d = 0; d < D; d++) {",
        "let s = 0;",
        "s = Math.max(s, x[(n + 1) * D + d]!);",
        "y[(n) * D + d] = y[(n) * D + d]! + (c[(d) * 2 + 1]! * s - -2);",
        "c[(d) * 2] = Math.exp(s) / Math.sqrt(N);",
        "}",
        "}",
      ].join("\n"),
    );
  });

  it("writes a conditional on a given output, copies, fills and escaped comments", () => {
    const out = print(
      `
      if given dgamma {
        fill dgamma 0
      }
      // closes */ here
      copy g64 -> dgamma
      `,
      {},
    );
    expect(out).toBe(['if (own(into, "dgamma") !== undefined) dgamma.fill(0);', "// closes *\\/ here", "dgamma.set(g64);"].join("\n"));
  });

  it("refuses an array whose dimensions it was not given", () => {
    expect(() => print("y[n] = 1", {})).toThrow("no dimensions for 'y'");
  });
});
