/**
 * The simplifier's rule sets that are pure patterns: each rule one line of data, pattern ⇒
 * replacement in the spec's syntax with its named guards (the pattern language is in
 * `pattern.ts`, the runner in `runner.ts`). The rules built from a spec's own steps are in
 * `definitions.ts`; the few function rules, each with the reason a pattern cannot say it, are
 * beside the phase that uses them.
 */
import { mul, num, pow, type Expr } from "../ir/expr.js";
import { anyOf, notCostlier, notFree, rule, when, type Rule } from "./pattern.js";
import { cost } from "./cost.js";

/**
 * Distributing grows a term (`?a` is written twice), so it is done only where it enables a
 * reduction rule or costs nothing: inside a reduction's body, where it makes the body a sum that
 * `sum-linear` splits into reductions over monomials; around a reduction, where each reduction
 * becomes a term of its own for `sum-factor`, `factor-common`, `share` and `merge-sums`; and
 * elsewhere only when the result is no costlier (`s^2*(1/s - 1) ⇒ s - s^2`). An elementwise
 * product of a sum that would only grow, `dy*(0.5 + 0.5*sign(x))`, stays as it is.
 */
const holdsReduction = when("?a, ?b or ?c holds a reduction", (b) => ["?a", "?b", "?c"].some((v) => b.exprs.get(v)!.height > 0));

/**
 * Phase "expand": towards a sum of monomials, with every reduction over a monomial. Distributing
 * is guided by cost (`holdsReduction` above) unless `everywhere` (the plain normal form, which the
 * fused driver also tries and keeps only when its end result is cheaper).
 */
export function expandRules(opts: { everywhere?: boolean } = {}): readonly Rule[] {
  return [
    rule("distribute-in-sum", "sum(?a*(?b + ?c), ?i)", "sum(?a*?b, ?i) + sum(?a*?c, ?i)"),
    opts.everywhere ? rule("distribute", "?a*(?b + ?c)", "?a*?b + ?a*?c") : rule("distribute", "?a*(?b + ?c)", "?a*?b + ?a*?c", anyOf(holdsReduction, notCostlier(cost))),
    rule("sum-linear", "sum(?a + ?b, ?i)", "sum(?a, ?i) + sum(?b, ?i)"),
    rule("sum-factor", "sum(?c*?f, ?i)", "?c*sum(?f, ?i)", notFree("?i", "?c")),
    rule("sum-invariant", "sum(?c, ?i, ?k)", "size(?i)*sum(?c, ?k)", notFree("?i", "?c")),
  ];
}

/** The expand rules with distributing guided by cost. */
export const EXPAND_RULES: readonly Rule[] = expandRules();

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
