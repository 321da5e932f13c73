/**
 * Index extents computed from the caller's sizes (CONTRACT §4.3): `i: "L - K + 1"`, `p: "L/2"`.
 * The front end gives each such extent a size symbol of its own (`I`), so every later stage reads
 * it like a caller's size; the module computes it from the sizes the caller passes and refuses a
 * value that is not a positive integer. `/` is floor division.
 */
import { assertNever } from "./node.js";
import type { DerivedSize, Program, SizeExpr } from "./program.js";

export type { DerivedSize, SizeExpr };

/** The value of a size expression; NaN where a divisor is 0. */
export function evalSize(e: SizeExpr, sizes: Readonly<Record<string, number>>): number {
  switch (e.kind) {
    case "num":
      return e.value;
    case "sym": {
      const v = sizes[e.name];
      if (v === undefined) throw new Error(`no size '${e.name}'`);
      return v;
    }
    case "bin": {
      const a = evalSize(e.a, sizes);
      const b = evalSize(e.b, sizes);
      switch (e.op) {
        case "+":
          return a + b;
        case "-":
          return a - b;
        case "*":
          return a * b;
        case "/":
          return b === 0 ? NaN : Math.floor(a / b);
        default:
          return assertNever(e.op, "operator");
      }
    }
    default:
      return assertNever(e, "size expression");
  }
}

/** A size expression as TypeScript over the locals `sym` names. */
export function sizeCode(e: SizeExpr, sym: (name: string) => string): string {
  switch (e.kind) {
    case "num":
      return String(e.value);
    case "sym":
      return sym(e.name);
    case "bin":
      return e.op === "/" ? `Math.floor(${sizeCode(e.a, sym)} / ${sizeCode(e.b, sym)})` : `(${sizeCode(e.a, sym)} ${e.op} ${sizeCode(e.b, sym)})`;
    default:
      return assertNever(e, "size expression");
  }
}

/** The program's computed extents (none for a spec that declares every extent by a symbol). */
export function derivedSizes(p: Program): readonly DerivedSize[] {
  return p.derived ?? [];
}

/** The caller's sizes with every computed extent added (the interpreter and the checks read them all). */
export function withDerived(p: Program, sizes: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [k, v] of Object.entries(sizes)) out[k] = v;
  for (const d of derivedSizes(p)) out[d.name] = evalSize(d.expr, out);
  return out;
}

/** Whether every computed extent of `full` (from `withDerived`) is a positive integer. */
export function extentsPositive(p: Program, full: Readonly<Record<string, number>>): boolean {
  return derivedSizes(p).every((d) => Number.isInteger(full[d.name]) && full[d.name]! >= 1);
}

/**
 * Random sizes in `lo..hi` for the caller's symbols, with the computed extents added, drawn again
 * (up to 100 times, then with the range widened) until every extent is positive.
 */
export function randomSizes(p: Program, rand: () => number, lo: number, hi: number): Record<string, number> {
  for (let trial = 0; ; trial++) {
    const top = hi + Math.floor(trial / 100);
    const base: Record<string, number> = Object.create(null) as Record<string, number>;
    for (const s of p.sizes) base[s] = lo + Math.floor(rand() * (top - lo + 1));
    const full = withDerived(p, base);
    if (extentsPositive(p, full)) return full;
    if (trial > 2000) throw new Error(`no sizes make every computed extent of '${p.name}' positive`);
  }
}
