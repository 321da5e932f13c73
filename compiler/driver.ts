/**
 * The straight-line driver: spec -> checked program -> naive backward -> fused backward ->
 * schedule -> TypeScript module. Each stage's output is verified before the next runs; with
 * `debug`, the IR after every stage is printed so a reader can watch the derivation happen.
 */
import { print } from "./ir/expr.js";
import type { Program } from "./ir/program.js";
import { checkSpec, SpecError } from "./parse/check.js";
import { differentiate, NoGradient, type Backward } from "./differentiate/reverse.js";
import { deriveFused, type Fused } from "./simplify/fused.js";
import { schedule, type Schedule } from "./schedule/passes.js";
import { emitModule } from "./emit/module.js";
import { kernelStats, type SpecStats } from "./stats.js";
import { verifyProgram, verifyBackward, verifyFused } from "./verify.js";

export interface Compiled {
  readonly program: Program;
  readonly backward: Backward;
  readonly fused: Fused;
  readonly schedule: Schedule;
  readonly code: string;
  readonly stats: SpecStats;
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
  /** How to regenerate the module, for its header (default: `npx backpass build <source>`). */
  readonly rebuild?: string;
}

export async function compile(spec: unknown, opts: CompileOptions = {}): Promise<Compiled> {
  const log = opts.debug;
  const program = checkSpec(spec, opts.source);
  verifyProgram(program);
  log?.(`== parse: ${program.name}`);
  for (const s of program.steps) log?.(`  ${s.name}[${s.indices.join(",")}] = ${print(s.rhs, program.letters)}`);

  let backward: Backward;
  try {
    backward = differentiate(program);
  } catch (e) {
    if (!(e instanceof NoGradient)) throw e;
    throw new SpecError([{ where: { step: e.step.position, text: e.step.text }, message: e.message }], opts.source);
  }
  verifyBackward(program, backward);
  log?.("== differentiate: naive backward");
  for (const b of backward.blocks) {
    log?.(`  # ${b.step ? `step ${b.step.position + 1}: ${b.step.text}` : "inputs"}`);
    for (const s of b.statements) log?.(`    ${print(s.target, program.letters)} = ${print(s.expr, program.letters)}`);
  }

  const fused = deriveFused(program, backward);
  verifyFused(program, backward, fused);
  for (const ph of fused.phases) {
    log?.(`== simplify/${ph.name} (${ph.rewrites.length} rewrites)`);
    ph.gradients.forEach((g, k) => log?.(`  d${program.inputs[k]!.name} = ${print(g, program.letters)}`));
  }

  const sched = schedule(fused.gradients, program.inputs, program.sizeOf);
  // the scheduler stores invariant products in arrays: the gradients it emits are checked too
  verifyFused(program, backward, { ...fused, gradients: sched.gradients });
  log?.(`== schedule: ${sched.passes.length} passes`);
  for (const pass of sched.passes)
    log?.(pass.kind === "reduce" ? `  reduce over [${pass.loops.join(",")}]: ${pass.reductions.map((r) => print(r.node, program.letters)).join("; ")}` : `  map ${pass.outputs.map((o) => `d${program.inputs[o.input]!.name}`).join(", ")} over [${pass.loops.join(",")}]`);

  const code = await emitModule({ program, backward, fused, schedule: sched, source: opts.source ?? program.name, format: opts.format, dtype: opts.dtype, rebuild: opts.rebuild });
  return { program, backward, fused, schedule: sched, code, stats: kernelStats(program, backward, sched) };
}
