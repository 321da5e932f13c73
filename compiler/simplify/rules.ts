/**
 * The simplifier's rule sets that are pure patterns: each rule one line of data, pattern ⇒
 * replacement in the spec's syntax with its named guards (the pattern language is in
 * `pattern.ts`, the runner in `runner.ts`). The rules built from a spec's own steps are in
 * `definitions.ts`; the few function rules, each with the reason a pattern cannot say it, are
 * beside the phase that uses them.
 */
import { mul, num, pow, type Expr } from "../ir/expr.js";
import { notFree, rule, type Rule } from "./pattern.js";

/** Phase "expand": towards a sum of monomials, with every reduction over a monomial. */
export const EXPAND_RULES: readonly Rule[] = [
  rule("distribute", "?a*(?b + ?c)", "?a*?b + ?a*?c"),
  rule("sum-linear", "sum(?a + ?b, ?i)", "sum(?a, ?i) + sum(?b, ?i)"),
  rule("sum-factor", "sum(?c*?f, ?i)", "?c*sum(?f, ?i)", notFree("?i", "?c")),
  rule("sum-invariant", "sum(?c, ?i, ?k)", "size(?i)*sum(?c, ?k)", notFree("?i", "?c")),
];

/** A monomial as coefficient and base -> numeric exponent (bases in canonical order). */
export interface Monomial {
  readonly coefficient: number;
  readonly powers: ReadonlyMap<Expr, number>;
}

/** Splits a term into a monomial; non-numeric exponents stay inside their base. */
export function monomialOf(e: Expr): Monomial {
  const powers = new Map<Expr, number>();
  let coefficient = 1;
  const factors = e.kind === "mul" ? e.factors : [e];
  for (const f of factors) {
    if (f.kind === "num") coefficient *= f.value;
    else if (f.kind === "pow" && f.exp.kind === "num") powers.set(f.base, (powers.get(f.base) ?? 0) + f.exp.value);
    else powers.set(f, (powers.get(f) ?? 0) + 1);
  }
  return { coefficient, powers };
}

export function monomialExpr(m: Monomial): Expr {
  return mul(num(m.coefficient), ...[...m.powers].map(([b, k]) => pow(b, num(k))));
}
