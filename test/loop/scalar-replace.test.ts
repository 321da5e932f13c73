import { describe, expect, it } from "vitest";
import { scalarReplace } from "../../compiler/loop/scalar-replace.js";
import { ir, runPass } from "./run.js";

describe("scalar-replace", () => {
  it("each distinct read of an array the loop does not write is loaded once, named for what it holds", () => {
    const out = runPass(scalarReplace, `
      for n in 0..N {
        for d in 0..D {
          y[n, d] = a[d] * x[n, d] + b[n] * x[n, d]
          z[n, d + 1] = x[n, d] - y[n, d]
        }
      }
    `);
    expect(out).toBe(ir(`
      for n in 0..N {
        let b_n: f64 = b[n]
        for d in 0..D {
          let a_d: f64 = a[d]
          let x_n_d: f64 = x[n, d]
          y[n, d] = a_d * x_n_d + b_n * x_n_d
          z[n, d + 1] = x_n_d - y[n, d]
        }
      }
    `));
  });

  it("sibling loops reuse the names of their reads; a name already taken gets a number", () => {
    const out = runPass(scalarReplace, `
      let x_d: f64 = 2
      counter d
      for d in d..D by 2 {
        y[d] = x[d] * x_d + x[d + 1]
      }
      for d in d..D {
        y[d] = x[d]
      }
    `);
    expect(out).toBe(ir(`
      let x_d: f64 = 2
      counter d
      for d in d..D by 2 {
        let x_d1: f64 = x[d]
        let x_d11: f64 = x[d + 1]
        y[d] = x_d1 * x_d + x_d11
      }
      for d in d..D {
        let x_d1: f64 = x[d]
        y[d] = x_d1
      }
    `));
  });

  it("a body with a loop of its own is left alone", () => {
    const input = `
      for n in 0..N {
        var acc: f64 = 0
        for d in 0..D {
          acc += x[n, d]
        }
        y[n] = acc * x[n, 0]
      }
    `;
    expect(runPass(scalarReplace, input)).toBe(ir(input.replace("acc += x[n, d]", "let x_n_d: f64 = x[n, d]\n          acc += x_n_d")));
  });

  it("a read of a named slot is named for the slot", () => {
    const out = runPass(scalarReplace, `
      alloc dx_per_d: f64[D, 2] {dx_dout, dx_offset}
      for d in 0..D {
        dx[d] = dx_per_d[d, 1] + dx_per_d[d, 0] * dout[d]
      }
    `);
    expect(out).toBe(ir(`
      alloc dx_per_d: f64[D, 2] {dx_dout, dx_offset}
      for d in 0..D {
        let dx_offset_d: f64 = dx_per_d[d, 1]
        let dx_dout_d: f64 = dx_per_d[d, 0]
        let dout_d: f64 = dout[d]
        dx[d] = dx_offset_d + dx_dout_d * dout_d
      }
    `));
  });

  it("reads that sibling loops of one body place before themselves are made once, at the top of the body", () => {
    const out = runPass(scalarReplace, `
      for n in 0..N {
        counter d
        for d in d..D by 2 {
          y[n, d] = x[n, d] * r[n]
        }
        for d in d..D {
          y[n, d] = x[n, d] * r[n]
        }
      }
    `);
    expect(out).toBe(ir(`
      for n in 0..N {
        let r_n: f64 = r[n]
        counter d
        for d in d..D by 2 {
          let x_n_d: f64 = x[n, d]
          y[n, d] = x_n_d * r_n
        }
        for d in d..D {
          let x_n_d: f64 = x[n, d]
          y[n, d] = x_n_d * r_n
        }
      }
    `));
  });
});
