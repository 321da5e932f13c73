/**
 * Phase `regroup`: a reduction that holds a reduction step's definition is rewritten over that
 * step (`sum_j p*sum_f(do*v) ⇒ sum_f do*o` for `o = sum_j p*v`, exchanging the sums), kept when it
 * is cheaper. Its rule `fold-reduction` is a function rule, the documented exception: it flattens
 * nested sums and searches for an injective map of the definition's bound indices onto the
 * reduction's, which a node pattern cannot say.
 */
import { canonicalSize, mul, num, pow, ref, refsOf, renameFree, sum, type Expr, type SizeOf } from "../ir/expr.js";
import type { Step } from "../ir/program.js";
import { nameTable } from "../ir/table.js";
import { cost } from "./cost.js";
import { isMonomial } from "./definitions.js";
import { EXPAND_RULES, monomialExpr, monomialOf, type Monomial } from "./rules.js";
import { runRules } from "./runner.js";
import type { Rule } from "./pattern.js";

/** A step `t[I] = c * sum(m, K)`, with `m` a product of powers and `c` free of `K`. */
interface ReductionDefinition {
  readonly step: Step;
  readonly coefficient: Expr;
  readonly bound: readonly string[];
  readonly body: Monomial;
}

export function reductionDefinition(st: Step): ReductionDefinition | undefined {
  const factors = st.rhs.kind === "mul" ? st.rhs.factors : [st.rhs];
  const sums = factors.filter((f) => f.kind === "sum");
  if (sums.length !== 1) return undefined;
  const s = sums[0] as Expr & { kind: "sum" };
  const coefficient = mul(...factors.filter((f) => f !== s));
  if (coefficient.free.length > 0 || !isMonomial(s.body)) return undefined;
  // dividing by the coefficient must not divide by a value (only by numbers and sizes)
  if (refsOf(coefficient).length > 0) return undefined;
  return { step: st, coefficient, bound: s.indices, body: monomialOf(s.body) };
}

/** A reduction as one flat sum of a product: nested sums of products are pulled together. */
function flatReduction(e: Expr & { kind: "sum" }, sizeOf: SizeOf): { bound: string[]; body: Monomial } | undefined {
  let bound = [...e.indices];
  const powers = new Map<Expr, number>();
  let coefficient = 1;
  const absorb = (m: Monomial): boolean => {
    coefficient *= m.coefficient;
    for (const [b, k] of m.powers) {
      if (b.kind === "sum" && k === 1) {
        // rename its bound indices apart from everything collected so far
        const fresh = nameTable<string>();
        b.indices.forEach((i, n) => (fresh[i] = `${canonicalSize(i)}:~r${bound.length + n}`));
        const inner = renameFree(b.body, fresh, sizeOf);
        bound = [...bound, ...Object.values(fresh)];
        if (!isMonomial(inner) && inner.kind !== "mul") return false;
        if (!absorb(monomialOf(inner))) return false;
      } else powers.set(b, (powers.get(b) ?? 0) + k);
    }
    return true;
  };
  if (!absorb(monomialOf(e.body))) return undefined;
  return { bound, body: { coefficient, powers } };
}

/**
 * `sum(r*f, K ∪ L) ⇒ sum(r*t/c, L)` for a step `t[I] = c*sum(f, K)`: the factors of `f`, with
 * `K` mapped onto bound indices of the reduction that `r` does not use, are replaced by `t`.
 */
export function foldReductionRule(defs: readonly ReductionDefinition[]): Rule {
  return {
    name: "fold-reduction",
    pattern: "sum(r*f, k, l) ⇒ sum(r*t/c, l)",
    guard: "t[I] = c*sum(f, k) is a step, r does not use k",
    apply: (e, { sizeOf }) => {
      if (e.kind !== "sum") return undefined;
      const flat = flatReduction(e, sizeOf);
      if (!flat) return undefined;
      for (const d of defs) {
        const match = matchFactors(d, flat);
        if (!match) continue;
        const { sigma, rest } = match;
        const t = ref(d.step.name, d.step.indices.map((i) => sigma[i]!));
        const remaining = flat.bound.filter((b) => !d.bound.some((k) => sigma[k] === b));
        const body = mul(monomialExpr({ coefficient: flat.body.coefficient, powers: rest }), t, pow(d.coefficient, num(-1)));
        const out = runRules(sum(body, remaining, sizeOf), EXPAND_RULES, { sizeOf });
        return cost(out) < cost(e) ? out : undefined;
      }
      return undefined;
    },
  };
}

/** Finds an index map sending the definition's factors onto factors of `flat`. */
function matchFactors(d: ReductionDefinition, flat: { bound: string[]; body: Monomial }): { sigma: Record<string, string>; rest: Map<Expr, number> } | undefined {
  const want = [...d.body.powers];
  const have = [...flat.body.powers];
  const used = new Set<number>();
  const search = (k: number, sigma: Record<string, string>): Record<string, string> | undefined => {
    if (k === want.length) return sigma;
    const [wb, wk] = want[k]!;
    for (let h = 0; h < have.length; h++) {
      if (used.has(h)) continue;
      const [hb, hk] = have[h]!;
      if (hk !== wk || wb.kind !== "ref" || hb.kind !== "ref" || wb.name !== hb.name || wb.space !== hb.space) continue;
      const next = { ...sigma };
      let ok = true;
      wb.indices.forEach((i, n) => {
        const j = hb.indices[n]!;
        if (next[i] === undefined) {
          // a bound index of the definition goes to a distinct bound index of the reduction
          if (d.bound.includes(i) && (!flat.bound.includes(j) || Object.values(next).includes(j))) ok = false;
          next[i] = j;
        } else if (next[i] !== j) ok = false;
      });
      if (!ok) continue;
      used.add(h);
      const found = search(k + 1, next);
      if (found) return found;
      used.delete(h);
    }
    return undefined;
  };
  const sigma = search(0, {});
  // every index of the step and every index its sum binds must land on the reduction: a bound index
  // the body does not use (`p = sum(a/z, f)` is F*a/z) would otherwise fold away its factor
  if (!sigma || d.step.indices.some((i) => sigma[i] === undefined) || d.bound.some((i) => sigma[i] === undefined)) return undefined;
  const rest = new Map(flat.body.powers);
  for (const [b, k] of want) {
    // the factor the definition's factor was matched to
    const renamed = renameAll(b, sigma);
    if (rest.get(renamed) !== k) return undefined;
    rest.delete(renamed);
  }
  const boundImages = d.bound.map((k) => sigma[k]!);
  for (const b of rest.keys()) if (boundImages.some((i) => b.free.includes(i))) return undefined;
  return { sigma, rest };
}

function renameAll(e: Expr, sigma: Record<string, string>): Expr {
  return e.kind === "ref" ? ref(e.name, e.indices.map((i) => sigma[i] ?? i), e.space) : e;
}
