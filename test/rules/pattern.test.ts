/**
 * The pattern language of rules as data (compiler/simplify/pattern.ts): pattern mode of the parser,
 * the matcher's documented semantics for n-ary add/mul and sum indices, the instantiator, and the
 * checks a rule gets when it is built.
 */
import { describe, expect, it } from "vitest";
import { print } from "../../compiler/ir/expr.js";
import { parseExpression, SyntaxProblem } from "../../compiler/parse/expression.js";
import { SpecError } from "../../compiler/parse/check.js";
import { anyOf, isConstant, isNumber, matches, notFree, parsePattern, PatternError, printPattern, rule, when, wholeRatio } from "../../compiler/simplify/pattern.js";
import { ctx, expr, letters, programWith } from "./helpers.js";

const bind = (pattern: string, text: string, lhs = "[d]", guards = [] as Parameters<typeof matches>[2]) =>
  [...matches(parsePattern(pattern), expr(text, lhs), guards, ctx)].map((b) => ({
    ...Object.fromEntries([...b.exprs].map(([k, v]) => [k, print(v, letters)])),
    ...Object.fromEntries([...b.indices].map(([k, v]) => [k, v.join(",")])),
  }));

describe("pattern mode of the parser", () => {
  it("reads ?variables only in pattern mode; a spec can never contain them", () => {
    expect(parseExpression("?a*(?b + 1)", { pattern: true })).toMatchObject({ type: "binary", op: "*", left: { type: "name", name: "?a" } });
    expect(() => parseExpression("?a*2")).toThrow(SyntaxProblem);
    expect(() => programWith("?a*x[n,d]", "[n,d]")).toThrow(SpecError);
    expect(() => programWith("x[?n,d]", "[n,d]")).toThrow(SpecError);
  });

  it("reads subtraction, division, negation and sqrt as the IR has them, and prints patterns back", () => {
    expect(printPattern(parsePattern("?a - ?b/?c"))).toBe("?a + -1*?b*?c^(-1)");
    expect(printPattern(parsePattern("sqrt(-?x)"))).toBe("(-1*?x)^0.5");
    expect(printPattern(parsePattern("sum(?c*?f, ?i, ?k) + size(?i)"))).toBe("sum(?c*?f, ?i, ?k) + size(?i)");
    expect(printPattern(parsePattern("x[?n,?d]^2"))).toBe("x[?n,?d]^2");
  });

  it("refuses what a pattern cannot hold", () => {
    expect(() => parsePattern("eps*?x")).toThrow(PatternError);
    expect(() => parsePattern("sum(?x, n)")).toThrow(PatternError);
    expect(() => parsePattern("size(?x)*?y")).not.toThrow();
    expect(() => parsePattern("frobnicate(?x)")).toThrow(PatternError);
  });
});

describe("matching", () => {
  it("a variable matches any node; used twice, the same node", () => {
    expect(bind("?a + ?a", "g[d] + g[d]")).toEqual([]); // the factory makes it 2*g[d], a product
    expect(bind("?a*?a^-1", "g[d]")).toEqual([]);
    expect(bind("exp(?a)*exp(?a)", "exp(g[d])*exp(s)")).toEqual([]);
    expect(bind("exp(?a)*?b", "exp(g[d])*s")).toEqual([{ "?a": "g[d]", "?b": "s[]" }]);
  });

  it("a product pattern matches only a product, and never a lone factor", () => {
    expect(bind("?c*?f", "g[d]")).toEqual([]);
    expect(bind("?c*?f", "g[d] + s")).toEqual([]);
  });

  it("non-variable operands take distinct operands, in canonical order, with backtracking", () => {
    expect(bind("exp(?x)*?r", "exp(g[d])*exp(s)*c")).toEqual([
      { "?x": "g[d]", "?r": "c*exp(s[])" },
      { "?x": "s[]", "?r": "c*exp(g[d])" },
    ]);
    expect(bind("exp(?x)*exp(?y)", "exp(g[d])*exp(s)")).toHaveLength(2);
    expect(bind("exp(?x)*exp(?y)", "exp(g[d])*exp(s)*c")).toEqual([]);
  });

  it("bare variables: each but the last takes one operand in turn, the last takes the rest", () => {
    expect(bind("?b + ?c", "g[d] + s + c")).toEqual([
      { "?b": "c", "?c": "g[d] + s[]" },
      { "?b": "g[d]", "?c": "c + s[]" },
      { "?b": "s[]", "?c": "c + g[d]" },
    ]);
    expect(bind("?a*(?b + ?c)", "g[d]*s*(c + x[n,d])", "[n,d]")[0]).toEqual({ "?a": "g[d]*s[]", "?b": "c", "?c": "x[n,d]" });
  });

  it("a variable an elementwise guard directs takes exactly the operands that pass it, and at least one", () => {
    const g = [notFree("?i", "?c")];
    expect(bind("sum(?c*?f, ?i)", "sum(g[d]*s*x[n,d]*y[n,d], n)", "[d]", g)).toEqual([{ "?i": "N:1", "?c": "g[d]*s[]", "?f": "x[n,d]*y[n,d]" }]);
    expect(bind("sum(?c*?f, ?i)", "sum(x[n,d]*y[n,d], n)", "[d]", g)).toEqual([]);
    // index variables of a sum split the same way; the rest may be empty
    expect(bind("sum(?c, ?i, ?k)", "sum(x[n,d], n, m)", "[d]", g)).toEqual([{ "?c": "x[n,d]", "?i": "N:1.1", "?k": "N:1" }]);
    expect(bind("sum(?c, ?i, ?k)", "sum(g[d], n)", "[d]", g)).toEqual([{ "?c": "g[d]", "?i": "N:1.0i", "?k": "" }]);
  });

  it("one index variable binds all a sum's indices, before the body", () => {
    expect(bind("sum(?f, ?i)", "sum(x[n,d]*y[m,d], n, m)")).toEqual([{ "?i": "N:1,N:1.1", "?f": "x[n,d]*y[m,d]" }]);
  });

  it("indices of a value bind one index each, consistently", () => {
    expect(bind("x[?n,?d]*y[?n,?d]", "x[n,d]*y[n,d]", "[n,d]")).toEqual([{ "?n": "n", "?d": "d" }]);
    expect(bind("x[?n,?d]*y[?n,?d]", "sum(x[n,d]*y[m,d], m)", "[n,d]")).toEqual([]);
  });
});

describe("rules", () => {
  it("instantiates through the factory: size(?i) and an empty index rest", () => {
    const r = rule("t", "sum(?c, ?i, ?k)", "size(?i)*sum(?c, ?k)", notFree("?i", "?c"));
    expect(print(r.apply(expr("sum(g[d], n)"), ctx)!)).toBe("N*g[d]");
    expect(print(r.apply(expr("sum(x[n,d], n, m)"), ctx)!, letters)).toBe("N*sum(x[n,d], n)");
  });

  it("returns the first match whose guards hold", () => {
    const r = rule("t", "?b + ?c", "?b*?c", isNumber("?b"));
    expect(print(r.apply(expr("g[d] + s + 3"), ctx)!)).toBe("3*(g[d] + s[])");
    expect(r.apply(expr("g[d] + s"), ctx)).toBeUndefined();
  });

  it("guards: isConstant, when, anyOf, wholeRatio", () => {
    const c = rule("t", "?a*?b", "?b*?a^2", isConstant("?a"));
    expect(c.apply(expr("g[d]*x[n,d]", "[n,d]"), ctx)).toBeUndefined();
    expect(print(c.apply(expr("s*x[n,d]", "[n,d]"), ctx)!)).toBe("s[]^2*x[n,d]");
    const never = when("never", () => false);
    const w = rule("t", "exp(?a)", "?a", anyOf(never, isConstant("?a")));
    expect(w.apply(expr("exp(g[d])"), ctx)).toBeUndefined();
    expect(w.apply(expr("exp(s)", ""), ctx)).toBe(expr("s", ""));
    const half = rule("t", "?x^?k", "exp(?x)^?r", wholeRatio("?k", 0.5, "?r"));
    expect(print(half.apply(expr("g[d]^-1.5"), ctx)!)).toBe("1/exp(g[d])^3");
    expect(half.apply(expr("g[d]^0.75"), ctx)).toBeUndefined();
  });

  it("a rule is checked when it is built", () => {
    expect(() => rule("t", "?a*?b", "?c")).toThrow(PatternError);
    expect(() => rule("t", "sum(?a, ?i)", "sum(?a, ?j)")).toThrow(PatternError);
    expect(() => rule("t", "sum(?i, ?i)", "?i")).toThrow(PatternError);
    expect(() => rule("t", "?a", "size(?a)")).toThrow(PatternError);
  });
});
