/**
 * Shared by the rule tests: a small spec to read expressions in (inputs x[n,d], y[n,d], g[d], s and
 * the constant c, with the steps a test adds), `expectRewrite` in spec syntax, and a check at random
 * points that a rewrite keeps the value.
 */
import { expect } from "vitest";
import { checkSpec } from "../../compiler/parse/check.js";
import { print, replaceNode, sizeResolver, type Expr } from "../../compiler/ir/expr.js";
import type { Program } from "../../compiler/ir/program.js";
import { evaluate } from "../../compiler/ir/evaluate.js";
import { prng } from "../../compiler/ir/random.js";
import { runRules } from "../../compiler/simplify/runner.js";
import type { Rule } from "../../compiler/simplify/pattern.js";

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
