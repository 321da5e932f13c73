/**
 * A spec's forward steps as definitions to fold and unfold, and the rules made from them. The
 * rules of the `atoms` and `fold` phases are not written anywhere: each step `t[I] = f(I)` yields
 * data rules, patterns built from its own definition (`patternOf`):
 *
 * - `unfold-product`    `t[?I] ⇒ f(?I)` for a step that only multiplies powers (`xhat[?n,?d] ⇒
 *                       xmu[?n,?d]*sqrtvar[?d]^-1`), so equal things look equal;
 * - `fold-definition`   `f(?I) ⇒ t[?I]` for any other step, and its powers: `g(?I)^?k ⇒ t[?I]^?r`
 *                       when `t = g^b` and `?r = ?k/b` is whole, `f(?I)^?k ⇒ t[?I]^?k` otherwise;
 * - `fold-inverse`      `A(?I) ⇒ exp(t[?I] - B(?I))` for a step `t[I] = log(A) + B` whose `A` holds a
 *                       reduction: the reduction the forward paid for is read back from the cached
 *                       value (`sum(exp(z[?n,c] - m[?n]), c) ⇒ exp(lse[?n] - m[?n])`), one `exp` per
 *                       element of `t` instead of a pass over the reduced index.
 *
 * Two rules here stay functions, the documented exceptions: `fold-product` folds a product step
 * into a monomial holding a *power* of it (`xmu*sqrtvar^-3 ⇒ xhat*sqrtvar^-2`). That needs exponent
 * arithmetic across the factors (how many whole times `f` divides `m`), which a pattern that matches
 * nodes cannot say. And `fold-definition` of a step holding a `where` (`foldByInstance`): a pattern
 * cannot say a choice's comparison.
 */
import { add, call, contains, ref, refsOf, renameFree, sub, type Expr, type Ref, type SizeOf } from "../ir/expr.js";
import type { Program, Step } from "../ir/program.js";
import { nameTable } from "../ir/table.js";
import { monomialExpr, monomialOf } from "./rules.js";
import { runRules } from "./runner.js";
import { isNumber, patternOf, ruleOf, Unpatternable, wholeRatio, type Pattern, type Rule, type RuleContext } from "./pattern.js";

/** A forward step seen as a definition `name[indices] = rhs` to fold or unfold. */
export interface Definition {
  readonly step: Step;
  /** The right-hand side in the atom basis (monomial steps unfolded). */
  readonly basis: Expr;
  readonly monomial: boolean;
}

export function isMonomial(e: Expr): boolean {
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
export function instances(def: Definition, rhs: Expr, e: Expr, sizeOf: SizeOf): { binding: Record<string, string>; body: Expr }[] {
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

/** The steps that define a value over their own indices, in the atom basis (product steps unfolded). */
export function definitionsOf(p: Program, ctx: RuleContext): Definition[] {
  const defs: Definition[] = [];
  for (const s of p.steps) {
    if (s.rhs.kind === "ref" || s.rhs.kind === "num") continue;
    const sameIndices = s.rhs.free.length === s.indices.length && s.indices.every((i) => s.rhs.free.includes(i));
    if (!sameIndices) continue;
    const monomial = isMonomial(s.rhs);
    const basis = monomial ? runRules(s.rhs, unfoldRules(defs), ctx) : s.rhs;
    defs.push({ step: s, basis, monomial });
  }
  return defs;
}

/** Whether every index of the step is free in its definition, so that a match binds them all. */
function bindsOwnIndices(s: Step): boolean {
  return s.indices.every((i) => s.rhs.free.includes(i));
}

/** The step's value with its own indices as index variables: `t[?n,?d]`. */
function lhsPattern(s: Step): Pattern {
  return { kind: "ref", name: s.name, space: "value", indices: s.indices.map((i) => `?${i}`) };
}

/** `t[?I] ⇒ f(?I)`, one data rule per step that only multiplies powers. */
export function unfoldRules(defs: readonly Definition[]): Rule[] {
  return defs.filter((d) => d.monomial && bindsOwnIndices(d.step)).flatMap((d) => patterned(() => [ruleOf("unfold-product", lhsPattern(d.step), patternOf(d.basis, d.step.indices))]));
}

/** The rules `make` builds, or none for a definition holding a node no pattern can say (`where`). */
function patterned(make: () => Rule[]): Rule[] {
  try {
    return make();
  } catch (e) {
    if (e instanceof Unpatternable) return [];
    throw e;
  }
}

/** `f(?I) ⇒ t[?I]` and the power forms, data rules for each step that is not a product of powers. */
export function foldDefinitionRules(defs: readonly Definition[]): Rule[] {
  return defs.flatMap((d) => {
    const s = d.step;
    // a step that broadcasts (y[n,d] = f(r[d])) cannot bind its own indices from its definition
    if (!bindsOwnIndices(s)) return [];
    const rules = patterned(() => foldRulesOf(s));
    return rules.length > 0 || s.rhs.kind === "sym" ? rules : [foldByInstance(d)];
  });
}

/**
 * `f(I) ⇒ t[I]` for a step whose definition no pattern can say: it holds a `where`, whose comparison
 * is not a child (node.ts). The second exception to rules as data: the definition is renamed to the
 * indices of the refs in a node that line up with its own (`instances`), and, equal expressions
 * being one node (build.ts), it folds where the renamed definition is that very node.
 */
function foldByInstance(d: Definition): Rule {
  const s = d.step;
  return {
    name: "fold-definition",
    pattern: `f(?I) ⇒ ${s.name}[?I]`,
    guard: `f is the definition of ${s.name}, a choice no pattern can say`,
    apply: (e, ctx) => {
      if (e.kind !== s.rhs.kind) return undefined;
      for (const { binding, body } of instances(d, s.rhs, e, ctx.sizeOf)) if (body === e) return refAt(s, binding);
      return undefined;
    },
  };
}

function foldRulesOf(s: Step): Rule[] {
    const t = lhsPattern(s);
    // the exponent's variables are named apart from the step's index variables
    const fresh = (x: string): string => (s.indices.includes(x) ? fresh(`${x}'`) : x);
    const kv = `?${fresh("k")}`;
    const rv = `?${fresh("r")}`;
    const k: Pattern = { kind: "var", name: kv };
    const rules: Rule[] = [];
    // a step that is a bare constant folds only in its powers, as before: eps stays eps
    if (s.rhs.kind !== "sym") rules.push(ruleOf("fold-definition", patternOf(s.rhs, s.indices), t));
    if (s.rhs.kind === "pow" && s.rhs.exp.kind === "num") {
      const b = s.rhs.exp.value;
      rules.push(ruleOf("fold-definition", { kind: "pow", base: patternOf(s.rhs.base, s.indices), exp: k }, { kind: "pow", base: t, exp: { kind: "var", name: rv } }, wholeRatio(kv, b, rv)));
    } else if (s.rhs.kind !== "pow") {
      rules.push(ruleOf("fold-definition", { kind: "pow", base: patternOf(s.rhs, s.indices), exp: k }, { kind: "pow", base: t, exp: k }, isNumber(kv)));
    }
    return rules;
}

/** `A(?I) ⇒ exp(t[?I] - B(?I))`, one data rule for each step `t[I] = log(A) + B` whose `A` holds a reduction over all of `I`. */
export function foldInverseRules(p: Program): Rule[] {
  return p.steps.flatMap((s) => {
    const terms = s.rhs.kind === "add" ? s.rhs.terms : [s.rhs];
    const k = terms.findIndex((t) => t.kind === "call" && t.fn === "log");
    if (k < 0) return [];
    const a = (terms[k] as Extract<Expr, { kind: "call" }>).arg;
    // A must bind every index of the step, and hold a reduction: otherwise reading it back costs more
    if (!s.indices.every((i) => a.free.includes(i)) || !a.free.every((i) => s.indices.includes(i))) return [];
    if (!contains(a, (x) => x.kind === "sum")) return [];
    const rest = add(...terms.filter((_, j) => j !== k));
    const solved = call("exp", sub(ref(s.name, s.indices), rest));
    return patterned(() => [ruleOf("fold-inverse", patternOf(a, s.indices), patternOf(solved, s.indices))]);
  });
}

/** Product steps in the order `fold-product` tries them: a product folds as a whole before any of its factors alone (xmu/sqrtvar ⇒ xhat, not xmu*ivar). */
export function foldOrder(defs: readonly Definition[]): Definition[] {
  return [...defs].filter((d) => d.monomial).sort((a, b) => monomialOf(b.basis).powers.size - monomialOf(a.basis).powers.size || b.step.position - a.step.position);
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
export function foldRule(defs: readonly Definition[], sizeOf: SizeOf, at: "mul" | "pow"): Rule {
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
