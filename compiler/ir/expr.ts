/**
 * The expression IR: immutable, hash-consed nodes built only through the factory functions below.
 *
 * Why hash-consing: two structurally equal expressions are the same object, so equality is `===`,
 * common subexpressions are shared for free, and a rewrite that changes nothing returns its input.
 *
 * Canonical forms kept by the factory (cheap, always valid, never growing a term):
 * - `add` and `mul` are flat, their operands sorted by `compareExpr`, numbers folded, like terms
 *   and equal bases combined (`x + 2x -> 3x`, `x * x^2 -> x^3`);
 * - division is `x * y^-1`, subtraction `x + -1*y`, `sqrt(x)` is `x^0.5`;
 * - a reduction's bound indices are renamed to canonical names (`N:1`, see `sum`) so that
 *   `sum(x[n,d], n)` and `sum(x[m,d], m)` are the same node.
 * Everything cleverer is a named rule in `compiler/simplify`.
 */

import { nameTable } from "./table.js";
import { checkBudget } from "../limits.js";

/** Elementwise functions of the spec language and of CAS answers. */
export const FUNCTIONS = ["exp", "log", "tanh", "abs", "sin", "cos", "sigmoid", "sign", "cosh", "sinh", "sech", "stop"] as const;
export type Fn = (typeof FUNCTIONS)[number];

export type Expr = Num | Sym | Ref | Add | Mul | Pow | Call | Sum | Max;

interface Base {
  /** Interning id: the order nodes were created in. Never used for ordering output. */
  readonly id: number;
  /** Deterministic structural hash (does not depend on creation order). */
  readonly hash: number;
  /** Indices free in this expression, sorted. */
  readonly free: readonly string[];
  /** Height of reduction nesting: 0 for an expression without `sum`. */
  readonly height: number;
}

export interface Num extends Base {
  readonly kind: "num";
  readonly value: number;
}
/** A scalar symbol: a constant of the spec (`eps`) or a size symbol (`N`). */
export interface Sym extends Base {
  readonly kind: "sym";
  readonly name: string;
  readonly role: "const" | "size";
}
/** An element of a tensor: an input, a forward step, or a gradient array (`space: "grad"`). */
export interface Ref extends Base {
  readonly kind: "ref";
  readonly name: string;
  readonly space: "value" | "grad";
  readonly indices: readonly string[];
}
export interface Add extends Base {
  readonly kind: "add";
  readonly terms: readonly Expr[];
}
export interface Mul extends Base {
  readonly kind: "mul";
  readonly factors: readonly Expr[];
}
export interface Pow extends Base {
  readonly kind: "pow";
  readonly base: Expr;
  readonly exp: Expr;
}
export interface Call extends Base {
  readonly kind: "call";
  readonly fn: Fn;
  readonly arg: Expr;
}
/** `sum(body, indices)`: the indices are bound, with canonical names `<size>:<height>[.<k>]`. */
export interface Sum extends Base {
  readonly kind: "sum";
  readonly body: Expr;
  readonly indices: readonly string[];
}
/**
 * `max(body, indices)`: the largest value of the body over the bound indices. It passes no gradient
 * (reverse.ts refuses one that would need to); specs use it under `stop(...)` as a shift that
 * keeps `exp` finite.
 */
export interface Max extends Base {
  readonly kind: "max";
  readonly body: Expr;
  readonly indices: readonly string[];
}

/** A reduction node: `sum` or `max`. */
export type Reduction = Sum | Max;
export function isReduction(e: Expr): e is Reduction {
  return e.kind === "sum" || e.kind === "max";
}

export function assertNever(x: never, what = "value"): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(x)}`);
}

// ---------------------------------------------------------------------------------------------
// Index names

/** Bound indices are named `<size>:<height>` or `<size>:<height>.<k>`; spec letters never hold ':'. */
export function isCanonicalIndex(i: string): boolean {
  return i.includes(":");
}

/** The size symbol of a canonical bound index (`N:1` -> `N`), or undefined for a spec letter. */
export function canonicalSize(i: string): string | undefined {
  const k = i.indexOf(":");
  return k < 0 ? undefined : i.slice(0, k);
}

/** Resolves an index name to its size symbol. Spec letters and their primed copies use `letters`. */
export type SizeOf = (index: string) => string;

export function sizeResolver(letters: Readonly<Record<string, string>>): SizeOf {
  return (i) => {
    const c = canonicalSize(i);
    if (c !== undefined) return c;
    const base = i.replace(/'+$/, "");
    const s = letters[base];
    if (s === undefined) throw new Error(`index '${i}' has no size`);
    return s;
  };
}

// ---------------------------------------------------------------------------------------------
// Interning

const table = new Map<string, Expr>();
let nextId = 0;

function mix(h: number, x: number): number {
  h = Math.imul(h ^ x, 0x01000193) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}
function hashString(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) h = mix(h, s.charCodeAt(i));
  return h;
}
function union(lists: readonly (readonly string[])[]): string[] {
  const s = new Set<string>();
  for (const l of lists) for (const x of l) s.add(x);
  return [...s].sort();
}

type Payload =
  | { kind: "num"; value: number }
  | { kind: "sym"; name: string; role: "const" | "size" }
  | { kind: "ref"; name: string; space: "value" | "grad"; indices: readonly string[] }
  | { kind: "add"; terms: readonly Expr[] }
  | { kind: "mul"; factors: readonly Expr[] }
  | { kind: "pow"; base: Expr; exp: Expr }
  | { kind: "call"; fn: Fn; arg: Expr }
  | { kind: "sum" | "max"; body: Expr; indices: readonly string[] };

function intern(p: Payload): Expr {
  let key: string;
  let hash: number;
  let free: readonly string[];
  let height = 0;
  switch (p.kind) {
    case "num":
      key = `n${Object.is(p.value, -0) ? 0 : p.value}`;
      hash = hashString(key);
      free = [];
      break;
    case "sym":
      key = `s${p.role}:${p.name}`;
      hash = hashString(key);
      free = [];
      break;
    case "ref":
      key = `r${p.space}:${p.name}[${p.indices.join(",")}]`;
      hash = hashString(key);
      free = [...new Set(p.indices)].sort();
      break;
    case "add":
    case "mul": {
      const xs = p.kind === "add" ? p.terms : p.factors;
      key = `${p.kind}(${xs.map((x) => x.id).join(",")})`;
      hash = xs.reduce((h, x) => mix(h, x.hash), hashString(p.kind));
      free = union(xs.map((x) => x.free));
      height = Math.max(...xs.map((x) => x.height));
      break;
    }
    case "pow":
      key = `pow(${p.base.id},${p.exp.id})`;
      hash = mix(mix(hashString("pow"), p.base.hash), p.exp.hash);
      free = union([p.base.free, p.exp.free]);
      height = Math.max(p.base.height, p.exp.height);
      break;
    case "call":
      key = `${p.fn}(${p.arg.id})`;
      hash = mix(hashString(p.fn), p.arg.hash);
      free = p.arg.free;
      height = p.arg.height;
      break;
    case "sum":
    case "max":
      key = `${p.kind}(${p.body.id};${p.indices.join(",")})`;
      hash = mix(hashString(`${p.kind};${p.indices.join(",")}`), p.body.hash);
      free = p.body.free.filter((i) => !p.indices.includes(i));
      height = p.body.height + 1;
      break;
    default:
      return assertNever(p, "payload");
  }
  const found = table.get(key);
  if (found) return found;
  const node = Object.freeze({ ...p, id: nextId++, hash, free, height }) as Expr;
  table.set(key, node);
  return node;
}

// ---------------------------------------------------------------------------------------------
// Ordering (deterministic: by structure, never by creation order)

const KIND_RANK: Record<Expr["kind"], number> = { num: 0, sym: 1, ref: 2, call: 3, pow: 4, sum: 5, max: 5.5, mul: 6, add: 7 };

/** Sort key of a factor in a product: its base, so `x` and `x^2` sit together. */
function sortBase(e: Expr): Expr {
  return e.kind === "pow" ? e.base : e;
}

export function compareExpr(a: Expr, b: Expr): number {
  if (a === b) return 0;
  const ra = KIND_RANK[a.kind];
  const rb = KIND_RANK[b.kind];
  if (ra !== rb) return ra - rb;
  if (a.kind === "num" && b.kind === "num") return a.value - b.value;
  if (a.kind === "sym" && b.kind === "sym") return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  if (a.kind === "ref" && b.kind === "ref") {
    if (a.space !== b.space) return a.space === "grad" ? -1 : 1;
    if (a.name !== b.name) return a.name < b.name ? -1 : 1;
    const ka = a.indices.join(",");
    const kb = b.indices.join(",");
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  }
  if (a.kind === "pow" && b.kind === "pow") return compareExpr(a.base, b.base) || compareExpr(a.exp, b.exp);
  if (a.hash !== b.hash) return a.hash - b.hash;
  const pa = print(a);
  const pb = print(b);
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

function compareFactor(a: Expr, b: Expr): number {
  return compareExpr(sortBase(a), sortBase(b)) || compareExpr(a, b);
}

// ---------------------------------------------------------------------------------------------
// Factory

export function num(value: number): Num {
  if (Number.isNaN(value)) throw new Error("NaN is not a number literal");
  return intern({ kind: "num", value: Object.is(value, -0) ? 0 : value }) as Num;
}
export const ZERO = num(0);
export const ONE = num(1);
export const MINUS_ONE = num(-1);

export function sym(name: string, role: "const" | "size"): Sym {
  return intern({ kind: "sym", name, role }) as Sym;
}

export function ref(name: string, indices: readonly string[], space: "value" | "grad" = "value"): Ref {
  return intern({ kind: "ref", name, space, indices: [...indices] }) as Ref;
}

export function call(fn: Fn, arg: Expr): Expr {
  if (arg.kind === "num") {
    const v = evalFn(fn, arg.value);
    if (Number.isFinite(v) && (Number.isInteger(v) || fn === "abs" || fn === "sign")) return num(v);
  }
  return intern({ kind: "call", fn, arg });
}

export function evalFn(fn: Fn, x: number): number {
  switch (fn) {
    case "exp":
      return Math.exp(x);
    case "log":
      return Math.log(x);
    case "tanh":
      return Math.tanh(x);
    case "abs":
      return Math.abs(x);
    case "sin":
      return Math.sin(x);
    case "cos":
      return Math.cos(x);
    case "sigmoid":
      return 1 / (1 + Math.exp(-x));
    case "sign":
      return Math.sign(x);
    case "stop":
      return x;
    case "cosh":
      return Math.cosh(x);
    case "sinh":
      return Math.sinh(x);
    case "sech":
      return 1 / Math.cosh(x);
    default:
      return assertNever(fn, "function");
  }
}

/** Splits a term into its numeric coefficient and the rest: `3*x*y -> [3, x*y]`. */
export function splitCoefficient(e: Expr): [number, Expr] {
  if (e.kind === "num") return [e.value, ONE];
  const first = e.kind === "mul" ? e.factors[0] : undefined;
  if (e.kind === "mul" && first?.kind === "num") {
    const rest = e.factors.slice(1);
    return [first.value, rest.length === 1 ? rest[0]! : intern({ kind: "mul", factors: rest })];
  }
  return [1, e];
}

export function add(...xs: readonly Expr[]): Expr {
  const flat: Expr[] = [];
  for (const x of xs) {
    if (x.kind === "add") flat.push(...x.terms);
    else flat.push(x);
  }
  let constant = 0;
  const coeffs = new Map<Expr, number>();
  for (const t of flat) {
    if (t.kind === "num") {
      constant += t.value;
      continue;
    }
    const [c, rest] = splitCoefficient(t);
    coeffs.set(rest, (coeffs.get(rest) ?? 0) + c);
  }
  const terms: Expr[] = [];
  for (const [rest, c] of coeffs) if (c !== 0) terms.push(c === 1 ? rest : mul(num(c), rest));
  terms.sort(compareExpr);
  if (constant !== 0) terms.unshift(num(constant));
  if (terms.length === 0) return ZERO;
  if (terms.length === 1) return terms[0]!;
  return intern({ kind: "add", terms });
}

/** Numeric value of an exponent, if it is a number. */
function numericExp(e: Expr): number | undefined {
  return e.kind === "num" ? e.value : undefined;
}

export function mul(...xs: readonly Expr[]): Expr {
  const flat: Expr[] = [];
  for (const x of xs) {
    if (x.kind === "mul") flat.push(...x.factors);
    else flat.push(x);
  }
  let coefficient = 1;
  const exps = new Map<Expr, Expr[]>();
  for (const f of flat) {
    if (f.kind === "num") {
      coefficient *= f.value;
      continue;
    }
    const [b, e] = f.kind === "pow" ? [f.base, f.exp] : [f, ONE];
    const list = exps.get(b);
    if (list) list.push(e);
    else exps.set(b, [e]);
  }
  if (coefficient === 0) return ZERO;
  const factors: Expr[] = [];
  for (const [b, es] of exps) {
    const p = pow(b, add(...es));
    if (p.kind === "num") coefficient *= p.value;
    else if (p.kind === "mul") factors.push(...p.factors); // (a*b)^k distributed by pow
    else factors.push(p);
  }
  if (factors.some((f) => f.kind === "mul" || f.kind === "num")) return mul(num(coefficient), ...factors);
  factors.sort(compareFactor);
  if (coefficient !== 1) factors.unshift(num(coefficient));
  if (factors.length === 0) return num(coefficient);
  if (factors.length === 1) return factors[0]!;
  return intern({ kind: "mul", factors });
}

export function pow(base: Expr, exp: Expr): Expr {
  const k = numericExp(exp);
  if (k === 0) return ONE;
  if (k === 1) return base;
  if (base.kind === "num" && k !== undefined) {
    const v = Math.pow(base.value, k);
    // fold only exact results: 2^2, 4^0.5, 10^-1, never 2^0.5 (keep it symbolic and exact)
    if (Number.isFinite(v) && (Number.isInteger(k) || Number.isInteger(v))) return num(v);
  }
  if (base.kind === "num" && base.value === 1) return ONE;
  if (k !== undefined && Number.isInteger(k)) {
    // (x^a)^k = x^(a*k) for integer k; (a*b)^k = a^k * b^k for integer k
    if (base.kind === "pow") return pow(base.base, mul(base.exp, exp));
    if (base.kind === "mul") return mul(...base.factors.map((f) => pow(f, exp)));
  }
  return intern({ kind: "pow", base, exp });
}

export const neg = (x: Expr): Expr => mul(MINUS_ONE, x);
export const sub = (a: Expr, b: Expr): Expr => add(a, neg(b));
export const div = (a: Expr, b: Expr): Expr => mul(a, pow(b, MINUS_ONE));
export const sqrt = (x: Expr): Expr => pow(x, num(0.5));

/**
 * `sum(body, indices)`. Nested sums are flattened; bound indices get canonical names chosen from
 * the body's structure alone: `<size>:<h>` where `h` is one more than the body's reduction height
 * (raised until it clashes with no free index of the body), and `.k` for the k-th index of a size
 * in order of first appearance.
 */
export function sum(body: Expr, indices: readonly string[], sizeOf: SizeOf): Expr {
  if (indices.length === 0) return body;
  if (body.kind === "num" && body.value === 0) return ZERO;
  if (!indices.some((i) => body.free.includes(i))) {
    // a sum of something free of its indices: the rule `sum-invariant` turns it into size * body
    return intern({ kind: "sum", body, indices: canonicalNames(body, indices, sizeOf, true) });
  }
  if (body.kind === "mul" && body.factors[0]!.kind === "num") {
    // a numeric coefficient never stays inside: sum(-x, i) = -sum(x, i)
    const [c, rest] = splitCoefficient(body);
    return mul(num(c), sum(rest, indices, sizeOf));
  }
  if (body.kind === "sum") {
    // sum(sum(b, i), j) = sum(b, i, j): rename the inner bound indices back to fresh letters
    const inner = body;
    const fresh = inner.indices.map((i, k) => `${canonicalSize(i)}:~${k}`);
    const renamed = renameFree(inner.body, nameTable(inner.indices.map((i, k) => [i, fresh[k]!])), sizeOf);
    return sum(renamed, [...indices, ...fresh], sizeOf);
  }
  const names = canonicalNames(body, indices, sizeOf, false);
  const mapping = nameTable<string>();
  indices.forEach((i, k) => (mapping[i] = names[k]!));
  const renamed = renameFree(body, mapping, sizeOf);
  const order = names.map((n, k) => [n, k] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return intern({ kind: "sum", body: renamed, indices: order.map(([n]) => n) });
}

/**
 * `stored(body)`: a sum over no indices, which the scheduler uses to mean "computed once into an
 * array over its free indices and read from there". Only `compiler/schedule` builds it, after
 * simplification; the factories unwrap it (`sum(x, []) = x`) if anything rebuilds it.
 */
export function stored(body: Expr): Sum {
  return intern({ kind: "sum", body, indices: [] }) as Sum;
}

/** `r` with another body over the same bound indices, kept as built (no canonical renaming). */
export function withBody(r: Sum, body: Expr): Sum {
  return intern({ kind: "sum", body, indices: r.indices }) as Sum;
}

/** Whether `e` is a `stored(...)` array rather than a reduction. */
export function isStored(e: Expr): e is Sum {
  return e.kind === "sum" && e.indices.length === 0;
}

/** `max(body, indices)`, its bound indices named canonically like those of `sum`. */
export function maxOver(body: Expr, indices: readonly string[], sizeOf: SizeOf): Expr {
  if (indices.length === 0 || !indices.some((i) => body.free.includes(i))) return body;
  const names = canonicalNames(body, indices, sizeOf, false);
  const mapping = nameTable<string>();
  indices.forEach((i, k) => (mapping[i] = names[k]!));
  return intern({ kind: "max", body: renameFree(body, mapping, sizeOf), indices: [...names].sort() });
}

function canonicalNames(body: Expr, indices: readonly string[], sizeOf: SizeOf, invariant: boolean): string[] {
  // order of first appearance in a structural walk decides `.k` among indices of one size
  const seen: string[] = [];
  const walk = (e: Expr): void => {
    if (e.kind === "ref") for (const i of e.indices) if (indices.includes(i) && !seen.includes(i)) seen.push(i);
    for (const c of children(e)) walk(c);
  };
  walk(body);
  for (const i of indices) if (!seen.includes(i)) seen.push(i);
  let h = body.height + 1;
  const clash = (name: string) => body.free.includes(name) && !indices.includes(name);
  const name = (i: string, hh: number): string => {
    const size = sizeOf(i);
    const sameSize = seen.filter((j) => sizeOf(j) === size);
    const k = sameSize.indexOf(i);
    return `${size}:${hh}${k > 0 || invariant ? `.${k}` : ""}${invariant ? "i" : ""}`;
  };
  while (indices.some((i) => clash(name(i, h)))) h++;
  return indices.map((i) => name(i, h));
}

// ---------------------------------------------------------------------------------------------
// Traversal and substitution

export function children(e: Expr): readonly Expr[] {
  switch (e.kind) {
    case "num":
    case "sym":
    case "ref":
      return [];
    case "add":
      return e.terms;
    case "mul":
      return e.factors;
    case "pow":
      return [e.base, e.exp];
    case "call":
      return [e.arg];
    case "sum":
    case "max":
      return [e.body];
    default:
      return assertNever(e, "expression");
  }
}

/** Rebuilds `e` with new children through the factory (so canonical forms are restored). */
export function withChildren(e: Expr, cs: readonly Expr[], sizeOf: SizeOf): Expr {
  switch (e.kind) {
    case "num":
    case "sym":
    case "ref":
      return e;
    case "add":
      return add(...cs);
    case "mul":
      return mul(...cs);
    case "pow":
      return pow(cs[0]!, cs[1]!);
    case "call":
      return call(e.fn, cs[0]!);
    case "sum":
      return sum(cs[0]!, e.indices, sizeOf);
    case "max":
      return maxOver(cs[0]!, e.indices, sizeOf);
    default:
      return assertNever(e, "expression");
  }
}

/** What `rewrite` does at a node: each hook may be left out. */
export interface Rewriter {
  /**
   * Before the node's children: a replacement is taken as it is (its children are not visited);
   * undefined goes on into the children. `go` rewrites another node in the same walk.
   */
  readonly before?: (x: Expr, go: (y: Expr) => Expr) => Expr | undefined;
  /** After the node's children were rewritten, on the node rebuilt from them: what it becomes. */
  readonly after?: (x: Expr) => Expr;
}

/**
 * The one rewrite walker. Each distinct node of `e` is visited once (memoized per call), top-down
 * through `before`, then bottom-up through `after`. A node is rebuilt through the factory only when
 * a child changed, so a rewrite that changes nothing returns `e` itself.
 */
export function rewrite(e: Expr, sizeOf: SizeOf, r: Rewriter): Expr {
  const memo = new Map<Expr, Expr>();
  const go = (x: Expr): Expr => {
    const hit = memo.get(x);
    if (hit) return hit;
    checkBudget();
    let y = r.before?.(x, go);
    if (y === undefined) {
      const cs = children(x);
      const ncs = cs.map(go);
      y = ncs.every((c, k) => c === cs[k]) ? x : withChildren(x, ncs, sizeOf);
      if (r.after) y = r.after(y);
    }
    memo.set(x, y);
    return y;
  };
  return go(e);
}

/** Bottom-up map: `f` sees each node after its children were mapped. */
export function mapBottomUp(e: Expr, f: (e: Expr) => Expr, sizeOf: SizeOf): Expr {
  return rewrite(e, sizeOf, { after: f });
}

export interface CollectOptions {
  /** "pre" (the default): a node before its children; "post": after them, innermost first. */
  readonly order?: "pre" | "post";
  /** Nodes left out with everything under them (`stop(...)` for the refs gradients reach). */
  readonly skip?: (x: Expr) => boolean;
  /** Stop after this many. */
  readonly limit?: number;
}

/**
 * The one collecting walker: the distinct nodes of `roots` (each visited once, however often it is
 * shared) for which `pred` holds, in the order the walk meets them.
 */
export function collect<T extends Expr>(roots: Expr | readonly Expr[], pred: (x: Expr) => x is T, opts?: CollectOptions): T[];
export function collect(roots: Expr | readonly Expr[], pred: (x: Expr) => boolean, opts?: CollectOptions): Expr[];
export function collect(roots: Expr | readonly Expr[], pred: (x: Expr) => boolean, opts: CollectOptions = {}): Expr[] {
  const out: Expr[] = [];
  const seen = new Set<Expr>();
  const limit = opts.limit ?? Infinity;
  const post = opts.order === "post";
  const go = (x: Expr): void => {
    if (out.length >= limit || seen.has(x)) return;
    seen.add(x);
    if (opts.skip?.(x)) return;
    if (!post && pred(x)) out.push(x);
    for (const c of children(x)) go(c);
    if (post && out.length < limit && pred(x)) out.push(x);
  };
  for (const r of isList(roots) ? roots : [roots]) go(r);
  return out;
}

function isList(roots: Expr | readonly Expr[]): roots is readonly Expr[] {
  return Array.isArray(roots);
}

/** All distinct reductions (sums and maxes) in the expressions, innermost first. */
export function reductionsOf(es: Expr | readonly Expr[]): Reduction[] {
  return collect(es, isReduction, { order: "post" });
}

/**
 * Whether `x` costs a library call where it is computed: a function other than `stop`, or a power
 * whose exponent is not a whole number (a root). Costs, statistics and the emitter agree on it.
 */
export function isTranscendental(x: Expr): boolean {
  return (x.kind === "call" && x.fn !== "stop") || (x.kind === "pow" && !(x.exp.kind === "num" && Number.isInteger(x.exp.value)));
}

/**
 * Renames free indices, capture-avoiding: a sum's bound indices shadow the mapping, and are
 * renamed out of the way when a new name would be captured.
 */
export function renameFree(e: Expr, mapping: Readonly<Record<string, string>>, sizeOf: SizeOf): Expr {
  const keys = Object.keys(mapping).filter((k) => e.free.includes(k) && mapping[k] !== k);
  if (keys.length === 0) return e;
  const m = nameTable<string>();
  for (const k of keys) m[k] = mapping[k]!;
  switch (e.kind) {
    case "num":
    case "sym":
      return e;
    case "ref":
      return ref(
        e.name,
        e.indices.map((i) => m[i] ?? i),
        e.space,
      );
    case "sum":
    case "max": {
      const targets = new Set(Object.values(m));
      const rebound = Object.assign(nameTable<string>(), m);
      const indices = e.indices.map((i, k) => {
        if (!targets.has(i)) return i;
        const fresh = `${canonicalSize(i) ?? sizeOf(i)}:~c${k}`;
        rebound[i] = fresh;
        return fresh;
      });
      return (e.kind === "sum" ? sum : maxOver)(renameFree(e.body, rebound, sizeOf), indices, sizeOf);
    }
    default:
      return withChildren(
        e,
        children(e).map((c) => renameFree(c, m, sizeOf)),
        sizeOf,
      );
  }
}

/** Replaces every occurrence of the node `target` (by identity) with `by`. */
export function replaceNode(e: Expr, target: Expr, by: Expr, sizeOf: SizeOf): Expr {
  return mapBottomUp(e, (x) => (x === target ? by : x), sizeOf);
}

/** Whether some node of `e` satisfies `pred`. */
export function contains(e: Expr, pred: (x: Expr) => boolean): boolean {
  return collect(e, pred, { limit: 1 }).length > 0;
}

/** Number of nodes in the tree (shared nodes counted at each use): a size measure. */
export function treeSize(e: Expr): number {
  const memo = new Map<Expr, number>();
  const go = (x: Expr): number => {
    const m = memo.get(x);
    if (m !== undefined) return m;
    const s = 1 + children(x).reduce((a, c) => a + go(c), 0);
    memo.set(x, s);
    return s;
  };
  return go(e);
}

/**
 * The refs of each node, sorted, computed once per node (nodes are immutable): the simplifier asks
 * for the refs of every subexpression for every definition, which walked each subtree again.
 */
const refsMemo = new WeakMap<Expr, readonly Ref[]>();

/** All distinct refs in `e`, including those inside sums. */
export function refsOf(e: Expr): Ref[] {
  return [...refsSorted(e)];
}

function refsSorted(e: Expr): readonly Ref[] {
  const hit = refsMemo.get(e);
  if (hit) return hit;
  let out: readonly Ref[];
  if (e.kind === "ref") out = [e];
  else {
    const cs = children(e);
    if (cs.length === 0) out = [];
    else if (cs.length === 1) out = refsSorted(cs[0]!);
    else {
      const all = new Set<Ref>();
      for (const c of cs) for (const r of refsSorted(c)) all.add(r);
      out = [...all].sort(compareExpr);
    }
  }
  refsMemo.set(e, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Printer

/** Display name of a ref: gradient arrays print as `d<name>`. */
export function refName(r: Ref): string {
  return r.space === "grad" ? `d${r.name}` : r.name;
}

function fmtNum(v: number): string {
  return String(v); // shortest round-tripping form
}

/**
 * Deterministic printer in the spec language: `a*b^-1` prints as `a/b`, `x^0.5` as `sqrt(x)`,
 * sums as `sum(body, i)`. The output parses back to the same node (see parse/expression.ts).
 */
export function print(e: Expr, letters?: Readonly<Record<string, string>>): string {
  const base: PrintCtx = { letters, names: new Map(), taken: new Set(e.free.filter((i) => !isCanonicalIndex(i))) };
  // free canonical indices (a reduction read inside another) print as letters of their size too
  return printPrec(e, 0, bindNames(e.free.filter(isCanonicalIndex), base));
}

interface PrintCtx {
  /** Index letter -> size: when given, bound indices print as letters of their size. */
  readonly letters: Readonly<Record<string, string>> | undefined;
  readonly names: ReadonlyMap<string, string>;
  readonly taken: ReadonlySet<string>;
}

function bindNames(indices: readonly string[], c: PrintCtx): PrintCtx {
  if (!c.letters) return c;
  const names = new Map(c.names);
  const taken = new Set(c.taken);
  for (const i of indices) {
    const size = canonicalSize(i);
    const candidates = Object.keys(c.letters).filter((l) => c.letters![l] === size);
    let pick = candidates.find((l) => !taken.has(l));
    if (!pick) {
      pick = (candidates[0] ?? (size ?? "i").toLowerCase()) + "'";
      while (taken.has(pick)) pick += "'";
    }
    names.set(i, pick);
    taken.add(pick);
  }
  return { ...c, names, taken };
}

// precedence: 0 add, 1 mul, 2 unary minus, 3 pow, 4 atom
function printPrec(e: Expr, ctx: number, c: PrintCtx): string {
  const wrap = (s: string, p: number) => (p < ctx ? `(${s})` : s);
  switch (e.kind) {
    case "num":
      return e.value < 0 ? wrap(fmtNum(e.value), 2) : fmtNum(e.value);
    case "sym":
      return e.name;
    case "ref":
      return `${refName(e)}[${e.indices.map((i) => c.names.get(i) ?? i).join(",")}]`;
    case "call":
      return `${e.fn}(${printPrec(e.arg, 0, c)})`;
    case "sum":
    case "max": {
      if (e.indices.length === 0) return `stored(${printPrec(e.body, 0, c)})`;
      const inner = bindNames(e.indices, c);
      return `${e.kind}(${printPrec(e.body, 0, inner)}, ${e.indices.map((i) => inner.names.get(i) ?? i).join(", ")})`;
    }
    case "pow": {
      if (e.exp.kind === "num" && e.exp.value === 0.5) return `sqrt(${printPrec(e.base, 0, c)})`;
      if (e.exp.kind === "num" && e.exp.value < 0) {
        const inv = pow(e.base, num(-e.exp.value));
        return wrap(`1/${printPrec(inv, 3, c)}`, 1);
      }
      return wrap(`${printPrec(e.base, 4, c)}^${printPrec(e.exp, 3, c)}`, 3);
    }
    case "mul": {
      const [k, rest] = splitCoefficient(e);
      const fs = rest.kind === "mul" ? rest.factors : [rest];
      const numer: string[] = [];
      const denom: string[] = [];
      for (const f of fs) {
        if (f.kind === "pow" && f.exp.kind === "num" && f.exp.value < 0) {
          denom.push(printPrec(pow(f.base, num(-f.exp.value)), 3, c));
        } else numer.push(printPrec(f, 1.5, c));
      }
      if (Math.abs(k) !== 1) numer.unshift(fmtNum(Math.abs(k)));
      let s = numer.length ? numer.join("*") : "1";
      if (denom.length) s += "/" + denom.join("/");
      return k < 0 ? wrap(`-${s}`, 2) : wrap(s, 1);
    }
    case "add": {
      // positive terms first, for reading; the node's own order is unchanged
      const terms = [...e.terms.filter((t) => splitCoefficient(t)[0] > 0), ...e.terms.filter((t) => splitCoefficient(t)[0] < 0)];
      let s = printPrec(terms[0]!, 0, c);
      for (const t of terms.slice(1)) {
        const [k, rest] = splitCoefficient(t);
        if (k < 0) s += ` - ${printPrec(k === -1 ? rest : mul(num(-k), rest), 1, c)}`;
        else s += ` + ${printPrec(t, 1, c)}`;
      }
      return wrap(s, 0);
    }
    default:
      return assertNever(e, "expression");
  }
}
