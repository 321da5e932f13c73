import { describe, expect, it } from "vitest";
import { rows } from "../../compiler/loop/rows.js";
import { ir, runPass } from "./run.js";

describe("rows", () => {
  it("a row's value goes into a scratch row first, then the tap loops run with the row's counter innermost", () => {
    expect(runPass(rows, `
      for i in 0..I {
        for j in 0..J {
          let dz: f64 = a[i, j] * 2
          for c in 0..C {
            for q in 0..K {
              let at: i32 = j + q - 1
              let at_safe: i32 = (at >= 0 ? (at < W ? at : 0) : 0)
              dx[c, i, at_safe] += (at >= 0 ? (at < W ? dz * w[c, q] : 0) : 0)
              dw[c, q] += dz * (at >= 0 ? (at < W ? x[c, i, at_safe] : 0) : 0)
            }
          }
        }
      }
    `)).toBe(ir(`
      alloc dz_row: f64[J] // dz over j, one row at a time
      for i in 0..I {
        // dz for a whole row of j first, into dz_row (J values, not the activation), then the loops over c, q with j innermost (loop/rows.ts)
        for j in 0..J {
          let dz: f64 = a[i, j] * 2
          dz_row[j] = dz
        }
        for c in 0..C {
          for q in 0..K {
            for j in 0..J {
              let at: i32 = j + q - 1
              let at_safe: i32 = (at >= 0 ? (at < W ? at : 0) : 0)
              dx[c, i, at_safe] += (at >= 0 ? (at < W ? dz_row[j] * w[c, q] : 0) : 0)
              dw[c, q] += dz_row[j] * (at >= 0 ? (at < W ? x[c, i, at_safe] : 0) : 0)
            }
          }
        }
      }
    `));
  });

  it("a loop is left as it is where the taps assign, read what they add into, run over an extent the row defines, or touch nothing along the row", () => {
    const unchanged = [
      // an assignment: the last row's value would win
      `for j in 0..J {
        let dz: f64 = a[j]
        for c in 0..C {
          y[c, j] = dz * w[c]
        }
      }`,
      // dx is read: the order of the additions is seen
      `for j in 0..J {
        let dz: f64 = a[j]
        for c in 0..C {
          dx[c, j] += dz * dx[c, 0]
        }
      }`,
      // the extent is the row's own value (an integer the row computes)
      `for j in 0..J {
        let dz: f64 = a[j]
        let m: i32 = b[j]
        for c in 0..m {
          dx[c, j] += dz
        }
      }`,
      // nothing along j in the taps: a row scratch buys nothing
      `for j in 0..J {
        let dz: f64 = a[j]
        for c in 0..C {
          dw[c] += dz * w[c]
        }
      }`,
    ];
    for (const text of unchanged) expect(runPass(rows, text)).toBe(runPass((body) => [...body], text));
  });
});
