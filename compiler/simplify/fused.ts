/**
 * Derives the fused backward from the naive one: the straight-line driver over the phase table
 * (`phases.ts`). Each phase is a rule set (rules as data, `pattern.ts`) or a pass in its own file:
 *
 *  1. inline        every intermediate adjoint into the input gradients (`inline.ts`);
 *  2. atoms         forward values in one basis: a step's definition becomes that step
 *                   (`(var+eps)^-0.5 ⇒ sqrtvar^-1`), product steps are unfolded (`xhat ⇒ xmu*sqrtvar^-1`),
 *                   a reduction under a step's log is read back from the step (`sum(exp(z - m), c)
 *                   ⇒ exp(lse - m)`), with rules made from the steps (`definitions.ts`);
 *  3. expand        to a sum of monomials, each reduction over a monomial (`rules.ts`);
 *  4. vanish        reductions replaced by a cheaper expansion through the definitions (`vanish.ts`);
 *  5. share         reductions rewritten over cached values (`share.ts`);
 *  6. factor        common factors pulled out of sums (`factor.ts`);
 *  7. fold          products folded back into cached steps (`xmu*sqrtvar^-1 ⇒ xhat`, `definitions.ts`);
 *  8. fold-powers   the same inside powers;
 *  9. regroup       reductions rewritten over a reduction step (`regroup.ts`);
 * 10. merge         sums over the same index sizes merged into one (`merge.ts`);
 * 11. merge-factor  common factors pulled out again;
 * 12. outputs       gradients written through a step's own value where cheaper (`outputs.ts`);
 * 13. partners      a reduction's terms grouped by the factors that carry a free index, so that each
 *                   coefficient is stored once by the scheduler (`partners.ts`);
 * 13b. gather       an affine read's scatter-add gradient solved into a read (`gather.ts`);
 * 14. cheapest      each gradient's cheapest form among those the phases produced, by the cost of
 *                   the kernel (`kernelCost`): no phase is kept that made the kernel costlier;
 * 15. tanh          `sech(u)^2 ⇒ 1 - tanh(u)^2` in the chosen forms where the kernel computes
 *                   `tanh(u)` anyway, so the scheduler computes one call for both (`tanh.ts`).
 *
 * Distributing in `expand` is guided by cost; where that leaves a product undistributed, the table
 * is run a second time with the plain normal form and the cheaper end result is kept (see below).
 *
 * Nothing here knows any layer: every identity comes from the spec's own definitions.
 */
import { contains, type Expr } from "../ir/expr.js";
import type { Backward, Fused } from "../ir/backward.js";
import type { Program } from "../ir/program.js";
import { LimitExceeded, MAX_RULE_PASSES } from "../limits.js";
import { kernelCost } from "./cost.js";
import { definitionsOf, foldDefinitionRules, foldInverseRules, foldOrder, foldRule, unfoldRules } from "./definitions.js";
import { FACTOR_RULE } from "./factor.js";
import { inlineGradients } from "./inline.js";
import { MERGE_RULE } from "./merge.js";
import { numericCheck, outputs } from "./outputs.js";
import { SPLIT_BY_PARTNER_RULE } from "./partners.js";
import type { Rule, RuleContext } from "./pattern.js";
import { runPhases, type PhaseEntry } from "./phases.js";
import { foldReductionRule, reductionDefinition } from "./regroup.js";
import { EXPAND_RULES, expandRules } from "./rules.js";
import type { SimplifyLimit } from "./runner.js";
import { share } from "./share.js";
import { gather } from "./gather.js";
import { vanish } from "./vanish.js";
import { tanhShare } from "./tanh.js";

export { throughOwnValue } from "./outputs.js";

export function deriveFused(p: Program, bw: Backward): Fused {
  const ctx: RuleContext = { sizeOf: p.sizeOf };
  const start = inlineGradients(bw, p.inputs, p.sizeOf);
  const defs = definitionsOf(p, ctx);
  const literal = foldDefinitionRules(defs.filter((d) => !d.monomial));
  const folds = foldOrder(defs);
  const reductionDefs = p.steps.flatMap((st) => reductionDefinition(st) ?? []);
  const limit = MAX_RULE_PASSES;
  // the numeric check of the phase `outputs` (its random data made once, when first needed)
  let check: ((a: Expr, b: Expr, k: number) => boolean) | undefined;
  const sameNumbers = () => (a: Expr, b: Expr, k: number) => (check ??= numericCheck(p, bw))(a, b, k);
  const table = (expand: readonly Rule[]): readonly PhaseEntry[] => [
    { kind: "rules", name: "atoms", rules: [...literal, ...unfoldRules(defs), ...foldInverseRules(p)], limit },
    { kind: "rules", name: "expand", rules: expand, limit },
    { kind: "pass", name: "vanish", run: (g, limited) => vanish(g, p, ctx, limited) },
    { kind: "pass", name: "share", run: (g) => share(g, defs, p) },
    { kind: "rules", name: "factor", rules: [FACTOR_RULE], limit },
    { kind: "rules", name: "fold", rules: [foldRule(folds, p.sizeOf, "mul"), ...literal], limit },
    { kind: "rules", name: "fold-powers", rules: [foldRule(folds, p.sizeOf, "pow")], limit },
    { kind: "rules", name: "regroup", rules: [foldReductionRule(reductionDefs)], limit },
    { kind: "rules", name: "merge", rules: [MERGE_RULE], limit },
    { kind: "rules", name: "merge-factor", rules: [FACTOR_RULE], limit },
    { kind: "pass", name: "outputs", run: (g) => outputs(g, defs, folds, p, bw) },
    { kind: "rules", name: "partners", rules: [SPLIT_BY_PARTNER_RULE], limit },
    { kind: "pass", name: "gather", run: (g) => gather(g, p) },
  ];
  const run = (expand: readonly Rule[], onLimit = (phase: string, k: number | undefined, e: SimplifyLimit): Error => {
    const which = k === undefined ? "the gradients" : `the gradient of '${p.inputs[k]!.name}'`;
    return new LimitExceeded(`simplifying ${which} (phase '${phase}'): ${e.message} (the limit)`);
  }) => {
    const phases = runPhases(table(expand), start, ctx, onLimit);
    const all = [{ name: "inline", rewrites: [], gradients: start }, ...phases];
    const last = all[all.length - 1]!.gradients;
    const cheapest = last.map((g, k) => {
      const bar = CLEARLY_CHEAPER * kernelCost([g]).total;
      const forms = all.map((ph) => ph.gradients[k]!).filter((f) => kernelCost([f]).total < bar);
      return forms.reduce((a, b) => (kernelCost([b]).total < kernelCost([a]).total ? b : a), g);
    });
    const rewrites = cheapest.flatMap((g, k) => (g === last[k] ? [] : [{ rule: "keep-cheapest", before: last[k]!, after: g, gradients: [k] }]));
    // after the choice, which compares each gradient alone: the call it saves is shared between them
    const tanh = tanhShare(cheapest, ctx, (k, f) => f(), limit, sameNumbers());
    return {
      gradients: tanh.gradients,
      phases: [...all, { name: "cheapest", rewrites, gradients: cheapest }, { name: "tanh", rewrites: tanh.rewrites, gradients: tanh.gradients }],
    };
  };
  // Cost guidance for distributing: first only where it enables a reduction rule or costs nothing;
  // a product distributed everywhere (the monomial normal form) can still end cheaper once common
  // factors come out and products fold into steps (swish's s*(1 + x - y)), so where the expand
  // phase left some product undistributed, that run is made too and the cheaper result is kept.
  const guided = run(EXPAND_RULES);
  const expanded = guided.phases.find((ph) => ph.name === "expand")!.gradients;
  const everywhere = expandRules({ everywhere: true });
  const distribute = everywhere.find((r) => r.name === "distribute")!;
  if (!expanded.some((g) => contains(g, (x) => distribute.apply(x, ctx) !== undefined))) return guided;
  // the normal form can grow past a limit where the guided run did not: then the guided result stands
  let full: Fused;
  try {
    full = run(everywhere, () => new Abandoned());
  } catch (e) {
    if (e instanceof Abandoned) return guided;
    throw e;
  }
  const total = (f: Fused) => kernelCost(f.gradients).total;
  return total(full) < total(guided) ? full : guided;
}

/**
 * An earlier phase's form replaces the last one only when its kernel costs less than this fraction
 * of the last one's: the op count does not see passes and small temporaries, which the later
 * phases' closed forms save (logsoftmax's `sum(dy, c)/s` against `sum(dy/s, c)`), so a near tie
 * keeps the closed form.
 */
const CLEARLY_CHEAPER = 0.9;

/** The plain normal form's run met a simplifier limit: it is given up, not reported. */
class Abandoned extends Error {}
