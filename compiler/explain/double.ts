/**
 * The double backward's section of `backpass explain` (CONTRACT §4.6): the naive backward written as
 * a program, reverse mode through it (the statements of `doubleBackwardNaive`), the rewrites that
 * took it to the fused form, that closed form, and the cost of both kernels. Formulas are in the
 * spec language, in code blocks: the derivation is long and its steps are the first one's rules.
 */
import type { DoubleBackward } from "../emit/double.js";
import { print, type Expr } from "../ir/expr.js";
import { isDifferentiable, type Program } from "../ir/program.js";
import type { KernelStats } from "../stats.js";
import { markdownCode, markdownCodeLine } from "../escape.js";

/** Rewrites listed one by one up to this many; past it, how many each rule made. */
const LISTED = 120;

export function doubleSection(spec: Program, d: DoubleBackward, costTable: (naive: KernelStats, fused: KernelStats, largest: string) => string[]): string[] {
  const p2 = d.derived.program;
  const show = (e: Expr) => markdownCodeLine(print(e, p2.letters));
  const out: string[] = [];
  const several = spec.outputs.length > 1;
  out.push("## The double backward");
  out.push("");
  out.push(
    `\`doubleBackwardNaive(gg, dout, cache)\` and \`doubleBackwardFused\` return the gradients of $\\sum gg \\cdot \\mathrm{backward}(dout, cache)$ with respect to ${spec.inputs.filter(isDifferentiable).map((t) => markdownCode(t.name)).join(", ")} and ${several ? "each output's `dout`" : "`dout`"}. The naive backward above is itself a program: its inputs are the spec's and ${d.derived.douts.map((u) => markdownCode(u.input)).join(", ")}, its steps are the ${spec.steps.length} forward steps followed by its ${d.derived.backwardSteps.length} statements, and its outputs are the gradients ${d.derived.results.map((r) => markdownCode(r.key)).join(", ")}. The same stages differentiate it again, with \`gg\` as the upstream gradient of those outputs (written $\\mathrm{d}$ + the output's name below).`,
  );
  out.push("");
  out.push("The first backward's statements, as steps of that program:");
  out.push("");
  out.push("```");
  for (const name of d.derived.backwardSteps) out.push(markdownCodeLine(p2.steps.find((s) => s.name === name)!.text));
  out.push("```");
  out.push("");
  out.push("Reverse mode through them, one block per step (the statements of `doubleBackwardNaive`):");
  out.push("");
  out.push("```");
  for (const b of d.backward.blocks) {
    out.push(b.step ? `# step ${b.step.position + 1}: ${markdownCodeLine(b.step.text)}` : "# the inputs");
    // a part of a gradient keeps its `#k` (ddxmu#1 is part 1 of the gradient of dxmu, ddxmu_1 that of dxmu_1)
    for (const st of b.statements) out.push(`${show(st.target)} = ${show(st.expr)}`);
  }
  out.push("```");
  out.push("");
  if (d.limit) {
    out.push(`No derived form is used: ${markdownCodeLine(d.limit)}. \`doubleBackwardFused\` runs these statements too.`);
  } else {
    const rewrites = d.fused.phases.flatMap((ph) => ph.rewrites.map((r) => ({ phase: ph.name, ...r })));
    out.push(`### From naive to fused: ${rewrites.length} rewrite${rewrites.length === 1 ? "" : "s"}`);
    out.push("");
    out.push("The first backward's statements are inlined down to what the cache holds, `dout` and `gg`; then the phases of the first derivation run unchanged.");
    out.push("");
    if (rewrites.length <= LISTED) {
      out.push("```");
      rewrites.forEach((r, k) => out.push(`${k + 1}. ${r.rule} (${r.phase}): ${show(r.before)}  =>  ${show(r.after)}`));
      out.push("```");
    } else {
      const counts = new Map<string, number>();
      for (const r of rewrites) counts.set(`${r.rule} (${r.phase})`, (counts.get(`${r.rule} (${r.phase})`) ?? 0) + 1);
      out.push("| rule (phase) | rewrites |");
      out.push("| --- | --- |");
      for (const [rule, n] of counts) out.push(`| ${rule} | ${n} |`);
    }
    out.push("");
    out.push("The fused closed form, as `doubleBackwardFused` computes it (a gradient marked *staged* runs the statements above, where no derived form is less work):");
    out.push("");
    out.push("```");
    p2.inputs.forEach((t, k) => {
      if (!isDifferentiable(t)) return;
      out.push(`d${t.name}[${t.indices.join(",")}] = ${d.staged.staged[k] ? "staged" : show(d.fused.gradients[k]!)}`);
    });
    out.push("```");
  }
  out.push("");
  out.push(`${d.schedule.passes.length} pass${d.schedule.passes.length === 1 ? "" : "es"} in the fused kernel. From \`backpass stats\` (\`double\`; the naive kernel's figures leave out its recomputation of the first backward):`);
  out.push("");
  out.push(...costTable(d.stats.naive, d.stats.fused, `[${d.stats.largest.shape.join(",")}]`).map((l) => l.replace("`backwardNaive`", "`doubleBackwardNaive`").replace("`backwardFused`", "`doubleBackwardFused`")));
  return out;
}
