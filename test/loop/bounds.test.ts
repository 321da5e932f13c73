import { describe, expect, it } from "vitest";
import { bounds } from "../../compiler/loop/bounds.js";
import { ir, runPass } from "./run.js";

const pass = (body: Parameters<typeof bounds>[0], namer: Parameters<typeof bounds>[1]) => bounds(body, namer);

describe("bounds", () => {
  it("padding tests become the loop's range: the invariant one gates it, the one affine in the counter bounds it, and the clamps go; a cell read twice at the position is read once", () => {
    expect(runPass(pass, `
      for i in 0..I {
        for p in 0..K {
          for q in 0..K {
            for j in 0..J {
              let at: i32 = i + p - 1
              let at_safe: i32 = (at >= 0 ? (at < H ? at : 0) : 0)
              let at1: i32 = j + q - 1
              let at1_safe: i32 = (at1 >= 0 ? (at1 < W ? at1 : 0) : 0)
              dx[at_safe, at1_safe] += (at >= 0 ? (at < H ? (at1 >= 0 ? (at1 < W ? dz[j] * w[p, q] : 0) : 0) : 0) : 0)
              let at2: i32 = q + j - 1
              dw[p, q] += dz[j] * (at >= 0 ? (at < H ? (at2 >= 0 ? (at2 < W ? x[at_safe, at2] : 0) : 0) : 0) : 0)
            }
          }
        }
      }
    `)).toBe(ir(`
      for i in 0..I {
        for p in 0..K {
          for q in 0..K {
            let j_lo: i32 = (0 > 1 - q ? 0 : 1 - q)
            let j_hi: i32 = (J < W + 1 - q ? J : W + 1 - q)
            let j_len: i32 = (i + p - 1 >= 0 ? (H - i - p >= 0 ? (j_hi > j_lo ? j_hi - j_lo : 0) : 0) : 0)
            for j0 in 0..j_len {
              let j: i32 = j0 + j_lo
              let dz_j: f64 = dz[j]
              let at: i32 = i + p - 1
              let at1: i32 = j + q - 1
              dx[at, at1] += dz_j * w[p, q]
              let at2: i32 = q + j - 1
              dw[p, q] += dz_j * x[at, at2]
            }
          }
        }
      }
    `));
  });

  it("an upper bound alone keeps the loop's own counter", () => {
    expect(runPass(pass, `
      for n in 0..N {
        for j in 0..J {
          let at: i32 = 2 - j
          dx[n, j] += (at >= 0 ? y[n, j] : 0)
        }
      }
    `)).toBe(ir(`
      for n in 0..N {
        let j_hi: i32 = (J < 3 ? J : 3)
        let j_len: i32 = (j_hi > 0 ? j_hi : 0)
        for j in 0..j_len {
          let at: i32 = 2 - j
          dx[n, j] += y[n, j]
        }
      }
    `));
  });

  it("a loop is left as it is where a store is not an addition of a guarded value, the stores share no test, or a test is not affine with coefficient ±1", () => {
    const unchanged = [
      // an assignment writes 0 where the test fails
      `for n in 0..N {
        for j in 0..J {
          let at: i32 = j + n - 1
          y[n, j] = (at >= 0 ? x[n, at] : 0)
        }
      }`,
      // the second store adds whatever the test says
      `for n in 0..N {
        for j in 0..J {
          let at: i32 = j + n - 1
          let at_safe: i32 = (at >= 0 ? at : 0)
          y[n, at_safe] += (at >= 0 ? x[n, j] : 0)
          s[n] += x[n, j]
        }
      }`,
      // a stride: j = at/2 is no range of whole iterations here
      `for n in 0..N {
        for j in 0..J {
          let at: i32 = 2 * j - 1
          let at_safe: i32 = (at >= 0 ? at : 0)
          y[n, at_safe] += (at >= 0 ? x[n, j] : 0)
        }
      }`,
      // a test on a float
      `for n in 0..N {
        for j in 0..J {
          y[n, j] += (x[n, j] > 0 ? x[n, j] : 0)
        }
      }`,
    ];
    for (const text of unchanged) expect(runPass(pass, text)).toBe(runPass((body) => [...body], text));
  });
});
