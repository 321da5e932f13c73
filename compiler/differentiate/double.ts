/**
 * The double backward (CONTRACT §4.6) as an ordinary program: the naive backward is itself a program
 * in the same IR, so this file writes it as one, and the same pipeline (reverse mode with several
 * outputs, the simplifier, the scheduler, the emitter) differentiates it again.
 *
 * The derived program's inputs are the spec's inputs and one upstream gradient per output (`dout`);
 * its steps are the forward steps followed by every statement of the naive backward, in order, each
 * as a step of its own (a gradient array becomes a value); its outputs are the statements that hold
 * the gradients of the differentiable inputs. Reverse mode through it, with the caller's `gg` as the
 * upstream of those outputs, gives the gradients of `sum(gg · backward(dout, cache))` with respect to
 * every differentiable input and every `dout`.
 *
 * Nothing here knows any layer: the statements are renamed, never read.
 */
import { call, print, ref, renameFree, rewrite, ZERO, type Expr } from "../ir/expr.js";
import { nameTable } from "../ir/table.js";
import type { Backward } from "../ir/backward.js";
import { isDifferentiable, stepOf, type Program, type Step, type TensorDecl } from "../ir/program.js";

export interface DoubleProgram {
  /** The first backward written as a program (see the header). */
  readonly program: Program;
  /** The upstream input of each output of the spec, in the spec's output order: `dout` or `d<output>`. */
  readonly douts: readonly { readonly output: string; readonly input: string }[];
  /** The derived program's output step of each differentiable input, in input order, with its key in `gg` (`dx`). */
  readonly results: readonly { readonly input: string; readonly step: string; readonly key: string }[];
  /** The derived program's steps that are the first backward's statements (the forward steps come before them). */
  readonly backwardSteps: readonly string[];
}

/** A name not yet taken: `base`, else `base_`, `base__`, ... */
function freshName(base: string, taken: Set<string>): string {
  let n = base;
  while (taken.has(n)) n += "_";
  taken.add(n);
  return n;
}

/** Whether the spec has a first backward to differentiate again: some differentiable input. */
export function hasDoubleBackward(p: Program, bw: Backward): boolean {
  return bw.gradients.length > 0 && p.inputs.some(isDifferentiable);
}

export function doubleProgram(p: Program, bw: Backward): DoubleProgram {
  const taken = new Set<string>([...p.inputs.map((t) => t.name), ...p.steps.map((s) => s.name)]);
  // the upstream of each output is an input of the derived program
  const several = p.outputs.length > 1;
  const douts = p.outputs.map((o) => ({ output: o, input: freshName(several ? `d${o}` : "dout", taken) }));
  const doutDecls: TensorDecl[] = douts.map((d) => ({ name: d.input, indices: stepOf(p, d.output)!.indices }));
  const upstreamOf = new Map<string, string>();
  for (const u of bw.upstreams) upstreamOf.set(u.grad.name, douts.find((d) => d.output === u.output)!.input);
  if (!upstreamOf.has(bw.upstream.name)) upstreamOf.set(bw.upstream.name, douts[0]!.input);
  // every statement's array becomes a step's value
  const stepName = new Map<string, string>(upstreamOf);
  const steps: Step[] = [...p.steps];
  const backwardSteps: string[] = [];
  const asValue = (e: Expr): Expr =>
    rewrite(e, p.sizeOf, {
      before: (x) => {
        if (x.kind !== "ref" || x.space !== "grad") return undefined;
        const name = stepName.get(x.name);
        if (name === undefined) throw new Error(`double backward: gradient '${x.name}' read before it is computed`);
        return ref(name, x.indices, "value");
      },
    });
  for (const b of bw.blocks)
    for (const s of b.statements) {
      const name = freshName(`d${s.target.name.replace(/#/g, "_")}`, taken);
      const rhs = asValue(s.expr);
      stepName.set(s.target.name, name);
      backwardSteps.push(name);
      const text = `${print(ref(name, s.target.indices), p.letters)} = ${print(rhs, p.letters)}`;
      steps.push({ name, indices: s.target.indices, position: steps.length, text, rhs });
    }
  const results = bw.gradients.map((g) => ({ input: g.input.name, step: stepName.get(g.grad.name)!, key: `d${g.input.name}` }));
  const outputs = results.map((r) => r.step);
  const program: Program = {
    ...p,
    name: p.name,
    inputs: [...p.inputs, ...doutDecls],
    steps,
    output: outputs[0]!,
    outputs,
  };
  return { program, douts, results, backwardSteps };
}

/**
 * The derived program as the fused derivation sees it, with the naive backward through it: the
 * first backward's statements are not in the cache (a kernel would have to compute them), so every
 * read of one in `bw` is replaced by its definition, down to forward values and `dout`, and those
 * steps are given no definition (0: no gradient reads them any more) for the simplifier to fold
 * products back into. What comes out
 * reads only what the cache holds, `dout` and `gg`. The forward steps in `opaque` are written
 * `stop(definition)`: the same value, but no product of the gradients matches it (the caller's
 * choice of what the simplifier should not fold into).
 */
export function forFusedDerivation(d: DoubleProgram, bw: Backward, opaque: ReadonlySet<string> = new Set()): { program: Program; backward: Backward } {
  const p = d.program;
  const backwardSteps = new Set(d.backwardSteps);
  const resolved = new Map<string, Expr>();
  const inline = (e: Expr): Expr =>
    rewrite(e, p.sizeOf, {
      before: (x) => {
        if (x.kind !== "ref" || x.space !== "value" || !backwardSteps.has(x.name)) return undefined;
        const def = resolved.get(x.name)!;
        const m = nameTable<string>();
        const st = stepOf(p, x.name)!;
        st.indices.forEach((i, k) => (m[i] = x.indices[k]!));
        return renameFree(def, m, p.sizeOf);
      },
    });
  // in step order, each reading only earlier ones
  for (const s of p.steps) if (backwardSteps.has(s.name)) resolved.set(s.name, inline(s.rhs));
  // an opaque step keeps its value (the simplifier's numeric checks evaluate it) under stop(...),
  // which no product folds into
  const program: Program = {
    ...p,
    steps: p.steps.map((s) => (backwardSteps.has(s.name) ? { ...s, rhs: ZERO } : opaque.has(s.name) ? { ...s, rhs: call("stop", s.rhs) } : s)),
  };
  const backward: Backward = {
    ...bw,
    blocks: bw.blocks.map((b) => ({ ...b, statements: b.statements.map((s) => ({ ...s, expr: inline(s.expr) })) })),
  };
  return { program, backward };
}
