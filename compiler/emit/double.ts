/**
 * The double-backward kernels of a module (CONTRACT §4.6): `doubleBackwardNaive(gg, dout, cache,
 * into?)` and `doubleBackwardFused(...)`, printed from the derived program of
 * differentiate/double.ts and what the same stages made of it (compiler/double.ts). The module's
 * own prologue helpers (module.ts) are passed in, so that this file never imports module.ts.
 *
 * - naive: the first backward's statements the double backward reads, computed as the naive kernel
 *   computes them (one array each), then reverse mode through them, one commented block per
 *   statement, as lower.ts lowers any naive backward;
 * - fused: the derived closed form, which reads only the cache, `dout` and `gg`, scheduled and
 *   lowered as any fused backward.
 */
import { refsOf, type Expr, type Ref, type Sym } from "../ir/expr.js";
import { isDifferentiable, shapeOf, stepOf, type Program, type TensorDecl } from "../ir/program.js";
import type { Backward, Fused } from "../ir/backward.js";
import type { DoubleProgram } from "../differentiate/double.js";
import type { Schedule } from "../schedule/passes.js";
import type { StagedChoice } from "../schedule/staged.js";
import type { SpecStats } from "../stats.js";
import { lowerForward, lowerFused, lowerNaive, type Names } from "../schedule/lower.js";
import type { Stmt } from "../loop/ir.js";
import { Namer, tsStatements } from "./code.js";
import { stringLiteral } from "../escape.js";
import { DOUT } from "../parse/check.js";

/** What compiler/double.ts derives and the emitter prints. */
export interface DoubleBackward {
  readonly derived: DoubleProgram;
  /** Reverse mode through the derived program: the naive double backward. */
  readonly backward: Backward;
  readonly fused: Fused;
  readonly schedule: Schedule;
  readonly staged: StagedChoice;
  readonly stats: SpecStats;
  /** Set when the simplifier met a limit: the fused kernel then runs the staged statements. */
  readonly limit?: string;
}

/** The module's helpers the double kernels share (module.ts passes its own). */
export interface ModuleHelpers {
  readonly lengthCode: (p: Program, t: TensorDecl, size: (s: string) => string) => string;
  readonly readsOf: (es: readonly Expr[]) => (Ref | Sym)[];
  readonly namesFor: (p: Program, namer: Namer, arrays: Map<string, string>, syms: Map<string, string>, gradName: (r: Ref) => string, dims: Map<string, readonly string[]>) => Names;
  readonly disjointCheck: (written: readonly { code: string; name: string }[], read: readonly { code: string; name: string }[]) => string;
  /** The computed extents of a spec (CONTRACT §4.3), each a local added to `syms`. */
  readonly extentLines: (p: Program, syms: Map<string, string>, namer: Namer) => string[];
}

/** The key of `ddout`'s arrays in the result and in `into`: `ddout` (several outputs: `ddout.<output>`). */
export const DDOUT = `d${DOUT}`;

/**
 * The prologue both kernels share: the cache and what the kernel reads of it, `dout` (the derived
 * program's upstream inputs), `gg` (its upstream gradients, zeros where left out), the output arrays
 * and the check that they share memory with nothing the kernel reads.
 */
function prologue(
  spec: Program,
  d: DoubleBackward,
  h: ModuleHelpers,
  A: string,
  reads: readonly Expr[],
): { lines: string[]; namer: Namer; names: Names; arrays: Map<string, string>; grads: Map<string, string>; syms: Map<string, string>; dims: Map<string, readonly string[]>; outNames: string[]; result: string } {
  const p2 = d.derived.program;
  const namer = new Namer(["gg", "dout", "cache", "into"]);
  const lines = ["checkCache(cache);"];
  const syms = new Map<string, string>();
  for (const s of p2.sizes) syms.set(s, namer.fresh(s));
  for (const c of p2.constants) syms.set(c.name, namer.fresh(c.name));
  const size = (s: string) => syms.get(s)!;
  if (p2.sizes.length) lines.push(`const { ${p2.sizes.map((s) => (syms.get(s) === s ? s : `${s}: ${syms.get(s)}`)).join(", ")} } = cache.sizes;`);
  // the spec's computed extents (a convolution's output length), as its own kernels compute them
  lines.push(...h.extentLines(spec, syms, namer));
  const read = h.readsOf(reads);
  const needed = new Set(read.map((r) => r.name));
  for (const c of p2.constants) if (needed.has(c.name)) lines.push(`const ${syms.get(c.name)} = cache.constants.${c.name};`);
  const arrays = new Map<string, string>();
  const cached = new Set([...spec.inputs, ...spec.steps].map((t) => t.name));
  for (const t of [...spec.inputs, ...spec.steps]) {
    if (!needed.has(t.name)) continue;
    const v = namer.fresh(t.name);
    arrays.set(t.name, v);
    lines.push(`const ${v} = cache.values.${t.name};`);
  }
  // dout: the derived program's inputs after the spec's
  const several = spec.outputs.length > 1;
  const doutArgs: { code: string; name: string }[] = [];
  for (const u of d.derived.douts) {
    const t = stepOf(spec, u.output)!;
    if (!several) {
      lines.push(`checkArray(dout, ${h.lengthCode(spec, t, size)}, "dout");`);
      arrays.set(u.input, "dout");
      doutArgs.push({ code: "dout", name: "dout" });
    } else {
      const v = namer.fresh(`d${u.output}`);
      arrays.set(u.input, v);
      lines.push(`const ${v} = upstream(dout, ${stringLiteral(u.output)}, ${h.lengthCode(spec, t, size)});`);
      doutArgs.push({ code: v, name: `dout.${u.output}` });
    }
  }
  // gg: one cotangent per result of the first backward, zeros where left out
  const grads = new Map<string, string>();
  const ggArgs: { code: string; name: string }[] = [];
  for (const r of d.derived.results) {
    const t = spec.inputs.find((x) => x.name === r.input)!;
    const v = namer.fresh(`gg_${r.key}`);
    lines.push(`const ${v} = cotangent(gg, ${stringLiteral(r.key)}, ${h.lengthCode(spec, t, size)});`);
    ggArgs.push({ code: v, name: `gg.${r.key}` });
    const u = d.backward.upstreams.find((x) => x.output === r.step);
    if (u) grads.set(u.grad.name, v);
  }
  if (!grads.has(d.backward.upstream.name)) grads.set(d.backward.upstream.name, ggArgs[0]!.code);
  // the outputs, in the derived program's input order ("" for an input without a gradient)
  const douts = new Map(d.derived.douts.map((u) => [u.input, u.output] as const));
  const outNames = p2.inputs.map((t) => (isDifferentiable(t) ? namer.fresh(douts.has(t.name) ? (several ? `dd${douts.get(t.name)}` : "ddout") : `d${t.name}`) : ""));
  const outs: { code: string; name: string }[] = [];
  p2.inputs.forEach((t, k) => {
    if (!isDifferentiable(t)) return;
    const len = h.lengthCode(p2, t, size);
    const o = douts.get(t.name);
    if (o === undefined) {
      lines.push(`const ${outNames[k]} = output(into, ${stringLiteral(`d${t.name}`)}, ${len});`);
      outs.push({ code: outNames[k]!, name: `into.d${t.name}` });
    } else if (!several) {
      lines.push(`const ${outNames[k]} = output(into, ${stringLiteral(DDOUT)}, ${len});`);
      outs.push({ code: outNames[k]!, name: `into.${DDOUT}` });
    } else {
      lines.push(`const ${outNames[k]} = outputOf(into, ${stringLiteral(DDOUT)}, ${stringLiteral(o)}, ${len});`);
      outs.push({ code: outNames[k]!, name: `into.${DDOUT}.${o}` });
    }
  });
  const cachedArgs = [...cached].map((n) => ({ code: `cache.values.${n}`, name: `cache.values.${n}` }));
  lines.push(h.disjointCheck(outs, [...ggArgs, ...doutArgs, ...cachedArgs]));
  const dims = new Map<string, readonly string[]>();
  p2.inputs.forEach((t, k) => {
    if (outNames[k]) dims.set(outNames[k]!, shapeOf(p2, t).map(size));
  });
  const names = h.namesFor(p2, namer, arrays, syms, (r) => {
    const v = grads.get(r.name);
    if (v === undefined) throw new Error(`emit: gradient '${r.name}' used before it is computed`);
    return v;
  }, dims);
  const parts = p2.inputs.flatMap((t, k) => (isDifferentiable(t) && !douts.has(t.name) ? [`d${t.name}: ${outNames[k]}`] : []));
  const ddouts = p2.inputs.flatMap((t, k) => (douts.has(t.name) ? [{ output: douts.get(t.name)!, v: outNames[k]! }] : []));
  const ddout = several ? `{ ${ddouts.map((x) => `${x.output}: ${x.v}`).join(", ")} }` : ddouts[0]!.v;
  const result = `return { ${[...parts, `${DDOUT}: ${ddout}`].join(", ")} };`;
  return { lines, namer, names, arrays, grads, syms, dims, outNames, result };
}

/**
 * The first backward's statements (steps of the derived program) that `reads` read, directly or
 * through each other, computed into arrays of their own, in order.
 */
function firstBackward(d: DoubleBackward, reads: readonly Expr[], names: Names, arrays: Map<string, string>, dims: Map<string, readonly string[]>, type: "f32" | "f64"): Stmt[] {
  const p2 = d.derived.program;
  const steps = new Set(d.derived.backwardSteps);
  const needed = new Set<string>();
  const stack = reads.flatMap((e) => refsOf(e)).filter((r) => r.space === "value" && steps.has(r.name)).map((r) => r.name);
  while (stack.length) {
    const n = stack.pop()!;
    if (needed.has(n)) continue;
    needed.add(n);
    for (const r of refsOf(stepOf(p2, n)!.rhs)) if (r.space === "value" && steps.has(r.name)) stack.push(r.name);
  }
  const chosen = p2.steps.filter((s) => needed.has(s.name));
  if (!chosen.length) return [];
  const out: Stmt[] = [{ kind: "comment", text: "the first backward's statements this kernel reads, computed as backwardNaive computes them" }];
  for (const s of chosen) {
    const v = names.namer.fresh(s.name);
    arrays.set(s.name, v);
    const ds = shapeOf(p2, s).map((x) => names.symbol(x));
    dims.set(v, ds);
    out.push({ kind: "alloc", array: v, type, dims: ds, note: "" });
  }
  out.push(...lowerForward({ ...p2, steps: chosen }, names, (n) => arrays.get(n)!));
  return out;
}

export function doubleNaiveBody(spec: Program, d: DoubleBackward, h: ModuleHelpers, A: string): string[] {
  const type = A === "Float32Array" ? "f32" : "f64";
  const exprs = d.backward.blocks.flatMap((b) => b.statements.map((s) => s.expr));
  const pro = prologue(spec, d, h, A, [...exprs, ...firstBackwardReads(d, exprs)]);
  const body = [...firstBackward(d, exprs, pro.names, pro.arrays, pro.dims, type)];
  d.backward.gradients.forEach((g) => {
    const k = d.derived.program.inputs.indexOf(g.input);
    pro.grads.set(g.grad.name, pro.outNames[k]!);
  });
  body.push(...lowerNaive(d.derived.program, d.backward, pro.names, pro.grads, type));
  return [...pro.lines, ...tsStatements(body, pro.dims), pro.result];
}

/** Whether the fused double backward computes every gradient the staged way: then it is the naive kernel. */
export function allStaged(d: DoubleBackward): boolean {
  return d.staged.staged.length > 0 && d.staged.staged.every(Boolean);
}

export function doubleFusedBody(spec: Program, d: DoubleBackward, h: ModuleHelpers, A: string, log?: (line: string) => void): string[] {
  // every gradient staged (the simplifier met a limit, or no derived form is less work): the very
  // statements of the naive kernel, so it is called rather than written out a second time
  if (allStaged(d)) return ["return doubleBackwardNaive(gg, dout, cache, into);"];
  const type = A === "Float32Array" ? "f32" : "f64";
  const p2 = d.derived.program;
  const stagedExprs = (d.staged.part?.blocks ?? []).flatMap((b) => b.statements.map((s) => s.expr));
  const exprs = [...d.fused.gradients, ...d.schedule.gradients, ...stagedExprs];
  const pro = prologue(spec, d, h, A, [...exprs, ...firstBackwardReads(d, stagedExprs)]);
  const body: Stmt[] = [...firstBackward(d, stagedExprs, pro.names, pro.arrays, pro.dims, type)];
  const keys = p2.inputs.map((t) => (d.derived.douts.some((u) => u.input === t.name) ? DDOUT : `d${t.name}`));
  body.push(...lowerFused(p2, d.fused, d.schedule, pro.names, { outputs: pro.outNames, keys, float32: A === "Float32Array", log }));
  const lines = [...pro.lines, ...tsStatements(body, pro.dims)];
  const part = d.staged.part;
  if (part) {
    const staging = pro.grads;
    for (const g of part.gradients) staging.set(g.grad.name, pro.outNames[p2.inputs.indexOf(g.input)]!);
    lines.push("", `// computed the staged way (no derived form is less work): ${part.gradients.map((g) => `d${g.input.name}`).join(", ")}`);
    lines.push(...tsStatements(lowerNaive(p2, part, pro.names, staging, type), pro.dims));
  }
  lines.push(pro.result);
  return lines;
}

/** What the first backward's statements that `reads` reads read in turn (forward values and constants), so the prologue unpacks them. */
function firstBackwardReads(d: DoubleBackward, reads: readonly Expr[]): Expr[] {
  const p2 = d.derived.program;
  const steps = new Set(d.derived.backwardSteps);
  const out: Expr[] = [];
  const seen = new Set<string>();
  const stack = reads.flatMap((e) => refsOf(e)).filter((r) => r.space === "value" && steps.has(r.name)).map((r) => r.name);
  while (stack.length) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    const rhs = stepOf(p2, n)!.rhs;
    out.push(rhs);
    for (const r of refsOf(rhs)) if (r.space === "value" && steps.has(r.name)) stack.push(r.name);
  }
  return out;
}

/** Helpers only the double kernels call; `@FLOATS@` is the module's array type, `@AT@` the message prefix. */
export const DOUBLE_HELPERS = `
/** The cotangent gg gives for one result of the first backward, checked, or zeros when gg leaves it out. */
function cotangent(gg: object, key: string, length: number): @FLOATS@ {
  const given = own(gg, key);
  return given === undefined ? new @FLOATS@(length) : checkArray(given, length, "gg." + key);
}
`;

/** With several outputs: `into.ddout.<output>`, checked, or a new array. */
export const DOUBLE_OUTPUT_OF = `
/** The array \`into[group]\` gives for \`key\`, checked, or a new one. */
function outputOf(into: object | undefined, group: string, key: string, length: number): @FLOATS@ {
  const given = own(own(into, group) as object | undefined, key);
  return given === undefined ? new @FLOATS@(length) : checkArray(given, length, "into." + group + "." + key);
}
`;
