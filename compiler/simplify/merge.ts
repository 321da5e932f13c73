/**
 * `merge-sums`, the rule of the phase `merge`: a function rule, the documented exception, because
 * it merges any number of terms whose sums range over index *sizes* that agree (renaming each
 * sum's bound indices onto one fresh set), and keeps the result only if it is cheaper: a pattern
 * binds nodes, not a renaming between two sums' bound indices.
 */
import { add, canonicalSize, mul, renameFree, sum, type Expr } from "../ir/expr.js";
import { nameTable } from "../ir/table.js";
import { cost } from "./cost.js";
import type { Rule } from "./pattern.js";

/**
 * `a*sum(f, i) + b*sum(g, i) ⇒ sum(a*f + b*g, i)` when the sums range over the same sizes and have
 * the same free indices, and `a`, `b` add none: one reduction instead of two.
 */
export const MERGE_RULE: Rule = {
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
