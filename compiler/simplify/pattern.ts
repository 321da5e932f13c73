/**
 * Rewrite rules as data: `rule(name, lhs, rhs, ...guards)` with `lhs` and `rhs` written in the
 * spec's own expression syntax (parsed by `parse/expression.ts` in pattern mode), a matcher and an
 * instantiator. The pattern is the code: nothing else says what a pattern rule does.
 *
 * Pattern language:
 * - `?x` where a value may stand is an expression variable; it matches any node, and a variable
 *   used twice must match the same node (nodes are hash-consed, so that is `===`).
 * - `?i` among the index arguments of `sum(...)` is an index variable: it binds a list of the
 *   sum's bound indices. `sum(?f, ?i)` binds all of them; `sum(?f, ?i, ?k)` splits them (below).
 * - numbers match equal numbers; `f(?x)` matches a call of the same function (`sqrt(?x)` is
 *   `?x^0.5`, as in a spec); `?b^?e` matches a power; `-?x` is `-1*?x` and `?a/?b` is `?a*?b^-1`.
 * - `size(?i)`, in a replacement only, is the product of the size symbols of the indices `?i` holds.
 * - `x[?n,?d]` matches an element of the value `x`, each `?n` binding one index. Rules built from a
 *   spec's steps (`definitions.ts`, through `patternOf`) also hold constants, sizes, and reductions
 *   over fixed (canonical) bound indices, which match only themselves.
 *
 * Matching `+` and `*`, which are n-ary and commutative in the IR (a pattern `?a + ?b + ?c` is one
 * `add` of three operands), against an `add`/`mul` node of the same kind:
 * 1. every operand pattern that is not a bare variable matches a distinct operand of the node,
 *    tried in the node's (canonical) order, with backtracking;
 * 2. the operands left over are split among the bare variables, in the pattern's order: a variable
 *    that an elementwise guard directs (`notFree("?i", "?c")` with `?i` bound) takes exactly the
 *    operands that pass the guard, and at least one; every other variable but the last takes one
 *    operand, each in turn; the last takes all the rest, as their sum or product (0 or 1 if none).
 * A pattern `?c*?f` so never matches a node that is not a product, and `?b + ?c` on `x + y + z` binds
 * `?b = x, ?c = y + z` first. Index variables of a sum are split the same way (an empty rest is a
 * sum over no indices, which is its body). The first match, in this order, that passes every guard
 * is rewritten.
 */
import { FUNCTIONS, add, assertNever, call, maxOver, mul, num, pow, ref, sum, sym, type Expr, type Fn, type SizeOf } from "../ir/expr.js";
import { parseExpression, type Ast } from "../parse/expression.js";

export interface RuleContext {
  readonly sizeOf: SizeOf;
}

/**
 * One named rewrite. A pattern rule (`rule(...)` below) carries its `lhs` and `rhs` and its `apply`
 * is derived from them; a function rule (the documented exceptions, each saying why a pattern
 * cannot say it) has only `apply`, and its `pattern` and `guard` describe it.
 */
export interface Rule {
  readonly name: string;
  /** `pattern ⇒ replacement`, in the spec language. */
  readonly pattern: string;
  /** When the rule applies, if not always. */
  readonly guard?: string;
  readonly lhs?: Pattern;
  readonly rhs?: Pattern;
  readonly apply: (e: Expr, ctx: RuleContext) => Expr | undefined;
}

export type Pattern =
  | { readonly kind: "var"; readonly name: string }
  | { readonly kind: "num"; readonly value: number }
  | { readonly kind: "add"; readonly terms: readonly Pattern[] }
  | { readonly kind: "mul"; readonly factors: readonly Pattern[] }
  | { readonly kind: "pow"; readonly base: Pattern; readonly exp: Pattern }
  | { readonly kind: "call"; readonly fn: Fn; readonly arg: Pattern }
  | { readonly kind: "sum" | "max"; readonly body: Pattern; readonly indices: readonly string[] }
  | { readonly kind: "size"; readonly indices: string }
  | { readonly kind: "ref"; readonly name: string; readonly space: "value" | "grad"; readonly indices: readonly string[] }
  | { readonly kind: "sym"; readonly name: string; readonly role: "const" | "size" };

/** What a match binds: expression variables to nodes, index variables to lists of indices. */
export interface Bindings {
  readonly exprs: ReadonlyMap<string, Expr>;
  readonly indices: ReadonlyMap<string, readonly string[]>;
}

/**
 * A named condition on a match. `test` sees the whole match; `element`, when given, says whether
 * one operand (or one index) may go to the split variable `v`, given the other bindings, and is
 * only asked when the guard holds of a split exactly when it holds of each element.
 */
export interface Guard {
  readonly text: string;
  /** Variables the guard binds for the replacement (`wholeRatio` binds the ratio it computed). */
  readonly binds?: readonly string[];
  readonly extend?: (b: Bindings) => ReadonlyMap<string, Expr>;
  /** `at.after()` builds the replacement, for a guard on what the rewrite gives (`notCostlier`). */
  readonly test: (b: Bindings, ctx: RuleContext, at: Site) => boolean;
  readonly element?: (v: string, b: Bindings, ctx: RuleContext) => ((x: Expr | string) => boolean) | undefined;
}

export class PatternError extends Error {}

/** A node `patternOf` cannot write as a pattern (`where`, `delta`): no rule is made from it. */
export class Unpatternable extends Error {}

/** Where a guard is asked: the node matched, and its replacement (built on demand). */
export interface Site {
  readonly before: Expr;
  readonly after: () => Expr;
}

/** Whether an index of a pattern is a variable (`?n`) rather than a fixed index name. */
export const isVariable = (i: string): boolean => i.startsWith("?");

/**
 * A node as a pattern that matches exactly it, with the free indices named in `vars` turned into
 * index variables (`xmu[n,d]*ivar[d]` with n, d ⇒ `xmu[?n,?d]*ivar[?d]`).
 */
export function patternOf(e: Expr, vars: readonly string[]): Pattern {
  const idx = (i: string) => (vars.includes(i) ? `?${i}` : i);
  const go = (x: Expr): Pattern => {
    switch (x.kind) {
      case "num":
        return { kind: "num", value: x.value };
      case "sym":
        return { kind: "sym", name: x.name, role: x.role };
      case "ref":
        return { kind: "ref", name: x.name, space: x.space, indices: x.indices.map(idx) };
      case "add":
        return { kind: "add", terms: x.terms.map(go) };
      case "mul":
        return { kind: "mul", factors: x.factors.map(go) };
      case "pow":
        return { kind: "pow", base: go(x.base), exp: go(x.exp) };
      case "call":
        return { kind: "call", fn: x.fn, arg: go(x.arg) };
      case "sum":
      case "max":
        return { kind: x.kind, body: go(x.body), indices: x.indices };
      case "where":
      case "delta":
        // a choice's comparison and a gather's form are not children: no pattern reads them
        throw new Unpatternable(`a ${x.kind} node has no pattern`);
      case "stored":
        // built by the scheduler, after simplification: never in a definition
        throw new Unpatternable("a stored(...) node has no pattern");
      default:
        return assertNever(x, "node");
    }
  };
  return go(e);
}

// ---------------------------------------------------------------------------------------------
// Reading patterns

/** Parses a pattern in the spec's syntax with `?` variables. */
export function parsePattern(text: string): Pattern {
  return fromAst(parseExpression(text, { pattern: true }), text);
}

function fromAst(a: Ast, text: string): Pattern {
  switch (a.type) {
    case "num":
      return { kind: "num", value: a.value };
    case "neg": {
      const x = fromAst(a.arg, text);
      return x.kind === "num" ? { kind: "num", value: -x.value } : times([{ kind: "num", value: -1 }, x]);
    }
    case "binary": {
      const l = fromAst(a.left, text);
      const r = fromAst(a.right, text);
      switch (a.op) {
        case "+":
          return plus([l, r]);
        case "-":
          return plus([l, times([{ kind: "num", value: -1 }, r])]);
        case "*":
          return times([l, r]);
        case "/":
          return times([l, { kind: "pow", base: r, exp: { kind: "num", value: -1 } }]);
        case "^":
          return { kind: "pow", base: l, exp: r };
      }
      throw new PatternError(`unknown operator in pattern '${text}'`);
    }
    case "name":
      if (a.indices !== undefined) {
        const idx = a.indices.map((i) => {
          if (!i.name.startsWith("?")) throw new PatternError(`pattern '${text}': the indices of ${a.name} must be ?variables`);
          return i.name;
        });
        return { kind: "ref", name: a.name, space: "value", indices: idx };
      }
      if (!a.name.startsWith("?")) throw new PatternError(`pattern '${text}': only ?variables and values with indices may be named, found '${a.name}'`);
      return { kind: "var", name: a.name };
    case "compare":
      throw new PatternError(`pattern '${text}': a comparison cannot stand in a pattern`);
    case "call": {
      if (a.fn === "sum" || a.fn === "size") {
        const idx = a.args.slice(a.fn === "sum" ? 1 : 0).map((x) => {
          if (x.type !== "name" || !x.name.startsWith("?") || x.indices !== undefined) throw new PatternError(`pattern '${text}': ${a.fn}'s indices must be ?variables`);
          return x.name;
        });
        if (a.fn === "size") {
          if (idx.length !== 1) throw new PatternError(`pattern '${text}': size takes one index variable`);
          return { kind: "size", indices: idx[0]! };
        }
        if (a.args.length < 2) throw new PatternError(`pattern '${text}': sum needs a body and an index variable`);
        return { kind: "sum", body: fromAst(a.args[0]!, text), indices: idx };
      }
      if (a.args.length !== 1) throw new PatternError(`pattern '${text}': ${a.fn} takes one argument`);
      const arg = fromAst(a.args[0]!, text);
      if (a.fn === "sqrt") return { kind: "pow", base: arg, exp: { kind: "num", value: 0.5 } };
      if (!(FUNCTIONS as readonly string[]).includes(a.fn)) throw new PatternError(`pattern '${text}': unknown function '${a.fn}'`);
      return { kind: "call", fn: a.fn as Fn, arg };
    }
  }
}

const plus = (ps: Pattern[]): Pattern => ({ kind: "add", terms: ps.flatMap((p) => (p.kind === "add" ? p.terms : [p])) });
const times = (ps: Pattern[]): Pattern => ({ kind: "mul", factors: ps.flatMap((p) => (p.kind === "mul" ? p.factors : [p])) });

/** The variables of a pattern: expression variables and index variables. */
export function variablesOf(p: Pattern): { exprs: Set<string>; indices: Set<string> } {
  const exprs = new Set<string>();
  const indices = new Set<string>();
  const go = (q: Pattern): void => {
    switch (q.kind) {
      case "var":
        exprs.add(q.name);
        return;
      case "num":
        return;
      case "add":
        return q.terms.forEach(go);
      case "mul":
        return q.factors.forEach(go);
      case "pow":
        go(q.base);
        return go(q.exp);
      case "call":
        return go(q.arg);
      case "sum":
      case "max":
      case "ref":
        q.indices.filter(isVariable).forEach((i) => indices.add(i));
        return q.kind === "ref" ? undefined : go(q.body);
      case "size":
        indices.add(q.indices);
        return;
      case "sym":
        return;
    }
  };
  go(p);
  return { exprs, indices };
}

// ---------------------------------------------------------------------------------------------
// Matching

interface State {
  exprs: Map<string, Expr>;
  indices: Map<string, readonly string[]>;
}

const copy = (s: State): State => ({ exprs: new Map(s.exprs), indices: new Map(s.indices) });

/** Every match of `p` at the root of `e`, in the order documented above. */
export function* matches(p: Pattern, e: Expr, guards: readonly Guard[], ctx: RuleContext): Generator<Bindings> {
  yield* matchAt(p, e, { exprs: new Map(), indices: new Map() }, guards, ctx);
}

function* matchAt(p: Pattern, e: Expr, s: State, guards: readonly Guard[], ctx: RuleContext): Generator<State> {
  switch (p.kind) {
    case "var": {
      const had = s.exprs.get(p.name);
      if (had !== undefined) {
        if (had === e) yield s;
        return;
      }
      const t = copy(s);
      t.exprs.set(p.name, e);
      yield t;
      return;
    }
    case "num":
      if (e.kind === "num" && e.value === p.value) yield s;
      return;
    case "pow":
      if (e.kind !== "pow") return;
      for (const t of matchAt(p.base, e.base, s, guards, ctx)) yield* matchAt(p.exp, e.exp, t, guards, ctx);
      return;
    case "call":
      if (e.kind === "call" && e.fn === p.fn) yield* matchAt(p.arg, e.arg, s, guards, ctx);
      return;
    case "add":
      if (e.kind === "add") yield* matchOperands(p.terms, e.terms, "add", s, guards, ctx);
      return;
    case "mul":
      if (e.kind === "mul") yield* matchOperands(p.factors, e.factors, "mul", s, guards, ctx);
      return;
    case "sym":
      if (e.kind === "sym" && e.name === p.name && e.role === p.role) yield s;
      return;
    case "ref": {
      if (e.kind !== "ref" || e.name !== p.name || e.space !== p.space || e.indices.length !== p.indices.length) return;
      let t: State | undefined = s;
      for (let k = 0; k < p.indices.length && t; k++) {
        const v = p.indices[k]!;
        if (!isVariable(v)) {
          if (v !== e.indices[k]) t = undefined;
          continue;
        }
        const had = t.indices.get(v);
        if (had === undefined) {
          t = t === s ? copy(s) : t;
          t.indices.set(v, [e.indices[k]!]);
        } else if (had.length !== 1 || had[0] !== e.indices[k]) t = undefined;
      }
      if (t) yield t;
      return;
    }
    case "sum":
    case "max": {
      if (e.kind !== p.kind || e.indices.length === 0) return;
      if (!p.indices.some(isVariable)) {
        // fixed bound indices (from a step's definition): the same canonical names
        if (p.indices.length === e.indices.length && p.indices.every((i, k) => i === e.indices[k])) yield* matchAt(p.body, e.body, s, guards, ctx);
        return;
      }
      if (p.indices.length === 1) {
        // one index variable: it holds all the indices, bound before the body so guards can see it
        for (const t of bindIndices(p.indices[0]!, e.indices, s)) yield* matchAt(p.body, e.body, t, guards, ctx);
        return;
      }
      for (const t of matchAt(p.body, e.body, s, guards, ctx)) yield* split(p.indices, e.indices, t, guards, ctx, (v, xs, u) => bindIndices(v, xs as readonly string[], u));
      return;
    }
    case "size":
      throw new PatternError("size(...) stands only in a replacement");
  }
}

function* bindIndices(v: string, xs: readonly string[], s: State): Generator<State> {
  const had = s.indices.get(v);
  if (had !== undefined) {
    if (had.length === xs.length && had.every((i, k) => i === xs[k])) yield s;
    return;
  }
  const t = copy(s);
  t.indices.set(v, xs);
  yield t;
}

function* matchOperands(ps: readonly Pattern[], xs: readonly Expr[], kind: "add" | "mul", s: State, guards: readonly Guard[], ctx: RuleContext): Generator<State> {
  const fixed = ps.filter((q) => q.kind !== "var");
  const bare = ps.filter((q): q is Pattern & { kind: "var" } => q.kind === "var").map((q) => q.name);
  if (fixed.length > xs.length) return;
  // 1. non-variable operands onto distinct operands, in order, with backtracking
  function* place(k: number, used: readonly boolean[], t: State): Generator<State> {
    if (k === fixed.length) {
      const left = xs.filter((_, j) => !used[j]);
      const whole = (ys: readonly (Expr | string)[]) => (kind === "add" ? add(...(ys as Expr[])) : mul(...(ys as Expr[])));
      yield* split(bare, left, t, guards, ctx, (v, ys, u) => matchAt({ kind: "var", name: v }, whole(ys), u, guards, ctx));
      return;
    }
    for (let j = 0; j < xs.length; j++) {
      if (used[j]) continue;
      const u = used.slice();
      u[j] = true;
      for (const m of matchAt(fixed[k]!, xs[j]!, t, guards, ctx)) yield* place(k + 1, u, m);
    }
  }
  yield* place(0, xs.map(() => false), s);
}

/**
 * Splits `xs` (operands or indices) among the variables `vs` as documented at the top: a variable
 * directed by an elementwise guard takes every element that passes it (at least one), the others
 * but the last one element each, the last the rest.
 */
function* split<X extends Expr | string>(
  vs: readonly string[],
  xs: readonly X[],
  s: State,
  guards: readonly Guard[],
  ctx: RuleContext,
  bind: (v: string, xs: readonly X[], s: State) => Generator<State>,
): Generator<State> {
  if (vs.length === 0) {
    if (xs.length === 0) yield s;
    return;
  }
  const [v, ...rest] = vs as [string, ...string[]];
  const snapshot: Bindings = s;
  const directed = guards.map((g) => g.element?.(v, snapshot, ctx)).find((f) => f !== undefined);
  if (directed) {
    const take = xs.filter((x) => directed(x));
    if (take.length === 0) return;
    for (const t of bind(v, take, s)) yield* split(rest, xs.filter((x) => !directed(x)), t, guards, ctx, bind);
    return;
  }
  if (rest.length === 0) {
    yield* bind(v, xs, s);
    return;
  }
  for (let j = 0; j < xs.length; j++) {
    for (const t of bind(v, [xs[j]!], s)) yield* split(rest, xs.filter((_, k) => k !== j), t, guards, ctx, bind);
  }
}

// ---------------------------------------------------------------------------------------------
// Instantiating

/** Builds the replacement for a match, through the factory. */
export function instantiate(p: Pattern, b: Bindings, sizeOf: SizeOf): Expr {
  const go = (q: Pattern): Expr => {
    switch (q.kind) {
      case "var": {
        const x = b.exprs.get(q.name);
        if (x === undefined) throw new PatternError(`replacement uses ${q.name}, which the pattern does not bind`);
        return x;
      }
      case "num":
        return num(q.value);
      case "add":
        return add(...q.terms.map(go));
      case "mul":
        return mul(...q.factors.map(go));
      case "pow":
        return pow(go(q.base), go(q.exp));
      case "call":
        return call(q.fn, go(q.arg));
      case "sum":
        return sum(go(q.body), q.indices.flatMap((i) => (isVariable(i) ? indicesOf(b, i) : [i])), sizeOf);
      case "max":
        return maxOver(go(q.body), q.indices.flatMap((i) => (isVariable(i) ? indicesOf(b, i) : [i])), sizeOf);
      case "sym":
        return sym(q.name, q.role);
      case "ref":
        return ref(q.name, q.indices.flatMap((i) => (isVariable(i) ? indicesOf(b, i) : [i])), q.space);
      case "size":
        return mul(...indicesOf(b, q.indices).map((i) => sym(sizeOf(i), "size")));
    }
  };
  return go(p);
}

function indicesOf(b: Bindings, v: string): readonly string[] {
  const xs = b.indices.get(v);
  if (xs === undefined) throw new PatternError(`replacement uses ${v}, which the pattern does not bind`);
  return xs;
}

// ---------------------------------------------------------------------------------------------
// Rules and guards

/** A pattern rule: `lhs ⇒ rhs` where every guard holds. Checked when it is built. */
export function rule(name: string, lhs: string, rhs: string, ...guards: readonly Guard[]): Rule {
  return ruleOf(name, parsePattern(lhs), parsePattern(rhs), ...guards);
}

/** A pattern rule from patterns already built (the rules `definitions.ts` makes from steps). */
export function ruleOf(name: string, from: Pattern, to: Pattern, ...guards: readonly Guard[]): Rule {
  const have = variablesOf(from);
  const need = variablesOf(to);
  for (const g of guards) for (const v of g.binds ?? []) have.exprs.add(v);
  const text = `${printPattern(from)} ⇒ ${printPattern(to)}`;
  // a pattern that is not a variable matches only a node of its own kind (matchAt): every other
  // node is passed over before a match is begun, as most nodes are for most rules
  const head = from.kind === "var" ? undefined : from.kind;
  for (const v of need.exprs) if (!have.exprs.has(v)) throw new PatternError(`rule ${name} (${text}): ${v} is not bound`);
  for (const v of need.indices) if (!have.indices.has(v)) throw new PatternError(`rule ${name} (${text}): index ${v} is not bound`);
  for (const v of have.exprs) if (have.indices.has(v)) throw new PatternError(`rule ${name} (${text}): ${v} is both an expression and an index variable`);
  return {
    name,
    pattern: text,
    ...(guards.length ? { guard: guards.map((g) => g.text).join(" and ") } : {}),
    lhs: from,
    rhs: to,
    apply: (e, ctx) => {
      if (head !== undefined && e.kind !== head) return undefined;
      for (const b of matches(from, e, guards, ctx)) {
        let built: Expr | undefined;
        const after = () => {
          let all = b;
          for (const g of guards) if (g.extend) all = { exprs: new Map([...all.exprs, ...g.extend(all)]), indices: all.indices };
          return (built ??= instantiate(to, all, ctx.sizeOf));
        };
        if (guards.every((g) => g.test(b, ctx, { before: e, after }))) return after();
      }
      return undefined;
    },
  };
}

/** A pattern in the spec's syntax (fully parenthesized where a reader could doubt). */
export function printPattern(p: Pattern): string {
  const atom = (q: Pattern) => (q.kind === "add" || q.kind === "mul" || (q.kind === "num" && q.value < 0) ? `(${printPattern(q)})` : printPattern(q));
  switch (p.kind) {
    case "var":
      return p.name;
    case "num":
      return String(p.value);
    case "sym":
      return p.name;
    case "ref":
      return p.indices.length ? `${p.space === "grad" ? "d" : ""}${p.name}[${p.indices.join(",")}]` : p.name;
    case "add":
      return p.terms.map(printPattern).join(" + ");
    case "mul":
      return p.factors.map((f) => (f.kind === "add" ? `(${printPattern(f)})` : printPattern(f))).join("*");
    case "pow":
      return `${atom(p.base)}^${atom(p.exp)}`;
    case "call":
      return `${p.fn}(${printPattern(p.arg)})`;
    case "sum":
    case "max":
      return `${p.kind}(${printPattern(p.body)}, ${p.indices.join(", ")})`;
    case "size":
      return `size(${p.indices})`;
  }
}

const exprOf = (b: Bindings, v: string): Expr => b.exprs.get(v)!;

/** None of the indices `?i` holds is free in `?c`. Directs a split of either variable. */
export function notFree(i: string, c: string): Guard {
  const test = (is: readonly string[], x: Expr) => !is.some((j) => x.free.includes(j));
  return {
    text: `${i} is not free in ${c}`,
    test: (b) => test(b.indices.get(i)!, exprOf(b, c)),
    element: (v, b) => {
      if (v === c && b.indices.has(i)) return (x) => test(b.indices.get(i)!, x as Expr);
      if (v === i && b.exprs.has(c)) return (j) => !exprOf(b, c).free.includes(j as string);
      return undefined;
    },
  };
}

/** `?x` is a number. */
export function isNumber(x: string): Guard {
  return { text: `${x} is a number`, test: (b) => exprOf(b, x).kind === "num" };
}

/** `?x` depends on no index: a number, constant, size or a value without indices. */
export function isConstant(x: string): Guard {
  return { text: `${x} has no free index`, test: (b) => exprOf(b, x).free.length === 0 };
}

/** A named condition written as a function of the bound nodes, for guards no combinator says. */
export function when(text: string, test: (b: Bindings, ctx: RuleContext) => boolean): Guard {
  return { text, test };
}

/** The rewrite does not make the node costlier by `measure` (the simplifier's `cost`). */
export function notCostlier(measure: (e: Expr) => number): Guard {
  return { text: "the result costs no more", test: (_b, _ctx, at) => measure(at.after()) <= measure(at.before) };
}

/** At least one of the guards holds. */
export function anyOf(...gs: readonly Guard[]): Guard {
  return { text: gs.map((g) => g.text).join(" or "), test: (b, ctx, at) => gs.some((g) => g.test(b, ctx, at)) };
}

/** `?k` is a number and `?k/b` a whole number, bound to `?r` for the replacement. */
export function wholeRatio(k: string, b: number, r: string): Guard {
  const ratio = (x: Expr) => (x.kind === "num" ? x.value / b : NaN);
  return {
    text: `${k}/${b} is a whole number ${r}`,
    binds: [r],
    test: (m) => Number.isInteger(ratio(exprOf(m, k))),
    extend: (m) => new Map([[r, num(ratio(exprOf(m, k)))]]),
  };
}
