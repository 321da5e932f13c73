import { describe, expect, it } from "vitest";
import { block } from "../../compiler/loop/block.js";
import { ir, runPass } from "./run.js";

const pass = (body: Parameters<typeof block>[0], namer: Parameters<typeof block>[1]) => block(body, namer, 2);

/** The rows loop of a matmul-shaped pass (already two rows per trip), as the body of a loop over d: the input below, and unchanged in the remainder loop of the expected output. */
const rows = `        counter n
        for n in n..N by 2 {
          var dx_n_d: f64 = dx[n, d]
          var dx_n1_d: f64 = dx[n + 1, d]
          let x_n_d: f64 = x[n, d]
          for k in 0..K {
            let dout_n_k: f64 = dout[n, k]
            let dout_n1_k: f64 = dout[n + 1, k]
            let w_d_k: f64 = w[d, k]
            dx_n_d += dout_n_k * w_d_k
            dx_n1_d += dout_n1_k * w_d_k
            dw[d, k] += dout_n_k * x_n_d
          }
          dx[n, d] = dx_n_d
          dx[n + 1, d] = dx_n1_d
        }`;

describe("block", () => {
  it("a matmul-shaped pass runs two iterations of its outer loop per trip: the shared operand loaded once, an accumulator per output", () => {
    expect(runPass(pass, `
      for d in 0..D {
${rows}
      }
    `)).toBe(ir(`
      counter d
      for d in d..D by 2 {
        counter n
        for n in n..N by 2 {
          var dx_n_d: f64 = dx[n, d]
          var dx_n_d1: f64 = dx[n, d + 1]
          var dx_n1_d: f64 = dx[n + 1, d]
          var dx_n1_d1: f64 = dx[n + 1, d + 1]
          let x_n_d: f64 = x[n, d]
          let x_n_d1: f64 = x[n, d + 1]
          for k in 0..K {
            let dout_n_k: f64 = dout[n, k]
            let dout_n1_k: f64 = dout[n + 1, k]
            let w_d_k: f64 = w[d, k]
            let w_d_k1: f64 = w[d + 1, k]
            dx_n_d += dout_n_k * w_d_k
            dx_n_d1 += dout_n_k * w_d_k1
            dx_n1_d += dout_n1_k * w_d_k
            dx_n1_d1 += dout_n1_k * w_d_k1
            dw[d, k] += dout_n_k * x_n_d
            dw[d + 1, k] += dout_n_k * x_n_d1
          }
          dx[n, d] = dx_n_d
          dx[n, d + 1] = dx_n_d1
          dx[n + 1, d] = dx_n1_d
          dx[n + 1, d + 1] = dx_n1_d1
        }
      }
      for d in d..D {
${rows}
      }
    `));
  });

  it("the copies' additions into a cell the outer loop does not move add their terms first", () => {
    const out = runPass(pass, `
      for i in 0..L {
        for j in 0..L {
          let r_i_j: f64 = r[i, j]
          for e in 0..E {
            let q_i_e: f64 = q[i, e]
            dq[i, e] += k[j, e] * r_i_j
            dk[j, e] += q_i_e * r_i_j
          }
        }
      }
    `);
    expect(out).toContain("dk[j, e] += q_i_e * r_i_j + q_i_e1 * r_i_j1");
    expect(out).toContain("dq[i + 1, e] += k[j, e] * r_i_j1");
  });

  it("an elementwise nest, a loop whose iterations read another's slice, or one writing a local declared outside stays as it is", () => {
    for (const input of [
      `
      for n in 0..N {
        for d in 0..D {
          y[n, d] = x[n, d] * g[d]
        }
      }`,
      `
      for n in 0..N {
        for d in 0..D {
          y[n, d] = y[n + 1, d] + x[n, d] * g[d]
        }
      }`,
      `
      for n in 0..N {
        for d in 0..D {
          acc += x[n, d] * g[d]
        }
      }`,
      `
      for n in 0..N {
        for d in 0..D {
          s[d] += x[n, d] * g[d]
          z[d] = s[d]
        }
      }`,
      // the inner loop's range moves with n (bounds.ts): the copies cannot share its trips
      `
      for n in 0..N {
        let d_len: i32 = (D > n ? D - n : 0)
        for d in 0..d_len {
          y[n, d] += x[n, d] * g[d]
        }
      }`,
    ])
      expect(runPass(pass, input)).toBe(ir(input));
  });
});
