/**
 * Phase `gather`: the gradient of an affine read, a scatter-add in the naive kernel
 * (`dx[n,c,l] = sum(dy[n,o,i]*w[o,c,k]*delta(l, i + k - 1), o, i, k)`: every output position adds
 * into the inputs it read), becomes a gather: the delta is solved for one bound index of its form
 * (`delta(i, l - k + 1)`), so that the sum over it is a read (`dx[n,c,l] = sum(w[o,c,k]*dy[n,o,l -
 * k + 1], o, k)`, zero where `l - k + 1` is outside the output). Each element of `dx` is then
 * written once, in one pass, instead of zeroed and added into from every position that read it.
 * This is Halide's scatter-to-gather (`src/Derivative.cpp`), on the index algebra of `ir/affine.ts`.
 *
 * The index solved for is the one with the largest extent when the delta's own letter is long and
 * the other sizes short (a convolution's output position `i`, never its kernel offset `k`): the
 * loop left over the others is then short, and a read out of range is rare. The gather is taken
 * only where it visits about as many positions as the scatter (stride 1): with a stride or a pooling
 * window the target is longer than the solved index, most positions the gather visits fail its
 * divisibility test, and the scatter stays (`SCATTER_MARGIN`). Timings are in the README
 * ("Convolution and pooling").
 */
import { canonicalSize, mapBottomUp, type Delta, type Expr } from "../ir/expr.js";
import type { Rewrite } from "../ir/backward.js";
import type { Program } from "../ir/program.js";
import { gatherSum } from "../ir/affine.js";
import { withDerived } from "../ir/sizes.js";
import { holders, type PhaseResult } from "./phases.js";

/**
 * How much longer than the solved index the target index may be and the gather still be taken: a
 * gather writes each element once, where a scatter reads and writes it once per contribution, which
 * pays for a few skipped positions (stride 1 with padding: L against L - K + 3).
 */
const SCATTER_MARGIN = 1.25;

/** Every affine scatter of the gradients rewritten as a gather, each rewrite recorded. */
export function gather(start: readonly Expr[], p: Program): PhaseResult {
  const rewrites: Rewrite[] = [];
  const choose = (d: Delta, candidates: readonly string[]): string | undefined => {
    if (candidates.length === 0) return undefined;
    const long = p.sizeOf(d.index);
    const base: Record<string, number> = Object.create(null) as Record<string, number>;
    for (const s of p.sizes) base[s] = s === long ? 256 : 4;
    const sizes = withDerived(p, base);
    const extent = (i: string) => sizes[canonicalSize(i) ?? p.sizeOf(i)] ?? 0;
    const coef = (i: string) => Math.abs(d.form.kind === "affine" ? (d.form.terms.find((t) => t.index === i)?.coef ?? 1) : 1);
    // the longest extent per step of the index (a stride-2 index covers its extent in half the positions)
    const best = [...candidates].sort((a, b) => extent(b) * coef(b) - extent(a) * coef(a) || coef(a) - coef(b) || (a < b ? -1 : 1))[0]!;
    // the gather visits every element of the target for each value of the other indices, the scatter
    // every value of the solved index: where the target is longer (a stride, a pooling window), the
    // gather would test and skip most of what it visits, and the scatter stays
    return extent(d.index) <= SCATTER_MARGIN * extent(best) ? best : undefined;
  };
  let grads = [...start];
  for (let k = 0; k < grads.length; k++) {
    const g = grads[k]!;
    const next = mapBottomUp(
      g,
      (x) => {
        if (x.kind !== "sum") return x;
        let cur: Expr = x;
        // one delta solved per round: a 2-D convolution has one per spatial axis
        for (let n = 0; n < 8; n++) {
          const y = gatherSum(cur, p.sizeOf, choose);
          if (y === undefined) break;
          cur = y;
        }
        if (cur !== x) rewrites.push({ rule: "scatter-to-gather", before: x, after: cur, gradients: [k] });
        return cur;
      },
      p.sizeOf,
    );
    grads[k] = next;
  }
  void holders;
  return { gradients: grads, rewrites };
}
