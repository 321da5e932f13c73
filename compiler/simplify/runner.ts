/**
 * The one rule runner: applies a rule list bottom-up, first matching rule per node, until nothing
 * changes, within an iteration and a size limit, and records every rewrite so a derivation can be
 * printed and replayed. A node a rule rewrote is normalized again at once (its new subterms first),
 * so a rule that takes one operand at a time (`?a*(?b + ?c)`) finishes in the same pass. Every
 * rewrite it records replays: each is applied to the whole expression as it stands (see `onePass`).
 */
import { children, rewrite, treeSize, type Expr } from "../ir/expr.js";
import type { Rewrite } from "../ir/backward.js";
import { MAX_RULE_PASSES, MAX_RULE_REWRITES_PER_NODE, MAX_SIMPLIFY_NODES } from "../limits.js";
import type { Rule, RuleContext } from "./pattern.js";

export class SimplifyLimit extends Error {}

export interface RunOptions {
  /** Passes over the expression before giving up. */
  readonly maxPasses?: number;
  /** Largest tree (in nodes) a rewrite may produce. */
  readonly maxSize?: number;
  /** Every rewrite applied is appended here. */
  readonly trace?: Rewrite[];
}

/** Applies `rules` bottom-up, first match per node, until nothing changes. */
export function runRules(e: Expr, rules: readonly Rule[], ctx: RuleContext, opts: RunOptions = {}): Expr {
  const maxPasses = opts.maxPasses ?? MAX_RULE_PASSES;
  const maxSize = opts.maxSize ?? MAX_SIMPLIFY_NODES;
  let cur = e;
  for (let pass = 0; pass < maxPasses; pass++) {
    const next = onePass(cur, rules, ctx, opts.trace, maxSize);
    if (next === cur) return cur;
    if (treeSize(next) > maxSize) throw new SimplifyLimit(`simplification grew an expression past ${maxSize} nodes`);
    cur = next;
  }
  throw new SimplifyLimit(`simplification did not reach a fixpoint in ${maxPasses} passes`);
}

/**
 * One bottom-up pass. What it returns is the expression as its recorded rewrites leave it when
 * replayed one by one on the whole expression (`replaceNode`, the way `explain` lists them and the
 * tests replay them), not the tree the walk rebuilt: a rewrite can change the canonical names of
 * the bound indices of a reduction around it (a sum that became a gather lowers the height of the
 * sums that hold it) or be normalized away with its parent, and then a node the walk meets later
 * in the same pass no longer occurs in the expression as it stands. Such a rewrite is not applied
 * nor recorded; the next pass meets that node under its current names. The first rewrite of a pass
 * always applies, so each pass makes progress.
 */
function onePass(e: Expr, rules: readonly Rule[], ctx: RuleContext, trace: Rewrite[] | undefined, maxSize: number): Expr {
  // the nodes the rewrites of this pass built, counted as trees: a bound on how much it grew
  let built = 0;
  let state = e;
  const normal = normalNodes(rules, ctx);
  const at = (y: Expr, depth: number): Expr => {
    if (normal.has(y)) return y;
    for (const r of rules) {
      const z = r.apply(y, ctx);
      if (z !== undefined && z !== y) {
        // replaceNode(state, y, z), walking only what may hold y; what it walks and rebuilds (the
        // nodes around y, with their operands) counts as built: a large sum rebuilt per rewrite
        let walked = 0;
        const replayed = rewrite(state, ctx.sizeOf, {
          before: (x) => (mayHold(x, y) ? undefined : x),
          after: (x) => {
            walked += 1 + children(x).length;
            return x === y ? z : x;
          },
        });
        // y is not a node of the expression as it stands (or replacing it changes nothing): next pass
        if (replayed === state) return y;
        built += walked;
        state = replayed;
        trace?.push({ rule: r.name, before: y, after: z });
        if (depth >= MAX_RULE_REWRITES_PER_NODE) throw new SimplifyLimit(`a rewrite kept rewriting its own result ${MAX_RULE_REWRITES_PER_NODE} times`);
        // a pass normalizes what it rewrote at once, so its growth is checked here, not only after it
        built += treeSize(z);
        if (built > maxSize) throw new SimplifyLimit(`simplification grew an expression past ${maxSize} nodes`);
        return rewrite(z, ctx.sizeOf, { after: (w) => at(w, depth + 1) });
      }
    }
    normal.add(y);
    return y;
  };
  rewrite(e, ctx.sizeOf, { after: (y) => at(y, 0) });
  return state;
}

/**
 * The nodes no rule of a list rewrites, by list and context: a rule's answer depends only on the
 * node and the context, and nodes are immutable, so a node found normal stays normal. Every pass
 * walks the whole expression again; most of it is normal from the pass before.
 */
const normalSets = new WeakMap<readonly Rule[], WeakMap<RuleContext, WeakSet<Expr>>>();

function normalNodes(rules: readonly Rule[], ctx: RuleContext): WeakSet<Expr> {
  let byCtx = normalSets.get(rules);
  if (!byCtx) normalSets.set(rules, (byCtx = new WeakMap()));
  let set = byCtx.get(ctx);
  if (!set) byCtx.set(ctx, (set = new WeakSet()));
  return set;
}

/**
 * A 256-bit summary of the distinct nodes under each node: a bit chosen by each one's id, or'ed
 * up from the children. A node whose summary lacks the bit of `y` does not hold `y` (the converse
 * may fail: then the walk looks inside). Nodes are immutable, so each summary is made once.
 */
const summaries = new WeakMap<Expr, Uint32Array>();
const bitOf = (x: Expr): number => Math.imul(x.id, 0x9e3779b1) >>> 24;

function summary(x: Expr): Uint32Array {
  const known = summaries.get(x);
  if (known) return known;
  const s = new Uint32Array(8);
  const b = bitOf(x);
  s[b >>> 5] = 1 << (b & 31);
  for (const c of children(x)) {
    const t = summary(c);
    for (let i = 0; i < 8; i++) s[i]! |= t[i]!;
  }
  summaries.set(x, s);
  return s;
}

function mayHold(x: Expr, y: Expr): boolean {
  const b = bitOf(y);
  return (summary(x)[b >>> 5]! & (1 << (b & 31))) !== 0;
}
