/**
 * `factor-common`, the rule of the phases `factor` and `merge-factor`: a function rule, the
 * documented exception, because which factor is common to every term is a question about exponents
 * (the least power of each base over all terms, sizes also with negative powers to clear a
 * denominator), not about matching nodes. A pattern `?a*?b + ?a*?c` would find `a` only when it is
 * the same node in every term, never `x^2` in `x^3 + x^2*y`.
 */
import { add, mul, num, pow, type Expr } from "../ir/expr.js";
import { monomialExpr, monomialOf } from "./rules.js";
import type { Rule } from "./pattern.js";

/** Pulls factors common to every term of a sum out of it (sizes also with negative powers). */
export const FACTOR_RULE: Rule = {
  name: "factor-common",
  pattern: "a*b + a*c ⇒ a*(b + c)",
  guard: "a divides every term; a size symbol also when its power is negative (clearing a denominator)",
  apply: (e) => {
    if (e.kind !== "add" || e.terms.length < 2) return undefined;
    const ms = e.terms.map(monomialOf);
    const common = new Map<Expr, number>();
    const first = ms[0]!;
    for (const [b, k] of first.powers) {
      const ks = ms.map((m) => m.powers.get(b));
      if (ks.every((x) => x !== undefined && Math.sign(x) === Math.sign(k))) {
        const least = ks.reduce((a, x) => (Math.abs(x!) < Math.abs(a!) ? x : a), k)!;
        common.set(b, least);
      }
    }
    const sizes = new Set<Expr>();
    for (const m of ms) for (const b of m.powers.keys()) if (b.kind === "sym" && b.role === "size" && !common.has(b)) sizes.add(b);
    for (const s of sizes) {
      const least = Math.min(...ms.map((m) => m.powers.get(s) ?? 0));
      if (least < 0) common.set(s, least);
    }
    const negative = ms.every((m) => m.coefficient < 0);
    if (common.size === 0 && !negative) return undefined;
    const c = monomialExpr({ coefficient: negative ? -1 : 1, powers: common });
    const inverse = pow(c, num(-1));
    return mul(c, add(...e.terms.map((t) => mul(t, inverse))));
  },
};
