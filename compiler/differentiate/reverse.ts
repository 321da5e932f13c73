/**
 * Reverse-mode differentiation, node by node: the staged ("naive") backward.
 *
 * For each step `y[I] = f(...)`, visited in reverse order, and each tensor `t` it reads, the block
 * of `y` computes the contribution of `y` to the adjoint of `t`:
 *
 *     dt_k[D] = sum over (free indices not in D) of  dy[I] * ∂f/∂t[J]
 *
 * where `t[J]` is an occurrence of `t` in `f` and `D` its declared indices. The driver owns all
 * index handling, so no derivative rule ever sees an index:
 * - the scalar partial `∂f/∂t[J]` comes from the CAS (cas.ts), with reductions inside `f` replaced
 *   by placeholders and differentiated through here (`d sum_b body / d t[J] = sum over the bound
 *   indices J lacks of d body / d t[J]`);
 * - renaming `J` to `D` turns the scatter `dt[J] += ...` into a gather `dt[D] = ...`;
 * - indices free in the contribution but absent from `D` were broadcast in the forward step, so
 *   the adjoint is summed over them;
 * - a tensor read by several steps gets one contribution per step (`dxmu1`, `dxmu2`), added up
 *   before its own block.
 */
import {
  ZERO,
  add,
  collect,
  contains,
  mul,
  ref,
  refsOf,
  renameFree,
  rewrite,
  sum,
  sym,
  type Expr,
  type Ref,
  type SizeOf,
} from "../ir/expr.js";
import type { Program, Step, TensorDecl } from "../ir/program.js";
import type { Backward, Block, LocalPartial, Statement } from "../ir/backward.js";
import { scalarPartial, UnverifiedDerivative } from "./cas.js";
import { nameTable } from "../ir/table.js";

export function gradRef(t: TensorDecl, part?: number): Ref {
  return ref(part === undefined ? t.name : `${t.name}#${part}`, t.indices, "grad");
}

/**
 * A step whose gradient would have to pass through `max(...)`. The spec language gives `max` no
 * derivative: it is meant as a shift under `stop(...)`, as in a numerically safe softmax.
 */
export class NoGradient extends Error {
  constructor(
    message: string,
    readonly step: Step,
  ) {
    super(message);
  }
}

/** The refs of `e` that gradients flow to: those not under `stop(...)`. */
export function liveRefsOf(e: Expr): Ref[] {
  const live = new Set(collect(e, (x) => x.kind === "ref", { skip: (x) => x.kind === "call" && x.fn === "stop" }));
  return refsOf(e).filter((r) => live.has(r));
}

/** The steps whose value reaches the output through something other than `stop(...)`. */
export function activeSteps(p: Program): Step[] {
  const needed = new Set([p.output]);
  for (const s of [...p.steps].reverse()) {
    if (!needed.has(s.name)) continue;
    for (const r of liveRefsOf(s.rhs)) needed.add(r.name);
  }
  return p.steps.filter((s) => needed.has(s.name));
}

/**
 * How a local partial is written before it enters the backward: the driver passes simplify/'s
 * `throughOwnValue` (`s*(1-s)` for a sigmoid step `s`, as a hand derivation writes it). It is
 * passed in so that this stage never imports a later one.
 */
export type PartialForm = (partial: Expr, step: Step, sizeOf: SizeOf) => Expr;

export function differentiate(p: Program, partialForm: PartialForm): Backward {
  const active = activeSteps(p).reverse();
  const decls = [...p.inputs, ...p.steps];
  // consumers of each tensor, in the order the backward visits them
  const consumers = new Map<string, Step[]>();
  for (const s of active)
    for (const name of new Set(liveRefsOf(s.rhs).map((r) => r.name))) consumers.set(name, [...(consumers.get(name) ?? []), s]);
  const contributionRef = (t: TensorDecl, consumer: Step): Ref => {
    const cs = consumers.get(t.name)!;
    return cs.length > 1 ? gradRef(t, cs.indexOf(consumer) + 1) : gradRef(t);
  };
  const gather = (t: TensorDecl): Statement | undefined => {
    const cs = consumers.get(t.name) ?? [];
    if (cs.length === 1) return undefined;
    return { target: gradRef(t), expr: add(...cs.map((c) => contributionRef(t, c))), source: t.name };
  };

  const output = active[0]!;
  const upstream = gradRef(output);
  const blocks: Block[] = [];
  for (const step of active) {
    const statements: Statement[] = [];
    const g = step === output ? undefined : gather(step);
    if (g) statements.push(g);
    const dy = gradRef(step);
    const live = liveRefsOf(step.rhs);
    const read = new Set(live.map((r) => r.name));
    for (const t of decls.filter((d) => read.has(d.name))) {
      const occurrences = live.filter((r) => r.name === t.name);
      const partials: LocalPartial[] = [];
      const terms: Expr[] = [];
      for (const occ of occurrences) {
        let found;
        try {
          found = partialOf(step.rhs, occ, p.sizeOf);
        } catch (e) {
          if (e instanceof NoGradientHere || e instanceof UnverifiedDerivative) throw new NoGradient(e.message, step);
          throw e;
        }
        // written through the step's own value where that is cheaper (s*(1-s) for a sigmoid)
        const partial = partialForm(found.expr, step, p.sizeOf);
        const fallback = found.fallback;
        partials.push({ occurrence: occ, partial, fallback });
        terms.push(gatherInto(mul(dy, partial), occ, t, p.sizeOf));
      }
      statements.push({ target: contributionRef(t, step), expr: add(...terms), source: t.name, partials });
    }
    blocks.push({ step, statements });
  }
  const final: Statement[] = [];
  for (const input of p.inputs) {
    const cs = consumers.get(input.name) ?? [];
    if (cs.length === 0) final.push({ target: gradRef(input), expr: ZERO, source: input.name });
    else {
      const gs = gather(input);
      if (gs) final.push(gs);
    }
  }
  if (final.length) blocks.push({ step: undefined, statements: final });
  return { upstream, blocks, gradients: p.inputs.map((input) => ({ input, grad: gradRef(input) })) };
}

/**
 * Turns the scatter `dt[J] += c` into a gather over `t`'s declared indices `D`: renames `J` to `D`
 * (simultaneously, moving other indices out of the way) and sums over every other free index.
 */
export function gatherInto(c: Expr, occ: Ref, t: TensorDecl, sizeOf: SizeOf): Expr {
  const mapping = nameTable<string>();
  occ.indices.forEach((j, k) => (mapping[j] = t.indices[k]!));
  const taken = new Set([...c.free, ...t.indices]);
  const rest: string[] = [];
  for (const i of c.free) {
    if (i in mapping) continue;
    let target = i;
    if (t.indices.includes(i)) {
      while (taken.has(target)) target += "'";
      taken.add(target);
    }
    mapping[i] = target;
    rest.push(target);
  }
  return sum(renameFree(c, mapping, sizeOf), rest, sizeOf);
}

/**
 * ∂e/∂occ for an expression that may hold reductions. Maximal reductions become placeholders so
 * that the CAS sees a flat expression; the chain rule goes through each reduction that holds the
 * occurrence, summing over its bound indices that the occurrence does not carry.
 */
class NoGradientHere extends Error {}

export function partialOf(e: Expr, occ: Ref, sizeOf: SizeOf): { expr: Expr; fallback: boolean } {
  if (!contains(e, (x) => x === occ)) return { expr: ZERO, fallback: false };
  const sums: Expr[] = [];
  const placeholders: Expr[] = [];
  const flat = rewrite(e, sizeOf, {
    before: (x) => {
      // stop(...) and max(...) are constants to the CAS; a max that the occurrence reaches is an error
      const opaque = (x.kind === "call" && x.fn === "stop") || x.kind === "max";
      if (x.kind === "max" && liveRefsOf(x.body).includes(occ))
        throw new NoGradientHere(`the gradient of '${occ.name}' would pass through max(...), which has none; wrap the max in stop(...) if it only shifts values`);
      if (x.kind !== "sum" && !opaque) return undefined;
      sums.push(x);
      placeholders.push(sym(`%s${sums.length - 1}`, "const"));
      return placeholders[sums.length - 1]!;
    },
  });
  let fallback = false;
  const terms: Expr[] = [];
  if (contains(flat, (x) => x === occ)) {
    const d = scalarPartial(flat, occ);
    fallback ||= d.source === "rules";
    terms.push(d.expr);
  }
  sums.forEach((s, k) => {
    if (s.kind !== "sum" || !contains(s.body, (x) => x === occ)) return;
    const outer = scalarPartial(flat, placeholders[k]!);
    const inner = partialOf(s.body, occ, sizeOf);
    fallback ||= outer.source === "rules" || inner.fallback;
    const over = s.indices.filter((i) => !occ.indices.includes(i));
    terms.push(mul(outer.expr, sum(inner.expr, over, sizeOf)));
  });
  const restore = (x: Expr) => {
    const k = placeholders.indexOf(x);
    return k >= 0 ? sums[k] : undefined;
  };
  return { expr: rewrite(add(...terms), sizeOf, { before: restore }), fallback };
}
