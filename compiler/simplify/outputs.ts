/**
 * Phase `outputs`: a gradient is written through a step's own value where that is cheaper and as
 * exact in floating point (`exp(-x)/(1 + exp(-x))^2 ⇒ s*(1 - s)` for `s = 1/(1 + exp(-x))`). It
 * inverts each elementwise definition along its path, tidies every candidate, and keeps the
 * cheapest one that gives the same numbers on random data: a search checked numerically, not a
 * rule that fires where it matches, so it is a phase of its own. `throughOwnValue` does the same
 * for one local partial, for the naive backward.
 */
import { add, call, contains, mapBottomUp, mul, num, pow, ref, refsOf, renameFree, replaceNode, type Expr, type SizeOf } from "../ir/expr.js";
import type { Backward, Rewrite } from "../ir/backward.js";
import { evalLeaves, gradKey, leavesOf } from "../ir/evaluate.js";
import { evaluateGradient, interpretForward, randomInputs } from "../ir/interpret.js";
import { shapeOf, tensorOf, type Program, type Step } from "../ir/program.js";
import { prng } from "../ir/random.js";
import { nameTable } from "../ir/table.js";
import { randomSizes } from "../ir/sizes.js";
import { cost } from "./cost.js";
import { foldDefinitionRules, foldRule, instances, isMonomial, type Definition } from "./definitions.js";
import { FACTOR_RULE } from "./factor.js";
import { EXPAND_RULES } from "./rules.js";
import { runRules, SimplifyLimit } from "./runner.js";
import { rule, type Rule, type RuleContext } from "./pattern.js";
import type { PhaseResult } from "./phases.js";

/** The identity that lets `tanh` steps fold; a candidate like any other, kept only if cheaper. */
export const SECH_TANH = rule("sech-tanh", "sech(?u)^2", "1 - tanh(?u)^2");

/**
 * Functions written through `exp`, so that a definition by one of them can be inverted along its
 * path like any other: a sigmoid step's partial comes out of the CAS as `exp(-u)/(1 + exp(-u))^2`,
 * and only the inverse of `s = (1 + exp(-u))^-1` (`exp(-u) ⇒ 1/s - 1`) turns it into `s*(1 - s)`.
 * Used for the local partial of the naive backward (`throughOwnValue`), which the fused gradients
 * then inherit; the phase `outputs` does not use it: there a lone `exp(-u) ⇒ 1/s - 1` left beside
 * the literal form elsewhere (`s^2*(1/s - 1)`) cancels where s is near 1, and the fused gradient
 * then differs from the naive one by more than rounding (a fuzzed batchnorm with a sigmoid output).
 */
export const EXP_FORMS: readonly Rule[] = [rule("sigmoid-exp", "sigmoid(?u)", "(1 + exp(-?u))^-1"), rule("softplus-exp", "softplus(?u)", "log(1 + exp(?u))")];

/** Rewrites each gradient through step values while that is cheaper and gives the same numbers. */
export function outputs(start: readonly Expr[], defs: readonly Definition[], folds: readonly Definition[], p: Program, bw: Backward): PhaseResult {
  const sizeOf = p.sizeOf;
  const ctx: RuleContext = { sizeOf };
  const rewrites: Rewrite[] = [];
  const sameNumbers = numericCheck(p, bw);
  const tidy = (e: Expr) =>
    runRules(runRules(runRules(e, EXPAND_RULES, ctx, { maxSize: 20_000 }), [FACTOR_RULE], ctx), [foldRule(folds, sizeOf, "mul"), ...foldDefinitionRules(defs.filter((d) => !d.monomial))], ctx);
  const gradients = start.map((g, input) => {
    for (let round = 0; round < 4; round++) {
      const best = cheapestThroughOutputs(g, defs, sizeOf, tidy, (e) => sameNumbers(g, e, input), [], foldsTanh([...defs, ...folds]));
      if (!best) break;
      rewrites.push({ rule: best.rule, before: g, after: best.e, gradients: [input] });
      g = best.e;
    }
    return g;
  });
  return { gradients, rewrites };
}

/**
 * Whether two forms of the gradient of input `k` give the same numbers, to 1e-12 of the largest, on
 * small random forward data (positive, then mixed signs). Elements where the first is not finite
 * are skipped.
 */
export function numericCheck(p: Program, bw: Backward): (a: Expr, b: Expr, k: number) => boolean {
  const rand = prng(4242);
  const samples = [0, 1].map((trial) => {
    const sizes = randomSizes(p, rand, 2, 3);
    const constants = nameTable(p.constants.map((c) => [c.name, c.value]));
    const inputs = randomInputs(p, sizes, rand, () => (trial === 1 && rand() < 0.5 ? -1 : 1) * (0.5 + rand()));
    const all = interpretForward(p, inputs, sizes, constants);
    for (const u of bw.upstreams) {
      const dims = shapeOf(p, tensorOf(p, u.output)).map((s) => sizes[s]!);
      all.set(gradKey(u.grad.name), { data: Float64Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1), dims });
    }
    return { all, sizes, constants };
  });
  return (a, b, k) =>
    samples.every(({ all, sizes, constants }) => {
      const x = evaluateGradient(p, a, k, all, sizes, constants);
      const y = evaluateGradient(p, b, k, all, sizes, constants);
      let scale = 1e-300;
      for (const v of x) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
      return x.every((v, i) => !Number.isFinite(v) || Math.abs(v - y[i]!) <= 1e-12 * scale);
    });
}

/**
 * Candidate rewrites of `g` that bring a step's value in: each subterm `u` on the path from the
 * root of an elementwise definition `t = F(u)` through `+ c`, `* c`, `^-1`, `exp` and `log` is
 * replaced by `F^-1(t)` (`exp(-x) ⇒ 1/s - 1` for `s = 1/(1 + exp(-x))`), and `sech(u)^2` by
 * `1 - tanh(u)^2`, the identity that lets `tanh` steps fold.
 */
function throughOutputs(g: Expr, defs: readonly Definition[], sizeOf: SizeOf, forms: readonly Rule[]): { rule: string; after: Expr }[] {
  const out: { rule: string; after: Expr }[] = [];
  for (const d of defs) {
    if (d.monomial || d.step.rhs.height > 0) continue;
    // the definition with sigmoid and softplus written through exp, whose path can be inverted
    let cur: Expr = runRules(d.step.rhs, forms, { sizeOf });
    let inverse: Expr = ref(d.step.name, d.step.indices);
    for (let depth = 0; depth < 8; depth++) {
      const live = (x: Expr) => refsOf(x).length > 0;
      if (cur.kind === "add" || cur.kind === "mul") {
        const parts = cur.kind === "add" ? cur.terms : cur.factors;
        const varying = parts.filter(live);
        if (varying.length !== 1) break;
        const rest = parts.filter((x) => !live(x));
        inverse = cur.kind === "add" ? add(inverse, mul(num(-1), add(...rest))) : mul(inverse, pow(mul(...rest), num(-1)));
        cur = varying[0]!;
      } else if (cur.kind === "pow" && cur.exp.kind === "num" && cur.exp.value === -1) {
        inverse = pow(inverse, num(-1));
        cur = cur.base;
      } else if (cur.kind === "call" && (cur.fn === "exp" || cur.fn === "log")) {
        inverse = call(cur.fn === "exp" ? "log" : "exp", inverse);
        cur = cur.arg;
      } else break;
      if (cur.kind === "ref") break;
      for (const { binding, body } of instances(d, cur, g, sizeOf)) {
        if (!contains(g, (x) => x === body)) continue;
        out.push({ rule: "invert-definition", after: replaceNode(g, body, renameFree(inverse, binding, sizeOf), sizeOf) });
      }
    }
  }
  const sech2 = mapBottomUp(g, (x) => SECH_TANH.apply(x, { sizeOf }) ?? x, sizeOf);
  if (sech2 !== g) out.push({ rule: "sech-tanh", after: sech2 });
  return out;
}

/**
 * A local partial derivative of an elementwise step, written through the step's own value where
 * that is cheaper and gives the same numbers: `exp(-x)/(1 + exp(-x))^2 ⇒ s*(1 - s)` for
 * `s = 1/(1 + exp(-x))`. The naive backward uses it, as a hand derivation would; the literal form
 * overflows to inf/inf where |x| > 709. Values are compared at random points of the leaves, with
 * the step's value computed from its definition.
 */
export function throughOwnValue(partial: Expr, step: Step, sizeOf: SizeOf): Expr {
  if (step.rhs.height > 0 || partial.height > 0 || isMonomial(step.rhs)) return partial;
  const def: Definition = { step, basis: step.rhs, monomial: false };
  const ctx: RuleContext = { sizeOf };
  const fold = (e: Expr) => runRules(e, foldDefinitionRules([def]), ctx);
  const tidy = (e: Expr) => fold(runRules(runRules(e, EXPAND_RULES, ctx, { maxSize: 5_000 }), [FACTOR_RULE], ctx));
  const self = ref(step.name, step.indices);
  const leaves = [...new Set([...leavesOf(step.rhs), ...leavesOf(partial)])].filter((r) => r !== self);
  const rand = prng(partial.hash ^ step.rhs.hash);
  const points = Array.from({ length: 8 }, (_, k) => {
    const m = new Map<Expr, number>(leaves.map((l) => [l, (k % 2 ? -1 : 1) * (0.3 + 2 * rand())]));
    m.set(self, evalLeaves(step.rhs, m));
    return m;
  });
  const same = (a: Expr, b: Expr) =>
    points.every((m) => {
      const x = evalLeaves(a, m);
      const y = evalLeaves(b, m);
      return !Number.isFinite(x) || Math.abs(x - y) <= 1e-12 * Math.max(1, Math.abs(x));
    });
  let best = fold(partial);
  if (!same(partial, best)) best = partial;
  return cheapestThroughOutputs(best, [def], sizeOf, tidy, (e) => same(partial, e), EXP_FORMS, foldsTanh([def]))?.e ?? best;
}

/**
 * Whether a definition is a `tanh` call, up to constant terms and factors (`t = tanh(u)`,
 * `t = 2*tanh(u) - 1`): only such a step folds the `tanh(u)` that `sech-tanh` brings in.
 */
function foldsTanh(defs: readonly Definition[]): boolean {
  const constant = (x: Expr) => refsOf(x).length === 0;
  const tanhAtRoot = (x: Expr): boolean => {
    if (x.kind === "call") return x.fn === "tanh";
    const parts = x.kind === "add" ? x.terms : x.kind === "mul" ? x.factors : undefined;
    const varying = parts?.filter((y) => !constant(y));
    return varying?.length === 1 && tanhAtRoot(varying[0]!);
  };
  return defs.some((d) => tanhAtRoot(d.step.rhs) || tanhAtRoot(d.basis));
}

/**
 * Of the rewrites of `g` through step values (`throughOutputs`), each tidied, the cheapest that is
 * cheaper than `g` and that `accept` confirms numerically, with its rule.
 */
function cheapestThroughOutputs(
  g: Expr,
  defs: readonly Definition[],
  sizeOf: SizeOf,
  tidy: (e: Expr) => Expr,
  accept: (e: Expr) => boolean,
  forms: readonly Rule[],
  tanhFolds: boolean,
): { e: Expr; rule: string } | undefined {
  let best: { e: Expr; rule: string } | undefined;
  for (const cand of throughOutputs(g, defs, sizeOf, forms)) {
    // a `sech-tanh` form is kept only where no tanh call is left (below): where no definition can
    // fold one, it is not tidied at all (in a large gradient the expansion alone can take a second)
    if (cand.rule === "sech-tanh" && !tanhFolds) continue;
    let e: Expr;
    try {
      e = tidy(cand.after);
    } catch (err) {
      if (err instanceof SimplifyLimit) continue;
      throw err;
    }
    // 1 - tanh(u)^2 cancels where |u| is large: only worth it when tanh(u) is a cached step
    if (cand.rule === "sech-tanh" && contains(e, (x) => x.kind === "call" && x.fn === "tanh")) continue;
    if (cost(e) < cost(best?.e ?? g) && accept(e)) best = { e, rule: cand.rule };
  }
  return best;
}
