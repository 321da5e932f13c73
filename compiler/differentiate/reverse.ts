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
 *   before its own block; an output that later steps also read adds its upstream gradient too;
 * - choices, kinks and reductions are hidden from the CAS behind placeholders and differentiated
 *   here: `where` sends the gradient to the branch it chose, `max(body, i)` to the elements that
 *   attain it (split evenly among ties), a function of rules.ts's `OWN_RULE_FUNCTIONS` through its
 *   table entry (`relu'(u) = [u > 0]`, `abs'(u) = sign(u)`);
 * - inputs declared `int` or `nograd` get no gradient, and steps that no differentiable input
 *   reaches get no block.
 */
import {
  ONE,
  ZERO,
  add,
  collect,
  contains,
  mul,
  num,
  pow,
  ref,
  refsOf,
  renameFree,
  rewrite,
  sum,
  sym,
  where,
  type Comparison,
  type Expr,
  type Ref,
  type SizeOf,
} from "../ir/expr.js";
import { isDifferentiable, stepOf, type Program, type Step, type TensorDecl } from "../ir/program.js";
import type { Backward, Block, LocalPartial, Statement } from "../ir/backward.js";
import { scalarPartial, UnverifiedDerivative } from "./cas.js";
import { functionDerivative, OWN_RULE_FUNCTIONS } from "./rules.js";
import { nameTable } from "../ir/table.js";
import { isAffineRead, isAffineReadBody } from "../ir/affine.js";

export function gradRef(t: TensorDecl, part?: number): Ref {
  return ref(part === undefined ? t.name : `${t.name}#${part}`, t.indices, "grad");
}

/** A step whose local derivative neither the CAS nor the compiler's own rules could confirm. */
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

/**
 * The steps that need a gradient: their value reaches an output through something other than
 * `stop(...)`, and a differentiable input reaches them (a step of `nograd` inputs alone needs none).
 */
export function activeSteps(p: Program): Step[] {
  const needed = new Set(p.outputs);
  for (const s of [...p.steps].reverse()) {
    if (!needed.has(s.name)) continue;
    for (const r of liveRefsOf(s.rhs)) needed.add(r.name);
  }
  const varies = new Set(p.inputs.filter(isDifferentiable).map((t) => t.name));
  for (const s of p.steps) if (liveRefsOf(s.rhs).some((r) => varies.has(r.name))) varies.add(s.name);
  return p.steps.filter((s) => needed.has(s.name) && varies.has(s.name));
}

/**
 * How a local partial is written before it enters the backward: the driver passes simplify/'s
 * `throughOwnValue` (`s*(1-s)` for a sigmoid step `s`, as a hand derivation writes it). It is
 * passed in so that this stage never imports a later one.
 */
export type PartialForm = (partial: Expr, step: Step, sizeOf: SizeOf) => Expr;

export function differentiate(p: Program, partialForm: PartialForm): Backward {
  const active = activeSteps(p).reverse();
  const activeNames = new Set(active.map((s) => s.name));
  // only differentiable inputs and active steps receive gradients
  const decls = [...p.inputs.filter(isDifferentiable), ...p.steps.filter((s) => activeNames.has(s.name))];
  const receives = new Set(decls.map((d) => d.name));
  // consumers of each tensor, in the order the backward visits them
  const consumers = new Map<string, Step[]>();
  for (const s of active)
    for (const name of new Set(liveRefsOf(s.rhs).map((r) => r.name))) if (receives.has(name)) consumers.set(name, [...(consumers.get(name) ?? []), s]);
  const outputs = p.outputs.filter((o) => activeNames.has(o));
  /** How many arrays add up to a tensor's gradient: one per consumer, one more for an output's upstream. */
  const parts = (t: TensorDecl) => (consumers.get(t.name)?.length ?? 0) + (outputs.includes(t.name) ? 1 : 0);
  const contributionRef = (t: TensorDecl, consumer: Step): Ref => {
    const cs = consumers.get(t.name)!;
    return parts(t) > 1 ? gradRef(t, cs.indexOf(consumer) + 1) : gradRef(t);
  };
  /** The upstream gradient of an output: its whole gradient, or part `#0` when later steps read it too. */
  const upstreamRef = (t: TensorDecl): Ref => (parts(t) > 1 ? gradRef(t, 0) : gradRef(t));
  const gather = (t: TensorDecl): Statement | undefined => {
    if (parts(t) <= 1) return undefined;
    const cs = consumers.get(t.name) ?? [];
    const terms = [...(outputs.includes(t.name) ? [upstreamRef(t)] : []), ...cs.map((c) => contributionRef(t, c))];
    return { target: gradRef(t), expr: add(...terms), source: t.name };
  };

  const upstreams = outputs.map((o) => ({ output: o, grad: upstreamRef(stepOf(p, o)!) }));
  const blocks: Block[] = [];
  for (const step of active) {
    const statements: Statement[] = [];
    const g = gather(step);
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
  const differentiable = p.inputs.filter(isDifferentiable);
  for (const input of differentiable) {
    const cs = consumers.get(input.name) ?? [];
    if (cs.length === 0) final.push({ target: gradRef(input), expr: ZERO, source: input.name });
    else {
      const gs = gather(input);
      if (gs) final.push(gs);
    }
  }
  if (final.length) blocks.push({ step: undefined, statements: final });
  // with no active output (no differentiable input reaches one) the first output's gradient is
  // still the upstream, read by nothing
  const upstream = upstreams[0]?.grad ?? gradRef(stepOf(p, p.output)!);
  return { upstream, upstreams, blocks, gradients: differentiable.map((input) => ({ input, grad: gradRef(input) })) };
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
 * ∂s/∂occ for a node hidden from the CAS, by the chain rule through it:
 * - `sum(body, I)`: the sum over the bound indices the occurrence does not carry of ∂body/∂occ;
 * - `max(body, I)`: the same, of ∂body/∂occ where the body attains the maximum, divided by the
 *   number of elements that attain it (ties share evenly); `min` is `-max(-body)`;
 * - `where(c, a, b)`: `where(c, ∂a/∂occ, ∂b/∂occ)`, the gradient whole to the chosen branch;
 * - `stop(u)`: 0; `f(u)` of the own rule table: `f'(u) * ∂u/∂occ`.
 */
function localPartial(s: Expr, occ: Ref, sizeOf: SizeOf): { expr: Expr; fallback: boolean } {
  switch (s.kind) {
    case "sum": {
      const inner = partialOf(s.body, occ, sizeOf);
      const over = s.indices.filter((i) => !occ.indices.includes(i));
      return { expr: sum(inner.expr, over, sizeOf), fallback: inner.fallback };
    }
    case "max": {
      if (!sameEverywhere(s.body))
        throw new NoGradientHere(
          `the gradient through max(...) or min(...) goes to the elements equal to the extreme, so its body must compute the same bits wherever it is written: write a body that adds or multiplies more than two terms as a step of its own (t[...] = ...), and take the max of t`,
        );
      const inner = partialOf(s.body, occ, sizeOf);
      const over = s.indices.filter((i) => !occ.indices.includes(i));
      const attains = (x: Expr) => chosenOrZero("==", s.body, s, x);
      const ties = sum(attains(ONE), s.indices, sizeOf);
      return { expr: mul(sum(attains(inner.expr), over, sizeOf), pow(ties, num(-1))), fallback: inner.fallback };
    }
    case "where": {
      const a = partialOf(s.then, occ, sizeOf);
      const b = partialOf(s.else, occ, sizeOf);
      const expr = b.expr === ZERO ? chosenOrZero(s.op, s.left, s.right, a.expr) : where(s.op, s.left, s.right, a.expr, b.expr);
      return { expr, fallback: a.fallback || b.fallback };
    }
    case "call": {
      if (s.fn === "stop") return { expr: ZERO, fallback: false };
      const inner = partialOf(s.arg, occ, sizeOf);
      return { expr: mul(functionDerivative(s.fn, s.arg), inner.expr), fallback: inner.fallback };
    }
    default:
      throw new Error(`localPartial(): ${s.kind} is not hidden from the CAS`);
  }
}

/**
 * `where(left op right, x, 0)` with the deltas of `x` (an affine or gathered read's position) taken
 * out in front: `delta(h, 2*i + p)*where(..., r, 0)`, equal since a delta is 0 or 1. A delta inside a
 * choice is hidden from the lowering, which then visits every element for every position (a max
 * pool's gradient over all windows); in front, it is a read or a scatter at that position.
 */
function chosenOrZero(op: Comparison, left: Expr, right: Expr, x: Expr): Expr {
  const factors = x.kind === "mul" ? x.factors : [x];
  const deltas = factors.filter((f) => f.kind === "delta");
  if (deltas.length === 0) return where(op, left, right, x, ZERO);
  return mul(...deltas, where(op, left, right, mul(...factors.filter((f) => f.kind !== "delta")), ZERO));
}

/**
 * Whether `e` evaluates to the same bits however its operands are ordered: every sum and product
 * has at most two operands (IEEE addition and multiplication commute exactly; with three, the
 * order the factory sorts them in, which depends on index names, changes the rounding). The
 * tie test `body == max(body, i)` compares the body renamed into the gradient's indices with the
 * body inside the max, so it must hold for both.
 */
function sameEverywhere(e: Expr): boolean {
  // an affine read (`x[n,c,2*i + p]`, a product of deltas and one ref under a sum) is one element: exact
  if (isAffineRead(e)) return true;
  return !contains(e, (x) => !isAffineRead(x) && ((x.kind === "add" && x.terms.length > 2) || (x.kind === "mul" && x.factors.length > 2 && !isAffineReadBody(x))));
}

/**
 * ∂e/∂occ for an expression that may hold reductions. Maximal reductions become placeholders so
 * that the CAS sees a flat expression; the chain rule goes through each reduction that holds the
 * occurrence, summing over its bound indices that the occurrence does not carry.
 */
class NoGradientHere extends Error {}

/** Nodes the CAS never sees: reductions, choices, `stop` and the functions of our own rule table. */
function hiddenFromCas(x: Expr): boolean {
  return x.kind === "sum" || x.kind === "max" || x.kind === "where" || (x.kind === "call" && (x.fn === "stop" || OWN_RULE_FUNCTIONS.has(x.fn)));
}

export function partialOf(e: Expr, occ: Ref, sizeOf: SizeOf): { expr: Expr; fallback: boolean } {
  if (!contains(e, (x) => x === occ)) return { expr: ZERO, fallback: false };
  const sums: Expr[] = [];
  const placeholders: Expr[] = [];
  const flat = rewrite(e, sizeOf, {
    before: (x) => {
      if (!hiddenFromCas(x)) return undefined;
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
    if (!contains(s, (x) => x === occ)) return;
    const inner = localPartial(s, occ, sizeOf);
    if (inner.expr === ZERO) return;
    const outer = scalarPartial(flat, placeholders[k]!);
    fallback ||= outer.source === "rules" || inner.fallback;
    terms.push(mul(outer.expr, inner.expr));
  });
  const restore = (x: Expr) => {
    const k = placeholders.indexOf(x);
    return k >= 0 ? sums[k] : undefined;
  };
  return { expr: rewrite(add(...terms), sizeOf, { before: restore }), fallback };
}
