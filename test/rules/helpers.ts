/**
 * Shared by the rule tests: a small spec to read expressions in (inputs x[n,d], y[n,d], g[d], s and
 * the constant c, with the steps a test adds), `expectRewrite` in spec syntax, a check at random
 * points that a rewrite keeps the value, and the fixtures more than one rule's file uses (the
 * normalisation steps the rules from the steps are made of, a GRU cell, the property test of the
 * expand rules).
 */
import { expect, it } from "vitest";
import fc from "fast-check";
import { checkSpec } from "../../compiler/parse/check.js";
import { print, replaceNode, sizeResolver, type Expr } from "../../compiler/ir/expr.js";
import type { Program } from "../../compiler/ir/program.js";
import { evaluate } from "../../compiler/ir/evaluate.js";
import { prng } from "../../compiler/ir/random.js";
import { runRules } from "../../compiler/simplify/runner.js";
import type { Rule } from "../../compiler/simplify/pattern.js";
import { definitionsOf } from "../../compiler/simplify/definitions.js";

export const letters = { n: "N", m: "N", d: "D", e: "D" };
export const sizeOf = sizeResolver(letters);
export const ctx = { sizeOf };

/** A program over the test inputs with `steps`, then `r<lhs> = text` as its last step. */
export function programWith(text: string, lhs = "[d]", steps: readonly string[] = []): Program {
  return checkSpec({ name: "t", indices: letters, inputs: ["x[n,d]", "y[n,d]", "g[d]", "s"], constants: { c: 2, eps: 1e-5 }, steps: [...steps, `r${lhs} = ${text}`], output: "r" });
}

/** Reads one right-hand side in spec syntax (after the given steps). */
export function expr(text: string, lhs = "[d]", steps: readonly string[] = []): Expr {
  return programWith(text, lhs, steps).steps.at(-1)!.rhs;
}

/** Runs `rules` to their fixpoint on `from` and expects `to`, both in spec syntax; returns the rule names that fired. */
export function expectRewrite(rules: readonly Rule[], from: string, to: string, lhs = "[d]", steps: readonly string[] = []): string[] {
  const trace: { rule: string; before: Expr; after: Expr }[] = [];
  const e = expr(from, lhs, steps);
  const out = runRules(e, rules, ctx, { trace });
  expect(print(out)).toBe(print(expr(to, lhs, steps)));
  expect(out).toBe(expr(to, lhs, steps));
  const p = programWith(from, lhs, steps);
  for (const t of trace) for (const seed of [7, 8, 9]) expect(valuesAgree(t.before, t.after, seed, p)).toBe(true);
  expectReplays(e, trace, out);
  return trace.map((t) => t.rule);
}

/**
 * Expects the trace to replay the way `explain` lists it and test/explain.test.ts replays it: each
 * rewrite, in order, replaces a node of the expression as it stands (none is a no-op), and the
 * last leaves `out`.
 */
export function expectReplays(from: Expr, trace: readonly { rule: string; before: Expr; after: Expr }[], out: Expr): void {
  let cur = from;
  for (const [k, t] of trace.entries()) {
    const next = replaceNode(cur, t.before, t.after, sizeOf);
    expect(next, `rewrite ${k} (${t.rule}) of ${print(t.before)} in ${print(cur)}`).not.toBe(cur);
    cur = next;
  }
  expect(print(cur)).toBe(print(out));
  expect(cur).toBe(out);
}

/** Expects no rule of `rules` to rewrite `from`. */
export function expectNoRewrite(rules: readonly Rule[], from: string, lhs = "[d]", steps: readonly string[] = []): void {
  const e = expr(from, lhs, steps);
  expect(print(runRules(e, rules, ctx))).toBe(print(e));
}

/**
 * Whether `a` and `b` agree at a random point (random sizes 1-4, inputs in [0.5, 1.5), c = 2); the
 * steps of `p`, if given, take the values their definitions give.
 */
export function valuesAgree(a: Expr, b: Expr, seed: number, p?: Program): boolean {
  const rand = prng(seed);
  const sizes: Record<string, number> = { N: 1 + Math.floor(rand() * 4), D: 1 + Math.floor(rand() * 3) };
  const cells = new Map<string, number>();
  const env = {
    ref: (r: { name: string }, at: readonly number[]): number => {
      const st = p?.steps.find((t) => t.name === r.name);
      if (st) return evaluate(st.rhs, env, new Map(st.indices.map((i, k) => [i, at[k]!] as const)));
      const k = `${r.name}[${at.join(",")}]`;
      if (!cells.has(k)) cells.set(k, 0.5 + rand());
      return cells.get(k)!;
    },
    sym: (n: string) => (n === "c" ? 2 : n === "eps" ? 1e-5 : sizes[n]!),
    extent: (i: string) => sizes[sizeOf(i)]!,
  };
  const free = [...new Set([...a.free, ...b.free])];
  const binding = new Map(free.map((i) => [i, Math.floor(rand() * sizes[sizeOf(i)]!)] as const));
  const va = evaluate(a, env, binding);
  const vb = evaluate(b, env, binding);
  return Math.abs(va - vb) <= 1e-12 * (1 + Math.abs(va));
}

/** The steps of a normalisation over n, the rules from the steps are made of (unfold-product, fold-definition, fold-product). */
export const normSteps = [
  "mu[d] = sum(x[n,d], n)/N",
  "xmu[n,d] = x[n,d] - mu[d]",
  "var[d] = sum(xmu[n,d]^2, n)/N",
  "sqrtvar[d] = sqrt(var[d] + eps)",
  "ivar[d] = 1/sqrtvar[d]",
  "xhat[n,d] = xmu[n,d]*ivar[d]",
];
/** The definitions of `normSteps` (the result step `r` left out). */
export const normDefs = definitionsOf(programWith("x[n,d]", "[n,d]", normSteps), ctx).filter((d) => d.step.name !== "r");

/** Steps with a centred value (xmu) and a product step over it (xhat), the passes vanish and share work on. */
export const centredSteps = ["mu[d] = sum(x[n,d], n)/N", "xmu[n,d] = x[n,d] - mu[d]", "sqrtvar[d] = sqrt(g[d]^2 + eps)", "xhat[n,d] = xmu[n,d]/sqrtvar[d]"];

/** A GRU cell written as people write it: every pre-activation and every gate its own step. */
export const GRU = {
  name: "gru_cell",
  indices: { b: "B", i: "I", k: "K", j: "K" },
  inputs: ["x[b,i]", "h[b,j]", "wr[i,k]", "ur[j,k]", "wz[i,k]", "uz[j,k]", "wn[i,k]", "un[j,k]"],
  steps: [
    "ar[b,k] = sum(x[b,i] * wr[i,k], i) + sum(h[b,j] * ur[j,k], j)",
    "r[b,k] = sigmoid(ar[b,k])",
    "az[b,k] = sum(x[b,i] * wz[i,k], i) + sum(h[b,j] * uz[j,k], j)",
    "z[b,k] = sigmoid(az[b,k])",
    "hn[b,k] = sum(h[b,j] * un[j,k], j)",
    "an[b,k] = sum(x[b,i] * wn[i,k], i) + r[b,k] * hn[b,k]",
    "n[b,k] = tanh(an[b,k])",
    "hnew[b,k] = (1 - z[b,k]) * n[b,k] + z[b,k] * h[b,k]",
  ],
  output: "hnew",
};

/** The test every expand rule has: it keeps the value at random points and is idempotent, on sums of products of sums. */
export function itKeepsValueAndIsIdempotent(rule: Rule): void {
  const bodies = ["x[n,d]*g[d]", "x[n,d] + y[n,d]*s", "(x[n,d] - g[d])*(y[n,d] + c)", "g[d]*s + x[n,d]^2", "exp(g[d])*x[n,d]*(1 + y[n,d])"];
  it(`${rule.name} keeps the value at random points and is idempotent`, () => {
    fc.assert(
      fc.property(fc.constantFrom(...bodies), fc.constantFrom(...bodies), fc.integer(), (a, b, seed) => {
        const e = expr(`sum(${a}, n) * (${b}) + g[d]*sum(${b}, n)`, "[n,d]");
        const once = runRules(e, [rule], ctx);
        expect(valuesAgree(e, once, seed)).toBe(true);
        expect(runRules(once, [rule], ctx)).toBe(once);
      }),
      { numRuns: 30 },
    );
  });
}
