/**
 * The common parts of an elementwise pass: subexpressions that its outputs compute more than once
 * (the same part in two gradients, as an LSTM-like cell's `dc + dh*o*sech(c)^2` in both `dx` and
 * `dc0`, or twice in one), outside reductions and the values already known. The lowering computes
 * each once per element, as a `let` before the stores (lower.ts), and the work count counts it
 * once (work.ts): what the kernel runs is what its cost says.
 */
import { children, isReduction, isStored, type Expr } from "../ir/expr.js";
import { treeSize } from "../ir/walk.js";
import { cost, weight } from "../ir/cost.js";

/**
 * The parts of `exprs` evaluated more than once, each worth a local (two operations or a call),
 * smaller parts first: a part inside another is computed before it and read by it.
 */
export function commonParts(exprs: readonly Expr[], known: (x: Expr) => boolean): Expr[] {
  const uses = new Map<Expr, number>();
  const count = (x: Expr): void => {
    if (x.kind === "num" || x.kind === "sym" || x.kind === "ref" || x.kind === "delta" || isReduction(x) || isStored(x) || known(x)) return;
    const n = (uses.get(x) ?? 0) + 1;
    uses.set(x, n);
    // a repeated part's own parts are counted through its first use only
    if (n === 1) children(x).forEach(count);
  };
  exprs.forEach(count);
  const parts = [...uses].filter(([x, n]) => n > 1 && weight(cost(x, { known })) >= 2).map(([x]) => x);
  const size = new Map(parts.map((x) => [x, treeSize(x)]));
  return parts.sort((a, b) => size.get(a)! - size.get(b)!);
}
