import { describe, expect, it } from "vitest";
import { accumulate } from "../../compiler/loop/accumulate.js";
import { ir, runPass } from "./run.js";

describe("accumulate", () => {
  it("a cell that does not move with the innermost loop is added into a local, read before and written after", () => {
    const out = runPass(accumulate, `
      for n in 0..N {
        for d in 0..D {
          r[n] += x[n, d]
          s[n + 1] += x[n, d] * x[n, d]
          c[d] += x[n, d]
        }
      }
    `);
    expect(out).toBe(ir(`
      for n in 0..N {
        var r_n: f64 = r[n]
        var s_n1: f64 = s[n + 1]
        for d in 0..D {
          r_n += x[n, d]
          s_n1 += x[n, d] * x[n, d]
          c[d] += x[n, d]
        }
        r[n] = r_n
        s[n + 1] = s_n1
      }
    `));
  });

  it("a cell the loop also reads, or also writes another way, stays in memory", () => {
    const input = `
      for d in 0..D {
        r[0] += x[d]
        y[d] = r[0]
        q[0] += x[d]
        q[d] = 1
      }
    `;
    expect(runPass(accumulate, input)).toBe(ir(input));
  });

  it("a running maximum of a fixed cell (max=) is kept in a local too; a cell both added into and maxed stays in memory", () => {
    const out = runPass(accumulate, `
      for n in 0..N {
        for c in 0..C {
          t[n] max= x[n, c]
          u[n] max= x[n, c]
          u[n] += x[n, c]
        }
      }
    `);
    expect(out).toBe(ir(`
      for n in 0..N {
        var t_n: f64 = t[n]
        for c in 0..C {
          t_n max= x[n, c]
          u[n] max= x[n, c]
          u[n] += x[n, c]
        }
        t[n] = t_n
      }
    `));
  });
});
