/**
 * The loop IR: what a kernel does, statement by statement, after scheduling and before any
 * backend. `schedule/lower.ts` builds it from the schedule; the passes in this folder rewrite it
 * (one per file: unroll, accumulate, scalar-replace, hoist); a backend only prints it
 * (`emit/code.ts` prints TypeScript). Nodes are readonly discriminated unions on `kind`, walked by
 * exhaustive switches; `print.ts` writes them as text, one statement per line.
 *
 * Arrays are addressed by one index per dimension (`xhat[n + 1, d]`); the backend flattens them
 * row-major with the dimensions the kernel declares. Every name (array, local, loop counter,
 * size) is final: a pass that adds one takes it from the kernel's `Namer`.
 */
import { assertNever } from "../ir/node.js";

/** Element type of an array or a local: float64, float32, and int32 for integer inputs and gathers. */
export type Elem = "f64" | "f32" | "i32";

/** One index of an array access: a loop counter plus a constant (`n + 1`), or a constant alone. */
export interface Index {
  readonly var: string | undefined;
  readonly plus: number;
}

export type MathFn = "exp" | "log" | "tanh" | "abs" | "sin" | "cos" | "sign" | "cosh" | "sinh" | "sqrt" | "pow" | "max" | "erf" | "log1p" | "expm1" | "floor";

/** A comparison of a `select`. */
export type CompareOp = "<" | "<=" | ">" | ">=" | "==" | "!=";

/** A scalar expression. `+ - * /` are binary and evaluate exactly in the order of the tree. */
export type Value =
  | { readonly kind: "num"; readonly value: number }
  /** A size or a constant of the spec, or any other local: read by name. */
  | { readonly kind: "local"; readonly name: string }
  | { readonly kind: "load"; readonly array: string; readonly at: readonly Index[] }
  | { readonly kind: "neg"; readonly arg: Value }
  | { readonly kind: "bin"; readonly op: "+" | "-" | "*" | "/"; readonly a: Value; readonly b: Value }
  | { readonly kind: "call"; readonly fn: MathFn; readonly args: readonly Value[] }
  /** `left op right ? then : else`: only the chosen branch is evaluated (a spec's `where`, a delta written as a test). */
  | { readonly kind: "select"; readonly op: CompareOp; readonly left: Value; readonly right: Value; readonly then: Value; readonly else: Value };

/** How a store combines with the cell: overwrite, add, or keep the larger. */
export type StoreOp = "=" | "+=" | "max=";

/** A place written: an array cell or a mutable local. */
export type Place = { readonly kind: "cell"; readonly array: string; readonly at: readonly Index[] } | { readonly kind: "local"; readonly name: string };

export type Stmt =
  /**
   * `for index in 0..extent`: with `resume`, the loop starts where the counter stands (declared by a
   * `counter` before it) and runs while `index + step <= extent`, so a remainder loop can follow.
   */
  | {
      readonly kind: "for";
      readonly index: string;
      readonly extent: string;
      readonly step: number;
      readonly resume: boolean;
      /** A schedule directive for `unroll.ts`: run this many iterations per trip (1: none). */
      readonly unroll: number;
      /** Set by `vectorize.ts`: the iterations of one trip (`step` of them) run lane-parallel, this many lanes (a SIMD backend's directive). */
      readonly vector?: number;
      readonly body: readonly Stmt[];
    }
  /** A loop counter that a `resume` loop and its remainder share: `let n = 0`. */
  | { readonly kind: "counter"; readonly index: string }
  /** A scope of its own, so the next block can reuse the names of this one's counters. */
  | { readonly kind: "block"; readonly body: readonly Stmt[] }
  /** A local, constant unless `mutable`. */
  | { readonly kind: "let"; readonly name: string; readonly type: Elem; readonly mutable: boolean; readonly value: Value; readonly note?: string }
  | { readonly kind: "store"; readonly place: Place; readonly op: StoreOp; readonly value: Value }
  /**
   * A zeroed array over `dims` (size names, or a number of slots), with a note saying what it holds.
   * `fields` names the slots of the last dimension: values kept side by side per cell (batchnorm's
   * three per-column coefficients of dx, read together) are one interleaved array.
   */
  | { readonly kind: "alloc"; readonly array: string; readonly type: Elem; readonly dims: readonly string[]; readonly note: string; readonly fields?: readonly string[] }
  /** Every element of `to` set from `from` (the same length): a float64 scratch array rounded into its float32 output. */
  | { readonly kind: "copy"; readonly from: string; readonly to: string }
  /** Runs `then` only when the caller gave the output array `output` (backend-specific test). */
  | { readonly kind: "if-given"; readonly output: string; readonly then: readonly Stmt[] }
  | { readonly kind: "fill"; readonly array: string; readonly value: number }
  | { readonly kind: "comment"; readonly text: string }
  | { readonly kind: "blank" };

/** An array a kernel reads or writes without allocating it in its body, with its dimensions (size names). */
export interface ArrayDecl {
  readonly name: string;
  readonly type: Elem;
  readonly dims: readonly string[];
}

/** A kernel body: the arrays it is given, and its statements. */
export interface Kernel {
  readonly arrays: readonly ArrayDecl[];
  readonly body: readonly Stmt[];
}

export { assertNever };

// ---------------------------------------------------------------------------------------------
// Builders

export const at = (v: string | undefined, plus = 0): Index => ({ var: v, plus });
export const num = (value: number): Value => ({ kind: "num", value });
export const local = (name: string): Value => ({ kind: "local", name });
export const load = (array: string, ...idx: readonly (Index | string)[]): Value => ({ kind: "load", array, at: idx.map(ix) });
export const neg = (arg: Value): Value => ({ kind: "neg", arg });
export const bin = (op: "+" | "-" | "*" | "/", a: Value, b: Value): Value => ({ kind: "bin", op, a, b });
export const call = (fn: MathFn, ...args: Value[]): Value => ({ kind: "call", fn, args });
export const select = (op: CompareOp, left: Value, right: Value, then: Value, otherwise: Value): Value => ({ kind: "select", op, left, right, then, else: otherwise });
export const cell = (array: string, ...idx: readonly (Index | string)[]): Place => ({ kind: "cell", array, at: idx.map(ix) });
export const place = (name: string): Place => ({ kind: "local", name });
export const loop = (index: string, extent: string, body: readonly Stmt[], unroll = 1): Stmt => ({ kind: "for", index, extent, step: 1, resume: false, unroll, body });
export const let_ = (name: string, value: Value, mutable = false, type: Elem = "f64"): Stmt => ({ kind: "let", name, type, mutable, value });
export const store = (p: Place, value: Value, op: StoreOp = "="): Stmt => ({ kind: "store", place: p, op, value });

function ix(i: Index | string): Index {
  return typeof i === "string" ? at(i) : i;
}

/** Left-to-right sum of values (one value stands alone). */
export function sumOf(vs: readonly Value[]): Value {
  return vs.slice(1).reduce((a, b) => bin("+", a, b), vs[0]!);
}

// ---------------------------------------------------------------------------------------------
// Walkers

/** The value with `f` applied bottom-up to every node (a node `f` returns unchanged is kept). */
export function mapValue(v: Value, f: (v: Value) => Value): Value {
  switch (v.kind) {
    case "num":
    case "local":
    case "load":
      return f(v);
    case "neg":
      return f(neg(mapValue(v.arg, f)));
    case "bin":
      return f(bin(v.op, mapValue(v.a, f), mapValue(v.b, f)));
    case "call":
      return f(call(v.fn, ...v.args.map((a) => mapValue(a, f))));
    case "select":
      return f(select(v.op, mapValue(v.left, f), mapValue(v.right, f), mapValue(v.then, f), mapValue(v.else, f)));
    default:
      return assertNever(v);
  }
}

/** Every node of a value, parents before children, left to right. */
export function valueNodes(v: Value): Value[] {
  const out: Value[] = [];
  const go = (x: Value): void => {
    out.push(x);
    switch (x.kind) {
      case "num":
      case "local":
      case "load":
        return;
      case "neg":
        return go(x.arg);
      case "bin":
        go(x.a);
        return go(x.b);
      case "call":
        return x.args.forEach(go);
      case "select":
        go(x.left);
        go(x.right);
        go(x.then);
        return go(x.else);
      default:
        return assertNever(x);
    }
  };
  go(v);
  return out;
}

/** The statements with `value` applied to every value, `index` to every index and `name` to every local name read or written. */
export interface StmtMap {
  readonly value?: (v: Value) => Value;
  readonly index?: (i: Index) => Index;
}

export function mapStmts(body: readonly Stmt[], m: StmtMap): Stmt[] {
  const idx = (is: readonly Index[]) => (m.index ? is.map(m.index) : is);
  const val = (v: Value): Value => {
    const withIdx = m.index ? mapValue(v, (x) => (x.kind === "load" ? { ...x, at: idx(x.at) } : x)) : v;
    return m.value ? mapValue(withIdx, m.value) : withIdx;
  };
  const plc = (p: Place): Place => (p.kind === "cell" ? { ...p, at: idx(p.at) } : p);
  return body.map((s): Stmt => {
    switch (s.kind) {
      case "for":
        return { ...s, body: mapStmts(s.body, m) };
      case "block":
        return { ...s, body: mapStmts(s.body, m) };
      case "if-given":
        return { ...s, then: mapStmts(s.then, m) };
      case "let":
        return { ...s, value: val(s.value) };
      case "store":
        return { ...s, place: plc(s.place), value: val(s.value) };
      case "counter":
      case "alloc":
      case "copy":
      case "fill":
      case "comment":
      case "blank":
        return s;
      default:
        return assertNever(s, "statement");
    }
  });
}

/** Every statement, parents before children, in order. */
export function stmtNodes(body: readonly Stmt[]): Stmt[] {
  const out: Stmt[] = [];
  for (const s of body) {
    out.push(s);
    if (s.kind === "for" || s.kind === "block") out.push(...stmtNodes(s.body));
    else if (s.kind === "if-given") out.push(...stmtNodes(s.then));
  }
  return out;
}

/** The values a statement reads (its own, not those of nested statements). */
export function valuesOf(s: Stmt): Value[] {
  switch (s.kind) {
    case "let":
      return [s.value];
    case "store":
      return s.place.kind === "cell" ? [s.value, load(s.place.array, ...s.place.at)] : [s.value, local(s.place.name)];
    case "for":
      return [local(s.extent)];
    case "copy":
      return [];
    case "counter":
    case "block":
    case "alloc":
    case "if-given":
    case "fill":
    case "comment":
    case "blank":
      return [];
    default:
      return assertNever(s, "statement");
  }
}

/** Names of the arrays written anywhere in `body`. */
export function written(body: readonly Stmt[]): Set<string> {
  const out = new Set<string>();
  for (const s of stmtNodes(body)) {
    if (s.kind === "store" && s.place.kind === "cell") out.add(s.place.array);
    if (s.kind === "copy") out.add(s.to);
    if (s.kind === "fill") out.add(s.array);
  }
  return out;
}

/** Whether a value reads the loop counter `v` or a local in `locals`. */
export function dependsOn(x: Value, vars: ReadonlySet<string>): boolean {
  return valueNodes(x).some((n) => (n.kind === "local" && vars.has(n.name)) || (n.kind === "load" && n.at.some((i) => i.var !== undefined && vars.has(i.var))));
}

// ---------------------------------------------------------------------------------------------
// Names

/** Allocates distinct identifiers within one kernel; a backend gives it the words it reserves. */
export class Namer {
  private readonly used = new Set<string>();
  constructor(
    taken: Iterable<string> = [],
    private readonly reserved: ReadonlySet<string> = new Set(),
  ) {
    for (const t of taken) this.used.add(t);
  }
  fresh(want: string): string {
    let base = want.replace(/[^A-Za-z0-9_$]/g, "_");
    if (/^[0-9]/.test(base)) base = `_${base}`;
    let name = base;
    for (let k = 1; this.reserved.has(name) || this.used.has(name); k++) name = this.reserved.has(base) && k === 1 ? `${base}_` : `${base}${k}`;
    this.used.add(name);
    return name;
  }
  /**
   * A namer for an inner scope (a loop body, a pass's block): it avoids every name taken so far,
   * and what it takes stays inside, so sibling scopes reuse names (`xhat_n_d` in the unrolled loop
   * and in its remainder).
   */
  child(): Namer {
    return new Namer(this.used, this.reserved);
  }
}

/** Every name a body uses or declares (arrays, locals, counters, sizes), in order of appearance: a `Namer` for a pass on it avoids them. */
export function namesIn(body: readonly Stmt[]): string[] {
  const out = new Set<string>();
  const val = (v: Value) => {
    for (const n of valueNodes(v)) {
      if (n.kind === "local") out.add(n.name);
      if (n.kind === "load") {
        out.add(n.array);
        for (const i of n.at) if (i.var !== undefined) out.add(i.var);
      }
    }
  };
  for (const s of stmtNodes(body)) {
    switch (s.kind) {
      case "for":
        out.add(s.index);
        out.add(s.extent);
        break;
      case "counter":
        out.add(s.index);
        break;
      case "let":
        out.add(s.name);
        break;
      case "alloc":
        out.add(s.array);
        s.dims.forEach((d) => out.add(d));
        break;
      case "copy":
        out.add(s.from);
        out.add(s.to);
        break;
      case "fill":
        out.add(s.array);
        break;
      case "store":
      case "block":
      case "if-given":
      case "comment":
      case "blank":
        break;
      default:
        assertNever(s, "statement");
    }
    valuesOf(s).forEach(val);
  }
  return [...out];
}

/** A readable name for the value of `array` at `at`: `xhat_n1_d` for `xhat[n + 1, d]`. */
export function cellName(array: string, is: readonly Index[]): string {
  const part = (i: Index) => (i.var === undefined ? String(i.plus) : i.plus === 0 ? i.var : `${i.var}${i.plus}`);
  return [array, ...is.map(part)].join("_");
}
