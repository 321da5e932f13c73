/**
 * The backward pass as data: the naive backward that differentiate/ builds (one block of statements
 * per forward step, in reverse), and the fused gradients that simplify/ derives from it, with the
 * rewrites of each phase. Later stages, the checks and the interpreter read both.
 */
import { refsOf, type Expr, type Ref } from "./expr.js";
import type { Step, TensorDecl } from "./program.js";

export interface LocalPartial {
  /** The element of the source tensor, as it occurs in the step. */
  readonly occurrence: Ref;
  /** ∂(step's right-hand side)/∂occurrence. */
  readonly partial: Expr;
  /** Whether any scalar partial behind it came from the fallback rules instead of the CAS. */
  readonly fallback: boolean;
}

/** One assignment of the backward pass: `target[target.indices] = expr`. */
export interface Statement {
  readonly target: Ref;
  readonly expr: Expr;
  /** What the statement computes, for comments: the source tensor and its partials. */
  readonly source?: string;
  readonly partials?: readonly LocalPartial[];
}

export interface Block {
  /** The forward step this block reverses; undefined for the final block gathering input gradients. */
  readonly step: Step | undefined;
  readonly statements: readonly Statement[];
}

export interface Backward {
  /** The upstream gradient of the first output, `dout[...]` (`upstreams[0]`'s when it has one). */
  readonly upstream: Ref;
  /**
   * The upstream gradient of each output that needs one, in the spec's output order: the `dout`
   * the caller passes for it (CONTRACT §4.4). An output that later steps also read gets its
   * gradient as this plus their contributions.
   */
  readonly upstreams: readonly { readonly output: string; readonly grad: Ref }[];
  readonly blocks: readonly Block[];
  /** Gradient of each differentiable input (not `int`, not `nograd`), in input order, as the ref holding it. */
  readonly gradients: readonly { readonly input: TensorDecl; readonly grad: Ref }[];
}

export interface Rewrite {
  readonly rule: string;
  readonly before: Expr;
  readonly after: Expr;
  /** The input gradients (by input position) the rewrite acted on, when known. */
  readonly gradients?: readonly number[];
}

export interface Phase {
  readonly name: string;
  readonly rewrites: readonly Rewrite[];
  /** The gradients after this phase, in input order. */
  readonly gradients: readonly Expr[];
}

export interface Fused {
  /** Final gradient of each input, in input order, over the declared indices of the input. */
  readonly gradients: readonly Expr[];
  readonly phases: readonly Phase[];
}

/** The targets of the statements that the gradients of the inputs named in `inputs` are computed from, directly or through others. */
export function statementsRead(bw: Backward, inputs: readonly string[]): Set<string> {
  const byTarget = new Map(bw.blocks.flatMap((b) => b.statements.map((s) => [s.target.name, s] as const)));
  const needed = new Set<string>();
  const stack = bw.gradients.filter((g) => inputs.includes(g.input.name)).map((g) => g.grad.name);
  while (stack.length) {
    const name = stack.pop()!;
    if (needed.has(name)) continue;
    needed.add(name);
    const s = byTarget.get(name);
    if (s) for (const r of refsOf(s.expr)) if (r.space === "grad" && byTarget.has(r.name)) stack.push(r.name);
  }
  return needed;
}
