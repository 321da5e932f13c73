/**
 * Vectorization for the WebAssembly backend (placeholder: the body as it is).
 */
import type { Stmt } from "./ir.js";

export function vectorize(body: readonly Stmt[], floats: "f64" | "f32"): Stmt[] {
  void floats;
  return [...body];
}
