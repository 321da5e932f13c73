/**
 * The expression IR's nodes: readonly discriminated unions on `kind`, hash-consed by `intern` so
 * that two structurally equal expressions are the same object (equality is `===`, common
 * subexpressions are shared for free, and a rewrite that changes nothing returns its input). Only
 * the factory (build.ts) calls `intern`; ir/expr.ts re-exports everything else.
 */

/** Elementwise functions of the spec language and of CAS answers. */
export const FUNCTIONS = [
  "exp",
  "log",
  "tanh",
  "abs",
  "sin",
  "cos",
  "sigmoid",
  "sign",
  "cosh",
  "sinh",
  "sech",
  "stop",
  "relu",
  "erf",
  "log1p",
  "expm1",
  "softplus",
] as const;
export type Fn = (typeof FUNCTIONS)[number];

/** Comparisons: only the condition of a `where` holds one. */
export const COMPARISONS = ["<", "<=", ">", ">=", "==", "!="] as const;
export type Comparison = (typeof COMPARISONS)[number];

export type Expr = Num | Sym | Ref | Add | Mul | Pow | Call | Sum | Max | Where | Delta | Stored;

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
 * `max(body, indices)`: the largest value of the body over the bound indices (`min` is
 * `-max(-body)`). Its gradient goes to the elements that attain it, split evenly among ties
 * (reverse.ts); under `stop(...)` it is a shift that keeps `exp` finite.
 */
export interface Max extends Base {
  readonly kind: "max";
  readonly body: Expr;
  readonly indices: readonly string[];
}

/**
 * `where(left op right, then, else)`: `then` where the comparison holds, `else` where it does not
 * (a NaN operand makes every comparison but `!=` false). Only the chosen branch is evaluated, so a
 * branch that is not finite where it is not chosen (`where(x > 0, log(x), 0)`) costs nothing; the
 * gradient goes whole to the chosen branch, and none to the comparison's operands.
 *
 * Only `then` and `else` are children. The comparison's operands are kept exactly as the front end
 * or the chain rule wrote them: no rewrite may change how they round, because a tie test
 * (`x[n,c] == max(x[n,c'], c')`, the gradient of a max) holds only when both sides compute the
 * same bits. They are renamed with the node (build.ts) and evaluated by the interpreter; no
 * gradient flows through them, so no walker that looks for refs to differentiate needs them.
 */
export interface Where extends Base {
  readonly kind: "where";
  readonly op: Comparison;
  readonly left: Expr;
  readonly right: Expr;
  readonly then: Expr;
  readonly else: Expr;
}

/**
 * What an index position holds besides a plain letter. Today a gather: the value of an element of
 * an integer input (`label[n]` in `z[n, label[n]]`). Issue 14's affine forms (`2*i + k - 1`) are the
 * next variant; every consumer switches on `kind`.
 */
export type IndexForm = { readonly kind: "gather"; readonly from: Ref } | AffineForm;

/**
 * An affine index (CONTRACT §4.3): `(sum of coef*index + offset) / divisor`, integer literals and
 * letters only (`2*i + k - 1` has divisor 1). The delta `delta(v, form)` holds where `divisor*v`
 * equals the numerator: a value outside `[0, size of v)` matches no `v`, so a read there is 0 (zero
 * padding) and the gradient of such a read is dropped, both by the delta's meaning alone. A divisor
 * other than 1 comes only from solving an index equation for a strided letter (scatter-to-gather,
 * simplify/gather.ts): `delta(l, 2*i + k)` is `delta(i, (l - k)/2)`.
 */
export interface AffineForm {
  readonly kind: "affine";
  /** Letters with their coefficients, sorted by letter, no zero coefficient, each letter once. */
  readonly terms: readonly { readonly index: string; readonly coef: number }[];
  readonly offset: number;
  /** A positive integer; 1 for every form a spec writes. */
  readonly divisor: number;
}

/** The indices an index form reads: a gather's ref's indices, an affine form's letters. */
export function formIndices(f: IndexForm): readonly string[] {
  switch (f.kind) {
    case "gather":
      return f.from.indices;
    case "affine":
      return f.terms.map((t) => t.index);
    default:
      return assertNever(f, "index form");
  }
}

/** A short name for the local that holds a form's value (`label_id`, `at`). */
export function formName(f: IndexForm): string {
  switch (f.kind) {
    case "gather":
      return `${f.from.name}_id`;
    case "affine":
      return "at";
    default:
      return assertNever(f, "index form");
  }
}

/** An affine form as text over the letters' names: `2*i + k - 1`, `(l - k + 1)/2`. */
export function affineText(f: AffineForm, name: (i: string) => string = (i) => i): string {
  let s = "";
  for (const t of f.terms) {
    const mag = Math.abs(t.coef) === 1 ? name(t.index) : `${Math.abs(t.coef)}*${name(t.index)}`;
    s += s === "" ? (t.coef < 0 ? `-${mag}` : mag) : t.coef < 0 ? ` - ${mag}` : ` + ${mag}`;
  }
  if (f.offset !== 0 || s === "") s += s === "" ? String(f.offset) : f.offset < 0 ? ` - ${-f.offset}` : ` + ${f.offset}`;
  return f.divisor === 1 ? s : `(${s})/${f.divisor}`;
}

/**
 * `delta(index, form)`: 1 where the letter `index` equals the value of `form`, else 0. A read with an
 * index form is a sum over a delta, `z[n, label[n]] = sum(delta(c, label[n]) * z[n,c], c)`, so the
 * chain rule needs nothing new: the gradient `dz[n,c] = delta(c, label[n]) * ...` is the scatter,
 * and repeated ids add up because `sum` does. A lowering replaces a sum over `index` of a product
 * with a delta by a direct read (or, for a gradient, a scatter-add at `form`). Its form's refs are
 * not children: a delta is a leaf to every walker (the form is an integer input, never rewritten
 * and never differentiated); `free` holds `index` and the form's indices.
 */
export interface Delta extends Base {
  readonly kind: "delta";
  readonly index: string;
  readonly form: IndexForm;
}

/**
 * `stored(body)`: the scheduler's mark for "computed once into an array over its free indices and
 * read from there" (a product that does not move with every loop of the reduction around it). Only
 * `compiler/schedule` builds it, after simplification; its value is its body's.
 */
export interface Stored extends Base {
  readonly kind: "stored";
  readonly body: Expr;
}

/** A reduction node: `sum` or `max`. */
export type Reduction = Sum | Max;
export function isReduction(e: Expr): e is Reduction {
  return e.kind === "sum" || e.kind === "max";
}

export function assertNever(x: never, what = "value"): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(x)}`);
}

/**
 * Whether `x` costs a library call where it is computed: a function other than `stop`, or a power
 * whose exponent is not a whole number (a root). Costs, statistics and the emitter agree on it.
 */
export function isTranscendental(x: Expr): boolean {
  return (x.kind === "call" && x.fn !== "stop") || (x.kind === "pow" && !(x.exp.kind === "num" && Number.isInteger(x.exp.value)));
}

/** Whether `e` is a `stored(...)` array rather than a reduction. */
export function isStored(e: Expr): e is Stored {
  return e.kind === "stored";
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

/** Leaves (numbers, symbols, refs, deltas) by their key text (`keyOf`). */
const leaves = new Map<string, Expr>();
/**
 * Nodes with children by a number mixed from their kind, scalars and children's ids: no key text is
 * built for the nodes a rewrite makes most of (a large sum rebuilt joined all its terms' ids).
 * Equal numbers are told apart by comparing the payloads (`samePayload`).
 */
const composites = new Map<number, Expr[]>();
let nextId = 0;

function mix(h: number, x: number): number {
  h = Math.imul(h ^ x, 0x01000193) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}
function hashString(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) h = mix(h, s.charCodeAt(i));
  return h;
}
/** The sorted union of sorted lists; a list itself when every other is empty or equal to it (most nodes). */
function union(lists: readonly (readonly string[])[]): readonly string[] {
  let only: readonly string[] | undefined;
  for (const l of lists) {
    if (l.length === 0 || l === only) continue;
    if (only === undefined || (l.length === only.length && l.every((x, k) => x === only![k]))) {
      only ??= l;
      continue;
    }
    const s = new Set<string>();
    for (const m of lists) for (const x of m) s.add(x);
    return [...s].sort();
  }
  return only ?? [];
}

export type Payload =
  | { kind: "num"; value: number }
  | { kind: "sym"; name: string; role: "const" | "size" }
  | { kind: "ref"; name: string; space: "value" | "grad"; indices: readonly string[] }
  | { kind: "add"; terms: readonly Expr[] }
  | { kind: "mul"; factors: readonly Expr[] }
  | { kind: "pow"; base: Expr; exp: Expr }
  | { kind: "call"; fn: Fn; arg: Expr }
  | { kind: "sum" | "max"; body: Expr; indices: readonly string[] }
  | { kind: "where"; op: Comparison; left: Expr; right: Expr; then: Expr; else: Expr }
  | { kind: "delta"; index: string; form: IndexForm }
  | { kind: "stored"; body: Expr };

/** The interning key of an index form. */
function formKey(f: IndexForm): string {
  switch (f.kind) {
    case "gather":
      return `@${f.from.id}`;
    case "affine":
      return `~${f.terms.map((t) => `${t.coef}*${t.index}`).join("+")}+${f.offset}/${f.divisor}`;
    default:
      return assertNever(f, "index form");
  }
}

/**
 * The one constructor of nodes, used only by the factory (build.ts): equal payloads, one node. The
 * key is all a lookup needs; a node's hash, free indices and height are computed once, when it is made.
 */
export function intern(p: Payload): Expr {
  const h = compositeKey(p);
  if (h === undefined) {
    const key = keyOf(p);
    const found = leaves.get(key);
    if (found) return found;
    const node = Object.freeze({ ...p, id: nextId++, ...derivedOf(p, key) }) as Expr;
    leaves.set(key, node);
    return node;
  }
  const bucket = composites.get(h);
  if (bucket) for (const e of bucket) if (samePayload(e, p)) return e;
  const node = Object.freeze({ ...p, id: nextId++, ...derivedOf(p, "") }) as Expr;
  if (bucket) bucket.push(node);
  else composites.set(h, [node]);
  return node;
}

/** A short text's hash, remembered (function names, comparison operators, index lists). */
const textHashes = new Map<string, number>();
function textHash(s: string): number {
  let h = textHashes.get(s);
  if (h === undefined) textHashes.set(s, (h = hashString(s)));
  return h;
}

/** The number a node with children is found by; undefined for a leaf. */
function compositeKey(p: Payload): number | undefined {
  switch (p.kind) {
    case "add":
    case "mul": {
      let h = p.kind === "add" ? 1 : 2;
      for (const x of p.kind === "add" ? p.terms : p.factors) h = mix(h, x.id);
      return h;
    }
    case "pow":
      return mix(mix(3, p.base.id), p.exp.id);
    case "call":
      return mix(mix(4, textHash(p.fn)), p.arg.id);
    case "sum":
    case "max":
      return mix(mix(p.kind === "sum" ? 5 : 6, textHash(p.indices.join(","))), p.body.id);
    case "where":
      return mix(mix(mix(mix(mix(7, textHash(p.op)), p.left.id), p.right.id), p.then.id), p.else.id);
    case "stored":
      return mix(8, p.body.id);
    default:
      return undefined;
  }
}

const sameList = <T>(a: readonly T[], b: readonly T[]) => a.length === b.length && a.every((x, k) => x === b[k]);

/** Whether node `e` has the payload `p` (a node with children: its kind, scalars and children). */
function samePayload(e: Expr, p: Payload): boolean {
  if (e.kind !== p.kind) return false;
  switch (p.kind) {
    case "add":
      return sameList((e as Expr & { kind: "add" }).terms, p.terms);
    case "mul":
      return sameList((e as Expr & { kind: "mul" }).factors, p.factors);
    case "pow": {
      const x = e as Expr & { kind: "pow" };
      return x.base === p.base && x.exp === p.exp;
    }
    case "call": {
      const x = e as Expr & { kind: "call" };
      return x.fn === p.fn && x.arg === p.arg;
    }
    case "sum":
    case "max": {
      const x = e as Expr & { kind: "sum" | "max" };
      return x.body === p.body && sameList(x.indices, p.indices);
    }
    case "where": {
      const x = e as Expr & { kind: "where" };
      return x.op === p.op && x.left === p.left && x.right === p.right && x.then === p.then && x.else === p.else;
    }
    case "stored":
      return (e as Expr & { kind: "stored" }).body === p.body;
    default:
      return false;
  }
}

/** What makes a payload the node it is: its kind, its scalars and its children's ids. */
function keyOf(p: Payload): string {
  switch (p.kind) {
    case "num":
      return `n${Object.is(p.value, -0) ? 0 : p.value}`;
    case "sym":
      return `s${p.role}:${p.name}`;
    case "ref":
      return `r${p.space}:${p.name}[${p.indices.join(",")}]`;
    case "add":
    case "mul":
      return `${p.kind}(${(p.kind === "add" ? p.terms : p.factors).map((x) => x.id).join(",")})`;
    case "pow":
      return `pow(${p.base.id},${p.exp.id})`;
    case "call":
      return `${p.fn}(${p.arg.id})`;
    case "sum":
    case "max":
      return `${p.kind}(${p.body.id};${p.indices.join(",")})`;
    case "where":
      return `where${p.op}(${[p.left, p.right, p.then, p.else].map((x) => x.id).join(",")})`;
    case "delta":
      return `delta(${p.index};${formKey(p.form)})`;
    case "stored":
      return `stored(${p.body.id})`;
    default:
      return assertNever(p, "payload");
  }
}

/** A new node's hash, free indices and height (`key`: keyOf(p)). */
function derivedOf(p: Payload, key: string): { hash: number; free: readonly string[]; height: number } {
  switch (p.kind) {
    case "num":
    case "sym":
      return { hash: hashString(key), free: [], height: 0 };
    case "ref":
      return { hash: hashString(key), free: [...new Set(p.indices)].sort(), height: 0 };
    case "add":
    case "mul": {
      const xs = p.kind === "add" ? p.terms : p.factors;
      let hash = hashString(p.kind);
      let height = 0;
      for (const x of xs) {
        hash = mix(hash, x.hash);
        height = Math.max(height, x.height);
      }
      return { hash, free: union(xs.map((x) => x.free)), height };
    }
    case "pow":
      return { hash: mix(mix(hashString("pow"), p.base.hash), p.exp.hash), free: union([p.base.free, p.exp.free]), height: Math.max(p.base.height, p.exp.height) };
    case "call":
      return { hash: mix(hashString(p.fn), p.arg.hash), free: p.arg.free, height: p.arg.height };
    case "sum":
    case "max":
      return { hash: mix(hashString(`${p.kind};${p.indices.join(",")}`), p.body.hash), free: p.body.free.filter((i) => !p.indices.includes(i)), height: p.body.height + 1 };
    case "where": {
      const xs = [p.left, p.right, p.then, p.else];
      return { hash: xs.reduce((h, x) => mix(h, x.hash), hashString(`where${p.op}`)), free: union(xs.map((x) => x.free)), height: Math.max(...xs.map((x) => x.height)) };
    }
    case "delta":
      return { hash: mix(hashString(`delta;${p.index}`), p.form.kind === "gather" ? p.form.from.hash : hashString(formKey(p.form))), free: union([[p.index], formIndices(p.form)]), height: 0 };
    case "stored":
      return { hash: mix(hashString("stored"), p.body.hash), free: p.body.free, height: p.body.height + 1 };
    default:
      return assertNever(p, "payload");
  }
}

// ---------------------------------------------------------------------------------------------
// Children

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
    case "stored":
      return [e.body];
    case "where":
      // the comparison's operands are not children: no rewrite reaches them (see Where)
      return [e.then, e.else];
    case "delta":
      return [];
    default:
      return assertNever(e, "expression");
  }
}
