import { describe, expect, it } from "vitest";
import { hoist } from "../../compiler/loop/hoist.js";
import { ir, runPass } from "./run.js";

describe("hoist", () => {
  it("a let that does not move with a loop goes before it, as far out as it can", () => {
    const out = runPass(hoist, `
      for n in 0..N {
        for d in 0..D {
          let k: f64 = sqrt(N)
          let h: f64 = r[n] * k
          let t: f64 = x[n, d] * h
          y[n, d] = t * t
        }
      }
    `);
    expect(out).toBe(ir(`
      let k: f64 = sqrt(N)
      for n in 0..N {
        let h: f64 = r[n] * k
        for d in 0..D {
          let t: f64 = x[n, d] * h
          y[n, d] = t * t
        }
      }
    `));
  });

  it("lets that move with the innermost loop but not with the loop around it become one array filled before the nest, a named slot each", () => {
    const out = runPass(hoist, `
      for n in 0..N {
        for d in 0..D {
          let dx_dout: f64 = gamma[d] * ivar[d]
          let dx_offset: f64 = -(dx_dout * s[d]) / N
          dx[n, d] = dx_offset + dx_dout * dout[n, d]
        }
      }
    `);
    expect(out).toBe(ir(`
      alloc dx_per_d: f64[D, 2] {dx_dout, dx_offset} // dx_dout = ?; dx_offset = ?
      for d in 0..D {
        dx_per_d[d, 0] = gamma[d] * ivar[d]
        dx_per_d[d, 1] = -(dx_per_d[d, 0] * s[d]) / N
      }
      for n in 0..N {
        for d in 0..D {
          dx[n, d] = dx_per_d[d, 1] + dx_per_d[d, 0] * dout[n, d]
        }
      }
    `));
  });

  it("one such let is an array of its own", () => {
    const out = runPass(hoist, `
      for n in 0..N {
        for d in 0..D {
          let g: f64 = gamma[d] * 2
          y[n, d] = g * x[n, d]
        }
      }
    `);
    expect(out).toBe(ir(`
      alloc g: f64[D]
      for d in 0..D {
        g[d] = gamma[d] * 2
      }
      for n in 0..N {
        for d in 0..D {
          y[n, d] = g[d] * x[n, d]
        }
      }
    `));
  });

  it("a let that reads a value of its own iteration stays", () => {
    const input = `
      for n in 0..N {
        for d in 0..D {
          let t: f64 = exp(x[n, d])
          let u: f64 = t * 2
          y[n, d] = u
        }
      }
    `;
    expect(runPass(hoist, input)).toBe(ir(input));
  });
});
