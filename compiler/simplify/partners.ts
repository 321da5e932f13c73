/**
 * `split-by-partner`, the rule of the phase `partners`: a function rule, the documented exception,
 * because it groups the terms of a reduction's body by a factor that a pattern cannot name (the
 * factors that carry one free index), and keeps the result only if the kernel costs less.
 *
 * `sum(A[b,k]*wn[i,k] + B[b,k]*wr[i,k] + C[b,k]*wn[i,k], k)` recomputes the costly `A`, `B`, `C`
 * for every `i`. Written as `sum(wn[i,k]*(A[b,k] + C[b,k]), k) + sum(wr[i,k]*B[b,k], k)`, each
 * reduction's body is a product whose coefficient does not move with `i`: the scheduler stores it
 * once over `[b,k]` (`materialize`), and every reduction over `[b,i,k]` is one multiply-add.
 */
import { add, mul, sum, type Expr } from "../ir/expr.js";
import { kernelCost } from "./cost.js";
import { FACTOR_RULE } from "./factor.js";
import type { Rule } from "./pattern.js";
import { runRules } from "./runner.js";

/** Most monomials a body is expanded into before the rule gives up on it. */
const MAX_MONOMIALS = 64;

/** `e` as a sum of products (products distributed over sums), or undefined past `MAX_MONOMIALS`. */
export function monomials(e: Expr): Expr[] | undefined {
  if (e.kind === "add") {
    const out: Expr[] = [];
    for (const t of e.terms) {
      const ms = monomials(t);
      if (!ms || out.length + ms.length > MAX_MONOMIALS) return undefined;
      out.push(...ms);
    }
    return out;
  }
  if (e.kind === "mul") {
    let out: Expr[] = [mul()];
    for (const f of e.factors) {
      const ms = monomials(f);
      if (!ms || out.length * ms.length > MAX_MONOMIALS) return undefined;
      out = out.flatMap((a) => ms.map((b) => mul(a, b)));
    }
    return out;
  }
  return [e];
}

export const SPLIT_BY_PARTNER_RULE: Rule = {
  name: "split-by-partner",
  pattern: "sum(p*a + q*b + p*c, k) ⇒ sum(p*(a + c), k) + sum(q*b, k)",
  guard: "p and q are the factors of each monomial that carry one free index j of the sum; a, b, c do not carry j; the kernel costs less",
  apply: (e, { sizeOf }) => {
    if (e.kind !== "sum" || e.free.length === 0) return undefined;
    const terms = monomials(e.body);
    if (!terms || terms.length < 2) return undefined;
    let best: { out: Expr; total: number } = { out: e, total: kernelCost([e]).total };
    for (const j of e.free) {
      const groups = new Map<Expr, Expr[]>();
      for (const m of terms) {
        const fs = m.kind === "mul" ? m.factors : [m];
        const partner = mul(...fs.filter((f) => f.free.includes(j)));
        groups.set(partner, [...(groups.get(partner) ?? []), mul(...fs.filter((f) => !f.free.includes(j)))]);
      }
      // each coefficient factored where that is cheaper (its common factors pulled out)
      const coefficient = (cs: Expr[]) => {
        const expanded = add(...cs);
        const factored = runRules(expanded, [FACTOR_RULE], { sizeOf });
        return kernelCost([factored]).total < kernelCost([expanded]).total ? factored : expanded;
      };
      const out = add(...[...groups].map(([partner, cs]) => sum(mul(partner, coefficient(cs)), e.indices, sizeOf)));
      const total = kernelCost([out]).total;
      if (total < best.total) best = { out, total };
    }
    return best.out === e ? undefined : best.out;
  },
};
