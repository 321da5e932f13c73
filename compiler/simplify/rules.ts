/**
 * Simplification rules as data: each is one named rewrite, pattern ⇒ replacement, with its guard,
 * and a small function that applies it at one node (or returns undefined). The runner applies a
 * rule list bottom-up to a fixpoint within an iteration and size limit, and records every rewrite
 * so a derivation can be printed and replayed.
 */
import {
  add,
  mul,
  num,
  pow,
  sum,
  sym,
  rewrite,
  treeSize,
  type Expr,
  type SizeOf,
} from "../ir/expr.js";
import type { Rewrite } from "../ir/backward.js";
import { MAX_SIMPLIFY_NODES } from "../limits.js";

export interface RuleContext {
  readonly sizeOf: SizeOf;
}

export interface Rule {
  readonly name: string;
  /** `pattern ⇒ replacement`, in the spec language. */
  readonly pattern: string;
  /** When the rule applies, if not always. */
  readonly guard?: string;
  readonly apply: (e: Expr, ctx: RuleContext) => Expr | undefined;
}

export class SimplifyLimit extends Error {}


const invariantIn = (e: Expr, indices: readonly string[]) => !indices.some((i) => e.free.includes(i));

/** Phase "expand": towards a sum of monomials, with every reduction over a monomial. */
export const EXPAND_RULES: readonly Rule[] = [
  {
    name: "distribute",
    pattern: "a*(b + c) ⇒ a*b + a*c",
    apply: (e) => {
      if (e.kind !== "mul") return undefined;
      const k = e.factors.findIndex((f) => f.kind === "add");
      if (k < 0) return undefined;
      const others = e.factors.filter((_, j) => j !== k);
      const s = e.factors[k]!;
      return s.kind === "add" ? add(...s.terms.map((t) => mul(...others, t))) : undefined;
    },
  },
  {
    name: "sum-linear",
    pattern: "sum(a + b, i) ⇒ sum(a, i) + sum(b, i)",
    apply: (e, { sizeOf }) => (e.kind === "sum" && e.body.kind === "add" ? add(...e.body.terms.map((t) => sum(t, e.indices, sizeOf))) : undefined),
  },
  {
    name: "sum-factor",
    pattern: "sum(c*f, i) ⇒ c*sum(f, i)",
    guard: "i is not free in c",
    apply: (e, { sizeOf }) => {
      if (e.kind !== "sum" || e.body.kind !== "mul") return undefined;
      const out = e.body.factors.filter((f) => invariantIn(f, e.indices));
      if (out.length === 0) return undefined;
      const inside = e.body.factors.filter((f) => !invariantIn(f, e.indices));
      return mul(...out, sum(mul(...inside), e.indices, sizeOf));
    },
  },
  {
    name: "sum-invariant",
    pattern: "sum(c, i) ⇒ size(i)*c",
    guard: "i is not free in c",
    apply: (e, { sizeOf }) => {
      if (e.kind !== "sum") return undefined;
      const unused = e.indices.filter((i) => !e.body.free.includes(i));
      if (unused.length === 0) return undefined;
      const used = e.indices.filter((i) => e.body.free.includes(i));
      return mul(...unused.map((i) => sym(sizeOf(i), "size")), sum(e.body, used, sizeOf));
    },
  },
];

export interface RunOptions {
  /** Passes over the expression before giving up. */
  readonly maxPasses?: number;
  /** Largest tree (in nodes) a rewrite may produce. */
  readonly maxSize?: number;
  /** Every rewrite applied is appended here. */
  readonly trace?: Rewrite[];
}

/** Applies `rules` bottom-up, first match per node, until nothing changes. */
export function runRules(e: Expr, rules: readonly Rule[], ctx: RuleContext, opts: RunOptions = {}): Expr {
  const maxPasses = opts.maxPasses ?? 200;
  const maxSize = opts.maxSize ?? MAX_SIMPLIFY_NODES;
  let cur = e;
  for (let pass = 0; pass < maxPasses; pass++) {
    const next = onePass(cur, rules, ctx, opts.trace);
    if (next === cur) return cur;
    if (treeSize(next) > maxSize) throw new SimplifyLimit(`simplification grew an expression past ${maxSize} nodes`);
    cur = next;
  }
  throw new SimplifyLimit(`simplification did not reach a fixpoint in ${maxPasses} passes`);
}

function onePass(e: Expr, rules: readonly Rule[], ctx: RuleContext, trace: Rewrite[] | undefined): Expr {
  return rewrite(e, ctx.sizeOf, {
    after: (y) => {
      for (const r of rules) {
        const z = r.apply(y, ctx);
        if (z !== undefined && z !== y) {
          trace?.push({ rule: r.name, before: y, after: z });
          return z;
        }
      }
      return y;
    },
  });
}

/** A monomial as coefficient and base -> numeric exponent (bases in canonical order). */
export interface Monomial {
  readonly coefficient: number;
  readonly powers: ReadonlyMap<Expr, number>;
}

/** Splits a term into a monomial; non-numeric exponents stay inside their base. */
export function monomialOf(e: Expr): Monomial {
  const powers = new Map<Expr, number>();
  let coefficient = 1;
  const factors = e.kind === "mul" ? e.factors : [e];
  for (const f of factors) {
    if (f.kind === "num") coefficient *= f.value;
    else if (f.kind === "pow" && f.exp.kind === "num") powers.set(f.base, (powers.get(f.base) ?? 0) + f.exp.value);
    else powers.set(f, (powers.get(f) ?? 0) + 1);
  }
  return { coefficient, powers };
}

export function monomialExpr(m: Monomial): Expr {
  return mul(num(m.coefficient), ...[...m.powers].map(([b, k]) => pow(b, num(k))));
}
