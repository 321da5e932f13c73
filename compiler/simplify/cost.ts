/**
 * The simplifier's one cost measure, which every cost-guided choice uses (vanish keeps a cheaper
 * expansion, merge and regroup keep a cheaper form, outputs a cheaper way through a step's value,
 * expand distributes only where that does not cost more).
 */
import { collect, isReduction, isTranscendental, treeSize, type Expr } from "../ir/expr.js";

/** Size-weighted cost: nodes, with reductions and transcendental functions costing more. */
export function cost(e: Expr): number {
  return treeSize(e) + 10 * collect(e, isReduction).length + 8 * collect(e, isTranscendental).length;
}
