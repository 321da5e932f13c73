import { describe, expect, it } from "vitest";
import { vectorize } from "../../compiler/loop/vectorize.js";
import { ir, runPass } from "./run.js";

const pass = (body: Parameters<typeof vectorize>[0]) => vectorize(body, 2);

describe("vectorize", () => {
  it("an innermost elementwise loop runs two vectors per trip, then a scalar tail", () => {
    expect(runPass(pass, `
      for n in 0..N {
        for d in 0..D {
          let a: f64 = c[d, 1]
          dx[n, d] = a * xhat[n, d] + dout[n, d]
        }
      }
    `)).toBe(ir(`
      for n in 0..N {
        counter d
        for d in d..D by 4 vector 2 {
          let a: f64 = c[d, 1]
          dx[n, d] = a * xhat[n, d] + dout[n, d]
        }
        for d in d..D {
          let a: f64 = c[d, 1]
          dx[n, d] = a * xhat[n, d] + dout[n, d]
        }
      }
    `));
  });

  it("an unrolled loop is vectorized from its remainder, whose body is the loop's own", () => {
    expect(runPass(pass, `
      counter d
      for d in d..D by 4 {
        y[d] = x[d] * x[d]
        y[d + 1] = x[d + 1] * x[d + 1]
        y[d + 2] = x[d + 2] * x[d + 2]
        y[d + 3] = x[d + 3] * x[d + 3]
      }
      for d in d..D {
        y[d] = x[d] * x[d]
      }
    `)).toBe(ir(`
      counter d
      for d in d..D by 4 vector 2 {
        y[d] = x[d] * x[d]
      }
      for d in d..D {
        y[d] = x[d] * x[d]
      }
    `));
  });

  it("a reduction into a local or a cell that does not move, and rows n and n + 1 of one array, qualify", () => {
    const out = runPass(pass, `
      for d in 0..D {
        acc += x[n, d] * x[n, d]
        s[0] += x[n, d]
        y[n, d] = x[n, d]
        y[n + 1, d] = x[n + 1, d]
      }
    `);
    expect(out).toContain("for d in d..D by 4 vector 2 {");
  });

  it("a body adding into four places or more runs one vector per trip", () => {
    const out = runPass(pass, `
      for d in 0..D {
        a += x[n, d]
        b += x[n + 1, d]
        c += x[n + 2, d]
        e[n] += x[n + 3, d]
      }
    `);
    expect(out).toContain("for d in d..D by 2 vector 2 {");
  });

  it("a loop that reads what another iteration writes, a gather that moves, or a choice reading a neighbour stays scalar", () => {
    for (const input of [
      `
      for d in 0..D {
        y[d] = x[d]
        z[d] = y[d + 1]
      }`,
      `
      for d in 0..D {
        y[d] = x[d]
        y[d + 1] = x[d]
      }`,
      `
      for d in 0..D {
        acc += x[d]
        y[d] = acc
      }`,
      `
      for d in 0..D {
        let id: i32 = ids[d]
        y[d] = e[id]
      }`,
      `
      for d in 0..D {
        y[d] = (x[d] > 0 ? x[d + 1] : 0)
      }`,
      // a position computed with, as a number
      `
      for d0 in 0..D {
        let d: i32 = d0 + lo
        y[d] = x[d] * d
      }`,
      // two positions written: their cells may meet
      `
      for d0 in 0..D {
        let d: i32 = d0 + lo
        let e: i32 = d0 + hi
        y[d] += x[d]
        y[e] += x[d]
      }`,
      // not one element apart per iteration
      `
      for d0 in 0..D {
        let d: i32 = 2 * d0 + lo
        y[d] = x[d]
      }`,
    ])
      expect(runPass(pass, input)).toBe(ir(input));
  });

  it("a position (the counter plus what does not move, as bounds.ts writes a range) indexes contiguously", () => {
    const body = `
        let j: i32 = j0 + j_lo
        let at: i32 = j + q - 1
        dx[c, at] += dz_row[j] * w_c_q
        acc += dz_row[j] * x[c, at]`;
    expect(runPass(pass, `
      for j0 in 0..j_len {${body}
      }
    `)).toBe(ir(`
      counter j0
      for j0 in j0..j_len by 4 vector 2 {${body}
      }
      for j0 in j0..j_len {${body}
      }
    `));
  });
});
