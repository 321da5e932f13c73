/**
 * The expression IR, in four files, re-exported here as one module:
 * - node.ts   the node types (readonly unions on `kind`), index names, hash-consing, `children`;
 * - build.ts  the factory, the only way to build a node, with its canonical forms and ordering;
 * - walk.ts   the one collecting walker (`collect`) and the one rewriting walker (`rewrite`);
 * - print.ts  the deterministic printer.
 */
export {
  FUNCTIONS,
  COMPARISONS,
  assertNever,
  canonicalSize,
  children,
  isCanonicalIndex,
  isReduction,
  isStored,
  isTranscendental,
  sizeResolver,
  formIndices,
  formName,
  affineText,
  type AffineForm,
  type Add,
  type Call,
  type Comparison,
  type Delta,
  type IndexForm,
  type Expr,
  type Fn,
  type Max,
  type Mul,
  type Num,
  type Pow,
  type Reduction,
  type Ref,
  type Stored,
  type SizeOf,
  type Sum,
  type Sym,
  type Where,
} from "./node.js";
export * from "./build.js";
export * from "./walk.js";
export * from "./print.js";
