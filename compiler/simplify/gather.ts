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
 * loop left over the others is then short, and a read out of range is rare. Both forms were timed
 * on conv1d and conv2d (README, "Convolution"): the gather is the faster, so it is the default.
 */
import { canonicalSize, mapBottomUp, type Delta, type Expr } from "../ir/expr.js";
import type { Rewrite } from "../ir/backward.js";
import type { Program } from "../ir/program.js";
import { gatherSum } from "../ir/affine.js";
import { withDerived } from "../ir/sizes.js";
import { holders, type PhaseResult } from "./phases.js";

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
    return [...candidates].sort((a, b) => extent(b) * coef(b) - extent(a) * coef(a) || coef(a) - coef(b) || (a < b ? -1 : 1))[0];
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
