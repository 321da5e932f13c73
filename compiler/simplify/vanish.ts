/**
 * Phase `vanish`: the identity `sum_n (x[n,d] - mu[d]) = 0` is written nowhere. Each reduction whose
 * expansion through the forward definitions, up to three levels deep, is cheaper (by `cost`) is
 * replaced by that expansion; here it cancels to 0. It is a search over candidate expansions, kept
 * by cost, not a rule that fires where it matches, so it is a phase of its own.
 */
import { reductionsOf, renameFree, replaceNode, rewrite, type Expr } from "../ir/expr.js";
import type { Rewrite } from "../ir/backward.js";
import type { Program } from "../ir/program.js";
import { nameTable } from "../ir/table.js";
import { MAX_PHASE_ROUNDS } from "../limits.js";
import { cost } from "./cost.js";
import { EXPAND_RULES } from "./rules.js";
import { runRules, SimplifyLimit } from "./runner.js";
import type { RuleContext } from "./pattern.js";
import { holders, type Limited, type PhaseResult } from "./phases.js";

/** Replaces, one at a time, each reduction that a cheaper expansion exists for, normalizing after. */
export function vanish(start: readonly Expr[], p: Program, ctx: RuleContext, limited: Limited): PhaseResult {
  const rewrites: Rewrite[] = [];
  let grads = [...start];
  for (let round = 0; round < MAX_PHASE_ROUNDS; round++) {
    let changed = false;
    for (const s of reductionsOf(grads)) {
      const better = cheaperExpansion(s, p, ctx);
      if (better === undefined) continue;
      rewrites.push({ rule: "expand-definitions", before: s, after: better, gradients: holders(grads, s) });
      // the normalization after it is recorded too, so that the list replays to the phase's result
      grads = grads.map((g, k) =>
        limited(k, () => {
          const own: Rewrite[] = [];
          const out = runRules(replaceNode(g, s, better, ctx.sizeOf), EXPAND_RULES, ctx, { trace: own });
          rewrites.push(...own.map((r) => ({ ...r, gradients: [k] })));
          return out;
        }),
      );
      changed = true;
      break;
    }
    if (!changed) break;
  }
  return { gradients: grads, rewrites };
}

/**
 * Expands the forward definitions inside a reduction, up to three levels deep, normalizing after
 * each; returns the cheapest strictly cheaper form found (0 for a sum that cancels), if any.
 */
function cheaperExpansion(s: Expr, p: Program, ctx: RuleContext): Expr | undefined {
  if (s.kind !== "sum") return undefined;
  // the same reduction is asked about again in every round and in both runs of the phase table
  // (fused.ts): its answer depends only on it and the program's steps
  let memo = expansions.get(p);
  if (!memo) expansions.set(p, (memo = new Map()));
  if (memo.has(s)) return memo.get(s);
  const best = searchExpansion(s, p, ctx);
  memo.set(s, best);
  return best;
}

const expansions = new WeakMap<Program, Map<Expr, Expr | undefined>>();

function searchExpansion(s: Expr, p: Program, ctx: RuleContext): Expr | undefined {
  let best: Expr | undefined;
  let bestCost = cost(s);
  let cur: Expr = s;
  for (let depth = 0; depth < 3; depth++) {
    const next = rewrite(cur, ctx.sizeOf, {
      before: (x) => {
        if (x.kind !== "ref" || x.space !== "value") return undefined;
        const st = p.steps.find((t) => t.name === x.name);
        if (!st) return undefined;
        const m = nameTable<string>();
        st.indices.forEach((i, k) => (m[i] = x.indices[k]!));
        return renameFree(st.rhs, m, ctx.sizeOf);
      },
    });
    if (next === cur) break;
    try {
      cur = runRules(next, EXPAND_RULES, ctx, { maxSize: 20_000 });
    } catch (e) {
      if (e instanceof SimplifyLimit) break;
      throw e;
    }
    const c = cost(cur);
    if (c < bestCost) {
      best = cur;
      bestCost = c;
    }
  }
  return best;
}
