import { describe, expect, it } from "vitest";
import { bin, call, cell, let_, load, local, loop, neg, num, store, at } from "../../compiler/loop/ir.js";
import { parseStmts } from "../../compiler/loop/parse.js";
import { printStmts, printValue } from "../../compiler/loop/print.js";
import { ir } from "./run.js";

describe("loop IR printer", () => {
  it("prints one statement per line, parenthesized only where the tree needs it", () => {
    const body = [
      loop("n", "N", [
        let_("a", bin("-", load("x", "n"), bin("-", local("m"), num(1)))),
        let_("b", bin("/", bin("*", local("a"), local("a")), bin("*", num(2), local("s")))),
        store(cell("y", at("n", 1)), neg(call("exp", bin("+", local("b"), num(-0.5)))), "+="),
      ], 4),
    ];
    expect(printStmts(body)).toBe(
      ir(`
        for n in 0..N unroll 4 {
          let a: f64 = x[n] - (m - 1)
          let b: f64 = a * a / (2 * s)
          y[n + 1] += -exp(b + -0.5)
        }
      `),
    );
  });

  it("a negative number and a negation both print with a minus sign, wrapped where they are operands of a minus", () => {
    expect(printValue(bin("-", local("a"), num(-2)))).toBe("a - -2");
    expect(printValue(neg(neg(local("a"))))).toBe("-(-a)");
    expect(printValue(bin("*", bin("+", local("a"), local("b")), local("c")))).toBe("(a + b) * c");
  });

  it("reads back what it prints", () => {
    const text = ir(`
      alloc r: f64[N, D] // sum(x[n,d], n)
      if given dgamma {
        fill dgamma 0
      }
      {
        counter n
        for n in n..N by 4 {
          for d in 0..D {
            var acc: f64 = 0
            acc max= max(acc, x[n + 3, d - 1])
            r[n, d] = acc / sqrt(pow(v[d], 1.5))
          }
        }
      }
      // a comment
      copy r -> dx
    `);
    expect(printStmts(parseStmts(text))).toBe(text);
  });

  it("a select and an id read from an integer array print and read back (where, delta, a gather)", () => {
    const text = ir(`
      for n in 0..N {
        let label_id: i32 = label[n]
        for c in 0..C {
          dz[n, c] = (c === label_id ? 1 : 0) * g[n] + (z[n, c] > 0 ? erf(z[n, c]) : expm1(z[n, label_id]))
        }
      }
    `);
    expect(printStmts(parseStmts(text))).toBe(text);
    const s = parseStmts(text)[0]!;
    expect(s.kind === "for" && s.body[1]!.kind === "for" && s.body[1]!.body[0]!.kind === "store" && s.body[1]!.body[0]!.value.kind === "bin" && s.body[1]!.body[0]!.value.a.kind === "bin" && s.body[1]!.body[0]!.value.a.a.kind).toBe("select");
  });
});
