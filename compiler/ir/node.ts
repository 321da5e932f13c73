/**
 * The expression IR's nodes: readonly discriminated unions on `kind`, hash-consed by `intern` so
 * that two structurally equal expressions are the same object (equality is `===`, common
 * subexpressions are shared for free, and a rewrite that changes nothing returns its input). Only
 * the factory (build.ts) calls `intern`; ir/expr.ts re-exports everything else.
 */

/** Elementwise functions of the spec language and of CAS answers. */
export const FUNCTIONS = ["exp", "log", "tanh", "abs", "sin", "cos", "sigmoid", "sign", "cosh", "sinh", "sech", "stop"] as const;
export type Fn = (typeof FUNCTIONS)[number];

export type Expr = Num | Sym | Ref | Add | Mul | Pow | Call | Sum | Max | Stored;

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

export type Payload =
  | { kind: "num"; value: number }
  | { kind: "sym"; name: string; role: "const" | "size" }
  | { kind: "ref"; name: string; space: "value" | "grad"; indices: readonly string[] }
  | { kind: "add"; terms: readonly Expr[] }
  | { kind: "mul"; factors: readonly Expr[] }
  | { kind: "pow"; base: Expr; exp: Expr }
  | { kind: "call"; fn: Fn; arg: Expr }
  | { kind: "sum" | "max"; body: Expr; indices: readonly string[] }
  | { kind: "stored"; body: Expr };

/** The one constructor of nodes, used only by the factory (build.ts): equal payloads, one node. */
export function intern(p: Payload): Expr {
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
    case "stored":
      key = `stored(${p.body.id})`;
      hash = mix(hashString("stored"), p.body.hash);
      free = p.body.free;
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
    default:
      return assertNever(e, "expression");
  }
}
