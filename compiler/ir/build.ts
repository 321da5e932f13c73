/**
 * The factory: the only way to build a node. Canonical forms it keeps (cheap, always valid, never
 * growing a term):
 * - `add` and `mul` are flat, their operands sorted by `compareExpr`, numbers folded, like terms
 *   and equal bases combined (`x + 2x -> 3x`, `x * x^2 -> x^3`);
 * - division is `x * y^-1`, subtraction `x + -1*y`, `sqrt(x)` is `x^0.5`;
 * - a reduction's bound indices are renamed to canonical names (`N:1`, see `sum`) so that
 *   `sum(x[n,d], n)` and `sum(x[m,d], m)` are the same node.
 * Everything cleverer is a named rule in `compiler/simplify`.
 */
import { affineText, assertNever, canonicalSize, children, intern, type AffineForm, type Comparison, type Delta, type Expr, type Fn, type IndexForm, type Num, type Ref, type SizeOf, type Stored, type Sum, type Sym } from "./node.js";
import { nameTable } from "./table.js";

// ---------------------------------------------------------------------------------------------
// Ordering (deterministic: by structure, never by creation order)

const KIND_RANK: Record<Expr["kind"], number> = { num: 0, sym: 1, ref: 2, delta: 2.5, call: 3, where: 3.5, pow: 4, sum: 5, stored: 5.25, max: 5.5, mul: 6, add: 7 };

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
  return compareStructure(a, b);
}

/** Two distinct nodes of one kind with equal hashes (a collision): their fields, then children. */
function compareStructure(a: Expr, b: Expr): number {
  if (a.kind !== b.kind) return a.kind < b.kind ? -1 : 1;
  const field = (e: Expr) =>
    e.kind === "call"
      ? e.fn
      : e.kind === "sum" || e.kind === "max"
        ? e.indices.join(",")
        : e.kind === "where"
          ? e.op
          : e.kind === "delta"
            ? `${e.index};${e.form.kind === "gather" ? `${e.form.from.name}[${e.form.from.indices.join(",")}]` : affineText(e.form)}`
            : "";
  const fa = field(a);
  const fb = field(b);
  if (fa !== fb) return fa < fb ? -1 : 1;
  if (a.kind === "where" && b.kind === "where") {
    const c = compareExpr(a.left, b.left) || compareExpr(a.right, b.right);
    if (c !== 0) return c;
  }
  const ca = children(a);
  const cb = children(b);
  for (let k = 0; k < Math.min(ca.length, cb.length); k++) {
    const c = compareExpr(ca[k]!, cb[k]!);
    if (c !== 0) return c;
  }
  return ca.length - cb.length;
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
    case "relu":
      return Math.max(x, 0); // NaN stays NaN, -0 becomes 0
    case "erf":
      return erf(x);
    case "log1p":
      return Math.log1p(x);
    case "expm1":
      return Math.expm1(x);
    case "softplus":
      // log(1 + e^x) without overflow: x + log(1 + e^-x) for positive x
      return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
    default:
      return assertNever(fn, "function");
  }
}

/**
 * The error function, to a few ulps. For |x| < 3 the series with positive terms
 * erf(x) = 2/sqrt(pi) e^(-x^2) sum_n (2x^2)^n x / (1*3*...*(2n+1)) (no cancellation); beyond, the
 * continued fraction erfc(x) = e^(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))).
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return x;
  const a = Math.abs(x);
  if (a < 3) {
    let term = a;
    let total = a;
    for (let n = 1; n < 200 && term > 1e-17 * total; n++) {
      term *= (2 * a * a) / (2 * n + 1);
      total += term;
    }
    const v = (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * total;
    return x < 0 ? -v : v;
  }
  if (a > 6) return x < 0 ? -1 : 1; // erfc(6) = 2e-17: below half an ulp of 1
  let f = a;
  for (let n = 80; n >= 1; n--) f = a + n / 2 / f;
  const v = 1 - Math.exp(-a * a) / (Math.sqrt(Math.PI) * f);
  return x < 0 ? -v : v;
}

/** Whether a comparison holds. */
export function compare(op: Comparison, a: number, b: number): boolean {
  switch (op) {
    case "<":
      return a < b;
    case "<=":
      return a <= b;
    case ">":
      return a > b;
    case ">=":
      return a >= b;
    case "==":
      return a === b;
    case "!=":
      return a !== b;
    default:
      return assertNever(op, "comparison");
  }
}

/**
 * `where(left op right, then, otherwise)`. Folded when both branches are the same node, or when the
 * comparison is between numbers.
 */
export function where(op: Comparison, left: Expr, right: Expr, then: Expr, otherwise: Expr): Expr {
  if (then === otherwise) return then;
  if (left.kind === "num" && right.kind === "num") return compare(op, left.value, right.value) ? then : otherwise;
  return intern({ kind: "where", op, left, right, then, else: otherwise });
}

/**
 * An affine form in canonical order: terms of one letter added, zero coefficients dropped, sorted by
 * letter, so that equal forms are one interned delta.
 */
export function affine(terms: readonly { readonly index: string; readonly coef: number }[], offset: number, divisor = 1): AffineForm {
  const by = new Map<string, number>();
  for (const t of terms) by.set(t.index, (by.get(t.index) ?? 0) + t.coef);
  const sorted = [...by].filter(([, c]) => c !== 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { kind: "affine", terms: sorted.map(([index, coef]) => ({ index, coef })), offset, divisor };
}

/** `delta(index, form)`: 1 where the letter `index` equals the value of the index form. */
export function delta(index: string, form: IndexForm): Delta {
  return intern({ kind: "delta", index, form }) as Delta;
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
    // one exponent is already a canonical node (every node comes from this factory): no sum to build
    const p = pow(b, es.length === 1 ? es[0]! : add(...es));
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

/** `stored(body)` (node.ts): computed once into an array over its free indices. Only `compiler/schedule` builds it. */
export function stored(body: Expr): Stored {
  return intern({ kind: "stored", body }) as Stored;
}

/** `r` with another body over the same bound indices, kept as built (no canonical renaming). */
export function withBody(r: Sum, body: Expr): Sum {
  return intern({ kind: "sum", body, indices: r.indices }) as Sum;
}

/** `max(body, indices)`, its bound indices named canonically like those of `sum`. */
export function maxOver(body: Expr, indices: readonly string[], sizeOf: SizeOf): Expr {
  if (indices.length === 0 || !indices.some((i) => body.free.includes(i))) return body;
  const names = canonicalNames(body, indices, sizeOf, false);
  const mapping = nameTable<string>();
  indices.forEach((i, k) => (mapping[i] = names[k]!));
  return intern({ kind: "max", body: renameFree(body, mapping, sizeOf), indices: [...names].sort() });
}

/**
 * The indices of a node's refs in order of first appearance in a structural walk (the node's own,
 * then each child's in turn). Made once per node from its children's: a sum is named canonically
 * each time it is rebuilt, and a rewrite inside a large body rebuilds it often.
 */
const appearance = new WeakMap<Expr, readonly string[]>();

function indicesInOrder(e: Expr): readonly string[] {
  const known = appearance.get(e);
  if (known) return known;
  const out: string[] = e.kind === "ref" ? [...new Set(e.indices)] : [];
  for (const c of children(e)) for (const i of indicesInOrder(c)) if (!out.includes(i)) out.push(i);
  appearance.set(e, out);
  return out;
}

function canonicalNames(body: Expr, indices: readonly string[], sizeOf: SizeOf, invariant: boolean): string[] {
  // order of first appearance in a structural walk decides `.k` among indices of one size
  const seen = indicesInOrder(body).filter((i) => indices.includes(i));
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
// Rebuilding

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
    case "where":
      return where(e.op, e.left, e.right, cs[0]!, cs[1]!);
    case "delta":
      return e;
    case "stored":
      return stored(cs[0]!);
    default:
      return assertNever(e, "expression");
  }
}

/**
 * Renames free indices, capture-avoiding: a sum's bound indices shadow the mapping, and are
 * renamed out of the way when a new name would be captured.
 */
export function renameFree(e: Expr, mapping: Readonly<Record<string, string>>, sizeOf: SizeOf, memo = new Map<string, Expr>()): Expr {
  const keys = Object.keys(mapping).filter((k) => e.free.includes(k) && mapping[k] !== k);
  if (keys.length === 0) return e;
  const m = nameTable<string>();
  for (const k of keys) m[k] = mapping[k]!;
  // a shared node is renamed once per mapping (a DAG walked as a tree is exponential)
  const key = `${e.id}|${keys.map((k) => `${k}>${m[k]}`).join(",")}`;
  const known = memo.get(key);
  if (known !== undefined) return known;
  const out = renameNode(e, m, sizeOf, memo);
  memo.set(key, out);
  return out;
}

function renameNode(e: Expr, m: Readonly<Record<string, string>>, sizeOf: SizeOf, memo: Map<string, Expr>): Expr {
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
    case "delta":
      return delta(m[e.index] ?? e.index, e.form.kind === "gather" ? { kind: "gather", from: renameFree(e.form.from, m, sizeOf, memo) as Ref } : affine(e.form.terms.map((t) => ({ index: m[t.index] ?? t.index, coef: t.coef })), e.form.offset, e.form.divisor));
    case "where": {
      const r = (x: Expr) => renameFree(x, m, sizeOf, memo);
      return where(e.op, r(e.left), r(e.right), r(e.then), r(e.else));
    }
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
      return (e.kind === "sum" ? sum : maxOver)(renameFree(e.body, rebound, sizeOf, memo), indices, sizeOf);
    }
    default:
      return withChildren(
        e,
        children(e).map((c) => renameFree(c, m, sizeOf, memo)),
        sizeOf,
      );
  }
}
