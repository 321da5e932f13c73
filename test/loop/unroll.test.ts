import { describe, expect, it } from "vitest";
import { unroll } from "../../compiler/loop/unroll.js";
import { ir, runPass } from "./run.js";

describe("unroll", () => {
  it("an innermost loop runs its copies per trip, copy after copy, then a remainder loop", () => {
    const out = runPass(unroll, `
      for d in 0..D unroll 2 {
        let t: f64 = exp(x[d])
        y[d] = t * t
      }
    `);
    expect(out).toBe(ir(`
      counter d
      for d in d..D by 2 {
        let t: f64 = exp(x[d])
        y[d] = t * t
        let t1: f64 = exp(x[d + 1])
        y[d + 1] = t1 * t1
      }
      for d in d..D {
        let t: f64 = exp(x[d])
        y[d] = t * t
      }
    `));
  });

  it("a perfect nest is unrolled and jammed, and copies that add into one cell add their terms first", () => {
    const out = runPass(unroll, `
      for n in 0..N unroll 4 {
        for d in 0..D {
          s[d] += x[n, d]
        }
      }
    `);
    expect(out).toBe(ir(`
      counter n
      for n in n..N by 4 {
        for d in 0..D {
          s[d] += x[n, d] + x[n + 1, d] + x[n + 2, d] + x[n + 3, d]
        }
      }
      for n in n..N {
        for d in 0..D {
          s[d] += x[n, d]
        }
      }
    `));
  });

  it("two rows by two columns: the inner loop of the jammed nest runs each row's cells in order", () => {
    const out = runPass(unroll, `
      for n in 0..N unroll 2 {
        for d in 0..D unroll 2 {
          y[n, d] = x[n, d]
        }
      }
    `);
    expect(out).toBe(ir(`
      counter n
      for n in n..N by 2 {
        counter d
        for d in d..D by 2 {
          y[n, d] = x[n, d]
          y[n, d + 1] = x[n, d + 1]
          y[n + 1, d] = x[n + 1, d]
          y[n + 1, d + 1] = x[n + 1, d + 1]
        }
        for d in d..D {
          y[n, d] = x[n, d]
          y[n + 1, d] = x[n + 1, d]
        }
      }
      for n in n..N {
        counter d
        for d in d..D by 2 {
          y[n, d] = x[n, d]
          y[n, d + 1] = x[n, d + 1]
        }
        for d in d..D {
          y[n, d] = x[n, d]
        }
      }
    `));
  });

  it("a loop with work beside its inner loop, or an inner loop of its own, keeps one iteration per trip", () => {
    const out = runPass(unroll, `
      for n in 0..N unroll 2 {
        let h: f64 = r[n]
        for d in 0..D {
          y[n, d] = h * x[n, d]
        }
      }
      for n in 0..N unroll 2 {
        var acc: f64 = 0
        for d in 0..D {
          acc += x[n, d]
        }
        s[n] = acc
      }
    `);
    expect(out).toBe(ir(`
      for n in 0..N {
        let h: f64 = r[n]
        for d in 0..D {
          y[n, d] = h * x[n, d]
        }
      }
      for n in 0..N {
        var acc: f64 = 0
        for d in 0..D {
          acc += x[n, d]
        }
        s[n] = acc
      }
    `));
  });
});
