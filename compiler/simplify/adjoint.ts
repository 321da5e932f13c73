/**
 * The closed form of one intermediate adjoint of the naive backward (`dz[n,o,i,j]`, the gradient of
 * a step that later gradients read through affine or gather indices): the same phases as the input
 * gradients (`fused.ts`), run on a view of the backward whose one gradient is that adjoint. The
 * scheduler computes it once per element, as a local, where it would otherwise be a stored
 * temporary (`schedule/scatter.ts`).
 */
import type { Expr } from "../ir/expr.js";
import type { Backward } from "../ir/backward.js";
import { isDifferentiable, type Program } from "../ir/program.js";
import { deriveFused } from "./fused.js";

/** The adjoint `name` of `bw`, every adjoint it reads inlined and simplified, over its statement's target indices. */
export function adjointClosedForm(p: Program, bw: Backward, name: string): Expr | undefined {
  const st = bw.blocks.flatMap((b) => b.statements).find((s) => s.target.name === name);
  const k = p.inputs.findIndex(isDifferentiable);
  if (!st || k < 0) return undefined;
  // the adjoint takes the place of one input's gradient: the phases see one expression to simplify
  const view: Backward = { ...bw, gradients: [{ input: p.inputs[k]!, grad: st.target }] };
  return deriveFused(p, view).gradients[k];
}
