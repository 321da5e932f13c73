/**
 * Derives the fused backward from the naive one. Phases, in order:
 *
 * 1. inline      every intermediate adjoint into the input gradients: one expression per input, in
 *                the upstream gradient and forward values;
 * 2. atoms       forward values rewritten to one basis: a subexpression that is a step's definition
 *                becomes that step (`(var+eps)^-0.5 ⇒ sqrtvar^-1`), and steps that are mere products
 *                are unfolded (`xhat ⇒ xmu*sqrtvar^-1`), so equal things look equal;
 * 3. expand      to a sum of monomials, each reduction over a monomial with invariant factors outside;
 * 4. vanish      each reduction whose expansion through the forward definitions is cheaper (a sum
 *                that cancels to 0, like sum_n (x - mean_n x)) is replaced by that expansion;
 * 5. share       each reduction is rewritten over cached values where an invariant factor allows it
 *                (`sum(g*xmu) ⇒ sqrtvar*sum(g*xhat)`), so reductions shared by several gradients are
 *                computed once and a gradient that is a reduction is that reduction;
 * 6. factor      common factors pulled out of sums of terms;
 * 7. fold        products of forward values folded back into cached steps (`xmu*sqrtvar^-1 ⇒ xhat`).
 *
 * Nothing here knows any layer: every identity comes from the spec's own definitions.
 */
import {
  add,
  call,
  canonicalSize,
  collect,
  isReduction,
  isTranscendental,
  mapBottomUp,
  contains,
  reductionsOf,
  rewrite,
  mul,
  num,
  pow,
  ref,
  refsOf,
  renameFree,
  replaceNode,
  sum,
  treeSize,
  type Expr,
  type Ref,
  type SizeOf,
} from "../ir/expr.js";
import { shapeOf, tensorOf, type Program, type Step } from "../ir/program.js";
import type { Backward, Fused, Phase, Rewrite, Statement } from "../ir/backward.js";
import { evalLeaves, gradKey, leavesOf } from "../ir/evaluate.js";
import { evaluateGradient, interpretForward } from "../ir/interpret.js";
import { prng } from "../ir/random.js";
import { LimitExceeded } from "../limits.js";
import { EXPAND_RULES, monomialExpr, monomialOf, type Monomial } from "./rules.js";
import { runRules, SimplifyLimit } from "./runner.js";
import type { Rule, RuleContext } from "./pattern.js";
import { nameTable } from "../ir/table.js";

/** A forward step seen as a definition `name[indices] = rhs` to fold or unfold. */
interface Definition {
  readonly step: Step;
  /** The right-hand side in the atom basis (monomial steps unfolded). */
  readonly basis: Expr;
  readonly monomial: boolean;
}

function isMonomial(e: Expr): boolean {
  const factor = (f: Expr) =>
    f.kind === "ref" || f.kind === "sym" || f.kind === "num" || (f.kind === "pow" && f.exp.kind === "num" && (f.base.kind === "ref" || f.base.kind === "sym"));
  return e.kind === "mul" ? e.factors.every(factor) : factor(e) && e.kind !== "num" && e.kind !== "sym";
}

/** Binds a definition's left-hand indices so that its ref `pattern` lines up with `actual`. */
function bindings(def: Step, pattern: Expr, actual: Ref): Record<string, string> | undefined {
  const refs = refsOf(pattern).filter((r) => r.name === actual.name && r.space === actual.space);
  for (const r of refs) {
    const b = nameTable<string>();
    let ok = true;
    r.indices.forEach((i, k) => {
      if (def.indices.includes(i)) {
        if (b[i] !== undefined && b[i] !== actual.indices[k]) ok = false;
        b[i] = actual.indices[k]!;
      }
    });
    if (ok && def.indices.every((i) => b[i] !== undefined)) return b;
  }
  return undefined;
}

/** The instances of `def` whose refs line up with refs in `e`, with the indices they bind. */
function instances(def: Definition, rhs: Expr, e: Expr, sizeOf: SizeOf): { binding: Record<string, string>; body: Expr }[] {
  const out: { binding: Record<string, string>; body: Expr }[] = [];
  const seen = new Set<string>();
  for (const r of refsOf(e)) {
    const b = bindings(def.step, rhs, r);
    if (!b) continue;
    const key = def.step.indices.map((i) => b[i]).join(",");
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ binding: b, body: renameFree(rhs, b, sizeOf) });
  }
  return out;
}

export function deriveFused(p: Program, bw: Backward): Fused {
  const ctx: RuleContext = { sizeOf: p.sizeOf };
  const sizeOf = p.sizeOf;
  const phases: Phase[] = [];
  let grads: Expr[];
  const record = (name: string, rewrites: Rewrite[], next: Expr[]) => {
    phases.push({ name, rewrites, gradients: next });
    grads = next;
  };
  /** A simplifier limit hit on the gradient of input `k` in phase `phase`, as a spec limit. */
  const limited = <T>(phase: string, k: number | undefined, f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (!(e instanceof SimplifyLimit)) throw e;
      const which = k === undefined ? "the gradients" : `the gradient of '${p.inputs[k]!.name}'`;
      throw new LimitExceeded(`simplifying ${which} (phase '${phase}'): ${e.message} (the limit)`);
    }
  };
  const apply = (name: string, rules: readonly Rule[], opts: { maxPasses?: number } = {}) => {
    const trace: Rewrite[] = [];
    const next = grads.map((g, k) => {
      const own: Rewrite[] = [];
      const out = limited(name, k, () => runRules(g, rules, ctx, { trace: own, ...opts }));
      trace.push(...own.map((r) => ({ ...r, gradients: [k] })));
      return out;
    });
    record(name, trace, next);
  };
  /** The gradients that hold `node`, for rewrites applied to all of them at once. */
  const holders = (node: Expr) => grads.flatMap((g, k) => (contains(g, (x) => x === node) ? [k] : []));

  // 1. inline
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
  const inlineGrads = (e: Expr): Expr =>
    replaceEach(e, (x) => {
      if (x.kind !== "ref" || x.space !== "grad" || x === bw.upstream || !statements.has(x.name)) return undefined;
      const st = statements.get(x.name)!;
      const m = nameTable<string>();
      st.target.indices.forEach((i, k) => (m[i] = x.indices[k]!));
      return renameFree(resolve(x.name), m, sizeOf);
    }, sizeOf);
  // resolved in the order the statements are computed, each reading only earlier ones, so that
  // resolve() never recurses through a long chain of steps
  for (const name of statements.keys()) resolve(name);
  grads = bw.gradients.map((g) => resolve(g.grad.name));
  // the upstream gradient's indices are the output's declared ones; inlining keeps them as refs
  record("inline", [], grads);

  // 2. atoms: fold non-monomial definitions, unfold monomial ones
  const defs: Definition[] = [];
  for (const s of p.steps) {
    if (s.rhs.kind === "ref" || s.rhs.kind === "num") continue;
    const sameIndices = s.rhs.free.length === s.indices.length && s.indices.every((i) => s.rhs.free.includes(i));
    if (!sameIndices) continue;
    const monomial = isMonomial(s.rhs);
    const basis = monomial ? runRules(s.rhs, [unfoldRule(defs)], ctx) : s.rhs;
    defs.push({ step: s, basis, monomial });
  }
  apply("atoms", [literalFoldRule(defs.filter((d) => !d.monomial)), unfoldRule(defs)]);

  // 3. expand
  apply("expand", EXPAND_RULES);

  // 4. vanish
  {
    const trace: Rewrite[] = [];
    for (let round = 0; round < 20; round++) {
      let changed = false;
      for (const s of reductionsOf(grads)) {
        const better = cheaperExpansion(s, p, ctx);
        if (better === undefined) continue;
        trace.push({ rule: "expand-definitions", before: s, after: better, gradients: holders(s) });
        grads = grads.map((g, k) => limited("vanish", k, () => runRules(replaceNode(g, s, better, sizeOf), EXPAND_RULES, ctx)));
        changed = true;
        break;
      }
      if (!changed) break;
    }
    record("vanish", trace, grads);
  }

  // 5. share: rewrite each reduction over cached values where an invariant factor allows it
  {
    const trace: Rewrite[] = [];
    for (const s of reductionsOf(grads)) {
      if (s.kind !== "sum") continue;
      const pushed = pushIntoReduction(s, defs.filter((d) => d.monomial), sizeOf, (e) => nonzero(e, p));
      if (!pushed) continue;
      const replacement = mul(pushed.reduction, pow(pushed.factor, num(-1)));
      trace.push({ rule: "share-reduction", before: s, after: replacement, gradients: holders(s) });
      grads = grads.map((g) => replaceNode(g, s, replacement, sizeOf));
    }
    record("share", trace, grads);
  }

  // 6. factor
  apply("factor", [FACTOR_RULE]);

  // 7. fold
  const folds = [...defs].filter((d) => d.monomial).sort((a, b) => monomialOf(b.basis).powers.size - monomialOf(a.basis).powers.size || b.step.position - a.step.position);
  // a product folds as a whole before any of its factors alone (xmu/sqrtvar ⇒ xhat, not xmu*ivar)
  apply("fold", [foldRule(folds, sizeOf, "mul"), literalFoldRule(defs.filter((d) => !d.monomial))]);
  apply("fold-powers", [foldRule(folds, sizeOf, "pow")]);

  // 8. regroup: reductions that hold a reduction step's definition are rewritten over that step
  // (sum_j p*sum_f(do*v) ⇒ sum_f do*o, exchanging the sums), then sums over the same indices merge
  const reductionDefs = p.steps.flatMap((st) => reductionDefinition(st) ?? []);
  apply("regroup", [foldReductionRule(reductionDefs)]);
  apply("merge", [MERGE_RULE]);
  apply("merge-factor", [FACTOR_RULE]);

  // 9. outputs: write a gradient through a step's own value where that is cheaper, and as exact
  // in floating point (a - 2 for exp(-u^4) = a - 2 cancels to 0 where exp(-u^4) is 1e-26)
  {
    const trace: Rewrite[] = [];
    const sameNumbers = numericCheck(p, bw);
    const tidy = (e: Expr) =>
      runRules(runRules(runRules(e, EXPAND_RULES, ctx, { maxSize: 20_000 }), [FACTOR_RULE], ctx), [foldRule(folds, sizeOf, "mul"), literalFoldRule(defs.filter((d) => !d.monomial))], ctx);
    grads = grads.map((g, input) => {
      for (let round = 0; round < 4; round++) {
        const best = cheapestThroughOutputs(g, defs, sizeOf, tidy, (e) => sameNumbers(g, e, input));
        if (!best) break;
        trace.push({ rule: best.rule, before: g, after: best.e, gradients: [input] });
        g = best.e;
      }
      return g;
    });
    record("outputs", trace, grads);
  }

  return { gradients: grads, phases };
}

/**
 * Whether two forms of the gradient of input `k` give the same numbers, to 1e-12 of the largest, on
 * small random forward data (positive, then mixed signs). Elements where the first is not finite
 * are skipped.
 */
function numericCheck(p: Program, bw: Backward): (a: Expr, b: Expr, k: number) => boolean {
  const rand = prng(4242);
  const samples = [0, 1].map((trial) => {
    const sizes = nameTable(p.sizes.map((s) => [s, 2 + Math.floor(rand() * 2)]));
    const constants = nameTable(p.constants.map((c) => [c.name, c.value]));
    const inputs = nameTable(
      p.inputs.map((t) => [t.name, Float64Array.from({ length: shapeOf(p, t).reduce((a, s) => a * sizes[s]!, 1) }, () => (trial === 1 && rand() < 0.5 ? -1 : 1) * (0.5 + rand()))]),
    );
    const all = interpretForward(p, inputs, sizes, constants);
    const out = tensorOf(p, p.output);
    const dims = shapeOf(p, out).map((s) => sizes[s]!);
    all.set(gradKey(bw.upstream.name), { data: Float64Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1), dims });
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

/** A step `t[I] = c * sum(m, K)`, with `m` a product of powers and `c` free of `K`. */
interface ReductionDefinition {
  readonly step: Step;
  readonly coefficient: Expr;
  readonly bound: readonly string[];
  readonly body: Monomial;
}

function reductionDefinition(st: Step): ReductionDefinition | undefined {
  const factors = st.rhs.kind === "mul" ? st.rhs.factors : [st.rhs];
  const sums = factors.filter((f) => f.kind === "sum");
  if (sums.length !== 1) return undefined;
  const s = sums[0] as Expr & { kind: "sum" };
  const coefficient = mul(...factors.filter((f) => f !== s));
  if (coefficient.free.length > 0 || !isMonomial(s.body)) return undefined;
  // dividing by the coefficient must not divide by a value (only by numbers and sizes)
  if (refsOf(coefficient).length > 0) return undefined;
  return { step: st, coefficient, bound: s.indices, body: monomialOf(s.body) };
}

/** A reduction as one flat sum of a product: nested sums of products are pulled together. */
function flatReduction(e: Expr & { kind: "sum" }, sizeOf: SizeOf): { bound: string[]; body: Monomial } | undefined {
  let bound = [...e.indices];
  const powers = new Map<Expr, number>();
  let coefficient = 1;
  const absorb = (m: Monomial): boolean => {
    coefficient *= m.coefficient;
    for (const [b, k] of m.powers) {
      if (b.kind === "sum" && k === 1) {
        // rename its bound indices apart from everything collected so far
        const fresh = nameTable<string>();
        b.indices.forEach((i, n) => (fresh[i] = `${canonicalSize(i)}:~r${bound.length + n}`));
        const inner = renameFree(b.body, fresh, sizeOf);
        bound = [...bound, ...Object.values(fresh)];
        if (!isMonomial(inner) && inner.kind !== "mul") return false;
        if (!absorb(monomialOf(inner))) return false;
      } else powers.set(b, (powers.get(b) ?? 0) + k);
    }
    return true;
  };
  if (!absorb(monomialOf(e.body))) return undefined;
  return { bound, body: { coefficient, powers } };
}

/**
 * `sum(r*f, K ∪ L) ⇒ sum(r*t/c, L)` for a step `t[I] = c*sum(f, K)`: the factors of `f`, with
 * `K` mapped onto bound indices of the reduction that `r` does not use, are replaced by `t`.
 */
function foldReductionRule(defs: readonly ReductionDefinition[]): Rule {
  return {
    name: "fold-reduction",
    pattern: "sum(r*f, k, l) ⇒ sum(r*t/c, l)",
    guard: "t[I] = c*sum(f, k) is a step, r does not use k",
    apply: (e, { sizeOf }) => {
      if (e.kind !== "sum") return undefined;
      const flat = flatReduction(e, sizeOf);
      if (!flat) return undefined;
      for (const d of defs) {
        const match = matchFactors(d, flat);
        if (!match) continue;
        const { sigma, rest } = match;
        const t = ref(d.step.name, d.step.indices.map((i) => sigma[i]!));
        const remaining = flat.bound.filter((b) => !d.bound.some((k) => sigma[k] === b));
        const body = mul(monomialExpr({ coefficient: flat.body.coefficient, powers: rest }), t, pow(d.coefficient, num(-1)));
        const out = runRules(sum(body, remaining, sizeOf), EXPAND_RULES, { sizeOf });
        return cost(out) < cost(e) ? out : undefined;
      }
      return undefined;
    },
  };
}

/** Finds an index map sending the definition's factors onto factors of `flat`. */
function matchFactors(d: ReductionDefinition, flat: { bound: string[]; body: Monomial }): { sigma: Record<string, string>; rest: Map<Expr, number> } | undefined {
  const want = [...d.body.powers];
  const have = [...flat.body.powers];
  const used = new Set<number>();
  const search = (k: number, sigma: Record<string, string>): Record<string, string> | undefined => {
    if (k === want.length) return sigma;
    const [wb, wk] = want[k]!;
    for (let h = 0; h < have.length; h++) {
      if (used.has(h)) continue;
      const [hb, hk] = have[h]!;
      if (hk !== wk || wb.kind !== "ref" || hb.kind !== "ref" || wb.name !== hb.name || wb.space !== hb.space) continue;
      const next = { ...sigma };
      let ok = true;
      wb.indices.forEach((i, n) => {
        const j = hb.indices[n]!;
        if (next[i] === undefined) {
          // a bound index of the definition goes to a distinct bound index of the reduction
          if (d.bound.includes(i) && (!flat.bound.includes(j) || Object.values(next).includes(j))) ok = false;
          next[i] = j;
        } else if (next[i] !== j) ok = false;
      });
      if (!ok) continue;
      used.add(h);
      const found = search(k + 1, next);
      if (found) return found;
      used.delete(h);
    }
    return undefined;
  };
  const sigma = search(0, {});
  // every index of the step and every index its sum binds must land on the reduction: a bound index
  // the body does not use (`p = sum(a/z, f)` is F*a/z) would otherwise fold away its factor
  if (!sigma || d.step.indices.some((i) => sigma[i] === undefined) || d.bound.some((i) => sigma[i] === undefined)) return undefined;
  const rest = new Map(flat.body.powers);
  for (const [b, k] of want) {
    // the factor the definition's factor was matched to
    const renamed = renameAll(b, sigma);
    if (rest.get(renamed) !== k) return undefined;
    rest.delete(renamed);
  }
  const boundImages = d.bound.map((k) => sigma[k]!);
  for (const b of rest.keys()) if (boundImages.some((i) => b.free.includes(i))) return undefined;
  return { sigma, rest };
}

function renameAll(e: Expr, sigma: Record<string, string>): Expr {
  return e.kind === "ref" ? ref(e.name, e.indices.map((i) => sigma[i] ?? i), e.space) : e;
}

/**
 * `a*sum(f, i) + b*sum(g, i) ⇒ sum(a*f + b*g, i)` when the sums range over the same sizes and have
 * the same free indices, and `a`, `b` add none: one reduction instead of two.
 */
const MERGE_RULE: Rule = {
  name: "merge-sums",
  pattern: "a*sum(f, i) + b*sum(g, i) ⇒ sum(a*f + b*g, i)",
  guard: "the sums have the same free indices and index sizes; a and b use no other index",
  apply: (e, { sizeOf }) => {
    if (e.kind !== "add") return undefined;
    type Part = { term: Expr; s: Expr & { kind: "sum" }; rest: Expr };
    // each term with each of its sum factors as the one to merge
    const options: Part[][] = e.terms.map((t) => {
      const fs = t.kind === "mul" ? t.factors : [t];
      return fs.filter((f): f is Expr & { kind: "sum" } => f.kind === "sum").map((f) => ({ term: t, s: f, rest: mul(...fs.filter((x) => x !== f)) }));
    });
    const key = (x: Expr & { kind: "sum" }) => `${x.free.join(",")}|${x.indices.map(sizeOf).sort().join(",")}`;
    for (const pa of options.flat()) {
      const fits = (q: Part) => key(q.s) === key(pa.s) && q.rest.free.every((i) => pa.s.free.includes(i));
      if (!fits(pa)) continue;
      const group = options.flatMap((os) => (os.includes(pa) ? [pa] : os.filter(fits).slice(0, 1)));
      if (group.length < 2) continue;
      const fresh = pa.s.indices.map((i, n) => `${canonicalSize(i)}:~m${n}`);
      const bodies = group.map((q) => {
        const sizes = q.s.indices.map(sizeOf);
        const m = nameTable<string>();
        const taken = new Set<number>();
        q.s.indices.forEach((i, n) => {
          const k = pa.s.indices.findIndex((j, jn) => !taken.has(jn) && sizeOf(j) === sizes[n]);
          taken.add(k);
          m[i] = fresh[k]!;
        });
        return mul(q.rest, renameFree(q.s.body, m, sizeOf));
      });
      const merged = sum(add(...bodies), fresh, sizeOf);
      const others = e.terms.filter((t) => !group.some((q) => q.term === t));
      const out = add(merged, ...others);
      return cost(out) < cost(e) ? out : undefined;
    }
    return undefined;
  },
};

/**
 * Candidate rewrites of `g` that bring a step's value in: each subterm `u` on the path from the
 * root of an elementwise definition `t = F(u)` through `+ c`, `* c`, `^-1`, `exp` and `log` is
 * replaced by `F^-1(t)` (`exp(-x) ⇒ 1/s - 1` for `s = 1/(1 + exp(-x))`), and `sech(u)^2` by
 * `1 - tanh(u)^2`, the identity that lets `tanh` steps fold.
 */
function throughOutputs(g: Expr, defs: readonly Definition[], sizeOf: SizeOf): { rule: string; after: Expr }[] {
  const out: { rule: string; after: Expr }[] = [];
  for (const d of defs) {
    if (d.monomial || d.step.rhs.height > 0) continue;
    let cur: Expr = d.step.rhs;
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
  const sech2 = mapBottomUp(
    g,
    (x) => (x.kind === "pow" && x.base.kind === "call" && x.base.fn === "sech" && x.exp.kind === "num" && x.exp.value === 2 ? add(num(1), mul(num(-1), pow(call("tanh", x.base.arg), num(2)))) : x),
    sizeOf,
  );
  if (sech2 !== g) out.push({ rule: "sech-tanh", after: sech2 });
  return out;
}

/** Replaces nodes for which `f` gives a replacement, top-down (replacements are not revisited). */
function replaceEach(e: Expr, f: (x: Expr) => Expr | undefined, sizeOf: SizeOf): Expr {
  return rewrite(e, sizeOf, { before: f });
}

/** `t[J] ⇒ definition of t at J`, for steps whose definition is a product of powers. */
function unfoldRule(defs: readonly Definition[]): Rule {
  return {
    name: "unfold-product",
    pattern: "t[J] ⇒ f(J)",
    guard: "t[I] = f(I) is a step that only multiplies powers of other values",
    apply: (e, { sizeOf }) => {
      if (e.kind !== "ref" || e.space !== "value") return undefined;
      const d = defs.find((x) => x.monomial && x.step.name === e.name);
      if (!d) return undefined;
      const m = nameTable<string>();
      d.step.indices.forEach((i, k) => (m[i] = e.indices[k]!));
      return renameFree(d.basis, m, sizeOf);
    },
  };
}

/** `f(J) ⇒ t[J]` and `f(J)^k ⇒ t[J]^(k/b)` for a step `t[I] = f(I)` (or `= g(I)^b`). */
function literalFoldRule(defs: readonly Definition[]): Rule {
  return {
    name: "fold-definition",
    pattern: "f(J) ⇒ t[J]",
    guard: "t[I] = f(I) is a step; also g^k ⇒ t^(k/b) when t = g^b and k/b is a whole number",
    apply: (e, { sizeOf }) => {
      if (e.kind === "num" || e.kind === "sym" || e.kind === "ref") return undefined;
      for (const d of defs) {
        for (const { binding, body } of instances(d, d.step.rhs, e, sizeOf)) {
          const t = (k: number) => pow(refAt(d.step, binding), num(k));
          if (body === e) return t(1);
          if (e.kind === "pow" && body.kind === "pow" && body.base === e.base && e.exp.kind === "num" && body.exp.kind === "num") {
            const r = e.exp.value / body.exp.value;
            if (Number.isInteger(r)) return t(r);
          }
          if (e.kind === "pow" && body.kind !== "pow" && body === e.base && e.exp.kind === "num") return t(e.exp.value);
        }
      }
      return undefined;
    },
  };
}

/** The step's value at the indices a binding gives its left-hand side. */
function refAt(s: Step, binding: Record<string, string>): Expr {
  return ref(
    s.name,
    s.indices.map((i) => binding[i]!),
  );
}

/**
 * `m ⇒ t^r * m / f^r` where `t[I] = f(I)` is a product of powers and `m` holds `f^r` (r ≥ 1, or
 * r ≤ -1 for a single non-integer power like a square root).
 */
function foldRule(defs: readonly Definition[], sizeOf: SizeOf, at: "mul" | "pow"): Rule {
  return {
    name: "fold-product",
    pattern: "f(J)^r * m ⇒ t[J]^r * m",
    guard: "t[I] = f(I) is a step that multiplies powers, r a whole number",
    apply: (e) => {
      if (e.kind !== at) return undefined;
      const m = monomialOf(e);
      for (const d of defs) {
        for (const { binding, body } of instances(d, d.basis, e, sizeOf)) {
          const f = monomialOf(body);
          let r = Infinity;
          for (const [b, k] of f.powers) {
            const have = m.powers.get(b);
            if (have === undefined || Math.sign(have) !== Math.sign(k)) {
              r = 0;
              break;
            }
            r = Math.min(r, Math.floor(have / k));
          }
          if (!Number.isFinite(r) || r < 1) {
            // a single non-integer power folds for any whole ratio: (v+e)^-0.5 ⇒ sqrtvar^-1
            const [[b, k]] = f.powers.size === 1 ? [...f.powers] : [[undefined, 0] as const];
            const have = b === undefined ? undefined : m.powers.get(b);
            if (b === undefined || Number.isInteger(k) || have === undefined || !Number.isInteger(have / k) || have / k === 0) continue;
            r = have / k;
          }
          const out = new Map(m.powers);
          for (const [b, k] of f.powers) {
            const left = out.get(b)! - r * k;
            if (left === 0) out.delete(b);
            else out.set(b, left);
          }
          const t = refAt(d.step, binding);
          out.set(t, (out.get(t) ?? 0) + r);
          return monomialExpr({ coefficient: m.coefficient / Math.pow(f.coefficient, r), powers: out });
        }
      }
      return undefined;
    },
  };
}

/** Pulls factors common to every term of a sum out of it (sizes also with negative powers). */
const FACTOR_RULE: Rule = {
  name: "factor-common",
  pattern: "a*b + a*c ⇒ a*(b + c)",
  guard: "a divides every term; a size symbol also when its power is negative (clearing a denominator)",
  apply: (e) => {
    if (e.kind !== "add" || e.terms.length < 2) return undefined;
    const ms = e.terms.map(monomialOf);
    const common = new Map<Expr, number>();
    const first = ms[0]!;
    for (const [b, k] of first.powers) {
      const ks = ms.map((m) => m.powers.get(b));
      if (ks.every((x) => x !== undefined && Math.sign(x) === Math.sign(k))) {
        const least = ks.reduce((a, x) => (Math.abs(x!) < Math.abs(a!) ? x : a), k)!;
        common.set(b, least);
      }
    }
    const sizes = new Set<Expr>();
    for (const m of ms) for (const b of m.powers.keys()) if (b.kind === "sym" && b.role === "size" && !common.has(b)) sizes.add(b);
    for (const s of sizes) {
      const least = Math.min(...ms.map((m) => m.powers.get(s) ?? 0));
      if (least < 0) common.set(s, least);
    }
    const negative = ms.every((m) => m.coefficient < 0);
    if (common.size === 0 && !negative) return undefined;
    const c = monomialExpr({ coefficient: negative ? -1 : 1, powers: common });
    const inverse = pow(c, num(-1));
    return mul(c, add(...e.terms.map((t) => mul(t, inverse))));
  },
};

/**
 * Whether a value can never be 0, from its definition alone: sizes, nonzero numbers, reciprocals
 * (`1/sqrt(v + eps)` is 0 only where it is not finite), `exp`, and products of such values.
 */
function nonzero(e: Expr, p: Program): boolean {
  switch (e.kind) {
    case "num":
      return e.value !== 0;
    case "sym":
      return e.role === "size";
    case "pow":
      return (e.exp.kind === "num" && e.exp.value < 0) || nonzero(e.base, p);
    case "call":
      return e.fn === "exp";
    case "mul":
      return e.factors.every((f) => nonzero(f, p));
    case "ref": {
      const st = e.space === "value" ? p.steps.find((t) => t.name === e.name) : undefined;
      return st !== undefined && nonzero(st.rhs, p);
    }
    default:
      return false;
  }
}

/** Size-weighted cost: nodes, with reductions and transcendental functions costing more. */
export function cost(e: Expr): number {
  return treeSize(e) + 10 * collect(e, isReduction).length + 8 * collect(e, isTranscendental).length;
}

/**
 * Expands the forward definitions inside a reduction, up to three levels deep, normalizing after
 * each; returns the cheapest strictly cheaper form found (0 for a sum that cancels), if any.
 */
function cheaperExpansion(s: Expr, p: Program, ctx: RuleContext): Expr | undefined {
  if (s.kind !== "sum") return undefined;
  let best: Expr | undefined;
  let bestCost = cost(s);
  let cur: Expr = s;
  for (let depth = 0; depth < 3; depth++) {
    const next = replaceEach(cur, (x) => {
      if (x.kind !== "ref" || x.space !== "value") return undefined;
      const st = p.steps.find((t) => t.name === x.name);
      if (!st) return undefined;
      const m = nameTable<string>();
      st.indices.forEach((i, k) => (m[i] = x.indices[k]!));
      return renameFree(st.rhs, m, ctx.sizeOf);
    }, ctx.sizeOf);
    if (next === cur) break;
    try {
      cur = runRules(next, EXPAND_RULES, ctx, { maxSize: 20_000 });
    } catch (e) {
      if (e instanceof SimplifyLimit) break;
      throw e;
    }
    const c = cost(cur);
    if (c < bestCost) {
      best = cur;
      bestCost = c;
    }
  }
  return best;
}

/**
 * For a reduction `sum(m, i)` and a product step `t = f`: when the factors of `f` that vary with
 * `i` are all in `m`, multiply the invariant rest `c` of `f` into the body so that it folds:
 * `sum(m, i) = sum(m*c, i) / c` with `m*c` holding `t`. The smallest such `c` wins.
 */
function pushIntoReduction(
  s: Expr & { kind: "sum" },
  defs: readonly Definition[],
  sizeOf: SizeOf,
  nonzero: (e: Expr) => boolean,
): { reduction: Expr; factor: Expr } | undefined {
  const m = monomialOf(s.body);
  let best: { reduction: Expr; factor: Expr; size: number } | undefined;
  for (const d of defs) {
    for (const { body } of instances(d, d.basis, s.body, sizeOf)) {
      const f = monomialOf(body);
      const invariant = new Map<Expr, number>();
      let ok = true;
      for (const [b, k] of f.powers) {
        if (s.indices.some((i) => b.free.includes(i))) {
          if (m.powers.get(b) !== k) ok = false;
        } else invariant.set(b, k);
      }
      // never divide by what the forward did not already divide by (w in w*x*r may be 0)
      if (!ok || invariant.size === 0 || [...invariant].some(([b, k]) => k > 0 && !nonzero(b))) continue;
      const factor = monomialExpr({ coefficient: f.coefficient, powers: invariant });
      if (best && invariant.size >= best.size) continue;
      const folded = foldRule([d], sizeOf, "mul").apply(mul(s.body, factor), { sizeOf });
      if (!folded || !contains(folded, (x) => x.kind === "ref" && x.name === d.step.name)) continue;
      best = { reduction: sum(folded, s.indices, sizeOf), factor, size: invariant.size };
    }
  }
  return best && { reduction: best.reduction, factor: best.factor };
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
  const fold = (e: Expr) => runRules(e, [literalFoldRule([def])], ctx);
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
  return cheapestThroughOutputs(best, [def], sizeOf, tidy, (e) => same(partial, e))?.e ?? best;
}

/**
 * Of the rewrites of `g` through step values (`throughOutputs`), each tidied, the cheapest that is
 * cheaper than `g` and that `accept` confirms numerically, with its rule.
 */
function cheapestThroughOutputs(g: Expr, defs: readonly Definition[], sizeOf: SizeOf, tidy: (e: Expr) => Expr, accept: (e: Expr) => boolean): { e: Expr; rule: string } | undefined {
  let best: { e: Expr; rule: string } | undefined;
  for (const cand of throughOutputs(g, defs, sizeOf)) {
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
