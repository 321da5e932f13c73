/**
 * Every limit the compiler puts on a spec, in one place. A spec is untrusted data: each stage has a
 * budget, so that a build of any spec ends in bounded time and memory with a result or a spec error
 * that names the limit. The numbers are far above what any layer of the library needs; each says
 * why it is what it is.
 */

/**
 * Deepest nesting of one expression: parentheses, function calls, signs and powers, counted in the
 * parser. The library's deepest step nests 5 levels. Every stage walks expressions recursively
 * (parser, resolver, CAS, simplifier, printer, interpreter), so the depth must stay far below the
 * JavaScript stack (about 10 000 frames, several per level in some stages).
 */
export const MAX_NESTING = 64;

/**
 * Most steps in a spec. The library's largest has 12. A long chain of steps makes the inlined
 * gradients and the generated module grow with the number of steps; this keeps a spec of up to
 * 100 kB within the build budget.
 */
export const MAX_STEPS = 1000;

/**
 * Most indices of one tensor (input or step). The library's largest has 4 (groupnorm). Every build
 * is verified by interpreting the spec on tensors of 2 or 3 elements per index, so a tensor of rank
 * r costs up to 3^r elements there: rank 24 took minutes and 17 GB before this limit.
 */
export const MAX_RANK = 8;

/**
 * Deepest nesting of reductions inside one step (`sum(... sum(...) ...)`). The library's deepest is
 * 2 (attention). The reference interpreter that verifies every build evaluates a reduction once
 * per value of the indices outside it, so its work grows as size^depth.
 */
export const MAX_REDUCTION_NESTING = 8;

/**
 * Most terms of one sum, or factors of one product, in any expression the compiler emits (a step,
 * a naive backward statement, a fused gradient). The generated module is formatted by prettier,
 * whose TypeScript parser recurses once per operator of a chain `a + b + ...` and runs out of stack
 * somewhere past 700 terms. The library's longest sum has 6 terms.
 */
export const MAX_TERMS = 500;

/**
 * Largest flat expression (tree nodes, shared nodes counted at each use) that is sent to the CAS;
 * a larger one goes straight to the compiler's own derivative rules. The largest the library sends
 * has about 40 nodes; nerdamer's time grows much faster than the size of its input.
 */
export const MAX_CAS_NODES = 400;

/**
 * Time one CAS call may take (ms) before it is stopped and the compiler's own rules answer. The
 * library's slowest call takes about 15 ms.
 */
export const CAS_CALL_DEADLINE_MS = 2_000;

/**
 * Time all CAS calls of one build may take together (ms); after that the build uses only the
 * compiler's own rules. Bounds a spec with many steps that each make the CAS time out.
 */
export const CAS_BUILD_BUDGET_MS = 10_000;

/**
 * Memory the CAS worker may use (MB of old-generation heap). A CAS call that needs more is stopped
 * like one that takes too long. The library needs a few MB.
 */
export const CAS_HEAP_MB = 256;

/**
 * Largest expression (tree nodes) a simplifier phase may build. The library's largest gradient has
 * about 1 000 nodes.
 */
export const MAX_SIMPLIFY_NODES = 200_000;

/**
 * Passes of a rule set over an expression before the runner gives up (`simplify/runner.ts`). Every
 * rule set of the library reaches its fixpoint in a handful; a set that does not terminate ends
 * here with a spec error, not a hang.
 */
export const MAX_RULE_PASSES = 200;

/**
 * How many times in a row a node's rewrite may be rewritten again at once (the runner normalizes a
 * rule's result before moving up). A rule that takes one operand at a time, like distributing over
 * one term of a sum, needs one per operand: at least MAX_TERMS.
 */
export const MAX_RULE_REWRITES_PER_NODE = 2 * MAX_TERMS;

/** Rounds of the vanish phase, each replacing one reduction by a cheaper expansion. */
export const MAX_PHASE_ROUNDS = 20;

/**
 * Time a whole build may take (ms) before it ends with a spec error naming the stage it was in:
 * the last line of defence, below the promise that a build of any spec of up to 100 kB ends
 * within 60 s (start-up, formatting and writing come on top: a spec that used the whole of an
 * earlier 45 s budget ended at 50 s through the command line). The library's slowest spec builds in about 1 s. `CompileOptions.timeBudgetMs`
 * overrides it.
 */
export const BUILD_TIME_BUDGET_MS = 40_000;

/** A spec went past one of the limits above: the driver reports it as a spec error. */
export class LimitExceeded extends Error {
  override name = "LimitExceeded";
}

/**
 * The time budget of the build that is running. Stages are synchronous, so the driver installs a
 * build's budget around each stage (`withBudget`) and long loops call `checkBudget()`.
 */
export class Budget {
  readonly start = Date.now();
  /** Time the CAS has taken in this build (ms). */
  casMs = 0;
  stage = "parse";
  constructor(
    readonly limitMs: number = BUILD_TIME_BUDGET_MS,
    /** How long one CAS call may take (ms) before the own rules answer it. */
    readonly casCallMs: number = CAS_CALL_DEADLINE_MS,
  ) {}

  check(): void {
    if (Date.now() - this.start > this.limitMs)
      throw new LimitExceeded(`the build exceeded its time budget of ${this.limitMs / 1000} s in stage '${this.stage}'; the spec is too large or too deeply nested for this compiler`);
  }
}

let current: Budget | undefined;
let calls = 0;

/** Runs a synchronous stage under `budget`. */
export function withBudget<T>(budget: Budget, stage: string, f: () => T): T {
  const outer = current;
  current = budget;
  budget.stage = stage;
  try {
    budget.check();
    return f();
  } finally {
    current = outer;
  }
}

/** The budget of the running build, if any. */
export function currentBudget(): Budget | undefined {
  return current;
}

/** Ends the build if it is over its time budget; cheap enough to call in inner loops. */
export function checkBudget(): void {
  if (current && (++calls & 15) === 0) current.check();
}
