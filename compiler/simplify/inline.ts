/**
 * Phase `inline`: the naive backward is a list of statements, one array per intermediate adjoint.
 * Nothing can be fused across arrays, so every intermediate adjoint is substituted into the input
 * gradients first: one expression per input, in the upstream gradient and forward values. It makes
 * no rewrite of its own (it records none); the phases after it rewrite these expressions.
 */
import { num, renameFree, rewrite, type Expr, type SizeOf } from "../ir/expr.js";
import type { Backward, Statement } from "../ir/backward.js";
import { nameTable } from "../ir/table.js";

/** The gradient of each input with every intermediate adjoint substituted, in input order. */
export function inlineGradients(bw: Backward, inputs: readonly { readonly name: string }[], sizeOf: SizeOf): Expr[] {
  const statements = new Map<string, Statement>();
  for (const b of bw.blocks) for (const s of b.statements) statements.set(s.target.name, s);
  const resolved = new Map<string, Expr>();
  const resolve = (name: string): Expr => {
    const hit = resolved.get(name);
    if (hit) return hit;
    const st = statements.get(name)!;
    const e = inlineGrads(st.expr);
    resolved.set(name, e);
    return e;
  };
  // top-down: a substituted adjoint is already inlined, its children are not visited again
  const inlineGrads = (e: Expr): Expr =>
    rewrite(e, sizeOf, {
      before: (x) => {
        if (x.kind !== "ref" || x.space !== "grad" || x === bw.upstream || !statements.has(x.name)) return undefined;
        const st = statements.get(x.name)!;
        const m = nameTable<string>();
        st.target.indices.forEach((i, k) => (m[i] = x.indices[k]!));
        return renameFree(resolve(x.name), m, sizeOf);
      },
    });
  // resolved in the order the statements are computed, each reading only earlier ones, so that
  // resolve() never recurses through a long chain of steps
  for (const name of statements.keys()) resolve(name);
  // the upstream gradient's indices are the output's declared ones; inlining keeps them as refs.
  // an input without a gradient (int, nograd) has 0 here, and no kernel returns it
  return inputs.map((t) => {
    const g = bw.gradients.find((x) => x.input.name === t.name);
    return g ? resolve(g.grad.name) : num(0);
  });
}
