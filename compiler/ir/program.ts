/**
 * A checked forward program: what the front end produces and every later stage reads.
 */
import type { Expr, SizeOf } from "./expr.js";
/** A size expression over size symbols (`L - K + 1`); `/` is floor division (ir/sizes.ts). */
export type SizeExpr =
  | { readonly kind: "num"; readonly value: number }
  | { readonly kind: "sym"; readonly name: string }
  | { readonly kind: "bin"; readonly op: "+" | "-" | "*" | "/"; readonly a: SizeExpr; readonly b: SizeExpr };

/** An extent computed from sizes: its size symbol, the text the spec wrote and its expression. */
export interface DerivedSize {
  readonly name: string;
  /** The index letters it is the extent of. */
  readonly letters: readonly string[];
  readonly text: string;
  readonly expr: SizeExpr;
}

/** A declared tensor: an input or a step's left-hand side. Rank 0 is a scalar. */
export interface TensorDecl {
  readonly name: string;
  readonly indices: readonly string[];
  /**
   * An input's kind (CONTRACT §4.2): undefined for a float input that gets a gradient; `"nograd"`
   * for a float input that gets none; `"int"` for an integer input (an `Int32Array`), which only
   * stands in index positions (a gather) and gets no gradient. Steps have none.
   */
  readonly kind?: "int" | "nograd";
}

export interface Step extends TensorDecl {
  /** Position in the spec's `steps` list, from 0. */
  readonly position: number;
  /** The step as the user wrote it. */
  readonly text: string;
  readonly rhs: Expr;
}

export interface Program {
  readonly name: string;
  readonly description: string | undefined;
  /** Index letter -> size symbol. */
  readonly letters: Readonly<Record<string, string>>;
  /** Size symbols in order of first declaration. */
  readonly sizes: readonly string[];
  readonly inputs: readonly TensorDecl[];
  readonly constants: readonly { readonly name: string; readonly value: number }[];
  readonly steps: readonly Step[];
  /** The first of `outputs` (what a spec with one output names). */
  readonly output: string;
  /** Every output step, in the order the spec lists them (CONTRACT §4.4). */
  readonly outputs: readonly string[];
  readonly sizeOf: SizeOf;
  /**
   * Extents computed from the sizes (CONTRACT §4.3, `i: "L - K + 1"`), each a size symbol not in
   * `sizes` (the caller does not pass it); undefined or empty when every extent is a symbol.
   */
  readonly derived?: readonly DerivedSize[];
}

/** Whether an input gets a gradient: a float input not declared `nograd`. */
export function isDifferentiable(t: TensorDecl): boolean {
  return t.kind === undefined;
}

export function tensorOf(p: Program, name: string): TensorDecl {
  const t = p.inputs.find((x) => x.name === name) ?? p.steps.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor '${name}' in program '${p.name}'`);
  return t;
}

export function stepOf(p: Program, name: string): Step | undefined {
  return p.steps.find((x) => x.name === name);
}

/** Size symbols of a declared tensor's dimensions. */
export function shapeOf(p: Program, t: TensorDecl): string[] {
  return t.indices.map((i) => p.sizeOf(i));
}
