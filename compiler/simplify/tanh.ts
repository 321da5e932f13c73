/**
 * Phase `tanh`: `sech(u)^2 ⇒ 1 - tanh(u)^2` where the kernel computes `tanh(u)` anyway, so that
 * the scheduler's common parts (schedule/common.ts) compute one `tanh(u)` per element for both,
 * instead of a `tanh` and a `cosh`. The CAS writes the derivative of `tanh(u)` as `sech(u)^2`; a
 * cell like `c = f*c0 + (1 - f)*tanh(x)`, `h = tanh(c)*o` needs `tanh(c)` for `do` and `sech(c)^2`
 * for `dc`, and the fused pass was bound by the four calls.
 *
 * This is how PyTorch computes tanh's backward (`grad * (1 - y*y)`, from the output `y`). In
 * floating point `1 - tanh(u)^2` has an absolute error of about 1e-16 where `sech(u)^2` is tiny
 * (|u| > 18 it is 0 against a true value below 1e-15): an absolute error of one rounding of 1,
 * harmless in a gradient that sums it with terms of order 1. The guard keeps the rule to the
 * kernels where it saves a call; elsewhere `sech(u)^2` keeps its relative precision (the phase
 * `outputs` uses the same identity only where `tanh(u)` is a cached step). Where `sech(u)^2` is a
 * factor of the whole gradient and `u` is large (`sin(tanh(r))` with `r = sum(...)` near 10), the
 * gradient is itself tiny and that absolute error is a relative one of 1e-9 or more: the
 * rewritten gradients are kept only if each gives the same numbers as before to 1e-12 of its
 * largest element on random data (the check of the phase `outputs`), so the rule fires where the
 * error stays at rounding level, as in a cell whose `dc` adds terms of order 1.
 *
 * A rule set made per kernel (the `tanh` arguments its gradients hold), run by the one runner.
 */
import { renameFree, type Call, type Expr, type SizeOf } from "../ir/expr.js";
import { collect } from "../ir/walk.js";
import type { Rewrite } from "../ir/backward.js";
import { rule, when, type Rule, type RuleContext } from "./pattern.js";
import { runRules } from "./runner.js";
import type { Limited, PhaseResult } from "./phases.js";

/**
 * `sech(?u)^2 ⇒ 1 - tanh(?u)^2` where `?u` is one of the kernel's `tanh` arguments, `computed`
 * (as `byShape` keys them).
 */
export function sechThroughTanh(computed: ReadonlySet<Expr>): Rule {
  return rule(
    "sech-tanh-shared",
    "sech(?u)^2",
    "1 - tanh(?u)^2",
    when("the kernel computes tanh(?u) anyway", (b, ctx) => computed.has(byShape(b.exprs.get("?u")!, ctx.sizeOf))),
  );
}

/**
 * `u` with each free index named by its size: a reduction accumulated in an elementwise pass reads
 * `c[N:1,d]` where the pass reads `c[n,d]`, and both are the same value in that pass's loop.
 */
export function byShape(u: Expr, sizeOf: SizeOf): Expr {
  return renameFree(u, Object.fromEntries(u.free.map((i) => [i, `${sizeOf(i)}:~t`])), sizeOf);
}

/** The arguments of the `tanh` calls in `gradients`, keyed by `byShape`. */
export function tanhArguments(gradients: readonly Expr[], sizeOf: SizeOf): Set<Expr> {
  return new Set(collect(gradients, (x): x is Call => x.kind === "call" && x.fn === "tanh").map((x) => byShape(x.arg, sizeOf)));
}

/**
 * Runs `sech-tanh-shared` on every gradient, with the `tanh` arguments of all of them. If
 * `same(before, after, k)` refuses the rewritten form of any gradient, every gradient keeps its
 * form: the kernel's passes would otherwise compute both tanh(u) and cosh(u) where one form needs one.
 */
export function tanhShare(gradients: readonly Expr[], ctx: RuleContext, limited: Limited, limit: number, same: (a: Expr, b: Expr, k: number) => boolean = () => true): PhaseResult {
  const shared = [sechThroughTanh(tanhArguments(gradients, ctx.sizeOf))];
  const rewrites: Rewrite[] = [];
  let refused = false;
  const next = gradients.map((g, k) => {
    const own: { rule: string; before: Expr; after: Expr }[] = [];
    const out = limited(k, () => runRules(g, shared, ctx, { trace: own, maxPasses: limit }));
    if (out === g) return g;
    if (!same(g, out, k)) refused = true;
    rewrites.push(...own.map((r) => ({ ...r, gradients: [k] })));
    return out;
  });
  // all or nothing: a kernel with both forms of one value would compute both tanh(u) and cosh(u)
  return refused ? { gradients, rewrites: [] } : { gradients: next, rewrites };
}
