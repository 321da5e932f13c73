/**
 * Phase `share`: each reduction is rewritten over cached values where an invariant factor allows it
 * (`sum(g*xmu) ⇒ sqrtvar*sum(g*xhat)`), so reductions shared by several gradients are computed once
 * and a gradient that is a reduction is that reduction. It chooses the smallest factor to multiply
 * in among the steps' definitions, and divides only by what can never be 0: a choice, not a rule
 * that fires where it matches, so it is a phase of its own.
 */
import { contains, mul, num, pow, reductionsOf, replaceNode, sum, type Expr, type SizeOf } from "../ir/expr.js";
import type { Rewrite } from "../ir/backward.js";
import type { Program } from "../ir/program.js";
import { foldRule, instances, type Definition } from "./definitions.js";
import { monomialExpr, monomialOf } from "./rules.js";
import { holders, type PhaseResult } from "./phases.js";

/** Rewrites each reduction of the gradients over a cached product step where one fits. */
export function share(start: readonly Expr[], defs: readonly Definition[], p: Program): PhaseResult {
  const rewrites: Rewrite[] = [];
  let grads = [...start];
  for (const s of reductionsOf(grads)) {
    if (s.kind !== "sum") continue;
    const pushed = pushIntoReduction(s, defs.filter((d) => d.monomial), p.sizeOf, (e) => nonzero(e, p));
    if (!pushed) continue;
    // a reduction inside one rewritten before is no longer in the gradients: nothing to record
    const at = holders(grads, s);
    if (at.length === 0) continue;
    const replacement = mul(pushed.reduction, pow(pushed.factor, num(-1)));
    rewrites.push({ rule: "share-reduction", before: s, after: replacement, gradients: at });
    grads = grads.map((g) => replaceNode(g, s, replacement, p.sizeOf));
  }
  return { gradients: grads, rewrites };
}

/**
 * Whether a value can never be 0, from its definition alone: sizes, nonzero numbers, reciprocals
 * (`1/sqrt(v + eps)` is 0 only where it is not finite), `exp`, and products of such values.
 */
function nonzero(e: Expr, p: Program): boolean {
  switch (e.kind) {
    case "num":
      return e.value !== 0;
    case "sym":
      return e.role === "size";
    case "pow":
      return (e.exp.kind === "num" && e.exp.value < 0) || nonzero(e.base, p);
    case "call":
      return e.fn === "exp";
    case "mul":
      return e.factors.every((f) => nonzero(f, p));
    case "ref": {
      const st = e.space === "value" ? p.steps.find((t) => t.name === e.name) : undefined;
      return st !== undefined && nonzero(st.rhs, p);
    }
    default:
      return false;
  }
}

/**
 * For a reduction `sum(m, i)` and a product step `t = f`: when the factors of `f` that vary with
 * `i` are all in `m`, multiply the invariant rest `c` of `f` into the body so that it folds:
 * `sum(m, i) = sum(m*c, i) / c` with `m*c` holding `t`. The smallest such `c` wins.
 */
function pushIntoReduction(
  s: Expr & { kind: "sum" },
  defs: readonly Definition[],
  sizeOf: SizeOf,
  nonzero: (e: Expr) => boolean,
): { reduction: Expr; factor: Expr } | undefined {
  const m = monomialOf(s.body);
  let best: { reduction: Expr; factor: Expr; size: number } | undefined;
  for (const d of defs) {
    for (const { body } of instances(d, d.basis, s.body, sizeOf)) {
      const f = monomialOf(body);
      const invariant = new Map<Expr, number>();
      let ok = true;
      for (const [b, k] of f.powers) {
        if (s.indices.some((i) => b.free.includes(i))) {
          if (m.powers.get(b) !== k) ok = false;
        } else invariant.set(b, k);
      }
      // never divide by what the forward did not already divide by (w in w*x*r may be 0)
      if (!ok || invariant.size === 0 || [...invariant].some(([b, k]) => k > 0 && !nonzero(b))) continue;
      const factor = monomialExpr({ coefficient: f.coefficient, powers: invariant });
      if (best && invariant.size >= best.size) continue;
      const folded = foldRule([d], sizeOf, "mul").apply(mul(s.body, factor), { sizeOf });
      if (!folded || !contains(folded, (x) => x.kind === "ref" && x.name === d.step.name)) continue;
      best = { reduction: sum(folded, s.indices, sizeOf), factor, size: invariant.size };
    }
  }
  return best && { reduction: best.reduction, factor: best.factor };
}
