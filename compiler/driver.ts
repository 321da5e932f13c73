/**
 * The straight-line driver: spec -> checked program -> naive backward -> fused backward ->
 * schedule -> TypeScript module. Each stage's output is verified before the next runs; with
 * `debug`, the IR after every stage is printed so a reader can watch the derivation happen.
 */
import { print, ZERO } from "./ir/expr.js";
import type { Program } from "./ir/program.js";
import { checkSpec, SpecError } from "./parse/check.js";
import type { Backward, Fused } from "./ir/backward.js";
import { differentiate, NoGradient } from "./differentiate/reverse.js";
import { deriveFused, throughOwnValue } from "./simplify/fused.js";
import { schedule, type Schedule } from "./schedule/passes.js";
import { chooseStaged, type StagedChoice } from "./schedule/staged.js";
import { withElementScatters } from "./schedule/scatter.js";
import { adjointClosedForm } from "./simplify/adjoint.js";
import { checkTraining, type Training } from "./parse/state.js";
import { trainingStatements } from "./emit/state.js";
import { emitModule } from "./emit/module.js";
import { wasmBackend } from "./emit/wasm-module.js";
import { kernelStats, type SpecStats } from "./stats.js";
import { verifyProgram, verifyBackward, verifyFused } from "./verify.js";
import { Budget, LimitExceeded, MAX_RANK, MAX_REDUCTION_NESTING, MAX_STEPS, MAX_TERMS, withBudget } from "./limits.js";
import { SimplifyLimit } from "./simplify/runner.js";
import { collect, type Add, type Expr, type Mul } from "./ir/expr.js";
import { deriveDouble, type DoubleBackward } from "./double.js";
import { hasDoubleBackward } from "./differentiate/double.js";

export interface Compiled {
  readonly program: Program;
  readonly backward: Backward;
  readonly fused: Fused;
  readonly schedule: Schedule;
  readonly code: string;
  readonly stats: SpecStats;
  /** The gradients the fused kernel computes the staged way (so another target can be emitted from this build). */
  readonly staged?: StagedChoice;
  /** The spec's state, updates and inference graph (CONTRACT §4.5). */
  readonly training?: Training & { readonly derived: Derived };
  /** The inference graph's derivation, schedule and statistics. */
  readonly inference?: { readonly derived: Derived; readonly choice: StagedChoice; readonly sched: Schedule; readonly stats: SpecStats };
  /** The double backward (CONTRACT §4.6); undefined when no input is differentiable. */
  readonly double?: DoubleBackward;
}

export interface CompileOptions {
  /** Shown in the generated header: where the spec came from. */
  readonly source?: string;
  /** Print the IR after every stage to this sink. */
  readonly debug?: (line: string) => void;
  /** Format the module with prettier (default true). */
  readonly format?: boolean;
  /** Array element type of the generated module (default float64). */
  readonly dtype?: "float64" | "float32";
  /** Time the build may take (ms) before it ends with a spec error (default BUILD_TIME_BUDGET_MS). */
  readonly timeBudgetMs?: number;
  /** Time one CAS call may take (ms) before the own rule table answers it (default CAS_CALL_DEADLINE_MS). */
  readonly casDeadlineMs?: number;
  /** How to regenerate the module, for its header (default: `npx backpass build <source>`). */
  readonly rebuild?: string;
  /** What the kernels run as (default js): `wasm` prints the loop IR as WebAssembly (emit/wasm.ts). */
  readonly target?: "js" | "wasm";
  /**
   * Derive and emit the double backward (CONTRACT §4.6; default true). Only tests that judge other
   * parts of a build turn it off, to save its time: a module without it breaks the contract.
   */
  readonly doubleBackward?: boolean;
}

/** Most reduction indices around any point of `e`: the depth of its loop nest over reductions. */
function reductionDepth(e: Expr): number {
  const memo = new Map<Expr, number>();
  const go = (x: Expr): number => {
    const m = memo.get(x);
    if (m !== undefined) return m;
    let d = 0;
    if (x.kind === "sum" || x.kind === "max") d = x.indices.length + go(x.body);
    else if (x.kind === "add") for (const t of x.terms) d = Math.max(d, go(t));
    else if (x.kind === "mul") for (const t of x.factors) d = Math.max(d, go(t));
    else if (x.kind === "pow") d = Math.max(go(x.base), go(x.exp));
    else if (x.kind === "call") d = go(x.arg);
    memo.set(x, d);
    return d;
  };
  return go(e);
}

/** Most operands of one sum or product in `e`. */
function widestChain(e: Expr): number {
  const chains = collect(e, (x): x is Add | Mul => x.kind === "add" || x.kind === "mul");
  return chains.reduce((widest, x) => Math.max(widest, x.kind === "add" ? x.terms.length : x.factors.length), 0);
}

function tooWide(what: string, n: number): string {
  return `${what} has a sum or product of ${n} terms; the limit is ${MAX_TERMS} (the generated module could not be formatted)`;
}

/** The structural limits of limits.ts that a checked program must respect. */
function checkLimits(program: Program, file: string | undefined): void {
  if (program.steps.length > MAX_STEPS) throw new SpecError([{ where: { field: "steps" }, message: `${program.steps.length} steps; the limit is ${MAX_STEPS} steps` }], file);
  const rank = (t: { name: string; indices: readonly string[] }) => `'${t.name}' has ${t.indices.length} indices; the limit is ${MAX_RANK} (a tensor of rank r is checked on up to 3^r elements)`;
  const high = [
    ...program.inputs.filter((t) => t.indices.length > MAX_RANK).map((t) => ({ where: { field: "inputs" }, message: rank(t) })),
    ...program.steps.filter((s) => s.indices.length > MAX_RANK).map((s) => ({ where: { step: s.position, text: s.text }, message: rank(s) })),
  ];
  if (high.length) throw new SpecError(high, file);
  const deep = program.steps.flatMap((s) => {
    const d = reductionDepth(s.rhs);
    return d > MAX_REDUCTION_NESTING ? [{ where: { step: s.position, text: s.text }, message: `reductions are nested ${d} indices deep; the limit is ${MAX_REDUCTION_NESTING} (each one multiplies the work of every loop around it)` }] : [];
  });
  if (deep.length) throw new SpecError(deep, file);
  const wide = program.steps.flatMap((s) => {
    const n = widestChain(s.rhs);
    return n > MAX_TERMS ? [{ where: { step: s.position, text: s.text }, message: tooWide("the step", n) }] : [];
  });
  if (wide.length) throw new SpecError(wide, file);
}

/** The derivation of a spec, up to and including the verified fused gradients. */
export interface Derived {
  readonly program: Program;
  readonly backward: Backward;
  readonly fused: Fused;
  /** The spec's state, updates and inference graph (CONTRACT §4.5), with the inference graph's derivation. */
  readonly training?: Training & { readonly derived: Derived };
}


/** A spec whose derivation is checked but whose kernels cannot be written yet; it carries the derivation. */
export class NotLowered extends SpecError {
  constructor(
    problems: ConstructorParameters<typeof SpecError>[0],
    file: string | undefined,
    readonly derived: Derived,
  ) {
    super(problems, file);
  }
}

/**
 * The derivation alone: spec -> checked program -> naive backward -> fused gradients, each stage
 * checked as in `compile`. For every spec, including those whose kernels cannot be written yet.
 */
export async function derive(spec: unknown, opts: Pick<CompileOptions, "source" | "timeBudgetMs" | "casDeadlineMs" | "debug"> = {}): Promise<Derived> {
  return guarded(opts, (run) => deriveWithin(spec, opts, run));
}

/**
 * Compiles a spec. A spec past one of the compiler's limits (limits.ts: nesting, size, the time
 * budget of the build) gets a SpecError that names the limit, never an internal error.
 */
export async function compile(spec: unknown, opts: CompileOptions = {}): Promise<Compiled> {
  return guarded(opts, (run) => compileWithin(spec, opts, run));
}

type Run = <T>(stage: string, f: () => T) => T;

/** Runs `body` within the build's time budget, turning a limit hit in any stage into a SpecError. */
async function guarded<T>(opts: Pick<CompileOptions, "source" | "timeBudgetMs" | "casDeadlineMs">, body: (run: Run) => Promise<T>): Promise<T> {
  const budget = new Budget(opts.timeBudgetMs, opts.casDeadlineMs);
  let stage = "parse";
  const run = <U>(name: string, f: () => U): U => {
    stage = name;
    return withBudget(budget, name, f);
  };
  try {
    return await body(run);
  } catch (e) {
    if (e instanceof LimitExceeded) throw new SpecError([{ message: e.message }], opts.source);
    if (e instanceof SimplifyLimit) throw new SpecError([{ message: `${e.message} while simplifying the gradients (the limit)` }], opts.source);
    if (e instanceof RangeError && /call stack/i.test(e.message))
      throw new SpecError([{ message: `the spec is too large or too deeply nested for this compiler: the stack ran out in stage '${stage}'` }], opts.source);
    throw e;
  }
}

/**
 * Derivations already made in this process, by what they are derived from: `program` with its
 * description left out (nothing but the module's header and explain's title reads it) and every
 * expression node written as its interning id (equal ids are equal expressions, build.ts). codegen
 * builds each spec for float64 and for float32, and the derivation does not depend on the dtype.
 * Least recently used first; a debug build derives afresh, since it prints every stage.
 */
const derivations = new Map<string, Derived>();
const MAX_DERIVATIONS = 64;

function derivationKey(program: Program): string {
  return JSON.stringify({ ...program, description: undefined }, (_, v: unknown) => {
    const node = v as { kind?: unknown; id?: unknown; hash?: unknown } | null;
    return typeof node === "object" && node !== null && typeof node.kind === "string" && typeof node.id === "number" && typeof node.hash === "number" ? `#${node.id}` : v;
  });
}

async function deriveWithin(spec: unknown, opts: Pick<CompileOptions, "source" | "debug">, run: Run): Promise<Derived> {
  const program = run("parse", () => checkSpec(spec, opts.source));
  const training = run("parse", () => checkTraining(spec, program, opts.source));
  const derived = await deriveProgram(program, opts, run);
  if (!training) return derived;
  // the updates are lowered like steps: the same limits (the inference graph's are checked as it is derived)
  checkLimits(training.update, opts.source);
  // the inference graph (CONTRACT §4.5) goes through the same stages as the spec itself
  opts.debug?.(`== updates: ${training.update.steps.length} (the new value of ${training.targets.join(", ") || "no buffer"})`);
  training.update.steps.forEach((s, k) => opts.debug?.(`  ${training.targets[k]}[${s.indices.join(",")}] = ${print(s.rhs, program.letters)}`));
  opts.debug?.(`== inference: ${training.replaced.map((n) => `'${n}'`).join(", ") || "no step"} replaced; ${training.buffers.map((b) => b.name).join(", ") || "no state"} read as nograd inputs`);
  const inference = await deriveProgram(training.inference, opts, run);
  return { ...derived, training: { ...training, derived: inference } };
}

async function deriveProgram(program: Program, opts: Pick<CompileOptions, "source" | "debug">, run: Run): Promise<Derived> {
  checkLimits(program, opts.source);
  verifyProgram(program);
  if (opts.debug) return deriveChecked(program, opts.source, opts.debug, run);
  const key = derivationKey(program);
  const known = derivations.get(key);
  if (known) {
    derivations.delete(key);
    derivations.set(key, known);
    return { ...known, program: { ...known.program, description: program.description } };
  }
  const derived = deriveChecked(program, opts.source, undefined, run);
  derivations.set(key, derived);
  if (derivations.size > MAX_DERIVATIONS) derivations.delete(derivations.keys().next().value!);
  return derived;
}

function deriveChecked(program: Program, source: string | undefined, log: ((line: string) => void) | undefined, run: Run): Derived {
  log?.(`== parse: ${program.name}`);
  for (const s of program.steps) log?.(`  ${s.name}[${s.indices.join(",")}] = ${print(s.rhs, program.letters)}`);

  let backward: Backward;
  try {
    backward = run("differentiate", () => differentiate(program, throughOwnValue));
  } catch (e) {
    if (!(e instanceof NoGradient)) throw e;
    throw new SpecError([{ where: { step: e.step.position, text: e.step.text }, message: e.message }], source);
  }
  verifyBackward(program, backward);
  for (const b of backward.blocks)
    for (const st of b.statements) {
      const n = widestChain(st.expr);
      if (n > MAX_TERMS) throw new LimitExceeded(tooWide(`the naive backward statement for d${st.target.name}${b.step ? ` (step ${b.step.position + 1} "${b.step.text}")` : ""}`, n));
    }
  log?.("== differentiate: naive backward");
  for (const b of backward.blocks) {
    log?.(`  # ${b.step ? `step ${b.step.position + 1}: ${b.step.text}` : "inputs"}`);
    for (const s of b.statements) log?.(`    ${print(s.target, program.letters)} = ${print(s.expr, program.letters)}`);
  }

  const fused = run("simplify", () => deriveFused(program, backward));
  run("verify", () => verifyFused(program, backward, fused));
  for (const ph of fused.phases) {
    log?.(`== simplify/${ph.name} (${ph.rewrites.length} rewrites)`);
    ph.gradients.forEach((g, k) => log?.(`  d${program.inputs[k]!.name} = ${print(g, program.letters)}`));
  }
  return { program, backward, fused };
}

async function compileWithin(spec: unknown, opts: CompileOptions, run: Run): Promise<Compiled> {
  const derived = await deriveWithin(spec, opts, run);
  const { program, backward, fused } = derived;
  const log = opts.debug;
  const { choice, sched } = scheduleDerived(derived, run, log);

  run("emit", () => undefined); // ends the build here if it is already over its budget
  sched.gradients.forEach((g, k) => {
    const n = widestChain(g);
    if (n > MAX_TERMS) throw new LimitExceeded(tooWide(`the fused gradient of '${program.inputs[k]!.name}'`, n));
  });
  // the inference graph's kernels, scheduled like the spec's own (CONTRACT §4.5)
  const t = derived.training;
  if (t) log?.("== inference: schedule");
  const inference = t ? { derived: t.derived, ...scheduleDerived(t.derived, run, log) } : undefined;
  inference?.sched.gradients.forEach((g, k) => {
    const n = widestChain(g);
    if (n > MAX_TERMS) throw new LimitExceeded(tooWide(`the fused inference gradient of '${t!.derived.program.inputs[k]!.name}'`, n));
  });
  // one backend for every kernel of the module: it collects them all into one binary
  const backend = opts.target === "wasm" ? wasmBackend(opts.dtype, log) : undefined;
  const extra = t && inference ? trainingStatements({ program, training: t, derived: t.derived, schedule: inference.sched, staged: inference.choice, dtype: opts.dtype, log, backend }) : undefined;
  // the double backward: the naive backward as a program, through the same stages (once per
  // derivation: codegen's float32 build reuses the float64 one's)
  const double = opts.doubleBackward !== false && hasDoubleBackward(program, backward) ? doubleOf(derived, sched, run, opts.source) : undefined;
  if (double) log?.(`== double backward: ${double.schedule.passes.length} passes`);
  const code = await emitModule({ program, backward, fused, schedule: sched, staged: choice, source: opts.source ?? program.name, format: opts.format, dtype: opts.dtype, rebuild: opts.rebuild, log, extra, backend, double });
  const first = run("stats", () => kernelStats(program, backward, sched, choice.part));
  const stats = double ? { ...first, double: { naive: double.stats.naive, fused: double.stats.fused } } : first;
  if (!t || !inference) return { program, backward, fused, schedule: sched, code, stats, staged: choice, double };
  const inferenceStats = run("stats", () => kernelStats(t.derived.program, t.derived.backward, inference.sched, inference.choice.part));
  return { program, backward, fused, schedule: sched, code, stats: { ...stats, inference: inferenceStats }, training: t, inference: { ...inference, stats: inferenceStats }, staged: choice, double };
}

/** The double backward of each derivation, by its fused gradients (as `schedules` below). */
const doubles = new WeakMap<Fused, DoubleBackward>();

function doubleOf(derived: Derived, sched: Schedule, run: Run, source: string | undefined): DoubleBackward {
  const known = doubles.get(derived.fused);
  if (known) return known;
  // a gradient a one-scatter pass writes counts as the staged ones do (0): the double backward's
  // derivation is the same as without the pass
  const scattered = new Set((sched.elements ?? []).flatMap((el) => el.outputs.map((o) => o.input)));
  const d = deriveDouble(derived.program, derived.backward, run, sched.gradients.map((g, k) => (scattered.has(k) ? ZERO : g)), source);
  doubles.set(derived.fused, d);
  return d;
}

/** A derivation's fused gradients scheduled into passes, after the staged choice; the scheduled gradients are checked too. */
function scheduleDerived(derived: Derived, run: Run, log: ((line: string) => void) | undefined): { choice: StagedChoice; sched: Schedule } {
  // a derivation reused from the cache (deriveProgram) keeps its schedule: it does not depend on the dtype
  const known = schedules.get(derived.fused);
  if (known && !log) return known;
  const planned = planSchedule(derived, run, log);
  schedules.set(derived.fused, planned);
  return planned;
}

/** The schedule of each derivation the cache holds, by its fused gradients (the same object for the same derivation). */
const schedules = new WeakMap<Fused, { choice: StagedChoice; sched: Schedule }>();

function planSchedule(derived: Derived, run: Run, log: ((line: string) => void) | undefined): { choice: StagedChoice; sched: Schedule } {
  const { program, backward, fused } = derived;

  // a gradient whose derived form is more work than the staged statements it reads is computed the staged way
  const choice0 = run("schedule", () => chooseStaged(program, backward, fused.gradients));
  const first = run("schedule", () => schedule(fused.gradients.map((g, k) => (choice0.staged[k] ? ZERO : g)), program.inputs, program.sizeOf, choice0.staged));
  // gradients that read one adjoint through indices: one scatter of its closed form, where less work (schedule/scatter.ts)
  const scattered = run("schedule", () => withElementScatters(program, backward, fused.gradients, choice0, first, (name) => adjointClosedForm(program, backward, name)));
  const choice = scattered?.choice ?? choice0;
  const sched = scattered?.sched ?? first;
  // the scheduler stores invariant products in arrays: the gradients it emits are checked too (a
  // staged one is the naive statements themselves)
  run("verify", () => verifyFused(program, backward, { ...fused, gradients: sched.gradients.map((g, k) => (choice.staged[k] ? fused.gradients[k]! : g)) }));
  log?.(`== schedule/staged: ${program.inputs.map((t, k) => `d${t.name} ${choice.staged[k] ? "staged" : "derived"} (work ${choice.work[k]!.derived} vs ${choice.work[k]!.staged} staged)`).join(", ")}`);
  for (const el of sched.elements ?? []) log?.(`== schedule/scatter: d${el.adjoint} once per element, added into ${el.outputs.map((o) => `d${program.inputs[o.input]!.name}`).join(", ")} (work ${el.work.scattered} vs ${el.work.otherwise})`);
  log?.(`== schedule: ${sched.passes.length} passes`);
  for (const pass of sched.passes)
    log?.(pass.kind === "reduce" ? `  reduce over [${pass.loops.join(",")}]: ${pass.reductions.map((r) => print(r.node, program.letters)).join("; ")}` : `  map ${pass.outputs.map((o) => `d${program.inputs[o.input]!.name}`).join(", ")}${pass.accumulates ? `, accumulating ${pass.accumulates.reductions.map((r) => print(r.node, program.letters)).join("; ")}` : ""} over [${pass.loops.join(",")}]`);
  return { choice, sched };
}
