/**
 * The phase table and its one runner. A phase is either a rule set run to its fixpoint on each
 * gradient by `runRules` (within `limit` passes), or a pass: a search that is not a rule set
 * (vanish, share, outputs), in its own file. Every phase records its rewrites and the gradients
 * after it, so the derivation can be printed (`explain`) and replayed as a proof (`verify.ts`).
 */
import { contains, type Expr } from "../ir/expr.js";
import type { Phase, Rewrite } from "../ir/backward.js";
import { runRules, SimplifyLimit } from "./runner.js";
import type { Rule, RuleContext } from "./pattern.js";

/** Runs `f` on the gradient of input `k` (or all of them), turning a simplifier limit into a spec error. */
export type Limited = <T>(k: number | undefined, f: () => T) => T;

export interface PhaseResult {
  readonly gradients: readonly Expr[];
  readonly rewrites: readonly Rewrite[];
}

export type PhaseEntry =
  | { readonly kind: "rules"; readonly name: string; readonly rules: readonly Rule[]; readonly limit: number }
  | { readonly kind: "pass"; readonly name: string; readonly run: (gradients: readonly Expr[], limited: Limited) => PhaseResult };

/** The gradients that hold `node`, for rewrites applied to all of them at once. */
export function holders(gradients: readonly Expr[], node: Expr): number[] {
  return gradients.flatMap((g, k) => (contains(g, (x) => x === node) ? [k] : []));
}

/**
 * Runs the table in order from `start`. `limitError` turns a simplifier limit hit in a phase on
 * the gradient of input `k` into the error the build reports.
 */
export function runPhases(table: readonly PhaseEntry[], start: readonly Expr[], ctx: RuleContext, limitError: (phase: string, k: number | undefined, e: SimplifyLimit) => Error): Phase[] {
  const phases: Phase[] = [];
  let gradients = start;
  for (const entry of table) {
    const limited: Limited = (k, f) => {
      try {
        return f();
      } catch (e) {
        if (e instanceof SimplifyLimit) throw limitError(entry.name, k, e);
        throw e;
      }
    };
    const result = entry.kind === "rules" ? runRuleSet(entry.rules, entry.limit, gradients, ctx, limited) : entry.run(gradients, limited);
    gradients = result.gradients;
    phases.push({ name: entry.name, rewrites: result.rewrites, gradients });
  }
  return phases;
}

function runRuleSet(rules: readonly Rule[], limit: number, gradients: readonly Expr[], ctx: RuleContext, limited: Limited): PhaseResult {
  const rewrites: Rewrite[] = [];
  const next = gradients.map((g, k) => {
    const own: Rewrite[] = [];
    const out = limited(k, () => runRules(g, rules, ctx, { trace: own, maxPasses: limit }));
    rewrites.push(...own.map((r) => ({ ...r, gradients: [k] })));
    return out;
  });
  return { gradients: next, rewrites };
}
